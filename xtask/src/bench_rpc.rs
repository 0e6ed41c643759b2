//! `cargo xtask bench --only rpc` (and part of `cargo xtask bench`): the throughput and
//! latency of `offline serve`'s aria2 JSON-RPC listing methods with [`RESULTS`]
//! download results in its store, beside a real `aria2c --enable-rpc` holding the
//! same number of comparable results, under the same load from `wrk`.
//!
//! The setup, all on 127.0.0.1 and all stopped at the end (also on error):
//!
//! - a source server (`source.py`, Python's `http.server`): [`RESULTS`] links, one in
//!   ten a 404 (an error result) and the rest a [`SMALL`]-byte file (a complete
//!   one), and [`ACTIVE`] links to a file that trickles 1 KiB a second (active
//!   downloads for `tellActive`);
//! - ours: `offline emulator --no-rate-limits --loopback-only` and `offline serve` in
//!   front of it (client-side limits raised with `--rate-limit` so that the
//!   [`RESULTS`] submissions and their progress calls take about a minute, not hours).
//!   The links are added over the daemon's own RPC (`system.multicall` of
//!   `aria2.addUri`), submitted, fetched by the emulator and tracked to their end: the
//!   store holds real results, as a user's would. Before the slow links are added,
//!   the emulator's answers are delayed by 200 ms (`PUT /_emulator/faults`), so that
//!   while the load runs the daemon's tracking asks about 5 progress calls a second,
//!   as it does against the real service at its default limit, not hundreds;
//! - the baseline: `aria2c --enable-rpc` fed the same links the same way, which
//!   downloads them itself (`--max-download-result` raised to hold them all).
//!
//! Then, for each figure, `wrk` posts one fixed JSON-RPC body for [`DURATION`] over
//! [`CONNECTIONS`] connections, at ours and at aria2c in turn, [`ROUNDS`] times; the
//! best round of each is kept (other processes only ever take throughput away). Every
//! body is first sent once to both and the answers checked: the same number of
//! entries, with exactly the keys asked for.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::bench::{say, which, Row};
use crate::Result;

/// Download results in each store.
const RESULTS: usize = 10_000;
/// Active (slow) downloads in each.
const ACTIVE: usize = 8;
/// Bytes of each small source file.
const SMALL: usize = 1024;
/// Links added per `system.multicall`.
const BATCH: usize = 500;
/// The load: `wrk` connections, threads, seconds per figure, rounds.
const CONNECTIONS: u32 = 16;
const THREADS: u32 = 1;
const DURATION: Duration = Duration::from_secs(10);
const ROUNDS: usize = 3;
/// The daemon's client-side limits while it fills (creates, progress calls a second).
const CREATE_RATE: u32 = 200;
const PROGRESS_RATE: u32 = 400;
/// The emulator's delay while the load runs (the tracking's pace: one call per delay).
const TRACKING_DELAY: Duration = Duration::from_millis(200);
/// How long filling either store may take.
const FILL_DEADLINE: Duration = Duration::from_secs(900);
/// The source server's own bound, in seconds.
const SOURCE_LIFETIME: u32 = 3600;
/// The keys every listing asks for.
const KEYS: [&str; 4] = ["gid", "status", "totalLength", "completedLength"];

/// One figure: a method and its parameters (after the keys are added), how many
/// entries both answers must hold.
struct Figure {
    name: &'static str,
    /// The call as the progress lines show it.
    label: &'static str,
    method: &'static str,
    params: Value,
    entries: usize,
}

fn figures() -> Vec<Figure> {
    vec![
        Figure {
            name: "`aria2.tellStopped(0, 1000, keys)` with 10,000 results (requests/s; p50 / p99 latency)",
            label: "tellStopped(0, 1000)",
            method: "aria2.tellStopped",
            params: json!([0, 1000, KEYS]),
            entries: 1000,
        },
        Figure {
            name: "`aria2.tellStopped(0, 10, keys)` with 10,000 results",
            label: "tellStopped(0, 10)",
            method: "aria2.tellStopped",
            params: json!([0, 10, KEYS]),
            entries: 10,
        },
        Figure {
            name: "`aria2.tellActive(keys)`, 8 active beside 10,000 results",
            label: "tellActive",
            method: "aria2.tellActive",
            params: json!([KEYS]),
            entries: ACTIVE,
        },
    ]
}

