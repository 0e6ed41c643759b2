//! `offline add --from FILE`, `offline status --from FILE` and `offline wait --from
//! FILE`: batch submission with a journal (see [`crate::journal`]), for both providers.
//!
//! `add --from` holds the journal's lock for its whole run (a second run at once
//! refuses with exit [`exit::BUSY`]), records each line `submitting` (with the kind it
//! is submitted as) before sending and its outcome after, and ends with a summary:
//! lines submitted now, submitted earlier, refused (with the reason), unknown (with
//! what to check), not submitted (a network error: run again); the exit code is the
//! worst present. `status --from` and `wait --from` only read the journal.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use provider_123pan::{OfflineDownloadRequest, OssOfflineDownloadRequest, TaskRef};
use provider_6pan::Selection;
use serde_json::json;

use crate::client::{guarded, refused_123, refused_6, Client, Conn};
use crate::exit;
use crate::journal::{self, Entry, Journal, State};
use crate::output::{exit_code, percent_text, table, Output};

use super::add::AddArgs;

const UNKNOWN_AFTER_CRASH: &str = "the process stopped while this line was being submitted: a task may exist; check the drive, then run again with --retry-unknown";

/// What to do about a line whose outcome is unknown.
const UNKNOWN_HELP: &str = "a task may or may not exist for it: look for the URL in the drive's offline download list; if it is not there, run again with --retry-unknown to submit it";

/// A failed submission: the state it leaves the line in, the reason, the exit code,
/// and the provider's answer (to judge whether to submit again now).
struct Failed {
    state: State,
    reason: String,
    code: u8,
    api: Option<offline_proto::ApiError>,
}

/// The state a failed submission leaves its line in; `$provider`'s `Error` (both
/// providers' errors have these variants).
macro_rules! state_after {
    ($provider:ident, $e:expr) => {{
        use offline_proto::ApiError;
        use $provider::Error;
        match $e {
            Error::OutcomeUnknown { .. } => State::Unknown,
            // Certainly not carried out: worth another run.
            Error::Transport(_)
            | Error::Api(
                ApiError::RateLimited { .. } | ApiError::Http { .. } | ApiError::TaskLimit(_),
            )
            | Error::NotAuthenticated
            | Error::Config(_) => State::Pending,
            _ => State::Failed,
        }
    }};
}

fn failed_123(e: &provider_123pan::Error) -> Failed {
    Failed {
        state: state_after!(provider_123pan, e),
        reason: crate::client::explain_123(e),
        code: exit_code(e),
        api: match e {
            provider_123pan::Error::Api(a) => Some(a.clone()),
            _ => None,
        },
    }
}

fn failed_6(e: &provider_6pan::Error) -> Failed {
    Failed {
        state: state_after!(provider_6pan, e),
        reason: crate::client::explain_6(e),
        code: crate::client::exit_code_6(e),
        api: None,
    }
}

/// The journal kind a line is submitted as.
fn kind_of(client: &Client, args: &AddArgs) -> &'static str {
    match (client, args.image) {
        (Client::Pan6(..), _) => "6pan",
        (Client::Pan123(..), true) => "image",
        (Client::Pan123(..), false) => "cloud",
    }
}

