//! The watch folder ([`crate::ServeConfig::watch`]): files dropped into a folder
//! become downloads.
//!
//! The folder is looked at every [`POLL`]. What is read:
//!
//! - `*.torrent`: a torrent (at most [`MAX_TORRENT_BYTES`]);
//! - `*.magnet`: a file holding a magnet link (its first non-empty line);
//! - `*.url`, `*.txt`: links, one a line (blank lines and `#` comments skipped); a
//!   `.url` may be a Windows shortcut (`[InternetShortcut]` with `URL=...`), whose
//!   `URL=` lines are the links. At most [`MAX_LINK_FILE_BYTES`].
//!
//! Other files, hidden files (`.name`), partial downloads (`*.part`, `*.crdownload`,
//! `*.tmp`, `*~`) and folders are left alone. A file is read only once it is stable:
//! its size and modification time the same at two looks in a row.
//!
//! Every download of a file is decided by the drive's rules first
//! ([`crate::Drive::accept`]); if one is refused, or the file is unreadable, too large
//! or holds nothing, nothing of it is added and it is moved to `DIR/.failed/` with a
//! `<name>.reason` text file beside it. Otherwise each download is added to the task
//! store (committed) with the file's `name|size|mtime` (and its link's position) in
//! its row, and only then is the file moved to `DIR/.submitted/`. A stop between the
//! two leaves the file in place; the next look finds its rows by that record and only
//! moves it: a file is never added twice. A name already taken in `.submitted/` or
//! `.failed/` gets a `.1`, `.2`... before its extension.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use offline_proto::aria2::{AddRequest, Source};
use offline_proto::torrent::MAX_TORRENT_BYTES;
use tracing::{info, warn};

use crate::{Drive, Gateway};

/// How often the folder is looked at.
pub const POLL: Duration = Duration::from_secs(1);
/// The largest link file (`.magnet`, `.url`, `.txt`) read, in bytes: 1 MiB.
pub const MAX_LINK_FILE_BYTES: u64 = 1 << 20;
/// Where added files go, under the watched folder.
pub const SUBMITTED: &str = ".submitted";
/// Where files that could not be added go, under the watched folder.
pub const FAILED: &str = ".failed";

/// What a file in the folder is, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Torrent,
    Magnet,
    Links,
}

fn kind_of(name: &str) -> Option<Kind> {
    if name.starts_with('.') || name.ends_with('~') {
        return None;
    }
    let (_, ext) = name.rsplit_once('.')?;
    match ext.to_ascii_lowercase().as_str() {
        "torrent" => Some(Kind::Torrent),
        "magnet" => Some(Kind::Magnet),
        "url" | "txt" => Some(Kind::Links),
        _ => None,
    }
}