/// A child process killed (and waited for) when dropped.
struct Proc {
    name: &'static str,
    child: Child,
    /// Held open: the source server exits when it closes.
    _stdin: Option<ChildStdin>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Fails when the process has already exited (with its log).
    fn alive(&mut self, log: &Path) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}):\n{}",
                self.name,
                std::fs::read_to_string(log).unwrap_or_default()
            )),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }
}

/// Spawns `command` with stdout piped and stderr to `log`; the process and its first
/// stdout line. The rest of stdout is read and dropped by a thread (a full pipe
/// would stop the process).
fn spawn(name: &'static str, command: &mut Command, log: &Path) -> Result<(Proc, String)> {
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start {name} ({:?}): {e}", command.get_program()))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let mut proc = Proc {
        name,
        child,
        _stdin: stdin,
    };
    let mut reader = BufReader::new(stdout.ok_or("no stdout")?);
    let mut line = String::new();
    let read = reader.read_line(&mut line);
    if read.is_err() || line.trim().is_empty() {
        proc.alive(log)?;
        return Err(format!("{name} printed nothing"));
    }
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    Ok((proc, line))
}

/// A free port on 127.0.0.1 (for aria2c, which cannot be told to pick one).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`); the status and
/// body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err(std::io::Error::other("chunked answers are not read here"));
    }
    Ok((status, answer[split + 4..].to_vec()))
}

/// A JSON-RPC server: ours or aria2c.
struct Rpc {
    name: &'static str,
    addr: SocketAddr,
}

impl Rpc {
    fn url(&self) -> String {
        format!("http://{}/jsonrpc", self.addr)
    }

    /// One call; its `result`, or the error.
    fn call(&self, method: &str, params: Value) -> Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": "bench", "method": method, "params": params});
        let answer = self.post(&body)?;
        if let Some(error) = answer.get("error") {
            return Err(format!("{}: {method}: {error}", self.name));
        }
        Ok(answer["result"].clone())
    }

    fn post(&self, body: &Value) -> Result<Value> {
        let (status, bytes) = http(
            self.addr,
            "POST",
            "/jsonrpc",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .map_err(|e| format!("{}: {e}", self.name))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{} answered HTTP {status} with no JSON ({e}): {}",
                self.name,
                String::from_utf8_lossy(&bytes)
            )
        })?;
        Ok(value)
    }

    /// Adds `uris`, one download each, in `system.multicall` batches.
    fn add_all(&self, uris: &[String]) -> Result<()> {
        for chunk in uris.chunks(BATCH) {
            let calls: Vec<Value> = chunk
                .iter()
                .map(|u| json!({"methodName": "aria2.addUri", "params": [[u]]}))
                .collect();
            let results = self.call("system.multicall", json!([calls]))?;
            let ok = results
                .as_array()
                .is_some_and(|r| r.len() == chunk.len() && r.iter().all(Value::is_array));
            if !ok {
                return Err(format!("{}: an addUri was refused: {results}", self.name));
            }
        }
        Ok(())
    }

    /// `getGlobalStat`'s numActive, numWaiting, numStopped.
    fn counts(&self) -> Result<(usize, usize, usize)> {
        let stat = self.call("aria2.getGlobalStat", json!([]))?;
        let n = |k: &str| {
            stat[k]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("{}: getGlobalStat has no {k}: {stat}", self.name))
        };
        Ok((n("numActive")?, n("numWaiting")?, n("numStopped")?))
    }

    /// The statuses of all stopped results, counted: (complete, error, other).
    fn tally(&self) -> Result<(usize, usize, usize)> {
        let all = self.call("aria2.tellStopped", json!([0, RESULTS + 1, ["status"]]))?;
        let mut t = (0, 0, 0);
        for entry in all.as_array().into_iter().flatten() {
            match entry["status"].as_str() {
                Some("complete") => t.0 += 1,
                Some("error") => t.1 += 1,
                _ => t.2 += 1,
            }
        }
        Ok(t)
    }
}

