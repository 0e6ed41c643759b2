//! Parsing links and torrents, choosing files, adding tasks, listing, waiting,
//! deleting.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Instant, SystemTime};

use futures_util::stream::{BoxStream, StreamExt};
use offline_proto::qetag::Etag;
use offline_proto::sixpan::{
    AddRequest, AddTask, DeleteRequest, OfflineTask, PageRequest, ParseResult, ParseTorrentRequest,
    ParseUrlRequest, TaskPage, TaskStatus,
};
use offline_proto::tracker::{Next, Tracker};
use offline_proto::HttpClient;

use crate::{Error, SixPan};

/// The largest page `tasks` asks for.
pub const PAGE_SIZE: u32 = 100;

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

/// Whether a task status is final: failed, partly done or done.
pub fn is_final(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Failed | TaskStatus::PartlyDone | TaskStatus::Done
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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
        self.call(&ParseUrlRequest::new(links)).await
    }

    /// Parses torrents already in the drive, by their etags.
    ///
    /// # Errors
    ///
    /// [`Error::Api`]: `FILE_NOT_FOUND` (as `ApiError::NotFound`) when a hash is not in
    /// the drive, `UNSUPPORTED_FILE` when it is not a torrent.
    pub async fn parse_torrents(&self, etags: &[Etag]) -> Result<Vec<ParseResult>, Error> {
        self.call(&ParseTorrentRequest {
            hash: etags.to_vec(),
        })
        .await
    }

    /// Adds tasks into the folder `path` (absolute, e.g. `/downloads`). Returns the
    /// tasks as listed right after adding (matched by name among the tasks created
    /// since the call started).
    ///
    /// If the answer is lost after the request may have arrived, the task list is
    /// checked: when every task shows up, the add counts as done; otherwise
    /// [`Error::OutcomeUnknown`]. The request is never sent twice.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] (empty task list, relative path), [`Error::Api`] (a tampered
    /// identity is refused by the service), [`Error::OutcomeUnknown`].
    pub async fn add_tasks(
        &self,
        path: &str,
        tasks: Vec<(String, AddTask)>,
    ) -> Result<Vec<OfflineTask>, Error> {
        let names: Vec<String> = tasks.iter().map(|(n, _)| n.clone()).collect();
        let request = AddRequest {
            path: path.to_owned(),
            task: tasks.into_iter().map(|(_, t)| t).collect(),
        };
        let since = now_ms() - 2_000;
        match self.call(&request).await {
            Ok(_) => self.find_added(&names, since).await,
            Err(Error::OutcomeUnknown { endpoint, source }) => {
                tracing::debug!(error = %source, "add's answer lost; reconciling with the task list");
                match self.find_added(&names, since).await {
                    Ok(found) if found.len() >= names.len() => Ok(found),
                    _ => Err(Error::OutcomeUnknown { endpoint, source }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The newest task of each name created at or after `since_ms`.
    async fn find_added(&self, names: &[String], since_ms: i64) -> Result<Vec<OfflineTask>, Error> {
        let mut wanted: BTreeMap<&str, usize> = BTreeMap::new();
        for n in names {
            *wanted.entry(n.as_str()).or_default() += 1;
        }
        let mut found = Vec::new();
        let mut stream = self.tasks();
        while let Some(task) = stream.next().await {
            let task = task?;
            if task.create_time.is_some_and(|t| t < since_ms) {
                break; // newest first: the rest is older
            }
            if let Some(count) = wanted.get_mut(task.name.as_str()) {
                if *count > 0 {
                    *count -= 1;
                    found.push(task);
                }
            }
            if wanted.values().all(|c| *c == 0) {
                break;
            }
        }
        Ok(found)
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
                    r.name,
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
        self.add_tasks(path, vec![(result.name.clone(), task)])
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
        self.call(&PageRequest { page, page_size }).await
    }

    /// Every task, page after page ([`PAGE_SIZE`] a page), as a stream; stops at the
    /// first error.
    pub fn tasks(&self) -> BoxStream<'_, Result<OfflineTask, Error>> {
        struct St {
            page: u32,
            buffer: VecDeque<OfflineTask>,
            done: bool,
        }
        let start = St {
            page: 1,
            buffer: VecDeque::new(),
            done: false,
        };
        futures_util::stream::unfold(start, move |mut st| async move {
            loop {
                if let Some(t) = st.buffer.pop_front() {
                    return Some((Ok(t), st));
                }
                if st.done {
                    return None;
                }
                match self.task_page(st.page, PAGE_SIZE).await {
                    Ok(page) => {
                        let last_page = page.total_page.is_some_and(|n| u64::from(st.page) >= n);
                        st.done = page.list.is_empty()
                            || last_page
                            || page.list.len() < PAGE_SIZE as usize;
                        st.page += 1;
                        st.buffer.extend(page.list);
                    }
                    Err(e) => {
                        st.done = true;
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
    pub async fn delete(&self, identities: &[String]) -> Result<u64, Error> {
        self.call(&DeleteRequest {
            identities: identities.to_vec(),
        })
        .await
    }

    /// Watches tasks by identity until each is final (done, partly done, failed) or
    /// gone: a stream of every change seen. Tasks are read from the list (the only
    /// progress call 6pan has), one listing serving every watched task, at the
    /// builder's poll policy and within the list endpoint's rate limit.
    pub fn wait(&self, identities: Vec<String>) -> BoxStream<'_, Result<OfflineTask, Error>> {
        struct St {
            tracker: Tracker<u8>,
            pending: BTreeSet<String>,
            last: BTreeMap<String, (TaskStatus, Option<f64>)>,
            ready: VecDeque<Result<OfflineTask, Error>>,
            misses: u32,
        }
        let mut tracker = Tracker::new(self.inner.poll_policy);
        tracker.add(0u8, Instant::now());
        let st = St {
            tracker,
            pending: identities.into_iter().collect(),
            last: BTreeMap::new(),
            ready: VecDeque::new(),
            misses: 0,
        };
        futures_util::stream::unfold(st, move |mut st| async move {
            loop {
                if let Some(item) = st.ready.pop_front() {
                    return Some((item, st));
                }
                if st.pending.is_empty() {
                    return None;
                }
                match st.tracker.poll(Instant::now()) {
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
                                        if is_final(task.status) {
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
                            st.misses += 1;
                            if st.misses >= 5 {
                                st.pending.clear();
                                st.ready.push_back(Err(e));
                            }
                            st.tracker.handle_error(&k, Instant::now(), None);
                            continue;
                        }
                        st.misses = 0;
                        // Tasks that vanished (deleted elsewhere) end the watch for them.
                        st.pending.retain(|id| seen.contains(id));
                        st.tracker
                            .handle_progress(&k, st.pending.is_empty(), Instant::now());
                    }
                    Next::At(when) => tokio::time::sleep_until(when.into()).await,
                    Next::Awaiting | Next::Done => return None,
                }
            }
        })
        .boxed()
    }
}
