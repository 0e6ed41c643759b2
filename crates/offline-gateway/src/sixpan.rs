//! 6pan behind the daemon: http(s), magnet and ed2k links and torrents, tracked from
//! the task list, and creates whose answer was lost found again in that list.
//!
//! - What is accepted is [`offline_proto::sixpan::api::validate_link`]'s rule for links
//!   (http, https, magnet with a BitTorrent infohash, ed2k file links), and
//!   [`offline_proto::torrent::Metainfo`]'s for a torrent, checked when it is added:
//!   a garbage torrent is an aria2 error at once. A torrent's row keeps the
//!   `magnet:?xt=urn:btih:<infohash>` naming it as its source and the torrent's bytes
//!   in its options.
//! - A submission parses the link (`parseUrl`), or puts the torrent in the drive's
//!   torrent folder (instant when the drive knows its etag) and parses it
//!   (`parseTorrent`); records the parsed name and task URL, then `submitting`, then
//!   adds it (`addTasks`, which reads the task list to find the task it made, and
//!   reconciles there when the answer is lost).
//! - 6pan has no per-task progress call: every task is answered from one listing of
//!   the task list, read at most once per [`LIST_FRESH`] (newest first, only as far as
//!   the tasks asked about lately), within the list endpoint's rate limit (the
//!   client's pacing).
//! - A row left `submitting` by a stop, or `unknown` after a lost answer, is looked
//!   for in the task list ([`Drive::reconcile`]) by its recorded name and task URL,
//!   created no earlier than a minute before it was claimed, never a task another row
//!   owns: one fits, it is that task; none, it is pending again; several, it stays
//!   unknown.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures_util::StreamExt as _;
use offline_proto::aria2::{AddRequest, Source, StoreError};
use offline_proto::sixpan::api::validate_link;
use offline_proto::sixpan::{OfflineTask, TaskStatus};
use offline_proto::torrent::{Metainfo, MAX_TORRENT_BYTES};
use offline_proto::HttpClient;
use provider_6pan::{AddTask, Error, Expected, Match, ParseResult, Selection, SixPan, TaskId};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::drive::{Accepted, Claim, Drive, Job, Lost, Observed, Reconciled, Submitted};

/// How long one listing of the task list answers every task asked about.
pub const LIST_FRESH: Duration = Duration::from_secs(1);
/// How long a task asked about stays among those a listing reads far enough to find.
const WANTED_FOR: Duration = Duration::from_secs(60);
/// How far before a row's claim (on this machine's clock) its task may have been
/// created on the server's: a clock skew of a minute.
const SKEW_MS: i64 = 60_000;
/// The folder downloads go to when the client names none.
pub const DEFAULT_DIR: &str = "/";

/// 6pan as a [`Drive`]: a [`SixPan`] client and the listing its tasks are answered
/// from. Cheap to share (the daemon holds one).
pub struct SixPanDrive<C: HttpClient> {
    pan: SixPan<C>,
    listing: Mutex<Listing>,
}

/// The latest listing of the task list.
#[derive(Default)]
struct Listing {
    /// When it was read; `None`: never.
    at: Option<Instant>,
    /// The tasks it read, by identity (newest first, as far as it read).
    tasks: HashMap<String, OfflineTask>,
    /// Whether it read the list to its end (a task not in it is gone).
    complete: bool,
    /// The tasks asked about, with when they were last asked.
    wanted: HashMap<String, Instant>,
}

impl<C: HttpClient> SixPanDrive<C> {
    /// The drive of the client `pan`.
    pub fn new(pan: SixPan<C>) -> Self {
        Self {
            pan,
            listing: Mutex::new(Listing::default()),
        }
    }

    /// The client.
    pub fn client(&self) -> &SixPan<C> {
        &self.pan
    }