/// Submits one line. For 6pan the parsed name is recorded before the add, so that
/// an interrupted submission can be found again in the task list.
async fn submit(
    client: &Client,
    args: &AddArgs,
    dir: Option<offline_proto::pan123::FileId>,
    journal: &Journal,
    entry: &Entry,
    kind: &str,
    owned: &std::collections::BTreeSet<provider_6pan::TaskId>,
) -> Result<String, Failed> {
    match client {
        Client::Pan123(pan, transport) => {
            // `submitting` ("may have been sent") is recorded when the create is about
            // to leave, after the rate-limit wait: a kill before that leaves the line
            // pending, never unknown.
            let claim_failed = std::cell::Cell::new(None);
            let sending = || {
                if let Err(e) = journal.claim(entry, kind) {
                    claim_failed.set(Some(e));
                }
            };
            let call = async {
                if args.image {
                    let mut req = OssOfflineDownloadRequest::new(entry.source.as_str());
                    req.business_dir_id.clone_from(&args.image_dir);
                    req.callback_url.clone_from(&args.callback);
                    pan.oss_offline_download_observed(req, sending)
                        .await
                        .map(TaskRef::image)
                } else {
                    let mut req = OfflineDownloadRequest::new(entry.source.as_str());
                    req.dir_id = dir;
                    req.callback_url.clone_from(&args.callback);
                    pan.offline_download_observed(req, sending)
                        .await
                        .map(TaskRef::cloud)
                }
            };
            let result = guarded(transport, call, refused_123).await;
            if let Some(e) = claim_failed.take() {
                return Err(Failed {
                    state: State::Unknown,
                    reason: format!("journal write failed while the create was sent: {e}"),
                    code: exit::CONFIG,
                    api: None,
                });
            }
            result.map(|t| t.id.to_string()).map_err(|e| failed_123(&e))
        }
        Client::Pan6(pan, transport) => {
            let path = args.path.clone().unwrap_or_else(|| "/".to_owned());
            let parsed = if super::pan6::source_is_torrent_file(&entry.source) {
                guarded(transport, pan.upload_torrent(&entry.source), refused_6)
                    .await
                    .map(|u| vec![u.result])
            } else if super::add::is_local_path(&entry.source) {
                return Err(Failed {
                    state: State::Failed,
                    reason: format!("{}: no such file", entry.source),
                    code: exit::CONFIG,
                    api: None,
                });
            } else {
                guarded(
                    transport,
                    pan.parse_urls(&[entry.source.as_str()]),
                    refused_6,
                )
                .await
            };
            let result = parsed
                .map_err(|e| failed_6(&e))?
                .into_iter()
                .next()
                .ok_or_else(|| Failed {
                    state: State::Failed,
                    reason: "the link parsed to nothing".to_owned(),
                    code: exit::PROVIDER,
                    api: None,
                })?;
            let selection = super::pan6::selection(args);
            if selection != Selection::All && result.files.is_empty() {
                return Err(Failed {
                    state: State::Failed,
                    reason: "--select: this source has no files to select".to_owned(),
                    code: exit::USAGE,
                    api: None,
                });
            }
            let task_url = result.identity.view().url.as_deref();
            journal
                .set_name(entry, &result.name, task_url)
                .map_err(|e| Failed {
                    state: State::Pending,
                    reason: format!("journal write failed: {e}"),
                    code: exit::CONFIG,
                    api: None,
                })?;
            let ignore = selection.ignore_list(&result).map_err(|e| failed_6(&e))?;
            let task = provider_6pan::AddTask {
                identity: result.identity.clone(),
                ignore_files: ignore,
            };
            // Never confirmed with a task another line of the journal owns.
            let added = guarded(
                transport,
                pan.add_tasks_excluding(
                    &path,
                    vec![(provider_6pan::Expected::from_parse(&result), task)],
                    owned,
                ),
                refused_6,
            )
            .await
            .map_err(|e| failed_6(&e))?;
            added
                .first()
                .map(|t| t.identity.0.clone())
                .ok_or_else(|| Failed {
                    state: State::Unknown,
                    reason: "added, but the task did not show up in the list".to_owned(),
                    code: exit::OUTCOME_UNKNOWN,
                    api: None,
                })
        }
    }
}

