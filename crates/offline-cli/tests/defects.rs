//! One test per defect of the CLI issue, each through the real binary against the
//! in-process emulator (counted from its own task list and token counter).

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use offline_emulator::{EmulatorConfig, Faults};
use serde_json::Value;

mod common;
use common::{
    bin_and_png, eventually, json_lines, offline_at, sigint, tasks_per_url, wait_output, Env,
    Running, BIN,
};

async fn with_config(config: EmulatorConfig) -> Env {
    Env::start(config, 1000.0, bin_and_png()).await
}

async fn env() -> Env {
    with_config(EmulatorConfig::default()).await
}

/// An emulator that takes `latency` to answer each request.
async fn with_latency(latency: Duration) -> Env {
    with_config(EmulatorConfig {
        faults: Faults {
            latency,
            ..Faults::default()
        },
        ..EmulatorConfig::default()
    })
    .await
}

/// `offline --base-url BASE` with a made-up 123pan client ID and secret.
fn made_up_client(base: &str, cache: &Path) -> Command {
    let mut c = offline_at(base, cache);
    c.env("OFFLINE_123PAN_CLIENT_ID", "id")
        .env("OFFLINE_123PAN_CLIENT_SECRET", "secret");
    c
}

/// SIGINT to `child`, then its stderr: it exits 130, saying that its tasks keep
/// running on the drive.
async fn interrupt(child: Child) -> String {
    sigint(child.id());
    let o = wait_output(child).await;
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert!(stderr.contains("keep running on the drive"), "{stderr}");
    stderr
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Defect 1: two batch runs at once never submit a line twice; the second refuses
/// at once with its own exit code (8).
#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_batches_submit_no_line_twice() {
    let env = with_latency(Duration::from_millis(15)).await;
    let input = env.path("urls.txt");
    let n = 200;
    let urls: Vec<String> = (0..n).map(|i| env.url(i)).collect();
    write_lines(&input, &urls);
    let args = [
        "--rate-limit",
        "offline_download=500",
        "--json",
        "add",
        "--from",
        input.to_str().unwrap(),
    ];
    let a = env.cmd(&args).spawn().unwrap();
    let b = env.cmd(&args).spawn().unwrap();
    let (a, b) = (wait_output(a).await, wait_output(b).await);
    let codes = [a.status.code(), b.status.code()];
    let per_url = tasks_per_url(&env.emu);
    assert!(
        per_url.values().all(|&c| c == 1),
        "a line was submitted twice: {:?}",
        per_url.values().filter(|&&c| c > 1).count()
    );
    assert_eq!(env.emu.tasks().len(), n, "{}\n{}", text(&a), text(&b));
    assert!(codes.contains(&Some(0)), "{codes:?}");
    // Both started together: the later one refused at once (or, rarely, ran after).
    let refused = if a.status.code() == Some(8) { &a } else { &b };
    if refused.status.code() == Some(8) {
        let lines = json_lines(&refused.stdout);
        assert_eq!(lines.len(), 1, "{}", text(refused));
        assert_eq!(lines[0]["event"], "error");
        assert_eq!(lines[0]["kind"], "busy");
        assert!(lines[0]["message"].as_str().unwrap().contains("in use"));
    }
}

