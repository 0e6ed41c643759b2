//! A task as qBittorrent's torrent objects: `torrents/info` (and `sync/maindata`'s
//! `torrents`), `torrents/properties`, `torrents/files`, `torrents/trackers`.
//!
//! The fields and their JSON types are qBittorrent v4.6.7's (source,
//! `src/webui/api/serialize/serialize_torrent.{h,cpp}` and
//! `src/webui/api/torrentscontroller.cpp`), in its order: alphabetical, as Qt's
//! `QJsonObject` writes its keys. Numbers Qt holds as doubles are written as Qt
//! writes them: without a fraction when they are whole (`1`, `-1`, not `1.0`).

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};

use crate::aria2::status::DEFAULT_PIECE_LENGTH;
use crate::aria2::{Progress, TaskState, TaskView};
use crate::catalog::join;
use crate::catalog::report_path;

/// qBittorrent's `MAX_ETA` (`src/base/bittorrent/torrent.h`): "unknown", 100 days.
pub const MAX_ETA: i64 = 8_640_000;

/// What an [`TaskState::UnknownOutcome`] task reports as its error.
pub(super) const UNKNOWN_OUTCOME: &str =
    "the cloud drive's answer to the add was lost; whether it made a task is unknown";

macro_rules! fields {
    ($($variant:ident => $name:literal,)*) => {
        /// A field of a torrent object, in qBittorrent's (alphabetical) order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(super) enum Field { $($variant,)* }

        impl Field {
            /// Every field, in order.
            pub(super) const ALL: &'static [Field] = &[$(Field::$variant,)*];

            /// Its JSON key.
            pub(super) fn name(self) -> &'static str {
                match self { $(Field::$variant => $name,)* }
            }

            /// The field with JSON key `name`.
            pub(super) fn from_name(name: &str) -> Option<Field> {
                match name { $($name => Some(Field::$variant),)* _ => None }
            }
        }
    };
}

fields! {
    AddedOn => "added_on",
    AmountLeft => "amount_left",
    AutoTmm => "auto_tmm",
    Availability => "availability",
    Category => "category",
    Completed => "completed",
    CompletionOn => "completion_on",
    ContentPath => "content_path",
    DlLimit => "dl_limit",
    Dlspeed => "dlspeed",
    DownloadPath => "download_path",
    Downloaded => "downloaded",
    DownloadedSession => "downloaded_session",
    Eta => "eta",
    FLPiecePrio => "f_l_piece_prio",
    ForceStart => "force_start",
    Hash => "hash",
    InactiveSeedingTimeLimit => "inactive_seeding_time_limit",
    InfohashV1 => "infohash_v1",
    InfohashV2 => "infohash_v2",
    LastActivity => "last_activity",
    MagnetUri => "magnet_uri",
    MaxInactiveSeedingTime => "max_inactive_seeding_time",
    MaxRatio => "max_ratio",
    MaxSeedingTime => "max_seeding_time",
    Name => "name",
    NumComplete => "num_complete",
    NumIncomplete => "num_incomplete",
    NumLeechs => "num_leechs",
    NumSeeds => "num_seeds",
    Priority => "priority",
    Progress => "progress",
    Ratio => "ratio",
    RatioLimit => "ratio_limit",
    RootPath => "root_path",
    SavePath => "save_path",
    SeedingTime => "seeding_time",
    SeedingTimeLimit => "seeding_time_limit",
    SeenComplete => "seen_complete",
    SeqDl => "seq_dl",
    Size => "size",
    State => "state",
    SuperSeeding => "super_seeding",
    Tags => "tags",
    TimeActive => "time_active",
    TotalSize => "total_size",
    Tracker => "tracker",
    TrackersCount => "trackers_count",
    UpLimit => "up_limit",
    Uploaded => "uploaded",
    UploadedSession => "uploaded_session",
    Upspeed => "upspeed",
}

/// One field's value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell<'a> {
    /// A whole number.
    Int(i64),
    /// A number Qt holds as a double.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(Cow<'a, str>),
}

