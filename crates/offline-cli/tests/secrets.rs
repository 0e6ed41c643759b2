//! Secrets never show: the real `offline` binary, run with `RUST_LOG=trace` against an
//! emulator whose client secret, 6pan password and every issued token carry a sentinel,
//! prints none of them on stdout or stderr (human or `--json` output, logs, errors),
//! and its token cache holds tokens only (never a secret or a password digest); and
//! `Debug` of every value that holds a secret prints `***` instead.
//!
//! The `offline emulator` command prints the credentials the emulator accepts by design
//! (both providers', for the user to copy): its own, the demo's or those given to its
//! flags, never the client's secrets from `OFFLINE_*` variables, which the last test
//! checks.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use offline_emulator::EmulatorConfig;
use serde_json::Value;

mod common;
use common::{
    emulator_command, octets, offline_at, seed_files, seeded_torrent, Env, Running, SEED,
};

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
/// Client-side credentials of a user's own, in `OFFLINE_*` variables.
const USER_CLIENT_ID: &str = "SENTINEL-clientid-4b1e";
const USER_ACCOUNT: &str = "SENTINEL-account-2a6d@example.com";

struct Setup {
    /// Its directory holds the token caches: `cache` (shared by the runs, as a user's
    /// is) and the fresh ones of the runs that must not find a cached token.
    env: Env,
    /// Every output seen, with the command that printed it.
    seen: Vec<(String, String)>,
    /// Secrets that are not marked: the MD5 digests 6pan logins send.
    digests: Vec<String>,
    fresh_caches: usize,
}

impl Setup {
    /// The token cache the runs share.
    fn cache(&self) -> PathBuf {
        self.env.cache()
    }

    /// A token cache of its own, for a run that must reach the provider with its
    /// credentials (a wrong secret would otherwise be answered from the cache).
    fn fresh_cache(&mut self) -> PathBuf {
        self.fresh_caches += 1;
        self.env.path(&format!("cache-{}", self.fresh_caches))
    }

    /// Runs `offline` with `RUST_LOG=trace`, the given environment and arguments and
    /// the shared token cache; returns the exit code and the stdout's JSON lines, and
    /// records everything printed.
    fn run(&mut self, env: &[(&str, &str)], args: &[&str]) -> (i32, Vec<Value>) {
        let cache = self.cache();
        self.run_in(&cache, env, args)
    }

    /// [`run`](Self::run) with the token cache `cache`.
    fn run_in(&mut self, cache: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, Vec<Value>) {
        let out = offline_at(&self.env.emu.base_url(), cache)
            .args(args)
            .env("RUST_LOG", "trace")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let lines = common::json_values(stdout.as_bytes());
        self.seen.push((
            args.join(" "),
            format!("{stdout}\n--- stderr ---\n{stderr}"),
        ));
        (out.status.code().unwrap_or(-1), lines)
    }

