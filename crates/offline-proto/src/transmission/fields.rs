//! `torrent-get`'s fields: how a [`TaskView`] reads as a Transmission torrent.
//!
//! The fields and their types are rpc-spec.md §3.3 (4.0.6 and 4.1); which ones
//! Transmission answers is `isSupportedTorrentGetField` in `libtransmission/rpcimpl.cc`
//! (4.0.6, plus 4.1's `bytes_completed`, `sequential_download` and
//! `sequential_download_from_piece`). A field name Transmission does not support is
//! skipped, as Transmission skips it. The values are written straight from the task
//! view, only for the fields asked for.
//!
//! The status mapping (Transmission's `tr_torrent_activity` numbers, rpc-spec.md §3.3
//! `status`; `error` is `tr_stat_errtype`: 0 OK, 3 local error):
//!
//! | [`TaskState`] | `status` | `isFinished` | `error` | `errorString` | `percentDone`, `leftUntilDone` | `rateDownload` | `eta` |
//! | --- | --- | --- | --- | --- | --- | --- | --- |
//! | `Queued`, [`held`](TaskView::held) | 0 stopped | false | 0 | `""` | the progress | 0 | -1 |
//! | `Queued` | 3 queued to download | false | 0 | `""` | the progress | 0 | -1 |
//! | `Submitting` | 3 queued to download | false | 0 | `""` | the progress | 0 | -1 |
//! | `Running` | 4 downloading | false | 0 | `""` | the progress | the speed | left ÷ speed, -2 without a speed or a size |
//! | `Complete` | 0 stopped | true | 0 | `""` | 1, 0 | 0 | -1 |
//! | `Failed` | 0 stopped | false | 3 | the failure's message | the progress | 0 | -1 |
//! | `UnknownOutcome` | 0 stopped | false | 3 | "the cloud drive's answer to the add was lost; whether it made a task is unknown" | the progress | 0 | -1 |
//! | `Removed` | never listed | | | | | | |
//!
//! The drive does not seed: a complete task is stopped and finished, as Transmission
//! shows a torrent that reached its seeding limit (Sonarr and Radarr read
//! `leftUntilDone` 0 with status 0, or `isFinished`, as completed). `-1` and `-2` for
//! `eta` are Transmission's `TR_ETA_NOT_AVAIL` and `TR_ETA_UNKNOWN`.
//!
//! Sizes (bytes): `totalSize` is the sum of every file's length (the task's length
//! when it has no file list); `sizeWhenDone` the sum of the selected files' (the same
//! without a list); `haveValid` and `downloadedEver` the bytes done, from the drive's
//! bytes or percentage of `sizeWhenDone` (all of it once complete); `leftUntilDone`
//! the rest; `haveUnchecked`, `corruptEver`, `uploadedEver` 0. `percentDone` is the
//! bytes done over `sizeWhenDone` (the drive's percentage while the size is unknown),
//! `percentComplete` over `totalSize`. `uploadRatio` is `-1` (`TR_RATIO_NA`) while
//! nothing was downloaded, else 0 (nothing is uploaded). `desiredAvailable` is
//! `leftUntilDone` while the drive works on the task (status 3 or 4: the drive fetches
//! it), else 0.
//!
//! Files: [`TaskView::files`] (names relative to `downloadDir`, as Transmission's),
//! or one file named after the task when the list is empty and the name known (none
//! before: Transmission lists no file for a magnet link without metadata). A file's
//! `bytesCompleted`: a single file has the task's bytes done; of several, a selected
//! file of a complete task is whole and the others 0 (the drive reports no per-file
//! progress). `wanted` is the selection (`0`/`1` in the bespoke protocol, as 4.0.2–4.0.6
//! write it; booleans in JSON-RPC 2.0, as 4.1); every priority is 0 (normal).
//!
//! Pieces: `pieceSize` is the torrent's piece length, else 1 MiB for a task with a
//! known size (aria2's default, as the aria2 layer reports) and 0 without one;
//! `pieceCount` the total size in such pieces, rounded up. `pieces` is the bitfield
//! (base64) with every bit set once complete, none before (no per-piece progress is
//! known); `availability` `-1` for each piece of a complete task (Transmission's "we
//! have it"), else 0. In JSON-RPC 2.0 each file also has `begin_piece` and `end_piece`
//! (the first piece it touches and the one after its last, from the file offsets).
//!
//! The rest:
//!
//! - `id`, `hashString`: [`TaskView::id`], [`TaskView::hash`].
//! - `name`: the drive's name, else the torrent's, else a magnet link's `dn`, else the
//!   link's last path segment, else the hash.
//! - `downloadDir`: [`TaskView::dir`] under [`Config::report_prefix`](super::Config).
//! - `labels`: the task's category (when it has one and it is not among its tags)
//!   followed by its tags.
//! - `addedDate`: [`TaskView::added_on`]; `doneDate`: [`TaskView::completed_on`] of a
//!   complete task, else 0; `activityDate`: `completed_on`, else `addedDate`;
//!   `startDate`: `addedDate` unless held (0); `editDate` 0; `secondsDownloading`:
//!   `doneDate` − `addedDate` of a complete task, else 0 (no clock is read here);
//!   `secondsSeeding` 0.
//! - `queuePosition`: the task's position among the listed tasks, from 0.
//! - `magnetLink`: the task's magnet link, else one made from the torrent's infohash,
//!   name and trackers, else `""` (a plain link has none).
//! - `comment`, `dateCreated`, `trackers`, `trackerList`, `trackerStats`: from
//!   [`TorrentInfo`] (`""`, 0, none without one). A tracker's `scrape` is its announce
//!   URL with a last segment `announce…` turned into `scrape…`, else a UDP tracker's
//!   announce URL, else `""` (Transmission's `announceToScrape`); `host` is
//!   `host:port`; `sitename` the host's second-level label, the host itself for an IP
//!   address (Transmission takes the registrable domain's first label from the public
//!   suffix list, so `www.example.co.uk` gives `example` there and `co` here).
//!   `trackerStats` say nothing was announced or scraped (counts -1, times 0).
//! - `creator`, `source`, `torrentFile`, `group`: `""`; `isPrivate`, `isStalled`,
//!   `sequential_download`: false; `bandwidthPriority` 0; `downloadLimit` and
//!   `uploadLimit` 100 (Transmission's default, not enforced), `downloadLimited`,
//!   `uploadLimited` false, `honorsSessionLimits` true; `peer-limit` and
//!   `maxConnectedPeers` 50; `seedRatioLimit` 2 and `seedRatioMode` 0 (the session's),
//!   `seedIdleLimit` 30 and `seedIdleMode` 0; every peer count 0, `peers` and
//!   `webseeds` empty, `peersFrom` all 0; `manualAnnounceTime` 0, `etaIdle` -1,
//!   `recheckProgress` 0, `sequential_download_from_piece` 0.
//! - `metadataPercentComplete`: 0 for a magnet link whose files and size the drive has
//!   not reported yet, else 1.
//! - `primary-mime-type`: the type with the most bytes among the files, by extension
//!   (a subset of the types Transmission's `mime-types.h` knows), else
//!   `application/octet-stream`.
//! - `file-count`: the number of files listed by `files`.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{json, Value};