impl Cell<'_> {
    /// The order `torrents/info?sort=` uses (qBittorrent compares values of the same
    /// type: numbers by value, strings by code point, `false` before `true`).
    pub(super) fn cmp(&self, other: &Cell<'_>) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (Cell::Int(a), Cell::Int(b)) => a.cmp(b),
            (Cell::Float(a), Cell::Float(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (Cell::Bool(a), Cell::Bool(b)) => a.cmp(b),
            (Cell::Str(a), Cell::Str(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }

    /// A 64-bit summary that changes when the value changes (numbers exactly, strings
    /// by their SipHash): what `sync/maindata` keeps of what it sent.
    pub(super) fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        match self {
            Cell::Int(i) => u64::from_ne_bytes(i.to_ne_bytes()),
            Cell::Float(f) => f.to_bits(),
            Cell::Bool(b) => u64::from(*b),
            Cell::Str(s) => {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                s.hash(&mut hasher);
                hasher.finish()
            }
        }
    }
}

impl Serialize for Cell<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Int(i) => serializer.serialize_i64(*i),
            Cell::Float(f) => match whole(*f) {
                Some(i) => serializer.serialize_i64(i),
                None => serializer.serialize_f64(*f),
            },
            Cell::Bool(b) => serializer.serialize_bool(*b),
            Cell::Str(s) => serializer.serialize_str(s),
        }
    }
}

/// `f` as Qt writes a whole double: an integer.
fn whole(f: f64) -> Option<i64> {
    #[allow(clippy::cast_possible_truncation)]
    let i = f as i64;
    #[allow(clippy::cast_precision_loss)]
    let exact = f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 && i as f64 == f;
    exact.then_some(i)
}

/// A double as Qt writes it in JSON.
pub(super) fn double(f: f64) -> Value {
    match whole(f) {
        Some(i) => Value::from(i),
        None => Value::from(f),
    }
}

/// A `u64` as a JSON integer (qBittorrent's are signed 64-bit; larger saturate).
pub(super) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A task read as a qBittorrent torrent: the view, and the figures every field uses.
pub(super) struct Row<'a> {
    /// The task.
    pub(super) view: &'a TaskView,
    /// `save_path`: the task's drive folder as apps see it.
    save_path: String,
    /// `size`: the bytes of the files to download (selected ones), in bytes.
    pub(super) size: u64,
    /// `total_size`: the bytes of every file.
    pub(super) total_size: u64,
    /// `completed`: the bytes done of `size`.
    pub(super) done: u64,
    /// `state`.
    pub(super) state: &'static str,
}

impl<'a> Row<'a> {
    /// `view` with paths reported under `prefix`.
    pub(super) fn new(view: &'a TaskView, prefix: Option<&'a str>) -> Self {
        let (size, total_size) = if view.files.is_empty() {
            let total = view.total_length();
            (total, total)
        } else {
            let selected = view.files.iter().filter(|f| f.selected).map(|f| f.length);
            let all = view.files.iter().map(|f| f.length);
            (
                selected.fold(0u64, u64::saturating_add),
                all.fold(0u64, u64::saturating_add),
            )
        };
        let done = match (&view.state, view.progress) {
            (TaskState::Complete, _) => size,
            (_, Progress::Bytes(bytes)) => bytes.min(size),
            (_, Progress::Percent(pct)) => {
                let pct = u128::from(pct.min(100));
                u64::try_from(u128::from(size) * pct / 100).unwrap_or(size)
            }
        };
        Self {
            view,
            save_path: report_path(prefix, &view.dir),
            size,
            total_size,
            done,
            state: state(view),
        }
    }

    /// `progress`, 0 to 1: the share of `size` done (a drive's percent when the size
    /// is not known yet; 1 once complete).
    pub(super) fn progress(&self) -> f64 {
        if self.view.state == TaskState::Complete {
            return 1.0;
        }
        if self.size > 0 {
            #[allow(clippy::cast_precision_loss)]
            return self.done as f64 / self.size as f64;
        }
        match self.view.progress {
            Progress::Percent(pct) => f64::from(pct.min(100)) / 100.0,
            Progress::Bytes(_) => 0.0,
        }
    }

    /// `dlspeed`: the task's speed while the drive fetches it, else 0 (bytes/s).
    pub(super) fn speed(&self) -> u64 {
        match self.view.state {
            TaskState::Running => self.view.download_speed,
            _ => 0,
        }
    }

