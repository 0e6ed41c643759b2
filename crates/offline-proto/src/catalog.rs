//! The task store as the torrent-client interfaces see it: what
//! [`qbittorrent`](crate::qbittorrent) and [`transmission`](crate::transmission)
//! read and change, over the same tasks as [`aria2`](crate::aria2).
//!
//! The media automation apps (Sonarr, Radarr, Lidarr, Prowlarr, MoviePilot, Flexget)
//! name a download by its **hash** (qBittorrent) or a small integer **ID**
//! (Transmission), file it under a **category** or **labels**, and read where its
//! content is. A task's [`TaskView`] carries all of that
//! ([`TaskView::id`], [`TaskView::hash`], [`TaskView::category`], [`TaskView::tags`],
//! [`TaskView::added_on`], [`TaskView::completed_on`], [`TaskView::held`]); the
//! daemon implements [`Catalog`].
//!
//! Rules decided here, for every interface:
//!
//! - A task's hash ([`task_hash`]): the torrent's v1 infohash (40 lower-case hex
//!   digits) for a torrent or a magnet link; for any other link the SHA-1 of the link
//!   as given (and of `link#N` for its N-th repetition, N ≥ 1), so the same link
//!   always has the same hash, across restarts too.
//! - A category is a name and a **drive path** its downloads go to ([`Category`]);
//!   a category with no path puts them in the daemon's default folder
//!   ([`Catalog::default_dir`]) under a folder of the category's name, as
//!   qBittorrent does with its default save path ([`category_dir`]).
//! - Paths: the daemon keeps drive paths (`/Media/TV`); the apps see them under the
//!   **report prefix**, where their machine mounts the drive (`/mnt/cloud`, so
//!   `/mnt/cloud/Media/TV`: [`report_path`]). A path an app sends is taken back from
//!   under the prefix when it lies there, and is a drive path as it is otherwise, so
//!   `/mnt/cloud/Media/TV` and `/Media/TV` name the same folder ([`drive_path`]).
//! - Removed tasks ([`TaskState::Removed`]) are not listed by these interfaces: in
//!   a torrent client a removed torrent is gone ([`Catalog::listed`]).

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};

pub use crate::aria2::{
    AddRequest, FileView, Gid, Progress, Source, StoreError, TaskState, TaskView, TorrentInfo,
    WebLogin,
};
use crate::torrent::InfoHash;