/// [`submit`], submitted again while the provider answers that the account runs as
/// many tasks at once as it may (the create did not happen): after the waits of
/// [`offline_proto::retry::resubmit_after`] from `--cap-wait`, in pieces of at most
/// 100 ms so that an interrupt ends the wait. When they are spent, the line stays
/// pending with the cap as its reason.
#[allow(clippy::too_many_arguments)]
async fn submit_resubmitting(
    client: &Client,
    args: &AddArgs,
    dir: Option<offline_proto::pan123::FileId>,
    journal: &Journal,
    entry: &Entry,
    kind: &str,
    owned: &std::collections::BTreeSet<provider_6pan::TaskId>,
    out: &Output,
) -> Result<String, Failed> {
    let first = std::time::Duration::from_secs_f64(args.cap_wait);
    let mut attempt = 0;
    loop {
        let failed = match submit(client, args, dir, journal, entry, kind, owned).await {
            Ok(task) => return Ok(task),
            Err(f) => f,
        };
        let delay = failed
            .api
            .as_ref()
            .and_then(|a| offline_proto::retry::resubmit_after(a, attempt, first));
        let Some(delay) = delay else {
            return Err(failed);
        };
        attempt += 1;
        if out.is_json() {
            out.event(json!({
                "event": "resubmit",
                "line": entry.line,
                "attempt": attempt,
                "delay_ms": u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "reason": failed.reason,
            }));
        } else {
            errln!(
                "line {}: {}; submitting again in {:.1} s",
                entry.line,
                failed.reason,
                delay.as_secs_f64()
            );
        }
        let until = tokio::time::Instant::now() + delay;
        while tokio::time::Instant::now() < until {
            if crate::interrupt::interrupted() {
                return Err(failed);
            }
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            tokio::time::sleep(left.min(std::time::Duration::from_millis(100))).await;
        }
    }
}

/// A line found `submitting` after a crash: its new state and task.
///
/// 6pan: the task list is searched with the core's reconciliation
/// ([`provider_6pan::SixPan::reconcile`]): the recorded name and task URL, a creation
/// time no earlier than the submission (on the server's clock, with a tolerance), and
/// never a task another line of the journal already owns. One fit: submitted; none: pending
/// (the add never happened); several: unknown, with the candidates named.
async fn reconcile(
    client: &Client,
    entry: &Entry,
    owned: &std::collections::BTreeSet<provider_6pan::TaskId>,
) -> (State, Option<String>, Option<String>) {
    let Client::Pan6(pan, transport) = client else {
        return (State::Unknown, None, Some(UNKNOWN_AFTER_CRASH.to_owned()));
    };
    // Nothing is added before the name is recorded: without a name, nothing exists.
    let Some(name) = &entry.name else {
        return (State::Pending, None, None);
    };
    let expected = provider_6pan::Expected {
        name: name.clone(),
        identity: None,
        size: None,
        url: entry.task_url.clone(),
    };
    // The submission time is the local clock's; the server's may differ: the
    // tolerance covers a skew of a minute, and other lines' tasks are excluded.
    let since = entry.submitted_at.map(|t| t - 60_000);
    let found = guarded(
        transport,
        pan.reconcile(vec![expected], since, owned.clone()),
        refused_6,
    )
    .await;
    match found.as_deref() {
        Ok([provider_6pan::Match::Found(t)]) => {
            (State::Submitted, Some(t.identity.0.clone()), None)
        }
        Ok([provider_6pan::Match::Ambiguous(candidates)]) => {
            let names: Vec<&str> = candidates.iter().map(|c| c.as_str()).collect();
            (
                State::Unknown,
                None,
                Some(format!(
                    "{UNKNOWN_AFTER_CRASH}; several tasks could be this line's: {} (check with `offline --provider 6pan list`, then `rm` the extra one or rerun with --retry-unknown)",
                    names.join(", ")
                )),
            )
        }
        Ok(_) => (State::Pending, None, None),
        Err(e) => (
            State::Unknown,
            None,
            Some(format!(
                "{UNKNOWN_AFTER_CRASH} ({})",
                crate::client::explain_6(e)
            )),
        ),
    }
}

fn journal_path(input: &Path, given: Option<&PathBuf>) -> PathBuf {
    given
        .cloned()
        .unwrap_or_else(|| journal::default_path(input))
}

fn line_json(e: &Entry) -> serde_json::Value {
    json!({
        "event": "line", "line": e.line, "source": e.source, "state": e.state.as_str(),
        "task": e.task, "kind": e.kind, "error": e.error,
    })
}

