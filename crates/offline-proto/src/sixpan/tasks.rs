//! Reading 6pan's task list (`/v2/offline/page`): bounded paging ([`Pager`]), task
//! state ([`TaskStatus::is_final`]), and deciding which listed task an `add` created
//! ([`Reconciler`]) when its answer was lost.
//!
//! Sans-IO: the driver sends the [`PageRequest`]s the machines ask for and hands the
//! pages back.

use std::collections::BTreeSet;

use super::{OfflineTask, PageRequest, ParseResult, TaskId, TaskPage, TaskStatus};
use serde::{Deserialize, Serialize};

/// The page size a client asks for.
pub const PAGE_SIZE: u32 = 100;

/// The most pages one listing reads when the server says nothing of the total
/// (`totalPage`, `totalCount`): 1,000 pages of 100 tasks.
pub const MAX_PAGES: u32 = 1_000;

impl TaskId {
    /// The identity as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

crate::common::from_string!(TaskId => TaskId);

impl std::borrow::Borrow<str> for TaskId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TaskStatus {
    /// Whether the task has ended: failed, partly done or done. Downloading and unknown
    /// codes are not final.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Failed | Self::PartlyDone | Self::Done)
    }
}

/// Why a listing stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PagingError {
    /// The server answered a page with exactly the tasks of the page before it.
    #[error("page {page} repeats page {}: the server's paging is broken", page - 1)]
    RepeatedPage {
        /// The page that repeated.
        page: u32,
    },
    /// More pages than [`MAX_PAGES`] (or the given limit) without an end.
    #[error("the task list did not end within {pages} pages")]
    TooManyPages {
        /// The limit.
        pages: u32,
    },
}

/// Which page to ask for next, and when the list has ended.
///
/// The list ends at an empty or short page, at `totalPage` or at
/// ⌈`totalCount` / page size⌉ when the server gives them, and otherwise after
/// `max_pages` pages ([`PagingError::TooManyPages`]); a page identical to the one
/// before it ends the listing with [`PagingError::RepeatedPage`].
#[derive(Debug, Clone)]
pub struct Pager {
    next: u32,
    page_size: u32,
    max_pages: u32,
    last_page: Option<u64>,
    previous: Vec<TaskId>,
    done: bool,
}

impl Default for Pager {
    fn default() -> Self {
        Self::new(PAGE_SIZE, MAX_PAGES)
    }
}

impl Pager {
    /// A listing from page 1 in pages of `page_size` (1 at least), reading at most
    /// `max_pages` pages.
    pub fn new(page_size: u32, max_pages: u32) -> Self {
        Self {
            next: 1,
            page_size: page_size.max(1),
            max_pages,
            last_page: None,
            previous: Vec::new(),
            done: false,
        }
    }

    /// The next page to ask for, or `None` when the list has ended.
    pub fn next_request(&self) -> Option<PageRequest> {
        (!self.done).then_some(PageRequest {
            page: self.next,
            page_size: self.page_size,
        })
    }

    /// The page asked for last arrived.
    ///
    /// # Errors
    ///
    /// [`PagingError`] when the listing must stop early; it has ended then.
    pub fn handle_page(&mut self, page: &TaskPage) -> Result<(), PagingError> {
        let number = self.next;
        let ids: Vec<TaskId> = page.list.iter().map(|t| t.identity.clone()).collect();
        if !ids.is_empty() && ids == self.previous {
            self.done = true;
            return Err(PagingError::RepeatedPage { page: number });
        }
        let size = u64::from(self.page_size);
        let from_count = page.total_count.map(|c| c.div_ceil(size));
        if let Some(last) = page.total_page.or(from_count) {
            self.last_page = Some(last);
        }
        self.previous = ids;
        self.next = number.saturating_add(1);
        let short = page.list.len() < self.page_size as usize;
        let at_end = self.last_page.is_some_and(|last| u64::from(number) >= last);
        if page.list.is_empty() || short || at_end {
            self.done = true;
            return Ok(());
        }
        if number >= self.max_pages {
            self.done = true;
            return Err(PagingError::TooManyPages {
                pages: self.max_pages,
            });
        }
        Ok(())
    }

