//! `add`, `status` and `wait` against a real account or any `--base-url`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use futures_util::StreamExt;
use provider_123pan::{
    Error, OfflineDownloadRequest, OssOfflineDownloadRequest, Pan123, Progress, TaskId, TaskRef,
};

use crate::output::{exit_code, status_exit, Output};
use crate::{exit, Global, Provider};

#[derive(Args, Debug)]
pub(crate) struct AddArgs {
    /// What to download: http(s) URLs (123pan), or with --provider 6pan also magnet and
    /// ed2k links and .torrent files.
    #[arg(required_unless_present = "from", conflicts_with = "from")]
    pub(crate) urls: Vec<String>,
    /// Submit every line of FILE (one URL per line, `#` comments), recording each
    /// line's state in a journal so that a second run submits nothing twice.
    #[arg(long, value_name = "FILE")]
    pub(crate) from: Option<PathBuf>,
    /// Where the journal lives (default: beside FILE, `FILE.journal.sqlite`).
    #[arg(long, value_name = "PATH", requires = "from")]
    pub(crate) journal: Option<PathBuf>,
    /// Submit again the lines whose outcome is unknown (check the drive first).
    #[arg(long, requires = "from")]
    pub(crate) retry_unknown: bool,
    /// Folder ID to download into (cloud drive; not the root, 0).
    #[arg(long)]
    pub(crate) dir: Option<u64>,
    /// Migrate into the image bed instead (URLs must be images).
    #[arg(long)]
    pub(crate) image: bool,
    /// Image-bed folder ID (with --image).
    #[arg(long, requires = "image")]
    pub(crate) image_dir: Option<String>,
    /// File name to save as (only with a single URL).
    #[arg(long)]
    name: Option<String>,
    /// URL the provider POSTs to when each task ends.
    #[arg(long)]
    pub(crate) callback: Option<String>,
    /// Watch the created tasks until they end.
    #[arg(long)]
    pub(crate) wait: bool,
    /// 6pan: the folder to download into, e.g. /downloads (default /).
    #[arg(long)]
    pub(crate) path: Option<String>,
    /// 6pan: download only the files of a torrent whose path matches one of these glob
    /// patterns, e.g. '*.txt' (repeatable).
    #[arg(long = "select", value_name = "PATTERN")]
    pub(crate) select: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct TaskArgs {
    /// Task IDs (123pan numbers, 6pan identities).
    #[arg(required_unless_present = "from", conflicts_with = "from")]
    tasks: Vec<String>,
    /// The tasks are image-bed tasks.
    #[arg(long)]
    image: bool,
    /// Show every line of a batch file submitted with `add --from FILE`.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// The batch's journal (default: beside FILE).
    #[arg(long, value_name = "PATH", requires = "from")]
    journal: Option<PathBuf>,
}

/// Builds the client from the global options.
pub(crate) fn build_client(global: &Global) -> Result<Pan123, Error> {
    let mut builder = Pan123::builder().insecure_http(global.insecure_http);
    if let Some(url) = global.base_url_for("OFFLINE_123PAN_BASE_URL") {
        builder = builder.base_url(url);
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
    for (name, rate) in &global.rate_limits {
        let endpoint = crate::find_endpoint(
            &provider_123pan::EndpointId::ALL,
            |e| e.operation_id(),
            name,
        )
        .map_err(Error::Config)?;
        builder = builder.rate_limit(endpoint, *rate);
    }
    builder.build()
}

/// Builds the client from the global options, or reports why not.
pub(crate) fn client(global: &Global, out: &Output) -> Result<Pan123, u8> {
    build_client(global).map_err(|e| {
        out.error_line(
            &format!("{e} (set OFFLINE_123PAN_CLIENT_ID and OFFLINE_123PAN_CLIENT_SECRET, or OFFLINE_123PAN_ACCESS_TOKEN)"),
            None,
        );
        exit_code(&e)
    })
}

pub(crate) async fn add(global: &Global, args: AddArgs, out: &Output) -> u8 {
    if let Some(from) = &args.from {
        return crate::batch::add_from(global, &args, from, out).await;
    }
    if global.provider == Provider::Pan6 {
        return crate::sixpan::add(global, &args, out).await;
    }
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

/// The 123pan tasks named on the command line, or the exit code of a bad ID.
fn task_refs(args: &TaskArgs, out: &Output) -> Result<Vec<TaskRef>, u8> {
    args.tasks
        .iter()
        .map(|s| {
            let id: TaskId = s.parse().map_err(|_| {
                out.error_line(
                    &format!("{s:?} is not a 123pan task ID (a number)"),
                    Some(s),
                );
                exit::USAGE
            })?;
            Ok(if args.image {
                TaskRef::image(id)
            } else {
                TaskRef::cloud(id)
            })
        })
        .collect()
}

pub(crate) async fn status(global: &Global, args: TaskArgs, out: &Output) -> u8 {
    if let Some(from) = &args.from {
        return crate::batch::status_from(global, from, args.journal.as_ref(), out).await;
    }
    if global.provider == Provider::Pan6 {
        return crate::sixpan::status(global, &args.tasks, out).await;
    }
    let refs = match task_refs(&args, out) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let pan = match client(global, out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut code = exit::OK;
    for task in refs {
        match pan.progress(task).await {
            Ok(p) => out.status_line(&p),
            Err(e) => code = code.max(out.error(&format!("task {}", task.id), &e)),
        }
    }
    code
}

pub(crate) async fn wait(global: &Global, args: TaskArgs, out: &Output) -> u8 {
    if global.provider == Provider::Pan6 {
        return crate::sixpan::wait(global, &args.tasks, out).await;
    }
    let refs = match task_refs(&args, out) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let pan = match client(global, out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let tasks: Vec<(TaskRef, String)> = refs
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
