//! `cargo xtask bench`: every performance figure of the project beside its baseline,
//! in one go, with the ratio and the target; a table on stdout and in
//! `target/bench/report.md`. Long (a few minutes): not part of CI.
//!
//! What is compared, exactly:
//!
//! | figure | ours | baseline | ratio | target |
//! |---|---|---|---|---|
//! | qetag, all cores | `offline hash FILE` | `python3 -c 'qiniu.etag(FILE)'` (the vendor SDK, pinned, in a venv under `~/.cache`) | baseline time / ours | ≥ 1.8 |
//! | qetag, one thread | `offline hash --threads 1 FILE` | `openssl sha1 FILE` | baseline time / ours | ≥ 0.9 |
//! | hash memory | peak RSS of `offline hash FILE` | | | < 64 MiB |
//! | upload | `offline --provider 6pan upload FILE` to a release emulator (login, hash, `storeToken`, blocks, `mkfile`) | `curl --data-binary @FILE` to the emulator's `/wcs/_baseline` (the body hashed and written to disk as it arrives, as the form upload does, without the form and its size limit) | baseline time / ours | ≥ 0.7 |
//! | upload memory | peak RSS of the upload of a 4 GiB (sparse) file | | | < 64 MiB |
//! | submission | N creates at the emulator's limit | N / limit | ours / bound | ≤ 1.05, no 429 |
//! | tracking | time from a task's end to its report, with callbacks | the same by polling | | 1 progress call per task |
//! | JSON-RPC listing ([`crate::bench_rpc`]; alone: `--only rpc`) | `wrk` on `offline serve`'s `tellStopped` / `tellActive` with 10,000 results | the same on `aria2c --enable-rpc` holding as many | ours / baseline requests per second | ≥ 1.0 |
//!
//! FILE is 1 GiB of generated data in a temporary directory (1000 MiB for the upload:
//! curl will not read 1 GiB into memory for `--data-binary`), read once before timing
//! (in the page cache). Each timed pair runs [`RUNS`] times, ours and the baseline in
//! turn, and the fastest run of each is kept: on a shared machine, the other
//! processes only ever add time, and the fastest run is the one they disturbed least.
//! The load average before and after is printed with the table: a figure taken while
//! other processes kept the cores busy (the all-cores qetag needs both) is not a
//! figure of this code. The emulator's data directory is on
//! `/dev/shm` when there is one (so that the disk does not decide the upload figure),
//! fresh for every run.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

/// How many times each timed command runs.
const RUNS: usize = 5;
/// The size of the file hashed.
const FILE_SIZE: u64 = 1 << 30;
/// The size of the file uploaded: 1000 MiB, as curl refuses to read a file of 1 GiB
/// into memory for `--data-binary @FILE` ("out of memory").
const UPLOAD_SIZE: u64 = 1000 << 20;
/// The size of the (sparse) file whose upload's memory is measured.
const BIG_FILE_SIZE: u64 = 4 << 30;
/// The vendor SDK's version, pinned.
const QINIU_VERSION: &str = "7.18.0";
/// Submission: how many creates, at what limit (per second).
const SUBMIT_N: u64 = 200;
const SUBMIT_LIMIT: u64 = 20;
/// Tracking: how many tasks.
const TRACK_TASKS: u64 = 20;
/// The emulator's 6pan account.
const ACCOUNT: &str = "demo@offline.local";
const PASSWORD: &str = "offline-demo-password";

/// One line of the table.
pub(crate) struct Row {
    pub(crate) figure: &'static str,
    pub(crate) ours: String,
    pub(crate) baseline: String,
    pub(crate) ratio: String,
    pub(crate) target: &'static str,
    pub(crate) pass: bool,
}

/// Which figures to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Only {
    /// Every figure.
    All,
    /// Only the RPC throughput figures ([`crate::bench_rpc`]).
    Rpc,
}

