//! Torrent metainfo against the real files in `fixtures/torrents/` (every row of its
//! README table, the content files, the piece hashes), hostile inputs built here,
//! and property tests: no input, arbitrary or mutated from a real torrent, panics.

use std::path::{Path, PathBuf};

use offline_proto::torrent::{
    BencodeErrorKind, InfoHash, Limits, Metainfo, TorrentError, MAX_DEPTH, MAX_FILES,
    MAX_TORRENT_BYTES,
};
use proptest::prelude::*;
use sha1::{Digest as _, Sha1};

mod common;
use common::proptest_config::persisted;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/torrents")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn parse(name: &str) -> Metainfo {
    Metainfo::from_bytes(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every `.torrent` file in the fixtures folder.
fn torrent_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".torrent"))
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------
// A bencode writer for building test inputs (the code under test only reads).
// ---------------------------------------------------------------------------------

fn s(bytes: impl AsRef<[u8]>) -> Vec<u8> {
    let bytes = bytes.as_ref();
    let mut out = format!("{}:", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out
}

fn i(value: i128) -> Vec<u8> {
    format!("i{value}e").into_bytes()
}

fn l(items: Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = vec![b'l'];
    for item in items {
        out.extend(item);
    }
    out.push(b'e');
    out
}

/// A dictionary with its keys sorted, as bencode requires.
fn d(mut pairs: Vec<(&str, Vec<u8>)>) -> Vec<u8> {
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = vec![b'd'];
    for (key, value) in pairs {
        out.extend(s(key));
        out.extend(value);
    }
    out.push(b'e');
    out
}

fn pieces(count: usize) -> Vec<u8> {
    s(vec![7u8; 20 * count])
}

/// A torrent whose only field is the `info` dictionary of `info`.
fn torrent(info: Vec<(&str, Vec<u8>)>) -> Vec<u8> {
    d(vec![("info", d(info))])
}

/// `info` fields: `name`, `piece length` 16384, then `rest`.
fn info<'a>(name: &str, rest: Vec<(&'a str, Vec<u8>)>) -> Vec<(&'a str, Vec<u8>)> {
    let mut info = vec![("name", s(name)), ("piece length", i(16384))];
    info.extend(rest);
    info
}

/// A multi-file torrent named `name` of `files` (a bencoded list) and `piece_count`
/// piece hashes.
fn with_files(name: &str, piece_count: usize, files: Vec<u8>) -> Vec<u8> {
    torrent(info(
        name,
        vec![("pieces", pieces(piece_count)), ("files", files)],
    ))
}

/// A valid single-file torrent with extra info fields.
fn single(extra_info: Vec<(&str, Vec<u8>)>) -> Vec<u8> {
    let mut info = info("a.txt", vec![("pieces", pieces(1)), ("length", i(3))]);
    for (key, value) in extra_info {
        info.retain(|(k, _)| *k != key);
        info.push((key, value));
    }
    torrent(info)
}

/// A valid multi-file torrent named `dir` of `files` (`(path components, length)`),
/// with as many piece hashes as the lengths need (one when they overflow).
fn multi(files: Vec<(Vec<&str>, i128)>) -> Vec<u8> {
    let total: i128 = files.iter().map(|(_, length)| *length).sum();
    let piece_count =
        usize::try_from(total.max(0).div_euclid(16384) + i128::from(total % 16384 != 0))
            .ok()
            .filter(|&n| n < 1_000_000)
            .unwrap_or(1);
    let files = files
        .into_iter()
        .map(|(path, length)| {
            d(vec![
                ("length", i(length)),
                ("path", l(path.into_iter().map(s).collect())),
            ])
        })
        .collect();
    with_files("dir", piece_count, l(files))
}

fn err(bytes: &[u8]) -> TorrentError {
    match Metainfo::from_bytes(bytes) {
        Ok(meta) => panic!("accepted: {meta:?}"),
        Err(e) => e,
    }
}

