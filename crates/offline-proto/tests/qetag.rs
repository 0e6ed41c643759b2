//! The etag against the vendor SDK's vectors (`fixtures/qetag/vectors.tsv`, copied
//! unchanged from the shared data), one-shot and streaming in odd chunk sizes, and
//! property tests: streaming over any split equals one-shot, and combining block
//! digests equals one-shot.
//!
//! Every data row of the vectors file is interpreted; a row this file does not
//! understand fails the test.

use std::path::PathBuf;

use offline_proto::qetag::{
    block_digest, qetag, size_suffix, Etag, EtagError, Qetag, BLOCK_SIZE, PREFIX_MULTI_BLOCK,
    PREFIX_SINGLE_BLOCK,
};
use proptest::prelude::*;
use sha1::{Digest as _, Sha1};

mod common;
use common::proptest_config::persisted;

// ---------------------------------------------------------------------------------
// The vectors file
// ---------------------------------------------------------------------------------

/// How a row's data is made (the `pattern` column; the file's header comments define
/// each one).
#[derive(Debug, Clone, PartialEq)]
enum Pattern {
    /// `empty`: no bytes.
    Empty,
    /// `ascii "..."`: the quoted text's bytes.
    Ascii(Vec<u8>),
    /// `i%251`: byte `i` is `i % 251`, `i` from 0.
    Mod251,
    /// `crate_fake`: the qiniu-etag crate's test data, the 4096-byte unit
    /// `'A' + 'b' * 4093 + "\r\n"` repeated.
    CrateFake,
}

impl Pattern {
    fn parse(text: &str) -> Pattern {
        match text {
            "empty" => Pattern::Empty,
            "i%251" => Pattern::Mod251,
            "crate_fake" => Pattern::CrateFake,
            other => {
                let quoted = other
                    .strip_prefix("ascii \"")
                    .and_then(|rest| rest.strip_suffix('"'))
                    .unwrap_or_else(|| panic!("unknown pattern {other:?} in the vectors file"));
                assert!(
                    !quoted.contains(['"', '\\']),
                    "escapes in ascii patterns are not defined by the file: {other:?}"
                );
                Pattern::Ascii(quoted.as_bytes().to_vec())
            }
        }
    }

    /// The data of `size` bytes. Panics when the size contradicts the pattern.
    fn data(&self, size: usize) -> Vec<u8> {
        match self {
            Pattern::Empty => {
                assert_eq!(size, 0, "pattern `empty` with size {size}");
                Vec::new()
            }
            Pattern::Ascii(bytes) => {
                assert_eq!(size, bytes.len(), "ascii pattern of the wrong size");
                bytes.clone()
            }
            Pattern::Mod251 => (0..size).map(|i| (i % 251) as u8).collect(),
            Pattern::CrateFake => {
                let mut unit = Vec::with_capacity(4096);
                unit.push(b'A');
                unit.extend(std::iter::repeat_n(b'b', 4093));
                unit.extend_from_slice(b"\r\n");
                assert_eq!(unit.len(), 4096);
                unit.iter().copied().cycle().take(size).collect()
            }
        }
    }
}

/// A V1 row: `size  pattern  etag  sha1_hex`.
#[derive(Debug)]
struct V1Row {
    line: usize,
    size: usize,
    pattern: Pattern,
    etag: String,
    sha1_hex: String,
}

/// A V2 row: `size  pattern  parts  v2:etag`.
#[derive(Debug)]
struct V2Row {
    line: usize,
    size: usize,
    pattern: Pattern,
    parts: Vec<usize>,
    etag: String,
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/qetag/vectors.tsv")
}