/// Reads and parses the batch file; refuses an empty one.
fn read_input(input: &Path, out: &Output) -> Result<Vec<journal::InputLine>, u8> {
    let text = std::fs::read_to_string(input).map_err(|e| {
        out.fail(
            exit::CONFIG,
            &format!("cannot read {}: {e}", input.display()),
            None,
        )
    })?;
    let lines = journal::parse_input(&text);
    if lines.is_empty() {
        return Err(out.fail(
            exit::CONFIG,
            &format!(
                "{} holds no URL (only blank lines and # comments): nothing to submit",
                input.display()
            ),
            None,
        ));
    }
    Ok(lines)
}

/// The counts of a batch run, for its summary.
#[derive(Default)]
struct Summary {
    lines: usize,
    now: usize,
    before: usize,
    refused: Vec<(usize, String, String)>,
    unknown: Vec<(usize, String)>,
    pending: Vec<(usize, String, String)>,
    code: u8,
}

impl Summary {
    fn print(&self, input: &Path, out: &Output, interrupted: bool) {
        if out.is_json() {
            out.event(json!({
                "event": "summary",
                "lines": self.lines,
                "submitted_now": self.now,
                "submitted_before": self.before,
                "refused": self.refused.len(),
                "unknown": self.unknown.len(),
                "not_submitted": self.pending.len(),
                "interrupted": interrupted,
                "exit_code": self.code,
            }));
            return;
        }
        let mut parts = vec![
            format!("{} submitted now", self.now),
            format!("{} submitted earlier", self.before),
        ];
        if !self.refused.is_empty() {
            parts.push(format!("{} refused", self.refused.len()));
        }
        if !self.unknown.is_empty() {
            parts.push(format!("{} unknown", self.unknown.len()));
        }
        if !self.pending.is_empty() {
            parts.push(format!("{} not submitted", self.pending.len()));
        }
        outln!(
            "{}: {} lines: {}{}",
            input.display(),
            self.lines,
            parts.join(", "),
            if interrupted { " (interrupted)" } else { "" }
        );
        for (line, source, reason) in &self.refused {
            outln!("  refused: line {line} ({source}): {reason}");
        }
        for (line, source) in &self.unknown {
            outln!("  unknown: line {line} ({source}): {UNKNOWN_HELP}");
        }
        for (line, source, reason) in &self.pending {
            outln!("  not submitted: line {line} ({source}): {reason}; run again to submit it");
        }
        if self.code != exit::OK {
            outln!(
                "exit code {}: {}",
                self.code,
                crate::exit::TABLE
                    .iter()
                    .find(|(c, _)| *c == self.code)
                    .map_or("", |(_, m)| m)
            );
        }
    }
}