    fn pan123(&mut self, args: &[&str]) -> (i32, Vec<Value>) {
        let id = self.env.emu.client_id().to_owned();
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

    /// Fails if a token cache file holds a secret or a password digest (tokens are
    /// what it is for); returns how many files held a token.
    fn assert_cache_holds_no_secret(&self) -> usize {
        let mut tokens = 0;
        for dir in std::fs::read_dir(self.env.dir.path()).unwrap() {
            let dir = dir.unwrap().path();
            if !dir.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&dir).unwrap() {
                let path = file.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for secret in [CLIENT_SECRET, WRONG_SECRET, PASSWORD, WRONG_PASSWORD]
                    .into_iter()
                    .chain(self.digests.iter().map(String::as_str))
                {
                    assert!(
                        !text.contains(secret),
                        "{} holds a secret: {text}",
                        path.display()
                    );
                }
                tokens += usize::from(text.contains(TOKEN_PREFIX));
            }
        }
        tokens
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
    let files = [("ok.bin".to_owned(), octets(5, 20_000))]
        .into_iter()
        .chain(seed_files("text/plain", &SEED));
    let env = Env::start(config, 200.0, files).await;
    let digests = [PASSWORD, WRONG_PASSWORD]
        .iter()
        .map(|p| {
            offline_proto::sixpan::api::password_digest(p)
                .expose()
                .to_owned()
        })
        .collect();
    Setup {
        env,
        seen: Vec::new(),
        digests,
        fresh_caches: 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_output_logs_or_errors() {
    let mut s = setup().await;
    let ok = s.env.src.file_url("ok.bin");
    let missing = s.env.src.file_url("missing.bin");
    let callback = s.env.src.callback_url();
    let dir = tempfile::tempdir().unwrap();
    let torrent = seeded_torrent(&s.env.src, &SEED, &dir.path().join("pack.torrent"));
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
            .and_then(|l| l["task"].as_str())
            .map(str::to_owned)
            .expect("a task was created (its ID a string)");
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
        // Errors: a wrong secret, a forged access token (both refused credentials,
        // exit 7, reaching the emulator: a fresh token cache each), an invalid request.
        let id = s.env.emu.client_id().to_owned();
        for json in [true, false] {
            let mut args = vec!["status", task.as_str()];
            if json {
                args.push("--json");
            }
            let cache = s.fresh_cache();
            let (code, _) = s.run_in(
                &cache,
                &[
                    ("OFFLINE_123PAN_CLIENT_ID", &id),
                    ("OFFLINE_123PAN_CLIENT_SECRET", WRONG_SECRET),
                ],
                &args,
            );
            assert_eq!(code, 7);
            let cache = s.fresh_cache();
            let (code, _) = s.run_in(
                &cache,
                &[("OFFLINE_123PAN_ACCESS_TOKEN", FORGED_TOKEN)],
                &args,
            );
            assert_eq!(code, 7);
        }
        let (code, _) = s.pan123(&["add", "ftp://example.com/x", "--json"]);
        assert_eq!(code, 6);
        // A user's own credentials that the emulator does not know: refused, and
        // never printed.
        let cache = s.fresh_cache();
        let (code, _) = s.run_in(
            &cache,
            &[
                ("OFFLINE_123PAN_CLIENT_ID", USER_CLIENT_ID),
                ("OFFLINE_123PAN_CLIENT_SECRET", CLIENT_SECRET),
            ],
            &["status", &task, "--json"],
        );
        assert_eq!(code, 7);
        // Secrets on the command line, in commands refused before anything is sent.
        for json in [true, false] {
            let mut cases: Vec<Vec<&str>> = vec![
                vec![
                    "--provider",
                    "6pan",
                    "add",
                    &ok,
                    "--client-secret",
                    CLIENT_SECRET,
                ],
                vec!["status", &task, "--password", PASSWORD],
                vec!["add", "--client-secret", CLIENT_SECRET],
                vec!["--client-secret", CLIENT_SECRET, "add", &ok, "--bogus"],
            ];
            for case in &mut cases {
                if json {
                    case.push("--json");
                }
                let (code, _) = s.run(&[], case);
                assert_eq!(code, 2, "{case:?}");
            }
        }

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
        let cache = s.fresh_cache();
        let (code, _) = s.run_in(
            &cache,
            &[("OFFLINE_6PAN_TOKEN", FORGED_TOKEN)],
            &["--provider", "6pan", "list", "--json"],
        );
        assert_eq!(code, 7);
        for json in [true, false] {
            let mut args = vec!["--provider", "6pan", "login"];
            if json {
                args.push("--json");
            }
            for account in [ACCOUNT, USER_ACCOUNT] {
                let cache = s.fresh_cache();
                let (code, _) = s.run_in(
                    &cache,
                    &[
                        ("OFFLINE_6PAN_ACCOUNT", account),
                        ("OFFLINE_6PAN_PASSWORD", WRONG_PASSWORD),
                    ],
                    &args,
                );
                assert_eq!(code, 7, "{account}");
            }
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
    assert!(s.env.emu.token_requests() > 0);
    assert!(s.env.emu.sixpan_logins() > 0);
    assert!(s.env.emu.uploaded_chunks() > 0);
    s.assert_clean();
    // The cache did keep tokens (of both providers), and nothing else.
    assert!(s.assert_cache_holds_no_secret() >= 2);
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

/// `offline emulator` prints the credentials it accepts, both providers' (the demo's,
/// or those given to its own flags), and nothing of the client's: with every
/// `OFFLINE_*` credential variable set to a sentinel and `RUST_LOG=trace`, neither its
/// output nor its logs show one.
#[test]
fn the_emulator_command_shows_only_its_own_credentials() {
    let client_env = [
        ("OFFLINE_123PAN_CLIENT_ID", USER_CLIENT_ID),
        ("OFFLINE_123PAN_CLIENT_SECRET", CLIENT_SECRET),
        ("OFFLINE_123PAN_ACCESS_TOKEN", FORGED_TOKEN),
        ("OFFLINE_6PAN_ACCOUNT", USER_ACCOUNT),
        ("OFFLINE_6PAN_PASSWORD", PASSWORD),
        ("OFFLINE_6PAN_TOKEN", STATIC_TOKEN),
    ];
    // Starts it, reads what it prints on starting (the human form ends its block with
    // `stop with Ctrl-C`; JSON is one line), stops it; stdout's block and stderr.
    let start = |json: bool, flags: &[&str]| -> (String, String) {
        let mut cmd = emulator_command(&["--addr", "127.0.0.1:0"]);
        cmd.args(flags)
            .envs(client_env)
            .env("RUST_LOG", "trace")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped());
        if json {
            cmd.arg("--json");
        }
        let mut emu = Running::spawn(&mut cmd);
        let printed = if json {
            emu.line()
        } else {
            emu.block().join("\n")
        };
        // SIGTERM: it stops cleanly and removes its temporary data directory.
        let out = emu.terminate();
        (printed, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let demo = EmulatorConfig::default();
    for json in [true, false] {
        let (printed, logs) = start(json, &[]);
        for (what, text) in [("output", &printed), ("logs", &logs)] {
            assert!(!text.contains(MARK), "{what} shows a client secret: {text}");
        }
        // Both providers' demo credentials, to be copied.
        for cred in [
            &demo.client_id,
            &demo.client_secret,
            &demo.sixpan_account,
            &demo.sixpan_password,
        ] {
            assert!(printed.contains(cred.as_str()), "{cred} missing: {printed}");
        }
        if json {
            let v: Value = serde_json::from_str(&printed).unwrap();
            assert_eq!(v["client_id"], demo.client_id.as_str());
            assert_eq!(v["client_secret"], demo.client_secret.as_str());
            assert_eq!(v["account"], demo.sixpan_account.as_str());
            assert_eq!(v["password"], demo.sixpan_password.as_str());
        }
    }
    // Credentials given to its own flags are the ones it accepts, so those it prints.
    let own = [
        ("--client-id", "own-client"),
        ("--client-secret", "own-secret"),
        ("--account", "own@example.com"),
        ("--password", "own-password"),
    ];
    let flags: Vec<&str> = own.iter().flat_map(|(f, v)| [*f, *v]).collect();
    let (printed, logs) = start(true, &flags);
    assert!(
        !printed.contains(MARK) && !logs.contains(MARK),
        "{printed}\n{logs}"
    );
    let v: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(v["client_id"], "own-client");
    assert_eq!(v["client_secret"], "own-secret");
    assert_eq!(v["account"], "own@example.com");
    assert_eq!(v["password"], "own-password");
    assert!(!printed.contains(demo.client_secret.as_str()), "{printed}");
}
