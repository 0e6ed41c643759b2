//! What the integration tests share: the real `offline` binary run with none of the
//! caller's client variables, an in-process emulator with its file server, a
//! standalone `offline emulator` process, and reading what they print.
//!
//! Each test file is its own crate and uses only some of this.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use offline_emulator::source::{ServedFile, SourceServer};
use offline_emulator::{Emulator, EmulatorConfig, EndpointId, RunningEmulator};
use serde_json::Value;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_offline");
pub(crate) const PNG: &[u8] = include_bytes!("../../../../fixtures/images/trpl14-01.png");

/// The client variables of a user's that a test must not lean on.
pub(crate) const CLIENT_VARS: [&str; 7] = [
    "OFFLINE_PROVIDER",
    "OFFLINE_123PAN_CLIENT_ID",
    "OFFLINE_123PAN_CLIENT_SECRET",
    "OFFLINE_123PAN_ACCESS_TOKEN",
    "OFFLINE_6PAN_ACCOUNT",
    "OFFLINE_6PAN_PASSWORD",
    "OFFLINE_6PAN_TOKEN",
];

/// The files of the torrent `pack` that the seeded tests serve under `seed/pack/`.
pub(crate) const SEED: [(&str, &[u8]); 2] = [("a.txt", b"first\n"), ("b.txt", b"second\n")];

/// `offline --base-url BASE` with none of the caller's client variables and the
/// private token cache `cache`.
pub(crate) fn offline_at(base: &str, cache: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["--base-url", base])
        .env("OFFLINE_CACHE_DIR", cache);
    for var in CLIENT_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// The client variables carrying both providers' credentials.
