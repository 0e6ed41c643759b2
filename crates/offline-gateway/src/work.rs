//! The work that moves tasks along: submission of pending rows, one at a time, and
//! tracking of running tasks within the progress endpoint's budget
//! ([`offline_proto::schedule::Scheduler`]: each task asked when its progress rate
//! says it is due), with callbacks as hints that ask a task at once.

use std::collections::BTreeMap;
use std::time::Duration;

use offline_proto::aria2::{Failure, FailureKind, Gid, Progress, Queue, TaskState};
use offline_proto::schedule::{Next, PollPolicy, Scheduler};
use offline_store::State as Row;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::drive::{Claim, Hint, Job, Lost, Observed, Reconciled, Stored, Submitted};
use crate::store::Store;
use crate::{Drive, Gateway};

/// How long the loops rest when there is nothing to do (a change wakes them sooner).
const IDLE: Duration = Duration::from_millis(500);
/// After a submission certainly not sent (the drive unreachable), the wait before the
/// next attempt.
const NOT_SENT_PAUSE: Duration = Duration::from_secs(1);
/// Progress calls in flight at once (each still waits for the endpoint's pacing).
const IN_FLIGHT: usize = 8;
/// After a create's answer was lost, the wait before its row is looked for in the
/// drive's task list (a drive that reconciles).
const RECONCILE_AFTER: Duration = Duration::from_secs(2);
/// After a deletion on the drive failed, the wait before the next attempt.
const DELETE_RETRY: Duration = Duration::from_secs(5);
/// After the task list could not be read for a reconciliation, the wait before the
/// next attempt.
const RECONCILE_RETRY: Duration = Duration::from_secs(5);

impl<D: Drive> Gateway<D> {
    /// Submits pending rows and tracks running tasks, forever.
    pub(crate) async fn work(&self) {
        tokio::join!(self.submit_loop(), self.track_loop(), self.delete_loop());
    }

    /// Deletes what users deleted ([`Store::deleting`]): each task's drive task and,
    /// when asked, its stored file ([`Drive::delete`]), then its row; a failed call
    /// is tried again after [`DELETE_RETRY`].
    async fn delete_loop(&self) {
        let mut retry_at: BTreeMap<Gid, Instant> = BTreeMap::new();
        loop {
            let now = Instant::now();
            let next = {
                let store = self.store();
                retry_at.retain(|gid, _| store.deleting.contains(gid));
                store
                    .deleting
                    .iter()
                    .find(|gid| retry_at.get(gid).is_none_or(|at| *at <= now))
                    .and_then(|gid| store.tasks.get(gid))
                    .map(|t| {
                        let files = match (t.deleting, &t.file_id) {
                            (Some(true), Some(id)) => vec![id.clone()],
                            _ => Vec::new(),
                        };
                        (t.view.gid, t.entry.task.clone(), files)
                    })
            };
            let Some((gid, task, files)) = next else {
                tokio::select! {
                    () = self.shared.wake.notified() => {}
                    () = tokio::time::sleep(IDLE) => {}
                }
                continue;
            };
            match self.shared.drive.delete(task.as_deref(), &files).await {
                Ok(()) => {
                    info!(%gid, "deleted on the drive");
                    if let Err(e) = self.store().remove_now(gid) {
                        tracing::warn!(%gid, error = %e, "cannot forget a deleted task");
                        retry_at.insert(gid, Instant::now() + DELETE_RETRY);
                    }
                }
                Err(e) => {
                    debug!(%gid, error = %e, "deleting on the drive failed; trying again later");
                    retry_at.insert(gid, Instant::now() + DELETE_RETRY);
                }
            }
        }
    }

    async fn submit_loop(&self) {
        loop {
            if !self.submit_next().await {
                tokio::select! {
                    () = self.shared.wake.notified() => {}
                    () = tokio::time::sleep(IDLE) => {}
                }
            }
        }
    }

    /// The callback URL of a task, when the daemon receives callbacks.
    fn callback_url(&self, gid: Gid, token: Option<&str>) -> Option<String> {
        let base = self.shared.callback_base.as_deref()?;
        Some(format!("{base}/callback/{gid}/{}", token?))
    }

