//! `offline emulator`'s command-line face, through the real binary: what it refuses
//! before binding anything, what it prints (both providers' credentials and `try:`
//! commands that work when pasted), and that SIGTERM stops it cleanly, removing its
//! temporary data directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod common;
use common::{emulator_command, Running, BIN, CLIENT_VARS};

/// Starts `offline emulator ARGS` (with `PATH` set to `path` if given), its stderr
/// captured.
fn start(args: &[&str], path: Option<&str>) -> Running {
    let mut cmd = emulator_command(args);
    cmd.stderr(Stdio::piped());
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    Running::spawn(&mut cmd)
}

/// Runs `offline emulator ARGS`, which must exit with `code`: its output and stderr.
fn exits(args: &[&str], code: i32) -> (Output, String) {
    let o = emulator_command(args).output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {e}");
    (o, e)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_non_loopback_address_needs_public_and_is_refused_before_binding() {
    // 192.0.2.1 (TEST-NET-1) is no address of this machine: binding it would fail with
    // exit 6, so exit 2 says the address was refused before any bind.
    let (o, e) = exits(&["--addr", "192.0.2.1:8123"], 2);
    assert!(
        e.contains("192.0.2.1:8123 is not a loopback address"),
        "{e}"
    );
    assert!(e.contains("--public"), "{e}");
    assert!(o.stdout.is_empty());
    // Every non-loopback address, the unspecified one too.
    exits(&["--addr", "0.0.0.0:0"], 2);
    // With --json: one `error` event of kind `usage`, and no provider (it serves both).
    let (o, _) = exits(&["--addr", "192.0.2.1:8123", "--json"], 2);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["event"], "error");
    assert_eq!(v["kind"], "usage");
    assert_eq!(v["exit_code"], 2);
    assert!(v.get("provider").is_none(), "{v}");
    // With --public it goes on to bind, which fails here: a configuration error that
    // names the address.
    let (_, e) = exits(&["--addr", "192.0.2.1:8123", "--public"], 6);
    assert!(e.contains("cannot listen on 192.0.2.1:8123"), "{e}");
    // ... after a warning that anyone who reaches it can use it (issue 10 #16).
    assert!(
        e.contains("warning: listening on 192.0.2.1:8123, a non-loopback address"),
        "{e}"
    );
}

#[test]
fn shares_outside_0_to_1_are_refused() {
    for (flag, value) in [
        ("--fault-rate", "1.5"),
        ("--callback-lost", "2"),
        ("--callback-twice", "x"),
    ] {
        let (o, e) = exits(&["--addr", "127.0.0.1:0", flag, value], 2);
        assert!(e.contains(flag) && e.contains(value), "{e}");
        assert!(o.stdout.is_empty());
    }
    let (_, e) = exits(&["--addr", "127.0.0.1:0", "--fault-rate", "1.5"], 2);
    assert!(e.contains("1.5 is not between 0 and 1"), "{e}");
}

#[test]
fn a_bad_data_dir_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    // A regular file, and a directory under one.
    for bad in [file.clone(), file.join("sub")] {
        let (_, e) = exits(
            &["--addr", "127.0.0.1:0", "--data-dir", bad.to_str().unwrap()],
            6,
        );
        assert!(
            e.contains(&format!("cannot use the data directory {}", bad.display())),
            "{e}"
        );
    }
    // A directory it may not write to (not as root: root writes anywhere).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.path().join("read-only");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        if std::fs::write(ro.join("probe"), b"").is_err() {
            let (_, e) = exits(
                &["--addr", "127.0.0.1:0", "--data-dir", ro.to_str().unwrap()],
                6,
            );
            assert!(e.contains("data directory"), "{e}");
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}

#[test]
fn sigterm_removes_the_temporary_data_dir_and_keeps_a_given_one() {
    let mut emu = start(&["--addr", "127.0.0.1:0", "--json"], None);
    let v = emu.json_line();
    assert_eq!(v["event"], "emulator");
    let data_dir = PathBuf::from(v["data_dir"].as_str().unwrap());
    assert!(data_dir.is_dir(), "{}", data_dir.display());
    let o = emu.terminate();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        !data_dir.exists(),
        "{} is still there after SIGTERM",
        data_dir.display()
    );

    // A --data-dir of the user's is theirs: kept.
    let dir = tempfile::tempdir().unwrap();
    let given = dir.path().join("data");
    let mut emu = start(
        &[
            "--addr",
            "127.0.0.1:0",
            "--json",
            "--data-dir",
            given.to_str().unwrap(),
        ],
        None,
    );
    let v = emu.json_line();
    assert_eq!(Path::new(v["data_dir"].as_str().unwrap()), given);
    let o = emu.terminate();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(given.is_dir());
}

