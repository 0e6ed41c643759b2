//! `offline --provider 6pan upload` as a user runs it, against `offline emulator` in
//! another process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_offline");

/// A child process killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    /// SIGTERM, so that the emulator removes its temporary data directory; SIGKILL if
    /// it has not ended within 10 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while matches!(self.0.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_emulator() -> (Guard, String) {
    let mut child = Command::new(BIN)
        .args(["emulator", "--addr", "127.0.0.1:0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("offline emulator starts");
    let stdout = child.stdout.take().unwrap();
    let guard = Guard(child);
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let v: Value = serde_json::from_str(&first).expect("the first line is JSON");
    (guard, v["base_url"].as_str().unwrap().to_owned())
}

/// `offline` against the emulator at `base`, with the token cache `cache`.
fn offline(base: &str, cache: &Path, args: &[&str]) -> (i32, Vec<Value>, String) {
    let out = Command::new(BIN)
        .args(["--base-url", base])
        .args(args)
        .env("OFFLINE_CACHE_DIR", cache)
        .env("OFFLINE_6PAN_ACCOUNT", "demo@offline.local")
        .env("OFFLINE_6PAN_PASSWORD", "offline-demo-password")
        .env_remove("OFFLINE_6PAN_TOKEN")
        .env_remove("OFFLINE_PROVIDER")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn upload_in_blocks_then_instantly_and_errors_have_their_codes() {
    let (_emu, base) = start_emulator();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let path = dir.path().join("nine.bin");
    let data: Vec<u8> = (0..9 * 1024 * 1024 + 7u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();
    let file = path.to_string_lossy().into_owned();

    let (code, hashed, _) = offline(&base, &cache, &["hash", &file, "--json"]);
    assert_eq!(code, 0);
    let etag = hashed[0]["etag"].as_str().unwrap().to_owned();

    let args = [
        "--provider",
        "6pan",
        "--json",
        "upload",
        &file,
        "--path",
        "/up",
        "--parallel",
        "2",
        "--chunk-kib",
        "512",
    ];
    let (code, lines, stderr) = offline(&base, &cache, &args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(lines[0]["event"], "uploaded");
    assert_eq!(lines[0]["etag"], etag.as_str());
    assert_eq!(lines[0]["size"], data.len() as u64);
    assert_eq!(lines[0]["instant"], false);

    let (code, lines, _) = offline(&base, &cache, &args);
    assert_eq!(code, 0);
    assert_eq!(lines[0]["instant"], true, "the drive knows the etag now");

    // A missing file: a configuration error (6); a 123pan upload: usage (2).
    let (code, lines, _) = offline(
        &base,
        &cache,
        &[
            "--provider",
            "6pan",
            "--json",
            "upload",
            "/nonexistent/file.bin",
        ],
    );
    assert_eq!(code, 6);
    assert_eq!(lines[0]["event"], "error");
    let (code, _, stderr) = offline(&base, &cache, &["--provider", "123pan", "upload", &file]);
    assert_eq!(code, 2);
    assert!(stderr.contains("6pan"), "{stderr}");
}