    /// Reads the task list, newest first, until every task asked about lately is
    /// found or the list ends.
    async fn read_list(&self, listing: &mut Listing) -> Result<(), Error> {
        let now = Instant::now();
        listing
            .wanted
            .retain(|_, asked| now.duration_since(*asked) < WANTED_FOR);
        let mut found = HashMap::new();
        let mut complete = true;
        let mut wanted_seen = 0;
        let mut stream = self.pan.tasks();
        while let Some(task) = stream.next().await {
            let task = task?;
            if listing.wanted.contains_key(task.identity.as_str()) {
                wanted_seen += 1;
            }
            found.insert(task.identity.0.clone(), task);
            if wanted_seen == listing.wanted.len() {
                complete = false;
                break;
            }
        }
        listing.tasks = found;
        listing.complete = complete;
        listing.at = Some(Instant::now());
        Ok(())
    }
}

/// What a listed task says, as the tracker reads it.
fn observed(task: &OfflineTask) -> Observed {
    let total = task
        .size
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s > 0);
    let done = task.download_size.and_then(|s| u64::try_from(s).ok());
    let percent = task.progress.unwrap_or_else(|| match (done, total) {
        #[allow(clippy::cast_precision_loss)]
        (Some(d), Some(t)) => d as f64 * 100.0 / t as f64,
        _ => 0.0,
    });
    let ended = match task.status {
        TaskStatus::Done => Some(Ok(())),
        TaskStatus::PartlyDone => match task.failure_reason() {
            Some(reason) => Some(Err(format!("only partly done: {reason}"))),
            None => Some(Ok(())),
        },
        TaskStatus::Failed => Some(Err(task
            .failure_reason()
            .unwrap_or_else(|| "the drive could not fetch the source".to_owned()))),
        _ => None,
    };
    Observed {
        percent,
        total_length: total,
        completed_length: done,
        ended,
    }
}

/// What a submission error comes to: certainly not sent, unknown, or refused.
fn submitted_after(e: &Error) -> Submitted {
    use offline_proto::ApiError;
    let text = error_text(e);
    match e {
        Error::OutcomeUnknown { .. } => Submitted::Unknown(text),
        Error::Transport(_)
        | Error::Api(
            ApiError::RateLimited { .. } | ApiError::Http { .. } | ApiError::TaskLimit(_),
        )
        | Error::NotAuthenticated
        | Error::TokenLoop { .. } => Submitted::NotSent(text),
        _ => Submitted::Refused(text),
    }
}

