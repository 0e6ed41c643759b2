//! `offline login --oauth` (123pan third-party apps) as real processes against an
//! in-process emulator: the loopback redirect listener (the test plays the browser:
//! it opens the authorize URL the process prints and follows the redirect to the
//! listener), a pasted `--code`, a redirect of another state refused, and later
//! commands with only the client ID refreshing from the cached, rotating refresh
//! token.

mod common;

use std::path::Path;
use std::process::Command;

use common::{authorize, get, json_lines, outcome, output, query_value, Env, Running};
use offline_emulator::EmulatorConfig;
use serde_json::Value;
use tokio::task::block_in_place;

/// The emulator, serving `f.bin`, without rate limits.
async fn start() -> Env {
    Env::start(
        EmulatorConfig::default(),
        0.0,
        [("f.bin".to_owned(), common::octets(5, 100))],
    )
    .await
}

/// `offline --json ARGS` with the client ID only (no secret, no 6pan credentials).
fn client_id_only(env: &Env, args: &[&str]) -> Command {
    let mut c = env.cmd(&[&["--json"], args].concat());
    c.env_remove("OFFLINE_123PAN_CLIENT_SECRET");
    c
}

/// The one 123pan entry of the token cache.
fn cache_entry(cache: &Path) -> Value {
    let entries: Vec<_> = std::fs::read_dir(cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    serde_json::from_slice(&std::fs::read(&entries[0]).unwrap()).unwrap()
}

/// The cached refresh token.
fn cached_refresh(env: &Env) -> String {
    cache_entry(&env.cache())["refresh_token"]
        .as_str()
        .expect("a refresh token is cached")
        .to_owned()
}

/// Starts `login --oauth --redirect-listen 127.0.0.1:0 --json` (with the client ID and
/// secret) and reads its first line: the process and the authorize URL.
fn start_login(env: &Env) -> (Running, String, String) {
    let mut cmd = env.cmd(&[
        "--json",
        "login",
        "--oauth",
        "--redirect-listen",
        "127.0.0.1:0",
        "--oauth-timeout",
        "60",
    ]);
    let mut login = Running::spawn(&mut cmd);
    let prompt = block_in_place(|| login.json_line());
    assert_eq!(prompt["event"], "login", "{prompt}");
    assert_eq!(prompt["oauth"], true);
    assert_eq!(prompt["step"], "authorize");
    let url = prompt["authorize_url"].as_str().unwrap().to_owned();
    let redirect = prompt["redirect_uri"].as_str().unwrap().to_owned();
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    assert_eq!(
        query_value(&url, "redirect_uri").as_deref(),
        Some(redirect.as_str())
    );
    (login, url, redirect)
}

/// Plays the browser: opens the authorize URL, follows its redirect to the listener;
/// the listener's answer.
async fn approve(url: &str) -> common::Got {
    let page = get(url).await;
    assert_eq!(page.status, 302, "{}", page.body);
    get(&page.location.unwrap()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn login_oauth_on_a_loopback_listener_then_commands_refresh_from_the_cache() {
    let env = start().await;
    let (mut login, url, _) = start_login(&env);
    let state = query_value(&url, "state").unwrap();
    assert_eq!(state.len(), 32, "{state}");
    let answer = approve(&url).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("authorized"), "{}", answer.body);
    let out = block_in_place(|| login.wait());
    let (code, events, stderr) = outcome(&out);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(events.last().unwrap()["ok"], true, "{events:?}");
    assert_eq!(events.last().unwrap()["oauth"], true);
    // The exchange issued one token; the refresh token is cached, never printed.
    assert_eq!(env.emu.token_requests(), 1);
    let first = cached_refresh(&env);
    let access = cache_entry(&env.cache())["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for secret in [&first, &access] {
        assert!(!String::from_utf8_lossy(&out.stdout).contains(secret.as_str()));
        assert!(!stderr.contains(secret.as_str()));
    }

    // With only the client ID, a command uses the cached OAuth access token: no token
    // request at all (and without a secret none by client credentials could be).
    let (code, events, stderr) =
        outcome(&output(client_id_only(&env, &["add", &env.url(1), "--wait"])).await);
    assert_eq!(code, 0, "{stderr} {events:?}");
    assert_eq!(
        env.emu.token_requests(),
        1,
        "the cached access token was used"
    );
    assert_eq!(env.emu.stats().pan123.tasks_created, 1);
    assert_eq!(cached_refresh(&env), first);

    // Once the access token has ended, the next command refreshes: the cache holds the
    // new refresh token, and the one it replaced is refused.
    env.emu.expire_tokens();
    let (code, _, stderr) =
        outcome(&output(client_id_only(&env, &["add", &env.url(2), "--wait"])).await);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(env.emu.token_requests(), 2, "one refresh");
    let second = cached_refresh(&env);
    assert_ne!(second, first);
    let old = provider_123pan::Pan123::builder()
        .base_url(env.emu.base_url())
        .client_id(env.emu.client_id())
        .oauth_refresh_token(first.clone(), None)
        .build()
        .unwrap();
    let err = old.ensure_token().await.unwrap_err();
    assert!(
        matches!(
            err,
            provider_123pan::Error::Api(offline_proto::ApiError::TokenInvalid(_))
        ),
        "{err:?}"
    );
    // A second process after another expiry still works, from the newest token.
    env.emu.expire_tokens();
    let (code, _, stderr) =
        outcome(&output(client_id_only(&env, &["add", &env.url(3), "--wait"])).await);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(env.emu.token_requests(), 3);
    assert_ne!(cached_refresh(&env), second);

    // `logout` deletes the OAuth credentials: the client ID alone is then not enough.
    let (code, events, _) = outcome(&output(client_id_only(&env, &["logout"])).await);
    assert_eq!((code, events[0]["removed"].as_u64()), (0, Some(1)));
    let (code, events, _) = outcome(&output(client_id_only(&env, &["login"])).await);
    assert_eq!(code, 6, "{events:?}");
    let message = events[0]["message"].as_str().unwrap();
    assert!(message.contains("offline login --oauth"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_of_another_state_is_refused_and_the_login_waits_on() {
    let env = start().await;
    let (mut login, url, redirect) = start_login(&env);
    // A forged redirect (another state) is answered 400 and changes nothing.
    let forged = get(&format!("{redirect}?code=forged&state=not-this-one")).await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    assert!(forged.body.contains("state mismatch"), "{}", forged.body);
    let no_state = get(&format!("{redirect}?code=forged")).await;
    assert_eq!(no_state.status, 400);
    assert_eq!(env.emu.token_requests(), 0);
    // The real redirect still completes the login.
    assert_eq!(approve(&url).await.status, 200);
    let (code, _, stderr) = outcome(&block_in_place(|| login.wait()));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("another state"), "{stderr}");
    assert_eq!(env.emu.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pasted_code_is_exchanged_once() {
    let env = start().await;
    let redirect = "http://127.0.0.1:9/registered";
    // Without --code, the authorize URL for the registered redirect URI is printed.
    let out = output(env.cmd(&["--json", "login", "--oauth", "--redirect-uri", redirect])).await;
    assert!(out.status.success(), "{out:?}");
    let events = json_lines(&out.stdout);
    assert_eq!(events.len(), 1, "{events:?}");
    let url = events[0]["authorize_url"].as_str().unwrap();
    assert_eq!(query_value(url, "redirect_uri").as_deref(), Some(redirect));

    let location = authorize(&env.emu, redirect, "pasted").await;
    let code = query_value(&location, "code").unwrap();
    let paste = [
        "--json",
        "login",
        "--oauth",
        "--redirect-uri",
        redirect,
        "--code",
        &code,
    ];
    let (exit, events, stderr) = outcome(&output(env.cmd(&paste)).await);
    assert_eq!(exit, 0, "{stderr}");
    assert_eq!(events.last().unwrap()["ok"], true, "{events:?}");
    let cached = cached_refresh(&env);
    // The code is single use: pasted again, it is refused (credentials, exit 7) and
    // the cached refresh token stays.
    let (exit, _, stderr) = outcome(&output(env.cmd(&paste)).await);
    assert_eq!(exit, 7, "{stderr}");
    assert_eq!(cached_refresh(&env), cached);
    // The cached grant works with the client ID only.
    let (exit, _, stderr) = outcome(&output(client_id_only(&env, &["status", "100001"])).await);
    assert_ne!(exit, 7, "{stderr}");
    assert_ne!(exit, 6, "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_options_that_cannot_work_are_refused_before_anything_is_sent() {
    let env = start().await;
    let cases: [(&[&str], i32, &str); 5] = [
        (&["--provider", "6pan", "login", "--oauth"], 2, "123pan"),
        (
            &["login", "--oauth", "--redirect-listen", "0.0.0.0:0"],
            2,
            "not a loopback address",
        ),
        (&["login", "--oauth", "--no-token-cache"], 2, "token cache"),
        (
            &[
                "login",
                "--code",
                "c",
                "--redirect-uri",
                "http://127.0.0.1:9/",
            ],
            2,
            "--oauth",
        ),
        // No redirect within the bound: a network-kind failure, at once.
        (
            &["login", "--oauth", "--oauth-timeout", "0"],
            4,
            "no redirect",
        ),
    ];
    for (args, want, says) in cases {
        let out = output(env.cmd(args)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(want), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // Without the client ID: a configuration error.
    let mut c = env.cmd(&["login", "--oauth"]);
    c.env_remove("OFFLINE_123PAN_CLIENT_ID");
    let out = output(c).await;
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    assert_eq!(env.emu.token_requests(), 0);
}
