//! `offline add --from FILE` and `offline status --from FILE`: batch submission with
//! a journal (see [`crate::journal`]).

use std::path::{Path, PathBuf};

use provider_123pan::{Error, OfflineDownloadRequest, OssOfflineDownloadRequest, Pan123, TaskRef};
use serde_json::json;

use crate::commands::{build_client, client, watch, AddArgs};
use crate::journal::{self, Entry, Journal, State};
use crate::output::{exit_code, table, Output};
use crate::{exit, Global};

const UNKNOWN_AFTER_CRASH: &str = "the process stopped while this line was being submitted: a task may exist; check the drive, then run again with --retry-unknown";

fn journal_path(input: &Path, given: Option<&PathBuf>) -> PathBuf {
    given
        .cloned()
        .unwrap_or_else(|| journal::default_path(input))
}

fn report(out: &Output, e: &Entry) {
    if out.is_json() {
        println!(
            "{}",
            json!({
                "event": "line", "line": e.line, "source": e.source, "state": e.state.as_str(),
                "task": e.task_id, "kind": e.kind, "error": e.error,
            })
        );
    }
}

/// The state a failed submission leaves its line in, with the reason.
fn after_failure(e: &Error) -> State {
    use offline_proto::ApiError;
    match e {
        Error::OutcomeUnknown { .. } => State::Unknown,
        // Certainly not carried out: worth another run.
        Error::Transport(_) | Error::Api(ApiError::RateLimited { .. } | ApiError::Http { .. }) => {
            State::Pending
        }
        Error::TokenUnavailable | Error::Config(_) => State::Pending,
        _ => State::Failed,
    }
}

async fn submit(pan: &Pan123, args: &AddArgs, source: &str) -> Result<TaskRef, Error> {
    if args.image {
        let mut req = OssOfflineDownloadRequest::new(source);
        req.business_dir_id.clone_from(&args.image_dir);
        req.callback_url.clone_from(&args.callback);
        pan.oss_offline_download(req).await.map(TaskRef::image)
    } else {
        let mut req = OfflineDownloadRequest::new(source);
        req.dir_id = args.dir;
        req.callback_url.clone_from(&args.callback);
        pan.offline_download(req).await.map(TaskRef::cloud)
    }
}

fn open(
    input: &Path,
    given: Option<&PathBuf>,
    out: &Output,
) -> Result<(Journal, Vec<journal::InputLine>), u8> {
    let text = std::fs::read_to_string(input).map_err(|e| {
        out.error_line(&format!("cannot read {}: {e}", input.display()), None);
        exit::CONFIG
    })?;
    let path = journal_path(input, given);
    let journal = Journal::open(&path).map_err(|e| {
        out.error_line(
            &format!("cannot open the journal {}: {e}", path.display()),
            None,
        );
        exit::CONFIG
    })?;
    Ok((journal, journal::parse_input(&text)))
}