/// Every row of the file, checked for form; panics on any line it cannot read.
fn rows() -> (Vec<V1Row>, Vec<V2Row>) {
    let text = std::fs::read_to_string(vectors_path()).expect("fixtures/qetag/vectors.tsv");
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let columns: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            columns.len(),
            4,
            "line {line_no}: expected 4 columns: {line:?}"
        );
        let size: usize = columns[0]
            .parse()
            .unwrap_or_else(|_| panic!("line {line_no}: bad size {:?}", columns[0]));
        let pattern = Pattern::parse(columns[1]);
        if let Some(etag) = columns[3].strip_prefix("v2:") {
            let parts = columns[2]
                .split(',')
                .map(|p| {
                    p.parse::<usize>()
                        .unwrap_or_else(|_| panic!("line {line_no}: bad part size {p:?}"))
                })
                .collect();
            v2.push(V2Row {
                line: line_no,
                size,
                pattern,
                parts,
                etag: etag.to_owned(),
            });
        } else {
            assert_eq!(columns[2].len(), 28, "line {line_no}: etag column");
            assert_eq!(columns[3].len(), 40, "line {line_no}: sha1 column");
            v1.push(V1Row {
                line: line_no,
                size,
                pattern,
                etag: columns[2].to_owned(),
                sha1_hex: columns[3].to_owned(),
            });
        }
    }
    (v1, v2)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn streamed(data: &[u8], chunk: usize) -> Etag {
    let mut hasher = Qetag::new();
    for piece in data.chunks(chunk) {
        hasher.update(piece);
    }
    assert_eq!(hasher.bytes_hashed(), data.len() as u64);
    hasher.finalize()
}

// ---------------------------------------------------------------------------------
// Vector tests
// ---------------------------------------------------------------------------------

#[test]
fn the_vectors_file_has_every_expected_row() {
    let (v1, v2) = rows();
    assert_eq!(v1.len(), 14, "V1 rows");
    assert_eq!(v2.len(), 6, "V2 rows");
    let patterns: Vec<_> = v1.iter().map(|r| r.pattern.clone()).collect();
    assert!(patterns.contains(&Pattern::Empty));
    assert!(patterns.contains(&Pattern::Mod251));
    assert!(patterns.contains(&Pattern::CrateFake));
    assert!(patterns.iter().any(|p| matches!(p, Pattern::Ascii(_))));
}

#[test]
fn v1_vectors_one_shot_and_sha1_column() {
    for row in rows().0 {
        let data = row.pattern.data(row.size);
        assert_eq!(
            hex(&Sha1::digest(&data)),
            row.sha1_hex,
            "line {}: sha1 of the regenerated data",
            row.line
        );
        let etag = qetag(&data);
        assert_eq!(etag.as_str(), row.etag, "line {}: one-shot etag", row.line);
        let expected_prefix = if row.size > BLOCK_SIZE {
            PREFIX_MULTI_BLOCK
        } else {
            PREFIX_SINGLE_BLOCK
        };
        assert_eq!(etag.prefix(), expected_prefix, "line {}", row.line);
        assert_eq!(
            row.etag.parse::<Etag>(),
            Ok(etag),
            "line {}: parse",
            row.line
        );
        let digests: Vec<[u8; 20]> = data.chunks(BLOCK_SIZE).map(block_digest).collect();
        assert_eq!(
            Etag::from_block_digests(&digests),
            etag,
            "line {}: from_block_digests",
            row.line
        );
    }
}

/// Streaming in chunks of `chunk` bytes over every V1 vector.
fn v1_streaming(chunk: usize) {
    for row in rows().0 {
        let data = row.pattern.data(row.size);
        assert_eq!(
            streamed(&data, chunk).as_str(),
            row.etag,
            "line {}: streaming in {chunk}-byte chunks",
            row.line
        );
    }
}

#[test]
fn v1_vectors_streaming_1_byte_chunks() {
    v1_streaming(1);
}

#[test]
fn v1_vectors_streaming_7_byte_chunks() {
    v1_streaming(7);
}

#[test]
fn v1_vectors_streaming_4097_byte_chunks() {
    v1_streaming(4096 + 1);
}

#[test]
fn v1_vectors_streaming_128_kib_chunks() {
    v1_streaming(128 * 1024);
}

