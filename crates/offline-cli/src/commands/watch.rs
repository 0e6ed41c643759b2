//! Watching tasks to their end, for both providers: bars on a terminal, events with
//! `--json`, then a summary table.

use std::collections::{BTreeMap, BTreeSet};

use provider_123pan::{Error, Progress, TaskRef};
use provider_6pan::{OfflineTask, TaskStatus};

use crate::client::{next_guarded, refused_123, refused_6, Pan123, SixPan, Transport};
use crate::exit;
use crate::output::{percent_text, status_exit, table, Output};

/// Watches 123pan `tasks` to their end with bars or JSON lines, then prints a summary
/// table when `summary` (human mode). Returns each task's last result and the worst
/// exit code.
pub(crate) async fn watch_123(
    pan: &Pan123,
    transport: &Transport,
    tasks: &[(TaskRef, String)],
    out: &Output,
    summary: bool,
) -> (BTreeMap<TaskRef, Result<Progress, Error>>, u8) {
    let watcher = out.watcher(tasks);
    let mut results: BTreeMap<TaskRef, Result<Progress, Error>> = BTreeMap::new();
    let mut code = exit::OK;
    let mut stream = pan.wait_all(tasks.iter().map(|(t, _)| *t));
    loop {
        let next = tokio::select! {
            n = futures_util::StreamExt::next(&mut stream) => n,
            e = transport.gave_up_error() => {
                code = code.max(out.error("watch", &refused_123(e)));
                break;
            }
        };
        let Some((task, update)) = next else { break };
        match update {
            Ok(p) => {
                watcher.update(&p);
                if p.status.is_final() {
                    code = code.max(status_exit(p.status));
                }
                results.insert(task, Ok(p));
            }
            Err(e) => {
                let refused = matches!(e, Error::Transport(_));
                code = code.max(watcher.failed(task, &e));
                if !out.is_json() {
                    out.error(&format!("task {}", task.id), &e);
                }
                results.insert(task, Err(e));
                if refused {
                    break;
                }
                continue;
            }
        }
    }
    drop(watcher);
    if summary && !out.is_json() {
        let rows: Vec<Vec<String>> = tasks
            .iter()
            .map(|(task, label)| {
                let (outcome, percent) = match results.get(task) {
                    Some(Ok(p)) => (p.status.to_string(), percent_text(p.percent)),
                    Some(Err(e)) => (format!("error: {e}"), String::new()),
                    None => ("unknown".to_owned(), String::new()),
                };
                vec![
                    task.id.to_string(),
                    task.kind.as_str().to_owned(),
                    label.clone(),
                    outcome,
                    percent,
                ]
            })
            .collect();
        outln!();
        outln!(
            "{}",
            table(&["task", "kind", "source", "outcome", "%"], &rows)
        );
    }
    (results, code)
}

/// A stable snake_case word for a 6pan status.
pub(crate) fn status_word(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Failed => "failed",
        TaskStatus::Downloading => "downloading",
        TaskStatus::PartlyDone => "partly_done",
        TaskStatus::Done => "done",
        TaskStatus::Unknown(_) => "unknown",
    }
}

/// A 6pan task as an event; `reason` is why it failed
/// ([`OfflineTask::failure_reason`]), `path` where a finished one is in the drive.
pub(crate) fn task_json(event: &str, t: &OfflineTask) -> serde_json::Value {
    serde_json::json!({
        "event": event, "provider": "6pan", "task": t.identity, "name": t.name,
        "status": status_word(t.status), "status_code": t.status.code(),
        "percent": t.progress, "size": t.size, "downloaded": t.download_size,
        "reason": t.failure_reason(), "error_code": t.error_code, "path": t.access_path,
    })
}

/// Watches 6pan tasks to their end; returns the worst exit code.
///
/// 6pan reports `900` (partly done) both when files failed and when files were left
/// out by a selection, so the status alone cannot tell them apart: for a task created
/// with a selection (`selected` holds its identity) `900` is the expected end and exits
/// 0; for any other task it exits 1, so a partial failure is never hidden.
pub(crate) async fn watch_6(
    pan: &SixPan,
    transport: &Transport,
    tasks: Vec<(String, String)>,
    selected: &BTreeSet<String>,
    out: &Output,
) -> u8 {
    let watcher = out.bars(&tasks);
    let mut last: BTreeMap<String, OfflineTask> = BTreeMap::new();
    let mut code = exit::OK;
    let mut stream = pan.wait(tasks.iter().map(|(id, _)| id.as_str().into()).collect());
    while let Some(update) = next_guarded(transport, &mut stream, refused_6).await {
        match update {
            Ok(t) => {
                let expected_partial =
                    t.status == TaskStatus::PartlyDone && selected.contains(&t.identity.0);
                let done = t
                    .status
                    .is_final()
                    .then_some(t.status == TaskStatus::Done || expected_partial);
                if out.is_json() {
                    out.event(task_json(
                        if done.is_some() { "done" } else { "progress" },
                        &t,
                    ));
                }
                watcher.set(
                    &t.identity.0,
                    t.progress.unwrap_or(0.0),
                    status_word(t.status),
                    done,
                );
                if done == Some(false) {
                    code = code.max(exit::TASK_FAILED);
                }
                last.insert(t.identity.0.clone(), t);
            }
            Err(e) => {
                code = code.max(crate::client::report_6(out, "watch", &e));
                if matches!(e, provider_6pan::Error::Transport(_)) {
                    break;
                }
            }
        }
    }
    drop(watcher);
    if !out.is_json() {
        let rows: Vec<Vec<String>> = tasks
            .iter()
            .map(|(id, name)| {
                let (status, pct) = last
                    .get(id)
                    .map(|t| {
                        (
                            status_word(t.status).to_owned(),
                            percent_text(t.progress.unwrap_or(0.0)),
                        )
                    })
                    .unwrap_or_else(|| ("gone".to_owned(), String::new()));
                vec![id.clone(), name.clone(), status, pct]
            })
            .collect();
        outln!();
        outln!("{}", table(&["task", "name", "outcome", "%"], &rows));
    }
    code
}
