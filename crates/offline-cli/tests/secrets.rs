//! Secrets never show: the real `offline` binary, run with `RUST_LOG=trace` against an
//! emulator whose client secret, 6pan password and every issued token carry a sentinel,
//! prints none of them on stdout or stderr (human or `--json` output, logs, errors);
//! and `Debug` of every value that holds a secret prints `***` instead.
//!
//! The `offline emulator` command prints the emulator's own client secret by design
//! (the demo credentials it accepts, for the user to copy); it is not started here.

use std::collections::BTreeMap;
use std::process::Command;

use offline_emulator::source::{ServedFile, SourceServer};
use offline_emulator::{Emulator, EmulatorConfig, EndpointId, RunningEmulator};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_offline");

/// Every sentinel below contains this; no output may.
const MARK: &str = "SENTINEL";
const CLIENT_SECRET: &str = "SENTINEL-secret-7f3a9c";
const WRONG_SECRET: &str = "SENTINEL-wrongsecret-1d2e";
const PASSWORD: &str = "SENTINEL-password-5c8b";
const WRONG_PASSWORD: &str = "SENTINEL-wrongpassword-9a0f";
/// Every token the emulator issues starts with this.
const TOKEN_PREFIX: &str = "SENTINEL-token-";
const STATIC_TOKEN: &str = "SENTINEL-token-static-3e4f";
const FORGED_TOKEN: &str = "SENTINEL-token-forged-8d7c";
const ACCOUNT: &str = "demo@offline.local";

struct Setup {
    emu: RunningEmulator,
    src: SourceServer,
    /// Every output seen, with the command that printed it.
    seen: Vec<(String, String)>,
    /// Secrets that are not marked: the MD5 digests 6pan logins send.
    digests: Vec<String>,
}

impl Setup {
    fn base(&self) -> String {
        self.emu.base_url()
    }