/// The V2 (part-dependent) etag, from the file's header: V1 when every part but the
/// last is 4 MiB and the last at most 4 MiB; otherwise
/// `urlsafe_b64(0x9e || sha1(concat over parts of V1raw(part)[1:])))`.
fn etag_v2(data: &[u8], parts: &[usize]) -> String {
    use base64::Engine as _;
    let (last, init) = parts.split_last().expect("at least one part");
    if init.iter().all(|&p| p == BLOCK_SIZE) && *last <= BLOCK_SIZE {
        return qetag(data).to_string();
    }
    let mut outer = Sha1::new();
    let mut start = 0;
    for &part in parts {
        outer.update(qetag(&data[start..start + part]).digest());
        start += part;
    }
    let mut raw = vec![0x9e];
    raw.extend_from_slice(&outer.finalize());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

#[test]
fn v2_vectors_from_v1_part_digests() {
    for row in rows().1 {
        assert_eq!(
            row.parts.iter().sum::<usize>(),
            row.size,
            "line {}: parts add up to the size",
            row.line
        );
        let data = row.pattern.data(row.size);
        assert_eq!(
            etag_v2(&data, &row.parts),
            row.etag,
            "line {}: V2 etag",
            row.line
        );
    }
}

#[test]
fn size_suffix_is_base_36() {
    assert_eq!(size_suffix(0), "0");
    assert_eq!(size_suffix(BLOCK_SIZE as u64), "2hwcg");
    assert_eq!(
        u64::from_str_radix(&size_suffix(5_490_455_272), 36),
        Ok(5_490_455_272)
    );
    assert_eq!(
        u64::from_str_radix(&size_suffix(u64::MAX), 36),
        Ok(u64::MAX)
    );
}

#[test]
fn etag_serde_is_the_string() {
    let etag = qetag(b"a");
    let json = serde_json::to_value(etag).unwrap();
    assert_eq!(json, serde_json::json!("Fob35Df6paf84V0d3Lnq6uo3dme4"));
    assert_eq!(serde_json::from_value::<Etag>(json).unwrap(), etag);
    assert!(serde_json::from_value::<Etag>(serde_json::json!("AAAA")).is_err());
    assert!(serde_json::from_value::<Etag>(serde_json::json!(5)).is_err());
}

// ---------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------

/// `len` bytes from a seed (SplitMix64), much faster than a proptest byte vector.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Mostly small inputs, often around one block boundary, sometimes up to 9 MiB.
fn data_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0..70_000usize,
        3 => (BLOCK_SIZE - 300)..(BLOCK_SIZE + 300),
        1 => (2 * BLOCK_SIZE - 100)..(2 * BLOCK_SIZE + 100),
        1 => 0..(9 * 1024 * 1024 + 1usize),
    ]
}

/// Chunk sizes to cycle through: tiny and large.
fn splits() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1..64usize, 1..300_000usize], 1..12)
}

proptest! {
    #![proptest_config(persisted(24, "proptest-regressions/qetag.txt"))]

    #[test]
    fn streaming_over_any_split_equals_one_shot(
        len in data_len(),
        seed in any::<u64>(),
        splits in splits(),
    ) {
        let data = random_bytes(seed, len);
        let one_shot = qetag(&data);

        let mut hasher = Qetag::new();
        let mut rest = &data[..];
        for size in splits.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at((*size).min(rest.len()));
            hasher.update(now);
            // Empty updates change nothing.
            hasher.update(&[]);
            rest = later;
        }
        prop_assert_eq!(hasher.bytes_hashed(), len as u64);
        prop_assert_eq!(hasher.finalize(), one_shot);

        let digests: Vec<[u8; 20]> = data.chunks(BLOCK_SIZE).map(block_digest).collect();
        prop_assert_eq!(Etag::from_block_digests(&digests), one_shot);
        prop_assert_eq!(one_shot.is_multi_block(), len > BLOCK_SIZE);
        prop_assert_eq!(one_shot.to_string().parse::<Etag>(), Ok(one_shot));
    }

    #[test]
    fn etag_parse_never_panics(text in "\\PC{0,40}") {
        let _ = text.parse::<Etag>();
    }

    #[test]
    fn any_28_alphabet_characters_parse_or_have_a_bad_prefix(text in "[A-Za-z0-9_-]{28}") {
        match text.parse::<Etag>() {
            Ok(etag) => prop_assert_eq!(etag.as_str(), text.as_str()),
            Err(error) => prop_assert!(matches!(error, EtagError::Prefix { .. }), "{error:?}"),
        }
    }

    #[test]
    fn etag_parse_accepts_exactly_prefixed_28_char_base64(raw in prop::array::uniform21(any::<u8>())) {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let parsed = text.parse::<Etag>();
        if raw[0] == PREFIX_SINGLE_BLOCK || raw[0] == PREFIX_MULTI_BLOCK {
            let etag = parsed.unwrap();
            prop_assert_eq!(etag.as_str(), text.as_str());
            prop_assert_eq!(etag.to_raw(), raw);
        } else {
            prop_assert!(parsed.is_err());
        }
    }
}