/// Submits every line of `input` not yet submitted, recording each step.
pub(crate) async fn add_from(client: &Client, args: &AddArgs, input: &Path, out: &Output) -> u8 {
    let lines = match read_input(input, out) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let path = journal_path(input, args.journal.as_ref());
    let _lock = match journal::lock(&path) {
        Ok(l) => l,
        Err(journal::LockError::Busy) => {
            return out.fail(
                exit::BUSY,
                &format!(
                    "the journal {} is in use by another `offline add --from` run: nothing was submitted; run again when it has ended",
                    path.display()
                ),
                None,
            )
        }
        Err(journal::LockError::Io(e)) => {
            return out.fail(
                exit::CONFIG,
                &format!("cannot lock the journal {}: {e}", path.display()),
                None,
            )
        }
    };
    let mut journal = match Journal::open(&path) {
        Ok(j) => j,
        Err(e) => {
            return out.fail(
                exit::CONFIG,
                &format!("cannot open the journal {}: {e}", path.display()),
                None,
            )
        }
    };
    let kind = kind_of(client, args);
    // The folder is resolved once for the whole batch (created when missing).
    let dir = match (client, &args.dir) {
        (Client::Pan123(pan, transport), Some(dir)) => {
            match super::files::download_dir(pan, transport, dir, out).await {
                Ok(id) => Some(id),
                Err(code) => return code,
            }
        }
        _ => None,
    };
    let db =
        |e: rusqlite::Error| out.fail(exit::CONFIG, &format!("journal write failed: {e}"), None);
    let entries = match journal.sync(&lines, kind) {
        Ok(e) => e,
        Err(e) => return db(e),
    };
    crate::interrupt::set_cooperative(true);
    crate::interrupt::set_hint(format!("offline status --from {}", input.display()));
    let mut summary = Summary {
        lines: entries.len(),
        ..Summary::default()
    };
    let mut to_watch_123 = Vec::new();
    let mut to_watch_6 = Vec::new();
    // The 6pan tasks the journal's lines own: a line caught mid-submission is never
    // matched with one of them.
    let mut owned: std::collections::BTreeSet<provider_6pan::TaskId> = entries
        .iter()
        .filter_map(|e| e.task.as_deref())
        .map(provider_6pan::TaskId::from)
        .collect();
    for mut entry in entries {
        if crate::interrupt::interrupted() {
            summary.pending.push((
                entry.line,
                entry.source.clone(),
                "interrupted before it was sent".to_owned(),
            ));
            continue;
        }
        if entry.state == State::Submitting {
            let (state, task, error) = reconcile(client, &entry, &owned).await;
            if let Err(e) = journal.set(&entry, state, task.as_deref(), error.as_deref()) {
                return db(e);
            }
            entry.state = state;
            entry.task = task.or(entry.task);
            entry.error = error;
        }
        let retry =
            entry.state == State::Pending || (entry.state == State::Unknown && args.retry_unknown);
        let mut submitted_now = false;
        let mut line_code = journal.code(&entry);
        if retry {
            // 6pan: recorded before anything is sent, and found again in the task list
            // after a kill. 123pan has no task list: `submit` records it when the
            // create is about to leave, so that `unknown` means "may have been sent".
            if matches!(client, Client::Pan6(..)) {
                if let Err(e) = journal.claim(&entry, kind) {
                    return db(e);
                }
            }
            entry.kind = kind.to_owned();
            let (state, task, error, code) =
                match submit_resubmitting(client, args, dir, &journal, &entry, kind, &owned, out)
                    .await
                {
                    Ok(task) => (State::Submitted, Some(task), None, exit::OK),
                    Err(f) => (f.state, None, Some(f.reason), f.code),
                };
            if let Err(e) = journal
                .set(&entry, state, task.as_deref(), error.as_deref())
                .and_then(|()| journal.set_code(&entry, code))
            {
                return db(e);
            }
            entry.state = state;
            entry.task = task.or(entry.task);
            entry.error = error;
            if let Some(task) = &entry.task {
                owned.insert(provider_6pan::TaskId::from(task.as_str()));
            }
            line_code = Some(code);
            submitted_now = state == State::Submitted;
        }
        let reason = entry.error.clone().unwrap_or_default();
        match entry.state {
            State::Submitted => {
                if submitted_now {
                    summary.now += 1;
                } else {
                    summary.before += 1;
                }
                if let Some(task) = entry.task.clone() {
                    match entry.kind.as_str() {
                        "6pan" => to_watch_6.push((task, entry.source.clone())),
                        k => {
                            if let Ok(id) = task.parse() {
                                let id = provider_123pan::TaskId(id);
                                let t = if k == "image" {
                                    TaskRef::image(id)
                                } else {
                                    TaskRef::cloud(id)
                                };
                                to_watch_123.push((t, entry.source.clone()));
                            }
                        }
                    }
                }
            }
            State::Unknown => {
                summary.unknown.push((entry.line, entry.source.clone()));
                summary.code = summary.code.max(exit::OUTCOME_UNKNOWN);
            }
            State::Failed => {
                summary
                    .refused
                    .push((entry.line, entry.source.clone(), reason));
                summary.code = summary.code.max(line_code.unwrap_or(exit::PROVIDER));
            }
            State::Pending | State::Submitting => {
                summary
                    .pending
                    .push((entry.line, entry.source.clone(), reason));
                summary.code = summary.code.max(line_code.unwrap_or(exit::NETWORK));
            }
        }
        if out.is_json() {
            out.event(line_json(&entry));
        } else if submitted_now {
            outln!(
                "line {}: submitted, task {} ({})",
                entry.line,
                entry.task.as_deref().unwrap_or(""),
                entry.source
            );
        } else if retry {
            errln!(
                "line {}: {}: {}",
                entry.line,
                entry.state.as_str(),
                entry.error.as_deref().unwrap_or("")
            );
        }
    }
    let interrupted = crate::interrupt::interrupted();
    crate::interrupt::set_cooperative(false);
    if args.wait && !interrupted {
        match client {
            Client::Pan123(pan, transport) if !to_watch_123.is_empty() => {
                let (_, c) =
                    super::watch::watch_123(pan, transport, &to_watch_123, out, true).await;
                summary.code = summary.code.max(c);
            }
            Client::Pan6(pan, transport) if !to_watch_6.is_empty() => {
                let selected: BTreeSet<String> = if args.select.is_empty() {
                    BTreeSet::new()
                } else {
                    to_watch_6.iter().map(|(id, _)| id.clone()).collect()
                };
                let c = super::watch::watch_6(pan, transport, to_watch_6, &selected, out).await;
                summary.code = summary.code.max(c);
            }
            _ => {}
        }
    }
    if interrupted {
        summary.code = exit::INTERRUPTED;
    }
    summary.print(input, out, interrupted);
    if interrupted {
        crate::interrupt::report(out);
    }
    summary.code
}