/// `cargo xtask bench` (`--only rpc`: the RPC figures alone).
pub(crate) fn run(root: &Path, only: Only) -> Result<()> {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let target = if target.is_absolute() {
        target
    } else {
        root.join(target)
    };
    say("building release binaries");
    cargo(root, &["build", "--release", "--quiet", "--bin", "offline"])?;
    let offline = target.join("release/offline");
    let scratch = tempdir("offline-bench")?;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let load_before = load_average();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if only == Only::All {
        rows = files_and_calls(root, &target, &offline, &scratch)?;
        notes.push(format!(
            "Times are the fastest of {RUNS} runs, the baseline's in turn with ours."
        ));
    }
    let rpc = crate::bench_rpc::run(&offline, &scratch.path)?;
    rows.extend(rpc.rows);
    notes.push(rpc.note);
    drop(scratch);

    let command = match only {
        Only::All => "cargo xtask bench",
        Only::Rpc => "cargo xtask bench --only rpc",
    };
    let report = render(&rows, command, cores, &load_before, &load_average(), &notes);
    println!("\n{report}");
    let out_dir = target.join("bench");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let out = out_dir.join(match only {
        Only::All => "report.md",
        Only::Rpc => "report-rpc.md",
    });
    std::fs::write(&out, &report).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("written to {}", out.display());
    let failed = rows.iter().filter(|r| !r.pass).count();
    if failed > 0 {
        return Err(format!("{failed} figure(s) missed their target"));
    }
    Ok(())
}

