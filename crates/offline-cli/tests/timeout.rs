//! The whole command's deadline, `--timeout SECS`, through the real binary: a call in
//! flight at the deadline is cut and ends the command with its own error; a deadline
//! that passes between calls (a `wait` between polls) ends it with exit 9; commands
//! that run until stopped refuse it. (Which command has which default is a unit test
//! of `commands::command_timeout`.)

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use offline_emulator::EmulatorConfig;

mod common;
use common::{bin_and_png, json_lines, kill, offline_at, Env, BIN};

/// Runs `cmd` to its end, which must come within `within` (else it is killed and the
/// test fails): its output and how long it took.
fn finish(cmd: &mut Command, within: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("it starts");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(within) {
        Ok(output) => (output.unwrap(), started.elapsed()),
        Err(_) => {
            kill("-KILL", pid);
            panic!("still running after {within:?}");
        }
    }
}

/// [`finish`] off the async runtime's threads.
async fn finish_async(mut cmd: Command, within: Duration) -> (Output, Duration) {
    tokio::task::spawn_blocking(move || finish(&mut cmd, within))
        .await
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A loopback server that accepts every connection and never answers (for 60 s at
/// most); its base URL.
fn silent_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
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
    format!("http://{addr}")
}

// `status` against a server that never answers: the request in flight (the token
// request) is cut at the 1 s deadline, long before the 120 s call deadline, and the
// command ends with that call's own error, a network error (exit 4). Before or after
// the command, human or JSON.
#[test]
fn a_silent_server_is_given_up_at_the_command_deadline() {
    let base = silent_server();
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--timeout", "1", "status", "1"][..],
        &["status", "1", "--timeout", "1"],
        &["--json", "status", "1", "--timeout", "1"],
    ] {
        let mut cmd = offline_at(&base, dir.path());
        cmd.env("OFFLINE_123PAN_CLIENT_ID", "id")
            .env("OFFLINE_123PAN_CLIENT_SECRET", "secret")
            .args(args);
        let (o, took) = finish(&mut cmd, Duration::from_secs(60));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(4), "{args:?}: {err}");
        assert!(
            took < Duration::from_secs(15),
            "{args:?}: took {took:?}: {err}"
        );
        if args.contains(&"--json") {
            let lines = json_lines(&o.stdout);
            assert_eq!(lines[0]["kind"], "network", "{lines:?}");
            assert!(
                lines[0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("no answer before the command's deadline"),
                "{lines:?}"
            );
        } else {
            assert!(
                err.contains("no answer before the command's deadline"),
                "{args:?}: {err}"
            );
        }
    }
}

// `wait` on tasks that never end (a 6pan magnet simulated for an hour, a 123pan
// download fetched at 1 byte a second): the deadline passes between polls and the
// command ends with exit 9, saying why.
#[tokio::test(flavor = "multi_thread")]
async fn a_wait_on_a_task_that_never_ends_times_out_with_exit_9() {
    let env = Env::start(
        EmulatorConfig {
            sixpan_simulated_duration: Duration::from_secs(3600),
            fetch_rate: Some(1),
            ..EmulatorConfig::default()
        },
        1000.0,
        bin_and_png(),
    )
    .await;
    let magnet = "magnet:?xt=urn:btih:722fe65b2aa26d14f35b4ad627d20236e481d924&dn=slow";
    let o = env
        .run(&["--json", "--provider", "6pan", "add", magnet])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let six = json_lines(&o.stdout)[0]["task"]
        .as_str()
        .unwrap()
        .to_owned();
    let o = env.run(&["--json", "add", &env.url(1)]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let task = &json_lines(&o.stdout)[0]["task"];
    let pan123 = task
        .as_str()
        .map_or_else(|| task.to_string(), str::to_owned);

    let (o, took) = finish_async(
        env.cmd(&["--provider", "6pan", "wait", &six, "--timeout", "1"]),
        Duration::from_secs(60),
    )
    .await;
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(9), "{err}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        err.contains("offline: gave up after 1 s (--timeout 1)"),
        "{err}"
    );

    let (o, _) = finish_async(
        env.cmd(&["--json", "--timeout", "1", "wait", &pan123]),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(o.status.code(), Some(9), "{}", stderr(&o));
    let lines = json_lines(&o.stdout);
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "error", "{lines:?}");
    assert_eq!(last["kind"], "timeout", "{lines:?}");
    assert_eq!(last["exit_code"], 9, "{lines:?}");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("gave up after 1 s (--timeout 1)"),
        "{lines:?}"
    );

    // `--timeout 0`: none, and a command that does not wait runs as ever.
    let (o, _) = finish_async(
        env.cmd(&["status", &pan123, "--timeout", "0"]),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

// Commands that run until stopped refuse a deadline, with exit 2 and a message saying
// why, before they start anything.
#[test]
fn commands_that_run_until_stopped_refuse_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("serve.sqlite");
    let state = state.to_str().unwrap();
    for args in [
        &["--timeout", "5", "emulator", "--addr", "127.0.0.1:0"][..],
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state",
            state,
            "--timeout",
            "5",
        ],
        &[
            "--timeout",
            "5",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state",
            state,
        ],
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("OFFLINE_CACHE_DIR", dir.path())
            .env("OFFLINE_123PAN_CLIENT_ID", "id")
            .env("OFFLINE_123PAN_CLIENT_SECRET", "secret");
        let (o, _) = finish(&mut cmd, Duration::from_secs(30));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("runs until stopped"), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}: nothing started");
    }
    assert!(
        !dir.path().join("serve.sqlite").exists(),
        "serve never started"
    );
    // `demo` (its own emulator, its own tour) takes no connection option at all.
    let (o, _) = finish(
        Command::new(BIN).args(["--timeout", "5", "demo"]),
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--timeout"), "{}", stderr(&o));
    // After `emulator` the flag is not one of its options at all.
    let (o, _) = finish(
        Command::new(BIN).args(["emulator", "--addr", "127.0.0.1:0", "--timeout", "5"]),
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