fn credentials(
    client_id: &str,
    client_secret: &str,
    account: &str,
    password: &str,
) -> [(&'static str, String); 4] {
    [
        ("OFFLINE_123PAN_CLIENT_ID", client_id.to_owned()),
        ("OFFLINE_123PAN_CLIENT_SECRET", client_secret.to_owned()),
        ("OFFLINE_6PAN_ACCOUNT", account.to_owned()),
        ("OFFLINE_6PAN_PASSWORD", password.to_owned()),
    ]
}

/// The demo credentials (those a standalone `offline emulator` accepts by default).
pub(crate) fn demo_credentials() -> [(&'static str, String); 4] {
    let demo = EmulatorConfig::default();
    credentials(
        &demo.client_id,
        &demo.client_secret,
        &demo.sixpan_account,
        &demo.sixpan_password,
    )
}

/// The credentials of both providers that the in-process `emu` accepts.
pub(crate) fn emulator_credentials(emu: &RunningEmulator) -> [(&'static str, String); 4] {
    credentials(
        emu.client_id(),
        emu.client_secret(),
        emu.sixpan_account(),
        emu.sixpan_password(),
    )
}

/// `offline` against the in-process `emu`, with its credentials of both providers.
pub(crate) fn offline(emu: &RunningEmulator, cache: &Path) -> Command {
    let mut cmd = offline_at(&emu.base_url(), cache);
    cmd.envs(emulator_credentials(emu));
    cmd
}

/// `cmd`'s output, run off the async runtime's threads.
pub(crate) async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// The output of a running `child`, waited for off the async runtime's threads.
pub(crate) async fn wait_output(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// Every line of `stdout` as JSON; a line that is not JSON fails the test.
pub(crate) fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// The lines of `stdout` that are JSON, the others left out.
pub(crate) fn json_values(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The `line` events of a batch run (the `summary` event that ends it left out).
pub(crate) fn line_events(events: Vec<Value>) -> Vec<Value> {
    events
        .into_iter()
        .filter(|v| v["event"] == "line")
        .collect()
}

/// A finished run: its exit code (-1 if a signal ended it), its stdout's JSON lines
/// (each line must be JSON) and its stderr.
pub(crate) fn outcome(out: &Output) -> (i32, Vec<Value>, String) {
    (
        out.status.code().unwrap_or(-1),
        json_lines(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `done` until it holds or `timeout` has passed; whether it holds.
pub(crate) async fn eventually(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

/// Sends `signal` (`-INT`, `-TERM`) to the process `pid`; whether `kill` succeeded.
pub(crate) fn kill(signal: &str, pid: u32) -> bool {
    Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) fn sigint(pid: u32) {
    assert!(kill("-INT", pid), "SIGINT to {pid}");
}

pub(crate) fn sigterm(pid: u32) {
    assert!(kill("-TERM", pid), "SIGTERM to {pid}");
}

/// POSTs `body` to `url`; the HTTP status of the answer.
pub(crate) async fn post(url: &str, content_type: &str, body: impl Into<Bytes>) -> u16 {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::post(url)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    status
}

/// An answer to [`get`]: its HTTP status, its `Location` header, its body.
pub(crate) struct Got {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) body: String,
}

/// GETs `url` (plain http, a redirect not followed).
pub(crate) async fn get(url: &str) -> Got {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(http::header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Got {
        status,
        location,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Opens the emulator's authorize page for `redirect_uri` as a browser would: where
/// it redirects to (`redirect_uri?code=..&state=..`).
pub(crate) async fn authorize(emu: &RunningEmulator, redirect_uri: &str, state: &str) -> String {
    let url = offline_proto::pan123::authorize_url(
        &format!("{}/auth", emu.base_url()),
        emu.client_id(),
        redirect_uri,
        offline_proto::pan123::DEFAULT_SCOPE,
        state,
    );
    let got = get(&url).await;
    assert_eq!(got.status, 302, "{}", got.body);
    got.location.expect("a redirect")
}

/// The value of `name` in the query of `url`.
pub(crate) fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// An in-process emulator that lets every endpoint take `per_second` requests.
pub(crate) async fn emulator(config: EmulatorConfig, per_second: f64) -> RunningEmulator {
    let emu = Emulator::start(config).await.unwrap();
    for e in EndpointId::ALL {
        emu.set_rate_limit(e, per_second);
    }
    emu
}

/// Tasks per source URL on the emulator.
pub(crate) fn tasks_per_url(emu: &RunningEmulator) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for t in emu.tasks() {
        *m.entry(t.url).or_insert(0) += 1;
    }
    m
}

/// A served file of `len` bytes `byte`.
pub(crate) fn octets(byte: u8, len: usize) -> ServedFile {
    ServedFile::new("application/octet-stream", vec![byte; len])
}

/// The `seed` files as the web seed of the torrent `pack` serves them.
pub(crate) fn seed_files<'a>(
    content_type: &'a str,
    seed: &'a [(&str, &[u8])],
) -> impl Iterator<Item = (String, ServedFile)> + 'a {
    seed.iter().map(move |(n, d)| {
        (
            format!("seed/pack/{n}"),
            ServedFile::new(content_type, d.to_vec()),
        )
    })
}

/// `f.bin` (1000 bytes) and the image `a.png`.
pub(crate) fn bin_and_png() -> [(String, ServedFile); 2] {
    [
        ("f.bin".to_owned(), octets(7, 1000)),
        (
            "a.png".to_owned(),
            ServedFile::new("image/png", PNG.to_vec()),
        ),
    ]
}

/// A loopback file server holding `files`.
pub(crate) async fn serve(files: impl IntoIterator<Item = (String, ServedFile)>) -> SourceServer {
    let files: BTreeMap<String, ServedFile> = files.into_iter().collect();
    SourceServer::start(files).await.unwrap()
}

/// Writes at `path` the torrent `pack` of the `seed` files, its web seed `src`; the
/// path as a string.
pub(crate) fn seeded_torrent(src: &SourceServer, seed: &[(&str, &[u8])], path: &Path) -> String {
    let mut b = offline_proto::torrent::TorrentBuilder::new("pack")
        .web_seed(format!("{}/files/seed/", src.base_url()));
    for (n, d) in seed {
        b = b.file(&[n], d.to_vec());
    }
    std::fs::write(path, b.build()).unwrap();
    path.to_string_lossy().into_owned()
}

/// An in-process emulator, its file server and a temporary directory for the token
/// cache and the test's files.
pub(crate) struct Env {
    pub(crate) emu: RunningEmulator,
    pub(crate) src: SourceServer,
    pub(crate) dir: tempfile::TempDir,
}

impl Env {
    /// The emulator of `config`, `per_second` requests a second on every endpoint,
    /// serving `files`.
    pub(crate) async fn start(
        config: EmulatorConfig,
        per_second: f64,
        files: impl IntoIterator<Item = (String, ServedFile)>,
    ) -> Self {
        let emu = emulator(config, per_second).await;
        Self {
            emu,
            src: serve(files).await,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `name` in the test's directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The private token cache.
    pub(crate) fn cache(&self) -> PathBuf {
        self.path("cache")
    }

    /// A URL of the served `f.bin` of its own (`?n=i`).
    pub(crate) fn url(&self, i: usize) -> String {
        format!("{}?n={i}", self.src.file_url("f.bin"))
    }

    /// `offline ARGS` with the emulator's credentials of both providers and the private
    /// token cache; no stdin, its output captured.
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = offline(&self.emu, &self.cache());
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    pub(crate) async fn run(&self, args: &[&str]) -> Output {
        output(self.cmd(args)).await
    }
}

/// `offline emulator ARGS`, with no stdin.
pub(crate) fn emulator_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("emulator").args(args).stdin(Stdio::null());
    cmd
}

/// A child process read line by line, stopped when dropped: SIGTERM (so that an
/// emulator removes its temporary data directory), SIGKILL if it has not ended
/// within 10 s.
pub(crate) struct Running {
    child: Option<Child>,
    stdout: Option<BufReader<ChildStdout>>,
}

impl Running {
    /// Starts `cmd` with its stdout piped.
    pub(crate) fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("it starts");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child: Some(child),
            stdout: Some(stdout),
        }
    }

    pub(crate) fn id(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The next line of stdout (empty at its end).
    pub(crate) fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.as_mut().unwrap().read_line(&mut line).unwrap();
        line
    }

    /// The next line of stdout, which is JSON.
    pub(crate) fn json_line(&mut self) -> Value {
        let line = self.line();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
    }

    /// The human form's block of `offline emulator`, up to `stop with Ctrl-C`.
    pub(crate) fn block(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            assert!(!line.is_empty(), "it ended early: {lines:?}");
            let done = line.contains("stop with Ctrl-C");
            lines.push(line.trim_end().to_owned());
            if done {
                return lines;
            }
        }
    }

    /// Waits for the end: its status, its stderr, and in `stdout` what it printed after
    /// the lines already read.
    pub(crate) fn wait(&mut self) -> Output {
        let mut stdout = self.stdout.take().unwrap();
        let rest = std::thread::spawn(move || {
            let mut rest = Vec::new();
            stdout.read_to_end(&mut rest).unwrap();
            rest
        });
        let mut out = self.child.take().unwrap().wait_with_output().unwrap();
        out.stdout = rest.join().unwrap();
        out
    }

    /// SIGTERM, then [`wait`](Self::wait).
    pub(crate) fn terminate(&mut self) -> Output {
        sigterm(self.id());
        self.wait()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = kill("-TERM", child.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A standalone `offline emulator --json` on a free port, started with none of the
/// caller's client variables, and a temporary directory with the private token cache
/// of its clients.
pub(crate) struct Standalone {
    process: Running,
    pub(crate) base: String,
    pub(crate) dir: tempfile::TempDir,
}

impl Standalone {
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`start`](Self::start), with more `offline emulator` arguments.
    pub(crate) fn start_with(args: &[&str]) -> Self {
        let mut cmd = emulator_command(&[&["--addr", "127.0.0.1:0", "--json"], args].concat());
        for var in CLIENT_VARS {
            cmd.env_remove(var);
        }
        let mut process = Running::spawn(cmd.stderr(Stdio::null()));
        let v = process.json_line();
        assert_eq!(v["event"], "emulator");
        assert_eq!(v["client_id"], EmulatorConfig::default().client_id.as_str());
        let base = v["base_url"].as_str().unwrap().to_owned();
        Self {
            process,
            base,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The clients' token cache (`OFFLINE_CACHE_DIR`).
    pub(crate) fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// `offline ARGS` against it, with the demo credentials of both providers.
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = offline_at(&self.base, &self.cache());
        cmd.envs(demo_credentials()).args(args);
        cmd
    }

    /// Runs [`cmd`](Self::cmd): [`outcome`].
    pub(crate) fn run(&self, args: &[&str]) -> (i32, Vec<Value>, String) {
        outcome(&self.cmd(args).output().unwrap())
    }
}

/// A JSON-RPC POST of `body` to `url` (`offline serve`'s `/jsonrpc`): the answer's
/// HTTP status and JSON.
pub(crate) async fn rpc(url: &str, body: &Value) -> (u16, Value) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// A JSON-RPC 2.0 call of `method` with `params`, id `t`.
pub(crate) fn call(method: &str, params: Value) -> Value {
    serde_json::json!({"jsonrpc": "2.0", "id": "t", "method": method, "params": params})
}

/// Starts `offline BEFORE --json serve --listen 127.0.0.1:0 --state STATE EXTRA` (the
/// emulator's credentials from `env`); the process and its `/jsonrpc` URL.
pub(crate) fn serve_daemon(
    env: &Env,
    before: &[&str],
    state: &str,
    extra: &[&str],
) -> (Running, String) {
    let mut args = before.to_vec();
    args.extend([
        "--json",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--state",
        state,
    ]);
    args.extend_from_slice(extra);
    let mut running = Running::spawn(&mut env.cmd(&args));
    let listening = running.json_line();
    assert_eq!(listening["event"], "listening", "{listening}");
    let url = listening["url"].as_str().unwrap().to_owned();
    (running, url)
}