use super::json::{Out, Style};
use crate::aria2::status::DEFAULT_PIECE_LENGTH;
use crate::aria2::{Gid, Progress, TaskState, TaskView, TorrentInfo};
use crate::catalog::report_path;

/// The message of a task whose add's answer was lost.
pub(super) const UNKNOWN_OUTCOME: &str =
    "the cloud drive's answer to the add was lost; whether it made a task is unknown";

macro_rules! fields {
    ($( $variant:ident $legacy:literal $snake:literal ;)*) => {
        /// A `torrent-get` field.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(super) enum Field { $( $variant, )* }

        /// Every field with its old and its snake_case name.
        const FIELDS: &[(Field, &str, &str)] = &[ $( (Field::$variant, $legacy, $snake), )* ];
    };
}

fields! {
    ActivityDate "activityDate" "activity_date";
    AddedDate "addedDate" "added_date";
    Availability "availability" "availability";
    BandwidthPriority "bandwidthPriority" "bandwidth_priority";
    BytesCompleted "bytesCompleted" "bytes_completed";
    Comment "comment" "comment";
    CorruptEver "corruptEver" "corrupt_ever";
    Creator "creator" "creator";
    DateCreated "dateCreated" "date_created";
    DesiredAvailable "desiredAvailable" "desired_available";
    DoneDate "doneDate" "done_date";
    DownloadDir "downloadDir" "download_dir";
    DownloadLimit "downloadLimit" "download_limit";
    DownloadLimited "downloadLimited" "download_limited";
    DownloadedEver "downloadedEver" "downloaded_ever";
    EditDate "editDate" "edit_date";
    Error "error" "error";
    ErrorString "errorString" "error_string";
    Eta "eta" "eta";
    EtaIdle "etaIdle" "eta_idle";
    FileCount "file-count" "file_count";
    FileStats "fileStats" "file_stats";
    Files "files" "files";
    Group "group" "group";
    HashString "hashString" "hash_string";
    HaveUnchecked "haveUnchecked" "have_unchecked";
    HaveValid "haveValid" "have_valid";
    HonorsSessionLimits "honorsSessionLimits" "honors_session_limits";
    Id "id" "id";
    IsFinished "isFinished" "is_finished";
    IsPrivate "isPrivate" "is_private";
    IsStalled "isStalled" "is_stalled";
    Labels "labels" "labels";
    LeftUntilDone "leftUntilDone" "left_until_done";
    MagnetLink "magnetLink" "magnet_link";
    ManualAnnounceTime "manualAnnounceTime" "manual_announce_time";
    MaxConnectedPeers "maxConnectedPeers" "max_connected_peers";
    MetadataPercentComplete "metadataPercentComplete" "metadata_percent_complete";
    Name "name" "name";
    PeerLimit "peer-limit" "peer_limit";
    Peers "peers" "peers";
    PeersConnected "peersConnected" "peers_connected";
    PeersFrom "peersFrom" "peers_from";
    PeersGettingFromUs "peersGettingFromUs" "peers_getting_from_us";
    PeersSendingToUs "peersSendingToUs" "peers_sending_to_us";
    PercentComplete "percentComplete" "percent_complete";
    PercentDone "percentDone" "percent_done";
    PieceCount "pieceCount" "piece_count";
    PieceSize "pieceSize" "piece_size";
    Pieces "pieces" "pieces";
    PrimaryMimeType "primary-mime-type" "primary_mime_type";
    Priorities "priorities" "priorities";
    QueuePosition "queuePosition" "queue_position";
    RateDownload "rateDownload" "rate_download";
    RateUpload "rateUpload" "rate_upload";
    RecheckProgress "recheckProgress" "recheck_progress";
    SecondsDownloading "secondsDownloading" "seconds_downloading";
    SecondsSeeding "secondsSeeding" "seconds_seeding";
    SeedIdleLimit "seedIdleLimit" "seed_idle_limit";
    SeedIdleMode "seedIdleMode" "seed_idle_mode";
    SeedRatioLimit "seedRatioLimit" "seed_ratio_limit";
    SeedRatioMode "seedRatioMode" "seed_ratio_mode";
    SequentialDownload "sequential_download" "sequential_download";
    SequentialDownloadFromPiece "sequential_download_from_piece" "sequential_download_from_piece";
    SizeWhenDone "sizeWhenDone" "size_when_done";
    Source "source" "source";
    StartDate "startDate" "start_date";
    Status "status" "status";
    TorrentFile "torrentFile" "torrent_file";
    TotalSize "totalSize" "total_size";
    TrackerList "trackerList" "tracker_list";
    TrackerStats "trackerStats" "tracker_stats";
    Trackers "trackers" "trackers";
    UploadLimit "uploadLimit" "upload_limit";
    UploadLimited "uploadLimited" "upload_limited";
    UploadRatio "uploadRatio" "upload_ratio";
    UploadedEver "uploadedEver" "uploaded_ever";
    Wanted "wanted" "wanted";
    Webseeds "webseeds" "webseeds";
    WebseedsSendingToUs "webseedsSendingToUs" "webseeds_sending_to_us";
}

