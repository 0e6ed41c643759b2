//! `offline add URL...` and `offline add --from FILE` (see [`super::batch`]).

use std::path::{Path, PathBuf};

use clap::Args;
use provider_123pan::{OfflineDownloadRequest, OssOfflineDownloadRequest, TaskRef};

use crate::cli::Provider;
use crate::client::{guarded, refused_123, Client};
use crate::exit;
use crate::output::Output;

/// `offline add`'s options.
#[derive(Args, Debug)]
pub(crate) struct AddArgs {
    /// What to download: http(s) URLs (123pan), or with --provider 6pan also magnet and
    /// ed2k links and .torrent files.
    #[arg(required_unless_present = "from", conflicts_with = "from")]
    pub(crate) urls: Vec<String>,
    /// Submit every line of FILE (one URL per line, `#` comments), recording each
    /// line's state in a journal so that no line is ever submitted twice.
    #[arg(long, value_name = "FILE")]
    pub(crate) from: Option<PathBuf>,
    /// Where the journal lives (default: beside FILE, `FILE.journal.sqlite`).
    #[arg(long, value_name = "PATH", requires = "from")]
    pub(crate) journal: Option<PathBuf>,
    /// Submit again the lines whose outcome is unknown (check the drive first).
    #[arg(long, requires = "from")]
    pub(crate) retry_unknown: bool,
    /// Seconds before a line refused by 123pan's concurrent-task cap
    /// (`同时下载的任务超出最大限制`) is submitted again; the wait doubles, at most 60 s,
    /// at most 6 times, then the line stays pending for the next run.
    #[arg(long, value_name = "SECONDS", requires = "from", default_value_t = offline_proto::retry::RESUBMIT_FIRST_DELAY.as_secs_f64(), value_parser = seconds)]
    pub(crate) cap_wait: f64,
    /// Watch the created tasks until they end.
    #[arg(long)]
    pub(crate) wait: bool,
    /// 123pan: the folder to download into, a path from the root (`/Movies/2026`;
    /// missing folders are created) or a folder ID; not the root. Default: the
    /// folder 来自:离线下载.
    #[arg(long, value_name = "PATH|ID")]
    pub(crate) dir: Option<String>,
    /// 123pan: migrate into the image bed instead (URLs must be images).
    #[arg(long)]
    pub(crate) image: bool,
    /// 123pan: image-bed folder ID (with --image).
    #[arg(long, value_name = "ID", requires = "image")]
    pub(crate) image_dir: Option<String>,
    /// 123pan: file name to save as (only with a single URL).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// 123pan: URL the provider POSTs to when each task ends.
    #[arg(long, value_name = "URL")]
    pub(crate) callback: Option<String>,
    /// 6pan: the folder to download into, e.g. /downloads (default /).
    #[arg(long)]
    pub(crate) path: Option<String>,
    /// 6pan: download only the files of a torrent whose path matches one of these glob
    /// patterns, e.g. '*.txt' (repeatable).
    #[arg(long = "select", value_name = "PATTERN")]
    pub(crate) select: Vec<String>,
}

/// A non-negative finite number of seconds.
fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds from 0 to 3600")),
    }
}

/// The options `provider` cannot honour (each refused, never ignored).
pub(crate) fn check(args: &AddArgs, provider: Provider) -> Vec<String> {
    const IMAGE_BED: &str = "is 123pan's image bed; 6pan has none";
    // A link with no files to select in it.
    let plain_link = args.urls.iter().find(|u| {
        let l = u.to_ascii_lowercase();
        l.starts_with("http://") || l.starts_with("https://") || l.starts_with("ed2k:")
    });
    // Each: whether the flag is given, the flag, why it is refused.
    let rules: Vec<(bool, &str, String)> = match provider {
        Provider::Pan123 => vec![
            (
                args.path.is_some(),
                "--path",
                "is 6pan's folder path; 123pan takes --dir PATH|ID".into(),
            ),
            (
                !args.select.is_empty(),
                "--select",
                "needs a torrent: 123pan takes no torrents (6pan does)".into(),
            ),
            (
                args.image && args.dir.is_some(),
                "--dir",
                "is a cloud-drive folder; with --image use --image-dir".into(),
            ),
        ],
        Provider::Pan6 => vec![
            (args.image, "--image", IMAGE_BED.into()),
            (args.image_dir.is_some(), "--image-dir", IMAGE_BED.into()),
            (
                args.name.is_some(),
                "--name",
                "is not supported by 6pan (a task keeps its source's name)".into(),
            ),
            (
                args.dir.is_some(),
                "--dir",
                "is 123pan's folder; 6pan takes --path /folder".into(),
            ),
            (
                args.callback.is_some(),
                "--callback",
                "is not supported by 6pan (it sends no callbacks)".into(),
            ),
            (
                !args.select.is_empty() && plain_link.is_some(),
                "--select",
                format!(
                    "needs torrents or magnet links; {} has no files to select",
                    plain_link.map_or("", String::as_str)
                ),
            ),
        ],
    };
    let mut problems: Vec<String> = rules
        .into_iter()
        .filter(|(given, _, _)| *given)
        .map(|(_, flag, why)| format!("{flag} {why}"))
        .collect();
    if args.name.is_some() && (args.from.is_some() || args.urls.len() > 1) {
        problems.push("--name needs exactly one URL (not several, not --from)".to_owned());
    }
    problems
}

