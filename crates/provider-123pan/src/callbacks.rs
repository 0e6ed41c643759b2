//! Watching tasks with the help of callbacks: a task whose callback URL points at a
//! receiver the caller runs is not polled; its callback triggers one confirming
//! progress call.
//!
//! A callback names the task's source URL, not its ID, and anybody who can reach the
//! receiver could send one, so a callback is only a hint: the task (each running task
//! of that URL, if several share it) is asked once, and only the progress endpoint's
//! answer ends its watch. Tasks given without a URL are polled as
//! [`Pan123::wait_all`] polls them. Every call waits for the progress endpoint's rate
//! limit, so a burst of callbacks is confirmed at the limit, never above it.
//!
//! A callback can be lost (the receiver was down, the provider gave up): a task that
//! waits for one is still asked at long intervals, [`CALLBACK_FALLBACK`], and when the
//! callback stream ends every such task goes back to normal polling.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use futures_util::stream::{BoxStream, Stream, StreamExt};
use offline_proto::clock::Clock;
use offline_proto::pan123::Callback;
use offline_proto::tracker::{Next, PollPolicy, Tracker};
use offline_proto::HttpClient;

use crate::wait::{Progress, TaskRef};
use crate::{Error, Pan123};

/// How often a task that waits for its callback is asked anyway: first after 30 s,
/// then every minute.
pub const CALLBACK_FALLBACK: PollPolicy = PollPolicy {
    initial: Duration::from_secs(30),
    max: Duration::from_secs(60),
    factor: 2.0,
};

/// A task to watch, and the source URL its callback will name when the task was
/// created with a callback URL the caller receives (`None`: poll it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// The task.
    pub task: TaskRef,
    /// The source URL the task was created with, when its callback is expected.
    pub callback_url: Option<String>,
}

impl<C: HttpClient> Pan123<C> {
    /// Watches many tasks, letting `callbacks` (the callbacks the caller's receiver
    /// got, in any order, for these tasks or others) say when to ask: a stream of
    /// `(task, update)` pairs like [`wait_all`](Self::wait_all)'s, ending when every
    /// task has ended. See the [module docs](crate::callbacks).
    ///
    /// A task with a `callback_url` is asked once when a callback names that URL (one
    /// confirming progress call), and otherwise only every [`CALLBACK_FALLBACK`]; a
    /// task without one is polled with the builder's
    /// [`poll_policy`](crate::Pan123Builder::poll_policy). Only final updates and
    /// errors are certain to be reported for callback tasks.
    pub fn wait_with_callbacks<'a, S>(
        &'a self,
        tasks: impl IntoIterator<Item = Watched>,
        callbacks: S,
    ) -> BoxStream<'a, (TaskRef, Result<Progress, Error>)>
    where
        S: Stream<Item = Callback> + Send + 'a,
    {
        let now = self.clock().now();
        let mut polled = Tracker::new(self.poll_policy());
        let mut hinted = Tracker::new(CALLBACK_FALLBACK);
        let mut by_url: BTreeMap<String, Vec<TaskRef>> = BTreeMap::new();
        for Watched { task, callback_url } in tasks {
            match callback_url {
                Some(url) => {
                    hinted.add(task, now + CALLBACK_FALLBACK.initial);
                    by_url.entry(url).or_default().push(task);
                }
                None => polled.add(task, now),
            }
        }
        let state = CallbackWait {
            client: self,
            polled,
            hinted,
            by_url,
            callbacks: Some(callbacks.boxed()),
            ready: VecDeque::new(),
            finished: BTreeSet::new(),
        };
        futures_util::stream::unfold(state, |mut st| async move {
            let item = st.next().await?;
            Some((item, st))
        })
        .boxed()
    }
}

/// Which tracker a task is in.
#[derive(Clone, Copy)]
enum Queue {
    Polled,
    Hinted,
}

struct CallbackWait<'a, C: HttpClient> {
    client: &'a Pan123<C>,
    /// Tasks polled at the poll policy.
    polled: Tracker<TaskRef>,
    /// Tasks that wait for a callback (asked at once when one comes, else rarely).
    hinted: Tracker<TaskRef>,
    by_url: BTreeMap<String, Vec<TaskRef>>,
    /// `None` once the callbacks stream ended.
    callbacks: Option<BoxStream<'a, Callback>>,
    ready: VecDeque<(TaskRef, Result<Progress, Error>)>,
    /// Tasks whose watch ended (a final update or an error).
    finished: BTreeSet<TaskRef>,
}

impl<C: HttpClient> CallbackWait<'_, C> {
    async fn next(&mut self) -> Option<(TaskRef, Result<Progress, Error>)> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            let now = self.client.clock().now();
            let mut wake: Option<Instant> = None;
            let mut done = true;
            for queue in [Queue::Polled, Queue::Hinted] {
                match self.tracker(queue).poll(now) {
                    Next::Poll(task) => {
                        self.ask(queue, task).await;
                        done = false;
                        wake = Some(now);
                        break;
                    }
                    Next::At(at) => {
                        done = false;
                        wake = Some(wake.map_or(at, |w| w.min(at)));
                    }
                    Next::Awaiting => done = false,
                    Next::Done => {}
                }
            }
            if done {
                return None;
            }
            if wake == Some(now) {
                continue;
            }
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let Some(callbacks) = self.callbacks.as_mut() else {
                sleep.await;
                continue;
            };
            tokio::select! {
                () = sleep => {}
                callback = callbacks.next() => match callback {
                    Some(callback) => self.hint(&callback.url),
                    None => self.callbacks_ended(),
                },
            }
        }
    }

    fn tracker(&mut self, queue: Queue) -> &mut Tracker<TaskRef> {
        match queue {
            Queue::Polled => &mut self.polled,
            Queue::Hinted => &mut self.hinted,
        }
    }

    /// A callback named `url`: each task of that URL still waiting is asked now.
    fn hint(&mut self, url: &str) {
        let now = self.client.clock().now();
        let Some(tasks) = self.by_url.get(url) else {
            tracing::debug!(url, "a callback for no watched task");
            return;
        };
        for task in tasks {
            // Restarting a finished or removed task would watch it again.
            if self.hinted.polls(task).is_some() && !self.finished.contains(task) {
                self.hinted.add(*task, now);
            }
        }
    }

    /// No callback will come any more: the tasks that waited for one are polled.
    fn callbacks_ended(&mut self) {
        self.callbacks = None;
        let now = self.client.clock().now();
        for tasks in self.by_url.values() {
            for task in tasks {
                if self.hinted.polls(task).is_some() && !self.finished.contains(task) {
                    self.hinted.remove(task);
                    self.polled.add(*task, now);
                }
            }
        }
    }

    async fn ask(&mut self, queue: Queue, task: TaskRef) {
        let result = self.client.progress(task).await;
        let now = self.client.clock().now();
        match result {
            Ok(p) => {
                let is_final = p.status.is_final();
                self.tracker(queue).handle_progress(&task, is_final, now);
                if is_final {
                    self.finished.insert(task);
                }
                self.ready.push_back((task, Ok(p)));
            }
            Err(e) => {
                if self
                    .tracker(queue)
                    .handle_failure(&task, now, e.ask_again_later())
                {
                    tracing::debug!(task = %task.id, error = %e, "progress call failed; asking again later");
                } else {
                    self.finished.insert(task);
                    self.ready.push_back((task, Err(e)));
                }
            }
        }
    }
}