/// A task's hash for the torrent-client interfaces: `torrent`'s infohash when there
/// is one, else the SHA-1 of `link` (of `link#occurrence` when `occurrence` is not 0),
/// as 40 lower-case hex digits.
pub fn task_hash(torrent: Option<InfoHash>, link: &str, occurrence: u32) -> String {
    if let Some(hash) = torrent {
        return hash.to_string();
    }
    let digest = if occurrence == 0 {
        Sha1::digest(link.as_bytes())
    } else {
        Sha1::digest(format!("{link}#{occurrence}").as_bytes())
    };
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `text` is a hash as [`task_hash`] writes it (40 hex digits, either case:
/// clients send what they were given, some upper-cased).
pub fn is_hash(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Folder `dir` and a path inside it, one `/` between them (`dir` itself for an
/// empty path): where the interfaces show a task's files.
pub(crate) fn join(dir: &str, path: &str) -> String {
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        return dir.to_owned();
    }
    match dir {
        "" => path.to_owned(),
        d if d.ends_with('/') => format!("{d}{path}"),
        d => format!("{d}/{path}"),
    }
}

/// What the daemon configures the torrent-client interfaces with
/// ([`qbittorrent`](crate::qbittorrent) and [`transmission`](crate::transmission)
/// take the same one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The login every request must carry (qBittorrent's `auth/login`,
    /// Transmission's HTTP Basic); `None`: none, and only loopback peers are served.
    pub login: Option<WebLogin>,
    /// Where the apps' machine mounts the drive (`/mnt/cloud`): drive folders are
    /// shown under it, and folders sent are taken back from it ([`report_path`],
    /// [`drive_path`]). `None`: drive paths as they are.
    pub report_prefix: Option<String>,
    /// The daemon's own version (`0.1.0`): Transmission shows it after its own in
    /// `version`; qBittorrent answers none (`app/version` must be a qBittorrent
    /// version for the apps that parse it).
    pub version: String,
}

/// The path an app sees for drive path `drive`: `prefix` joined with it (`/mnt/cloud`
/// and `/Media/TV` give `/mnt/cloud/Media/TV`), or `drive` as it is without a prefix;
/// no trailing `/` but for the root itself (qBittorrent's `Path::toString`).
pub fn report_path(prefix: Option<&str>, drive: &str) -> String {
    let joined = match prefix.map(|p| p.trim_end_matches('/')) {
        None => drive.to_owned(),
        Some(p) => {
            let rest = drive.trim_start_matches('/');
            if rest.is_empty() {
                p.to_owned()
            } else {
                format!("{p}/{rest}")
            }
        }
    };
    let trimmed = joined.trim_end_matches('/');
    if trimmed.is_empty() && joined.starts_with('/') {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The drive path for a path an app sent (`savepath`, a category's `savePath`,
/// `download-dir`): an absolute path loses `prefix` when it lies under it (component
/// by component: `/mnt/cloudy` is not under `/mnt/cloud`) and is a drive path as it
/// is otherwise; a relative one is joined to `base` (qBittorrent's rule, "a relative
/// save path is relative to the default one"; Transmission refuses relative paths
/// before asking). Empty and `.` components are dropped; the answer is absolute,
/// with no trailing `/` (`/` for the root).
///
/// # Errors
///
/// The reason, for a path with a `..` component (never followed: the drive has no
/// such thing, and it could climb out of the prefix).
pub fn drive_path(prefix: Option<&str>, given: &str, base: &str) -> Result<String, String> {
    let given = given.trim();
    let mut parts = Vec::new();
    for part in given.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("the path {given:?} has a \"..\" component")),
            part => parts.push(part),
        }
    }
    if !given.starts_with('/') {
        let base = base.trim_end_matches('/');
        return Ok(if parts.is_empty() {
            report_path(None, &format!("/{}", base.trim_start_matches('/')))
        } else {
            format!("{base}/{}", parts.join("/"))
        });
    }
    let prefix: Vec<&str> = prefix
        .unwrap_or_default()
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let rest = if !prefix.is_empty() && parts.starts_with(&prefix) {
        &parts[prefix.len()..]
    } else {
        &parts[..]
    };
    Ok(format!("/{}", rest.join("/")))
}

/// A category: where its downloads go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Category {
    /// The drive path its downloads go to (`/Media/TV`); empty: the default folder's
    /// subfolder of the category's name ([`category_dir`]).
    pub save_path: String,
}

/// Whether `name` may name a category (qBittorrent's
/// `BitTorrent::Session::isValidCategoryName`): not empty, no leading or trailing
/// `/`, no empty path component (`//`), and no control characters.
pub fn valid_category_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.contains("//")
        && !name.chars().any(char::is_control)
}

/// `tags` without repetitions, each kept where it first appears (a task's tags are
/// a set, kept in the order given).
pub fn unique_tags<'t>(tags: impl IntoIterator<Item = &'t String>) -> Vec<String> {
    let mut unique: Vec<String> = Vec::new();
    for tag in tags {
        if !unique.contains(tag) {
            unique.push(tag.clone());
        }
    }
    unique
}

/// Checks [`NewTask::unwanted`] against what is added: files can be left out of a
/// torrent only, each index must name one of its files (padding files not counted),
/// and at least one file must be left to download.
///
/// # Errors
///
/// The reason, for [`AddError::Refused`].
pub fn check_unwanted(source: &Source, unwanted: &[usize]) -> Result<(), String> {
    if unwanted.is_empty() {
        return Ok(());
    }
    let Source::Torrent { bytes, .. } = source else {
        return Err(
            "files can be left out of a torrent only (a link's files are not known yet)".into(),
        );
    };
    let meta = crate::torrent::Metainfo::from_bytes(bytes)
        .map_err(|e| format!("not a usable torrent: {e}"))?;
    let count = meta.files.iter().filter(|f| !f.padding).count();
    if let Some(bad) = unwanted.iter().find(|&&i| i >= count) {
        return Err(format!(
            "the torrent has {count} files: there is no file {bad}"
        ));
    }
    if unwanted.len() >= count {
        return Err("every file of the torrent is left out: nothing to download".into());
    }
    Ok(())
}

/// The drive folder a download of category `name` goes to: its save path, or the
/// default folder joined with the category's name.
pub fn category_dir(default_dir: &str, name: &str, category: &Category) -> String {
    if !category.save_path.is_empty() {
        return category.save_path.clone();
    }
    let base = default_dir.trim_end_matches('/');
    format!("{base}/{name}")
}