/// The figures of hashing, upload, submission and tracking.
fn files_and_calls(
    root: &Path,
    target: &Path,
    offline: &Path,
    scratch: &TempDir,
) -> Result<Vec<Row>> {
    cargo(
        root,
        &[
            "build",
            "--release",
            "--quiet",
            "--package",
            "provider-123pan",
            "--example",
            "bulk_bench",
        ],
    )?;
    let bulk = target.join("release/examples/bulk_bench");
    let time = PathBuf::from("/usr/bin/time");
    if !time.exists() {
        return Err(
            "/usr/bin/time is needed for peak memory (Debian: apt-get install time)".into(),
        );
    }
    for tool in ["openssl", "curl", "python3"] {
        if which(tool).is_none() {
            return Err(format!(
                "{tool} is needed for a baseline and is not on PATH"
            ));
        }
    }
    let python = qiniu_venv()?;

    let file = scratch.path.join("data-1g.bin");
    say(&format!(
        "writing {} ({} MiB)",
        file.display(),
        FILE_SIZE >> 20
    ));
    generate(&file, FILE_SIZE)?;
    warm(&file)?;
    let upload_file = scratch.path.join("data-1000m.bin");
    copy_prefix(&file, &upload_file, UPLOAD_SIZE)?;
    warm(&upload_file)?;
    let upload_arg = upload_file.to_string_lossy().into_owned();

    let mut rows = Vec::new();

    // qetag, all cores, against the vendor SDK.
    say("qetag: offline hash vs the Python SDK");
    let file_arg = file.to_string_lossy().into_owned();
    let python_etag = [
        "-c",
        "import sys, qiniu; print(qiniu.etag(sys.argv[1]))",
        &file_arg,
    ];
    let (ours_etag, _) = output(Command::new(offline).args(["hash", &file_arg]))?;
    let (sdk_etag, _) = output(Command::new(&python).args(python_etag))?;
    let ours_etag = ours_etag
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    if ours_etag != sdk_etag.trim() {
        return Err(format!(
            "the etags differ: offline hash {ours_etag}, qiniu.etag {}",
            sdk_etag.trim()
        ));
    }
    let (ours, sdk) = pair(
        || timed(Command::new(offline).args(["hash", &file_arg])),
        || timed(Command::new(&python).args(python_etag)),
    )?;
    rows.push(speed_row(
        "qetag of 1 GiB, all cores (`offline hash`) vs `qiniu.etag` (Python SDK, whole process)",
        FILE_SIZE,
        ours,
        sdk,
        1.8,
        "≥ 1.8",
    ));

    say("qetag: one thread vs openssl sha1");
    let (ours, openssl) = pair(
        || timed(Command::new(offline).args(["hash", "--threads", "1", &file_arg])),
        || timed(Command::new("openssl").args(["sha1", &file_arg])),
    )?;
    rows.push(speed_row(
        "qetag of 1 GiB, one thread (`offline hash --threads 1`) vs `openssl sha1`",
        FILE_SIZE,
        ours,
        openssl,
        0.9,
        "≥ 0.9",
    ));

    say("qetag: peak memory");
    let rss = peak_rss(&time, Command::new(offline).args(["hash", &file_arg]))?;
    rows.push(memory_row("peak RSS of `offline hash` on 1 GiB", rss));

    // Upload to the emulator against curl.
    say("upload: offline upload vs curl --data-binary");
    let shm = Path::new("/dev/shm");
    let data_root = if shm.is_dir() {
        shm
    } else {
        scratch.path.as_path()
    };
    let mut ours_runs = Vec::new();
    let mut curl_runs = Vec::new();
    for _ in 0..RUNS {
        let emu = Emulator::start(offline, data_root)?;
        ours_runs.push(timed(&mut upload_command(
            offline,
            &emu.base_url,
            &upload_arg,
        ))?);
        drop(emu);
        let emu = Emulator::start(offline, data_root)?;
        let url = format!("{}/wcs/_baseline", emu.base_url);
        let started = Instant::now();
        let (answer, _) = output(Command::new("curl").args([
            "-sS",
            "--fail",
            "-H",
            "Content-Type: application/octet-stream",
            "-H",
            "Expect:",
            "--data-binary",
            &format!("@{upload_arg}"),
            &url,
        ]))?;
        curl_runs.push(started.elapsed());
        if !answer.contains(&format!("{UPLOAD_SIZE}")) {
            return Err(format!("the baseline endpoint answered {answer}"));
        }
        drop(emu);
    }
    let ours = fastest(&ours_runs);
    let curl = fastest(&curl_runs);
    rows.push(speed_row(
        "upload of 1000 MiB to the emulator (`offline upload`: hash, login, 3 blocks in flight, mkfile) vs `curl --data-binary @FILE` to `/wcs/_baseline`",
        UPLOAD_SIZE,
        ours,
        curl,
        0.7,
        "≥ 0.7",
    ));

    say("upload: peak memory with a 4 GiB file");
    let big = scratch.path.join("sparse-4g.bin");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(BIG_FILE_SIZE))
        .map_err(|e| format!("{}: {e}", big.display()))?;
    let emu = Emulator::start(offline, scratch.path.as_path())?;
    let rss = peak_rss(
        &time,
        &mut upload_command(offline, &emu.base_url, &big.to_string_lossy()),
    )?;
    drop(emu);
    rows.push(memory_row(
        "peak RSS of `offline upload` of a 4 GiB file",
        rss,
    ));

    // Submission and tracking, in process.
    say("submission and tracking (about a minute)");
    let (lines, _) = output(Command::new(&bulk).args([
        SUBMIT_N.to_string(),
        SUBMIT_LIMIT.to_string(),
        TRACK_TASKS.to_string(),
    ]))?;
    let figures: Vec<serde_json::Value> = lines
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let find = |figure: &str, mode: Option<&str>| {
        figures
            .iter()
            .find(|v| v["figure"] == figure && mode.is_none_or(|m| v["mode"] == m))
            .cloned()
            .ok_or_else(|| format!("bulk_bench printed no {figure} figure:\n{lines}"))
    };
    let submit = find("submission", None)?;
    let seconds = submit["seconds"].as_f64().unwrap_or(f64::NAN);
    let bound = submit["bound_seconds"].as_f64().unwrap_or(f64::NAN);
    let limited = submit["rate_limited"].as_u64().unwrap_or(u64::MAX);
    let ratio = seconds / bound;
    rows.push(Row {
        figure: "submitting 200 URLs at the emulator's limit of 20/s vs N / limit",
        ours: format!("{seconds:.2} s, {limited} answers 429"),
        baseline: format!("{bound:.2} s"),
        ratio: format!("{ratio:.3}"),
        target: "≤ 1.05, no 429",
        pass: ratio <= 1.05 && limited == 0,
    });
    let hinted = find("tracking", Some("callbacks"))?;
    let polled = find("tracking", Some("polling"))?;
    let ms = |v: &serde_json::Value, key: &str| v[key].as_f64().unwrap_or(f64::NAN) * 1000.0;
    let per_task = hinted["progress_calls_per_task"]
        .as_f64()
        .unwrap_or(f64::NAN);
    rows.push(Row {
        figure: "tracking 20 tasks: task end → reported, with callbacks vs polling (mean / max)",
        ours: format!(
            "{:.1} / {:.1} ms, {per_task:.2} progress calls per task",
            ms(&hinted, "mean_latency_seconds"),
            ms(&hinted, "max_latency_seconds")
        ),
        baseline: format!(
            "{:.0} / {:.0} ms, {:.2} calls per task",
            ms(&polled, "mean_latency_seconds"),
            ms(&polled, "max_latency_seconds"),
            polled["progress_calls_per_task"]
                .as_f64()
                .unwrap_or(f64::NAN)
        ),
        ratio: "".to_owned(),
        target: "1 call per task, no 429",
        pass: (per_task - 1.0).abs() < 1e-9
            && hinted["rate_limited"].as_u64() == Some(0)
            && polled["rate_limited"].as_u64() == Some(0),
    });

    Ok(rows)
}