impl Field {
    /// The field named `name` in a request of `style`: JSON-RPC 2.0 knows the
    /// snake_case names only (4.1 converts nothing on that path), the bespoke protocol
    /// both (4.1's `api-compat.cc`).
    pub(super) fn named(style: Style, name: &str) -> Option<Field> {
        FIELDS
            .iter()
            .find(|(_, legacy, snake)| {
                *snake == name || (style == Style::Legacy && *legacy == name)
            })
            .map(|(f, _, _)| *f)
    }

    /// The name this field is answered under in `style`.
    pub(super) fn name(self, style: Style) -> &'static str {
        let (_, legacy, snake) = FIELDS
            .iter()
            .find(|(f, _, _)| *f == self)
            .expect("every field is in the table");
        style.pick(legacy, snake)
    }

    /// Whether the field needs the task's sizes and progress ([`Facts`]).
    fn needs_facts(self) -> bool {
        !matches!(
            self,
            Field::Id
                | Field::HashString
                | Field::Name
                | Field::DownloadDir
                | Field::Labels
                | Field::AddedDate
                | Field::Comment
                | Field::Creator
                | Field::DateCreated
                | Field::MagnetLink
                | Field::Trackers
                | Field::TrackerStats
                | Field::TrackerList
        )
    }
}

/// Transmission's `tr_torrent_activity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// 0: stopped.
    Stopped = 0,
    /// 3: queued to download.
    DownloadWait = 3,
    /// 4: downloading.
    Download = 4,
}

/// A task's status and sizes, as `tr_stat` holds them (see the module's table).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Facts {
    pub(super) status: Status,
    pub(super) finished: bool,
    /// `tr_stat_errtype`: 0 or 3.
    pub(super) error: u8,
    pub(super) total_size: u64,
    pub(super) size_when_done: u64,
    /// Bytes done.
    pub(super) have: u64,
    pub(super) left: u64,
    pub(super) percent_done: f64,
    pub(super) rate_download: u64,
    pub(super) eta: i64,
}

/// `task`'s status and sizes.
pub(super) fn facts(task: &TaskView) -> Facts {
    let (total_size, size_when_done) = if task.files.is_empty() {
        (task.total_length(), task.total_length())
    } else {
        let sum = |only_selected: bool| {
            task.files
                .iter()
                .filter(|f| f.selected || !only_selected)
                .fold(0u64, |s, f| s.saturating_add(f.length))
        };
        (sum(false), sum(true))
    };
    let complete = task.state == TaskState::Complete;
    let have = if complete {
        size_when_done
    } else {
        match task.progress {
            Progress::Bytes(done) if size_when_done > 0 => done.min(size_when_done),
            Progress::Bytes(done) => done,
            Progress::Percent(pct) => {
                let pct = u128::from(pct.min(100));
                u64::try_from(u128::from(size_when_done) * pct / 100).unwrap_or(size_when_done)
            }
        }
    };
    let left = size_when_done.saturating_sub(have);
    let percent_done = if complete {
        1.0
    } else if size_when_done > 0 {
        have as f64 / size_when_done as f64
    } else {
        f64::from(task.percent()) / 100.0
    };
    let (status, finished, error) = match &task.state {
        TaskState::Queued if task.held => (Status::Stopped, false, 0),
        TaskState::Queued | TaskState::Submitting => (Status::DownloadWait, false, 0),
        TaskState::Running => (Status::Download, false, 0),
        TaskState::Complete => (Status::Stopped, true, 0),
        TaskState::Failed(_) | TaskState::UnknownOutcome | TaskState::Removed => {
            (Status::Stopped, false, 3)
        }
    };
    let rate_download = if status == Status::Download {
        task.download_speed
    } else {
        0
    };
    let eta = match status {
        Status::Download if rate_download > 0 && size_when_done > 0 => {
            i64::try_from(left / rate_download).unwrap_or(i64::MAX)
        }
        Status::Download => -2,
        _ => -1,
    };
    Facts {
        status,
        finished,
        error,
        total_size,
        size_when_done,
        have,
        left,
        percent_done,
        rate_download,
        eta,
    }
}