    /// Whether the list has ended.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// A task's `userIdentity`, kept as the server sent it: a number in every real client
/// (Mrs4s/six-cli `int64`, xiaopohou/FlyingPiggyCloud `int`, the Android client's
/// `Int`), a hex string in the seed's example. Displays as its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UserIdentity {
    /// A numeric identity.
    Number(i64),
    /// A textual identity.
    Text(String),
}

impl std::fmt::Display for UserIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(t) => f.write_str(t),
        }
    }
}

impl OfflineTask {
    /// Why the task failed, for people, when the listing says: for a failed (`-1`) or
    /// partly done (`900`) task, its `errorMessage`, followed by `(error code N)` when
    /// `errorCode` is set and not 0, or the code alone (`error code N`) without a
    /// message. `None` for a task still running or done, and when the listing gives
    /// neither (the seed's items carry no reason; Mrs4s/six-cli reads `errorCode` and
    /// `errorMessage`).
    pub fn failure_reason(&self) -> Option<String> {
        if !matches!(self.status, TaskStatus::Failed | TaskStatus::PartlyDone) {
            return None;
        }
        let message = self
            .error_message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty());
        let code = self.error_code.filter(|c| *c != 0);
        match (message, code) {
            (Some(m), Some(c)) => Some(format!("{m} (error code {c})")),
            (Some(m), None) => Some(m.to_owned()),
            (None, Some(c)) => Some(format!("error code {c}")),
            (None, None) => None,
        }
    }
}

/// What is known of one task an `add` asked for, to find it in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The name the task will have (the parse result's `name`).
    pub name: String,
    /// The item's server identity (the `identity` inside the parse result's blob; the
    /// info hash for a torrent), when known.
    pub identity: Option<String>,
    /// The size in bytes, when the parse result knew it (0 is unknown).
    pub size: Option<i64>,
    /// The URL the task will carry (the `url` inside the parse result's blob: the link,
    /// a magnet, or `qingzhen-internal://<etag>` for a torrent in the drive), which the
    /// listed task's `data.url` repeats when the server gives it ([`data_url`]). Tells
    /// apart tasks of one name (30 links to `…/same.bin`).
    pub url: Option<String>,
}

impl Expected {
    /// What a parse result says of the task it becomes.
    pub fn from_parse(result: &ParseResult) -> Self {
        Self {
            name: result.name.clone(),
            identity: Some(result.identity.view().identity.clone()).filter(|s| !s.is_empty()),
            size: i64::try_from(result.size).ok().filter(|s| *s > 0),
            url: result.identity.view().url.clone().filter(|s| !s.is_empty()),
        }
    }
}

/// Which listed task is the one an `add` created.
#[derive(Debug, Clone, PartialEq)]
// One short-lived value per expected task: boxing the task would only add an
// allocation (and change the variant's type for every caller).
#[allow(clippy::large_enum_variant)]
pub enum Match {
    /// Exactly one task fits.
    Found(OfflineTask),
    /// Several tasks fit and nothing tells them apart: their identities.
    Ambiguous(Vec<TaskId>),
    /// No task fits.
    Missing,
}

/// Finds the tasks an `add` created in the task list, on facts that do not depend on
/// the local clock: the name, the item's identity (in the task's `data`), the size,
/// and a creation time no earlier than `since_ms` on the **server's** clock (the
/// driver derives it from the server's `Date` header, with a tolerance), excluding
/// tasks already claimed (by another journal line, or by an earlier expected task).
///
/// Feed the pages newest first ([`handle_page`](Self::handle_page)) while
/// [`wants_more`](Self::wants_more); then [`finish`](Self::finish).
#[derive(Debug, Clone)]
pub struct Reconciler {
    expected: Vec<Expected>,
    since_ms: Option<i64>,
    claimed: BTreeSet<TaskId>,
    candidates: Vec<Vec<OfflineTask>>,
    older_seen: bool,
}

