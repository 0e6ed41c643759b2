//! `docs/events.schema.json` describes every `--json` event: the real binary runs a
//! representative set of commands of both providers (add, status, wait, batches,
//! list, rm, upload, login, logout, callbacks, Ctrl-C, hash, torrent inspect, the
//! emulator, the demo, usage and provider errors) against an in-process emulator,
//! and every line it prints on stdout is a JSON object that the schema accepts; every
//! event the schema names is seen at least once. The schema itself is valid JSON
//! Schema (2020-12) and refuses what it should.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use offline_emulator::EmulatorConfig;
use serde_json::{json, Value};
use tokio::task::block_in_place;

mod common;
use common::{
    authorize, bin_and_png, emulator_command, output, post, query_value, seed_files,
    seeded_torrent, sigint, Env, Running, BIN, SEED,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema() -> Value {
    let text = std::fs::read_to_string(root().join("docs/events.schema.json")).unwrap();
    serde_json::from_str(&text).expect("the schema is JSON")
}

/// The schema's validator, and the event names it lists.
fn validator() -> (jsonschema::Validator, BTreeSet<String>) {
    let schema = schema();
    assert!(
        jsonschema::meta::is_valid(&schema),
        "docs/events.schema.json is not a valid JSON Schema"
    );
    let names = schema["properties"]["event"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    (jsonschema::validator_for(&schema).unwrap(), names)
}

/// Why `event` does not fit the schema (empty: it fits).
fn problems(validator: &jsonschema::Validator, event: &Value) -> Vec<String> {
    validator
        .iter_errors(event)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// What the runs printed, checked line by line.
struct Seen {
    validator: jsonschema::Validator,
    names: BTreeSet<String>,
    events: BTreeMap<String, usize>,
    failures: Vec<String>,
}

impl Seen {
    fn new() -> Self {
        let (validator, names) = validator();
        Self {
            validator,
            names,
            events: BTreeMap::new(),
            failures: Vec::new(),
        }
    }

    /// Checks every line of `stdout` of `what`; returns the events.
    fn check(&mut self, what: &str, stdout: &[u8]) -> Vec<Value> {
        let mut events = Vec::new();
        for line in String::from_utf8_lossy(stdout).lines() {
            let event: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    self.failures
                        .push(format!("`{what}`: not JSON ({e}): {line}"));
                    continue;
                }
            };
            let why = problems(&self.validator, &event);
            if !why.is_empty() {
                self.failures
                    .push(format!("`{what}`: {line}\n    {}", why.join("\n    ")));
            }
            if let Some(name) = event["event"].as_str() {
                *self.events.entry(name.to_owned()).or_default() += 1;
            }
            events.push(event);
        }
        events
    }

    /// Runs `offline --json ARGS` against `env`, which must exit with `code`; its events.
    async fn expect(&mut self, env: &Env, code: i32, args: &[&str]) -> Vec<Value> {
        let o = output(cmd(env, args)).await;
        let events = self.check(&args.join(" "), &o.stdout);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {events:?}");
        events
    }

    /// [`expect`](Self::expect) with `--provider 6pan`.
    async fn expect_6pan(&mut self, env: &Env, code: i32, args: &[&str]) -> Vec<Value> {
        self.expect(env, code, &[&["--provider", "6pan"], args].concat())
            .await
    }

    fn assert_all_valid_and_every_event_seen(&self) {
        assert!(
            self.failures.is_empty(),
            "{} line(s) do not fit docs/events.schema.json:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
        let seen: BTreeSet<String> = self.events.keys().cloned().collect();
        let missing: Vec<&String> = self.names.difference(&seen).collect();
        assert!(
            missing.is_empty(),
            "events the schema names but no run printed: {missing:?} (seen: {:?})",
            self.events
        );
    }
}

/// The emulator (its sources fetched at `fetch_rate` bytes a second), serving
/// `f.bin`, `a.png` and the seeded torrent's files.
async fn start(fetch_rate: Option<u64>) -> Env {
    let config = EmulatorConfig {
        fetch_rate,
        sixpan_simulated_duration: Duration::from_millis(500),
        ..EmulatorConfig::default()
    };
    let files = bin_and_png()
        .into_iter()
        .chain(seed_files("text/plain", &SEED));
    Env::start(config, 1000.0, files).await
}

/// `offline --json ARGS` against the emulator, with its credentials of both providers
/// and a private token cache.
fn cmd(env: &Env, args: &[&str]) -> Command {
    env.cmd(&[&["--json"], args].concat())
}

/// What a process printed: the `first` line read, then the rest.
fn printed(first: &str, o: &Output) -> Vec<u8> {
    [first.as_bytes(), &o.stdout].concat()
}

/// Runs a command with no provider around (`hash`, `torrent inspect`, usage errors).
fn run_local(seen: &mut Seen, args: &[&str]) -> (Option<i32>, Vec<Value>) {
    let o = Command::new(BIN)
        .args(args)
        .env_remove("OFFLINE_PROVIDER")
        .output()
        .unwrap();
    let events = seen.check(&args.join(" "), &o.stdout);
    (o.status.code(), events)
}

fn task_of(events: &[Value], event: &str) -> String {
    events
        .iter()
        .find(|e| e["event"] == event)
        .and_then(|e| e["task"].as_str())
        .unwrap_or_else(|| panic!("no {event} event with a task: {events:?}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_json_line_fits_the_schema() {
    let mut seen = Seen::new();
    let env = start(None).await;
    let ok = env.src.file_url("f.bin");
    let missing = env.src.file_url("missing.bin");
    let png = env.src.file_url("a.png");

    // 123pan: add, status, wait; --wait with a failing task; the image bed.
    let events = seen.expect(&env, 0, &["add", &ok]).await;
    let task = task_of(&events, "created");
    seen.expect(&env, 0, &["wait", &task]).await;
    seen.expect(&env, 0, &["status", &task]).await;
    // (Creates paced at 100/s, not the default 1/s: this test is about shapes.)
    let fast = ["--rate-limit", "offline_download=100"];
    seen.expect(
        &env,
        1,
        &[&fast[..], &["add", &missing, &ok, "--wait"]].concat(),
    )
    .await;
    seen.expect(&env, 0, &["add", &png, "--image", "--wait"])
        .await;
    // Errors: a task the provider does not know, a source it cannot take, a bad ID.
    seen.expect(&env, 3, &["status", "999999"]).await;
    seen.expect(&env, 6, &["add", "ftp://example.com/x"]).await;
    seen.expect(&env, 2, &["status", "not-a-number"]).await;
    seen.expect(&env, 0, &["login"]).await;

    // 123pan folders and files: --dir PATH (folders created), the stored file after
    // --wait, ls, info, link.
    let events = seen
        .expect(&env, 0, &["add", &ok, "--dir", "/json/a", "--wait"])
        .await;
    let stored = events
        .iter()
        .find(|e| e["event"] == "file" && e["task"].is_string())
        .unwrap_or_else(|| panic!("no stored file: {events:?}"));
    let file_id = stored["id"].as_str().unwrap().to_owned();
    seen.expect(&env, 0, &["ls", "/json/a"]).await;
    seen.expect(&env, 0, &["info", &file_id]).await;
    seen.expect(&env, 0, &["link", &file_id]).await;

    // A batch: lines, its summary; status --from and wait --from (with a note about
    // the refused line).
    let batch = env.path("urls.txt");
    std::fs::write(
        &batch,
        format!("# a batch\n{ok}?n=1\n{ok}?n=2\nftp://x/y\n"),
    )
    .unwrap();
    let from = batch.to_str().unwrap();
    let events = seen
        .expect(&env, 6, &[&fast[..], &["add", "--from", from]].concat())
        .await;
    assert_eq!(events.last().unwrap()["event"], "summary");
    seen.expect(&env, 0, &["status", "--from", from]).await;
    seen.expect(&env, 0, &["wait", "--from", from]).await;
    // OAuth (a third-party app): the authorize prompt alone, then a pasted code
    // (logout then deletes the grant, so the 6pan runs below are unaffected).
    let redirect = "http://127.0.0.1:9/cb";
    seen.expect(&env, 0, &["login", "--oauth", "--redirect-uri", redirect])
        .await;
    let location = authorize(&env.emu, redirect, "events").await;
    let code = query_value(&location, "code").unwrap();
    let events = seen
        .expect(
            &env,
            0,
            &[
                "login",
                "--oauth",
                "--redirect-uri",
                redirect,
                "--code",
                &code,
            ],
        )
        .await;
    assert_eq!(events.last().unwrap()["oauth"], true, "{events:?}");
    seen.expect(&env, 0, &["logout"]).await;

    // 6pan: login, a link, a torrent file (uploaded), list, status, wait, rm, upload.
    seen.expect_6pan(&env, 0, &["login"]).await;
    let events = seen.expect_6pan(&env, 0, &["add", &ok, "--wait"]).await;
    let task6 = task_of(&events, "created");
    let torrent = seeded_torrent(&env.src, &SEED, &env.path("pack.torrent"));
    seen.expect_6pan(&env, 0, &["add", &torrent, "--select", "*.txt"])
        .await;
    seen.expect_6pan(&env, 0, &["list"]).await;
    seen.expect_6pan(&env, 0, &["status", &task6]).await;
    seen.expect_6pan(&env, 3, &["wait", &task6, "UNKNOWN"])
        .await;
    seen.expect_6pan(&env, 0, &["rm", &task6]).await;
    let small = env.path("small.bin");
    std::fs::write(&small, vec![9u8; 10_000]).unwrap();
    seen.expect_6pan(&env, 0, &["upload", small.to_str().unwrap()])
        .await;
    seen.expect_6pan(&env, 2, &["add", &ok, "--image"]).await;
    let six_batch = env.path("links.txt");
    std::fs::write(&six_batch, format!("{ok}?n=6\n")).unwrap();
    seen.expect_6pan(&env, 0, &["add", "--from", six_batch.to_str().unwrap()])
        .await;

    // Callbacks: a refused request, a forged callback, then it stops (max).
    let mut listener = Running::spawn(
        cmd(
            &env,
            &["callbacks", "--listen", "127.0.0.1:0", "--max", "1"],
        )
        .args(["--task", &format!("{task}={ok}"), "--timeout", "30"]),
    );
    let first = listener.line();
    let listening: Value = serde_json::from_str(&first).unwrap();
    let url = listening["url"].as_str().unwrap().to_owned();
    assert_eq!(post(&url, "text/plain", "{}").await, 415);
    let forged = json!({"url": ok, "status": 7}).to_string();
    assert_eq!(post(&url, "application/json", forged).await, 200);
    let o = block_in_place(|| listener.wait());
    assert_eq!(o.status.code(), Some(0));
    seen.check("callbacks", &printed(&first, &o));

    // Ctrl-C during a wait on a slow source.
    let slow = start(Some(100)).await;
    let events = seen
        .expect(&slow, 0, &["add", &slow.src.file_url("f.bin")])
        .await;
    let task = task_of(&events, "created");
    // The command's deadline passing during a wait: an error event, kind timeout.
    let events = seen
        .expect(&slow, 9, &["wait", &task, "--timeout", "1"])
        .await;
    assert_eq!(events.last().unwrap()["kind"], "timeout", "{events:?}");
    let mut waiting = Running::spawn(&mut cmd(&slow, &["wait", &task]));
    let first = waiting.line();
    sigint(waiting.id());
    let o = block_in_place(|| waiting.wait());
    assert_eq!(o.status.code(), Some(130));
    let events = seen.check("wait (Ctrl-C)", &printed(&first, &o));
    assert_eq!(events.last().unwrap()["event"], "interrupted");

    // Local tools, usage errors.
    let (code, _) = run_local(&mut seen, &["--json", "hash", small.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    let (code, _) = run_local(&mut seen, &["--json", "hash", "/nonexistent"]);
    assert_eq!(code, Some(6));
    for t in ["sintel.torrent", "folder.torrent", "corrupt.torrent"] {
        let file = root().join("fixtures/torrents").join(t);
        let (code, _) = run_local(
            &mut seen,
            &["--json", "torrent", "inspect", file.to_str().unwrap()],
        );
        assert!(code == Some(0) || t == "corrupt.torrent", "{t}: {code:?}");
    }
    let (code, events) = run_local(&mut seen, &["--json", "add", "--bogus"]);
    assert_eq!(code, Some(2));
    assert_eq!(events[0]["kind"], "usage");
    let (code, events) = run_local(&mut seen, &["--json", "--provider", "6pan", "frobnicate"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        events[0]["provider"], "6pan",
        "the provider the command line named"
    );

    // The emulator's own event.
    let mut emulator = Running::spawn(
        emulator_command(&["--addr", "127.0.0.1:0", "--json"]).stderr(Stdio::null()),
    );
    let first = emulator.line();
    emulator.terminate();
    seen.check("emulator", first.as_bytes());

    // The demo, both providers.
    let started = Instant::now();
    let o = tokio::task::spawn_blocking(|| {
        Command::new(BIN)
            .args([
                "demo",
                "--size-mib",
                "1",
                "--fetch-rate",
                "8388608",
                "--json",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "demo ({:?}): {}",
        started.elapsed(),
        String::from_utf8_lossy(&o.stderr)
    );
    seen.check("demo", &o.stdout);

    seen.assert_all_valid_and_every_event_seen();
}

/// The schema is strict enough to mean something: each of these breaks one rule.
#[test]
fn the_schema_refuses_what_it_should() {
    let (validator, _) = validator();
    let good = json!({
        "event": "created", "provider": "123pan", "task": "100001", "kind": "cloud",
        "source": "https://example.com/a",
    });
    assert!(problems(&validator, &good).is_empty(), "{good}");
    let bad = [
        json!({"provider": "123pan"}),
        json!({"event": "nonsense", "provider": "123pan"}),
        json!({"event": "created", "provider": "123pan", "task": 100001, "kind": "cloud", "source": "x"}),
        json!({"event": "created", "task": "100001", "kind": "cloud", "source": "x"}),
        json!({"event": "created", "provider": "123pan", "task": "1", "kind": "cloud", "source": "x", "extra": 1}),
        json!({"event": "progress", "provider": "123pan", "task": "1", "kind": "cloud", "status": "Running", "status_code": 0, "percent": 5.0}),
        json!({"event": "progress", "provider": "123pan", "task": "1", "kind": "cloud", "status": "running", "status_code": 0, "percent": 120.0}),
        json!({"event": "error", "provider": "6pan", "subject": "", "message": "m", "code": null, "trace_id": null, "exit_code": 2}),
        json!({"event": "error", "provider": "6pan", "subject": "", "kind": "oops", "message": "m", "code": null, "trace_id": null, "exit_code": 2}),
        json!({"event": "summary", "provider": "123pan", "lines": 1}),
        json!({"event": "login", "provider": "123pan", "account": "a"}),
        json!({"event": "login", "provider": "123pan", "account": "a", "ok": true, "oauth": true, "step": "authorize", "authorize_url": "https://x/auth", "redirect_uri": "http://127.0.0.1/"}),
        json!({"event": "hash", "provider": "6pan", "file": "f", "etag": "short", "size": 1, "etag_with_size": "x"}),
    ];
    for event in bad {
        assert!(
            !problems(&validator, &event).is_empty(),
            "the schema accepts {event}"
        );
    }
}