/// `errorString`.
pub(super) fn error_string(task: &TaskView) -> &str {
    match &task.state {
        TaskState::Failed(failure) => &failure.message,
        TaskState::UnknownOutcome => UNKNOWN_OUTCOME,
        _ => "",
    }
}

/// `name`: see the module's docs.
pub(super) fn display_name(task: &TaskView) -> Cow<'_, str> {
    if let Some(name) = task.name.as_deref().filter(|n| !n.is_empty()) {
        return Cow::Borrowed(name);
    }
    if let Some(name) = task.torrent.as_ref().and_then(|t| t.name.as_deref()) {
        return Cow::Borrowed(name);
    }
    if let Some(uri) = task.uris.first() {
        if let Some(query) = strip_prefix_ignore_case(uri, "magnet:?") {
            let dn = form_urlencoded::parse(query.as_bytes())
                .find(|(k, v)| k == "dn" && !v.is_empty())
                .map(|(_, v)| v.into_owned());
            if let Some(dn) = dn {
                return Cow::Owned(dn);
            }
        } else if let Ok(url) = url::Url::parse(uri) {
            let last = url
                .path_segments()
                .and_then(|mut s| s.next_back())
                .filter(|s| !s.is_empty())
                .map(percent_decode);
            if let Some(last) = last {
                return Cow::Owned(last);
            }
        }
    }
    Cow::Borrowed(&task.hash)
}

fn strip_prefix_ignore_case<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `%XX` sequences decoded (invalid UTF-8 replaced).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The labels: the category first (when not among the tags), then the tags.
pub(super) fn labels(task: &TaskView) -> impl Iterator<Item = &str> {
    let category = task
        .category
        .as_deref()
        .filter(|c| !task.tags.iter().any(|t| t == c));
    category
        .into_iter()
        .chain(task.tags.iter().map(String::as_str))
}

/// Where each task is among the listed ones, for `queuePosition`.
pub(super) enum Positions {
    /// The tasks written are the listed tasks, in order.
    InOrder,
    /// A task's position by GID.
    ByGid(HashMap<Gid, usize>),
}

/// What writing a torrent needs besides the task.
pub(super) struct Ctx<'a> {
    pub(super) prefix: Option<&'a str>,
    pub(super) positions: Positions,
}

/// Writes `tasks` as `torrent-get`'s `torrents` array: objects with `fields` (keys
/// sorted, as Transmission writes them), or with `table` an array whose first row is
/// the field names in the order asked and each next row one task's values.
pub(super) fn write_torrents(
    out: &mut Out,
    tasks: &[&TaskView],
    fields: &[Field],
    table: bool,
    ctx: &Ctx<'_>,
) {
    let style = out.style;
    let needs_facts = fields.iter().any(|f| f.needs_facts());
    let mut sorted: Vec<(Field, &str)> = fields.iter().map(|f| (*f, f.name(style))).collect();
    if !table {
        sorted.sort_by(|a, b| a.1.cmp(b.1));
    }
    out.byte(b'[');
    if table {
        out.strings(sorted.iter().map(|(_, n)| *n));
    }
    for (i, task) in tasks.iter().enumerate() {
        if i > 0 || table {
            out.byte(b',');
        }
        let facts = needs_facts.then(|| facts(task));
        let position = match &ctx.positions {
            Positions::InOrder => i,
            Positions::ByGid(map) => map.get(&task.gid).copied().unwrap_or(0),
        };
        out.byte(if table { b'[' } else { b'{' });
        let mut first = true;
        for (field, name) in &sorted {
            if table {
                if !first {
                    out.byte(b',');
                }
                first = false;
            } else {
                out.key(&mut first, name);
            }
            let one = One {
                task,
                facts: facts.as_ref(),
                position,
                prefix: ctx.prefix,
            };
            one.write(out, *field);
        }
        out.byte(if table { b']' } else { b'}' });
    }
    out.byte(b']');
}

/// One task being written.
struct One<'t> {
    task: &'t TaskView,
    facts: Option<&'t Facts>,
    position: usize,
    prefix: Option<&'t str>,
}