/// Whether `source` names a local file rather than a link.
pub(crate) fn is_local_path(source: &str) -> bool {
    let lower = source.to_ascii_lowercase();
    !(source.contains("://") || lower.starts_with("magnet:") || lower.starts_with("ed2k:"))
}

/// Refuses local files that do not exist, before anything is sent.
pub(crate) fn check_inputs(args: &AddArgs, out: &Output) -> Option<u8> {
    for source in &args.urls {
        if is_local_path(source) && !Path::new(source).exists() {
            let what = if source.to_ascii_lowercase().ends_with(".torrent") {
                "no such file"
            } else {
                "no such file (and not a URL)"
            };
            return Some(out.fail(exit::CONFIG, &format!("{source}: {what}"), Some(source)));
        }
    }
    None
}

/// Runs `add`.
pub(crate) async fn run(client: &Client, args: &AddArgs, out: &Output) -> u8 {
    if let Some(from) = &args.from {
        return super::batch::add_from(client, args, from, out).await;
    }
    match client {
        Client::Pan123(pan, transport) => {
            let mut code = exit::OK;
            let mut created = Vec::new();
            let dir = match &args.dir {
                Some(dir) => match super::files::download_dir(pan, transport, dir, out).await {
                    Ok(id) => Some(id),
                    Err(code) => return code,
                },
                None => None,
            };
            for url in &args.urls {
                let call = async {
                    if args.image {
                        let mut req = OssOfflineDownloadRequest::new(url.clone());
                        req.file_name.clone_from(&args.name);
                        req.business_dir_id.clone_from(&args.image_dir);
                        req.callback_url.clone_from(&args.callback);
                        pan.oss_offline_download(req).await.map(TaskRef::image)
                    } else {
                        let mut req = OfflineDownloadRequest::new(url.clone());
                        req.file_name.clone_from(&args.name);
                        req.dir_id = dir;
                        req.callback_url.clone_from(&args.callback);
                        pan.offline_download(req).await.map(TaskRef::cloud)
                    }
                };
                match guarded(transport, call, refused_123).await {
                    Ok(task) => {
                        out.created(url, task);
                        created.push((task, url.clone()));
                        set_hint_123(&created);
                    }
                    Err(e) => code = code.max(out.error(url, &e)),
                }
            }
            if args.wait && !created.is_empty() {
                let (results, watch_code) =
                    super::watch::watch_123(pan, transport, &created, out, true).await;
                code = code.max(watch_code);
                let succeeded: Vec<(TaskRef, String)> = created
                    .iter()
                    .filter(|(t, _)| t.kind == provider_123pan::TaskKind::CloudDrive)
                    .filter(|(t, _)| {
                        matches!(results.get(t), Some(Ok(p)) if p.status == provider_123pan::TaskStatus::Succeeded)
                    })
                    .cloned()
                    .collect();
                let stored = super::files::report_stored(
                    pan,
                    transport,
                    &succeeded,
                    dir,
                    args.name.as_deref(),
                    out,
                )
                .await;
                code = code.max(stored);
            }
            code
        }
        Client::Pan6(..) => super::pan6::add(client, args, out).await,
    }
}

/// The interruption's hint: the `status` command of the tasks created so far.
pub(crate) fn set_hint_123(created: &[(TaskRef, String)]) {
    let image = created
        .iter()
        .any(|(t, _)| t.kind == provider_123pan::TaskKind::ImageBed);
    let ids: Vec<String> = created.iter().map(|(t, _)| t.id.to_string()).collect();
    crate::interrupt::set_hint(format!(
        "offline status{} {}",
        if image { " --image" } else { "" },
        ids.join(" ")
    ));
}
