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
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.torrent");
    std::fs::write(&path, torrent).unwrap();
    let out = Command::new(BIN)
        .args(["torrent", "inspect"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for c in ['\u{1b}', '\u{7}', '\r'] {
        assert!(!text.contains(c), "{c:?} printed raw: {text:?}");
    }
    assert!(
        text.contains("a\\u{1b}]0;pwned\\u{7}b\\u{d}c\\u{a}d"),
        "{text}"
    );
    let out = Command::new(BIN)
        .args(["torrent", "inspect", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], evil);
}
