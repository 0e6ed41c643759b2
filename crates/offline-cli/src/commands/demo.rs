//! `offline demo`: the whole 123pan journey on an embedded emulator, with real bytes.
//!
//! Starts the emulator and a loopback file server, submits a normal file, an image to
//! the image bed and a URL that answers 404 (each with a callback URL), shows a bar per
//! task, receives the callbacks, confirms each with the progress call, checks the bytes
//! the emulator stored, and ends with a table of every task's outcome.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use offline_emulator::source::{ServedFile, SourceServer};
use offline_proto::tracker::PollPolicy;
use provider_123pan::{
    CallbackStatus, OfflineDownloadRequest, OssOfflineDownloadRequest, TaskRef, TaskStatus,
};

use crate::client::Transport;
use crate::exit;
use crate::output::{table, Output};

const IMAGE_NAME: &str = "trpl14-01.png";
const IMAGE: &[u8] = include_bytes!("../../../../fixtures/images/trpl14-01.png");

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Size of the sample file, in MiB.
    #[arg(long, default_value_t = 6)]
    size_mib: u64,
    /// How fast the emulator fetches sources, in bytes per second (so progress is visible).
    #[arg(long, default_value_t = 3 * 1024 * 1024)]
    fetch_rate: u64,
}

/// Deterministic sample bytes: byte `i` is `i % 251`.
fn sample(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

struct Expectation {
    task: TaskRef,
    source: String,
    expect: TaskStatus,
    bytes: Option<Bytes>,
}

/// How the demo's clients poll a task: often, its tasks being short.
const POLL: PollPolicy = PollPolicy {
    initial: Duration::from_millis(250),
    max: Duration::from_millis(500),
    factor: 1.5,
};

/// The demo clients' transport, or the exit code of a failure to set it up (said).
fn transport(out: &Output) -> Result<Transport, u8> {
    Transport::new().map_err(|_| {
        out.error_line("cannot set up the transport", None);
        exit::CONFIG
    })
}

pub(crate) async fn run(args: DemoArgs, out: &Output) -> u8 {
    let config = offline_emulator::EmulatorConfig {
        fetch_rate: Some(args.fetch_rate.max(1)),
        ..Default::default()
    };
    let emu = match offline_emulator::Emulator::start(config).await {
        Ok(e) => e,
        Err(e) => {
            out.error_line(&format!("cannot start the emulator: {e}"), None);
            return exit::CONFIG;
        }
    };
    let sample_bytes = sample(usize::try_from(args.size_mib * 1024 * 1024).unwrap_or(usize::MAX));
    let mut files = BTreeMap::new();
    files.insert(
        "sample.bin".to_owned(),
        ServedFile::new("application/octet-stream", sample_bytes.clone()),
    );
    files.insert(
        IMAGE_NAME.to_owned(),
        ServedFile::new("image/png", Bytes::from_static(IMAGE)),
    );
    let sources = match SourceServer::start(files).await {
        Ok(s) => s,
        Err(e) => {
            out.error_line(&format!("cannot start the demo file server: {e}"), None);
            return exit::CONFIG;
        }
    };
    out.say(&format!(
        "emulator (123pan open platform) on {}",
        emu.base_url()
    ));
    out.say(&format!(
        "file server and callback receiver on {}",
        sources.base_url()
    ));
    out.say("");

    let transport = match transport(out) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let pan = match provider_123pan::Pan123::builder()
        .http_client(transport.clone())
        .base_url(emu.base_url())
        .client_id(emu.client_id())
        .client_secret(emu.client_secret())
        .poll_policy(POLL)
        .build()
    {
        Ok(p) => p,
        Err(e) => return out.error("client", &e),
    };

    // Local validation: refused before any request exists.
    let not_an_image = sources.file_url("sample.bin");
    match pan.oss_offline_download(not_an_image.as_str()).await {
        Err(e) => out.say(&format!("refused locally, nothing sent: {e}")),
        Ok(task) => {
            out.error_line(
                &format!("the image bed accepted a non-image (task {task})"),
                None,
            );
            return exit::TASK_FAILED;
        }
    }
    out.say("");

    let callback = sources.callback_url();
    let mut expectations = Vec::new();
    let mut code = exit::OK;

    // The cloud-drive downloads go into a folder given by path, made on the way.
    let folder = match pan.resolve_dir(DEMO_FOLDER, true).await {
        Ok(r) => {
            for path in &r.created {
                out.say(&format!("created folder {path}"));
            }
            Some(r.id)
        }
        Err(e) => {
            code = code.max(out.error(DEMO_FOLDER, &e));
            None
        }
    };

    let submissions: Vec<(String, bool, TaskStatus, Option<Bytes>)> = vec![
        (
            sources.file_url("sample.bin"),
            false,
            TaskStatus::Succeeded,
            Some(sample_bytes.clone()),
        ),
        (
            sources.file_url(IMAGE_NAME),
            true,
            TaskStatus::Succeeded,
            Some(Bytes::from_static(IMAGE)),
        ),
        (
            sources.file_url("missing.bin"),
            false,
            TaskStatus::Failed,
            None,
        ),
    ];
    for (url, image, expect, bytes) in submissions {
        let created = if image {
            let mut req = OssOfflineDownloadRequest::new(url.clone());
            req.callback_url = Some(callback.clone());
            pan.oss_offline_download(req).await.map(TaskRef::image)
        } else {
            let mut req = OfflineDownloadRequest::new(url.clone());
            req.callback_url = Some(callback.clone());
            req.dir_id = folder;
            pan.offline_download(req).await.map(TaskRef::cloud)
        };
        match created {
            Ok(task) => {
                out.created(&url, task);
                expectations.push(Expectation {
                    task,
                    source: url,
                    expect,
                    bytes,
                });
            }
            Err(e) => code = code.max(out.error(&url, &e)),
        }
    }
    out.say("");

    let labels: Vec<(TaskRef, String)> = expectations
        .iter()
        .map(|e| (e.task, e.source.rsplit('/').next().unwrap_or("").to_owned()))
        .collect();
    let (results, _) =
        crate::commands::watch::watch_123(&pan, &transport, &labels, out, false).await;

    let callbacks = sources
        .wait_callbacks(expectations.len(), Duration::from_secs(10))
        .await;
    let stored = emu.tasks();
    let mut rows = Vec::new();
    let mut outcomes = Vec::new();
    for e in &expectations {
        let outcome = match results.get(&e.task) {
            Some(Ok(p)) => p.status,
            _ => TaskStatus::Unknown(-1),
        };
        let cb = callbacks.iter().find(|c| c.url == e.source);
        // A callback is a hint: confirm it with the progress call before believing it.
        let confirmed = match (cb, pan.progress(e.task).await) {
            (Some(c), Ok(p)) => match c.status {
                CallbackStatus::Succeeded => p.status == TaskStatus::Succeeded,
                CallbackStatus::Failed => p.status == TaskStatus::Failed,
                CallbackStatus::Unknown(_) => false,
            },
            _ => false,
        };
        let cb_text = match cb {
            Some(c) if confirmed => match c.status {
                CallbackStatus::Succeeded => format!("ok, file ID {}", c.file_id.unwrap_or(0)),
                _ => format!("failed: {}", c.fail_reason),
            },
            Some(_) => "received, NOT confirmed".to_owned(),
            None => "not received".to_owned(),
        };
        let bytes_check = match (&e.bytes, stored.iter().find(|t| t.id == e.task.id)) {
            (Some(expected), Some(t)) if outcome == TaskStatus::Succeeded => {
                match t.stored_path.as_ref().map(std::fs::read) {
                    Some(Ok(got)) if got == expected.as_ref() => {
                        format!("{} bytes match", got.len())
                    }
                    Some(Ok(got)) => format!("MISMATCH ({} bytes)", got.len()),
                    _ => "not stored".to_owned(),
                }
            }
            _ => "-".to_owned(),
        };
        let as_expected = outcome == e.expect
            && cb.is_some()
            && confirmed
            && !bytes_check.starts_with("MISMATCH")
            && bytes_check != "not stored";
        if !as_expected {
            code = code.max(exit::TASK_FAILED);
        }
        outcomes.push(outcome);
        rows.push(vec![
            e.task.id.to_string(),
            e.task.kind.as_str().to_owned(),
            e.source.rsplit('/').next().unwrap_or("").to_owned(),
            outcome.to_string(),
            cb_text,
            bytes_check,
            if as_expected {
                "yes".to_owned()
            } else {
                "NO".to_owned()
            },
        ]);
    }
    if out.is_json() {
        for (row, outcome) in rows.iter().zip(&outcomes) {
            out.event(serde_json::json!({
                    "event": "demo_summary", "provider": "123pan", "task": row[0], "kind": row[1], "source": row[2],
                    "outcome": outcome.as_str(), "callback": row[4], "stored": row[5], "as_expected": row[6] == "yes",
                })
            );
        }
    } else {
        outln!();
        outln!("Summary");
        outln!(
            "{}",
            table(
                &[
                    "task",
                    "kind",
                    "source",
                    "outcome",
                    "callback (confirmed)",
                    "stored bytes",
                    "as expected"
                ],
                &rows
            )
        );
        outln!();
        outln!(
            "{} tasks, {} callbacks, {} token request(s), {} rate-limit answers",
            expectations.len(),
            callbacks.len(),
            emu.token_requests(),
            emu.rate_limited()
        );
    }
    if let Some(folder) = folder {
        code = code.max(show_folder(&pan, folder, sample_bytes.len(), out).await);
    }
    out.say("");
    code = code.max(run_sixpan(&emu, out).await);
    emu.shutdown().await;
    code
}

/// The folder the demo's cloud-drive downloads go into.
const DEMO_FOLDER: &str = "/Movies/2026";

/// Lists the demo's folder: the downloaded sample must be there with its size.
async fn show_folder(
    pan: &provider_123pan::Pan123<Transport>,
    folder: provider_123pan::FileId,
    sample_len: usize,
    out: &Output,
) -> u8 {
    let entries = match pan.list_all(folder).await {
        Ok(e) => e,
        Err(e) => return out.error(DEMO_FOLDER, &e),
    };
    let found = entries
        .iter()
        .any(|e| e.filename == "sample.bin" && e.size == sample_len as u64);
    if out.is_json() {
        for e in &entries {
            out.event(serde_json::json!({
                "event": "file", "id": e.file_id.to_string(), "name": e.filename,
                "type": if e.is_folder() { "folder" } else { "file" }, "size": e.size,
                "etag": e.etag, "parent": e.parent_file_id.to_string(),
            }));
        }
    } else {
        outln!();
        outln!("{DEMO_FOLDER} in the drive");
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                vec![
                    e.file_id.to_string(),
                    e.size.to_string(),
                    e.etag.clone(),
                    e.filename.clone(),
                ]
            })
            .collect();
        outln!("{}", table(&["ID", "SIZE", "ETAG (MD5)", "NAME"], &rows));
    }
    if found {
        exit::OK
    } else {
        out.error_line(&format!("sample.bin is not in {DEMO_FOLDER}"), None);
        exit::TASK_FAILED
    }
}