    /// `eta` in seconds: the bytes left at the current speed while running with a
    /// speed and a size, else [`MAX_ETA`] (qBittorrent's "unknown", also what it
    /// reports for paused and finished torrents).
    pub(super) fn eta(&self) -> i64 {
        let speed = self.speed();
        if speed == 0 || self.size == 0 {
            return MAX_ETA;
        }
        int((self.size - self.done).div_ceil(speed)).min(MAX_ETA)
    }

    /// `name`: the task's name, else the torrent's, else a magnet link's `dn`, else
    /// an http(s) link's last path segment (percent-decoded), else the hash (as
    /// qBittorrent names a magnet before its metadata).
    pub(super) fn name(&self) -> Cow<'a, str> {
        let view = self.view;
        if let Some(name) = view.name.as_deref().filter(|n| !n.is_empty()) {
            return Cow::Borrowed(name);
        }
        if let Some(name) = view.torrent.as_ref().and_then(|t| t.name.as_deref()) {
            return Cow::Borrowed(name);
        }
        if let Some(dn) = magnet(view).and_then(|m| magnet_params(m, "dn").into_iter().next()) {
            return Cow::Owned(dn);
        }
        if let Some(name) = view.uris.first().and_then(|u| link_file_name(u)) {
            return Cow::Owned(name);
        }
        Cow::Borrowed(&view.hash)
    }

    /// The file name a task without a file list stands for, when known.
    fn file_name(&self) -> Option<&'a str> {
        let view = self.view;
        view.name
            .as_deref()
            .or_else(|| view.torrent.as_ref().and_then(|t| t.name.as_deref()))
            .filter(|n| !n.is_empty())
    }

    /// `save_path`: the task's drive folder as apps see it.
    pub(super) fn save_path(&self) -> &str {
        &self.save_path
    }

    /// Whether the files are not known yet (a magnet link before its metadata):
    /// qBittorrent's `!hasMetadata()`. A complete task has its metadata, even when the
    /// drive did not list its files: then it stands for one file or folder named as
    /// the task, in its save path (where the drive stores it).
    fn no_metadata(&self) -> bool {
        self.view.files.is_empty()
            && magnet(self.view).is_some()
            && self.view.state != TaskState::Complete
    }

    /// `content_path` (qBittorrent's `TorrentImpl::contentPath`): one file: its path;
    /// more: their common root folder, or the save path when they have none; no
    /// metadata: `""`.
    pub(super) fn content_path(&self) -> String {
        let files = &self.view.files;
        match files.len() {
            _ if self.no_metadata() => String::new(),
            0 => self
                .file_name()
                .map_or_else(String::new, |name| join(self.save_path(), name)),
            1 => join(self.save_path(), &files[0].path),
            _ => {
                let root = self.root_path();
                if root.is_empty() {
                    self.save_path.clone()
                } else {
                    root
                }
            }
        }
    }

    /// `root_path` (qBittorrent's `TorrentImpl::rootPath`): the save path joined with
    /// the files' common first folder, `""` when they have none.
    pub(super) fn root_path(&self) -> String {
        let view = self.view;
        if view.files.is_empty() {
            return match &view.torrent {
                Some(t) if t.multi_file && !self.no_metadata() => t
                    .name
                    .as_deref()
                    .map_or_else(String::new, |name| join(self.save_path(), name)),
                _ => String::new(),
            };
        }
        root_folder(view.files.iter().map(|f| f.path.as_str()))
            .map_or_else(String::new, |root| join(self.save_path(), root))
    }

    /// `magnet_uri`: the magnet link the task was added with; for a torrent file, one
    /// made from its infohash, name and trackers (BEP 9); `""` for other links (they
    /// have no magnet link).
    pub(super) fn magnet_uri(&self) -> Cow<'a, str> {
        let view = self.view;
        if let Some(link) = magnet(view) {
            return Cow::Borrowed(link);
        }
        let Some(hash) = view.torrent.as_ref().and_then(|t| t.info_hash) else {
            return Cow::Borrowed("");
        };
        let mut link = format!("magnet:?xt=urn:btih:{hash}");
        let name = self.name();
        if name != view.hash {
            link.push_str("&dn=");
            percent_encode_into(&name, &mut link);
        }
        for (_, tracker) in self.trackers() {
            link.push_str("&tr=");
            percent_encode_into(&tracker, &mut link);
        }
        Cow::Owned(link)
    }

    /// The announce URLs with their tiers (from 0): the torrent's, else a magnet
    /// link's `tr` parameters (one tier each, as libtorrent reads them).
    pub(super) fn trackers(&self) -> Vec<(i64, Cow<'a, str>)> {
        let mut out: Vec<(i64, Cow<'a, str>)> = Vec::new();
        if let Some(torrent) = &self.view.torrent {
            for (tier, urls) in torrent.announce_list.iter().enumerate() {
                for url in urls {
                    if !out.iter().any(|(_, u)| u == url) {
                        out.push((int(tier as u64), Cow::Borrowed(url.as_str())));
                    }
                }
            }
        }
        if out.is_empty() {
            if let Some(link) = magnet(self.view) {
                for (tier, url) in magnet_params(link, "tr").into_iter().enumerate() {
                    if !out.iter().any(|(_, u)| *u == url) {
                        out.push((int(tier as u64), Cow::Owned(url)));
                    }
                }
            }
        }
        out
    }

    /// How many announce URLs [`Row::trackers`] lists (without building the list for
    /// a torrent's).
    fn trackers_count(&self) -> usize {
        if let Some(torrent) = &self.view.torrent {
            let mut seen: Vec<&str> = Vec::new();
            for url in torrent.announce_list.iter().flatten() {
                if !seen.contains(&url.as_str()) {
                    seen.push(url);
                }
            }
            if !seen.is_empty() {
                return seen.len();
            }
        }
        if magnet(self.view).is_some() {
            self.trackers().len()
        } else {
            0
        }
    }

    /// When it completed (seconds since the Unix epoch), `-1` until then.
    fn completion_on(&self) -> i64 {
        match (&self.view.state, self.view.completed_on) {
            (TaskState::Complete, Some(at)) => at,
            _ => -1,
        }
    }

    /// Seconds the drive worked on it: from added to ended once it ended, else `0`
    /// (the request's clock may not be Unix time, so a running task's age is unknown).
    pub(super) fn time_active(&self) -> i64 {
        match self.view.completed_on {
            Some(end) if self.view.added_on > 0 => (end - self.view.added_on).max(0),
            _ => 0,
        }
    }

    /// Field `field`'s value.
    pub(super) fn value(&self, field: Field) -> Cell<'a> {
        let view = self.view;
        let s = |text: &'a str| Cell::Str(Cow::Borrowed(text));
        let owned = |text: String| Cell::Str(Cow::Owned(text));
        match field {
            Field::AddedOn => Cell::Int(view.added_on),
            Field::AmountLeft => Cell::Int(int(self.size - self.done)),
            Field::AutoTmm
            | Field::FLPiecePrio
            | Field::ForceStart
            | Field::SeqDl
            | Field::SuperSeeding => Cell::Bool(false),
            Field::Availability => Cell::Float(-1.0),
            Field::Category => s(view.category.as_deref().unwrap_or("")),
            Field::Completed | Field::Downloaded | Field::DownloadedSession => {
                Cell::Int(int(self.done))
            }
            Field::CompletionOn => Cell::Int(self.completion_on()),
            Field::ContentPath => owned(self.content_path()),
            Field::DlLimit | Field::UpLimit => Cell::Int(-1),
            Field::Dlspeed => Cell::Int(int(self.speed())),
            Field::DownloadPath | Field::InfohashV2 | Field::Tracker => s(""),
            Field::Eta => Cell::Int(self.eta()),
            Field::Hash | Field::InfohashV1 => s(&view.hash),
            Field::InactiveSeedingTimeLimit | Field::SeedingTimeLimit => Cell::Int(-2),
            Field::LastActivity => Cell::Int(view.completed_on.unwrap_or(view.added_on)),
            Field::MagnetUri => Cell::Str(self.magnet_uri()),
            Field::MaxInactiveSeedingTime | Field::MaxSeedingTime => Cell::Int(-1),
            // A ratio limit of 0, met at once (the drive does not seed): Sonarr and
            // Radarr may remove a completed download (`HasReachedSeedLimit`).
            Field::MaxRatio | Field::RatioLimit | Field::Ratio => Cell::Float(0.0),
            Field::Name => Cell::Str(self.name()),
            Field::NumComplete
            | Field::NumIncomplete
            | Field::NumLeechs
            | Field::NumSeeds
            | Field::Priority
            | Field::SeedingTime
            | Field::Uploaded
            | Field::UploadedSession
            | Field::Upspeed => Cell::Int(0),
            Field::Progress => Cell::Float(self.progress()),
            Field::RootPath => owned(self.root_path()),
            Field::SavePath => owned(self.save_path.clone()),
            Field::SeenComplete => Cell::Int(self.completion_on()),
            Field::Size => Cell::Int(int(self.size)),
            Field::State => s(self.state),
            Field::Tags => owned(sorted_tags(view.tags.iter().map(String::as_str)).join(", ")),
            Field::TimeActive => Cell::Int(self.time_active()),
            Field::TotalSize => Cell::Int(int(self.total_size)),
            Field::TrackersCount => Cell::Int(int(self.trackers_count() as u64)),
        }
    }
}