pub(crate) fn say(what: &str) {
    eprintln!("== {what}");
}

fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed", args.join(" ")))
    }
}

pub(crate) fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

/// The venv's python with the vendor SDK, made on first use.
fn qiniu_venv() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
    let venv = PathBuf::from(home).join(format!(".cache/offline-bench-qiniu-{QINIU_VERSION}"));
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import qiniu"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready(&python) {
        return Ok(python);
    }
    say(&format!(
        "installing the vendor SDK (qiniu=={QINIU_VERSION}) into {}",
        venv.display()
    ));
    let _ = std::fs::remove_dir_all(&venv);
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    let installed = made
        && Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &format!("qiniu=={QINIU_VERSION}"),
            ])
            .status()
            .is_ok_and(|s| s.success());
    if installed && ready(&python) {
        Ok(python)
    } else {
        Err(format!(
            "cannot install the vendor's Python SDK (qiniu=={QINIU_VERSION}) into {}: the qetag baseline needs it",
            venv.display()
        ))
    }
}

/// A directory removed when dropped.
pub(crate) struct TempDir {
    pub(crate) path: PathBuf,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn tempdir(prefix: &str) -> Result<TempDir> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos:x}", std::process::id()));
    std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(TempDir { path })
}

/// `size` bytes of xorshift data (not compressible, the same every run).
fn generate(path: &Path, size: u64) -> Result<()> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut out =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).map_err(err)?);
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        out.write_all(&buf[..n]).map_err(err)?;
        left -= n as u64;
    }
    out.flush().map_err(err)
}

/// Writes the first `len` bytes of `from` to `to`.
fn copy_prefix(from: &Path, to: &Path, len: u64) -> Result<()> {
    let err = |e: std::io::Error| format!("{} → {}: {e}", from.display(), to.display());
    let input = std::fs::File::open(from).map_err(err)?;
    let mut output = std::fs::File::create(to).map_err(err)?;
    std::io::copy(&mut std::io::Read::take(input, len), &mut output).map_err(err)?;
    Ok(())
}

/// Reads the file once so that it is in the page cache.
fn warm(path: &Path) -> Result<()> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::io::copy(&mut file, &mut std::io::sink())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// The first line a command prints (a tool's version), or `?`.
pub(crate) fn first_line(command: &mut Command) -> String {
    command
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines().next().map(|l| l.trim().to_owned())
        })
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "?".to_owned())
}

/// Runs a command to its end; its stdout and stderr.
fn output(command: &mut Command) -> Result<(String, String)> {
    let out = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!(
            "{command:?} failed ({}):\n{stdout}{stderr}",
            out.status
        ));
    }
    Ok((stdout, stderr))
}

/// How long a command takes, its output discarded.
fn timed(command: &mut Command) -> Result<Duration> {
    let started = Instant::now();
    output(command)?;
    Ok(started.elapsed())
}

