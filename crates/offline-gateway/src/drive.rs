//! What the daemon asks of a cloud drive: one implementation per provider.
//!
//! The daemon's work loop (submission, tracking, callbacks) is written once over
//! [`Drive`]; each provider's implementation only turns its calls into the
//! [`Submitted`] and [`Observed`] facts the loop acts on. What a provider accepts is
//! decided from `offline-proto`'s rules ([`validate_http_url`] for 123pan), so a
//! download the drive cannot take is refused when it is added, not failed later.

use std::future::Future;

use offline_proto::aria2::{AddRequest, Source, StoreError};
use offline_proto::pan123::{
    decode_callback, validate_http_url, Callback, CallbackStatus, FileId, OfflineDownloadRequest,
};
use offline_proto::HttpClient;
use provider_123pan::{Error, Pan123, TaskRef, TaskStatus};

/// A download the drive accepted for the store: what the row records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The source as the store keeps it (the URL, a magnet link, or for a torrent
    /// `magnet:?xt=urn:btih:<infohash>` naming it).
    pub source: String,
    /// The name the drive will store it under, when known before submitting.
    pub name: Option<String>,
    /// What the submission needs besides the source: a torrent's bytes, kept in the
    /// row's options (as base64 under `torrent`) and handed back in [`Job::torrent`].
    pub torrent: Option<Vec<u8>>,
}

/// One submission to make: a stored row's source and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The source as stored ([`Accepted::source`]).
    pub source: String,
    /// The torrent's bytes, for a torrent ([`Accepted::torrent`]).
    pub torrent: Option<Vec<u8>>,
    /// The drive folder (a path or an ID), `None`: the drive's default.
    pub dir: Option<String>,
    /// The file name to store it under, `None`: the drive's choice.
    pub out: Option<String>,
    /// Where the drive should POST when the task ends (this daemon's own callback
    /// route for this task), when the daemon receives callbacks.
    pub callback_url: Option<String>,
    /// For a torrent, the paths (within the torrent, `/`-separated) of the files to
    /// download; `None`: every file.
    pub wanted: Option<Vec<String>>,
}

/// The file a finished task stored, as [`Drive::stored`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its name in the folder.
    pub name: String,
    /// Its length in bytes.
    pub length: u64,
    /// Its file ID on the drive, as text (what [`Drive::delete`] trashes).
    pub file_id: Option<String>,
}

/// What one submission came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// The drive made a task: its ID, as text.
    Created(String),
    /// Certainly not sent (no connection, a rate limit, an expired token): the row
    /// stays pending and is sent again later.
    NotSent(String),
    /// The create may have reached the drive without an answer: never sent again.
    Unknown(String),
    /// The drive refused it for good (a bad source, a folder it cannot make).
    Refused(String),
}

/// What a submission records in its row while it goes: the moment the create is about
/// to leave, and (for a drive that parses a source first) what it parsed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim<'a> {
    /// The source parsed to a task named `name` that will carry `task_url` (6pan):
    /// recorded before the create so that a lost answer can be found in the task list.
    Parsed {
        /// The task's name (the parse result's).
        name: &'a str,
        /// The URL the task will carry, when the parse result says.
        task_url: Option<&'a str>,
        /// The files the parse result lists (path within the task, length in bytes):
        /// a magnet link's files become known here.
        files: &'a [(String, u64)],
    },
    /// The create is about to leave: the row becomes `submitting` ("may have been
    /// sent").
    Sending,
}

/// A row whose create may have reached the drive (left `submitting` by a stop, or
/// `unknown` after a lost answer), as [`Drive::reconcile`] is asked about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost<'a> {
    /// The source as stored.
    pub source: &'a str,
    /// The name recorded before the create ([`Claim::Parsed`]); `None`: nothing was
    /// parsed, so nothing was created.
    pub name: Option<&'a str>,
    /// The task URL recorded with the name.
    pub task_url: Option<&'a str>,
    /// When the row became `submitting`, milliseconds since the Unix epoch on this
    /// machine's clock.
    pub submitted_at: Option<i64>,
    /// Task IDs other rows own: never matched with this one.
    pub claimed: &'a std::collections::BTreeSet<String>,
}