/// A download to add through a torrent-client interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    /// What to download and where: `dir` is the drive folder asked for (`savepath`,
    /// `download-dir`), already resolved from the category when none was given;
    /// `out` the name asked for (`rename`).
    pub request: AddRequest,
    /// Its category (qBittorrent) or first label (Transmission), when given.
    pub category: Option<String>,
    /// Its tags (qBittorrent `tags`) or labels (Transmission), in the order given.
    pub tags: Vec<String>,
    /// Added held back (`paused`): accepted and kept, not sent to the drive until
    /// resumed.
    pub held: bool,
    /// The indices (from 0, in the torrent's file order) of the files not to
    /// download (Transmission's `files-unwanted`); empty: every file.
    pub unwanted: Vec<usize>,
}

impl NewTask {
    /// A download of `source` with no options.
    pub fn new(source: Source) -> Self {
        Self {
            request: AddRequest {
                source,
                dir: None,
                out: None,
                position: None,
            },
            category: None,
            tags: Vec::new(),
            held: false,
            unwanted: Vec::new(),
        }
    }
}

/// Why an add was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    /// A task with the same hash is already in the store (qBittorrent answers
    /// `Fails.`; Transmission `torrent-duplicate` with that task).
    #[error("the task is already in the store")]
    Duplicate(Gid),
    /// The daemon or the drive refused it (a link the drive cannot fetch, a bad
    /// torrent, a store error): the reason.
    #[error("{0}")]
    Refused(String),
}

/// Why a category could not be made or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CategoryError {
    /// The name is empty or not a valid category name.
    #[error("invalid category name {0:?}")]
    InvalidName(String),
    /// `createCategory` of a name that exists.
    #[error("category {0:?} already exists")]
    Exists(String),
    /// `editCategory`/`setCategory` of a name that does not exist.
    #[error("category {0:?} does not exist")]
    Missing(String),
    /// The save path is not a drive path this drive takes.
    #[error("{0}")]
    BadPath(String),
    /// The store could not record it.
    #[error("{0}")]
    Store(String),
}

/// What a pause or a resume did to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// The task is held back (not yet sent to the drive) or released: honoured.
    Done,
    /// The drive already has it and cannot pause it: nothing changed.
    NotPossible,
}

/// The task store the torrent-client interfaces read and change; the daemon
/// implements it (over the same store as [`crate::aria2::Downloads`]).
///
/// The calls come one at a time (`&mut self`).
pub trait Catalog {
    /// The drive folder downloads go to when nothing names one (a drive path).
    fn default_dir(&self) -> String;

    /// Registers a download.
    ///
    /// # Errors
    ///
    /// [`AddError::Duplicate`] when a task with its hash is there already;
    /// [`AddError::Refused`] when the drive cannot take it.
    fn add(&mut self, task: NewTask) -> Result<Gid, AddError>;

    /// Every task but removed ones, in the order they were added.
    fn listed(&self) -> Vec<&TaskView>;

    /// The task with this hash (any case), unless removed.
    fn by_hash(&self, hash: &str) -> Option<&TaskView>;

    /// The task with this ID ([`TaskView::id`]), unless removed.
    fn by_id(&self, id: u64) -> Option<&TaskView>;

    /// Deletes a task: it is no longer tracked or listed, its task on the drive is
    /// deleted where the drive has a task list, and with `delete_files` the files it
    /// stored are moved to the drive's trash.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when it cannot be done (the store cannot record it, or the drive
    /// files cannot be deleted on this drive: then nothing is changed).
    fn delete(&mut self, gid: Gid, delete_files: bool) -> Result<(), StoreError>;

    /// Holds a task back (`held`) or releases it.
    fn hold(&mut self, gid: Gid, held: bool) -> Hold;

    /// Sets a task's category (`None`: none).
    ///
    /// # Errors
    ///
    /// [`CategoryError::Missing`] for a category that does not exist.
    fn set_category(&mut self, gid: Gid, category: Option<&str>) -> Result<(), CategoryError>;

    /// Sets a task's tags (the whole set, kept in this order, no duplicates).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot record it.
    fn set_tags(&mut self, gid: Gid, tags: &[String]) -> Result<(), StoreError>;

    /// The categories, by name.
    fn categories(&self) -> BTreeMap<String, Category>;

