//! `offline --provider 6pan upload` as a user runs it, against `offline emulator` in
//! another process.

mod common;
use common::Standalone;

#[test]
fn upload_in_blocks_then_instantly_and_errors_have_their_codes() {
    let emu = Standalone::start();
    let path = emu.dir.path().join("nine.bin");
    let data: Vec<u8> = (0..9 * 1024 * 1024 + 7u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();
    let file = path.to_string_lossy().into_owned();

    // `hash` talks to no provider: run without the emulator's connection options.
    let o = std::process::Command::new(common::BIN)
        .args(["hash", &file, "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let hashed = common::json_lines(&o.stdout);
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
    let (code, lines, stderr) = emu.run(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(lines[0]["event"], "uploaded");
    assert_eq!(lines[0]["etag"], etag.as_str());
    assert_eq!(lines[0]["size"], data.len() as u64);
    assert_eq!(lines[0]["instant"], false);

    let (code, lines, _) = emu.run(&args);
    assert_eq!(code, 0);
    assert_eq!(lines[0]["instant"], true, "the drive knows the etag now");

    // A missing file: a configuration error (6); a 123pan upload: usage (2).
    let (code, lines, _) = emu.run(&[
        "--provider",
        "6pan",
        "--json",
        "upload",
        "/nonexistent/file.bin",
    ]);
    assert_eq!(code, 6);
    assert_eq!(lines[0]["event"], "error");
    let (code, _, stderr) = emu.run(&["--provider", "123pan", "upload", &file]);
    assert_eq!(code, 2);
    assert!(stderr.contains("6pan"), "{stderr}");
}