impl One<'_> {
    fn facts(&self) -> Facts {
        self.facts.copied().unwrap_or_else(|| facts(self.task))
    }

    fn torrent(&self) -> Option<&TorrentInfo> {
        self.task.torrent.as_ref()
    }

    fn piece_size(&self, total: u64) -> u64 {
        match self
            .torrent()
            .and_then(|t| t.piece_length)
            .filter(|&p| p > 0)
        {
            Some(p) => p,
            None if total > 0 => DEFAULT_PIECE_LENGTH,
            None => 0,
        }
    }

    fn piece_count(&self, total: u64) -> u64 {
        match self.piece_size(total) {
            0 => 0,
            size => total.div_ceil(size),
        }
    }

    /// Calls `each(name, length, bytes done, wanted, offset)` for each file.
    fn each_file(&self, facts: &Facts, mut each: impl FnMut(&str, u64, u64, bool, u64)) {
        let task = self.task;
        if task.files.is_empty() {
            let name = task
                .name
                .as_deref()
                .filter(|n| !n.is_empty())
                .or_else(|| self.torrent().and_then(|t| t.name.as_deref()));
            if let Some(name) = name {
                each(name, facts.size_when_done, facts.have, true, 0);
            }
            return;
        }
        let single = task.files.len() == 1;
        let complete = task.state == TaskState::Complete;
        let mut offset = 0u64;
        for file in &task.files {
            let done = match () {
                () if single => facts.have.min(file.length),
                () if complete && file.selected => file.length,
                () => 0,
            };
            each(&file.path, file.length, done, file.selected, offset);
            offset = offset.saturating_add(file.length);
        }
    }

    fn file_count(&self) -> usize {
        let task = self.task;
        if !task.files.is_empty() {
            return task.files.len();
        }
        let named = task.name.as_deref().is_some_and(|n| !n.is_empty())
            || self.torrent().and_then(|t| t.name.as_deref()).is_some();
        usize::from(named)
    }

    fn is_magnet(&self) -> bool {
        self.task
            .uris
            .first()
            .is_some_and(|u| strip_prefix_ignore_case(u, "magnet:").is_some())
    }

    fn write(&self, out: &mut Out, field: Field) {
        let task = self.task;
        let style = out.style;
        match field {
            Field::ActivityDate => out.int(task.completed_on.unwrap_or(task.added_on)),
            Field::AddedDate => out.int(task.added_on),
            Field::Availability => {
                let f = self.facts();
                let have = task.state == TaskState::Complete;
                out.byte(b'[');
                for i in 0..self.piece_count(f.total_size) {
                    if i > 0 {
                        out.byte(b',');
                    }
                    out.raw(if have { "-1" } else { "0" });
                }
                out.byte(b']');
            }
            Field::BandwidthPriority
            | Field::CorruptEver
            | Field::EditDate
            | Field::HaveUnchecked
            | Field::ManualAnnounceTime
            | Field::PeersConnected
            | Field::PeersGettingFromUs
            | Field::PeersSendingToUs
            | Field::RateUpload
            | Field::SecondsSeeding
            | Field::SeedIdleMode
            | Field::SeedRatioMode
            | Field::SequentialDownloadFromPiece
            | Field::UploadedEver
            | Field::WebseedsSendingToUs => out.uint(0),
            Field::BytesCompleted => {
                let f = self.facts();
                out.byte(b'[');
                let mut first = true;
                self.each_file(&f, |_, _, done, _, _| {
                    if !first {
                        out.byte(b',');
                    }
                    first = false;
                    out.uint(done);
                });
                out.byte(b']');
            }
            Field::Comment => out.string(
                self.torrent()
                    .and_then(|t| t.comment.as_deref())
                    .unwrap_or(""),
            ),
            Field::Creator | Field::Group | Field::Source | Field::TorrentFile => out.string(""),
            Field::DateCreated => {
                out.int(self.torrent().and_then(|t| t.creation_date).unwrap_or(0))
            }
            Field::DesiredAvailable => {
                let f = self.facts();
                let working = matches!(f.status, Status::Download | Status::DownloadWait);
                out.uint(if working { f.left } else { 0 });
            }
            Field::DoneDate => out.int(match task.state {
                TaskState::Complete => task.completed_on.unwrap_or(0),
                _ => 0,
            }),
            Field::DownloadDir => out.string(&report_path(self.prefix, &task.dir)),
            Field::DownloadLimit | Field::UploadLimit => out.uint(100),
            Field::DownloadLimited
            | Field::IsPrivate
            | Field::IsStalled
            | Field::SequentialDownload
            | Field::UploadLimited => out.boolean(false),
            Field::DownloadedEver | Field::HaveValid => out.uint(self.facts().have),
            Field::Error => out.uint(u64::from(self.facts().error)),
            Field::ErrorString => out.string(error_string(task)),
            Field::Eta => out.int(self.facts().eta),
            Field::EtaIdle => out.int(-1),
            Field::FileCount => out.uint(self.file_count() as u64),
            Field::FileStats => {
                let f = self.facts();
                let names = style.pick("bytesCompleted", "bytes_completed");
                out.byte(b'[');
                let mut first_file = true;
                self.each_file(&f, |_, _, done, wanted, _| {
                    if !first_file {
                        out.byte(b',');
                    }
                    first_file = false;
                    let mut first = true;
                    out.byte(b'{');
                    out.key(&mut first, names);
                    out.uint(done);
                    out.key(&mut first, "priority");
                    out.uint(0);
                    out.key(&mut first, "wanted");
                    out.boolean(wanted);
                    out.byte(b'}');
                });
                out.byte(b']');
            }
            Field::Files => {
                let f = self.facts();
                let piece_size = self.piece_size(f.total_size);
                out.byte(b'[');
                let mut first_file = true;
                self.each_file(&f, |name, length, done, _, offset| {
                    if !first_file {
                        out.byte(b',');
                    }
                    first_file = false;
                    let mut first = true;
                    out.byte(b'{');
                    match style {
                        Style::Legacy => {
                            out.key(&mut first, "bytesCompleted");
                            out.uint(done);
                        }
                        Style::JsonRpc => {
                            let (begin, end) = piece_span(offset, length, piece_size);
                            out.key(&mut first, "begin_piece");
                            out.uint(begin);
                            out.key(&mut first, "bytes_completed");
                            out.uint(done);
                            out.key(&mut first, "end_piece");
                            out.uint(end);
                        }
                    }
                    out.key(&mut first, "length");
                    out.uint(length);
                    out.key(&mut first, "name");
                    out.string(name);
                    out.byte(b'}');
                });
                out.byte(b']');
            }
            Field::HashString => out.string(&task.hash),
            Field::HonorsSessionLimits => out.boolean(true),
            Field::Id => out.uint(task.id),
            Field::IsFinished => out.boolean(self.facts().finished),
            Field::Labels => out.strings(labels(task)),
            Field::LeftUntilDone => out.uint(self.facts().left),
            Field::MagnetLink => out.string(&magnet_link(task)),
            Field::MaxConnectedPeers | Field::PeerLimit => out.uint(50),
            Field::MetadataPercentComplete => {
                let f = self.facts();
                let waiting = self.is_magnet() && task.files.is_empty() && f.total_size == 0;
                out.real(if waiting { 0.0 } else { 1.0 });
            }
            Field::Name => out.string(&display_name(task)),
            Field::Peers | Field::Webseeds => out.raw("[]"),
            Field::PeersFrom => {
                let keys = [
                    ("fromCache", "from_cache"),
                    ("fromDht", "from_dht"),
                    ("fromIncoming", "from_incoming"),
                    ("fromLpd", "from_lpd"),
                    ("fromLtep", "from_ltep"),
                    ("fromPex", "from_pex"),
                    ("fromTracker", "from_tracker"),
                ];
                let mut first = true;
                out.byte(b'{');
                for (legacy, snake) in keys {
                    out.key(&mut first, style.pick(legacy, snake));
                    out.uint(0);
                }
                out.byte(b'}');
            }
            Field::PercentComplete => {
                let f = self.facts();
                let x = if f.total_size > 0 {
                    f.have as f64 / f.total_size as f64
                } else {
                    f.percent_done
                };
                out.real(x);
            }
            Field::PercentDone => out.real(self.facts().percent_done),
            Field::PieceCount => out.uint(self.piece_count(self.facts().total_size)),
            Field::PieceSize => out.uint(self.piece_size(self.facts().total_size)),
            Field::Pieces => {
                let count = self.piece_count(self.facts().total_size);
                let have = task.state == TaskState::Complete;
                out.string(&pieces(count, have));
            }
            Field::PrimaryMimeType => {
                let f = self.facts();
                let mut by_type: Vec<(&str, u64)> = Vec::new();
                self.each_file(&f, |name, length, _, _, _| {
                    let mime = mime_type(name);
                    match by_type.iter_mut().find(|(m, _)| *m == mime) {
                        Some((_, size)) => *size = size.saturating_add(length),
                        None => by_type.push((mime, length)),
                    }
                });
                let best = by_type
                    .iter()
                    .filter(|(m, _)| *m != OCTET_STREAM)
                    .max_by_key(|(_, size)| *size)
                    .map_or(OCTET_STREAM, |(m, _)| m);
                out.string(best);
            }
            Field::Priorities => {
                let f = self.facts();
                out.byte(b'[');
                let mut first = true;
                self.each_file(&f, |_, _, _, _, _| {
                    if !first {
                        out.byte(b',');
                    }
                    first = false;
                    out.uint(0);
                });
                out.byte(b']');
            }
            Field::QueuePosition => out.uint(self.position as u64),
            Field::RateDownload => out.uint(self.facts().rate_download),
            Field::RecheckProgress => out.real(0.0),
            Field::SecondsDownloading => {
                let seconds = match (task.state == TaskState::Complete, task.completed_on) {
                    (true, Some(done)) if task.added_on > 0 => (done - task.added_on).max(0),
                    _ => 0,
                };
                out.int(seconds);
            }
            Field::SeedIdleLimit => out.uint(30),
            Field::SeedRatioLimit => out.real(2.0),
            Field::SizeWhenDone => out.uint(self.facts().size_when_done),
            Field::StartDate => out.int(if task.held { 0 } else { task.added_on }),
            Field::Status => out.uint(self.facts().status as u64),
            Field::TotalSize => out.uint(self.facts().total_size),
            Field::TrackerList => out.string(&tracker_list(self.torrent())),
            Field::TrackerStats => out.value(&tracker_stats(self.torrent(), style)),
            Field::Trackers => out.value(&trackers(self.torrent())),
            Field::UploadRatio => out.real(if self.facts().have > 0 { 0.0 } else { -1.0 }),
            Field::Wanted => {
                let f = self.facts();
                out.byte(b'[');
                let mut first = true;
                self.each_file(&f, |_, _, _, wanted, _| {
                    if !first {
                        out.byte(b',');
                    }
                    first = false;
                    match style {
                        Style::Legacy => out.raw(if wanted { "1" } else { "0" }),
                        Style::JsonRpc => out.boolean(wanted),
                    }
                });
                out.byte(b']');
            }
        }
    }
}