fn bencode_kind(bytes: &[u8]) -> BencodeErrorKind {
    match err(bytes) {
        TorrentError::Bencode { kind, .. } => kind,
        other => panic!("expected a bencode error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------
// The real files
// ---------------------------------------------------------------------------------

/// One row of the README table.
struct Row {
    file: String,
    /// `None` for `corrupt.torrent`, which must be refused.
    expected: Option<(String, String, u64, usize, u64)>,
}

fn readme_rows() -> Vec<Row> {
    let text = std::fs::read_to_string(fixtures().join("README.md")).unwrap();
    let mut rows = Vec::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(".torrent |"))
    {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 6, "README row with 6 cells: {line:?}");
        let file = cells[0].to_owned();
        let expected = if cells[1].len() == 40 && cells[1].bytes().all(|b| b.is_ascii_hexdigit()) {
            Some((
                cells[1].to_owned(),
                cells[2].to_owned(),
                cells[3]
                    .parse()
                    .unwrap_or_else(|_| panic!("length in {line:?}")),
                cells[4]
                    .parse()
                    .unwrap_or_else(|_| panic!("files in {line:?}")),
                cells[5]
                    .parse()
                    .unwrap_or_else(|_| panic!("piece length in {line:?}")),
            ))
        } else if cells[1].starts_with('—') && cells[2..].iter().all(|c| c.is_empty()) {
            None
        } else {
            panic!("README row not understood: {line:?}");
        };
        rows.push(Row { file, expected });
    }
    rows
}

#[test]
fn every_readme_row_matches_exactly() {
    let rows = readme_rows();
    assert_eq!(rows.len(), 9);
    let mut listed: Vec<String> = rows.iter().map(|r| r.file.clone()).collect();
    listed.sort();
    assert_eq!(
        listed,
        torrent_names(),
        "the README lists every torrent file"
    );
    for row in rows {
        let bytes = read(&row.file);
        match row.expected {
            Some((hash, name, total, files, piece_length)) => {
                let meta =
                    Metainfo::from_bytes(&bytes).unwrap_or_else(|e| panic!("{}: {e}", row.file));
                assert_eq!(meta.info_hash.to_string(), hash, "{}", row.file);
                assert_eq!(meta.name, name, "{}", row.file);
                assert_eq!(meta.total_length, total, "{}", row.file);
                assert_eq!(meta.files.len(), files, "{}", row.file);
                assert_eq!(meta.piece_length, piece_length, "{}", row.file);
                assert_eq!(
                    meta.files.iter().map(|f| f.length).sum::<u64>(),
                    total,
                    "{}",
                    row.file
                );
                assert_eq!(
                    meta.piece_count() as u64,
                    total.div_ceil(piece_length),
                    "{}",
                    row.file
                );
                let parsed: InfoHash = hash.parse().unwrap();
                assert_eq!(meta.info_hash, parsed);
            }
            None => {
                let error = Metainfo::from_bytes(&bytes).unwrap_err();
                assert_eq!(error, TorrentError::MissingName, "{}", row.file);
                assert!(
                    error.to_string().contains("`name`"),
                    "clear message: {error}"
                );
            }
        }
    }
}

#[test]
fn fixture_details() {
    let alice = parse("alice.torrent");
    assert_eq!(alice.files[0].path, ["alice.txt"]);
    assert!(!alice.multi_file);
    // WebTorrent wrote milliseconds.
    assert_eq!(alice.creation_date, Some(1_452_468_725_091));
    assert_eq!(
        alice.creation_time(),
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_452_468_725_091))
    );
    assert_eq!(
        alice.magnet(),
        "magnet:?xt=urn:btih:722fe65b2aa26d14f35b4ad627d20236e481d924&dn=alice.txt"
    );

    let bunny = parse("bunny.torrent");
    assert!(bunny.private);
    assert_eq!(bunny.created_by.as_deref(), Some("uTorrent/3320"));
    assert_eq!(
        bunny.web_seeds,
        ["http://distribution.bbb3d.renderfarming.net/video/mp4/bbb_sunflower_1080p_30fps_stereo_abl.mp4"]
    );
    assert_eq!(bunny.creation_date, Some(1_387_309_701));

    let leaves = parse("leaves.torrent");
    let with_metadata = parse("leaves-metadata.torrent");
    assert_eq!(leaves.info_hash, with_metadata.info_hash);
    // `announce-list` is an empty list there.
    assert!(with_metadata.announce_list.is_empty());

    let lots = parse("lots-of-numbers.torrent");
    assert!(lots.multi_file);
    let paths: Vec<String> = lots.files.iter().map(|f| f.joined_path()).collect();
    assert_eq!(
        paths,
        [
            "lots-of-numbers/big numbers/10.txt",
            "lots-of-numbers/big numbers/11.txt",
            "lots-of-numbers/big numbers/12.txt",
            "lots-of-numbers/small numbers/1.txt",
            "lots-of-numbers/small numbers/2.txt",
            "lots-of-numbers/small numbers/3.txt",
        ]
    );
    let indexes: Vec<usize> = lots.files.iter().map(|f| f.index).collect();
    assert_eq!(indexes, [0, 1, 2, 3, 4, 5]);
    let offsets: Vec<u64> = lots.files.iter().map(|f| f.offset).collect();
    assert_eq!(offsets, [0, 2, 4, 6, 7, 9]);
}

