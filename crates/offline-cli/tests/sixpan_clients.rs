//! 6pan as its real clients saw it (issue 12, items 8-10), through the `offline`
//! binary against `offline emulator` in another process: a failed task's reason in
//! `status` and `list`, the v2 upload token, and logging other sessions out.

use offline_emulator::source::ServedFile;
use serde_json::Value;
use tokio::task::block_in_place;

mod common;
use common::{serve, Standalone};

/// `offline --provider 6pan ARGS` against `emu`.
fn sixpan(emu: &Standalone, args: &[&str]) -> (i32, Vec<Value>, String) {
    emu.run(&[&["--provider", "6pan"], args].concat())
}

/// `offline --provider 6pan ARGS` against `emu`: the exit code and standard output.
fn sixpan_text(emu: &Standalone, args: &[&str]) -> (i32, String) {
    let out = emu
        .cmd(&[&["--provider", "6pan"], args].concat())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

// Issue 12 #8: the emulator lists a failed task with `errorCode` and `errorMessage`
// as Mrs4s/six-cli reads them; `status` and `list` say why, in text and in JSON.
#[tokio::test(flavor = "multi_thread")]
async fn status_and_list_say_why_a_task_failed() {
    let emu = Standalone::start();
    let src = serve([(
        "here.bin".to_owned(),
        ServedFile::new("application/octet-stream", vec![7u8; 1000]),
    )])
    .await;
    let missing = src.file_url("missing.bin");
    let (code, lines, stderr) =
        block_in_place(|| sixpan(&emu, &["add", &missing, "--path", "/dl", "--json"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(lines[0]["event"], "created");
    let task = lines[0]["task"].as_str().unwrap().to_owned();

    // `wait` ends at the failure, and its last event already says why.
    let (code, lines, stderr) = block_in_place(|| sixpan(&emu, &["wait", &task, "--json"]));
    assert_ne!(code, 0, "a failed task is not a success: {stderr}");
    let last = lines.last().unwrap();
    assert_eq!(last["status"], "failed", "{last}");
    assert!(last["reason"].as_str().unwrap().contains("404"), "{last}");

    let (code, lines, stderr) = block_in_place(|| sixpan(&emu, &["status", &task, "--json"]));
    assert_eq!(code, 0, "{stderr}");
    let status = &lines[0];
    assert_eq!(status["event"], "status");
    assert_eq!(status["status"], "failed");
    assert!(
        status["error_code"].as_i64().is_some_and(|c| c != 0),
        "{status}"
    );
    let reason = status["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("404"), "{status}");
    assert!(status["path"].is_null(), "{status}");

    let (code, text) = block_in_place(|| sixpan_text(&emu, &["status", &task]));
    assert_eq!(code, 0);
    assert!(text.contains("failed"), "{text}");
    assert!(text.contains(&reason), "{text}");

    let (code, lines, _) = block_in_place(|| sixpan(&emu, &["list", "--json"]));
    assert_eq!(code, 0);
    assert_eq!(lines[0]["task"], task.as_str());
    assert_eq!(lines[0]["reason"], reason.as_str());
    let (code, text) = block_in_place(|| sixpan_text(&emu, &["list"]));
    assert_eq!(code, 0);
    assert!(text.contains("reason"), "a reason column: {text}");
    assert!(text.contains(&reason), "{text}");

    // A finished task says where it is, and no reason.
    let here = src.file_url("here.bin");
    let (code, lines, stderr) =
        block_in_place(|| sixpan(&emu, &["add", &here, "--path", "/dl", "--wait", "--json"]));
    assert_eq!(code, 0, "{stderr}");
    let done = lines.last().unwrap();
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["path"], "/dl/here.bin", "{done}");
    assert!(done["reason"].is_null(), "{done}");
}

// Issue 12 #9: `upload --upload-token-api v2` asks `/v2/upload/token`; the file lands,
// and the same file again is instant (`hashCached: true`). A 123pan upload is refused
// (exit 2) before anything is sent, as every 6pan-only command.
#[test]
fn upload_with_the_v2_token_api() {
    let emu = Standalone::start();
    let path = emu.dir.path().join("five.bin");
    let data: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let file = path.to_string_lossy().into_owned();
    let args = [
        "--json",
        "upload",
        &file,
        "--path",
        "/v2",
        "--upload-token-api",
        "v2",
    ];
    let (code, lines, stderr) = sixpan(&emu, &args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(lines[0]["event"], "uploaded");
    assert_eq!(lines[0]["instant"], false);
    assert_eq!(lines[0]["size"], data.len() as u64);
    let (code, lines, stderr) = sixpan(&emu, &args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(lines[0]["instant"], true, "the drive knows the etag now");
    // `hashCached: true` describes no file (no uuid); `/v1/store/token`, the default,
    // answers the created file.
    assert!(lines[0]["uuid"].is_null(), "{}", lines[0]);
    let (code, lines, stderr) = sixpan(&emu, &args[..5]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(lines[0]["instant"], true);
    assert!(lines[0]["uuid"].is_string(), "{}", lines[0]);

    let (code, _, stderr) = sixpan(&emu, &["upload", &file, "--upload-token-api", "v3"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = emu.run(&[
        "--provider",
        "123pan",
        "upload",
        &file,
        "--upload-token-api",
        "v2",
    ]);
    assert_eq!(code, 2, "{stderr}");
}

// Issue 12 #10b: with one session allowed, a second `login` is refused with
// LOGIN_USER_TOO_MUCH (exit 7, as the provider's refusals) and says what to do; only
// `login --logout-others` logs the other session out and logs in. 123pan refuses the
// flag (exit 2).
#[test]
fn login_logout_others_only_when_asked() {
    let emu = Standalone::start_with(&["--sixpan-max-sessions", "1"]);
    let (code, _, stderr) = sixpan(&emu, &["login", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, lines, _) = sixpan(&emu, &["login", "--json"]);
    assert_ne!(code, 0);
    let error = &lines[0];
    assert_eq!(error["code"], "LOGIN_USER_TOO_MUCH", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("--logout-others"),
        "{error}"
    );
    let (code, lines, stderr) = sixpan(&emu, &["login", "--logout-others", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(lines[0]["ok"], true);
    // Logged in (the token is cached): a call works.
    let (code, _, stderr) = sixpan(&emu, &["list", "--json"]);
    assert_eq!(code, 0, "{stderr}");

    let (code, _, stderr) = emu.run(&["--provider", "123pan", "login", "--logout-others"]);
    assert_eq!(code, 2, "{stderr}");
}