/// The first piece a file touches and the one after its last (`[begin, end)`).
fn piece_span(offset: u64, length: u64, piece_size: u64) -> (u64, u64) {
    if piece_size == 0 {
        return (0, 0);
    }
    let begin = offset / piece_size;
    let end = if length == 0 {
        begin
    } else {
        offset.saturating_add(length).div_ceil(piece_size)
    };
    (begin, end)
}

/// The `pieces` bitfield: `count` bits, all set when `have`, high bit first; base64.
fn pieces(count: u64, have: bool) -> String {
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let bytes = count.div_ceil(8);
    let mut field = vec![if have { 0xffu8 } else { 0 }; bytes];
    if have && count % 8 != 0 {
        if let Some(last) = field.last_mut() {
            *last = 0xffu8 << (8 - count % 8);
        }
    }
    base64::engine::general_purpose::STANDARD.encode(field)
}

/// Every tracker URL with its tier, in order, each once.
fn tracker_urls(torrent: Option<&TorrentInfo>) -> Vec<(usize, &str)> {
    let mut seen: Vec<(usize, &str)> = Vec::new();
    for (tier, urls) in torrent
        .map_or(&[][..], |t| &t.announce_list)
        .iter()
        .enumerate()
    {
        for url in urls {
            if !seen.iter().any(|(_, u)| u == url) {
                seen.push((tier, url));
            }
        }
    }
    seen
}

