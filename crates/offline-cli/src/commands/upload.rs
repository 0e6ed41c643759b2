//! `offline --provider 6pan upload FILE... [--path /dir] [--parallel N]`: any file into
//! the drive, with instant upload by etag and a block upload that keeps several blocks
//! in flight, reading each chunk from disk when it is sent.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use provider_6pan::{UploadPhase, UploadProgress, UploadTokenApi, DEFAULT_BLOCKS_IN_FLIGHT};
use serde_json::json;

use crate::client::{guarded, refused_6, report_6, Client, Conn};
use crate::exit;
use crate::output::Output;

#[derive(Args, Debug)]
pub(crate) struct UploadArgs {
    /// Files to upload.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The folder in the drive to put them in.
    #[arg(long, default_value = "/")]
    path: String,
    /// How many 4 MiB blocks to send at once (each block's chunks go in order).
    #[arg(long, default_value_t = DEFAULT_BLOCKS_IN_FLIGHT, value_parser = clap::value_parser!(usize))]
    parallel: usize,
    /// The size of one chunk request in KiB, 1 to 4096 (a dropped connection loses at
    /// most one chunk per block in flight).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=4096))]
    chunk_kib: u32,
    /// Threads hashing the file before it is sent (0: one per core).
    #[arg(long, default_value_t = 0)]
    hash_threads: usize,
    /// Which call asks for upload tokens: `v1` (`/v1/store/token`, as the seeds show)
    /// or `v2` (`/v2/upload/token`, as the v2 clients call it).
    #[arg(long, value_enum, default_value_t = TokenApi::V1)]
    upload_token_api: TokenApi,
}

/// `--upload-token-api`: [`UploadTokenApi`] by its version.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenApi {
    /// `/v1/store/token`.
    V1,
    /// `/v2/upload/token`.
    V2,
}

impl From<TokenApi> for UploadTokenApi {
    fn from(api: TokenApi) -> Self {
        match api {
            TokenApi::V1 => Self::StoreToken,
            TokenApi::V2 => Self::V2,
        }
    }
}

/// Runs `upload`.
pub(crate) async fn upload(conn: &Conn, args: &UploadArgs, out: &Output) -> u8 {
    if args.parallel == 0 {
        return out.fail(exit::USAGE, "--parallel must be at least 1", None);
    }
    let (pan, transport) = match Client::connect_with(conn, out, |b| {
        b.max_blocks_in_flight(args.parallel)
            .chunk_size(args.chunk_kib * 1024)
            .hash_threads(args.hash_threads)
            .upload_token_api(args.upload_token_api.into())
    })
    .await
    {
        Ok(Client::Pan6(p, t)) => (p, t),
        Ok(Client::Pan123(..)) => return exit::USAGE,
        Err(code) => return code,
    };
    let mut code = exit::OK;
    for file in &args.files {
        let shown = file.display().to_string();
        let (tx, rx) = tokio::sync::watch::channel(UploadProgress::default());
        let bar = (!out.is_json()).then(|| bar_for(&shown));
        let drawing = bar.clone().map(|bar| tokio::spawn(draw(bar, rx)));
        let started = Instant::now();
        let result = guarded(
            &transport,
            pan.upload_file_with_progress(file, &args.path, &tx),
            refused_6,
        )
        .await;
        drop(tx);
        if let Some(task) = drawing {
            let _ = task.await;
        }
        let took = started.elapsed();
        match result {
            Ok(report) => {
                let rate = rate_text(report.size, took);
                if out.is_json() {
                    out.event(json!({
                        "event": "uploaded", "provider": "6pan", "file": shown,
                        "path": args.path, "etag": report.etag.as_str(), "size": report.size,
                        "instant": report.instant, "seconds": took.as_secs_f64(),
                        "uuid": report.file.as_ref().map(|f| f.uuid.clone()),
                    }));
                } else {
                    let how = if report.instant {
                        "instant upload (the drive already had it)".to_owned()
                    } else {
                        format!("uploaded in {:.1} s, {rate}", took.as_secs_f64())
                    };
                    if let Some(bar) = &bar {
                        bar.finish_and_clear();
                    }
                    outln!("{}  {shown}  {} bytes, {how}", report.etag, report.size);
                }
            }
            Err(e) => {
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                code = code.max(report_6(out, &shown, &e));
            }
        }
    }
    code
}

fn bar_for(name: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:<20} {msg:<9} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let short: String = name
        .chars()
        .rev()
        .take(20)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    bar.set_prefix(short);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Follows the upload's progress channel until it closes.
async fn draw(bar: ProgressBar, mut rx: tokio::sync::watch::Receiver<UploadProgress>) {
    let mut phase = None;
    while rx.changed().await.is_ok() {
        let p = *rx.borrow_and_update();
        if phase != Some(p.phase) {
            phase = Some(p.phase);
            // A new phase starts its own count (and rate).
            bar.reset();
            bar.set_length(p.total);
            bar.set_message(match p.phase {
                UploadPhase::Hashing => "hashing",
                UploadPhase::Uploading => "uploading",
                _ => "done",
            });
        }
        if p.phase == UploadPhase::Uploading && p.total > 0 && p.bytes == p.total {
            // Every chunk is stored; the storage service assembles the file.
            bar.set_message("finishing");
        }
        bar.set_position(p.bytes);
    }
}

fn rate_text(bytes: u64, took: Duration) -> String {
    let secs = took.as_secs_f64().max(1e-9);
    // Display only: precision loss above 2^53 bytes does not matter.
    #[allow(clippy::cast_precision_loss)]
    let mib = bytes as f64 / (1024.0 * 1024.0) / secs;
    format!("{mib:.1} MiB/s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_in_mib_per_second() {
        assert_eq!(
            rate_text(10 * 1024 * 1024, Duration::from_secs(2)),
            "5.0 MiB/s"
        );
    }
}