/// Waits until `done(counts)`, checking the processes are alive; prints progress.
fn wait_for(
    servers: &mut [(&Rpc, &mut Proc, &Path)],
    what: &str,
    deadline: Duration,
    done: impl Fn(&Rpc, (usize, usize, usize)) -> bool,
) -> Result<()> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let mut all = true;
        let mut line = Vec::new();
        for (rpc, proc, log) in servers.iter_mut() {
            proc.alive(log)?;
            let counts = rpc.counts()?;
            all &= done(rpc, counts);
            line.push(format!(
                "{}: {} active, {} waiting, {} stopped",
                rpc.name, counts.0, counts.1, counts.2
            ));
        }
        if all {
            say(&format!(
                "{what}: done in {:.1} s ({})",
                started.elapsed().as_secs_f64(),
                line.join("; ")
            ));
            return Ok(());
        }
        if started.elapsed() > deadline {
            return Err(format!(
                "{what}: not done after {} s: {}",
                deadline.as_secs(),
                line.join("; ")
            ));
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            say(&format!("{what}: {}", line.join("; ")));
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What one `wrk` run measured.
#[derive(Debug, Clone, Copy)]
struct Load {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    /// Connect, read, write errors and timeouts (wrk's "Socket errors").
    socket_errors: u64,
}

/// `12ms`, `850.00us`, `1.20s`, `2.00m` as a duration.
fn wrk_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        return None;
    };
    let value: f64 = number.parse().ok()?;
    Some(Duration::from_secs_f64(value * scale))
}

/// Reads `wrk --latency`'s report.
fn parse_wrk(out: &str) -> Result<Load> {
    let mut per_second = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut socket_errors = 0;
    for line in out.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            per_second = rest.trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix("50%") {
            p50 = wrk_duration(rest);
        } else if let Some(rest) = line.strip_prefix("99%") {
            p99 = wrk_duration(rest);
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 2"
            socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        } else if line.starts_with("Non-2xx") {
            return Err(format!("wrk saw error answers:\n{out}"));
        }
    }
    match (per_second, p50, p99) {
        (Some(per_second), Some(p50), Some(p99)) => Ok(Load {
            per_second,
            p50,
            p99,
            socket_errors,
        }),
        _ => Err(format!("cannot read wrk's report:\n{out}")),
    }
}

/// The Lua script that makes `wrk` post `body`.
fn wrk_script(dir: &Path, n: usize, body: &str) -> Result<PathBuf> {
    wrk_request(dir, &n.to_string(), "POST", &[], body)
}