/// Defect 2: `wait --from` waits for every line's task.
#[tokio::test(flavor = "multi_thread")]
async fn wait_from_waits_for_every_line() {
    let env = env().await;
    let input = env.path("urls.txt");
    write_lines(&input, &(0..3).map(|i| env.url(i)).collect::<Vec<_>>());
    let o = env
        .run(&["--json", "add", "--from", input.to_str().unwrap()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = env
        .run(&["--json", "wait", "--from", input.to_str().unwrap()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let done: Vec<Value> = json_lines(&o.stdout)
        .into_iter()
        .filter(|l| l["event"] == "done")
        .collect();
    assert_eq!(done.len(), 3, "{}", text(&o));
    assert!(done
        .iter()
        .all(|l| l["status"] == "succeeded" && l["task"].is_string()));
}

fn journal_rows(path: &Path) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut st = conn
        .prepare("SELECT source, state, kind FROM entries ORDER BY line")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Defect 3: `status --from` only reads; a line's kind is recorded when submitted.
#[tokio::test(flavor = "multi_thread")]
async fn status_from_only_reads_and_the_kind_is_recorded_at_submission() {
    let env = env().await;
    let input = env.path("images.txt");
    let img = |i: usize| format!("{}?n={i}", env.src.file_url("a.png"));
    write_lines(&input, &[img(1)]);
    let from = input.to_str().unwrap();
    let o = env
        .run(&["--json", "add", "--from", from, "--image", "--wait"])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    write_lines(&input, &[img(1), img(2)]);
    let journal = env.path("images.txt.journal.sqlite");
    let before = journal_rows(&journal);
    let o = env.run(&["--json", "status", "--from", from]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let lines = json_lines(&o.stdout);
    assert_eq!(lines[1]["state"], "new", "{}", text(&o));
    assert_eq!(
        journal_rows(&journal),
        before,
        "status wrote to the journal"
    );
    let o = env
        .run(&["--json", "add", "--from", from, "--image", "--wait"])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rows = journal_rows(&journal);
    assert!(
        rows.iter().all(|r| r.1 == "submitted" && r.2 == "image"),
        "{rows:?}"
    );
    let o = env.run(&["--json", "status", "--from", from]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(json_lines(&o.stdout)
        .iter()
        .all(|l| l["status"] == "succeeded" && l["kind"] == "image"));
}

/// Defect 4: a flag the provider cannot honour is refused (exit 2) before anything is
/// sent, never ignored.
#[tokio::test(flavor = "multi_thread")]
async fn flags_a_provider_cannot_honour_are_refused_before_sending() {
    let env = env().await;
    let input = env.path("urls.txt");
    write_lines(&input, &[env.url(1)]);
    let from = input.to_str().unwrap();
    let url = env.url(2);
    let cases: Vec<Vec<&str>> = vec![
        vec!["add", &url, "--select", "*.iso"],
        vec!["add", &url, "--path", "/x"],
        vec!["add", "--from", from, "--select", "*.iso"],
        vec!["add", "--from", from, "--name", "x"],
        vec!["add", &url, "--image", "--dir", "5"],
        vec!["--provider", "6pan", "add", &url, "--image"],
        vec!["--provider", "6pan", "add", &url, "--name", "x"],
        vec!["--provider", "6pan", "add", &url, "--dir", "5"],
        vec![
            "--provider",
            "6pan",
            "add",
            &url,
            "--callback",
            "http://127.0.0.1:1/",
        ],
        vec!["--provider", "6pan", "add", "--from", from, "--name", "x"],
        vec!["--provider", "6pan", "add", &url, "--select", "*.iso"],
        vec!["--provider", "6pan", "status", "x", "--image"],
        vec!["add", &url, "--account", "someone"],
        vec!["list"],
    ];
    for case in cases {
        let o = env.run(&case).await;
        assert_eq!(o.status.code(), Some(2), "{case:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("nothing was sent"),
            "{case:?}: {}",
            text(&o)
        );
    }
    assert!(env.emu.tasks().is_empty());
    assert!(env.emu.sixpan_tasks().is_empty());
    assert_eq!(
        env.emu.token_requests(),
        0,
        "not even a token was asked for"
    );
    assert_eq!(env.emu.sixpan_logins(), 0);
}

/// Defect 5: every batch run ends with a summary; the exit code is the worst state.
#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_says_what_every_line_is() {
    let env = env().await;
    let input = env.path("urls.txt");
    write_lines(
        &input,
        &[env.url(1), env.url(2), "ftp://not/allowed".to_owned()],
    );
    let from = input.to_str().unwrap();
    let o = env.run(&["add", "--from", from]).await;
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let o = env.run(&["add", "--from", from]).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(
        out.contains("0 submitted now, 2 submitted earlier, 1 refused"),
        "{out}"
    );
    assert!(out.contains("refused: line 3 (ftp://not/allowed)"), "{out}");
    assert!(out.contains("exit code 6"), "{out}");
    let o = env.run(&["--json", "add", "--from", from]).await;
    let summary = json_lines(&o.stdout).pop().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["submitted_before"], 2);
    assert_eq!(summary["refused"], 1);
    assert_eq!(summary["exit_code"], 6);
}

/// Defect 6: a closed stdout ends the command quietly (exit 0); a full disk is an
/// error line.
#[test]
fn hash_into_a_closed_pipe_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 0..300 {
        let p = dir.path().join(format!("f{i}"));
        std::fs::write(&p, vec![i as u8; 4096]).unwrap();
        files.push(p.display().to_string());
    }
    let script = format!(
        "{BIN} hash {} | head -1 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
        files.join(" ")
    );
    let o = Command::new("bash").args(["-c", &script]).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "0", "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    if Path::new("/dev/full").exists() {
        let o = Command::new(BIN)
            .args(["hash", &files[0]])
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(6), "{stderr}");
        assert!(
            stderr.contains("cannot write to standard output"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Defect 7: connection refused fails within seconds, saying that it retries.
#[test]
fn an_unreachable_server_fails_fast_and_says_it_retries() {
    // A privileged port nothing listens on: the kernel never hands one of those out
    // for port 0 (a freed ephemeral port could be taken by another test's emulator
    // meanwhile, which then answers).
    let port = (1..1024u16)
        .find(|p| {
            std::net::TcpStream::connect(("127.0.0.1", *p))
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
        })
        .expect("a refusing port below 1024");
    let dir = tempfile::tempdir().unwrap();
    // Both forms at once (each gives up after the CLI's real-time refusal budget).
    let runs: Vec<_> = [false, true]
        .into_iter()
        .map(|json| {
            let started = Instant::now();
            let mut c = made_up_client(&format!("http://127.0.0.1:{port}"), dir.path());
            if json {
                c.arg("--json");
            }
            let child = c
                .args(["status", "1"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (json, started, child)
        })
        .collect();
    for (json, started, child) in runs {
        let o = child.wait_with_output().unwrap();
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(4), "{stderr}");
        assert!(took < Duration::from_secs(10), "took {took:?}");
        assert!(
            stderr.contains("connection refused, retrying in"),
            "{stderr}"
        );
        if json {
            let lines = json_lines(&o.stdout);
            assert_eq!(lines.len(), 1, "only the error event on stdout");
            assert_eq!(lines[0]["kind"], "network");
        }
    }
}

/// Defect 8: a byte-order mark, a missing torrent file, unknown 6pan tasks, an empty
/// batch file.
#[tokio::test(flavor = "multi_thread")]
async fn small_input_mistakes_get_plain_answers() {
    let env = env().await;
    let input = env.path("bom.txt");
    std::fs::write(&input, format!("\u{feff}{}\n", env.url(1))).unwrap();
    let o = env
        .run(&["--json", "add", "--from", input.to_str().unwrap()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(json_lines(&o.stdout)[0]["state"], "submitted");

    for provider in ["123pan", "6pan"] {
        let o = env
            .run(&["--provider", provider, "add", "missing.torrent"])
            .await;
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(6), "{}", text(&o));
        assert!(stderr.contains("no such file"), "{stderr}");
        assert!(!stderr.to_lowercase().contains("invalid url"), "{stderr}");
    }
    for cmd in ["wait", "rm"] {
        let o = env.run(&["--provider", "6pan", cmd, "UNKNOWN"]).await;
        assert_eq!(o.status.code(), Some(3), "{cmd}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
    }
    let empty = env.path("empty.txt");
    std::fs::write(&empty, "# nothing\n\n").unwrap();
    let o = env.run(&["add", "--from", empty.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds no URL"));
}

/// Defect 9: wrong credentials have their own exit code; a config error carries no
/// credentials hint when credentials are set; the https refusal names the flag.
#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_follow_the_table() {
    let env = env().await;
    let o = env.run(&["status", "1"]).await;
    // Task 1 does not exist: a provider error.
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let mut c = env.cmd(&["status", "1"]);
    c.env("OFFLINE_123PAN_CLIENT_SECRET", "wrong")
        .env("OFFLINE_CACHE_DIR", env.path("other-cache"));
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    let o = made_up_client("http://10.0.0.1", &env.cache())
        .args(["status", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("--insecure-http"), "{stderr}");
    assert!(!stderr.contains("set OFFLINE_123PAN"), "{stderr}");
    let o = Command::new(BIN).args(["add", "--bogus"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(BIN)
        .args(["--json", "add", "--bogus"])
        .output()
        .unwrap();
    let lines = json_lines(&o.stdout);
    assert_eq!(lines[0]["event"], "error");
    assert_eq!(lines[0]["kind"], "usage");
}

/// Defect 10: Ctrl-C during a batch: one line, the journal consistent, exit 130.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_a_batch_cleanly() {
    let env = with_latency(Duration::from_millis(30)).await;
    let input = env.path("urls.txt");
    write_lines(&input, &(0..200).map(|i| env.url(i)).collect::<Vec<_>>());
    let child = env
        .cmd(&[
            "--rate-limit",
            "offline_download=50",
            "add",
            "--from",
            input.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(30), || env.emu.tasks().len() >= 5).await;
    let stderr = interrupt(child).await;
    assert!(stderr.contains("offline status --from"), "{stderr}");
    let rows = journal_rows(&env.path("urls.txt.journal.sqlite"));
    assert!(
        rows.iter().all(|r| r.1 == "submitted" || r.1 == "pending"),
        "{rows:?}"
    );
    let submitted = rows.iter().filter(|r| r.1 == "submitted").count();
    assert_eq!(
        submitted,
        env.emu.tasks().len(),
        "every task is in the journal"
    );
    assert!(submitted < 200, "stopped early");
}

/// Defect 10: Ctrl-C during `wait`: exit 130 and one line naming the command that
/// shows the tasks. The emulator fetches the source at 100 bytes/s, so the task runs
/// for 10 s and the signal always lands while `wait` is watching it.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_wait_says_where_the_tasks_are() {
    let env = with_config(EmulatorConfig {
        fetch_rate: Some(100),
        ..EmulatorConfig::default()
    })
    .await;
    let o = env.run(&["--json", "add", &env.url(1)]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let task = json_lines(&o.stdout)[0]["task"]
        .as_str()
        .unwrap()
        .to_owned();
    let running = || {
        env.emu
            .tasks()
            .iter()
            .all(|t| t.status == offline_emulator::TaskStatus::Running)
    };

    // JSON: the first progress event says the wait is watching; then Ctrl-C.
    // The reader stays open to the end: a closed stdout would end the wait quietly.
    let mut waiting = Running::spawn(&mut env.cmd(&["--json", "wait", &task]));
    let first = tokio::task::block_in_place(|| waiting.json_line());
    assert_eq!(first["event"], "progress", "{first}");
    assert!(
        running(),
        "the task is still running when the signal is sent"
    );
    sigint(waiting.id());
    let o = tokio::task::block_in_place(|| waiting.wait());
    let (rest, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(130), "{rest}\n{stderr}");
    let last: Value = rest
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{rest}\n{stderr}"));
    assert_eq!(last["event"], "interrupted", "{rest}");
    assert_eq!(last["command"], format!("offline status {task}"));
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("keep running on the drive"),
        "{last}"
    );

    // Human: the wait fetches its own token (no cache); once the emulator has answered
    // it, the wait starts watching at once, and the task runs for seconds more.
    let tokens = env.emu.token_requests();
    let child = env
        .cmd(&["--no-token-cache", "wait", &task])
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(20), || {
        env.emu.token_requests() != tokens
    })
    .await;
    assert!(
        env.emu.token_requests() > tokens,
        "the wait asked for a token"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        running(),
        "the task is still running when the signal is sent"
    );
    let stderr = interrupt(child).await;
    assert!(
        stderr.contains(&format!("`offline status {task}` shows them")),
        "{stderr}"
    );
}

/// Token cache: N sequential runs fetch one token; `logout` deletes it.
#[tokio::test(flavor = "multi_thread")]
async fn sequential_runs_share_one_cached_token() {
    let env = env().await;
    let o = env.run(&["--json", "add", &env.url(1)]).await;
    let task = json_lines(&o.stdout)[0]["task"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..5 {
        let o = env.run(&["status", &task]).await;
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    assert_eq!(env.emu.token_requests(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for e in std::fs::read_dir(env.path("cache")).unwrap() {
            let e = e.unwrap();
            if e.path().extension().is_some_and(|x| x == "json") {
                assert_eq!(e.metadata().unwrap().permissions().mode() & 0o777, 0o600);
            }
        }
    }
    let o = env.run(&["logout"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = env.run(&["status", &task]).await;
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(env.emu.token_requests(), 2);
}

// Issue 10 #4: one `status` against a server that accepts and never answers took
// 505-557 s (a 60 s timeout, nine attempts). A call now stops at its deadline, 120 s
// by default; `--call-timeout 2` makes it 2 s, the request in flight included.
#[test]
fn a_silent_server_is_given_up_at_the_call_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and holds every connection, answering nothing, for 60 s at most.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            match listener.accept() {
                Ok((sock, _)) => held.push(sock),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let o = made_up_client(&format!("http://{addr}"), dir.path())
        .args(["--json", "--call-timeout", "2", "status", "1"])
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}: {stderr}");
    let lines = json_lines(&o.stdout);
    assert_eq!(lines[0]["kind"], "network", "{lines:?}");
}

// Issue 10 #12: 6pan task names come from the server (here a magnet's `dn`, decoded);
// control characters in them reach a terminal escaped, and JSON keeps them exact.
#[tokio::test(flavor = "multi_thread")]
async fn server_task_names_are_escaped_for_people() {
    let env = env().await;
    let magnet =
        "magnet:?xt=urn:btih:722fe65b2aa26d14f35b4ad627d20236e481d924&dn=a%1B%5D0%3Bpwned%07b%0Dc";
    let o = env.run(&["--provider", "6pan", "add", magnet]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    let task = printed
        .split_whitespace()
        .nth(2)
        .expect("created task ID (name) in PATH")
        .to_owned();
    let o = env.run(&["--provider", "6pan", "status", &task]).await;
    let status = String::from_utf8_lossy(&o.stdout).into_owned();
    for out in [&printed, &status] {
        for c in ['\u{1b}', '\u{7}', '\r'] {
            assert!(!out.contains(c), "{c:?} printed raw: {out:?}");
        }
        assert!(out.contains("a\\u{1b}]0;pwned\\u{7}b\\u{d}c"), "{out}");
    }
    let o = env
        .run(&["--provider", "6pan", "--json", "status", &task])
        .await;
    assert_eq!(json_lines(&o.stdout)[0]["name"], "a\u{1b}]0;pwned\u{7}b\rc");
}

// No flag is silently ignored: connection options given before a command that talks
// to no provider are refused (exit 2), not dropped.
#[test]
fn connection_options_before_a_local_command_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.txt");
    std::fs::write(&file, "x").unwrap();
    let file = file.to_str().unwrap();
    for (flags, command) in [
        (&["--call-timeout", "5"][..], &["hash", file][..]),
        (
            &["--rate-limit", "offline_download=2"][..],
            &["torrent", "inspect", file][..],
        ),
        (
            &["--base-url", "http://127.0.0.1:1"][..],
            &["completions", "bash"][..],
        ),
    ] {
        let o = Command::new(BIN)
            .args(flags)
            .args(command)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flags:?} {command:?}: {err}");
        assert!(
            err.contains(&format!("{} is a connection option", flags[0])),
            "{err}"
        );
    }
    let o = Command::new(BIN).args(["hash", file]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
}
