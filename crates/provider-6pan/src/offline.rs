//! Parsing links and torrents, choosing files, adding tasks, listing, waiting,
//! deleting.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, SystemTime};

use futures_util::stream::{BoxStream, StreamExt};
use offline_proto::clock::Clock;
use offline_proto::qetag::Etag;
use offline_proto::sixpan::tasks::{Expected, Match, Pager, Reconciler, MAX_PAGES};
use offline_proto::sixpan::{
    AddRequest, AddTask, DeleteRequest, OfflineTask, PageRequest, ParseResult, ParseTorrentRequest,
    ParseUrlRequest, TaskId, TaskPage, TaskStatus,
};
use offline_proto::tracker::{Next, Tracker};
use offline_proto::HttpClient;

use crate::{Error, SixPan};

pub use offline_proto::sixpan::tasks::PAGE_SIZE;

/// How far the server's creation time of a task may lie before the moment the add
/// was sent, as estimated from the server's own `Date` header (1 s resolution, plus
/// the time the server takes): 3 s.
pub const CREATE_TIME_TOLERANCE: Duration = Duration::from_secs(3);

/// Which files of a parse result to download.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Selection {
    /// Every file.
    #[default]
    All,
    /// Files by their index in the torrent (`fileIndex`, from 0).
    Indices(Vec<usize>),
    /// Files by exact name or path.
    Names(Vec<String>),
    /// Files whose path (or name) matches any of these glob patterns (`*.txt`,
    /// `season1/**`).
    Globs(Vec<String>),
}