/// The Lua script that makes `wrk` send `method` with `headers` (besides
/// `Content-Type: application/json`) and `body`.
fn wrk_request(
    dir: &Path,
    name: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<PathBuf> {
    if body.contains("]==]")
        || headers
            .iter()
            .any(|(k, v)| k.contains('"') || v.contains('"'))
    {
        return Err("the request cannot be quoted for Lua".into());
    }
    let path = dir.join(format!("figure-{name}.lua"));
    let mut script = format!(
        "wrk.method = \"{method}\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = [==[{body}]==]\n"
    );
    for (k, v) in headers {
        script.push_str(&format!("wrk.headers[\"{k}\"] = \"{v}\"\n"));
    }
    std::fs::write(&path, script).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn load(wrk: &Path, script: &Path, url: &str) -> Result<Load> {
    let out = Command::new(wrk)
        .args([
            "--threads",
            &THREADS.to_string(),
            "--connections",
            &CONNECTIONS.to_string(),
            "--duration",
            &format!("{}s", DURATION.as_secs()),
            "--timeout",
            "10s",
            "--latency",
            "--script",
        ])
        .arg(script)
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "wrk failed ({}):\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse_wrk(&text)
}

/// Checks that both answer `figure` with `figure.entries` entries of exactly the keys.
fn check_answers(figure: &Figure, servers: [&Rpc; 2]) -> Result<()> {
    for rpc in servers {
        let result = rpc.call(figure.method, figure.params.clone())?;
        let entries = result
            .as_array()
            .ok_or_else(|| format!("{}: {} answered no list: {result}", rpc.name, figure.method))?;
        if entries.len() != figure.entries {
            return Err(format!(
                "{}: {} {} answered {} entries, not {}",
                rpc.name,
                figure.method,
                figure.params,
                entries.len(),
                figure.entries
            ));
        }
        for entry in entries {
            let mut keys: Vec<&str> = entry
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            keys.sort_unstable();
            let mut want = KEYS.to_vec();
            want.sort_unstable();
            if keys != want {
                return Err(format!(
                    "{}: {} answered an entry with keys {keys:?}, not {want:?}",
                    rpc.name, figure.method
                ));
            }
        }
    }
    Ok(())
}

/// `10000` as `10,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn show(l: &Load) -> String {
    let errors = if l.socket_errors > 0 {
        format!(" ({} socket errors)", l.socket_errors)
    } else {
        String::new()
    };
    format!(
        "{:.0} req/s; {} / {}{errors}",
        l.per_second,
        ms(l.p50),
        ms(l.p99)
    )
}

/// The torrent-client interfaces' listing over the same store ([`RESULTS`] results
/// and [`ACTIVE`] active downloads): qBittorrent's `torrents/info` and Transmission's
/// `torrent-get` with the fields Sonarr asks for, under the same `wrk` load, best of
/// [`ROUNDS`]. No baseline: neither client can be made to hold 10,000 comparable
/// downloads here (they would fetch them from peers), so the figures are reported
/// as they are.
fn torrent_clients(wrk: &Path, dir: &Path, ours: &Rpc) -> Result<Vec<Row>> {
    let base = format!("http://{}", ours.addr);
    let (status, listed) = http(ours.addr, "GET", "/api/v2/torrents/info", &[], b"")
        .map_err(|e| format!("torrents/info: {e}"))?;
    let listed: Value = serde_json::from_slice(&listed)
        .map_err(|e| format!("torrents/info answered HTTP {status} with no JSON: {e}"))?;
    let count = listed.as_array().map_or(0, Vec::len);
    if count != RESULTS + ACTIVE {
        return Err(format!(
            "torrents/info listed {count} torrents, not {}",
            RESULTS + ACTIVE
        ));
    }
    // Transmission's session ID, from its 409 answer.
    let mut stream = TcpStream::connect_timeout(&ours.addr, Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST /transmission/rpc HTTP/1.1\r\nHost: {}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        ours.addr
    );
    stream
        .write_all(head.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let session = answer
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-transmission-session-id")
                .then(|| v.trim().to_owned())
        })
        .ok_or_else(|| format!("no Transmission session ID in: {answer}"))?;
    let sonarr_fields = [
        "id",
        "hashString",
        "name",
        "downloadDir",
        "totalSize",
        "leftUntilDone",
        "isFinished",
        "eta",
        "status",
        "secondsDownloading",
        "secondsSeeding",
        "errorString",
        "uploadedEver",
        "downloadedEver",
        "seedRatioLimit",
        "seedRatioMode",
        "seedIdleLimit",
        "seedIdleMode",
        "fileCount",
        "labels",
    ];
    let body = json!({"method": "torrent-get", "arguments": {"fields": sonarr_fields}});
    let (status, got) = http(
        ours.addr,
        "POST",
        "/transmission/rpc",
        &[("X-Transmission-Session-Id", &session)],
        body.to_string().as_bytes(),
    )
    .map_err(|e| format!("torrent-get: {e}"))?;
    let got: Value = serde_json::from_slice(&got)
        .map_err(|e| format!("torrent-get answered HTTP {status} with no JSON: {e}"))?;
    let got = got["arguments"]["torrents"].as_array().map_or(0, Vec::len);
    if got != RESULTS + ACTIVE {
        return Err(format!(
            "torrent-get listed {got} torrents, not {}",
            RESULTS + ACTIVE
        ));
    }
    let scripts = [
        (
            "qBittorrent `GET /api/v2/torrents/info` (all 10,008 tasks) (requests/s; p50 / p99 latency)",
            "torrents/info",
            wrk_request(dir, "qbittorrent", "GET", &[], "")?,
            format!("{base}/api/v2/torrents/info"),
        ),
        (
            "qBittorrent `torrents/info?filter=downloading` (the 8 active) (requests/s; p50 / p99 latency)",
            "torrents/info?filter=downloading",
            wrk_request(dir, "qbittorrent-active", "GET", &[], "")?,
            format!("{base}/api/v2/torrents/info?filter=downloading"),
        ),
        (
            "Transmission `torrent-get` of all 10,008 with Sonarr's 20 fields (requests/s; p50 / p99 latency)",
            "torrent-get",
            wrk_request(
                dir,
                "transmission",
                "POST",
                &[("X-Transmission-Session-Id", &session)],
                &body.to_string(),
            )?,
            format!("{base}/transmission/rpc"),
        ),
    ];
    let mut rows = Vec::new();
    for (figure, label, script, url) in scripts {
        let mut best: Option<Load> = None;
        for round in 1..=ROUNDS {
            say(&format!(
                "rpc: round {round}/{ROUNDS}: {label} ({}s, ours only)",
                DURATION.as_secs()
            ));
            let measured = load(wrk, &script, &url)?;
            eprintln!("   offline serve: {}", show(&measured));
            if best.is_none_or(|b| measured.per_second > b.per_second) {
                best = Some(measured);
            }
        }
        let best = best.ok_or("a figure was not measured")?;
        rows.push(Row {
            figure,
            ours: show(&best),
            baseline: "none (no qBittorrent/Transmission holding 10,000 downloads here)".into(),
            ratio: "—".into(),
            target: "reported",
            pass: true,
        });
    }
    Ok(rows)
}