/// A row with every field (`torrents/info`).
impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(Field::ALL.len()))?;
        for &field in Field::ALL {
            map.serialize_entry(field.name(), &self.value(field))?;
        }
        map.end()
    }
}

/// The `state` string (see the table in [`super`]'s docs).
pub(super) fn state(view: &TaskView) -> &'static str {
    let no_metadata = || view.files.is_empty() && magnet(view).is_some();
    match &view.state {
        TaskState::Queued if view.held => "pausedDL",
        TaskState::Queued => "queuedDL",
        TaskState::Submitting if no_metadata() => "metaDL",
        TaskState::Submitting => "queuedDL",
        TaskState::Running if view.download_speed > 0 => "downloading",
        TaskState::Running if no_metadata() && view.percent() == 0 => "metaDL",
        TaskState::Running => "stalledDL",
        TaskState::Complete => "pausedUP",
        TaskState::Failed(_) | TaskState::UnknownOutcome => "error",
        TaskState::Removed => "unknown",
    }
}

/// Why the task failed, for a failed one.
pub(super) fn failure(view: &TaskView) -> Option<&str> {
    match &view.state {
        TaskState::Failed(failure) => Some(&failure.message),
        TaskState::UnknownOutcome => Some(UNKNOWN_OUTCOME),
        _ => None,
    }
}