    /// Makes (`create`) or changes a category.
    ///
    /// # Errors
    ///
    /// [`CategoryError`]: an invalid name, a name that exists (`create`) or does not
    /// (`!create`), a save path the drive cannot take.
    fn put_category(
        &mut self,
        name: &str,
        category: Category,
        create: bool,
    ) -> Result<(), CategoryError>;

    /// Removes categories (unknown names are skipped); tasks in them keep running
    /// with no category.
    fn remove_categories(&mut self, names: &[String]);

    /// The tags made with `createTags` or carried by a task, sorted.
    fn tags(&self) -> Vec<String>;

    /// Makes tags (`createTags`); known ones are skipped.
    fn create_tags(&mut self, tags: &[String]);

    /// Forgets tags (`deleteTags`), taking them off every task.
    fn delete_tags(&mut self, tags: &[String]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_names_and_tags() {
        assert!(valid_category_name("tv"));
        assert!(valid_category_name("Media/TV"));
        for bad in ["", "/tv", "tv/", "a//b", "a\nb"] {
            assert!(!valid_category_name(bad), "{bad:?}");
        }
        let tags: Vec<String> = ["b", "a", "b", "c", "a"].map(String::from).into();
        assert_eq!(unique_tags(&tags), ["b", "a", "c"]);
    }

    #[test]
    fn reported_paths_are_under_the_prefix() {
        assert_eq!(report_path(None, "/Media/TV"), "/Media/TV");
        assert_eq!(report_path(None, "/"), "/");
        let p = Some("/mnt/cloud");
        assert_eq!(report_path(p, "/Media/TV"), "/mnt/cloud/Media/TV");
        assert_eq!(report_path(p, "/Media/TV/"), "/mnt/cloud/Media/TV");
        assert_eq!(report_path(Some("/mnt/cloud/"), "/"), "/mnt/cloud");
        assert_eq!(report_path(Some("/"), "/Media"), "/Media");
    }

    #[test]
    fn sent_paths_come_back_from_under_the_prefix_or_are_drive_paths() {
        let p = Some("/mnt/cloud");
        assert_eq!(
            drive_path(p, "/mnt/cloud/Media/TV/", "/x").unwrap(),
            "/Media/TV"
        );
        assert_eq!(drive_path(p, "/mnt/cloud", "/x").unwrap(), "/");
        assert_eq!(drive_path(p, "/Media/TV", "/x").unwrap(), "/Media/TV");
        assert_eq!(
            drive_path(p, "/mnt/cloudy/tv", "/x").unwrap(),
            "/mnt/cloudy/tv"
        );
        assert_eq!(
            drive_path(p, "TV//a/./b", "/Media").unwrap(),
            "/Media/TV/a/b"
        );
        assert_eq!(drive_path(p, ".", "/Media/").unwrap(), "/Media");
        assert_eq!(drive_path(None, " /Media//TV ", "/x").unwrap(), "/Media/TV");
        assert_eq!(drive_path(Some("/"), "/Media", "/x").unwrap(), "/Media");
        assert!(drive_path(p, "/mnt/cloud/../etc", "/x").is_err());
        assert!(drive_path(None, "a/../../b", "/x").is_err());
    }

    #[test]
    fn hashes() {
        let hash: InfoHash = "0123456789ABCDEF0123456789abcdef01234567".parse().unwrap();
        assert_eq!(
            task_hash(Some(hash), "ignored", 3),
            "0123456789abcdef0123456789abcdef01234567"
        );
        let a = task_hash(None, "https://a.example/x.iso", 0);
        assert!(is_hash(&a) && a == a.to_ascii_lowercase());
        assert_eq!(a, task_hash(None, "https://a.example/x.iso", 0));
        assert_ne!(a, task_hash(None, "https://a.example/x.iso", 1));
        // SHA-1("abc"), FIPS 180-1's example.
        assert_eq!(
            task_hash(None, "abc", 0),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert!(!is_hash("xyz"));
    }

    #[test]
    fn category_folders() {
        let tv = Category {
            save_path: "/Media/TV".into(),
        };
        assert_eq!(category_dir("/", "tv", &tv), "/Media/TV");
        assert_eq!(category_dir("/", "tv", &Category::default()), "/tv");
        assert_eq!(
            category_dir("/来自:离线下载", "tv", &Category::default()),
            "/来自:离线下载/tv"
        );
    }
}