#[test]
fn content_files_match_lengths_and_piece_hashes() {
    let with_content = [
        "alice.torrent",
        "folder.torrent",
        "lots-of-numbers.torrent",
        "numbers.torrent",
    ];
    for name in with_content {
        let meta = parse(name);
        let mut content = Vec::new();
        for file in &meta.files {
            let path: PathBuf = file.path.iter().fold(fixtures(), |p, c| p.join(c));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(bytes.len() as u64, file.length, "{}", path.display());
            content.extend(bytes);
        }
        let piece_length = usize::try_from(meta.piece_length).unwrap();
        let hashes: Vec<[u8; 20]> = content
            .chunks(piece_length)
            .map(|piece| Sha1::digest(piece).into())
            .collect();
        assert_eq!(hashes, meta.pieces, "{name}: piece hashes of the content");
    }
    // The other torrents' content is not in the fixtures.
    for name in ["bunny.torrent", "leaves.torrent", "sintel.torrent"] {
        let meta = parse(name);
        assert!(!Path::new(&fixtures().join(&meta.name)).exists(), "{name}");
    }
}

#[test]
fn every_prefix_of_small_torrents_is_an_error() {
    for name in [
        "alice.torrent",
        "folder.torrent",
        "numbers.torrent",
        "lots-of-numbers.torrent",
        "leaves-metadata.torrent",
    ] {
        let bytes = read(name);
        for end in 0..bytes.len() {
            assert!(
                Metainfo::from_bytes(&bytes[..end]).is_err(),
                "{name} cut at {end} bytes was accepted"
            );
        }
        assert!(Metainfo::from_bytes(&bytes).is_ok());
    }
}

// ---------------------------------------------------------------------------------
// Hostile and unusual inputs
// ---------------------------------------------------------------------------------

#[test]
fn deep_nesting_is_refused() {
    let mut deep = b"d4:info".to_vec();
    deep.extend(std::iter::repeat_n(b'l', 100_000));
    assert_eq!(bencode_kind(&deep), BencodeErrorKind::TooDeep);
    let mut deep = b"d1:a".to_vec();
    deep.extend(std::iter::repeat_n(b'd', 100_000));
    assert!(Metainfo::from_bytes(&deep).is_err());
    // A top-level list is no torrent, however deep.
    let lists = vec![b'l'; 100_000];
    assert_eq!(err(&lists), TorrentError::NotADictionary);
    // Exactly at the limit is fine for the decoder (the torrent is still wrong).
    let mut at_limit = b"d1:a".to_vec();
    at_limit.extend(std::iter::repeat_n(b'l', MAX_DEPTH - 1));
    at_limit.extend(std::iter::repeat_n(b'e', MAX_DEPTH - 1));
    at_limit.push(b'e');
    assert_eq!(err(&at_limit), TorrentError::MissingInfo);
    let lower = Limits::default().with_max_depth(3);
    assert!(matches!(
        Metainfo::from_bytes_with_limits(&multi(vec![(vec!["x"], 1)]), &lower),
        Err(TorrentError::Bencode {
            kind: BencodeErrorKind::TooDeep,
            ..
        })
    ));
}

#[test]
fn lengths_past_the_end_are_truncation() {
    for (bytes, kind) in [
        (&b"d4:info999999999999:abc"[..], BencodeErrorKind::Truncated),
        (&b"d4:infod4:name5:abc"[..], BencodeErrorKind::Truncated),
        // Longer than any memory address: a syntax error, not an allocation.
        (
            &b"d4:info99999999999999999999999999:abc"[..],
            BencodeErrorKind::Syntax,
        ),
        (&b"d4:infod"[..], BencodeErrorKind::Truncated),
    ] {
        assert_eq!(bencode_kind(bytes), kind, "{}", bytes.escape_ascii());
    }
}