/// What [`Drive::reconcile`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// The drive has its task: the ID.
    Found(String),
    /// The drive has no such task: the create never happened, the row is pending again.
    Absent,
    /// It cannot be told (several candidates, or a drive with no task list): the
    /// reason; the row stays `unknown`.
    Unknown(String),
    /// The drive could not be asked now: ask again later.
    Retry(String),
}

/// A task's state on the drive, as one progress call saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Progress in percent, 0 to 100.
    pub percent: f64,
    /// The task's size in bytes, when the drive gives it.
    pub total_length: Option<u64>,
    /// The bytes the drive has fetched so far, when it says.
    pub completed_length: Option<u64>,
    /// `None` while it runs; `Some(Ok)` when the drive has it whole; `Some(Err)` with
    /// the drive's reason when it gave up.
    pub ended: Option<Result<(), String>>,
}

/// A callback the drive sent to the daemon's callback route, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// The source URL the callback names.
    pub url: String,
    /// Whether it says the task succeeded.
    pub succeeded: bool,
    /// The reason it gives for a failure (unverified).
    pub reason: String,
    /// The file it says the task made (unverified).
    pub file_id: Option<u64>,
}

/// A cloud drive as the daemon drives it: the daemon's work loop (submission,
/// tracking, callbacks) is written once over this trait; each provider's
/// implementation only turns its calls into [`Submitted`] and [`Observed`] facts.
pub trait Drive: Send + Sync + 'static {
    /// The provider's name as shown to users: `123pan`, `6pan`.
    fn provider(&self) -> &'static str;

    /// The row kind recorded in the task store (`cloud`, `6pan`).
    fn kind(&self) -> &'static str;

    /// The drive folder downloads go to when neither the client nor `--dir` names
    /// one, as shown in `tellStatus`'s `dir`.
    fn default_dir(&self) -> String;

    /// The longest the tracker may ask about tasks, in progress calls per second
    /// (the progress endpoint's rate limit).
    fn progress_budget(&self) -> f64;

    /// Decides at once whether the drive can take `request`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] saying why it cannot (the caller gets it as an aria2 error).
    fn accept(&self, request: &AddRequest) -> Result<Accepted, StoreError>;

    /// Submits `job`; `claim` is called with [`Claim::Sending`] just before the
    /// create goes out (the store records "may have been sent" then), and before that
    /// with [`Claim::Parsed`] by a drive that parses the source first.
    fn submit<'a>(
        &'a self,
        job: &'a Job,
        claim: &'a (dyn Fn(Claim<'_>) + Send + Sync),
    ) -> impl Future<Output = Submitted> + Send + 'a;

    /// Whether [`reconcile`](Self::reconcile) can settle a row whose create may have
    /// reached the drive (a drive with a task list to look in). `false` (123pan):
    /// such rows are reported as outcome unknown and never submitted again.
    fn reconciles(&self) -> bool {
        false
    }

    /// Looks for the task of a row whose create may have reached the drive.
    fn reconcile<'a>(&'a self, lost: &'a Lost<'a>) -> impl Future<Output = Reconciled> + Send + 'a {
        let _ = lost;
        std::future::ready(Reconciled::Unknown(
            "this drive has no task list to check".to_owned(),
        ))
    }

    /// Asks the drive about task `task` (an ID [`Submitted::Created`] gave).
    ///
    /// # Errors
    ///
    /// The provider's error, as text: the tracker asks again later.
    fn progress<'a>(
        &'a self,
        task: &'a str,
    ) -> impl Future<Output = Result<Observed, String>> + Send + 'a;

    /// Decodes a body POSTed to the callback route (`None`: this drive sends no
    /// callbacks, or the body is not one).
    fn decode_callback(&self, body: &[u8]) -> Option<Hint> {
        let _ = body;
        None
    }

    /// The file a finished task stored in `dir` (a path or an ID; `None`: the drive's
    /// default folder) under `name` (or renamed as a taken name is), or the file a
    /// callback named (`file_id`); `None` when it cannot be found or the drive cannot
    /// say.
    fn stored<'a>(
        &'a self,
        dir: Option<&'a str>,
        name: &'a str,
        file_id: Option<u64>,
    ) -> impl Future<Output = Option<Stored>> + Send + 'a {
        let _ = (dir, name, file_id);
        std::future::ready(None)
    }

    /// Whether [`delete`](Self::delete) can move a task's stored files to the trash.
    fn deletes_files(&self) -> bool {
        false
    }

    /// Deletes a task a user deleted: its task on the drive (`task`, where the drive
    /// has a task list to delete from) and, when asked, the stored files (`files`:
    /// file IDs, moved to the trash; only asked of a drive that
    /// [`deletes_files`](Self::deletes_files)).
    ///
    /// # Errors
    ///
    /// The provider's error, as text: the daemon asks again later.
    fn delete<'a>(
        &'a self,
        task: Option<&'a str>,
        files: &'a [String],
    ) -> impl Future<Output = Result<(), String>> + Send + 'a {
        let _ = (task, files);
        std::future::ready(Ok(()))
    }

    /// Checks what a callback says of a task whose create's answer was lost (no task
    /// ID to ask about): for a success, that the file it names exists, out of the
    /// trash, under the name the task was to store (`name`). A failure has nothing to
    /// check and is taken as the drive's word.
    ///
    /// # Errors
    ///
    /// Why the callback cannot be confirmed (the file is missing or another, or the
    /// drive could not be asked).
    fn confirm_file<'a>(
        &'a self,
        hint: &'a Hint,
        name: Option<&'a str>,
    ) -> impl Future<Output = Result<(), String>> + Send + 'a {
        let _ = (hint, name);
        std::future::ready(Err("this drive sends no callbacks".to_owned()))
    }
}