/// `trackerList`: one URL a line, a blank line between tiers (Transmission's
/// `tr_announce_list::to_string`).
fn tracker_list(torrent: Option<&TorrentInfo>) -> String {
    let mut text = String::new();
    let mut last_tier = None;
    for (tier, url) in tracker_urls(torrent) {
        if last_tier.is_some_and(|t| t != tier) {
            text.push('\n');
        }
        last_tier = Some(tier);
        text.push_str(url);
        text.push('\n');
    }
    text
}

/// A tracker's scrape URL (Transmission's `tr_announce_list::announceToScrape`): when
/// the last `/` starts `/announce`, that turned into `/scrape`; else a UDP tracker's
/// announce URL itself; else `""`.
fn scrape_url(announce: &str) -> String {
    if let Some(pos) = announce.rfind('/') {
        if let Some(rest) = announce[pos..].strip_prefix("/announce") {
            return format!("{}/scrape{rest}", &announce[..pos]);
        }
    }
    if announce.starts_with("udp:") {
        return announce.to_owned();
    }
    String::new()
}

/// A tracker's host and its `sitename` (see the module's docs), and `host:port`.
fn tracker_host(announce: &str) -> (String, String) {
    let Ok(url) = url::Url::parse(announce) else {
        return (String::new(), String::new());
    };
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_owned();
    let sitename = if host.parse::<std::net::IpAddr>().is_ok() {
        host.clone()
    } else {
        let labels: Vec<&str> = host.split('.').filter(|l| !l.is_empty()).collect();
        match labels.len() {
            0 => String::new(),
            1 => labels[0].to_owned(),
            n => labels[n - 2].to_owned(),
        }
    };
    let host_port = match url.port_or_known_default() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_owned(),
    };
    (sitename, host_port)
}

/// `trackers`.
fn trackers(torrent: Option<&TorrentInfo>) -> Value {
    let list: Vec<Value> = tracker_urls(torrent)
        .iter()
        .enumerate()
        .map(|(id, (tier, url))| {
            json!({
                "announce": url,
                "id": id,
                "scrape": scrape_url(url),
                "sitename": tracker_host(url).0,
                "tier": tier,
            })
        })
        .collect();
    Value::Array(list)
}

/// `trackerStats`: nothing announced or scraped.
fn tracker_stats(torrent: Option<&TorrentInfo>, style: Style) -> Value {
    let list: Vec<Value> = tracker_urls(torrent)
        .iter()
        .enumerate()
        .map(|(id, (tier, url))| {
            let (sitename, host) = tracker_host(url);
            let mut m = serde_json::Map::new();
            let mut put = |legacy: &'static str, snake: &'static str, v: Value| {
                m.insert(style.pick(legacy, snake).to_owned(), v);
            };
            put("announce", "announce", json!(url));
            put("announceState", "announce_state", json!(0));
            put("downloadCount", "download_count", json!(-1));
            put("hasAnnounced", "has_announced", json!(false));
            put("hasScraped", "has_scraped", json!(false));
            put("host", "host", json!(host));
            put("id", "id", json!(id));
            put("isBackup", "is_backup", json!(false));
            put(
                "lastAnnouncePeerCount",
                "last_announce_peer_count",
                json!(0),
            );
            put("lastAnnounceResult", "last_announce_result", json!(""));
            put(
                "lastAnnounceStartTime",
                "last_announce_start_time",
                json!(0),
            );
            put(
                "lastAnnounceSucceeded",
                "last_announce_succeeded",
                json!(false),
            );
            put("lastAnnounceTime", "last_announce_time", json!(0));
            put(
                "lastAnnounceTimedOut",
                "last_announce_timed_out",
                json!(false),
            );
            put("lastScrapeResult", "last_scrape_result", json!(""));
            put("lastScrapeStartTime", "last_scrape_start_time", json!(0));
            put("lastScrapeSucceeded", "last_scrape_succeeded", json!(false));
            put("lastScrapeTime", "last_scrape_time", json!(0));
            put("lastScrapeTimedOut", "last_scrape_timed_out", json!(false));
            put("leecherCount", "leecher_count", json!(-1));
            put("nextAnnounceTime", "next_announce_time", json!(0));
            put("nextScrapeTime", "next_scrape_time", json!(0));
            put("scrape", "scrape", json!(scrape_url(url)));
            put("scrapeState", "scrape_state", json!(0));
            put("seederCount", "seeder_count", json!(-1));
            put("sitename", "sitename", json!(sitename));
            put("tier", "tier", json!(tier));
            if style == Style::JsonRpc {
                m.insert("downloader_count".into(), json!(-1));
            }
            Value::Object(m)
        })
        .collect();
    Value::Array(list)
}