#[test]
fn malformed_integers_are_refused() {
    for length in [&b"i-0e"[..], b"i03e", b"ie", b"i1.5e"] {
        assert_eq!(
            bencode_kind(&single(vec![("length", length.to_vec())])),
            BencodeErrorKind::Syntax,
            "{}",
            length.escape_ascii()
        );
    }
    assert!(matches!(
        err(&single(vec![("length", i(-5))])),
        TorrentError::InvalidLength { value: -5, .. }
    ));
    assert!(matches!(
        err(&single(vec![(
            "length",
            b"i99999999999999999999999e".to_vec()
        )])),
        TorrentError::IntegerOutOfRange { .. }
    ));
    let long_digits = format!("i{}e", "9".repeat(10_000));
    let error = err(&single(vec![("length", long_digits.into_bytes())]));
    assert!(
        error.to_string().len() < 200,
        "message stays short: {error}"
    );
    assert!(matches!(
        err(&single(vec![("piece length", i(0))])),
        TorrentError::InvalidLength { value: 0, .. }
    ));
    assert!(matches!(
        err(&single(vec![("piece length", i(-16384))])),
        TorrentError::InvalidLength { .. }
    ));
    assert!(matches!(
        err(&single(vec![("length", s("3"))])),
        TorrentError::WrongType { .. }
    ));
}

#[test]
fn total_length_overflow_is_refused() {
    let half = i128::from(i64::MAX);
    assert_eq!(
        err(&multi(vec![
            (vec!["a"], half),
            (vec!["b"], half),
            (vec!["c"], 2)
        ])),
        TorrentError::TotalLengthOverflow
    );
}

#[test]
fn too_many_files_is_refused() {
    assert_eq!(Limits::default().max_files, MAX_FILES);
    assert_eq!(Limits::default().max_bytes, MAX_TORRENT_BYTES);
    let files: Vec<(Vec<&str>, i128)> = (0..11).map(|_| (vec!["x"], 0)).collect();
    let bytes = multi(files);
    let limits = Limits::default().with_max_files(10);
    assert_eq!(
        Metainfo::from_bytes_with_limits(&bytes, &limits),
        Err(TorrentError::TooManyFiles { max: 10 })
    );
    // Many files under the default limit are fine.
    let files: Vec<(Vec<&str>, i128)> = (0..20_000).map(|_| (vec!["x"], 1)).collect();
    let meta = Metainfo::from_bytes(&multi(files)).unwrap();
    assert_eq!(meta.files.len(), 20_000);
}

#[test]
fn oversized_input_is_refused_before_reading() {
    let mut big = single(vec![]);
    big.resize(MAX_TORRENT_BYTES + 1, b'x');
    assert_eq!(
        err(&big),
        TorrentError::TooLarge {
            size: MAX_TORRENT_BYTES + 1,
            max: MAX_TORRENT_BYTES
        }
    );
    let small = Limits::default().with_max_bytes(10);
    assert!(matches!(
        Metainfo::from_bytes_with_limits(&single(vec![]), &small),
        Err(TorrentError::TooLarge { .. })
    ));
}