/// An error with its causes, for a row's reason.
fn error_text(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The source a torrent's row keeps: the magnet link of its infohash.
pub(crate) fn torrent_source(meta: &Metainfo) -> String {
    format!("magnet:?xt=urn:btih:{}", meta.info_hash)
}

/// Checks a torrent's bytes as 6pan would take them.
///
/// # Errors
///
/// [`StoreError`] saying why not: too large, or not a usable torrent.
pub fn check_torrent(bytes: &[u8]) -> Result<Metainfo, StoreError> {
    if bytes.len() > MAX_TORRENT_BYTES {
        return Err(StoreError(format!(
            "the torrent is {} bytes, more than a torrent can be ({MAX_TORRENT_BYTES})",
            bytes.len()
        )));
    }
    Metainfo::from_bytes(bytes).map_err(|e| StoreError(format!("not a usable torrent: {e}")))
}

impl<C: HttpClient + 'static> Drive for SixPanDrive<C> {
    fn provider(&self) -> &'static str {
        "6pan"
    }

    fn kind(&self) -> &'static str {
        "6pan"
    }

    fn default_dir(&self) -> String {
        DEFAULT_DIR.to_owned()
    }

    /// Answers come from one listing per [`LIST_FRESH`], whatever the number asked:
    /// the tracker may ask often.
    fn progress_budget(&self) -> f64 {
        50.0
    }

    fn accept(&self, request: &AddRequest) -> Result<Accepted, StoreError> {
        if request.out.is_some() {
            return Err(StoreError(
                "6pan names its tasks itself: the `out` option cannot be honoured".into(),
            ));
        }
        if let Some(dir) = &request.dir {
            if !dir.starts_with('/') {
                return Err(StoreError(format!(
                    "6pan takes an absolute folder path as `dir` (such as /downloads), not {dir:?}"
                )));
            }
        }
        match &request.source {
            Source::Uris(uris) => {
                let uri = uris.first().cloned().unwrap_or_default();
                validate_link(&uri).map_err(|e| {
                    StoreError(format!(
                        "6pan downloads http, https, magnet and ed2k links only: {e}"
                    ))
                })?;
                Ok(Accepted {
                    source: uri.trim().to_owned(),
                    name: None,
                    torrent: None,
                })
            }
            Source::Torrent { bytes, web_seeds } => {
                // The drive fetches from the swarm; it takes no extra web seeds.
                if !web_seeds.is_empty() {
                    return Err(StoreError(
                        "6pan takes a torrent's own sources only: addTorrent's uris (web seeds) cannot be passed on"
                            .into(),
                    ));
                }
                let meta = check_torrent(bytes)?;
                Ok(Accepted {
                    source: torrent_source(&meta),
                    name: Some(meta.name.clone()),
                    torrent: Some(bytes.clone()),
                })
            }
        }
    }

    async fn submit<'a>(
        &'a self,
        job: &'a Job,
        claim: &'a (dyn Fn(Claim<'_>) + Send + Sync),
    ) -> Submitted {
        let path = job.dir.clone().unwrap_or_else(|| DEFAULT_DIR.to_owned());
        let parsed: Result<ParseResult, Error> = match &job.torrent {
            Some(bytes) => {
                let name = job
                    .source
                    .rsplit(':')
                    .next()
                    .map_or_else(|| "upload.torrent".to_owned(), |h| format!("{h}.torrent"));
                self.pan
                    .upload_torrent_bytes(&name, bytes.clone())
                    .await
                    .map(|u| u.result)
            }
            None => match self.pan.parse_urls(&[job.source.as_str()]).await {
                Ok(results) => match results.into_iter().next() {
                    Some(r) => Ok(r),
                    None => return Submitted::Refused("the link parsed to nothing".to_owned()),
                },
                Err(e) => Err(e),
            },
        };
        let result = match parsed {
            Ok(r) => r,
            // Nothing was created yet: an unknown outcome here is a read's.
            Err(e @ Error::OutcomeUnknown { .. }) => return Submitted::NotSent(error_text(&e)),
            Err(e) => return submitted_after(&e),
        };
        let files: Vec<(String, u64)> = result
            .files
            .iter()
            .map(|f| {
                let path = f.path.clone().unwrap_or_else(|| f.name.clone());
                (
                    path,
                    f.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                )
            })
            .collect();
        let ignore_files = match &job.wanted {
            None => None,
            Some(wanted) => match Selection::Names(wanted.clone()).ignore_list(&result) {
                Ok(ignore) => ignore,
                Err(e) => return Submitted::Refused(error_text(&e)),
            },
        };
        claim(Claim::Parsed {
            name: &result.name,
            task_url: result.identity.view().url.as_deref(),
            files: &files,
        });
        claim(Claim::Sending);
        let task = AddTask {
            identity: result.identity.clone(),
            ignore_files,
        };
        match self
            .pan
            .add_tasks(&path, vec![(Expected::from_parse(&result), task)])
            .await
        {
            Ok(added) => match added.first() {
                Some(t) => Submitted::Created(t.identity.0.clone()),
                None => Submitted::Unknown(
                    "added, but the task did not show up in the task list".to_owned(),
                ),
            },
            Err(e) => submitted_after(&e),
        }
    }

    async fn progress<'a>(&'a self, task: &'a str) -> Result<Observed, String> {
        let mut listing = self.listing.lock().await;
        let now = Instant::now();
        let new = listing.wanted.insert(task.to_owned(), now).is_none();
        let fresh = listing
            .at
            .is_some_and(|at| now.duration_since(at) < LIST_FRESH);
        // A task asked about for the first time may be newer than the listing.
        if !fresh || (new && !listing.tasks.contains_key(task)) {
            self.read_list(&mut listing)
                .await
                .map_err(|e| error_text(&e))?;
        }
        match listing.tasks.get(task) {
            Some(t) => {
                let seen = observed(t);
                if seen.ended.is_some() {
                    listing.wanted.remove(task);
                }
                Ok(seen)
            }
            None if listing.complete => {
                listing.wanted.remove(task);
                Ok(Observed {
                    percent: 0.0,
                    total_length: None,
                    completed_length: None,
                    ended: Some(Err(
                        "the task is no longer in the drive's task list (deleted there?)"
                            .to_owned(),
                    )),
                })
            }
            None => Err(format!("task {task} not found in the listing yet")),
        }
    }

    fn reconciles(&self) -> bool {
        true
    }

    /// The task is deleted from the drive's task list (`/v2/offline/delete`); 6pan's
    /// file calls are not part of this toolkit, so its files stay
    /// ([`deletes_files`](Drive::deletes_files) is `false`).
    async fn delete<'a>(
        &'a self,
        task: Option<&'a str>,
        files: &'a [String],
    ) -> Result<(), String> {
        let _ = files;
        let Some(task) = task else {
            return Ok(());
        };
        match self.pan.delete(&[TaskId(task.to_owned())]).await {
            Ok(_) => Ok(()),
            Err(e) => Err(error_text(&e)),
        }
    }

    async fn reconcile<'a>(&'a self, lost: &'a Lost<'a>) -> Reconciled {
        // Nothing is added before the name is recorded: without one, nothing exists.
        let Some(name) = lost.name else {
            return Reconciled::Absent;
        };
        let expected = Expected {
            name: name.to_owned(),
            identity: None,
            size: None,
            url: lost.task_url.map(str::to_owned),
        };
        let since = lost.submitted_at.map(|t| t - SKEW_MS);
        let claimed: BTreeSet<TaskId> = lost
            .claimed
            .iter()
            .map(|t| TaskId::from(t.as_str()))
            .collect();
        match self.pan.reconcile(vec![expected], since, claimed).await {
            Ok(matches) => match matches.as_slice() {
                [Match::Found(t)] => Reconciled::Found(t.identity.0.clone()),
                [Match::Ambiguous(candidates)] => {
                    let names: Vec<&str> = candidates.iter().map(TaskId::as_str).collect();
                    Reconciled::Unknown(format!(
                        "the add's answer was lost and several tasks could be this one's: {}",
                        names.join(", ")
                    ))
                }
                _ => Reconciled::Absent,
            },
            Err(e) => Reconciled::Retry(error_text(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(status: TaskStatus, size: Option<i64>, done: Option<i64>) -> OfflineTask {
        serde_json::from_value(serde_json::json!({
            "identity": "t1", "name": "a.bin", "status": status, "size": size,
            "downloadSize": done, "progress": null,
        }))
        .unwrap()
    }

    #[test]
    fn a_listed_task_as_the_tracker_reads_it() {
        let running = observed(&task(TaskStatus::Downloading, Some(200), Some(50)));
        assert_eq!(running.total_length, Some(200));
        assert_eq!(running.completed_length, Some(50));
        assert!((running.percent - 25.0).abs() < 1e-9);
        assert_eq!(running.ended, None);
        let done = observed(&task(TaskStatus::Done, Some(0), None));
        assert_eq!(done.total_length, None);
        assert_eq!(done.ended, Some(Ok(())));
        let failed = observed(&task(TaskStatus::Failed, None, None));
        assert!(matches!(failed.ended, Some(Err(_))));
    }

    #[test]
    fn torrents_are_checked_at_once() {
        assert!(check_torrent(b"garbage").is_err());
        let bytes = offline_proto::torrent::TorrentBuilder::new("t")
            .single(b"x".to_vec())
            .build();
        let meta = check_torrent(&bytes).unwrap();
        assert!(torrent_source(&meta).starts_with("magnet:?xt=urn:btih:"));
        assert_eq!(
            torrent_source(&meta).len(),
            "magnet:?xt=urn:btih:".len() + 40
        );
    }
}