    /// Looks for one lost row that is due in the drive's task list
    /// ([`Drive::reconcile`]); whether there was one.
    async fn reconcile_next(&self) -> bool {
        let due = {
            let mut store = self.store();
            // Rows removed meanwhile (removeDownloadResult, purge) are forgotten.
            let Store { lost, tasks, .. } = &mut *store;
            lost.retain(|gid, _| tasks.contains_key(gid));
            let now = Instant::now();
            store
                .lost
                .iter()
                .find(|(_, at)| **at <= now)
                .map(|(gid, _)| *gid)
                .and_then(|gid| store.tasks.get(&gid).map(|t| (gid, t.entry.clone())))
                .map(|(gid, entry)| (gid, entry, store.task_ids()))
        };
        let Some((gid, entry, mut claimed)) = due else {
            return false;
        };
        if let Some(own) = &entry.task {
            claimed.remove(own);
        }
        let lost = Lost {
            source: &entry.source,
            name: entry.name.as_deref(),
            task_url: entry.task_url.as_deref(),
            submitted_at: entry.submitted_at,
            claimed: &claimed,
        };
        let found = self.shared.drive.reconcile(&lost).await;
        let mut store = self.store();
        if store.task(gid).map(|t| t.state) == Some(TaskState::Removed) {
            store.lost.remove(&gid);
            return true;
        }
        match found {
            Reconciled::Found(id) => {
                info!(%gid, task = %id, "a create whose answer was lost is in the task list");
                store.lost.remove(&gid);
                store.record(gid, Row::Submitted, Some(&id), None, TaskState::Running);
                self.shared.track.notify_one();
            }
            Reconciled::Absent => {
                info!(%gid, "a create whose answer was lost is not in the task list: pending again");
                store.lost.remove(&gid);
                store.record(gid, Row::Pending, None, None, TaskState::Queued);
            }
            Reconciled::Unknown(reason) => {
                store.lost.remove(&gid);
                store.record_unknown(gid, &reason);
            }
            Reconciled::Retry(reason) => {
                debug!(%gid, %reason, "the task list could not be read; looking again later");
                store.lost.insert(gid, Instant::now() + RECONCILE_RETRY);
            }
        }
        true
    }

