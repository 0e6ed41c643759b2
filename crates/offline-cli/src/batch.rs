//! `offline add --from FILE` and `offline status --from FILE`: batch submission with
//! a journal (see [`crate::journal`]), for both providers.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use provider_123pan::{OfflineDownloadRequest, OssOfflineDownloadRequest, Pan123, TaskRef};
use provider_6pan::{Selection, SixPan};
use serde_json::json;

use crate::commands::{build_client, client, watch, AddArgs};
use crate::journal::{self, Entry, Journal, State};
use crate::output::{exit_code, table, Output};
use crate::{exit, Global, Provider};

const UNKNOWN_AFTER_CRASH: &str = "the process stopped while this line was being submitted: a task may exist; check the drive, then run again with --retry-unknown";

/// A failed submission: the state it leaves the line in, the reason, the exit code.
struct Failed {
    state: State,
    reason: String,
    code: u8,
}

fn failed_123(e: &provider_123pan::Error) -> Failed {
    use offline_proto::ApiError;
    use provider_123pan::Error;
    let state = match e {
        Error::OutcomeUnknown { .. } => State::Unknown,
        // Certainly not carried out: worth another run.
        Error::Transport(_)
        | Error::Api(ApiError::RateLimited { .. } | ApiError::Http { .. })
        | Error::NotAuthenticated
        | Error::Config(_) => State::Pending,
        _ => State::Failed,
    };
    Failed {
        state,
        reason: e.to_string(),
        code: exit_code(e),
    }
}

fn failed_6(e: &provider_6pan::Error) -> Failed {
    use offline_proto::ApiError;
    use provider_6pan::Error;
    let state = match e {
        Error::OutcomeUnknown { .. } => State::Unknown,
        Error::Transport(_)
        | Error::Api(ApiError::RateLimited { .. } | ApiError::Http { .. })
        | Error::NotAuthenticated
        | Error::Config(_) => State::Pending,
        _ => State::Failed,
    };
    Failed {
        state,
        reason: e.to_string(),
        code: crate::sixpan::exit_code(e),
    }
}

/// The client of the chosen provider.
enum Client {
    Pan123(Pan123),
    Pan6(SixPan),
}

impl Client {
    /// Submits one line. For 6pan the parsed name is recorded before the add, so that
    /// an interrupted submission can be found again in the task list.
    async fn submit(
        &self,
        args: &AddArgs,
        journal: &Journal,
        entry: &Entry,
    ) -> Result<String, Failed> {
        match self {
            Self::Pan123(pan) => {
                let created = if args.image {
                    let mut req = OssOfflineDownloadRequest::new(entry.source.as_str());
                    req.business_dir_id.clone_from(&args.image_dir);
                    req.callback_url.clone_from(&args.callback);
                    pan.oss_offline_download(req).await.map(TaskRef::image)
                } else {
                    let mut req = OfflineDownloadRequest::new(entry.source.as_str());
                    req.dir_id = args.dir;
                    req.callback_url.clone_from(&args.callback);
                    pan.offline_download(req).await.map(TaskRef::cloud)
                };
                created
                    .map(|t| t.id.to_string())
                    .map_err(|e| failed_123(&e))
            }
            Self::Pan6(pan) => {
                let path = args.path.clone().unwrap_or_else(|| "/".to_owned());
                let is_torrent = entry.source.to_ascii_lowercase().ends_with(".torrent")
                    && Path::new(&entry.source).is_file();
                let parsed = if is_torrent {
                    pan.upload_torrent(&entry.source)
                        .await
                        .map(|u| vec![u.result])
                } else {
                    pan.parse_urls(&[entry.source.as_str()]).await
                };
                let result = parsed
                    .map_err(|e| failed_6(&e))?
                    .into_iter()
                    .next()
                    .ok_or_else(|| Failed {
                        state: State::Failed,
                        reason: "the link parsed to nothing".to_owned(),
                        code: exit::PROVIDER,
                    })?;
                journal.set_name(entry, &result.name).map_err(|e| Failed {
                    state: State::Pending,
                    reason: format!("journal write failed: {e}"),
                    code: exit::CONFIG,
                })?;
                let added = pan
                    .add_parsed(&result, &Selection::All, &path)
                    .await
                    .map_err(|e| failed_6(&e))?;
                added
                    .first()
                    .map(|t| t.identity.clone())
                    .ok_or_else(|| Failed {
                        state: State::Unknown,
                        reason: "added, but the task did not show up in the list".to_owned(),
                        code: exit::OUTCOME_UNKNOWN,
                    })
            }
        }
    }

    /// A line found `submitting` after a crash: its new state and task.
    async fn reconcile(&self, entry: &Entry) -> (State, Option<String>, Option<String>) {
        let Self::Pan6(pan) = self else {
            return (State::Unknown, None, Some(UNKNOWN_AFTER_CRASH.to_owned()));
        };
        // Nothing is added before the name is recorded: without a name, nothing exists.
        let Some(name) = &entry.name else {
            return (State::Pending, None, None);
        };
        let since = entry.submitted_at.unwrap_or(0) - 2_000;
        let mut tasks = pan.tasks();
        while let Some(t) = tasks.next().await {
            match t {
                Ok(t) if t.create_time.is_some_and(|c| c < since) => break,
                Ok(t) if &t.name == name => return (State::Submitted, Some(t.identity), None),
                Ok(_) => {}
                Err(e) => {
                    return (
                        State::Unknown,
                        None,
                        Some(format!("{UNKNOWN_AFTER_CRASH} ({e})")),
                    )
                }
            }
        }
        (State::Pending, None, None)
    }
}