/// Runs ours and the baseline in turn, [`RUNS`] times; the median of each.
fn pair(
    mut ours: impl FnMut() -> Result<Duration>,
    mut baseline: impl FnMut() -> Result<Duration>,
) -> Result<(Duration, Duration)> {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for _ in 0..RUNS {
        a.push(ours()?);
        b.push(baseline()?);
    }
    Ok((fastest(&a), fastest(&b)))
}

fn fastest(runs: &[Duration]) -> Duration {
    runs.iter().min().copied().unwrap_or_default()
}

/// The 1-minute load average, from `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The peak resident memory of a command, in bytes, by `/usr/bin/time`.
fn peak_rss(time: &Path, command: &mut Command) -> Result<u64> {
    let mut wrapped = Command::new(time);
    wrapped
        .args(["-f", "%M"])
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    let (_, stderr) = output(&mut wrapped)?;
    let kib: u64 = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().parse().ok())
        .ok_or_else(|| format!("no peak RSS in {stderr:?}"))?;
    Ok(kib * 1024)
}

fn upload_command(offline: &Path, base_url: &str, file: &str) -> Command {
    let mut command = Command::new(offline);
    command
        .env("OFFLINE_6PAN_ACCOUNT", ACCOUNT)
        .env("OFFLINE_6PAN_PASSWORD", PASSWORD)
        .args([
            "--provider",
            "6pan",
            "--base-url",
            base_url,
            "--json",
            "upload",
            file,
            "--path",
            "/bench",
        ]);
    command
}

fn speed_row(
    figure: &'static str,
    size: u64,
    ours: Duration,
    baseline: Duration,
    want: f64,
    target: &'static str,
) -> Row {
    let gbps = |d: Duration| size as f64 / d.as_secs_f64() / 1e9;
    let ratio = baseline.as_secs_f64() / ours.as_secs_f64();
    Row {
        figure,
        ours: format!("{:.3} s ({:.2} GB/s)", ours.as_secs_f64(), gbps(ours)),
        baseline: format!(
            "{:.3} s ({:.2} GB/s)",
            baseline.as_secs_f64(),
            gbps(baseline)
        ),
        ratio: format!("{ratio:.2}"),
        target,
        pass: ratio >= want,
    }
}

fn memory_row(figure: &'static str, bytes: u64) -> Row {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    Row {
        figure,
        ours: format!("{mib:.1} MiB"),
        baseline: String::new(),
        ratio: String::new(),
        target: "< 64 MiB",
        pass: bytes < 64 << 20,
    }
}

fn render(
    rows: &[Row],
    command: &str,
    cores: usize,
    load_before: &str,
    load_after: &str,
    notes: &[String],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Measured by `{command}` on {cores} cores (load average {load_before} before, {load_after} after). {}\n",
        notes.join(" ")
    );
    let _ = writeln!(out, "| figure | ours | baseline | ratio | target | |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.figure,
            r.ours,
            r.baseline,
            r.ratio,
            r.target,
            if r.pass { "pass" } else { "**FAIL**" }
        );
    }
    out
}

/// An `offline emulator` process with a fresh data directory, stopped and cleaned up
/// when dropped.
struct Emulator {
    child: Child,
    base_url: String,
    /// Removed when the emulator is dropped (after it was stopped).
    _data: TempDir,
}

impl Emulator {
    fn start(offline: &Path, under: &Path) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let data = TempDir {
            path: under.join(format!(
                "offline-bench-emu-{}-{nanos:x}",
                std::process::id()
            )),
        };
        let mut child = Command::new(offline)
            .args(["emulator", "--json", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(&data.path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the emulator: {e}"))?;
        let stdout = child.stdout.take().ok_or("no emulator output")?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .map_err(|e| format!("cannot read the emulator's output: {e}"))?;
        let value: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| format!("the emulator printed {line:?}: {e}"))?;
        let base_url = value["base_url"]
            .as_str()
            .ok_or_else(|| format!("the emulator printed no base URL: {line}"))?
            .to_owned();
        Ok(Self {
            child,
            base_url,
            _data: data,
        })
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