/// The 6pan journey: a torrent whose web seed is a loopback server, uploaded twice (the
/// second time instant), its files shown, `*.txt` selected, added, watched to the end,
/// and the stored bytes compared with the source.
async fn run_sixpan(emu: &offline_emulator::RunningEmulator, out: &Output) -> u8 {
    use provider_6pan::{Selection, SixPan};

    out.say("6pan: torrent upload with instant upload, file selection, web-seed download");
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "readme.txt",
            b"Fetched by the drive through the torrent's web seed.\n".to_vec(),
        ),
        (
            "notes.txt",
            b"Only the .txt files were selected.\n".to_vec(),
        ),
        ("sample.bin", sample(1024 * 1024).to_vec()),
    ];
    let served = files
        .iter()
        .map(|(n, d)| {
            (
                format!("seed/demo-pack/{n}"),
                ServedFile::new("application/octet-stream", d.clone()),
            )
        })
        .collect();
    let seed = match SourceServer::start(served).await {
        Ok(s) => s,
        Err(e) => {
            out.error_line(&format!("cannot start the web seed: {e}"), None);
            return exit::CONFIG;
        }
    };
    let mut builder = offline_proto::torrent::TorrentBuilder::new("demo-pack")
        .piece_length(64 * 1024)
        .web_seed(format!("{}/files/seed/", seed.base_url()));
    for (name, data) in &files {
        builder = builder.file(&[name], data.clone());
    }
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            out.error_line(&format!("cannot create a temporary directory: {e}"), None);
            return exit::CONFIG;
        }
    };
    let torrent_path = dir.path().join("demo-pack.torrent");
    if let Err(e) = std::fs::write(&torrent_path, builder.build()) {
        out.error_line(&format!("cannot write the demo torrent: {e}"), None);
        return exit::CONFIG;
    }
    let transport = match transport(out) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let pan = match SixPan::builder()
        .http_client(transport.clone())
        .base_url(emu.base_url())
        .login(emu.sixpan_account(), emu.sixpan_password())
        .poll_policy(POLL)
        .build()
    {
        Ok(p) => p,
        Err(e) => return crate::client::report_6(out, "6pan client", &e),
    };
    let mut rows = Vec::new();
    let mut code = exit::OK;
    let mut check = |step: &str, ok: bool, detail: String, rows: &mut Vec<Vec<String>>| {
        if !ok {
            code = exit::TASK_FAILED;
        }
        rows.push(vec![
            step.to_owned(),
            detail,
            if ok { "yes" } else { "NO" }.to_owned(),
        ]);
    };

    let first = match pan.upload_torrent(&torrent_path).await {
        Ok(u) => u,
        Err(e) => return crate::client::report_6(out, "upload", &e),
    };
    check(
        "first upload",
        !first.instant,
        format!("uploaded, etag {}", first.etag),
        &mut rows,
    );
    out.say(&format!(
        "uploaded demo-pack.torrent (etag {}); its files:",
        first.etag
    ));
    if !out.is_json() {
        let file_rows: Vec<Vec<String>> = first
            .result
            .files
            .iter()
            .map(|f| {
                vec![
                    f.file_index.unwrap_or(0).to_string(),
                    f.size.unwrap_or(0).to_string(),
                    f.path.clone().unwrap_or_else(|| f.name.clone()),
                ]
            })
            .collect();
        outln!("{}", table(&["#", "bytes", "path"], &file_rows));
    }
    let second = match pan.upload_torrent(&torrent_path).await {
        Ok(u) => u,
        Err(e) => return crate::client::report_6(out, "upload", &e),
    };
    check(
        "second upload",
        second.instant,
        "instant: the drive knew the etag, no byte sent".to_owned(),
        &mut rows,
    );
    out.say("uploaded it again: instant (no byte sent)");

    let selection = Selection::Globs(vec!["*.txt".to_owned()]);
    let added = match pan.add_parsed(&second.result, &selection, "/demo").await {
        Ok(a) => a,
        Err(e) => return crate::client::report_6(out, "add", &e),
    };
    for t in &added {
        if out.is_json() {
            out.event(crate::commands::watch::task_json("created", t));
        } else {
            outln!(
                "created task {} ({}) with --select '*.txt'",
                t.identity,
                crate::output::screen(&t.name)
            );
        }
    }
    let selected = added.iter().map(|t| t.identity.0.clone()).collect();
    let watch_code = crate::commands::watch::watch_6(
        &pan,
        &transport,
        added
            .iter()
            .map(|t| (t.identity.0.clone(), t.name.clone()))
            .collect(),
        &selected,
        out,
    )
    .await;
    check(
        "task ended",
        watch_code == exit::OK,
        "the selected files were downloaded (900: the others were left out)".to_owned(),
        &mut rows,
    );

    let snapshot = emu
        .sixpan_tasks()
        .into_iter()
        .find(|t| added.first().is_some_and(|a| a.identity.0 == t.identity));
    let stored: Vec<(String, bool)> = snapshot
        .map(|t| {
            t.stored_paths
                .iter()
                .map(|p| {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let source = files.iter().find(|(n, _)| name.ends_with(n));
                    let same =
                        source.is_some_and(|(_, d)| std::fs::read(p).is_ok_and(|got| got == *d));
                    (name, same)
                })
                .collect()
        })
        .unwrap_or_default();
    let all_txt = !stored.is_empty() && stored.iter().all(|(n, _)| n.ends_with(".txt"));
    check(
        "stored files",
        stored.len() == 2 && all_txt && stored.iter().all(|(_, same)| *same),
        format!(
            "{} files, bytes equal to the web seed's: {}",
            stored.len(),
            stored.iter().all(|(_, s)| *s)
        ),
        &mut rows,
    );
    if out.is_json() {
        for r in &rows {
            out.event(serde_json::json!({"event": "demo_summary", "provider": "6pan", "step": r[0], "detail": r[1], "as_expected": r[2] == "yes"})
            );
        }
    } else {
        outln!();
        outln!("Summary (6pan)");
        outln!(
            "{}",
            table(&["step", "what happened", "as expected"], &rows)
        );
        outln!();
        outln!(
            "{} login(s), {} instant upload(s)",
            emu.sixpan_logins(),
            emu.instant_uploads()
        );
    }
    code
}