impl Selection {
    /// The `iginreFiles` list for `result`: the `pathIdentity` of every file NOT
    /// selected; `None` when every file is selected.
    ///
    /// # Errors
    ///
    /// [`Error::Selection`] when a pattern is not a valid glob, a named file or index is
    /// not there, nothing is selected, or files are chosen from a result without a file
    /// list (a plain link).
    pub fn ignore_list(&self, result: &ParseResult) -> Result<Option<Vec<String>>, Error> {
        if *self == Self::All {
            return Ok(None);
        }
        if result.files.is_empty() {
            return Err(Error::Selection(format!(
                "{:?} has no file list to choose from",
                result.name
            )));
        }
        let path_of = |i: usize| {
            let f = &result.files[i];
            f.path.clone().unwrap_or_else(|| f.name.clone())
        };
        let index_of = |i: usize| result.files[i].file_index.map_or(i, |x| x.max(0) as usize);
        let selected: BTreeSet<usize> = match self {
            Self::All => (0..result.files.len()).collect(),
            Self::Indices(wanted) => {
                let mut set = BTreeSet::new();
                for w in wanted {
                    let pos = (0..result.files.len())
                        .find(|&i| index_of(i) == *w)
                        .ok_or_else(|| Error::Selection(format!("no file with index {w}")))?;
                    set.insert(pos);
                }
                set
            }
            Self::Names(names) => {
                let mut set = BTreeSet::new();
                for n in names {
                    let pos = (0..result.files.len())
                        .find(|&i| result.files[i].name == *n || path_of(i) == *n)
                        .ok_or_else(|| Error::Selection(format!("no file named {n:?}")))?;
                    set.insert(pos);
                }
                set
            }
            Self::Globs(patterns) => {
                let compiled = patterns
                    .iter()
                    .map(|p| {
                        glob::Pattern::new(p)
                            .map_err(|e| Error::Selection(format!("bad pattern {p:?}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (0..result.files.len())
                    .filter(|&i| {
                        let path = path_of(i);
                        compiled
                            .iter()
                            .any(|p| p.matches(&path) || p.matches(&result.files[i].name))
                    })
                    .collect()
            }
        };
        if selected.is_empty() {
            return Err(Error::Selection(format!(
                "the selection matches no file of {:?}",
                result.name
            )));
        }
        if selected.len() == result.files.len() {
            return Ok(None);
        }
        Ok(Some(
            (0..result.files.len())
                .filter(|i| !selected.contains(i))
                .map(|i| result.files[i].path_identity.clone())
                .collect(),
        ))
    }
}

impl<C: HttpClient> SixPan<C> {
    /// Parses links (http, https, magnet, ed2k) into tasks to add, one result per link.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a link of another scheme or a malformed magnet/ed2k link
    /// (nothing sent); [`Error::Api`] with the service's code (`MAGNET_URL_INVALID`,
    /// `URL_NED_PASSWORD`, ...).
    pub async fn parse_urls<S: AsRef<str>>(&self, links: &[S]) -> Result<Vec<ParseResult>, Error> {
        self.call(ParseUrlRequest::new(links)).await
    }

    /// Parses torrents already in the drive, by their etags.
    ///
    /// # Errors
    ///
    /// [`Error::Api`]: `FILE_NOT_FOUND` (as `ApiError::NotFound`) when a hash is not in
    /// the drive, `UNSUPPORTED_FILE` when it is not a torrent.
    pub async fn parse_torrents(&self, etags: &[Etag]) -> Result<Vec<ParseResult>, Error> {
        self.call(ParseTorrentRequest {
            hash: etags.to_vec(),
        })
        .await
    }

    /// Adds tasks into the folder `path` (absolute, e.g. `/downloads`). Returns the
    /// tasks as listed right after adding, found by [`reconcile`](Self::reconcile):
    /// fewer than asked when the add was answered but a task could not be found. When
    /// the list cannot be read after an answered add, the result is
    /// [`Error::OutcomeUnknown`] (`Unknown::Unlisted`), never the listing's own error,
    /// which would read as "not added".
    ///
    /// If the answer is lost after the request may have arrived, the task list is
    /// checked: when every task is found (unambiguously), the add counts as done;
    /// otherwise [`Error::OutcomeUnknown`]. The request is never sent twice.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] (empty task list, relative path), [`Error::Api`] (a tampered
    /// identity is refused by the service), [`Error::OutcomeUnknown`].
    pub async fn add_tasks(
        &self,
        path: &str,
        tasks: Vec<(Expected, AddTask)>,
    ) -> Result<Vec<OfflineTask>, Error> {
        self.add_tasks_excluding(path, tasks, &BTreeSet::new())
            .await
    }

    /// [`add_tasks`](Self::add_tasks), never taking a task whose identity is in
    /// `claimed` for one of these (a batch passes the tasks its other lines own).
    ///
    /// # Errors
    ///
    /// As [`add_tasks`](Self::add_tasks).
    pub async fn add_tasks_excluding(
        &self,
        path: &str,
        tasks: Vec<(Expected, AddTask)>,
        claimed: &BTreeSet<TaskId>,
    ) -> Result<Vec<OfflineTask>, Error> {
        // A selection makes the task smaller than the parse result: its size says
        // nothing then.
        let (expected, task): (Vec<Expected>, Vec<AddTask>) = tasks
            .into_iter()
            .map(|(mut expected, task)| {
                if task.ignore_files.as_ref().is_some_and(|i| !i.is_empty()) {
                    expected.size = None;
                }
                (expected, task)
            })
            .unzip();
        let request = AddRequest {
            path: path.to_owned(),
            task,
        };
        let since = self.server_time_ms(CREATE_TIME_TOLERANCE);
        let sent = self.call(request).await;
        let unknown = match sent {
            Ok(_) => None,
            Err(Error::OutcomeUnknown { endpoint, source }) => {
                tracing::debug!(error = %source, "add's answer lost; reconciling with the task list");
                Some((endpoint, source))
            }
            Err(e) => return Err(e),
        };
        let matches = self.reconcile(expected, Some(since), claimed.clone()).await;
        match (unknown, matches) {
            (None, Ok(matches)) => Ok(found(matches)),
            // The add was carried out; only finding its tasks failed. Its error must
            // not be returned: it would read as "not added" and invite a resubmit.
            (None, Err(e)) => Err(Error::OutcomeUnknown {
                endpoint: offline_proto::sixpan::EndpointId::AddTasks,
                source: offline_proto::call::Unknown::Unlisted(e.to_string()),
            }),
            (Some((endpoint, source)), Ok(matches)) => {
                if matches.iter().all(|m| matches!(m, Match::Found(_))) {
                    Ok(found(matches))
                } else {
                    tracing::info!(?matches, "the lost add's tasks are not all in the list");
                    Err(Error::OutcomeUnknown { endpoint, source })
                }
            }
            (Some((endpoint, source)), Err(_)) => Err(Error::OutcomeUnknown { endpoint, source }),
        }
    }

    /// Finds the tasks an add of `expected` created, in the task list (newest first),
    /// among tasks created at or after `since_ms` (milliseconds on the server's clock;
    /// see [`server_time_ms`](Self::server_time_ms)) and not in `claimed`
    /// ([`Reconciler`]).
    ///
    /// # Errors
    ///
    /// As [`tasks`](Self::tasks).
    pub async fn reconcile(
        &self,
        expected: Vec<Expected>,
        since_ms: Option<i64>,
        claimed: BTreeSet<TaskId>,
    ) -> Result<Vec<Match>, Error> {
        let mut reconciler = Reconciler::new(expected, since_ms, claimed);
        let mut pager = Pager::new(PAGE_SIZE, MAX_PAGES);
        while let Some(request) = pager.next_request() {
            let page = self.call(request).await?;
            reconciler.handle_page(&page.list);
            pager.handle_page(&page).map_err(Error::Paging)?;
            if !reconciler.wants_more() {
                break;
            }
        }
        Ok(reconciler.finish())
    }

    /// The server's clock now, in milliseconds since the Unix epoch, minus `back`:
    /// estimated from the `Date` header of the latest answer, so that it can be
    /// compared with the server's `createTime` whatever the local clock says.
    pub fn server_time_ms(&self, back: Duration) -> i64 {
        let wall = self.inner.clock.wall();
        let server = self.state().server_time(wall);
        let server = server.checked_sub(back).unwrap_or(SystemTime::UNIX_EPOCH);
        server
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// Parses `links` and adds every result into `path`.
    ///
    /// # Errors
    ///
    /// As [`parse_urls`](Self::parse_urls) and [`add_tasks`](Self::add_tasks).
    pub async fn add_urls<S: AsRef<str>>(
        &self,
        links: &[S],
        path: &str,
    ) -> Result<Vec<OfflineTask>, Error> {
        let results = self.parse_urls(links).await?;
        let tasks = results
            .into_iter()
            .map(|r| {
                (
                    Expected::from_parse(&r),
                    AddTask {
                        identity: r.identity,
                        ignore_files: None,
                    },
                )
            })
            .collect();
        self.add_tasks(path, tasks).await
    }

    /// Adds one parse result (a torrent's) with a file selection into `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Selection`], and as [`add_tasks`](Self::add_tasks).
    pub async fn add_parsed(
        &self,
        result: &ParseResult,
        selection: &Selection,
        path: &str,
    ) -> Result<Vec<OfflineTask>, Error> {
        let ignore = selection.ignore_list(result)?;
        let task = AddTask {
            identity: result.identity.clone(),
            ignore_files: ignore,
        };
        self.add_tasks(path, vec![(Expected::from_parse(result), task)])
            .await
    }

    /// Puts a local torrent file in the drive ([`upload_torrent`](Self::upload_torrent):
    /// instant when the drive knows its etag), then adds it with `selection` into
    /// `path`. Returns the upload (its parse result lists every file) and the tasks.
    ///
    /// # Errors
    ///
    /// As [`upload_torrent`](Self::upload_torrent) and [`add_parsed`](Self::add_parsed);
    /// a selection error is found before the task is added.
    pub async fn add_torrent(
        &self,
        torrent: impl AsRef<std::path::Path>,
        selection: &Selection,
        path: &str,
    ) -> Result<(crate::TorrentUpload, Vec<OfflineTask>), Error> {
        let upload = self.upload_torrent(torrent).await?;
        let tasks = self.add_parsed(&upload.result, selection, path).await?;
        Ok((upload, tasks))
    }

    /// One page of tasks (from 1), newest first.
    ///
    /// # Errors
    ///
    /// As every call.
    pub async fn task_page(&self, page: u32, page_size: u32) -> Result<TaskPage, Error> {
        self.call(PageRequest { page, page_size }).await
    }

    /// Every task, page after page ([`PAGE_SIZE`] a page), as a stream; stops at the
    /// first error. Paging is bounded ([`Pager`]): by `totalPage`/`totalCount` when the
    /// server gives them, by [`MAX_PAGES`] otherwise, and a repeated page ends it with
    /// [`Error::Paging`].
    pub fn tasks(&self) -> BoxStream<'_, Result<OfflineTask, Error>> {
        struct St {
            pager: Pager,
            buffer: VecDeque<OfflineTask>,
            failed: bool,
        }
        let start = St {
            pager: Pager::default(),
            buffer: VecDeque::new(),
            failed: false,
        };
        futures_util::stream::unfold(start, move |mut st| async move {
            loop {
                if let Some(t) = st.buffer.pop_front() {
                    return Some((Ok(t), st));
                }
                if st.failed {
                    return None;
                }
                let request = st.pager.next_request()?;
                let answer = self.call(request).await.and_then(|page| {
                    let checked = st.pager.handle_page(&page).map_err(Error::Paging);
                    checked.map(|()| page)
                });
                match answer {
                    Ok(page) => st.buffer.extend(page.list),
                    Err(e) => {
                        st.failed = true;
                        return Some((Err(e), st));
                    }
                }
            }
        })
        .boxed()
    }

    /// Deletes tasks by identity; returns how many were deleted.
    ///
    /// # Errors
    ///
    /// As every call; [`Error::Invalid`] for an empty list.
    pub async fn delete(&self, identities: &[TaskId]) -> Result<u64, Error> {
        self.call(DeleteRequest {
            identities: identities.to_vec(),
        })
        .await
    }

    /// Watches tasks by identity until each is final (done, partly done, failed) or
    /// gone: a stream of every change seen. Tasks are read from the list (the only
    /// progress call 6pan has), one listing serving every watched task, at the
    /// builder's poll policy and within the list endpoint's rate limit.
    pub fn wait(&self, identities: Vec<TaskId>) -> BoxStream<'_, Result<OfflineTask, Error>> {
        struct St {
            tracker: Tracker<u8>,
            pending: BTreeSet<TaskId>,
            last: BTreeMap<TaskId, (TaskStatus, Option<f64>)>,
            ready: VecDeque<Result<OfflineTask, Error>>,
        }
        let mut tracker = Tracker::new(self.inner.poll_policy);
        tracker.add(0u8, self.inner.clock.now());
        let st = St {
            tracker,
            pending: identities.into_iter().collect(),
            last: BTreeMap::new(),
            ready: VecDeque::new(),
        };
        futures_util::stream::unfold(st, move |mut st| async move {
            loop {
                if let Some(item) = st.ready.pop_front() {
                    return Some((item, st));
                }
                if st.pending.is_empty() {
                    return None;
                }
                match st.tracker.poll(self.inner.clock.now()) {
                    Next::Poll(k) => {
                        let mut seen = BTreeSet::new();
                        let mut stream = self.tasks();
                        let mut failed = None;
                        while let Some(t) = stream.next().await {
                            match t {
                                Ok(task) if st.pending.contains(&task.identity) => {
                                    seen.insert(task.identity.clone());
                                    let now = (task.status, task.progress);
                                    if st.last.get(&task.identity) != Some(&now) {
                                        st.last.insert(task.identity.clone(), now);
                                        if task.status.is_final() {
                                            st.pending.remove(&task.identity);
                                        }
                                        st.ready.push_back(Ok(task));
                                    }
                                }
                                Ok(_) => {}
                                Err(e) => {
                                    failed = Some(e);
                                    break;
                                }
                            }
                        }
                        if let Some(e) = failed {
                            let now = self.inner.clock.now();
                            if !st.tracker.handle_failure(&k, now, e.ask_again_later()) {
                                st.pending.clear();
                                st.ready.push_back(Err(e));
                            }
                            continue;
                        }
                        // Tasks that vanished (deleted elsewhere) end the watch for them.
                        st.pending.retain(|id| seen.contains(id));
                        st.tracker.handle_progress(
                            &k,
                            st.pending.is_empty(),
                            self.inner.clock.now(),
                        );
                    }
                    Next::At(when) => tokio::time::sleep_until(when.into()).await,
                    Next::Awaiting | Next::Done => return None,
                }
            }
        })
        .boxed()
    }
}

fn found(matches: Vec<Match>) -> Vec<OfflineTask> {
    matches
        .into_iter()
        .filter_map(|m| match m {
            Match::Found(t) => Some(t),
            _ => None,
        })
        .collect()
}