impl Reconciler {
    /// Looks for `expected`, among tasks created at or after `since_ms` (server
    /// milliseconds; `None`: any time), never matching an identity in `claimed`.
    pub fn new(expected: Vec<Expected>, since_ms: Option<i64>, claimed: BTreeSet<TaskId>) -> Self {
        let candidates = vec![Vec::new(); expected.len()];
        Self {
            expected,
            since_ms,
            claimed,
            candidates,
            older_seen: false,
        }
    }

    fn fits(expected: &Expected, task: &OfflineTask) -> bool {
        if task.name != expected.name {
            return false;
        }
        if let (Some(want), Some(have)) = (expected.size, task.size) {
            if have > 0 && want != have {
                return false;
            }
        }
        if let (Some(want), Some(have)) = (&expected.identity, data_identity(task)) {
            if *want != have {
                return false;
            }
        }
        if let (Some(want), Some(have)) = (&expected.url, data_url(task)) {
            if *want != have {
                return false;
            }
        }
        true
    }

    /// Reads one page of the list (newest first).
    pub fn handle_page(&mut self, page: &[OfflineTask]) {
        for task in page {
            if let (Some(since), Some(created)) = (self.since_ms, task.create_time) {
                if created < since {
                    self.older_seen = true;
                    continue;
                }
            }
            if self.claimed.contains(&task.identity) {
                continue;
            }
            for (i, expected) in self.expected.iter().enumerate() {
                if Self::fits(expected, task) {
                    self.candidates[i].push(task.clone());
                }
            }
        }
    }

    /// Whether more pages could hold a match (the list is newest first, so once a
    /// task older than `since_ms` was seen, nothing further is).
    pub fn wants_more(&self) -> bool {
        !self.older_seen
    }

    /// One [`Match`] per expected task, in order. A task fits one expected task only:
    /// when one expected task has a single candidate it is claimed first.
    pub fn finish(self) -> Vec<Match> {
        let mut taken: BTreeSet<TaskId> = BTreeSet::new();
        let mut out = vec![Match::Missing; self.expected.len()];
        // Expected tasks with fewer candidates choose first.
        let mut order: Vec<usize> = (0..self.expected.len()).collect();
        order.sort_by_key(|&i| self.candidates[i].len());
        for i in order {
            let free: Vec<&OfflineTask> = self.candidates[i]
                .iter()
                .filter(|t| !taken.contains(&t.identity))
                .collect();
            out[i] = match free.as_slice() {
                [] => Match::Missing,
                [one] => {
                    taken.insert(one.identity.clone());
                    Match::Found((*one).clone())
                }
                many => Match::Ambiguous(many.iter().map(|t| t.identity.clone()).collect()),
            };
        }
        out
    }
}

/// The item identity a task's `data` names, when it does: `data` is an object, or a
/// JSON string holding one (as six-cli and FlyingPiggyCloud decode it), with an
/// `identity` field.
pub fn data_identity(task: &OfflineTask) -> Option<String> {
    data_field(task, "identity")
}

/// The source URL a task's `data` names (its `url` field), when it does; `data` read
/// as for [`data_identity`].
pub fn data_url(task: &OfflineTask) -> Option<String> {
    data_field(task, "url")
}