    /// Runs `offline` with `RUST_LOG=trace`, the given environment and arguments;
    /// returns the exit code and the stdout's JSON lines, and records everything
    /// printed.
    fn run(&mut self, env: &[(&str, &str)], args: &[&str]) -> (i32, Vec<Value>) {
        let mut cmd = Command::new(BIN);
        cmd.args(["--base-url", &self.base()])
            .args(args)
            .env("RUST_LOG", "trace")
            .env("NO_COLOR", "1");
        for var in [
            "OFFLINE_123PAN_CLIENT_ID",
            "OFFLINE_123PAN_CLIENT_SECRET",
            "OFFLINE_123PAN_ACCESS_TOKEN",
            "OFFLINE_6PAN_ACCOUNT",
            "OFFLINE_6PAN_PASSWORD",
            "OFFLINE_6PAN_TOKEN",
            "OFFLINE_PROVIDER",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let lines = stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        self.seen.push((
            args.join(" "),
            format!("{stdout}\n--- stderr ---\n{stderr}"),
        ));
        (out.status.code().unwrap_or(-1), lines)
    }

    fn pan123(&mut self, args: &[&str]) -> (i32, Vec<Value>) {
        let id = self.emu.client_id().to_owned();
        self.run(
            &[
                ("OFFLINE_123PAN_CLIENT_ID", &id),
                ("OFFLINE_123PAN_CLIENT_SECRET", CLIENT_SECRET),
            ],
            args,
        )
    }

    fn sixpan(&mut self, args: &[&str]) -> (i32, Vec<Value>) {
        let mut all = vec!["--provider", "6pan"];
        all.extend_from_slice(args);
        self.run(
            &[
                ("OFFLINE_6PAN_ACCOUNT", ACCOUNT),
                ("OFFLINE_6PAN_PASSWORD", PASSWORD),
            ],
            &all,
        )
    }

    /// Fails naming the command and the sentinel if any output shows a secret.
    fn assert_clean(&self) {
        assert!(!self.seen.is_empty());
        for (command, output) in &self.seen {
            let mut found: Vec<&str> = Vec::new();
            if output.contains(MARK) {
                found.push(MARK);
            }
            found.extend(
                self.digests
                    .iter()
                    .filter(|d| output.contains(d.as_str()))
                    .map(String::as_str),
            );
            assert!(
                found.is_empty(),
                "`offline {command}` printed a secret ({found:?}):\n{output}"
            );
        }
    }
}

async fn setup() -> Setup {
    let config = EmulatorConfig {
        client_secret: CLIENT_SECRET.to_owned(),
        sixpan_account: ACCOUNT.to_owned(),
        sixpan_password: PASSWORD.to_owned(),
        token_prefix: TOKEN_PREFIX.to_owned(),
        static_token: Some(STATIC_TOKEN.to_owned()),
        sixpan_simulated_duration: std::time::Duration::from_secs(1),
        ..EmulatorConfig::default()
    };
    let emu = Emulator::start(config).await.unwrap();
    for e in EndpointId::ALL {
        emu.set_rate_limit(e, 200.0);
    }
    let mut files = BTreeMap::new();
    files.insert(
        "ok.bin".to_owned(),
        ServedFile::new("application/octet-stream", vec![5u8; 20_000]),
    );
    for (n, d) in [("a.txt", &b"first\n"[..]), ("b.txt", &b"second\n"[..])] {
        files.insert(
            format!("seed/pack/{n}"),
            ServedFile::new("text/plain", d.to_vec()),
        );
    }
    let src = SourceServer::start(files).await.unwrap();
    let digests = [PASSWORD, WRONG_PASSWORD]
        .iter()
        .map(|p| {
            offline_proto::sixpan::api::password_digest(p)
                .expose()
                .to_owned()
        })
        .collect();
    Setup {
        emu,
        src,
        seen: Vec::new(),
        digests,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_output_logs_or_errors() {
    let mut s = setup().await;
    let ok = s.src.file_url("ok.bin");
    let missing = s.src.file_url("missing.bin");
    let callback = s.src.callback_url();
    let dir = tempfile::tempdir().unwrap();
    let torrent = {
        let mut b = offline_proto::torrent::TorrentBuilder::new("pack")
            .web_seed(format!("{}/files/seed/", s.src.base_url()));
        for (n, d) in [("a.txt", &b"first\n"[..]), ("b.txt", &b"second\n"[..])] {
            b = b.file(&[n], d.to_vec());
        }
        let path = dir.path().join("pack.torrent");
        std::fs::write(&path, b.build()).unwrap();
        path.to_string_lossy().into_owned()
    };
    // Over 4 MiB: a block upload, its upload token in every block call.
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![3u8; 5 * 1024 * 1024]).unwrap();
    let big = big.to_string_lossy().into_owned();
    let batch = dir.path().join("batch.txt");
    std::fs::write(&batch, format!("{ok}\n{missing}\n")).unwrap();
    let batch = batch.to_string_lossy().into_owned();

    let mut s = tokio::task::spawn_blocking(move || {
        // 123pan: a task that succeeds and one that fails, watched to the end.
        let (code, lines) = s.pan123(&[
            "add",
            &ok,
            &missing,
            "--callback",
            &callback,
            "--wait",
            "--json",
        ]);
        assert_eq!(code, 1, "{lines:?}");
        let task = lines
            .iter()
            .find(|l| l["event"] == "created")
            .map(|l| l["task"].to_string())
            .expect("a task was created");
        let (code, _) = s.pan123(&["add", &ok, "--wait"]);
        assert_eq!(code, 0);
        let (code, _) = s.pan123(&["status", &task, "--json"]);
        assert_eq!(code, 0);
        let (code, _) = s.pan123(&["status", &task]);
        assert_eq!(code, 0);
        let (code, _) = s.pan123(&["wait", &task, "--json"]);
        assert_eq!(code, 0);
        let (code, _) = s.pan123(&["add", "--from", &batch, "--json"]);
        assert_eq!(code, 0);
        let (code, _) = s.pan123(&["status", "--from", &batch]);
        assert_eq!(code, 0);
        // Errors: a wrong secret, a forged access token, an invalid request.
        let id = s.emu.client_id().to_owned();
        for json in [true, false] {
            let mut args = vec!["status", task.as_str()];
            if json {
                args.push("--json");
            }
            let (code, _) = s.run(
                &[
                    ("OFFLINE_123PAN_CLIENT_ID", &id),
                    ("OFFLINE_123PAN_CLIENT_SECRET", WRONG_SECRET),
                ],
                &args,
            );
            assert_eq!(code, 3);
            let (code, _) = s.run(&[("OFFLINE_123PAN_ACCESS_TOKEN", FORGED_TOKEN)], &args);
            assert_eq!(code, 3);
        }
        let (code, _) = s.pan123(&["add", "ftp://example.com/x", "--json"]);
        assert_eq!(code, 6);

        // 6pan: log in, add a link and a torrent file (an upload with an upload token),
        // list, with the account and with a ready token; then the errors.
        let (code, lines) = s.sixpan(&["login", "--json"]);
        assert_eq!(code, 0, "{lines:?}");
        let (code, lines) = s.sixpan(&["add", &ok, "--wait", "--json"]);
        assert_eq!(code, 0, "{lines:?}");
        let (code, lines) = s.sixpan(&["add", &torrent, "--json"]);
        assert_eq!(code, 0, "{lines:?}");
        assert_eq!(lines[0]["event"], "uploaded");
        assert_eq!(lines[0]["instant"], false);
        let (code, lines) = s.sixpan(&["upload", &big, "--json"]);
        assert_eq!(code, 0, "{lines:?}");
        let (code, _) = s.sixpan(&["upload", &big]);
        assert_eq!(code, 0);
        let (code, _) = s.sixpan(&["list", "--json"]);
        assert_eq!(code, 0);
        let (code, _) = s.sixpan(&["list"]);
        assert_eq!(code, 0);
        let token_env = [("OFFLINE_6PAN_TOKEN", STATIC_TOKEN)];
        let (code, _) = s.run(&token_env, &["--provider", "6pan", "list", "--json"]);
        assert_eq!(code, 0);
        let (code, _) = s.run(&token_env, &["--provider", "6pan", "add", &ok, "--json"]);
        assert_eq!(code, 0);
        let (code, _) = s.run(
            &[("OFFLINE_6PAN_TOKEN", FORGED_TOKEN)],
            &["--provider", "6pan", "list", "--json"],
        );
        assert_eq!(code, 3);
        for json in [true, false] {
            let mut args = vec!["--provider", "6pan", "login"];
            if json {
                args.push("--json");
            }
            let (code, _) = s.run(
                &[
                    ("OFFLINE_6PAN_ACCOUNT", ACCOUNT),
                    ("OFFLINE_6PAN_PASSWORD", WRONG_PASSWORD),
                ],
                &args,
            );
            assert_eq!(code, 3);
        }
        s
    })
    .await
    .unwrap();

    // The runs did log at trace level (so the check means something) and the emulator
    // did hand out marked tokens.
    assert!(s
        .seen
        .iter()
        .any(|(_, out)| out.contains("TRACE") || out.contains("DEBUG")));
    assert!(s.emu.token_requests() > 0);
    assert!(s.emu.sixpan_logins() > 0);
    assert!(s.emu.uploaded_chunks() > 0);
    s.assert_clean();
    // A leak would be caught: the check sees a token in the output.
    s.seen
        .push(("(self-test)".into(), format!("x {TOKEN_PREFIX}abc")));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.assert_clean()));
    assert!(caught.is_err());
}

