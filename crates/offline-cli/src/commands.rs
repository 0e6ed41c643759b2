//! `add`, `status` and `wait` against a real account or any `--base-url`.

use std::collections::BTreeMap;

use clap::Args;
use futures_util::StreamExt;
use provider_123pan::{
    Error, OfflineDownloadRequest, OssOfflineDownloadRequest, Pan123, Progress, TaskId, TaskRef,
};

use crate::output::{exit_code, status_exit, Output};
use crate::{exit, Global};

#[derive(Args, Debug)]
pub(crate) struct AddArgs {
    /// The http(s) URLs to download.
    #[arg(required = true)]
    urls: Vec<String>,
    /// Folder ID to download into (cloud drive; not the root, 0).
    #[arg(long)]
    dir: Option<u64>,
    /// Migrate into the image bed instead (URLs must be images).
    #[arg(long)]
    image: bool,
    /// Image-bed folder ID (with --image).
    #[arg(long, requires = "image")]
    image_dir: Option<String>,
    /// File name to save as (only with a single URL).
    #[arg(long)]
    name: Option<String>,
    /// URL the provider POSTs to when each task ends.
    #[arg(long)]
    callback: Option<String>,
    /// Watch the created tasks until they end.
    #[arg(long)]
    wait: bool,
}

#[derive(Args, Debug)]
pub(crate) struct TaskArgs {
    /// Task IDs.
    #[arg(required = true)]
    tasks: Vec<TaskId>,
    /// The tasks are image-bed tasks.
    #[arg(long)]
    image: bool,
}

/// Builds the client from the global options, or reports why not.
pub(crate) fn client(global: &Global, out: &Output) -> Result<Pan123, u8> {
    let mut builder = Pan123::builder().insecure_http(global.insecure_http);
    if let Some(url) = &global.base_url {
        builder = builder.base_url(url.clone());
    }
    if let Some(id) = &global.client_id {
        builder = builder.client_id(id.clone());
    }
    if let Some(secret) = &global.client_secret {
        builder = builder.client_secret(secret.clone());
    }
    if let Some(token) = &global.access_token {
        builder = builder.access_token(token.clone(), None);
    }
    builder.build().map_err(|e| {
        out.error_line(
            &format!("{e} (set OFFLINE_123PAN_CLIENT_ID and OFFLINE_123PAN_CLIENT_SECRET, or OFFLINE_123PAN_ACCESS_TOKEN)"),
            None,
        );
        exit_code(&e)
    })
}

pub(crate) async fn add(global: &Global, args: AddArgs, out: &Output) -> u8 {
    if args.name.is_some() && args.urls.len() > 1 {
        out.error_line("--name needs exactly one URL", None);
        return exit::CONFIG;
    }
    let pan = match client(global, out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut code = exit::OK;
    let mut created = Vec::new();
    for url in &args.urls {
        let result = if args.image {
            let mut req = OssOfflineDownloadRequest::new(url.clone());
            req.file_name.clone_from(&args.name);
            req.business_dir_id.clone_from(&args.image_dir);
            req.callback_url.clone_from(&args.callback);
            pan.oss_offline_download(req).await.map(TaskRef::image)
        } else {
            let mut req = OfflineDownloadRequest::new(url.clone());
            req.file_name.clone_from(&args.name);
            req.dir_id = args.dir;
            req.callback_url.clone_from(&args.callback);
            pan.offline_download(req).await.map(TaskRef::cloud)
        };
        match result {
            Ok(task) => {
                out.created(url, task);
                created.push((task, url.clone()));
            }
            Err(e) => code = code.max(out.error(url, &e)),
        }
    }
    if args.wait && !created.is_empty() {
        let (_, watch_code) = watch(&pan, &created, out, true).await;
        code = code.max(watch_code);
    }
    code
}

fn task_refs(args: &TaskArgs) -> Vec<TaskRef> {
    args.tasks
        .iter()
        .map(|&id| {
            if args.image {
                TaskRef::image(id)
            } else {
                TaskRef::cloud(id)
            }
        })
        .collect()
}

pub(crate) async fn status(global: &Global, args: TaskArgs, out: &Output) -> u8 {
    let pan = match client(global, out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut code = exit::OK;
    for task in task_refs(&args) {
        match pan.progress(task).await {
            Ok(p) => out.status_line(&p),
            Err(e) => code = code.max(out.error(&format!("task {}", task.id), &e)),
        }
    }
    code
}

pub(crate) async fn wait(global: &Global, args: TaskArgs, out: &Output) -> u8 {
    let pan = match client(global, out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let tasks: Vec<(TaskRef, String)> = task_refs(&args)
        .into_iter()
        .map(|t| (t, format!("task {}", t.id)))
        .collect();
    watch(&pan, &tasks, out, true).await.1
}

/// Watches `tasks` to their end with bars or JSON lines, then prints a summary table
/// when `summary` (human mode). Returns each task's last result and the worst exit code.
pub(crate) async fn watch(
    pan: &Pan123,
    tasks: &[(TaskRef, String)],
    out: &Output,
    summary: bool,
) -> (BTreeMap<TaskRef, Result<Progress, Error>>, u8) {
    let watcher = out.watcher(tasks);
    let mut results: BTreeMap<TaskRef, Result<Progress, Error>> = BTreeMap::new();
    let mut code = exit::OK;
    let mut stream = pan.wait_all(tasks.iter().map(|(t, _)| *t));
    while let Some((task, update)) = stream.next().await {
        match update {
            Ok(p) => {
                watcher.update(&p);
                if p.status.is_final() {
                    code = code.max(status_exit(p.status));
                }
                results.insert(task, Ok(p));
            }
            Err(e) => {
                code = code.max(watcher.failed(task, &e));
                results.insert(task, Err(e));
            }
        }
    }
    drop(watcher);
    if summary && !out.is_json() {
        let rows: Vec<Vec<String>> = tasks
            .iter()
            .map(|(task, label)| {
                let (outcome, percent) = match results.get(task) {
                    Some(Ok(p)) => (p.status.to_string(), format!("{:.1}", p.percent)),
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
        println!();
        println!(
            "{}",
            crate::output::table(&["task", "kind", "source", "outcome", "%"], &rows)
        );
    }
    (results, code)
}