/// Submits every line of `input` not yet submitted, recording each step.
pub(crate) async fn add_from(global: &Global, args: &AddArgs, input: &Path, out: &Output) -> u8 {
    let (mut journal, lines) = match open(input, args.journal.as_ref(), out) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let kind = if args.image { "image" } else { "cloud" };
    let db = |e: rusqlite::Error| {
        out.error_line(&format!("journal write failed: {e}"), None);
        exit::CONFIG
    };
    let entries = match journal.sync(&lines, kind) {
        Ok(e) => e,
        Err(e) => return db(e),
    };
    let pan = match client(global, out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut code = exit::OK;
    let mut to_watch = Vec::new();
    for mut entry in entries {
        if entry.state == State::Submitting {
            if let Err(e) = journal.set(&entry, State::Unknown, None, Some(UNKNOWN_AFTER_CRASH)) {
                return db(e);
            }
            entry.state = State::Unknown;
            entry.error = Some(UNKNOWN_AFTER_CRASH.to_owned());
        }
        let retry =
            entry.state == State::Pending || (entry.state == State::Unknown && args.retry_unknown);
        if !retry {
            if entry.state == State::Submitted {
                if let Some(id) = entry.task_id {
                    let id = provider_123pan::TaskId(id);
                    let task = if entry.kind == "image" {
                        TaskRef::image(id)
                    } else {
                        TaskRef::cloud(id)
                    };
                    to_watch.push((task, entry.source.clone()));
                }
            } else {
                code = code.max(if entry.state == State::Unknown {
                    exit::OUTCOME_UNKNOWN
                } else {
                    exit::PROVIDER
                });
            }
            report(out, &entry);
            continue;
        }
        // Recorded before anything is sent: a kill from here on leaves `submitting`.
        if let Err(e) = journal.set(&entry, State::Submitting, None, None) {
            return db(e);
        }
        let (state, task, error) = match submit(&pan, args, &entry.source).await {
            Ok(task) => (State::Submitted, Some(task), None),
            Err(e) => {
                code = code.max(exit_code(&e));
                (after_failure(&e), None, Some(e.to_string()))
            }
        };
        if let Err(e) = journal.set(&entry, state, task.map(|t| t.id.0), error.as_deref()) {
            return db(e);
        }
        entry.state = state;
        entry.task_id = task.map(|t| t.id.0);
        entry.error = error;
        if let Some(task) = task {
            to_watch.push((task, entry.source.clone()));
        }
        if out.is_json() {
            report(out, &entry);
        } else if let Some(task) = task {
            out.created(&entry.source, task);
        } else {
            eprintln!(
                "line {}: {}: {}",
                entry.line,
                entry.state.as_str(),
                entry.error.as_deref().unwrap_or("")
            );
        }
    }
    if args.wait && !to_watch.is_empty() {
        let (_, watch_code) = watch(&pan, &to_watch, out, true).await;
        code = code.max(watch_code);
    }
    code
}

/// Shows every line's journal state, and the progress of submitted tasks when
/// credentials are configured.
pub(crate) async fn status_from(
    global: &Global,
    input: &Path,
    journal_arg: Option<&PathBuf>,
    out: &Output,
) -> u8 {
    let path = journal_path(input, journal_arg);
    if !path.exists() {
        out.error_line(
            &format!(
                "no journal at {} (run `offline add --from` first)",
                path.display()
            ),
            None,
        );
        return exit::CONFIG;
    }
    let (mut journal, lines) = match open(input, journal_arg, out) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let entries = match journal.sync(&lines, "cloud") {
        Ok(e) => e,
        Err(e) => {
            out.error_line(&format!("journal read failed: {e}"), None);
            return exit::CONFIG;
        }
    };
    let pan = build_client(global).ok();
    let mut rows = Vec::new();
    for e in &entries {
        let progress = match (&pan, e.task_id) {
            (Some(pan), Some(id)) => {
                let id = provider_123pan::TaskId(id);
                let task = if e.kind == "image" {
                    TaskRef::image(id)
                } else {
                    TaskRef::cloud(id)
                };
                pan.progress(task).await.ok()
            }
            _ => None,
        };
        if out.is_json() {
            println!(
                "{}",
                json!({
                    "event": "line", "line": e.line, "source": e.source, "state": e.state.as_str(),
                    "task": e.task_id, "kind": e.kind, "error": e.error,
                    "status": progress.map(|p| p.status.as_str()), "percent": progress.map(|p| p.percent),
                })
            );
        } else {
            rows.push(vec![
                e.line.to_string(),
                e.state.as_str().to_owned(),
                e.task_id.map(|t| t.to_string()).unwrap_or_default(),
                progress
                    .map(|p| format!("{} {:.1}%", p.status, p.percent))
                    .unwrap_or_default(),
                e.source.clone(),
                e.error.clone().unwrap_or_default(),
            ]);
        }
    }
    if !out.is_json() {
        println!(
            "{}",
            table(
                &["line", "state", "task", "progress", "source", "reason"],
                &rows
            )
        );
    }
    exit::OK
}