/// `Debug` of every value that holds a secret shows `***` in its place.
#[test]
fn debug_hides_secrets() {
    use offline_proto::pan123::{AccessTokenData, AccessTokenRequest, OAuthToken};
    use offline_proto::sixpan::upload_token::UploadToken;
    use offline_proto::sixpan::{LoginRequest, UploadInfo};
    use offline_proto::Secret;

    let check = |what: &str, debug: String| {
        assert!(!debug.contains(MARK), "{what} shows a secret: {debug}");
        assert!(debug.contains("***"), "{what} does not say `***`: {debug}");
    };

    let pan = provider_123pan::Pan123::builder()
        .base_url("http://127.0.0.1:1")
        .client_id("id")
        .client_secret(CLIENT_SECRET)
        .access_token(FORGED_TOKEN, None);
    check("Pan123Builder", format!("{pan:?}"));
    check("Pan123", format!("{:?}", pan.build().unwrap()));

    let six = provider_6pan::SixPan::builder()
        .base_url("http://127.0.0.1:1")
        .login(ACCOUNT, PASSWORD)
        .token(STATIC_TOKEN);
    check("SixPanBuilder", format!("{six:?}"));
    check("SixPan", format!("{:?}", six.build().unwrap()));

    // {"scope":"s","deadline":1700000000000}
    let upload =
        format!("{TOKEN_PREFIX}ak:c2lnbg==:eyJzY29wZSI6InMiLCJkZWFkbGluZSI6MTcwMDAwMDAwMDAwMH0=");
    check(
        "UploadToken",
        format!("{:?}", UploadToken::parse(&upload).unwrap()),
    );
    let info: UploadInfo = serde_json::from_value(serde_json::json!({
        "token": upload, "uploadUrl": "http://127.0.0.1:1/wcs", "type": 0, "version": 1,
    }))
    .unwrap();
    check("UploadInfo", format!("{info:?}"));

    let data: AccessTokenData = serde_json::from_value(serde_json::json!({
        "accessToken": FORGED_TOKEN, "expiredAt": "2025-03-23T15:48:37+08:00",
    }))
    .unwrap();
    check("AccessTokenData", format!("{data:?}"));
    let request = AccessTokenRequest {
        client_id: "id".into(),
        client_secret: Secret::new(CLIENT_SECRET),
    };
    check("AccessTokenRequest", format!("{request:?}"));
    let oauth: OAuthToken = serde_json::from_value(serde_json::json!({
        "access_token": FORGED_TOKEN, "expires_in": 7200, "refresh_token": STATIC_TOKEN,
        "scope": "user:base", "token_type": "Bearer",
    }))
    .unwrap();
    check("OAuthToken", format!("{oauth:?}"));
    let login = LoginRequest {
        value: ACCOUNT.into(),
        password: Secret::new(PASSWORD),
        country_code: None,
        code: String::new(),
    };
    check("LoginRequest", format!("{login:?}"));
}

/// `offline emulator` prints the built-in demo secret (public, for trying the
/// emulator) but never a secret the user chose.
#[test]
fn the_emulator_command_shows_only_the_demo_secret() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    for json in [true, false] {
        let mut cmd = Command::new(BIN);
        cmd.args(["emulator", "--addr", "127.0.0.1:0"])
            .env("OFFLINE_123PAN_CLIENT_SECRET", CLIENT_SECRET)
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd.spawn().unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut printed = String::new();
        // The human form ends its block with `stop with Ctrl-C`; JSON is one line.
        while reader.read_line(&mut printed).unwrap() > 0 {
            if json || printed.contains("Ctrl-C") {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(printed.contains("***"), "{printed}");
        assert!(!printed.contains(MARK), "{printed}");
    }
    // Without a secret of the user's, the demo one is shown to be copied.
    let mut child = Command::new(BIN)
        .args(["emulator", "--addr", "127.0.0.1:0", "--json"])
        .env_remove("OFFLINE_123PAN_CLIENT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        v["client_secret"],
        EmulatorConfig::default().client_secret.as_str()
    );
}
