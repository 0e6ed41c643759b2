//! Watching tasks until they end, as a stream of progress updates.

use std::collections::VecDeque;

use futures_util::stream::{BoxStream, StreamExt};
use offline_proto::clock::Clock;
use offline_proto::pan123::{TaskId, TaskStatus};
use offline_proto::tracker::{Next, Tracker};
use offline_proto::HttpClient;

use crate::{Error, Pan123};

/// Which kind of offline task: the two have separate progress endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskKind {
    /// A cloud-drive download (`/api/v1/offline/download`).
    CloudDrive,
    /// An image-bed migration (`/api/v1/oss/offline/download`).
    ImageBed,
}

impl TaskKind {
    /// `cloud` or `image`, for humans and `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CloudDrive => "cloud",
            Self::ImageBed => "image",
        }
    }
}

/// A task to watch: its ID and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskRef {
    /// The provider's task ID.
    pub id: TaskId,
    /// Which endpoint family it belongs to.
    pub kind: TaskKind,
}

impl TaskRef {
    /// A cloud-drive task.
    pub fn cloud(id: TaskId) -> Self {
        Self {
            id,
            kind: TaskKind::CloudDrive,
        }
    }

    /// An image-bed task.
    pub fn image(id: TaskId) -> Self {
        Self {
            id,
            kind: TaskKind::ImageBed,
        }
    }
}

/// One observation of a task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// The task.
    pub task: TaskRef,
    /// Its state; [`TaskStatus::is_final`] on the last update of a task.
    pub status: TaskStatus,
    /// Progress in percent, 0 to 100, as the provider reports it.
    pub percent: f64,
}

impl<C: HttpClient> Pan123<C> {
    /// The progress of `task`, from the endpoint of its kind.
    ///
    /// # Errors
    ///
    /// As [`Pan123::process`].
    pub async fn progress(&self, task: TaskRef) -> Result<Progress, Error> {
        let p = match task.kind {
            TaskKind::CloudDrive => self.process(task.id).await?,
            TaskKind::ImageBed => self.oss_process(task.id).await?,
        };
        Ok(Progress {
            task,
            status: p.status,
            percent: p.process,
        })
    }

    /// Watches one task: a stream of its progress updates, ending after the update
    /// with a final status (failed or succeeded), or after an error.
    ///
    /// Polls immediately, then at growing intervals (the builder's
    /// [`poll_policy`](crate::Pan123Builder::poll_policy)), within the progress
    /// endpoint's rate limit. A rate-limit answer or a broken connection is retried
    /// (up to 5 in a row) without ending the stream.
    ///
    /// The stream is boxed, so it can be used without pinning.
    pub fn wait(&self, task: TaskRef) -> BoxStream<'_, Result<Progress, Error>> {
        self.wait_all([task]).map(|(_, r)| r).boxed()
    }

    /// Watches many tasks at once: a stream of `(task, update)` pairs, each task
    /// ending after its final update or an error; the stream ends when every task
    /// has. Tasks are polled one at a time, earliest due first.
    pub fn wait_all(
        &self,
        tasks: impl IntoIterator<Item = TaskRef>,
    ) -> BoxStream<'_, (TaskRef, Result<Progress, Error>)> {
        let now = self.clock().now();
        let mut tracker = Tracker::new(self.poll_policy());
        for task in tasks {
            tracker.add(task, now);
        }
        let state = WaitState {
            client: self,
            tracker,
            ready: VecDeque::new(),
        };
        futures_util::stream::unfold(state, |mut st| async move {
            let item = st.next().await?;
            Some((item, st))
        })
        .boxed()
    }

    /// Waits for `task` to end and returns its final progress.
    ///
    /// # Errors
    ///
    /// The error that ended the watch.
    pub async fn wait_final(&self, task: TaskRef) -> Result<Progress, Error> {
        let mut last = None;
        let mut stream = self.wait(task);
        while let Some(update) = stream.next().await {
            last = Some(update?);
        }
        last.ok_or_else(|| Error::Config("the watch ended without an update".to_owned()))
    }
}

struct WaitState<'a, C: HttpClient> {
    client: &'a Pan123<C>,
    tracker: Tracker<TaskRef>,
    ready: VecDeque<(TaskRef, Result<Progress, Error>)>,
}

impl<C: HttpClient> WaitState<'_, C> {
    async fn next(&mut self) -> Option<(TaskRef, Result<Progress, Error>)> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            match self.tracker.poll(self.client.clock().now()) {
                Next::Poll(task) => self.poll_one(task).await,
                Next::At(when) => tokio::time::sleep_until(when.into()).await,
                // This driver polls one task at a time, so nothing is ever outstanding.
                Next::Awaiting | Next::Done => return None,
            }
        }
    }

    async fn poll_one(&mut self, task: TaskRef) {
        let result = self.client.progress(task).await;
        let now = self.client.clock().now();
        match result {
            Ok(p) => {
                self.tracker
                    .handle_progress(&task, p.status.is_final(), now);
                self.ready.push_back((task, Ok(p)));
            }
            Err(e) => {
                if self.tracker.handle_failure(&task, now, e.ask_again_later()) {
                    tracing::debug!(task = %task.id, error = %e, "progress call failed; asking again later");
                } else {
                    self.ready.push_back((task, Err(e)));
                }
            }
        }
    }
}