/// The magnet link the task was added with.
fn magnet(view: &TaskView) -> Option<&str> {
    view.uris.first().map(String::as_str).filter(|u| {
        u.get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("magnet:"))
    })
}

/// The file name an http(s) or ftp link ends in: its last path segment,
/// percent-decoded, when there is one.
fn link_file_name(link: &str) -> Option<String> {
    let (scheme, rest) = link.split_once("://")?;
    if !["http", "https", "ftp"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
    {
        return None;
    }
    let path = rest.split(['?', '#']).next()?;
    let (_, path) = path.split_once('/')?;
    let last = path.rsplit('/').next()?;
    if last.is_empty() {
        return None;
    }
    let decoded: String =
        form_urlencoded::parse(format!("n={}", last.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
    (!decoded.trim().is_empty()).then_some(decoded)
}

/// The decoded values of parameter `name` of a magnet link, in order.
fn magnet_params(link: &str, name: &str) -> Vec<String> {
    let query = link.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The files' common first folder (qBittorrent's `Path::findRootFolder`): none when
/// a file has no folder or two files start differently.
fn root_folder<'p>(paths: impl Iterator<Item = &'p str>) -> Option<&'p str> {
    let mut root = None;
    for path in paths {
        let (first, _) = path.trim_start_matches('/').split_once('/')?;
        match root {
            None => root = Some(first),
            Some(r) if r != first => return None,
            Some(_) => {}
        }
    }
    root
}

/// Appends `text` with everything but RFC 3986 unreserved characters percent-encoded.
fn percent_encode_into(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
        }
    }
}

/// The piece length the piece figures use: the torrent's, else 1 MiB (aria2's
/// default, as the aria2 layer reports).
fn piece_length(view: &TaskView) -> u64 {
    view.torrent
        .as_ref()
        .and_then(|t| t.piece_length)
        .filter(|&p| p > 0)
        .unwrap_or(DEFAULT_PIECE_LENGTH)
}