fn data_field(task: &OfflineTask, field: &str) -> Option<String> {
    let data = task.data.as_ref()?;
    let object = match data {
        serde_json::Value::String(s) => serde_json::from_str::<serde_json::Value>(s).ok()?,
        other => other.clone(),
    };
    object
        .get(field)
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, name: &str, created: i64, size: Option<i64>) -> OfflineTask {
        serde_json::from_value(serde_json::json!({
            "identity": id, "name": name, "createTime": created, "status": 100,
            "size": size,
        }))
        .unwrap()
    }

    fn page(tasks: Vec<OfflineTask>, total_page: Option<u64>) -> TaskPage {
        TaskPage {
            list: tasks,
            total_count: None,
            total_page,
            page: None,
            page_size: None,
        }
    }

    #[test]
    fn paging_stops_at_the_end_at_a_repeat_and_at_the_limit() {
        let full = |n: usize| {
            (0..n)
                .map(|i| task(&format!("t{i}"), "x", 0, None))
                .collect::<Vec<_>>()
        };
        let mut p = Pager::new(2, 5);
        assert_eq!(p.next_request().unwrap().page, 1);
        p.handle_page(&page(full(2), Some(2))).unwrap();
        assert_eq!(p.next_request().unwrap().page, 2);
        p.handle_page(&page(
            vec![task("a", "x", 0, None), task("b", "x", 0, None)],
            Some(2),
        ))
        .unwrap();
        assert!(p.is_done(), "totalPage reached");

        // A server that repeats full pages without a total.
        let mut p = Pager::new(2, 5);
        p.handle_page(&page(full(2), None)).unwrap();
        assert_eq!(
            p.handle_page(&page(full(2), None)),
            Err(PagingError::RepeatedPage { page: 2 })
        );
        assert!(p.next_request().is_none());

        // Full, distinct pages forever: the hard limit.
        let mut p = Pager::new(1, 3);
        for i in 0..2 {
            p.handle_page(&page(vec![task(&format!("{i}"), "x", 0, None)], None))
                .unwrap();
        }
        assert_eq!(
            p.handle_page(&page(vec![task("z", "x", 0, None)], None)),
            Err(PagingError::TooManyPages { pages: 3 })
        );
    }

    #[test]
    fn reconciling_uses_size_claims_and_server_time_and_admits_ambiguity() {
        let exp = |name: &str, size| Expected {
            name: name.into(),
            identity: None,
            size,
            url: None,
        };
        let tasks = vec![
            task("new2", "same.bin", 2_000, Some(20)),
            task("new1", "same.bin", 1_900, Some(10)),
            task("owned", "same.bin", 1_800, Some(10)),
            task("old", "same.bin", 500, Some(10)),
        ];
        let mut r = Reconciler::new(
            vec![exp("same.bin", Some(10))],
            Some(1_000),
            [TaskId::from("owned")].into(),
        );
        r.handle_page(&tasks);
        assert!(!r.wants_more());
        assert_eq!(r.finish(), vec![Match::Found(tasks[1].clone())]);

        // Two fitting tasks and nothing to tell them apart.
        let mut r = Reconciler::new(vec![exp("same.bin", None)], Some(1_000), BTreeSet::new());
        r.handle_page(&tasks);
        assert_eq!(
            r.finish(),
            vec![Match::Ambiguous(vec![
                "new2".into(),
                "new1".into(),
                "owned".into()
            ])]
        );

        // Two expected, two candidates: each gets one.
        let mut r = Reconciler::new(
            vec![exp("same.bin", Some(20)), exp("same.bin", Some(10))],
            Some(1_850),
            BTreeSet::new(),
        );
        r.handle_page(&tasks);
        assert_eq!(
            r.finish(),
            vec![
                Match::Found(tasks[0].clone()),
                Match::Found(tasks[1].clone())
            ]
        );
    }

    // Issue 11 2b: thirty links to `…/same.bin` make thirty tasks of one name; the
    // URL in each task's `data` tells them apart.
    #[test]
    fn tasks_of_one_name_are_told_apart_by_their_url() {
        let with_url = |id: &str, url: &str| {
            let mut t = task(id, "same.bin", 2_000, None);
            t.data = Some(serde_json::json!({"url": url, "path": "/"}));
            t
        };
        let tasks = vec![
            with_url("b", "http://h/files/same.bin?n=1"),
            with_url("a", "http://h/files/same.bin?n=0"),
        ];
        let expected = Expected {
            name: "same.bin".into(),
            identity: None,
            size: None,
            url: Some("http://h/files/same.bin?n=0".into()),
        };
        let mut r = Reconciler::new(vec![expected.clone()], None, BTreeSet::new());
        r.handle_page(&tasks);
        assert_eq!(r.finish(), vec![Match::Found(tasks[1].clone())]);
        // Without the URL the two cannot be told apart.
        let mut r = Reconciler::new(
            vec![Expected {
                url: None,
                ..expected
            }],
            None,
            BTreeSet::new(),
        );
        r.handle_page(&tasks);
        assert_eq!(
            r.finish(),
            vec![Match::Ambiguous(vec!["b".into(), "a".into()])]
        );
        assert_eq!(
            data_url(&tasks[0]).as_deref(),
            Some("http://h/files/same.bin?n=1")
        );
    }

    // Issue 12 #8: a task list item as Mrs4s/six-cli's `Task` struct and
    // FlyingPiggyCloud's model decode it: `userIdentity` a number, `data` a JSON string.
    #[test]
    fn a_task_shaped_as_real_clients_saw_it_decodes() {
        let item = serde_json::json!({
            "identity": "8b3e4c1d2f0a49b6a1c7d5e9f3b2a680", "userIdentity": 1_062_345,
            "createTime": 1_532_794_215_590i64, "name": "movie.mkv", "type": 5030,
            "status": 100, "size": 1_048_576, "downloadSize": 524_288, "progress": 50.0,
            "cip": "203.0.113.7",
            "data": "{\"identity\":\"abc\",\"url\":\"magnet:?xt=urn:btih:x\",\"path\":\"/\"}",
        });
        let task: OfflineTask = serde_json::from_value(item.clone()).unwrap();
        assert_eq!(task.user_identity, Some(UserIdentity::Number(1_062_345)));
        assert_eq!(task.user_identity.as_ref().unwrap().to_string(), "1062345");
        assert_eq!(data_identity(&task).as_deref(), Some("abc"));
        assert_eq!(data_url(&task).as_deref(), Some("magnet:?xt=urn:btih:x"));
        // Kept as sent: it encodes back to the same JSON.
        assert_eq!(serde_json::to_value(&task).unwrap(), item);
        // The seed's hex string reads too.
        let mut seed = item;
        seed["userIdentity"] = "0233a0a43b594fab8890b2f8359595bd".into();
        let task: OfflineTask = serde_json::from_value(seed).unwrap();
        assert!(matches!(task.user_identity, Some(UserIdentity::Text(_))));
    }

    // Issue 12 #8: a failed task's reason and a finished task's folder, as
    // Mrs4s/six-cli's `SixOfflineTask` reads them (`errorCode` int32, `errorMessage`,
    // `accessPath`).
    #[test]
    fn a_failed_task_says_why_as_six_cli_reads_it() {
        let item = |status: i64, extra: serde_json::Value| {
            let mut v = serde_json::json!({
                "identity": "t", "userIdentity": 7, "name": "n", "status": status,
                "type": 5020, "data": "{\"identity\":\"t\",\"user\":7,\"path\":\"/\"}",
            });
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::from_value::<OfflineTask>(v).unwrap()
        };
        let failed = item(
            -1,
            serde_json::json!({"errorCode": 404, "errorMessage": "source answered 404"}),
        );
        assert_eq!(failed.error_code, Some(404));
        assert_eq!(
            failed.failure_reason().as_deref(),
            Some("source answered 404 (error code 404)")
        );
        let code_only = item(-1, serde_json::json!({"errorCode": 3, "errorMessage": " "}));
        assert_eq!(code_only.failure_reason().as_deref(), Some("error code 3"));
        let no_reason = item(-1, serde_json::json!({"errorCode": 0}));
        assert_eq!(no_reason.failure_reason(), None);
        // A task still running says nothing, whatever the fields.
        let running = item(100, serde_json::json!({"errorMessage": "stale"}));
        assert_eq!(running.failure_reason(), None);
        let done = item(1000, serde_json::json!({"accessPath": "/downloads/n"}));
        assert_eq!(done.access_path.as_deref(), Some("/downloads/n"));
        assert_eq!(done.failure_reason(), None);
        // Absent fields are absent again when encoded.
        let encoded = serde_json::to_value(&done).unwrap();
        assert!(encoded.get("errorCode").is_none(), "{encoded}");
    }

    #[test]
    fn data_identity_reads_an_object_or_a_json_string() {
        let mut t = task("t", "n", 0, None);
        t.data = Some(serde_json::json!({"identity": "abc", "path": "/"}));
        assert_eq!(data_identity(&t).as_deref(), Some("abc"));
        t.data = Some(serde_json::json!("{\"identity\":\"def\",\"user\":1}"));
        assert_eq!(data_identity(&t).as_deref(), Some("def"));
        t.data = Some(serde_json::json!(42));
        assert_eq!(data_identity(&t), None);
    }
}