/// The journal of `input`, opened only to read, and every line's entry (`None`: not
/// recorded yet).
fn read_journal(
    input: &Path,
    given: Option<&PathBuf>,
    out: &Output,
) -> Result<Vec<(journal::InputLine, Option<Entry>)>, u8> {
    let path = journal_path(input, given);
    if !path.exists() {
        return Err(out.fail(
            exit::CONFIG,
            &format!(
                "no journal at {} (run `offline add --from {}` first)",
                path.display(),
                input.display()
            ),
            None,
        ));
    }
    let lines = read_input(input, out)?;
    let journal = Journal::open_read_only(&path).map_err(|e| {
        out.fail(
            exit::CONFIG,
            &format!("cannot open the journal {}: {e}", path.display()),
            None,
        )
    })?;
    let entries = journal
        .read(&lines)
        .map_err(|e| out.fail(exit::CONFIG, &format!("journal read failed: {e}"), None))?;
    Ok(lines.into_iter().zip(entries).collect())
}

fn task_ref(e: &Entry) -> Option<TaskRef> {
    let id = provider_123pan::TaskId(e.task.as_deref()?.parse().ok()?);
    match e.kind.as_str() {
        "image" => Some(TaskRef::image(id)),
        "cloud" => Some(TaskRef::cloud(id)),
        _ => None,
    }
}

/// Shows every line's journal state, and its task's progress when credentials are
/// configured. Reads the journal only.
pub(crate) async fn status_from(
    conn: &Conn,
    input: &Path,
    journal_arg: Option<&PathBuf>,
    out: &Output,
) -> u8 {
    let rows_in = match read_journal(input, journal_arg, out) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let any_task = rows_in
        .iter()
        .any(|(_, e)| e.as_ref().is_some_and(|e| e.task.is_some()));
    let client = if any_task {
        Client::connect(conn, out).await.ok()
    } else {
        None
    };
    // 6pan: one listing for every task.
    let six: std::collections::BTreeMap<String, provider_6pan::OfflineTask> = match &client {
        Some(Client::Pan6(pan, transport)) => {
            let ids: Vec<String> = rows_in
                .iter()
                .filter_map(|(_, e)| e.as_ref().filter(|e| e.kind == "6pan")?.task.clone())
                .collect();
            super::pan6::find(pan, transport, &ids)
                .await
                .unwrap_or_default()
        }
        _ => Default::default(),
    };
    let mut code = exit::OK;
    let mut rows = Vec::new();
    for (line, entry) in &rows_in {
        let (state, task, kind, error) = match entry {
            Some(e) => (
                e.state.as_str(),
                e.task.clone(),
                e.kind.clone(),
                e.error.clone(),
            ),
            None => ("new", None, String::new(), None),
        };
        let mut status: Option<String> = None;
        let mut percent: Option<f64> = None;
        if let (Some(e), Some(client)) = (entry, &client) {
            match client {
                Client::Pan123(pan, transport) => {
                    if let Some(t) = task_ref(e) {
                        match guarded(transport, pan.progress(t), refused_123).await {
                            Ok(p) => {
                                status = Some(p.status.as_str().to_owned());
                                percent = Some(p.percent);
                            }
                            Err(err) => {
                                code = code.max(
                                    out.error(&format!("line {} task {}", line.line, t.id), &err),
                                );
                            }
                        }
                    }
                }
                Client::Pan6(..) => {
                    if let Some(t) = e.task.as_ref().and_then(|t| six.get(t)) {
                        status = Some(super::watch::status_word(t.status).to_owned());
                        percent = t.progress;
                    }
                }
            }
        }
        if out.is_json() {
            out.event(json!({
                "event": "line", "line": line.line, "source": line.source, "state": state,
                "task": task, "kind": if kind.is_empty() { None } else { Some(kind) }, "error": error,
                "status": status, "percent": percent,
            }));
        } else {
            rows.push(vec![
                line.line.to_string(),
                state.to_owned(),
                task.unwrap_or_default(),
                match (status, percent) {
                    (Some(s), Some(p)) => format!("{s} {}%", percent_text(p)),
                    (Some(s), None) => s,
                    _ => String::new(),
                },
                line.source.clone(),
                error.unwrap_or_default(),
            ]);
        }
    }
    if !out.is_json() {
        outln!(
            "{}",
            table(
                &["line", "state", "task", "progress", "source", "reason"],
                &rows
            )
        );
    }
    code
}

