//! The 6pan side of the CLI: `--provider 6pan` with `add`, `status`, `wait`, `list`,
//! `rm` and `login`.

use std::path::Path;

use futures_util::StreamExt;
use provider_6pan::{Error, OfflineTask, Selection, SixPan, SixPanBuilder, TaskStatus};
use serde_json::json;
use transport_hyper::HyperClient;

use crate::commands::AddArgs;
use crate::output::{table, Output};
use crate::{exit, Global};

/// The exit code for a 6pan error.
pub(crate) fn exit_code(e: &Error) -> u8 {
    use offline_proto::ApiError;
    match e {
        Error::Config(_)
        | Error::Invalid(_)
        | Error::NotAuthenticated
        | Error::Selection(_)
        | Error::Io { .. } => exit::CONFIG,
        Error::Transport(_) | Error::Api(ApiError::Http { .. } | ApiError::Decode(_)) => {
            exit::TRANSPORT
        }
        Error::OutcomeUnknown { .. } => exit::OUTCOME_UNKNOWN,
        _ => exit::PROVIDER,
    }
}

fn error_kind(e: &Error) -> &'static str {
    match exit_code(e) {
        exit::CONFIG => "config",
        exit::TRANSPORT => "transport",
        exit::OUTCOME_UNKNOWN => "outcome_unknown",
        _ => "provider",
    }
}

/// Reports a 6pan error about `subject`; returns its exit code.
pub(crate) fn report(out: &Output, subject: &str, e: &Error) -> u8 {
    if out.is_json() {
        let p = e.provider_error();
        println!(
            "{}",
            json!({
                "event": "error", "subject": subject, "kind": error_kind(e), "message": e.to_string(),
                "code": p.map(|p| p.code.to_string()),
            })
        );
    } else {
        eprintln!("error: {subject}: {e}");
    }
    exit_code(e)
}

/// Builds the 6pan client from the global options.
pub(crate) fn build_client(global: &Global) -> Result<SixPan, Error> {
    build_client_with(global, |b| b)
}

/// Builds the 6pan client from the global options and what `more` sets on the builder.
pub(crate) fn build_client_with(
    global: &Global,
    more: impl FnOnce(SixPanBuilder<HyperClient>) -> SixPanBuilder<HyperClient>,
) -> Result<SixPan, Error> {
    let mut b = more(SixPan::builder()).insecure_http(global.insecure_http);
    if let Some(url) = global.base_url_for("OFFLINE_6PAN_BASE_URL") {
        b = b.base_url(url);
    }
    if let (Some(a), Some(p)) = (&global.account, &global.password) {
        b = b.login(a.clone(), p.clone());
    }
    if let Some(t) = &global.token {
        b = b.token(t.clone());
    }
    for (name, rate) in &global.rate_limits {
        let endpoint =
            crate::find_endpoint(&provider_6pan::EndpointId::ALL, |e| e.operation_id(), name)
                .map_err(Error::Config)?;
        b = b.rate_limit(endpoint, *rate);
    }
    b.build()
}

fn client(global: &Global, out: &Output) -> Result<SixPan, u8> {
    build_client(global).map_err(|e| {
        out.error_line(
            &format!(
                "{e} (set OFFLINE_6PAN_ACCOUNT and OFFLINE_6PAN_PASSWORD, or OFFLINE_6PAN_TOKEN)"
            ),
            None,
        );
        exit_code(&e)
    })
}

fn status_word(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Failed => "failed",
        TaskStatus::Downloading => "downloading",
        TaskStatus::PartlyDone => "partly done",
        TaskStatus::Done => "done",
        TaskStatus::Unknown(_) => "unknown",
    }
}

fn task_json(event: &str, t: &OfflineTask) -> serde_json::Value {
    json!({
        "event": event, "provider": "6pan", "task": t.identity, "name": t.name,
        "status": status_word(t.status), "status_code": t.status.code(),
        "percent": t.progress, "size": t.size, "downloaded": t.download_size,
    })
}

fn source_is_torrent_file(source: &str) -> bool {
    source.to_ascii_lowercase().ends_with(".torrent") && Path::new(source).is_file()
}

pub(crate) async fn add(global: &Global, args: &AddArgs, out: &Output) -> u8 {
    let pan = match client(global, out) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let path = args.path.clone().unwrap_or_else(|| "/".to_owned());
    let selection = if args.select.is_empty() {
        Selection::All
    } else {
        Selection::Globs(args.select.clone())
    };
    let mut code = exit::OK;
    let mut created: Vec<OfflineTask> = Vec::new();
    let mut with_selection = std::collections::BTreeSet::new();
    for source in &args.urls {
        let results = if source_is_torrent_file(source) {
            match pan.upload_torrent(source).await {
                Ok(up) => {
                    if out.is_json() {
                        println!(
                            "{}",
                            json!({"event": "uploaded", "file": source, "etag": up.etag.as_str(), "instant": up.instant, "files": up.result.files.len()})
                        );
                    } else {
                        let how = if up.instant {
                            "instant upload (the drive knew its etag)"
                        } else {
                            "uploaded"
                        };
                        println!(
                            "{source}: {how}, etag {}, {} files",
                            up.etag,
                            up.result.files.len()
                        );
                    }
                    Ok(vec![up.result])
                }
                Err(e) => Err(e),
            }
        } else {
            pan.parse_urls(&[source.as_str()]).await
        };
        let results = match results {
            Ok(r) => r,
            Err(e) => {
                code = code.max(report(out, source, &e));
                continue;
            }
        };
        for result in results {
            let sel = if result.files.is_empty() {
                Selection::All
            } else {
                selection.clone()
            };
            match pan.add_parsed(&result, &sel, &path).await {
                Ok(tasks) => {
                    for t in tasks {
                        if sel != Selection::All {
                            with_selection.insert(t.identity.clone());
                        }
                        if out.is_json() {
                            println!("{}", task_json("created", &t));
                        } else {
                            println!("created task {} ({}) in {path}", t.identity, t.name);
                        }
                        created.push(t);
                    }
                }
                Err(e) => code = code.max(report(out, source, &e)),
            }
        }
    }
    if args.wait && !created.is_empty() {
        let ids = created
            .iter()
            .map(|t| (t.identity.clone(), t.name.clone()))
            .collect();
        code = code.max(watch(&pan, ids, &with_selection, out).await);
    }
    code
}