/// `magnetLink`: see the module's docs.
pub(super) fn magnet_link(task: &TaskView) -> String {
    if let Some(uri) = task.uris.first() {
        if strip_prefix_ignore_case(uri, "magnet:").is_some() {
            return uri.clone();
        }
    }
    let Some(torrent) = task.torrent.as_ref() else {
        return String::new();
    };
    let Some(hash) = torrent.info_hash else {
        return String::new();
    };
    let mut link = format!("magnet:?xt=urn:btih:{hash}");
    let name = display_name(task);
    link.push_str("&dn=");
    percent_encode_into(&name, &mut link);
    for (_, url) in tracker_urls(Some(torrent)) {
        link.push_str("&tr=");
        percent_encode_into(url, &mut link);
    }
    link
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn percent_encode_into(text: &str, out: &mut String) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

const OCTET_STREAM: &str = "application/octet-stream";

/// A file's MIME type by its extension (a subset of mime-db, which Transmission's
/// `mime-types.h` is generated from).
fn mime_type(name: &str) -> &'static str {
    let Some((_, ext)) = name.rsplit_once('.') else {
        return OCTET_STREAM;
    };
    const TYPES: &[(&str, &str)] = &[
        ("7z", "application/x-7z-compressed"),
        ("aac", "audio/aac"),
        ("avi", "video/x-msvideo"),
        ("epub", "application/epub+zip"),
        ("flac", "audio/x-flac"),
        ("flv", "video/x-flv"),
        ("gif", "image/gif"),
        ("gz", "application/gzip"),
        ("iso", "application/x-iso9660-image"),
        ("jpeg", "image/jpeg"),
        ("jpg", "image/jpeg"),
        ("m2ts", "video/mp2t"),
        ("m4a", "audio/mp4"),
        ("m4v", "video/x-m4v"),
        ("mkv", "video/x-matroska"),
        ("mov", "video/quicktime"),
        ("mp3", "audio/mpeg"),
        ("mp4", "video/mp4"),
        ("mpeg", "video/mpeg"),
        ("mpg", "video/mpeg"),
        ("nfo", "text/x-nfo"),
        ("ogg", "audio/ogg"),
        ("opus", "audio/ogg"),
        ("pdf", "application/pdf"),
        ("png", "image/png"),
        ("rar", "application/vnd.rar"),
        ("srt", "application/x-subrip"),
        ("tar", "application/x-tar"),
        ("ts", "video/mp2t"),
        ("txt", "text/plain"),
        ("wav", "audio/wav"),
        ("webm", "video/webm"),
        ("wmv", "video/x-ms-wmv"),
        ("zip", "application/zip"),
    ];
    let ext = ext.to_ascii_lowercase();
    TYPES
        .iter()
        .find(|(e, _)| *e == ext)
        .map_or(OCTET_STREAM, |(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_urls_follow_transmissions_rule() {
        assert_eq!(
            scrape_url("http://t.example.org/announce"),
            "http://t.example.org/scrape"
        );
        assert_eq!(
            scrape_url("http://t.example.org/announce.php?passkey=x"),
            "http://t.example.org/scrape.php?passkey=x"
        );
        assert_eq!(
            scrape_url("udp://t.example.org:1337/other"),
            "udp://t.example.org:1337/other"
        );
        assert_eq!(scrape_url("http://t.example.org/other"), "");
        let (site, host) = tracker_host("udp://tracker.opentrackr.org:1337/announce");
        assert_eq!(
            (site.as_str(), host.as_str()),
            ("opentrackr", "tracker.opentrackr.org:1337")
        );
        let (site, _) = tracker_host("http://10.0.0.1/announce");
        assert_eq!(site, "10.0.0.1");
    }

    #[test]
    fn piece_bitfields() {
        assert_eq!(pieces(0, true), "");
        assert_eq!(pieces(3, true), "4A=="); // 0b1110_0000
        assert_eq!(pieces(9, false), "AAA=");
        assert_eq!(pieces(16, true), "//8=");
        assert_eq!(piece_span(0, 10, 4), (0, 3));
        assert_eq!(piece_span(10, 2, 4), (2, 3));
        assert_eq!(piece_span(12, 0, 4), (3, 3));
    }

    #[test]
    fn names_and_types() {
        let mut t = TaskView::new(Gid::new(1), TaskState::Queued, "/");
        t.uris = vec![
            "magnet:?xt=urn:btih:0a3893293e27ac0490424c06de4d09242215f0a6&dn=Some%20Show".into(),
        ];
        assert_eq!(display_name(&t), "Some Show");
        t.uris = vec!["https://example.org/dl/a%20b.iso?x=1".into()];
        assert_eq!(display_name(&t), "a b.iso");
        t.uris = vec!["https://example.org/".into()];
        assert_eq!(display_name(&t), t.hash);
        assert_eq!(mime_type("a/B.MKV"), "video/x-matroska");
        assert_eq!(mime_type("README"), OCTET_STREAM);
    }
}