/// Runs a pasted command line in `sh`, with no client credentials of the user's and a
/// private token cache.
fn paste(command: &str, path: &str, cache: &Path) -> Output {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", command])
        .env("PATH", path)
        .env("OFFLINE_CACHE_DIR", cache)
        .stdin(Stdio::null());
    for var in CLIENT_VARS {
        cmd.env_remove(var);
    }
    cmd.output().unwrap()
}

#[test]
fn it_prints_both_providers_credentials_and_try_lines_that_work_when_pasted() {
    let demo = offline_emulator::EmulatorConfig::default();
    let bin_dir = Path::new(BIN).parent().unwrap().display().to_string();
    let system_path = std::env::var("PATH").unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    // Not on PATH (as under `cargo run`): the lines name this executable; on PATH:
    // `offline`.
    for (path, program) in [
        (system_path.clone(), BIN.to_owned()),
        (format!("{bin_dir}:{system_path}"), "offline".to_owned()),
    ] {
        let mut emu = start(&["--addr", "127.0.0.1:0"], Some(&path));
        let block = emu.block();
        let text = block.join("\n");
        let base = block[0]
            .strip_prefix("emulator listening on ")
            .unwrap_or_else(|| panic!("{text}"))
            .to_owned();
        for (label, value) in [
            ("123pan client ID:", &demo.client_id),
            ("123pan client secret:", &demo.client_secret),
            ("6pan account:", &demo.sixpan_account),
            ("6pan password:", &demo.sixpan_password),
        ] {
            assert!(
                block
                    .iter()
                    .any(|l| l.trim_start().starts_with(label) && l.ends_with(value.as_str())),
                "{label} {value}: {text}"
            );
        }
        let at = block
            .iter()
            .position(|l| l.starts_with("try: "))
            .unwrap_or_else(|| panic!("no try line: {text}"));
        let first = block[at].strip_prefix("try: ").unwrap();
        let second = block[at + 1].trim_start();
        for command in [first, second] {
            assert!(
                command.contains(&format!(" {program} --")),
                "{program}: {command}"
            );
            assert!(command.contains(&base), "{command}");
        }
        let cache = dir.path().join("cache");
        // 123pan: a download of the emulator's own API description, watched to its end.
        let o = paste(first, &path, &cache);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{first}\n{out}\n{}", stderr(&o));
        assert!(out.contains("succeeded"), "{out}");
        // 6pan: the task list.
        let o = paste(second, &path, &cache);
        assert_eq!(o.status.code(), Some(0), "{second}\n{}", stderr(&o));
        let o = emu.terminate();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
}

#[test]
fn its_json_event_has_both_providers_credentials() {
    let demo = offline_emulator::EmulatorConfig::default();
    let mut emu = start(&["--addr", "127.0.0.1:0", "--json"], None);
    let v = emu.json_line();
    assert_eq!(v["event"], "emulator");
    assert!(v["base_url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    assert_eq!(v["client_id"], demo.client_id.as_str());
    assert_eq!(v["client_secret"], demo.client_secret.as_str());
    assert_eq!(v["account"], demo.sixpan_account.as_str());
    assert_eq!(v["password"], demo.sixpan_password.as_str());
    assert!(v.get("provider").is_none(), "it serves both: {v}");
    let o = emu.terminate();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// A raw HTTP/1.1 `PUT /_emulator/faults` to `base` (with `token` as the bearer token
/// when given): the status code of the answer.
fn put_faults(base: &str, token: Option<&str>) -> u16 {
    use std::io::{Read as _, Write as _};
    let addr = base.trim_start_matches("http://");
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    let body = r#"{"seed": 3, "server_error": 0.5}"#;
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    write!(
        sock,
        "PUT /_emulator/faults HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{auth}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    sock.read_to_string(&mut answer).unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

// Issue 11: the admin token the control API wants is printed at start (text and
// --json), set with --admin-token or made at random, and works.
#[test]
fn the_admin_token_is_printed_and_guards_the_control_api() {
    let mut emu = start(
        &[
            "--addr",
            "127.0.0.1:0",
            "--json",
            "--admin-token",
            "admin-s3cret",
        ],
        None,
    );
    let v = emu.json_line();
    assert_eq!(v["admin_token"], "admin-s3cret");
    let base = v["base_url"].as_str().unwrap().to_owned();
    assert_eq!(put_faults(&base, None), 401);
    assert_eq!(put_faults(&base, Some("wrong")), 401);
    assert_eq!(put_faults(&base, Some("admin-s3cret")), 200);
    emu.terminate();

    // Without the flag: a random token, printed in the text form too.
    let mut emu = start(&["--addr", "127.0.0.1:0"], None);
    let block = emu.block();
    let token = block
        .iter()
        .find_map(|l| l.trim().strip_prefix("admin token:"))
        .unwrap_or_else(|| panic!("no admin token line: {block:?}"))
        .trim()
        .to_owned();
    assert!(token.len() >= 16, "{token}");
    let base = block[0].rsplit(' ').next().unwrap().to_owned();
    assert_eq!(put_faults(&base, Some(&token)), 200);
    emu.terminate();
}