    /// Submits the first pending row, if any (after any lost row that is due to be
    /// looked for); whether there was one.
    async fn submit_next(&self) -> bool {
        if self.reconcile_next().await {
            return true;
        }
        let next = {
            let store = self.store();
            // A held task (added paused) waits until released.
            let first = store
                .in_queue(Queue::Waiting)
                .find(|t| !t.view.held)
                .map(|t| {
                    (
                        t.view.gid,
                        t.entry.clone(),
                        Job {
                            source: t.entry.source.clone(),
                            torrent: t.torrent.as_deref().and_then(crate::store::torrent_bytes),
                            dir: t.dir.clone().or_else(|| self.shared.default_dir.clone()),
                            out: t.out.clone(),
                            callback_url: None,
                            wanted: t.wanted(),
                        },
                        t.callback.clone(),
                    )
                });
            first
        };
        let Some((gid, entry, mut job, token)) = next else {
            return false;
        };
        job.callback_url = self.callback_url(gid, token.as_deref());
        self.store().set_state(gid, TaskState::Submitting);
        let kind = self.shared.drive.kind();
        let claim = |step: Claim<'_>| {
            let mut store = self.store();
            let written = match step {
                Claim::Parsed {
                    name,
                    task_url,
                    files,
                } => {
                    let written = store.journal.set_name(&entry, name, task_url);
                    store.set_parsed_files(gid, files);
                    if let Some(t) = store.tasks.get_mut(&gid) {
                        t.entry.name = Some(name.to_owned());
                        t.entry.task_url = task_url.map(str::to_owned);
                        if t.out.is_none() {
                            t.view.name = Some(name.to_owned());
                        }
                    }
                    written
                }
                Claim::Sending => {
                    let written = store.journal.claim(&entry, kind);
                    if let Some(t) = store.tasks.get_mut(&gid) {
                        t.entry.submitted_at = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .ok()
                            .and_then(|d| i64::try_from(d.as_millis()).ok());
                    }
                    written
                }
            };
            if let Err(e) = written {
                tracing::warn!(error = %e, "cannot record a submission in the task store");
            }
        };
        let outcome = self.shared.drive.submit(&job, &claim).await;
        if !self.record_submission(gid, &entry, outcome) {
            tokio::time::sleep(NOT_SENT_PAUSE).await;
        }
        true
    }

    /// Records what a submission came to; `false` when it was certainly not sent (try
    /// again after a pause).
    fn record_submission(
        &self,
        gid: Gid,
        entry: &offline_store::Entry,
        outcome: Submitted,
    ) -> bool {
        let mut store = self.store();
        if store.task(gid).map(|t| t.state) == Some(TaskState::Removed) {
            // Removed while it was being sent: the row keeps what the drive said.
            if let Submitted::Created(id) = &outcome {
                let _ = store.journal.set(entry, Row::Submitted, Some(id), None);
            }
            return true;
        }
        match outcome {
            Submitted::Created(id) => {
                info!(%gid, task = %id, "submitted");
                store.record(gid, Row::Submitted, Some(&id), None, TaskState::Running);
                self.shared.track.notify_one();
            }
            Submitted::Unknown(reason) => {
                if self.shared.drive.reconciles() {
                    // Looked for in the task list in a moment.
                    store.lost.insert(gid, Instant::now() + RECONCILE_AFTER);
                }
                store.record_unknown(gid, &reason);
            }
            Submitted::NotSent(reason) => {
                // Certainly not sent: it stays pending and is tried again later.
                debug!(%gid, %reason, "submission not sent; will try again");
                store.record(gid, Row::Pending, None, None, TaskState::Queued);
                return false;
            }
            Submitted::Refused(reason) => {
                store.record(
                    gid,
                    Row::Failed,
                    None,
                    Some(&reason),
                    TaskState::Failed(Failure {
                        kind: FailureKind::Unknown,
                        message: reason.clone(),
                    }),
                );
            }
        }
        true
    }

    /// The running tasks with their drive task IDs.
    fn running(&self) -> BTreeMap<Gid, String> {
        let store = self.store();
        store
            .in_queue(Queue::Active)
            .filter(|t| t.view.state == TaskState::Running)
            .filter_map(|t| Some((t.view.gid, t.entry.task.clone()?)))
            .collect()
    }

    /// Tracks running tasks: each is asked when the tracker says it is due (within
    /// the drive's progress budget), and at once when a callback names it.
    async fn track_loop(&self) {
        let Some(mut hints) = self
            .shared
            .hints_rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let mut tracker: Scheduler<Gid> =
            Scheduler::new(self.shared.drive.progress_budget(), PollPolicy::default());
        let mut ids: BTreeMap<Gid, String> = BTreeMap::new();
        let mut asking: JoinSet<(Gid, Result<Observed, String>)> = JoinSet::new();
        // The files callbacks named, and the lookups of finished tasks' files.
        let mut files: BTreeMap<Gid, u64> = BTreeMap::new();
        let mut looking: JoinSet<(Gid, Option<Stored>)> = JoinSet::new();
        loop {
            // Newly running tasks join; removed ones leave.
            let running = self.running();
            let now = Instant::now().into_std();
            for gid in running.keys().filter(|g| !ids.contains_key(g)) {
                tracker.add(*gid, now);
            }
            for gid in ids.keys().filter(|g| !running.contains_key(g)) {
                let _ = tracker.remove(gid);
            }
            ids = running;
            let next = if asking.len() < IN_FLIGHT {
                tracker.poll(now)
            } else {
                Next::Awaiting
            };
            let wait_until = match next {
                Next::Poll(gid) => {
                    if let Some(id) = ids.get(&gid).cloned() {
                        self.ask(&mut asking, gid, id);
                    } else {
                        let _ = tracker.remove(&gid);
                    }
                    continue;
                }
                Next::At(at) => Some(Instant::from_std(at)),
                Next::Awaiting | Next::Done => None,
            };
            let sleep =
                tokio::time::sleep_until(wait_until.unwrap_or_else(|| Instant::now() + IDLE));
            tokio::select! {
                () = sleep => {}
                () = self.shared.track.notified() => {}
                Some(joined) = asking.join_next(), if !asking.is_empty() => {
                    if let Ok((gid, answer)) = joined {
                        let now = Instant::now().into_std();
                        match answer {
                            Ok(observed) => {
                                let ended = observed.ended.is_some();
                                if self.observed(gid, &observed) {
                                    self.look_up(&mut looking, gid, files.remove(&gid));
                                }
                                tracker.handle_progress(&gid, observed.percent, ended, now);
                            }
                            Err(e) => {
                                debug!(%gid, error = %e, "progress call failed; asking again later");
                                tracker.handle_error(&gid, now, None);
                            }
                        }
                    }
                }
                Some((gid, hint)) = hints.recv() => {
                    match ids.get(&gid).cloned() {
                        // A hint: one confirming progress call, now.
                        Some(id) => {
                            if let Some(file) = hint.file_id {
                                files.insert(gid, file);
                            }
                            self.ask(&mut asking, gid, id);
                        }
                        None => self.unknown_hint(gid, hint).await,
                    }
                }
                Some(found) = looking.join_next(), if !looking.is_empty() => {
                    if let Ok((gid, Some(stored))) = found {
                        self.store().set_stored(gid, &stored);
                    }
                }
            }
        }
    }

    fn ask(&self, asking: &mut JoinSet<(Gid, Result<Observed, String>)>, gid: Gid, id: String) {
        let gateway = self.clone();
        asking.spawn(async move {
            let answer = gateway.shared.drive.progress(&id).await;
            (gid, answer)
        });
    }

    /// Looks up the file a completed task stored (its name and length).
    fn look_up(
        &self,
        looking: &mut JoinSet<(Gid, Option<Stored>)>,
        gid: Gid,
        file_id: Option<u64>,
    ) {
        let (dir, name) = {
            let store = self.store();
            let Some(task) = store.tasks.get(&gid) else {
                return;
            };
            let dir = task.dir.clone().or_else(|| self.shared.default_dir.clone());
            let Some(name) = task.view.name.clone() else {
                return;
            };
            (dir, name)
        };
        let gateway = self.clone();
        looking.spawn(async move {
            let found = gateway
                .shared
                .drive
                .stored(dir.as_deref(), &name, file_id)
                .await;
            (gid, found)
        });
    }

    /// Applies what a progress call saw; whether the task completed now.
    fn observed(&self, gid: Gid, observed: &Observed) -> bool {
        let mut store = self.store();
        let Some(task) = store.tasks.get_mut(&gid) else {
            return false;
        };
        if task.view.state != TaskState::Running {
            return false; // removed meanwhile
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let percent = observed.percent.clamp(0.0, 100.0).round() as u8;
        if let Some(total) = observed.total_length {
            task.view.total_length = Some(total);
        }
        task.view.progress = match observed.completed_length {
            Some(done) if task.view.total_length() > 0 => Progress::Bytes(done),
            _ => Progress::Percent(percent),
        };
        match &observed.ended {
            Some(Ok(())) => {
                store.set_state(gid, TaskState::Complete);
                return true;
            }
            Some(Err(reason)) => store.set_state(
                gid,
                TaskState::Failed(Failure {
                    kind: FailureKind::NotFound,
                    message: reason.clone(),
                }),
            ),
            None => {}
        }
        false
    }

    /// A callback for a task with no task ID to ask about: its create's answer was
    /// lost. The callback (its URL names the task's GID and a token only the drive was
    /// told) shows the create did reach the drive; what it says of the end is checked
    /// with the drive where it can be ([`Drive::confirm_file`]).
    async fn unknown_hint(&self, gid: Gid, hint: Hint) {
        let (source, name) = {
            let store = self.store();
            match store.tasks.get(&gid) {
                Some(t) if t.entry.state == Row::Unknown && t.entry.source == hint.url => {
                    (t.entry.source.clone(), t.view.name.clone())
                }
                _ => return,
            }
        };
        let verdict = self.shared.drive.confirm_file(&hint, name.as_deref()).await;
        let state = match verdict {
            Ok(()) if hint.succeeded => {
                info!(%gid, %source, "an add whose answer was lost is confirmed by its callback");
                TaskState::Complete
            }
            Ok(()) => TaskState::Failed(Failure {
                kind: FailureKind::NotFound,
                message: format!(
                    "the drive's callback reports the task failed: {}",
                    hint.reason
                ),
            }),
            Err(e) => {
                debug!(%gid, error = %e, "a callback for an unknown add could not be checked");
                return;
            }
        };
        let complete = state == TaskState::Complete;
        self.store().record(gid, Row::Submitted, None, None, state);
        if let (true, Some(name)) = (complete, &name) {
            if let Some(stored) = self.shared.drive.stored(None, name, hint.file_id).await {
                self.store().set_stored(gid, &stored);
            }
        }
    }
}