/// `torrents/files`' array (source, `TorrentsController::filesAction`): per file
/// `index` (from 0), `name` (its path relative to the save path, root folder
/// included, `/`-separated), `size`, `progress` (0 to 1: the task's for a task of
/// one file; with more, 1 for a selected file of a complete task and 0 otherwise: the
/// drive reports no per-file progress), `priority` (1 selected, 0 not downloaded),
/// `piece_range` (first and last piece, inclusive), `availability` (`-1`: unknown),
/// and `is_seed` on the first file only (whether the task is complete). Empty while
/// the files are not known (a magnet link before its metadata), as qBittorrent
/// without metadata. `indexes` (`|`-separated), when given, picks files.
///
/// # Errors
///
/// qBittorrent's 409 messages for an index that is not a number or is out of range.
pub(super) fn files(row: &Row<'_>, indexes: Option<&str>) -> Result<Vec<Value>, String> {
    let view = row.view;
    let piece = piece_length(view);
    let complete = view.state == TaskState::Complete;
    let mut list: Vec<(String, u64, bool)> = view
        .files
        .iter()
        .map(|f| {
            (
                f.path.trim_start_matches('/').to_owned(),
                f.length,
                f.selected,
            )
        })
        .collect();
    if list.is_empty() && !row.no_metadata() {
        if let Some(name) = row.file_name() {
            list.push((name.to_owned(), row.total_size, true));
        }
    }
    let single = list.len() == 1;
    let mut offsets = Vec::with_capacity(list.len());
    let mut offset = 0u64;
    for (_, length, _) in &list {
        offsets.push(offset);
        offset = offset.saturating_add(*length);
    }
    let chosen: Vec<usize> = match indexes {
        None => (0..list.len()).collect(),
        Some(text) => text
            .split('|')
            .map(|part| match part.trim().parse::<i32>() {
                Ok(i) if i >= 0 && (i as usize) < list.len() => Ok(i as usize),
                Ok(i) if i >= 0 => Err(format!("Index {part} is out of bounds.")),
                _ => Err(format!("\"{part}\" is not a valid file index.")),
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(chosen
        .into_iter()
        .map(|i| {
            let (name, length, selected) = &list[i];
            let progress = match () {
                () if single => row.progress(),
                () if complete && *selected => 1.0,
                () => 0.0,
            };
            let first = offsets[i] / piece;
            let last = (offsets[i] + length.saturating_sub(1).min(*length)) / piece;
            let last = if *length == 0 { first } else { last.max(first) };
            let mut file = Map::new();
            file.insert("availability".into(), double(-1.0));
            file.insert("index".into(), json!(i));
            if i == 0 {
                file.insert("is_seed".into(), json!(complete));
            }
            file.insert("name".into(), json!(name));
            file.insert("piece_range".into(), json!([int(first), int(last)]));
            file.insert("priority".into(), json!(u8::from(*selected)));
            file.insert("progress".into(), double(progress));
            file.insert("size".into(), json!(int(*length)));
            Value::Object(file)
        })
        .collect())
}

/// `torrents/properties`' object (source, `TorrentsController::propertiesAction`).
/// Transfer figures are the drive's (`total_downloaded` = the bytes done), upload
/// figures, peers and connections `0`, limits `-1` (none); `comment` is the
/// torrent's, with a failed task's reason put first (qBittorrent's API has no other
/// place an app reads an error's text from; see the module docs).
pub(super) fn properties(row: &Row<'_>) -> Value {
    let view = row.view;
    let piece = piece_length(view);
    let pieces = row.total_size.div_ceil(piece);
    let have = if view.state == TaskState::Complete && row.size == row.total_size {
        pieces
    } else {
        (row.done / piece).min(pieces)
    };
    let torrent = view.torrent.as_ref();
    let mut comment = torrent.and_then(|t| t.comment.clone()).unwrap_or_default();
    if let Some(reason) = failure(view) {
        comment = if comment.is_empty() {
            reason.to_owned()
        } else {
            format!("{reason}\n\n{comment}")
        };
    }
    let elapsed = row.time_active();
    let avg = if elapsed > 0 {
        int(row.done) / elapsed
    } else {
        0
    };
    let metadata = !row.no_metadata();
    let completion = row.completion_on();
    let creation = match torrent.and_then(|t| t.creation_date) {
        Some(date) if metadata => date,
        _ => -1,
    };
    json!({
        "addition_date": view.added_on,
        "comment": comment,
        "completion_date": completion,
        "created_by": "",
        "creation_date": creation,
        "dl_limit": -1,
        "dl_speed": int(row.speed()),
        "dl_speed_avg": avg,
        "download_path": "",
        "eta": row.eta(),
        "hash": view.hash,
        "infohash_v1": view.hash,
        "infohash_v2": "",
        "is_private": false,
        "last_seen": completion,
        "name": row.name(),
        "nb_connections": 0,
        "nb_connections_limit": -1,
        "peers": 0,
        "peers_total": 0,
        "piece_size": int(piece),
        "pieces_have": int(have),
        "pieces_num": int(pieces),
        "reannounce": 0,
        "save_path": row.save_path(),
        "seeding_time": 0,
        "seeds": 0,
        "seeds_total": 0,
        "share_ratio": 0,
        "time_elapsed": elapsed,
        "total_downloaded": int(row.done),
        "total_downloaded_session": int(row.done),
        "total_size": int(row.total_size),
        "total_uploaded": 0,
        "total_uploaded_session": 0,
        "total_wasted": 0,
        "up_limit": -1,
        "up_speed": 0,
        "up_speed_avg": 0,
    })
}

/// qBittorrent's tracker statuses (`TrackerEntry::Status`): 0 disabled, 1 not
/// contacted yet.
const TRACKER_DISABLED: u8 = 0;
const TRACKER_NOT_CONTACTED: u8 = 1;

/// `torrents/trackers`' array (source, `TorrentsController::trackersAction` and
/// `getStickyTrackers`): the `** [DHT] **`, `** [PeX] **` and `** [LSD] **` rows
/// (tier `-1`, status 0 "disabled": this daemon runs none of them), then one row per
/// announce URL (its tier, status 1 "not contacted yet": the drive, not this daemon,
/// talks to trackers), every count 0. A failed task's reason is every row's `msg`.
pub(super) fn trackers(row: &Row<'_>) -> Vec<Value> {
    let msg = failure(row.view).unwrap_or("");
    let entry = |url: &str, tier: i64, status: u8| {
        json!({
            "msg": msg,
            "num_downloaded": 0,
            "num_leeches": 0,
            "num_peers": 0,
            "num_seeds": 0,
            "status": status,
            "tier": tier,
            "url": url,
        })
    };
    let mut rows = vec![
        entry("** [DHT] **", -1, TRACKER_DISABLED),
        entry("** [PeX] **", -1, TRACKER_DISABLED),
        entry("** [LSD] **", -1, TRACKER_DISABLED),
    ];
    for (tier, url) in row.trackers() {
        rows.push(entry(&url, tier, TRACKER_NOT_CONTACTED));
    }
    rows
}

/// Tags in qBittorrent's order: its `TagSet` is sorted case-insensitively
/// (`TagLessThan`; its natural order of digit runs is not copied).
pub(super) fn sorted_tags<'t>(tags: impl Iterator<Item = &'t str>) -> Vec<&'t str> {
    let mut sorted: Vec<&str> = tags.collect();
    sorted.sort_by_cached_key(|t| (t.to_lowercase(), *t));
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_in_qts_order_and_unique() {
        let names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for &f in Field::ALL {
            assert_eq!(Field::from_name(f.name()), Some(f));
        }
    }

    #[test]
    fn doubles_are_written_as_qt_writes_them() {
        assert_eq!(double(1.0).to_string(), "1");
        assert_eq!(double(-1.0).to_string(), "-1");
        assert_eq!(double(0.25).to_string(), "0.25");
        assert_eq!(serde_json::to_string(&Cell::Float(0.5)).unwrap(), "0.5");
        assert_eq!(serde_json::to_string(&Cell::Float(0.0)).unwrap(), "0");
    }

    #[test]
    fn link_file_names() {
        let name = |l: &str| link_file_name(l);
        assert_eq!(
            name("https://a.example/d/My%20File.iso?x=1"),
            Some("My File.iso".into())
        );
        assert_eq!(name("http://a.example/a+b.zip"), Some("a+b.zip".into()));
        assert_eq!(name("https://a.example/"), None);
        assert_eq!(name("https://a.example"), None);
        assert_eq!(name("magnet:?xt=urn:btih:00"), None);
    }

    #[test]
    fn root_folders() {
        assert_eq!(root_folder(["a/x", "a/y/z"].into_iter()), Some("a"));
        assert_eq!(root_folder(["a/x", "b/y"].into_iter()), None);
        assert_eq!(root_folder(["a/x", "y"].into_iter()), None);
        assert_eq!(root_folder(std::iter::empty()), None);
    }
}
