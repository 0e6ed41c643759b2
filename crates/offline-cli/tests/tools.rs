//! `offline hash` and `offline torrent inspect` on the real inputs: every V1 qetag
//! vector of the vendor's SDK and every torrent of the fixture table.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_offline");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// The data of a vector's pattern (see the header of fixtures/qetag/vectors.tsv).
fn data(size: usize, pattern: &str) -> Vec<u8> {
    match pattern {
        "empty" => Vec::new(),
        p if p.starts_with("ascii \"") => p.as_bytes()["ascii \"".len()..p.len() - 1].to_vec(),
        "i%251" => (0..size).map(|i| (i % 251) as u8).collect(),
        "crate_fake" => {
            let mut unit = vec![b'A'];
            unit.extend(std::iter::repeat_n(b'b', 4093));
            unit.extend_from_slice(b"\r\n");
            unit.iter().copied().cycle().take(size).collect()
        }
        other => panic!("pattern {other:?} not understood"),
    }
}

#[test]
fn hash_prints_the_vendor_etag_of_every_v1_vector() {
    let table = std::fs::read_to_string(fixtures().join("qetag/vectors.tsv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut expected = Vec::new();
    for (i, line) in table
        .lines()
        .take_while(|l| !l.starts_with("# V2"))
        .enumerate()
    {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let size: usize = cols[0].parse().unwrap();
        let bytes = data(size, cols[1]);
        assert_eq!(bytes.len(), size);
        let path = dir.path().join(format!("v{i}.bin"));
        std::fs::write(&path, bytes).unwrap();
        files.push(path);
        expected.push(cols[2].to_owned());
    }
    assert!(files.len() >= 12, "read the V1 vectors");
    let out = Command::new(BIN)
        .arg("hash")
        .arg("--json")
        .args(&files)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["etag"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(got, expected);
    // Plain output: `<etag>  <path>`.
    let out = Command::new(BIN)
        .arg("hash")
        .arg(&files[0])
        .output()
        .unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.starts_with(&format!("{}  ", expected[0])), "{line}");
}

#[test]
fn torrent_inspect_matches_the_fixture_table() {
    let readme = std::fs::read_to_string(fixtures().join("torrents/README.md")).unwrap();
    let mut checked = 0;
    for row in readme
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(".torrent"))
    {
        let cols: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let (file, infohash) = (cols[0], cols[1]);
        let path = fixtures().join("torrents").join(file);
        let out = Command::new(BIN)
            .args(["torrent", "inspect", "--json"])
            .arg(&path)
            .output()
            .unwrap();
        if file == "corrupt.torrent" {
            assert_eq!(out.status.code(), Some(6));
            // With --json the error is a JSON line on stdout.
            let err: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(err["event"], "error");
            let message = err["message"].as_str().unwrap();
            assert!(
                message.contains("no name"),
                "a clear error about the missing name: {message}"
            );
            checked += 1;
            continue;
        }
        assert_eq!(out.status.code(), Some(0), "{file}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["infohash"], infohash, "{file}");
        assert_eq!(v["name"], cols[2], "{file}");
        assert_eq!(
            v["total_length"].as_u64().unwrap().to_string(),
            cols[3],
            "{file}"
        );
        assert_eq!(
            v["files"].as_array().unwrap().len().to_string(),
            cols[4],
            "{file}"
        );
        assert_eq!(
            v["piece_length"].as_u64().unwrap().to_string(),
            cols[5],
            "{file}"
        );
        checked += 1;
    }
    assert_eq!(checked, 9);
}

/// Devices, pipes and oversized files are refused before they are read: `/dev/zero`
/// is endless, and a 200 MB "torrent" must not be read into memory to be refused.
#[test]
fn endless_and_oversized_inputs_are_refused_without_reading_them() {
    for args in [
        &["hash", "/dev/zero"][..],
        &["torrent", "inspect", "/dev/zero"][..],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(6), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a regular file"), "{args:?}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.torrent");
    let f = std::fs::File::create(&big).unwrap();
    // A sparse 200 MB file: no disk used, and reading it would take 200 MB of memory.
    f.set_len(200 * 1024 * 1024).unwrap();
    let out = Command::new(BIN)
        .args(["torrent", "inspect"])
        .arg(&big)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("larger than 16777216 bytes"), "{err}");
}

/// Names from a torrent reach a terminal escaped: no ESC, BEL, CR, LF or NUL is
/// printed raw; the JSON output keeps them exact.
#[test]
fn control_characters_in_torrent_names_are_escaped_for_people_only() {
    // (A NUL is refused by the parser itself: a name with one is unusable.)
    let evil = "a\u{1b}]0;pwned\u{7}b\rc\nd";
    let torrent = offline_proto::torrent::TorrentBuilder::new(evil)
        .file(&["x.txt"], b"data".to_vec())
        .build();
    let (code, text, err) = inspect(&torrent, &[]);
    assert_eq!(code, Some(0), "{err}");
    for c in ['\u{1b}', '\u{7}', '\r'] {
        assert!(!text.contains(c), "{c:?} printed raw: {text:?}");
    }
    assert!(
        text.contains("a\\u{1b}]0;pwned\\u{7}b\\u{d}c\\u{a}d"),
        "{text}"
    );
    let (_, json, _) = inspect(&torrent, &["--json"]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["name"], evil);
}

/// `offline torrent inspect FILE ARGS` on `bytes`: exit code, stdout, stderr.
fn inspect(bytes: &[u8], args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.torrent");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new(BIN)
        .args(["torrent", "inspect"])
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// Issue 10 #10: a long name copied into each of 10,000 paths was 3 GB; now refused
// at once with what it is.
#[test]
fn a_name_amplifying_torrent_is_refused() {
    let mut builder = offline_proto::torrent::TorrentBuilder::new("n".repeat(300_000));
    for i in 0..10_000 {
        builder = builder.file(&[&i.to_string()], Vec::new());
    }
    let (code, _, err) = inspect(&builder.build(), &[]);
    assert_eq!(code, Some(6), "{err}");
    assert!(
        err.contains("file paths come to more than 67108864 bytes"),
        "{err}"
    );
}

// Issue 10 #12 and #13: unsorted top-level keys are read and said; names Windows
// cannot hold, and files whose path and path.utf-8 disagree, are flagged.
#[test]
fn inspect_notes_what_other_tools_would_read_differently() {
    let info = b"d5:filesld6:lengthi1e4:pathl7:AUX.txte10:path.utf-8l7:AUX.txteed6:lengthi1e4:pathl5:old.te10:path.utf-8l5:new.teee4:name4:pack12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
    let torrent = [&b"d4:info"[..], info, b"7:comment2:hie"].concat();
    let (code, text, err) = inspect(&torrent, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains("not canonical bencode"), "{text}");
    assert!(
        text.contains("file 0: \"AUX.txt\" is a reserved device name on Windows"),
        "{text}"
    );
    assert!(
        text.contains("file 1: path.utf-8 and path disagree; tools that read path call it old.t"),
        "{text}"
    );
    let (_, json, _) = inspect(&torrent, &["--json"]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["canonical"], false);
    assert_eq!(
        v["files"][0]["windows_unsafe"],
        "is a reserved device name on Windows"
    );
    assert_eq!(v["files"][1]["path"], "pack/new.t");
    assert_eq!(v["files"][1]["other_path"], "old.t");
    assert!(v["files"][1].get("windows_unsafe").is_none());
}