/// Waits for the task of every submitted line to end. Reads the journal only.
pub(crate) async fn wait_from(
    client: &Client,
    input: &Path,
    journal_arg: Option<&PathBuf>,
    out: &Output,
) -> u8 {
    let rows = match read_journal(input, journal_arg, out) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut code = exit::OK;
    let mut not_submitted = Vec::new();
    let mut t123 = Vec::new();
    let mut t6 = Vec::new();
    for (line, entry) in &rows {
        match entry {
            Some(e) if e.state == State::Submitted && e.task.is_some() => {
                if e.kind == "6pan" {
                    t6.push((e.task.clone().unwrap_or_default(), e.source.clone()));
                } else if let Some(t) = task_ref(e) {
                    t123.push((t, e.source.clone()));
                }
            }
            Some(e) => {
                if e.state == State::Unknown {
                    code = code.max(exit::OUTCOME_UNKNOWN);
                }
                not_submitted.push(format!("line {} ({})", line.line, e.state.as_str()));
            }
            None => not_submitted.push(format!("line {} (new)", line.line)),
        }
    }
    let mismatch = match client {
        Client::Pan123(..) => !t6.is_empty(),
        Client::Pan6(..) => !t123.is_empty(),
    };
    if mismatch {
        return out.fail(
            exit::USAGE,
            &format!(
                "the journal of {} holds tasks of another provider than {}: pass the --provider it was submitted with",
                input.display(),
                client.provider().name()
            ),
            None,
        );
    }
    if !not_submitted.is_empty() {
        let msg = format!(
            "{} line(s) have no task to wait for: {} (see `offline status --from {}`)",
            not_submitted.len(),
            not_submitted.join(", "),
            input.display()
        );
        if out.is_json() {
            out.event(json!({"event": "note", "message": msg}));
        } else {
            errln!("note: {msg}");
        }
    }
    if t123.is_empty() && t6.is_empty() {
        return out
            .fail(
                exit::CONFIG,
                &format!(
                    "no line of {} has a task yet: run `offline add --from {}` first",
                    input.display(),
                    input.display()
                ),
                None,
            )
            .max(code);
    }
    crate::interrupt::set_hint(format!("offline status --from {}", input.display()));
    let watched = match client {
        Client::Pan123(pan, transport) => {
            super::watch::watch_123(pan, transport, &t123, out, true)
                .await
                .1
        }
        Client::Pan6(pan, transport) => {
            super::watch::watch_6(pan, transport, t6, &BTreeSet::new(), out).await
        }
    };
    code.max(watched)
}