#[test]
fn unsafe_paths_are_refused() {
    for bad in ["..", ".", "", "a/b", "a\\b", "nul\0"] {
        let error = err(&multi(vec![(vec!["ok", bad], 1)]));
        assert!(
            matches!(error, TorrentError::UnsafePath { file_index: 0, .. }),
            "{bad:?}: {error:?}"
        );
        let error = err(&single(vec![("name", s(bad))]));
        assert!(
            matches!(error, TorrentError::InvalidName { .. }),
            "{bad:?}: {error:?}"
        );
    }
    assert!(matches!(
        err(&multi(vec![(vec!["fine"], 1), (vec![], 0)])),
        TorrentError::UnsafePath { file_index: 1, .. }
    ));
    // `...` and names with dots are fine.
    let meta = Metainfo::from_bytes(&multi(vec![(vec!["...", ".hidden", "a..b"], 1)])).unwrap();
    assert_eq!(meta.files[0].path, ["dir", "...", ".hidden", "a..b"]);
    // A non-UTF-8 component without `path.utf-8`.
    let files = l(vec![d(vec![
        ("length", i(1)),
        ("path", l(vec![s([0xffu8, 0xfe])])),
    ])]);
    let error = err(&with_files("dir", 1, files));
    assert!(
        matches!(error, TorrentError::UnsafePath { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("UTF-8"), "{error}");
}

#[test]
fn name_problems_are_typed() {
    let mut no_name = info("x", vec![("pieces", pieces(1)), ("length", i(3))]);
    no_name.retain(|(key, _)| *key != "name");
    assert_eq!(err(&torrent(no_name.clone())), TorrentError::MissingName);
    // `name.utf-8` alone is enough.
    no_name.push(("name.utf-8", s("n")));
    assert_eq!(Metainfo::from_bytes(&torrent(no_name)).unwrap().name, "n");
    assert!(matches!(
        err(&single(vec![("name", s(""))])),
        TorrentError::InvalidName { .. }
    ));
    let error = err(&single(vec![("name", s([0xff, 0xfe]))]));
    assert!(
        matches!(error, TorrentError::InvalidName { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("UTF-8"), "{error}");
    assert!(matches!(
        err(&single(vec![("name", i(5))])),
        TorrentError::WrongType { .. }
    ));
}

#[test]
fn utf8_variants_are_preferred() {
    let meta = Metainfo::from_bytes(&single(vec![
        ("name", s([0xb0, 0xa1])),
        ("name.utf-8", s("啊.txt")),
    ]))
    .unwrap();
    assert_eq!(meta.name, "啊.txt");
    assert_eq!(meta.files[0].path, ["啊.txt"]);

    let files = l(vec![d(vec![
        ("length", i(1)),
        ("path", l(vec![s([0xb0, 0xa1])])),
        ("path.utf-8", l(vec![s("啊")])),
    ])]);
    let meta = Metainfo::from_bytes(&with_files("dir", 1, files)).unwrap();
    assert_eq!(meta.files[0].path, ["dir", "啊"]);
}

#[test]
fn pieces_are_checked() {
    for (field, expected) in [
        (
            ("pieces", s([0u8; 19])),
            TorrentError::BadPieces { len: 19 },
        ),
        (
            ("pieces", pieces(2)),
            TorrentError::PieceCountMismatch {
                expected: 1,
                found: 2,
            },
        ),
        (
            ("length", i(16385)),
            TorrentError::PieceCountMismatch {
                expected: 2,
                found: 1,
            },
        ),
    ] {
        assert_eq!(err(&single(vec![field])), expected);
    }
    // Empty content has no pieces.
    let meta = Metainfo::from_bytes(&single(vec![("length", i(0)), ("pieces", s(""))])).unwrap();
    assert_eq!(meta.piece_count(), 0);
}

#[test]
fn layout_problems_are_typed() {
    assert_eq!(err(b""), TorrentError::NotADictionary);
    assert_eq!(err(b"i1e"), TorrentError::NotADictionary);
    assert_eq!(err(b"de"), TorrentError::MissingInfo);
    assert!(matches!(
        err(&d(vec![("info", s("x"))])),
        TorrentError::WrongType { .. }
    ));
    assert_eq!(
        err(&single(vec![("files", l(vec![]))])),
        TorrentError::AmbiguousLayout
    );
    for (rest, expected) in [
        (
            vec![("pieces", s("")), ("files", l(vec![]))],
            TorrentError::NoFiles,
        ),
        (
            vec![("meta version", i(2)), ("file tree", d(vec![]))],
            TorrentError::V2Only,
        ),
        (
            vec![("pieces", s(""))],
            TorrentError::MissingField {
                field: "info.length or info.files",
            },
        ),
    ] {
        assert_eq!(err(&torrent(info("x", rest))), expected);
    }
    assert!(matches!(
        err(&multi(vec![(vec!["a"], 1)]).replace_in(b"4:path", b"4:patz")),
        TorrentError::MissingField { .. }
    ));
}

trait ReplaceIn {
    fn replace_in(self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceIn for Vec<u8> {
    fn replace_in(self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = self.windows(from.len()).position(|w| w == from).unwrap();
        let mut out = self;
        out.splice(at..at + from.len(), to.iter().copied());
        out
    }
}

#[test]
fn canonical_bencode_is_required() {
    // Unsorted keys below the top level and repeated keys: bendy enforces canonical
    // order (the top level alone may be unsorted: see `Metainfo::canonical`).
    assert_eq!(
        bencode_kind(b"d4:infod4:name1:x1:a1:bee"),
        BencodeErrorKind::UnsortedKeys
    );
    assert_eq!(
        bencode_kind(b"d1:a1:x1:a1:ye"),
        BencodeErrorKind::UnsortedKeys
    );
}

#[test]
fn lenient_where_real_torrents_vary() {
    // Unknown keys everywhere, optional fields of odd types, trailing bytes.
    let files = l(vec![d(vec![
        ("length", i(1)),
        ("path", l(vec![s("a")])),
        ("md5sum", s("00")),
        ("attr", s("x")),
    ])]);
    let mut torrent = d(vec![
        ("announce", i(5)),
        ("comment", s([0xff])),
        ("created by", s("me")),
        ("creation date", s("yesterday")),
        ("x-unknown", d(vec![("deep", l(vec![l(vec![i(1)])]))])),
        (
            "info",
            d(info(
                "dir",
                vec![
                    ("pieces", pieces(1)),
                    ("files", files),
                    ("source", s("tracker")),
                    ("private", i(0)),
                ],
            )),
        ),
    ]);
    torrent.extend_from_slice(b"\ntrailing garbage");
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    assert_eq!(meta.announce, None);
    assert_eq!(meta.comment, None);
    assert_eq!(meta.created_by.as_deref(), Some("me"));
    assert_eq!(meta.creation_date, None);
    assert!(!meta.private);
    assert!(!meta.files[0].padding);
}

#[test]
fn trackers_web_seeds_and_magnet() {
    let torrent = d(vec![
        ("announce", s("udp://t1.example:80/announce")),
        (
            "announce-list",
            l(vec![
                l(vec![
                    s("udp://t1.example:80/announce"),
                    s("http://t2.example/a?x=1&y=2"),
                ]),
                l(vec![]),
                s("not a tier"),
                l(vec![s("wss://t3.example"), i(4)]),
            ]),
        ),
        ("url-list", s("https://seed.example/a.txt")),
        ("comment", s("plain")),
        ("comment.utf-8", s("ütf")),
        (
            "info",
            d(info(
                "a b+c&.txt",
                vec![("pieces", pieces(1)), ("length", i(3)), ("private", i(1))],
            )),
        ),
    ]);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    assert_eq!(meta.web_seeds, ["https://seed.example/a.txt"]);
    assert_eq!(
        meta.announce_list,
        [
            vec![
                "udp://t1.example:80/announce",
                "http://t2.example/a?x=1&y=2"
            ],
            vec!["wss://t3.example"],
        ]
    );
    assert_eq!(
        meta.trackers(),
        [
            "udp://t1.example:80/announce",
            "http://t2.example/a?x=1&y=2",
            "wss://t3.example"
        ]
    );
    assert_eq!(meta.comment.as_deref(), Some("ütf"));
    assert!(meta.private);
    let hash = meta.info_hash;
    assert_eq!(
        meta.magnet(),
        format!(
            "magnet:?xt=urn:btih:{hash}&dn=a%20b%2Bc%26.txt\
             &tr=udp%3A%2F%2Ft1.example%3A80%2Fannounce\
             &tr=http%3A%2F%2Ft2.example%2Fa%3Fx%3D1%26y%3D2\
             &tr=wss%3A%2F%2Ft3.example"
        )
    );

    let list = d(vec![
        ("url-list", l(vec![s("http://a"), s(""), s("http://b")])),
        (
            "info",
            d(info("x", vec![("pieces", pieces(1)), ("length", i(1))])),
        ),
    ]);
    assert_eq!(
        Metainfo::from_bytes(&list).unwrap().web_seeds,
        ["http://a", "http://b"]
    );
}

#[test]
fn info_hash_is_of_the_raw_bytes() {
    // A non-minimal but valid encoding inside `info` (an unknown key) changes the
    // hash; the hash is the SHA-1 of exactly the bytes between `4:info` and the end.
    let torrent = single(vec![("zzz", s("keep me"))]);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let start = torrent.windows(6).position(|w| w == b"4:info").unwrap() + 6;
    let info = &torrent[start..torrent.len() - 1];
    assert_eq!(meta.info_hash.0, <[u8; 20]>::from(Sha1::digest(info)));
    assert_eq!(meta.info_hash, InfoHash::of_info_bytes(info));
}

#[test]
fn padding_files_are_marked() {
    let files = l(vec![
        d(vec![("length", i(1)), ("path", l(vec![s("a")]))]),
        d(vec![
            ("attr", s("p")),
            ("length", i(16383)),
            ("path", l(vec![s(".pad"), s("16383")])),
        ]),
        d(vec![("length", i(1)), ("path", l(vec![s("b")]))]),
    ]);
    let meta = Metainfo::from_bytes(&with_files("x", 2, files)).unwrap();
    let padding: Vec<bool> = meta.files.iter().map(|f| f.padding).collect();
    assert_eq!(padding, [false, true, false]);
    assert_eq!(meta.files[2].offset, 16384);
}

#[test]
fn error_messages_are_clear_and_bounded() {
    let error = Metainfo::from_bytes(&read("corrupt.torrent")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "torrent has no name: its `info` dictionary lacks the `name` field"
    );
    let long = "x".repeat(10_000);
    let error = err(&multi(vec![(vec![long.as_str(), ".."], 1)]));
    assert!(error.to_string().len() < 200, "{error}");
    let error = err(&single(vec![("name", s(format!("{long}/")))]));
    assert!(error.to_string().len() < 200, "{error}");
}

// ---------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------

/// Checks what must hold for any accepted torrent.
fn check_invariants(meta: &Metainfo) {
    assert_eq!(
        meta.files.iter().map(|f| f.length).sum::<u64>(),
        meta.total_length
    );
    assert!(!meta.files.is_empty());
    assert_eq!(
        meta.piece_count() as u64,
        meta.total_length.div_ceil(meta.piece_length)
    );
    let mut offset = 0;
    for (index, file) in meta.files.iter().enumerate() {
        assert_eq!(file.index, index);
        assert_eq!(file.offset, offset);
        offset += file.length;
        assert!(!file.path.is_empty());
        for component in &file.path {
            assert!(!component.is_empty() && component != "." && component != "..");
            assert!(!component.contains(['/', '\\', '\0']));
        }
    }
    assert!(meta.magnet().starts_with("magnet:?xt=urn:btih:"));
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        (
            any::<usize>(),
            prop::sample::select(&b"0123456789:ilde-"[..])
        )
            .prop_map(|(at, b)| Mutation::Insert(at, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1..64usize).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let at = |i: usize, len: usize| i % len;
    match *mutation {
        Mutation::Flip(i, b) => {
            let i = at(i, bytes.len());
            bytes[i] ^= b;
        }
        Mutation::Insert(i, b) => {
            let i = at(i, bytes.len() + 1);
            bytes.insert(i, b);
        }
        Mutation::Remove(i) => {
            let i = at(i, bytes.len());
            bytes.remove(i);
        }
        Mutation::Truncate(i) => {
            let i = at(i, bytes.len());
            bytes.truncate(i);
        }
        Mutation::Duplicate(i, n) => {
            let i = at(i, bytes.len());
            let end = (i + n).min(bytes.len());
            let copy = bytes[i..end].to_vec();
            bytes.splice(i..i, copy);
        }
    }
}

proptest! {
    #![proptest_config(persisted(512, "proptest-regressions/torrent.txt"))]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(meta) = Metainfo::from_bytes(&bytes) {
            check_invariants(&meta);
        }
    }

    #[test]
    fn never_panics_on_bencode_like_bytes(
        bytes in prop::collection::vec(prop::sample::select(&b"0123456789:ildee-xa"[..]), 0..256)
    ) {
        let mut input = b"d4:info".to_vec();
        input.extend(bytes);
        if let Ok(meta) = Metainfo::from_bytes(&input) {
            check_invariants(&meta);
        }
    }

    #[test]
    fn never_panics_on_mutated_real_torrents(
        which in prop::sample::select(vec![
            "alice.torrent",
            "bunny.torrent",
            "corrupt.torrent",
            "folder.torrent",
            "leaves-metadata.torrent",
            "lots-of-numbers.torrent",
            "numbers.torrent",
        ]),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut bytes = read(which);
        for m in &mutations {
            apply(&mut bytes, m);
        }
        if let Ok(meta) = Metainfo::from_bytes(&bytes) {
            check_invariants(&meta);
        }
    }
}