/// 123pan's open platform: http(s) links only, one progress call per task, callbacks.
impl<C: HttpClient + 'static> Drive for Pan123<C> {
    fn provider(&self) -> &'static str {
        "123pan"
    }

    fn kind(&self) -> &'static str {
        "cloud"
    }

    fn default_dir(&self) -> String {
        format!("/{}", offline_proto::pan123::OFFLINE_FOLDER)
    }

    fn progress_budget(&self) -> f64 {
        offline_proto::pan123::EndpointId::OfflineProcess.default_rate_per_second()
    }

    fn accept(&self, request: &AddRequest) -> Result<Accepted, StoreError> {
        let uri = match &request.source {
            Source::Uris(uris) => uris.first().cloned().unwrap_or_default(),
            Source::Torrent { .. } => {
                return Err(StoreError(
                    "123pan's open platform takes no torrents (http and https links only)".into(),
                ))
            }
        };
        // Refused at once, not accepted and failed later: the open platform fetches
        // http(s) only.
        validate_http_url("uri", &uri).map_err(|e| {
            StoreError(format!(
                "123pan's open platform downloads http and https links only: {e}"
            ))
        })?;
        let name = request
            .out
            .clone()
            .unwrap_or_else(|| offline_proto::pan123::url_stored_name(&uri));
        Ok(Accepted {
            source: uri,
            name: Some(name),
            torrent: None,
        })
    }

    async fn submit<'a>(
        &'a self,
        job: &'a Job,
        claim: &'a (dyn Fn(Claim<'_>) + Send + Sync),
    ) -> Submitted {
        let folder = match &job.dir {
            Some(dir) => match resolve(self, dir).await {
                Ok(id) => Some(id),
                Err(e @ Error::Transport(_)) => return Submitted::NotSent(e.to_string()),
                Err(e) => return Submitted::Refused(format!("folder {dir}: {e}")),
            },
            None => None,
        };
        let mut request = OfflineDownloadRequest::new(job.source.clone());
        request.dir_id = folder;
        request.file_name.clone_from(&job.out);
        request.callback_url.clone_from(&job.callback_url);
        match self
            .offline_download_observed(request, || claim(Claim::Sending))
            .await
        {
            Ok(task) => Submitted::Created(task.to_string()),
            Err(e @ Error::OutcomeUnknown { .. }) => Submitted::Unknown(e.to_string()),
            Err(e @ Error::Transport(_)) => Submitted::NotSent(e.to_string()),
            Err(e) => Submitted::Refused(e.to_string()),
        }
    }

    async fn progress<'a>(&'a self, task: &'a str) -> Result<Observed, String> {
        let id: u64 = task
            .parse()
            .map_err(|_| format!("{task} is not a 123pan task ID"))?;
        let p = Pan123::progress(self, TaskRef::cloud(provider_123pan::TaskId(id)))
            .await
            .map_err(|e| e.to_string())?;
        let ended = match p.status {
            TaskStatus::Succeeded => Some(Ok(())),
            TaskStatus::Failed => Some(Err("the drive could not fetch the source".to_owned())),
            _ => None,
        };
        Ok(Observed {
            percent: p.percent,
            total_length: None,
            completed_length: None,
            ended,
        })
    }

    fn decode_callback(&self, body: &[u8]) -> Option<Hint> {
        let Callback {
            url,
            status,
            fail_reason,
            file_id,
        } = decode_callback(body).ok()?;
        Some(Hint {
            url,
            succeeded: status == CallbackStatus::Succeeded,
            reason: fail_reason,
            file_id,
        })
    }

    async fn stored<'a>(
        &'a self,
        dir: Option<&'a str>,
        name: &'a str,
        file_id: Option<u64>,
    ) -> Option<Stored> {
        let entries = match file_id {
            Some(id) => self.files(&[FileId(id)]).await.ok()?,
            None => {
                let default = format!("/{}", offline_proto::pan123::OFFLINE_FOLDER);
                let dir = dir.unwrap_or(&default);
                let folder = match FileId::from_arg(dir) {
                    Some(id) => id,
                    None => self.resolve_dir(dir, false).await.ok()?.id,
                };
                self.list_all(folder).await.ok()?
            }
        };
        let file = offline_proto::pan123::stored_file(&entries, name, &[])?;
        Some(Stored {
            name: file.filename.clone(),
            length: file.size,
            file_id: Some(file.file_id.to_string()),
        })
    }

    /// 123pan moves files to the trash (`/api/v1/file/trash`), where they can be
    /// restored.
    fn deletes_files(&self) -> bool {
        true
    }

    /// 123pan has no task list to delete from: only the files are trashed.
    async fn delete<'a>(
        &'a self,
        task: Option<&'a str>,
        files: &'a [String],
    ) -> Result<(), String> {
        let _ = task;
        let ids = files
            .iter()
            .map(|f| {
                f.parse()
                    .map(FileId)
                    .map_err(|_| format!("{f} is not a 123pan file ID"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            return Ok(());
        }
        self.trash(&ids).await.map_err(|e| e.to_string())
    }

    async fn confirm_file<'a>(
        &'a self,
        hint: &'a Hint,
        name: Option<&'a str>,
    ) -> Result<(), String> {
        check_stored(self, hint, name).await
    }
}

/// [`Drive::confirm_file`] for 123pan: the file's `infos` entry.
async fn check_stored<C: HttpClient>(
    pan: &Pan123<C>,
    hint: &Hint,
    name: Option<&str>,
) -> Result<(), String> {
    {
        if !hint.succeeded {
            return Ok(());
        }
        let id = hint
            .file_id
            .ok_or_else(|| "the callback names no file".to_owned())?;
        let entries = pan.files(&[FileId(id)]).await.map_err(|e| e.to_string())?;
        let Some(file) = entries.first() else {
            return Err(format!("file {id} does not exist"));
        };
        if file.is_folder() || file.is_trashed() {
            return Err(format!("file {id} is a folder or in the trash"));
        }
        match name {
            Some(name) if offline_proto::pan123::stored_file(&entries, name, &[]).is_none() => {
                Err(format!(
                    "file {id} is not the download: it is named {}",
                    file.filename
                ))
            }
            _ => Ok(()),
        }
    }
}

/// A `dir` option: a drive path resolved (missing folders made), or a folder ID.
async fn resolve<C: HttpClient>(pan: &Pan123<C>, dir: &str) -> Result<FileId, Error> {
    if let Some(id) = FileId::from_arg(dir) {
        return Ok(id);
    }
    Ok(pan.resolve_dir(dir, true).await?.id)
}