/// Watches tasks to their end; returns the worst exit code.
///
/// 6pan reports `900` (partly done) both when files failed and when files were left
/// out by a selection, so the status alone cannot tell them apart: for a task created
/// with a selection (`selected` holds its identity) `900` is the expected end and exits
/// 0; for any other task it exits 1, so a partial failure is never hidden.
pub(crate) async fn watch(
    pan: &SixPan,
    tasks: Vec<(String, String)>,
    selected: &std::collections::BTreeSet<String>,
    out: &Output,
) -> u8 {
    let watcher = out.bars(&tasks);
    let mut last: std::collections::BTreeMap<String, OfflineTask> = Default::default();
    let mut code = exit::OK;
    let mut stream = pan.wait(tasks.iter().map(|(id, _)| id.clone()).collect());
    while let Some(update) = stream.next().await {
        match update {
            Ok(t) => {
                let expected_partial =
                    t.status == TaskStatus::PartlyDone && selected.contains(&t.identity);
                let done = t
                    .status
                    .is_final()
                    .then_some(t.status == TaskStatus::Done || expected_partial);
                if out.is_json() {
                    println!(
                        "{}",
                        task_json(if done.is_some() { "done" } else { "progress" }, &t)
                    );
                }
                watcher.set(
                    &t.identity,
                    t.progress.unwrap_or(0.0),
                    status_word(t.status),
                    done,
                );
                if done == Some(false) {
                    code = code.max(exit::TASK_FAILED);
                }
                last.insert(t.identity.clone(), t);
            }
            Err(e) => code = code.max(report(out, "watch", &e)),
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
                            format!("{:.1}", t.progress.unwrap_or(0.0)),
                        )
                    })
                    .unwrap_or_else(|| ("gone".to_owned(), String::new()));
                vec![id.clone(), name.clone(), status, pct]
            })
            .collect();
        println!();
        println!("{}", table(&["task", "name", "outcome", "%"], &rows));
    }
    code
}

pub(crate) async fn list(global: &Global, out: &Output) -> u8 {
    let pan = match client(global, out) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let mut rows = Vec::new();
    let mut stream = pan.tasks();
    while let Some(t) = stream.next().await {
        match t {
            Ok(t) if out.is_json() => println!("{}", task_json("task", &t)),
            Ok(t) => rows.push(vec![
                t.identity.clone(),
                status_word(t.status).to_owned(),
                format!("{:.1}", t.progress.unwrap_or(0.0)),
                t.size.map(|s| s.to_string()).unwrap_or_default(),
                t.name.clone(),
            ]),
            Err(e) => return report(out, "list", &e),
        }
    }
    if !out.is_json() {
        println!(
            "{}",
            table(&["task", "status", "%", "bytes", "name"], &rows)
        );
    }
    exit::OK
}

pub(crate) async fn status(global: &Global, ids: &[String], out: &Output) -> u8 {
    let pan = match client(global, out) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let mut found = std::collections::BTreeMap::new();
    let mut stream = pan.tasks();
    while let Some(t) = stream.next().await {
        match t {
            Ok(t) if ids.contains(&t.identity) => {
                found.insert(t.identity.clone(), t);
            }
            Ok(_) => {}
            Err(e) => return report(out, "status", &e),
        }
    }
    let mut code = exit::OK;
    for id in ids {
        match found.get(id) {
            Some(t) if out.is_json() => println!("{}", task_json("status", t)),
            Some(t) => println!(
                "task {id} ({}): {} {:.1}%",
                t.name,
                status_word(t.status),
                t.progress.unwrap_or(0.0)
            ),
            None => {
                out.error_line(&format!("task {id}: not in the task list"), Some(id));
                code = exit::PROVIDER;
            }
        }
    }
    code
}

pub(crate) async fn wait(global: &Global, ids: &[String], out: &Output) -> u8 {
    let pan = match client(global, out) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let none = std::collections::BTreeSet::new();
    watch(
        &pan,
        ids.iter().map(|id| (id.clone(), id.clone())).collect(),
        &none,
        out,
    )
    .await
}

pub(crate) async fn rm(global: &Global, ids: &[String], out: &Output) -> u8 {
    let pan = match client(global, out) {
        Ok(p) => p,
        Err(c) => return c,
    };
    match pan.delete(ids).await {
        Ok(n) => {
            if out.is_json() {
                println!("{}", json!({"event": "deleted", "count": n}));
            } else {
                println!("deleted {n} task(s)");
            }
            exit::OK
        }
        Err(e) => report(out, "rm", &e),
    }
}

pub(crate) async fn login(global: &Global, out: &Output) -> u8 {
    let pan = match client(global, out) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let result = if global.account.is_some() {
        pan.login().await
    } else {
        pan.user_info().await
    };
    match result {
        Ok(_) => {
            let who = global
                .account
                .clone()
                .unwrap_or_else(|| "(token)".to_owned());
            if out.is_json() {
                println!("{}", json!({"event": "login", "account": who, "ok": true}));
            } else {
                println!("logged in as {who}");
            }
            exit::OK
        }
        Err(e) => report(out, "login", &e),
    }
}