/// The links of a link file: a magnet file's first line, a shortcut's `URL=` lines,
/// or every line that is not blank or a `#` comment.
fn links_of(kind: Kind, text: &str) -> Vec<String> {
    let lines = text
        .lines()
        .map(|l| l.trim().trim_start_matches('\u{feff}'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    if kind == Kind::Magnet {
        return lines.take(1).map(str::to_owned).collect();
    }
    let lines: Vec<&str> = lines.collect();
    let shortcut = lines
        .iter()
        .any(|l| l.eq_ignore_ascii_case("[InternetShortcut]"));
    if shortcut {
        return lines
            .iter()
            .filter_map(|l| {
                let (key, value) = l.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("URL")
                    .then(|| value.trim().to_owned())
            })
            .filter(|v| !v.is_empty())
            .collect();
    }
    lines.into_iter().map(str::to_owned).collect()
}

/// A file's size and modification time, as two looks compare them.
type Stamp = (u64, SystemTime);

fn stamp(meta: &std::fs::Metadata) -> Stamp {
    (
        meta.len(),
        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    )
}

/// The record a file's rows carry: `name|size|mtime` (nanoseconds since the epoch).
fn record_of(name: &str, (size, modified): Stamp) -> String {
    let nanos = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{name}|{size}|{nanos}")
}

/// `dir/name`, or `dir/stem.N.ext` for the first `N` not taken.
fn free_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = name
        .rsplit_once('.')
        .map_or((name, String::new()), |(s, e)| (s, format!(".{e}")));
    (1u32..)
        .map(|n| dir.join(format!("{stem}.{n}{ext}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Moves `path` into `dir/sub/`; the new path.
fn move_into(dir: &Path, sub: &str, path: &Path, name: &str) -> std::io::Result<PathBuf> {
    let target_dir = dir.join(sub);
    std::fs::create_dir_all(&target_dir)?;
    let target = free_path(&target_dir, name);
    std::fs::rename(path, &target)?;
    Ok(target)
}

/// Moves `path` to `.failed/` with its reason beside it.
fn fail(dir: &Path, path: &Path, name: &str, reason: &str) {
    warn!(file = %path.display(), %reason, "watch folder: not added");
    match move_into(dir, FAILED, path, name) {
        Ok(moved) => {
            let mut reason_path = moved.into_os_string();
            reason_path.push(".reason");
            if let Err(e) = std::fs::write(&reason_path, format!("{reason}\n")) {
                warn!(error = %e, "watch folder: cannot write the reason file");
            }
        }
        Err(e) => warn!(error = %e, file = %path.display(), "watch folder: cannot move to .failed"),
    }
}

impl<D: Drive> Gateway<D> {
    /// Watches `dir` forever (see the [module docs](self)).
    pub(crate) async fn watch(&self, dir: PathBuf) {
        let mut last: std::collections::HashMap<PathBuf, Stamp> = Default::default();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) => {
                    warn!(error = %e, dir = %dir.display(), "watch folder: cannot read it");
                    continue;
                }
            };
            let mut now = std::collections::HashMap::new();
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(kind) = kind_of(&name) else {
                    continue;
                };
                let Ok(meta) = entry.metadata() else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                let seen = stamp(&meta);
                // Read once it has not changed between two looks.
                if last.get(&path) == Some(&seen) {
                    self.take(&dir, &path, &name, kind, seen);
                } else {
                    now.insert(path, seen);
                }
            }
            last = now;
        }
    }

    /// Adds one stable file's downloads and moves it.
    fn take(&self, dir: &Path, path: &Path, name: &str, kind: Kind, seen: Stamp) {
        let cap = match kind {
            Kind::Torrent => MAX_TORRENT_BYTES as u64,
            Kind::Magnet | Kind::Links => MAX_LINK_FILE_BYTES,
        };
        if seen.0 > cap {
            fail(
                dir,
                path,
                name,
                &format!("{} bytes: larger than {cap} bytes, not read", seen.0),
            );
            return;
        }
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                fail(dir, path, name, &format!("cannot read it: {e}"));
                return;
            }
        };
        let sources = match kind {
            Kind::Torrent => vec![Source::Torrent {
                bytes,
                web_seeds: Vec::new(),
            }],
            Kind::Magnet | Kind::Links => {
                let Ok(text) = String::from_utf8(bytes) else {
                    fail(dir, path, name, "not UTF-8 text");
                    return;
                };
                let links = links_of(kind, &text);
                if links.is_empty() {
                    fail(dir, path, name, "it holds no link");
                    return;
                }
                links.into_iter().map(|l| Source::Uris(vec![l])).collect()
            }
        };
        let record = record_of(name, seen);
        let requests: Vec<AddRequest> = sources
            .into_iter()
            .map(|source| AddRequest {
                source,
                dir: None,
                out: None,
                position: None,
            })
            .collect();
        // Every download is decided before any is added: all or nothing.
        let mut accepted = Vec::with_capacity(requests.len());
        let mut refused = Vec::new();
        for (i, request) in requests.iter().enumerate() {
            match self.shared.drive.accept(request) {
                Ok(a) => accepted.push(a),
                Err(e) => refused.push(if requests.len() == 1 {
                    e.0
                } else {
                    format!("link {}: {}", i + 1, e.0)
                }),
            }
        }
        if !refused.is_empty() {
            fail(dir, path, name, &refused.join("\n"));
            return;
        }
        let added = {
            let mut store = self.store();
            let mut added = 0;
            let mut failed = None;
            for (i, (request, accepted)) in requests.into_iter().zip(accepted).enumerate() {
                let key = format!("{record}#{i}");
                if store.watched.contains(&key) {
                    continue; // added before a stop, the file not yet moved
                }
                match store.add(request, accepted, Some(&key)) {
                    Ok(_) => added += 1,
                    Err(e) => {
                        failed = Some(e.0);
                        break;
                    }
                }
            }
            match failed {
                // The store could not record it: left in place, tried again.
                Some(e) => {
                    warn!(error = %e, file = %path.display(), "watch folder: cannot record it");
                    return;
                }
                None => added,
            }
        };
        self.shared.wake.notify_one();
        info!(file = %path.display(), added, "watch folder: added");
        if let Err(e) = move_into(dir, SUBMITTED, path, name) {
            warn!(error = %e, file = %path.display(), "watch folder: added, but cannot move it to .submitted");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_links() {
        assert_eq!(kind_of("a.torrent"), Some(Kind::Torrent));
        assert_eq!(kind_of("A.MAGNET"), Some(Kind::Magnet));
        assert_eq!(kind_of("l.url"), Some(Kind::Links));
        assert_eq!(kind_of("l.txt"), Some(Kind::Links));
        assert_eq!(kind_of(".hidden.torrent"), None);
        assert_eq!(kind_of("a.torrent.part"), None);
        assert_eq!(kind_of("a.torrent~"), None);
        assert_eq!(kind_of("noext"), None);
        let shortcut = "[InternetShortcut]\r\nURL=https://example.com/a.bin\r\nIconIndex=0\r\n";
        assert_eq!(
            links_of(Kind::Links, shortcut),
            ["https://example.com/a.bin"]
        );
        assert_eq!(
            links_of(Kind::Links, "# mine\nhttp://a/1\n\n  http://a/2  \n"),
            ["http://a/1", "http://a/2"]
        );
        assert_eq!(
            links_of(Kind::Magnet, "\nmagnet:?xt=urn:btih:00\nignored\n"),
            ["magnet:?xt=urn:btih:00"]
        );
    }

    #[test]
    fn free_names() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(free_path(dir.path(), "a.txt"), dir.path().join("a.txt"));
        std::fs::write(dir.path().join("a.txt"), "").unwrap();
        assert_eq!(free_path(dir.path(), "a.txt"), dir.path().join("a.1.txt"));
    }
}