/// What the RPC benchmark found: its rows and a note on its setup for the report.
pub(crate) struct Outcome {
    pub(crate) rows: Vec<Row>,
    pub(crate) note: String,
}

/// Runs the RPC figures with the release `offline` binary; `scratch` is removed by
/// the caller.
pub(crate) fn run(offline: &Path, scratch: &Path) -> Result<Outcome> {
    let missing = |tool: &str| {
        format!(
            "{tool} is needed for the RPC benchmark and is not on PATH (Debian: apt-get install aria2 wrk)"
        )
    };
    let aria2c = which("aria2c").ok_or_else(|| missing("aria2c"))?;
    let wrk = which("wrk").ok_or_else(|| missing("wrk"))?;
    let python = which("python3").ok_or_else(|| missing("python3"))?;
    let aria2_version = crate::bench::first_line(Command::new(&aria2c).arg("--version"));
    let wrk_version = crate::bench::first_line(Command::new(&wrk).arg("--version"));
    // "wrk 4.1.0 [epoll] Copyright (C) 2012 Will Glozer": the name and version.
    let wrk_version = wrk_version.split(" [").next().unwrap_or("wrk").to_owned();

    let dir = scratch.join("rpc");
    let fast = Path::new("/dev/shm");
    // The stores and downloads on tmpfs when there is one: the disk's fsync is not
    // what is measured (both stores hold their results in memory while serving).
    let data = if fast.is_dir() {
        fast.join(format!("offline-bench-rpc-{}", std::process::id()))
    } else {
        dir.join("data")
    };
    let _data_guard = crate::bench::TempDir { path: data.clone() };
    for d in [&dir, &data.join("emulator"), &data.join("aria2c")] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }

    // The sources.
    let script = dir.join("source.py");
    std::fs::write(&script, include_str!("source.py"))
        .map_err(|e| format!("{}: {e}", script.display()))?;
    let source_log = dir.join("source.log");
    let (_source, port) = spawn(
        "the source server",
        Command::new(&python)
            .arg(&script)
            .arg(SMALL.to_string())
            .arg(SOURCE_LIFETIME.to_string()),
        &source_log,
    )?;
    let source = format!("http://127.0.0.1:{}", port.trim());
    let uris: Vec<String> = (0..RESULTS)
        .map(|i| {
            if i % 10 == 9 {
                format!("{source}/missing/{i}")
            } else {
                format!("{source}/f/{i}")
            }
        })
        .collect();
    let slow: Vec<String> = (0..ACTIVE).map(|i| format!("{source}/slow/{i}")).collect();

    // Ours: the emulator and the daemon.
    let emu_log = dir.join("emulator.log");
    let admin = format!("bench-{}", std::process::id());
    let (mut emu, line) = spawn(
        "offline emulator",
        Command::new(offline)
            .args([
                "emulator",
                "--json",
                "--addr",
                "127.0.0.1:0",
                "--no-rate-limits",
                "--loopback-only",
                "--admin-token",
                &admin,
                "--data-dir",
            ])
            .arg(data.join("emulator")),
        &emu_log,
    )?;
    let printed: Value =
        serde_json::from_str(&line).map_err(|e| format!("the emulator printed {line:?}: {e}"))?;
    let text = |k: &str| {
        printed[k]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("the emulator printed no {k}: {line}"))
    };
    let base_url = text("base_url")?;
    let emu_addr: SocketAddr = base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|e| format!("the emulator's address {base_url}: {e}"))?;
    let serve_log = dir.join("serve.log");
    let (mut serve, line) = spawn(
        "offline serve",
        Command::new(offline)
            .env("OFFLINE_123PAN_CLIENT_ID", text("client_id")?)
            .env("OFFLINE_123PAN_CLIENT_SECRET", text("client_secret")?)
            .env("RUST_LOG", "warn")
            .args(["--base-url", &base_url, "--no-token-cache", "--rate-limit"])
            .arg(format!("offline_download={CREATE_RATE}"))
            .arg("--rate-limit")
            .arg(format!("offline_download_process={PROGRESS_RATE}"))
            .args(["--json", "serve", "--listen", "127.0.0.1:0", "--state"])
            .arg(data.join("state.sqlite")),
        &serve_log,
    )?;
    let printed: Value =
        serde_json::from_str(&line).map_err(|e| format!("offline serve printed {line:?}: {e}"))?;
    let ours = Rpc {
        name: "offline serve",
        addr: printed["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("offline serve printed no address: {line}"))?,
    };

    // The baseline: aria2c.
    let aria2_port = free_port()?;
    let aria2_log = dir.join("aria2c.log");
    let log_file =
        std::fs::File::create(&aria2_log).map_err(|e| format!("{}: {e}", aria2_log.display()))?;
    let child = Command::new(&aria2c)
        .args([
            "--no-conf",
            "--enable-rpc",
            "--rpc-listen-all=false",
            &format!("--rpc-listen-port={aria2_port}"),
            "--rpc-max-request-size=16M",
            &format!("--max-download-result={}", RESULTS + ACTIVE),
            "--max-concurrent-downloads=16",
            "--max-tries=1",
            "--max-file-not-found=1",
            "--file-allocation=none",
            "--allow-overwrite=true",
            "--auto-file-renaming=false",
            "--disable-ipv6=true",
            "--summary-interval=0",
            "--console-log-level=warn",
            "--enable-color=false",
            &format!("--stop-with-process={}", std::process::id()),
        ])
        .arg(format!("--dir={}", data.join("aria2c").display()))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start aria2c: {e}"))?;
    let mut aria2 = Proc {
        name: "aria2c",
        child,
        _stdin: None,
    };
    let theirs = Rpc {
        name: "aria2c",
        addr: SocketAddr::from(([127, 0, 0, 1], aria2_port)),
    };
    let started = Instant::now();
    while theirs.call("aria2.getVersion", json!([])).is_err() {
        aria2.alive(&aria2_log)?;
        if started.elapsed() > Duration::from_secs(10) {
            return Err("aria2c's RPC did not answer within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    say(&format!(
        "rpc: adding {RESULTS} links to offline serve and to aria2c, until all are stopped"
    ));
    ours.add_all(&uris)?;
    theirs.add_all(&uris)?;
    wait_for(
        &mut [
            (&ours, &mut serve, serve_log.as_path()),
            (&theirs, &mut aria2, aria2_log.as_path()),
        ],
        "rpc: filling",
        FILL_DEADLINE,
        |_, (active, waiting, stopped)| active == 0 && waiting == 0 && stopped == RESULTS,
    )?;
    emu.alive(&emu_log)?;

    // The emulator slowed down, so that tracking the active downloads paces itself
    // like the real service's limit; then the slow links.
    let faults_body = {
        let (_, current) = http(emu_addr, "GET", "/_emulator/faults", &[], b"")
            .map_err(|e| format!("the emulator's faults: {e}"))?;
        let mut faults: Value = serde_json::from_slice(&current)
            .map_err(|e| format!("the emulator's faults are no JSON: {e}"))?;
        faults["latency"] = json!(TRACKING_DELAY.as_millis() as u64);
        faults.to_string()
    };
    let bearer = format!("Bearer {admin}");
    let (status, answer) = http(
        emu_addr,
        "PUT",
        "/_emulator/faults",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        faults_body.as_bytes(),
    )
    .map_err(|e| format!("setting the emulator's latency: {e}"))?;
    if status != 200 {
        return Err(format!(
            "the emulator refused its latency (HTTP {status}): {}",
            String::from_utf8_lossy(&answer)
        ));
    }
    say(&format!(
        "rpc: adding {ACTIVE} slow links to both, until they are active"
    ));
    ours.add_all(&slow)?;
    theirs.add_all(&slow)?;
    wait_for(
        &mut [
            (&ours, &mut serve, serve_log.as_path()),
            (&theirs, &mut aria2, aria2_log.as_path()),
        ],
        "rpc: slow downloads",
        Duration::from_secs(120),
        |_, (active, waiting, stopped)| active == ACTIVE && waiting == 0 && stopped == RESULTS,
    )?;
    let tallies = [ours.tally()?, theirs.tally()?];
    if tallies[0] != tallies[1] {
        return Err(format!(
            "the results differ (complete, error, other): offline serve {:?}, aria2c {:?}",
            tallies[0], tallies[1]
        ));
    }

    let figures = figures();
    let mut scripts = Vec::new();
    for (n, figure) in figures.iter().enumerate() {
        check_answers(figure, [&ours, &theirs])?;
        let body =
            json!({"jsonrpc": "2.0", "id": "b", "method": figure.method, "params": figure.params});
        scripts.push(wrk_script(&dir, n, &body.to_string())?);
    }
    let mut best: Vec<[Option<Load>; 2]> = vec![[None, None]; figures.len()];
    for round in 1..=ROUNDS {
        for (n, figure) in figures.iter().enumerate() {
            say(&format!(
                "rpc: round {round}/{ROUNDS}: {} ({}s each, ours then aria2c)",
                figure.label,
                DURATION.as_secs()
            ));
            for (side, rpc) in [&ours, &theirs].into_iter().enumerate() {
                let measured = load(&wrk, &scripts[n], &rpc.url())?;
                eprintln!("   {}: {}", rpc.name, show(&measured));
                let slot = &mut best[n][side];
                if slot.is_none_or(|b| measured.per_second > b.per_second) {
                    *slot = Some(measured);
                }
            }
        }
        for (rpc, proc, log) in [
            (&ours, &mut serve, serve_log.as_path()),
            (&theirs, &mut aria2, aria2_log.as_path()),
        ] {
            proc.alive(log)?;
            let counts = rpc.counts()?;
            if counts != (ACTIVE, 0, RESULTS) {
                return Err(format!(
                    "{}: the queues changed during the load: {counts:?}",
                    rpc.name
                ));
            }
        }
    }

    let mut rows = Vec::new();
    for (figure, [ours_load, theirs_load]) in figures.iter().zip(best) {
        let (Some(o), Some(t)) = (ours_load, theirs_load) else {
            return Err("a figure was not measured".into());
        };
        let ratio = o.per_second / t.per_second;
        rows.push(Row {
            figure: figure.name,
            ours: show(&o),
            baseline: format!("aria2c: {}", show(&t)),
            ratio: format!("{ratio:.2}"),
            target: "≥ 1.0",
            pass: ratio >= 1.0,
        });
    }
    rows.extend(torrent_clients(&wrk, &dir, &ours)?);
    let (complete, error, _) = tallies[0];
    let note = format!(
        "RPC figures: `wrk --threads {THREADS} --connections {CONNECTIONS} --duration {}s --latency`, one JSON-RPC body over HTTP POST (keys {}), at `offline serve` and at `aria2c --enable-rpc` in turn, best of {ROUNDS} rounds; ratio = ours / aria2c requests per second. Each holds {} results ({} complete, {} error: 1 KiB files and 404s from a local server) and {ACTIVE} active downloads; {aria2_version}; {wrk_version}.",
        DURATION.as_secs(),
        KEYS.join(", "),
        thousands(RESULTS),
        thousands(complete),
        thousands(error)
    );
    Ok(Outcome { rows, note })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_reports() {
        let out = "Running 10s test @ http://127.0.0.1:1/jsonrpc
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  300.00us   9.01ms   90.00%
    Req/Sec    10.50k   500.00    11.00k    70.00%
  Latency Distribution
     50%  850.00us
     75%    1.50ms
     90%    2.00ms
     99%    1.20s
  104500 requests in 10.00s, 1.00GB read
Requests/sec:  10449.50
Transfer/sec:    102.40MB
";
        let l = parse_wrk(out).unwrap();
        assert!((l.per_second - 10449.5).abs() < 1e-9);
        assert_eq!(l.p50, Duration::from_micros(850));
        assert_eq!(l.p99, Duration::from_millis(1200));
        assert_eq!(l.socket_errors, 0);
        assert!(parse_wrk(&format!("{out}  Non-2xx or 3xx responses: 3\n")).is_err());
        let timed_out = format!("{out}  Socket errors: connect 0, read 1, write 0, timeout 2\n");
        assert_eq!(parse_wrk(&timed_out).unwrap().socket_errors, 3);
        assert!(parse_wrk("nothing").is_err());
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