fn journal_path(input: &Path, given: Option<&PathBuf>) -> PathBuf {
    given
        .cloned()
        .unwrap_or_else(|| journal::default_path(input))
}

/// A task ID as JSON: a number for 123pan, a string for 6pan.
fn task_json(task: Option<&str>) -> serde_json::Value {
    match task {
        Some(t) => t.parse::<u64>().map_or_else(|_| json!(t), |n| json!(n)),
        None => serde_json::Value::Null,
    }
}

fn report(out: &Output, e: &Entry) {
    if out.is_json() {
        println!(
            "{}",
            json!({
                "event": "line", "line": e.line, "source": e.source, "state": e.state.as_str(),
                "task": task_json(e.task.as_deref()), "kind": e.kind, "error": e.error,
            })
        );
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
    let kind = match (global.provider, args.image) {
        (Provider::Pan6, _) => "6pan",
        (Provider::Pan123, true) => "image",
        (Provider::Pan123, false) => "cloud",
    };
    let db = |e: rusqlite::Error| {
        out.error_line(&format!("journal write failed: {e}"), None);
        exit::CONFIG
    };
    let entries = match journal.sync(&lines, kind) {
        Ok(e) => e,
        Err(e) => return db(e),
    };
    let client = match global.provider {
        Provider::Pan123 => match client(global, out) {
            Ok(p) => Client::Pan123(p),
            Err(code) => return code,
        },
        Provider::Pan6 => match crate::sixpan::build_client(global) {
            Ok(p) => Client::Pan6(p),
            Err(e) => return crate::sixpan::report(out, "client", &e),
        },
    };
    let mut code = exit::OK;
    let mut to_watch = Vec::new();
    for mut entry in entries {
        if entry.state == State::Submitting {
            let (state, task, error) = client.reconcile(&entry).await;
            if let Err(e) = journal.set(&entry, state, task.as_deref(), error.as_deref()) {
                return db(e);
            }
            entry.state = state;
            entry.task = task.or(entry.task);
            entry.error = error;
        }
        let retry =
            entry.state == State::Pending || (entry.state == State::Unknown && args.retry_unknown);
        if !retry {
            match entry.state {
                State::Submitted => {
                    if let Some(task) = entry.task.as_deref().and_then(|t| t.parse().ok()) {
                        let id = provider_123pan::TaskId(task);
                        let task = if entry.kind == "image" {
                            TaskRef::image(id)
                        } else {
                            TaskRef::cloud(id)
                        };
                        to_watch.push((task, entry.source.clone()));
                    }
                }
                State::Unknown => code = code.max(exit::OUTCOME_UNKNOWN),
                _ => code = code.max(exit::PROVIDER),
            }
            report(out, &entry);
            continue;
        }
        // Recorded before anything is sent: a kill from here on leaves `submitting`.
        if let Err(e) = journal.set(&entry, State::Submitting, None, None) {
            return db(e);
        }
        let (state, task, error) = match client.submit(args, &journal, &entry).await {
            Ok(task) => (State::Submitted, Some(task), None),
            Err(f) => {
                code = code.max(f.code);
                (f.state, None, Some(f.reason))
            }
        };
        if let Err(e) = journal.set(&entry, state, task.as_deref(), error.as_deref()) {
            return db(e);
        }
        entry.state = state;
        entry.task = task.or(entry.task);
        entry.error = error;
        if let (Client::Pan123(_), Some(id)) =
            (&client, entry.task.as_deref().and_then(|t| t.parse().ok()))
        {
            if state == State::Submitted {
                let id = provider_123pan::TaskId(id);
                let task = if args.image {
                    TaskRef::image(id)
                } else {
                    TaskRef::cloud(id)
                };
                to_watch.push((task, entry.source.clone()));
            }
        }
        if out.is_json() {
            report(out, &entry);
        } else if state == State::Submitted {
            println!(
                "line {}: submitted, task {} ({})",
                entry.line,
                entry.task.as_deref().unwrap_or(""),
                entry.source
            );
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
        if let Client::Pan123(pan) = &client {
            let (_, watch_code) = watch(pan, &to_watch, out, true).await;
            code = code.max(watch_code);
        }
    }
    code
}

/// Shows every line's journal state, and the progress of submitted 123pan tasks when
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
        let progress = match (&pan, e.task.as_deref().and_then(|t| t.parse::<u64>().ok())) {
            (Some(pan), Some(id)) if e.kind != "6pan" => {
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
                    "task": task_json(e.task.as_deref()), "kind": e.kind, "error": e.error,
                    "status": progress.map(|p| p.status.as_str()), "percent": progress.map(|p| p.percent),
                })
            );
        } else {
            rows.push(vec![
                e.line.to_string(),
                e.state.as_str().to_owned(),
                e.task.clone().unwrap_or_default(),
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
