//! BitTorrent metainfo (`.torrent` files): what a user uploads before asking a drive
//! to download a torrent, read without trusting it.
//!
//! Facts: BEP 3 (the metainfo format and the info hash), BEP 12 (`announce-list`),
//! BEP 19 (`url-list` web seeds), BEP 27 (`private`), BEP 47 (padding files), BEP 9
//! (magnet links); real files in `fixtures/torrents/` (from the `webtorrent-fixtures`
//! package, with infohashes computed by two independent tools).
//!
//! Bencode is decoded by [`bendy`] with a nesting limit; this module never re-encodes
//! anything: the [`InfoHash`] is the SHA-1 of the info dictionary's bytes exactly as
//! they appear in the file. Decoding borrows from the input and keeps only the fields
//! below, so memory stays proportional to the input, which is itself capped
//! ([`MAX_TORRENT_BYTES`]).
//!
//! Hostile input is a [`TorrentError`], never a panic: oversized input, deep nesting,
//! string lengths past the end, malformed or overflowing integers, negative lengths,
//! a total length past `u64`, a missing or unusable `name`, path components that could
//! escape the download directory (empty, `.`, `..`, containing `/`, `\` or NUL), too
//! many files, and `pieces` that do not match the content length.
//!
//! Leniency where real torrents vary: unknown keys anywhere are ignored; `name.utf-8`
//! and `path.utf-8` are preferred when present and valid UTF-8; optional top-level
//! fields of an unexpected type (an integer `announce`, a non-UTF-8 `comment`) are
//! dropped rather than failing the torrent; bytes after the top-level dictionary are
//! ignored; the top-level dictionary's keys may come in any order (the infohash comes
//! from the info dictionary's bytes alone; [`Metainfo::canonical`] says whether they
//! were sorted). Not lenient: [`bendy`] enforces canonical bencode below the top
//! level, so an info dictionary (or any nested one) whose keys are unsorted, a key
//! repeated anywhere, and integers with leading zeros or `-0` are rejected as
//! [`BencodeErrorKind::Syntax`] / [`BencodeErrorKind::UnsortedKeys`].
//!
//! ```
//! use offline_proto::torrent::Metainfo;
//!
//! let torrent = b"d4:infod6:lengthi3e4:name5:a.txt12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
//! let meta = Metainfo::from_bytes(torrent).unwrap();
//! assert_eq!(meta.name, "a.txt");
//! assert_eq!(meta.files[0].path, ["a.txt"]);
//! assert_eq!(meta.total_length, 3);
//! assert!(meta.magnet().starts_with("magnet:?xt=urn:btih:"));
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use bendy::decoding::{Decoder, Object};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha1::{Digest as _, Sha1};

/// The largest `.torrent` file accepted: 16 MiB (16 777 216 bytes). Real torrents of
/// very large releases reach a few MiB, mostly `pieces`.
pub const MAX_TORRENT_BYTES: usize = 16 * 1024 * 1024;

/// The deepest nesting of lists and dictionaries accepted: 64 levels. A multi-file
/// torrent needs 5 (top dictionary, `info`, `files`, a file, its `path`).
pub const MAX_DEPTH: usize = 64;

/// The most files accepted in one torrent: 1 000 000.
pub const MAX_FILES: usize = 1_000_000;

/// The most bytes of file paths one torrent may expand to: 64 MiB (67 108 864), counted
/// over every file's [`TorrentFile::path`] (the torrent's `name`, which each path of a
/// multi-file torrent repeats, included). The input holds each path once, but the
/// `name` is written once for all files: a 300 KB name over 10 000 files would expand
/// a 340 KB torrent to 3 GB. With this bound a parsed torrent takes at most about
/// 64 MiB of path text plus some 150 bytes of bookkeeping per file (so 1 000 000 files,
/// [`MAX_FILES`], stay under about 250 MiB).
pub const MAX_PATH_BYTES: usize = 64 * 1024 * 1024;

/// The most characters of hostile input an error message repeats.
const ECHO_MAX: usize = 40;

/// Limits applied while reading a torrent. [`Limits::default`] holds
/// [`MAX_TORRENT_BYTES`], [`MAX_DEPTH`] and [`MAX_FILES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest input accepted, in bytes.
    pub max_bytes: usize,
    /// The deepest nesting of lists and dictionaries accepted, in levels.
    pub max_depth: usize,
    /// The most entries accepted in `info.files`.
    pub max_files: usize,
    /// The most bytes all files' paths may expand to ([`MAX_PATH_BYTES`]).
    pub max_path_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: MAX_TORRENT_BYTES,
            max_depth: MAX_DEPTH,
            max_files: MAX_FILES,
            max_path_bytes: MAX_PATH_BYTES,
        }
    }
}

impl Limits {
    /// These limits with `max_bytes` (in bytes) replaced.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// These limits with `max_depth` (in levels) replaced.
    pub fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// These limits with `max_files` replaced.
    pub fn with_max_files(mut self, max_files: usize) -> Self {
        self.max_files = max_files;
        self
    }

    /// These limits with `max_path_bytes` (in bytes) replaced.
    pub fn with_max_path_bytes(mut self, max_path_bytes: usize) -> Self {
        self.max_path_bytes = max_path_bytes;
        self
    }
}

/// What kind of bencode error [`bendy`] reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BencodeErrorKind {
    /// The input ends in the middle of a value, or a string's length runs past the end.
    Truncated,
    /// Lists and dictionaries nest deeper than [`Limits::max_depth`].
    TooDeep,
    /// A dictionary's keys are not in sorted order, or a key is repeated.
    UnsortedKeys,
    /// Anything else: an unexpected byte, a malformed integer (`i-0e`, `i03e`), a
    /// string length too large for memory addresses, a non-string key.
    Syntax,
}

/// Why a `.torrent` file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TorrentError {
    /// The input is larger than [`Limits::max_bytes`].
    #[error("torrent file is {size} bytes, more than the {max} accepted")]
    TooLarge {
        /// The input's size, in bytes.
        size: usize,
        /// The limit, in bytes.
        max: usize,
    },
    /// The input is not valid bencode.
    #[error("torrent file is not valid bencode ({kind:?}): {detail}")]
    Bencode {
        /// What kind of error.
        kind: BencodeErrorKind,
        /// The decoder's message.
        detail: String,
    },
    /// The top-level value is not a dictionary.
    #[error("torrent file is not a bencoded dictionary")]
    NotADictionary,
    /// There is no `info` dictionary.
    #[error("torrent file has no `info` dictionary")]
    MissingInfo,
    /// The info dictionary has no `name` (nor `name.utf-8`).
    #[error("torrent has no name: its `info` dictionary lacks the `name` field")]
    MissingName,
    /// The `name` is empty, not UTF-8, or not usable as a file or directory name.
    #[error("torrent name {name:?} is unusable: {reason}")]
    InvalidName {
        /// The name, lossily decoded and cut to 40 characters.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A required field is absent.
    #[error("torrent lacks the required field `{field}`")]
    MissingField {
        /// Where the field belongs, e.g. `info.pieces`.
        field: &'static str,
    },
    /// A field holds the wrong kind of value.
    #[error("torrent field `{field}` should be {expected}")]
    WrongType {
        /// Where the field is, e.g. `info.files[3].length`.
        field: String,
        /// What it should be, e.g. `an integer`.
        expected: &'static str,
    },
    /// An integer that does not fit 64 bits.
    #[error("torrent field `{field}` holds an integer out of range: {value}")]
    IntegerOutOfRange {
        /// Where the field is.
        field: String,
        /// The integer as written, cut to 40 characters.
        value: String,
    },
    /// A length that is negative (or a piece length that is not positive).
    #[error("torrent field `{field}` must be {expected}, found {value}")]
    InvalidLength {
        /// Where the field is.
        field: String,
        /// The value found.
        value: i64,
        /// What it must be, e.g. `positive`.
        expected: &'static str,
    },
    /// The file lengths add up to more than `u64::MAX` bytes.
    #[error("torrent's file lengths add up to more than 2^64 - 1 bytes")]
    TotalLengthOverflow,
    /// `info.pieces` is not a whole number of 20-byte SHA-1 digests.
    #[error("torrent's `info.pieces` is {len} bytes long, not a multiple of 20")]
    BadPieces {
        /// The length of `pieces`, in bytes.
        len: usize,
    },
    /// The number of piece hashes does not match the content length.
    #[error("torrent has {found} piece hashes but {expected} pieces of content")]
    PieceCountMismatch {
        /// `ceil(total_length / piece_length)`.
        expected: u64,
        /// The number of 20-byte digests in `pieces`.
        found: usize,
    },
    /// More files than [`Limits::max_files`].
    #[error("torrent lists more than {max} files")]
    TooManyFiles {
        /// The limit.
        max: usize,
    },
    /// The files' paths, with the torrent's `name` in front of each, come to more than
    /// [`Limits::max_path_bytes`] (a long `name` over many files).
    #[error("torrent's file paths come to more than {max} bytes (its name of {name_bytes} bytes is repeated in each of {files} paths)")]
    PathsTooLong {
        /// The limit, in bytes.
        max: usize,
        /// The length of `info.name`, in bytes.
        name_bytes: usize,
        /// How many files the torrent lists.
        files: usize,
    },
    /// A multi-file torrent whose `files` list is empty.
    #[error("torrent's `info.files` is empty")]
    NoFiles,
    /// Both `length` (single file) and `files` (several) are present.
    #[error("torrent's `info` has both `length` and `files`, so its layout is ambiguous")]
    AmbiguousLayout,
    /// A BitTorrent v2-only torrent (BEP 52: `meta version` 2, `file tree`, no
    /// `pieces`), which has no v1 info hash.
    #[error("torrent is BitTorrent v2 only (no `pieces`), which is not supported")]
    V2Only,
    /// A file path that is empty or has a component that could escape the download
    /// directory or is not UTF-8.
    #[error("unsafe path in `info.files[{file_index}]`: component {component:?} {reason}")]
    UnsafePath {
        /// The file's position in `info.files`.
        file_index: usize,
        /// The offending component, lossily decoded and cut to 40 characters.
        component: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

impl TorrentError {
    fn bencode(err: &bendy::decoding::Error) -> Self {
        // bendy keeps its error kinds private; its messages are stable and tested in
        // tests/torrent.rs.
        let detail = err.to_string();
        let kind = if detail.contains("EOF") {
            BencodeErrorKind::Truncated
        } else if detail.contains("nesting depth") {
            BencodeErrorKind::TooDeep
        } else if detail.contains("not sorted") {
            BencodeErrorKind::UnsortedKeys
        } else {
            BencodeErrorKind::Syntax
        };
        Self::Bencode {
            kind,
            detail: cut(&detail, 200),
        }
    }

    fn wrong_type(field: impl Into<String>, expected: &'static str) -> Self {
        Self::WrongType {
            field: field.into(),
            expected,
        }
    }
}

fn bencode(err: bendy::decoding::Error) -> TorrentError {
    TorrentError::bencode(&err)
}

/// At most `max` characters of `text`, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

fn lossy(bytes: &[u8]) -> String {
    cut(&String::from_utf8_lossy(bytes), ECHO_MAX)
}

/// A torrent's v1 info hash: the SHA-1 of the bencoded info dictionary, exactly as
/// the bytes appear in the `.torrent` file.
///
/// Displays and parses as 40 lowercase hex digits (parsing accepts uppercase too);
/// serializes as that string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// The SHA-1 of `info_dict`, the raw bytes of a bencoded info dictionary.
    pub fn of_info_bytes(info_dict: &[u8]) -> Self {
        Self(Sha1::digest(info_dict).into())
    }

    /// The 20 bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The info hash a magnet link's `urn:btih:` (or a bare infohash) spells: 40 hex
    /// digits, or 32 base32 digits (RFC 4648, either case, no padding), the two forms
    /// BEP 9 allows. `None` for anything else.
    pub fn from_btih(text: &str) -> Option<Self> {
        if text.len() == 40 {
            return text.parse().ok();
        }
        if text.len() != 32 {
            return None;
        }
        let mut out = [0u8; 20];
        let (mut bits, mut count, mut at) = (0u64, 0u32, 0usize);
        for byte in text.bytes() {
            let value = match byte.to_ascii_uppercase() {
                c @ b'A'..=b'Z' => c - b'A',
                c @ b'2'..=b'7' => c - b'2' + 26,
                _ => return None,
            };
            bits = (bits << 5) | u64::from(value);
            count += 5;
            if count >= 8 {
                count -= 8;
                *out.get_mut(at)? = u8::try_from((bits >> count) & 0xff).ok()?;
                at += 1;
            }
        }
        (at == 20).then_some(Self(out))
    }
}

/// The info hash of a magnet link (`magnet:?…xt=urn:btih:<hash>…`, the names
/// compared without regard to case; the hash in either of [`InfoHash::from_btih`]'s
/// forms); `None` for anything else, a magnet link without one included.
pub fn magnet_info_hash(link: &str) -> Option<InfoHash> {
    let query = link
        .get(..8)
        .filter(|p| p.eq_ignore_ascii_case("magnet:?"))
        .map(|_| &link[8..])?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        let hash = value
            .get(..9)
            .filter(|p| key.eq_ignore_ascii_case("xt") && p.eq_ignore_ascii_case("urn:btih:"))
            .map(|_| &value[9..])?;
        InfoHash::from_btih(hash)
    })
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({self})")
    }
}

/// Why a string is not a hex info hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InfoHashError {
    /// Not 40 characters long.
    #[error("an info hash has 40 hex digits, this one has {len} characters")]
    Length {
        /// The length found, in characters.
        len: usize,
    },
    /// A character that is not a hex digit.
    #[error("an info hash is hex; found {found:?} at character {position}")]
    NotHex {
        /// The character's position, from 0.
        position: usize,
        /// The character.
        found: char,
    },
}

impl FromStr for InfoHash {
    type Err = InfoHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let len = s.chars().count();
        if len != 40 || s.len() != 40 {
            return Err(InfoHashError::Length { len });
        }
        let mut out = [0u8; 20];
        let digits = s.as_bytes();
        for (i, byte) in out.iter_mut().enumerate() {
            let hi = hex_value(digits[2 * i]).ok_or(InfoHashError::NotHex {
                position: 2 * i,
                found: char::from(digits[2 * i]),
            })?;
            let lo = hex_value(digits[2 * i + 1]).ok_or(InfoHashError::NotHex {
                position: 2 * i + 1,
                found: char::from(digits[2 * i + 1]),
            })?;
            *byte = hi << 4 | lo;
        }
        Ok(Self(out))
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl Serialize for InfoHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for InfoHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One file of a torrent, in the order of the metainfo.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TorrentFile {
    /// Where the file lands relative to the download directory, as checked
    /// components: `[name]` for a single-file torrent, `[name, dir.., file]` for a
    /// multi-file one (whose `name` is the top directory).
    pub path: Vec<String>,
    /// The file's size, in bytes.
    pub length: u64,
    /// The file's position in the torrent, from 0 (what clients call the file index).
    pub index: usize,
    /// Where the file starts in the torrent's concatenated content, in bytes.
    pub offset: u64,
    /// Whether this is a BEP 47 padding file (`attr` contains `p`), which clients do
    /// not write to disk.
    pub padding: bool,
    /// The file's `path` joined with `/` (lossy UTF-8; below the torrent's name, which
    /// it does not repeat) when [`path`](Self::path) came from `path.utf-8` and `path`
    /// says otherwise: tools that read `path` name the file this way.
    pub other_path: Option<String>,
}

impl TorrentFile {
    /// The path's components joined with `/`.
    pub fn joined_path(&self) -> String {
        self.path.join("/")
    }

    /// The first component of the path Windows cannot name a file with, and why
    /// ([`windows_unsafe`]).
    pub fn windows_unsafe(&self) -> Option<(&str, &'static str)> {
        self.path
            .iter()
            .find_map(|c| windows_unsafe(c).map(|why| (c.as_str(), why)))
    }
}

/// Why Windows cannot create a file or folder named `component`, if it cannot: a
/// reserved device name (`CON`, `PRN`, `AUX`, `NUL`, `COM1`–`COM9`, `LPT1`–`LPT9`, in any
/// case, with or without an extension), a character Windows forbids (`<>:"|?*` or a
/// control character), or a trailing dot or space. Such a torrent downloads fine to a
/// cloud drive, but a Windows client syncing it renames or skips the file.
pub fn windows_unsafe(component: &str) -> Option<&'static str> {
    let stem = component.split('.').next().unwrap_or(component);
    let reserved = ["CON", "PRN", "AUX", "NUL"]
        .iter()
        .any(|r| stem.eq_ignore_ascii_case(r))
        || (stem.len() == 4
            && ["COM", "LPT"]
                .iter()
                .any(|p| stem[..3].eq_ignore_ascii_case(p))
            && matches!(stem.as_bytes()[3], b'1'..=b'9'));
    if reserved {
        Some("is a reserved device name on Windows")
    } else if component.contains(['<', '>', ':', '"', '|', '?', '*']) {
        Some("holds a character Windows forbids in names (<>:\"|?*)")
    } else if component.chars().any(char::is_control) {
        Some("holds a control character")
    } else if component.ends_with(['.', ' ']) {
        Some("ends in a dot or a space, which Windows drops")
    } else {
        None
    }
}

/// A decoded `.torrent` file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metainfo {
    /// SHA-1 of the info dictionary's raw bytes.
    pub info_hash: InfoHash,
    /// `info.name` (or `info.name.utf-8`): the file name of a single-file torrent,
    /// the top directory of a multi-file one.
    pub name: String,
    /// Whether the info dictionary lists `files` (so `name` is a directory).
    pub multi_file: bool,
    /// `info.piece length`, in bytes.
    pub piece_length: u64,
    /// `info.pieces`: one SHA-1 per piece.
    pub pieces: Vec<[u8; 20]>,
    /// The sum of every file's length (padding files included), in bytes.
    pub total_length: u64,
    /// Every file, in order; a single-file torrent has one, whose path is `[name]`.
    pub files: Vec<TorrentFile>,
    /// `info.private == 1` (BEP 27): only the listed trackers may be used.
    pub private: bool,
    /// `announce`: the main tracker URL.
    pub announce: Option<String>,
    /// `announce-list` (BEP 12): tiers of tracker URLs; empty tiers dropped.
    pub announce_list: Vec<Vec<String>>,
    /// `url-list` (BEP 19): web seed URLs, from a single string or a list.
    pub web_seeds: Vec<String>,
    /// `comment` (or `comment.utf-8`).
    pub comment: Option<String>,
    /// `created by`: the program that made the torrent.
    pub created_by: Option<String>,
    /// `creation date` exactly as written: seconds since the Unix epoch per BEP 3, but
    /// some programs (WebTorrent, in the fixtures) wrote milliseconds; see
    /// [`Metainfo::creation_time`].
    pub creation_date: Option<i64>,
    /// Whether the file is canonical bencode throughout. `false` when the top-level
    /// dictionary's keys are not in sorted order (accepted: the infohash is unaffected,
    /// but tools that re-encode the file will write other bytes).
    pub canonical: bool,
}

impl Metainfo {
    /// Reads a `.torrent` file with the default [`Limits`].
    ///
    /// # Errors
    ///
    /// [`TorrentError`] when the input is too large, not valid bencode, or not a
    /// usable v1 torrent (see the variants).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TorrentError> {
        Self::from_bytes_with_limits(bytes, &Limits::default())
    }

    /// Reads a `.torrent` file with the given limits.
    ///
    /// # Errors
    ///
    /// As [`Metainfo::from_bytes`], with these limits.
    pub fn from_bytes_with_limits(bytes: &[u8], limits: &Limits) -> Result<Self, TorrentError> {
        if bytes.len() > limits.max_bytes {
            return Err(TorrentError::TooLarge {
                size: bytes.len(),
                max: limits.max_bytes,
            });
        }
        let sorted;
        let (bytes, canonical) = match check_structure(bytes, limits) {
            Ok(()) => (bytes, true),
            Err(
                error @ TorrentError::Bencode {
                    kind: BencodeErrorKind::UnsortedKeys,
                    ..
                },
            ) => {
                // Perhaps only the top level is out of order: sort it and try again
                // (nested dictionaries are copied byte for byte, so they are checked
                // as strictly as before, and the infohash is the same).
                sorted = sorted_top_level(bytes, limits.max_depth).ok_or(error)?;
                check_structure(&sorted, limits)?;
                (sorted.as_slice(), false)
            }
            Err(error) => return Err(error),
        };
        let top = read_top(bytes, limits)?;
        let info_raw = top.info.ok_or(TorrentError::MissingInfo)?;
        let info = read_info(info_raw, limits)?;
        Ok(Self {
            info_hash: InfoHash::of_info_bytes(info_raw),
            name: info.name,
            multi_file: info.multi_file,
            piece_length: info.piece_length,
            pieces: info.pieces,
            total_length: info.total_length,
            files: info.files,
            private: info.private,
            announce: top.announce,
            announce_list: top.announce_list,
            web_seeds: top.web_seeds,
            comment: top.comment_utf8.or(top.comment),
            created_by: top.created_by,
            creation_date: top.creation_date,
            canonical,
        })
    }

    /// The bytes of every file's path components, the name each repeats included:
    /// what [`Limits::max_path_bytes`] bounds (at most [`MAX_PATH_BYTES`] by default).
    pub fn path_bytes(&self) -> usize {
        self.files
            .iter()
            .flat_map(|f| &f.path)
            .fold(0, |sum, c| sum.saturating_add(c.len()))
    }

    /// The number of pieces.
    pub fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Every tracker URL once: `announce` first, then the `announce-list` tiers in
    /// order.
    pub fn trackers(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let all = self
            .announce
            .iter()
            .chain(self.announce_list.iter().flatten());
        for url in all {
            if !out.contains(&url.as_str()) {
                out.push(url);
            }
        }
        out
    }

    /// `creation date` as a time. Values of 10^11 and above (after the year 5138 if
    /// they were seconds) are read as milliseconds, which is what some creators wrote.
    /// `None` when absent or negative.
    pub fn creation_time(&self) -> Option<SystemTime> {
        let value = u64::try_from(self.creation_date?).ok()?;
        let since_epoch = if value >= 100_000_000_000 {
            Duration::from_millis(value)
        } else {
            Duration::from_secs(value)
        };
        SystemTime::UNIX_EPOCH.checked_add(since_epoch)
    }

    /// A magnet link for this torrent (BEP 9): `xt=urn:btih:<hex info hash>`, the
    /// display name `dn`, and one `tr` per tracker ([`Metainfo::trackers`]), each
    /// percent-encoded.
    pub fn magnet(&self) -> String {
        let mut link = format!("magnet:?xt=urn:btih:{}", self.info_hash);
        link.push_str("&dn=");
        percent_encode_into(&self.name, &mut link);
        for tracker in self.trackers() {
            link.push_str("&tr=");
            percent_encode_into(tracker, &mut link);
        }
        link
    }
}

/// Appends `text` with everything but RFC 3986 unreserved characters percent-encoded.
fn percent_encode_into(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// The top-level fields, before the info dictionary is read.
#[derive(Default)]
struct Top<'a> {
    info: Option<&'a [u8]>,
    announce: Option<String>,
    announce_list: Vec<Vec<String>>,
    web_seeds: Vec<String>,
    comment: Option<String>,
    comment_utf8: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
}

/// Walks the whole top-level dictionary once without keeping anything, so that any
/// bencode error (truncation, nesting, syntax) is reported as such before the fields
/// are interpreted, wherever it is.
fn check_structure(bytes: &[u8], limits: &Limits) -> Result<(), TorrentError> {
    let mut decoder = Decoder::new(bytes).with_max_depth(limits.max_depth);
    let checked = match decoder.next_object().map_err(bencode)? {
        Some(Object::Dict(dict)) => dict.into_raw().map(drop).map_err(bencode),
        _ => Err(TorrentError::NotADictionary),
    };
    checked
}

/// `bytes`' top-level dictionary with its entries in sorted key order, each key and
/// value copied byte for byte (bytes after the dictionary dropped); `None` when it is
/// not a well-formed dictionary, a key repeats, or it nests deeper than `max_depth`
/// (the strict reading then reports the error).
fn sorted_top_level(bytes: &[u8], max_depth: usize) -> Option<Vec<u8>> {
    let mut entries: Vec<(&[u8], &[u8])> = Vec::new();
    let mut at = 1;
    if bytes.first() != Some(&b'd') {
        return None;
    }
    while *bytes.get(at)? != b'e' {
        let key_start = at;
        let (key, after_key) = bencode_string(bytes, at)?;
        let end = skip_value(bytes, after_key, max_depth.checked_sub(1)?)?;
        entries.push((key, &bytes[key_start..end]));
        at = end;
    }
    entries.sort_by(|a, b| a.0.cmp(b.0));
    if entries.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    let mut out = Vec::with_capacity(at + 1);
    out.push(b'd');
    for (_, entry) in entries {
        out.extend_from_slice(entry);
    }
    out.push(b'e');
    Some(out)
}

/// A bencode string at `at`: its bytes and where it ends.
fn bencode_string(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let colon = at + bytes.get(at..)?.iter().position(|&b| b == b':')?;
    let digits = std::str::from_utf8(&bytes[at..colon]).ok()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let start = colon + 1;
    let end = start.checked_add(digits.parse::<usize>().ok()?)?;
    Some((bytes.get(start..end)?, end))
}

/// Where the bencode value at `at` ends; `None` if malformed or deeper than `depth`.
fn skip_value(bytes: &[u8], at: usize, depth: usize) -> Option<usize> {
    match *bytes.get(at)? {
        b'i' => Some(at + 1 + bytes.get(at + 1..)?.iter().position(|&b| b == b'e')? + 1),
        b'l' | b'd' => {
            let depth = depth.checked_sub(1)?;
            let mut next = at + 1;
            while *bytes.get(next)? != b'e' {
                next = skip_value(bytes, next, depth)?;
            }
            Some(next + 1)
        }
        _ => bencode_string(bytes, at).map(|(_, end)| end),
    }
}

fn read_top<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Top<'a>, TorrentError> {
    let mut decoder = Decoder::new(bytes).with_max_depth(limits.max_depth);
    let mut dict = match decoder.next_object().map_err(bencode)? {
        Some(Object::Dict(dict)) => dict,
        _ => return Err(TorrentError::NotADictionary),
    };
    let mut top = Top::default();
    while let Some((key, value)) = dict.next_pair().map_err(bencode)? {
        match key {
            b"info" => match value {
                Object::Dict(info) => top.info = Some(info.into_raw().map_err(bencode)?),
                _ => return Err(TorrentError::wrong_type("info", "a dictionary")),
            },
            b"announce" => top.announce = utf8_string(value).filter(|s| !s.is_empty()),
            b"announce-list" => top.announce_list = tiers(value)?,
            b"url-list" => top.web_seeds = web_seeds(value)?,
            b"comment" => top.comment = utf8_string(value),
            b"comment.utf-8" => top.comment_utf8 = utf8_string(value),
            b"created by" => top.created_by = utf8_string(value),
            b"creation date" => {
                top.creation_date = match value {
                    Object::Integer(text) => text.parse().ok(),
                    _ => None,
                }
            }
            _ => {}
        }
    }
    Ok(top)
}

/// A byte string that is UTF-8, or `None` for anything else (lenient optional fields).
fn utf8_string(value: Object<'_, '_>) -> Option<String> {
    match value {
        Object::Bytes(bytes) => std::str::from_utf8(bytes).ok().map(str::to_owned),
        _ => None,
    }
}

/// `announce-list`: a list of lists of URLs. Tiers that are not lists and URLs that
/// are not UTF-8 strings are skipped; empty tiers are dropped.
fn tiers(value: Object<'_, '_>) -> Result<Vec<Vec<String>>, TorrentError> {
    let Object::List(mut list) = value else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    while let Some(tier) = list.next_object().map_err(bencode)? {
        let Object::List(mut tier) = tier else {
            continue;
        };
        let mut urls = Vec::new();
        while let Some(url) = tier.next_object().map_err(bencode)? {
            if let Some(url) = utf8_string(url).filter(|s| !s.is_empty()) {
                urls.push(url);
            }
        }
        if !urls.is_empty() {
            out.push(urls);
        }
    }
    Ok(out)
}

/// `url-list`: one URL or a list of them; empty and non-UTF-8 entries skipped.
fn web_seeds(value: Object<'_, '_>) -> Result<Vec<String>, TorrentError> {
    match value {
        Object::List(mut list) => {
            let mut out = Vec::new();
            while let Some(url) = list.next_object().map_err(bencode)? {
                if let Some(url) = utf8_string(url).filter(|s| !s.is_empty()) {
                    out.push(url);
                }
            }
            Ok(out)
        }
        single => Ok(utf8_string(single)
            .filter(|s| !s.is_empty())
            .into_iter()
            .collect()),
    }
}

/// The info dictionary's fields that matter here.
struct Info {
    name: String,
    multi_file: bool,
    piece_length: u64,
    pieces: Vec<[u8; 20]>,
    total_length: u64,
    files: Vec<TorrentFile>,
    private: bool,
}

/// A file entry before the torrent's name is known.
struct RawFile {
    path: Vec<String>,
    other_path: Option<String>,
    length: u64,
    padding: bool,
}

fn read_info(raw: &[u8], limits: &Limits) -> Result<Info, TorrentError> {
    let mut decoder = Decoder::new(raw).with_max_depth(limits.max_depth);
    let mut dict = match decoder.next_object().map_err(bencode)? {
        Some(Object::Dict(dict)) => dict,
        _ => return Err(TorrentError::wrong_type("info", "a dictionary")),
    };
    let mut name: Option<&[u8]> = None;
    let mut name_utf8: Option<&[u8]> = None;
    let mut piece_length: Option<i64> = None;
    let mut pieces: Option<&[u8]> = None;
    let mut length: Option<u64> = None;
    let mut files: Option<Vec<RawFile>> = None;
    let mut private = false;
    let mut meta_version: Option<i64> = None;
    while let Some((key, value)) = dict.next_pair().map_err(bencode)? {
        match key {
            b"name" => match value {
                Object::Bytes(bytes) => name = Some(bytes),
                _ => return Err(TorrentError::wrong_type("info.name", "a string")),
            },
            b"name.utf-8" => {
                if let Object::Bytes(bytes) = value {
                    name_utf8 = Some(bytes);
                }
            }
            b"piece length" => piece_length = Some(integer(value, "info.piece length")?),
            b"pieces" => match value {
                Object::Bytes(bytes) => pieces = Some(bytes),
                _ => return Err(TorrentError::wrong_type("info.pieces", "a string")),
            },
            b"length" => length = Some(non_negative(value, "info.length")?),
            b"files" => files = Some(read_files(value, limits)?),
            b"private" => private = matches!(value, Object::Integer("1")),
            b"meta version" => {
                if let Object::Integer(text) = value {
                    meta_version = text.parse().ok();
                }
            }
            _ => {}
        }
    }

    let name = checked_name(name, name_utf8)?;

    let pieces = match pieces {
        Some(pieces) => pieces,
        None if meta_version == Some(2) => return Err(TorrentError::V2Only),
        None => {
            return Err(TorrentError::MissingField {
                field: "info.pieces",
            })
        }
    };
    if pieces.len() % 20 != 0 {
        return Err(TorrentError::BadPieces { len: pieces.len() });
    }
    let piece_length = match piece_length {
        None => {
            return Err(TorrentError::MissingField {
                field: "info.piece length",
            })
        }
        Some(value) if value <= 0 => {
            return Err(TorrentError::InvalidLength {
                field: "info.piece length".to_owned(),
                value,
                expected: "positive",
            })
        }
        Some(value) => value.unsigned_abs(),
    };

    let (multi_file, files) = match (length, files) {
        (Some(_), Some(_)) => return Err(TorrentError::AmbiguousLayout),
        (None, None) if meta_version == Some(2) => return Err(TorrentError::V2Only),
        (None, None) => {
            return Err(TorrentError::MissingField {
                field: "info.length or info.files",
            })
        }
        (Some(length), None) => (
            false,
            vec![RawFile {
                path: Vec::new(),
                other_path: None,
                length,
                padding: false,
            }],
        ),
        (None, Some(files)) if files.is_empty() => return Err(TorrentError::NoFiles),
        (None, Some(files)) => (true, files),
    };

    let file_count = files.len();
    let mut path_bytes = 0usize;
    for raw in &files {
        path_bytes = raw
            .path
            .iter()
            .fold(path_bytes.saturating_add(name.len()), |sum, c| {
                sum.saturating_add(c.len())
            });
        if path_bytes > limits.max_path_bytes {
            return Err(TorrentError::PathsTooLong {
                max: limits.max_path_bytes,
                name_bytes: name.len(),
                files: file_count,
            });
        }
    }
    let mut total_length: u64 = 0;
    let files = files
        .into_iter()
        .enumerate()
        .map(|(index, raw)| {
            let offset = total_length;
            total_length = total_length
                .checked_add(raw.length)
                .ok_or(TorrentError::TotalLengthOverflow)?;
            let mut path = Vec::with_capacity(raw.path.len() + 1);
            path.push(name.clone());
            path.extend(raw.path);
            Ok(TorrentFile {
                path,
                length: raw.length,
                index,
                offset,
                padding: raw.padding,
                other_path: raw.other_path,
            })
        })
        .collect::<Result<Vec<_>, TorrentError>>()?;

    let expected = total_length.div_ceil(piece_length);
    let found = pieces.len() / 20;
    if u64::try_from(found).ok() != Some(expected) {
        return Err(TorrentError::PieceCountMismatch { expected, found });
    }
    let pieces = pieces
        .chunks_exact(20)
        .map(|chunk| {
            let mut digest = [0u8; 20];
            digest.copy_from_slice(chunk);
            digest
        })
        .collect();

    Ok(Info {
        name,
        multi_file,
        piece_length,
        pieces,
        total_length,
        files,
        private,
    })
}

/// The torrent's name: `name.utf-8` when it is UTF-8, else `name`, which must be.
fn checked_name(name: Option<&[u8]>, name_utf8: Option<&[u8]>) -> Result<String, TorrentError> {
    let preferred = name_utf8
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .filter(|s| !s.is_empty());
    let text = match (preferred, name) {
        (Some(text), _) => text,
        (None, None) => return Err(TorrentError::MissingName),
        (None, Some(bytes)) => {
            std::str::from_utf8(bytes).map_err(|_| TorrentError::InvalidName {
                name: lossy(bytes),
                reason: "it is not UTF-8 (and there is no UTF-8 `name.utf-8`)",
            })?
        }
    };
    check_component(text).map_err(|reason| TorrentError::InvalidName {
        name: cut(text, ECHO_MAX),
        reason,
    })?;
    Ok(text.to_owned())
}

/// Refuses a path component that is empty or could leave the download directory.
fn check_component(component: &str) -> Result<(), &'static str> {
    if component.is_empty() {
        Err("is empty")
    } else if component == "." || component == ".." {
        Err("is `.` or `..` (path traversal)")
    } else if component.contains(['/', '\\']) {
        Err("contains a path separator (`/` or `\\`)")
    } else if component.contains('\0') {
        Err("contains a NUL character")
    } else {
        Ok(())
    }
}

/// An integer field that fits `i64`.
fn integer(value: Object<'_, '_>, field: &str) -> Result<i64, TorrentError> {
    match value {
        Object::Integer(text) => text.parse().map_err(|_| TorrentError::IntegerOutOfRange {
            field: field.to_owned(),
            value: cut(text, ECHO_MAX),
        }),
        _ => Err(TorrentError::wrong_type(field, "an integer")),
    }
}

/// A length field: an integer that is not negative.
fn non_negative(value: Object<'_, '_>, field: &str) -> Result<u64, TorrentError> {
    let value = integer(value, field)?;
    u64::try_from(value).map_err(|_| TorrentError::InvalidLength {
        field: field.to_owned(),
        value,
        expected: "zero or more",
    })
}

fn read_files(value: Object<'_, '_>, limits: &Limits) -> Result<Vec<RawFile>, TorrentError> {
    let Object::List(mut list) = value else {
        return Err(TorrentError::wrong_type("info.files", "a list"));
    };
    let mut files = Vec::new();
    while let Some(entry) = list.next_object().map_err(bencode)? {
        let index = files.len();
        if index >= limits.max_files {
            return Err(TorrentError::TooManyFiles {
                max: limits.max_files,
            });
        }
        let Object::Dict(mut entry) = entry else {
            return Err(TorrentError::wrong_type(
                format!("info.files[{index}]"),
                "a dictionary",
            ));
        };
        let mut length = None;
        let mut path: Option<Vec<&[u8]>> = None;
        let mut path_utf8: Option<Vec<&[u8]>> = None;
        let mut padding = false;
        while let Some((key, value)) = entry.next_pair().map_err(bencode)? {
            match key {
                b"length" => {
                    length = Some(non_negative(value, &format!("info.files[{index}].length"))?)
                }
                b"path" => {
                    path = Some(byte_strings(value)?.ok_or_else(|| {
                        TorrentError::wrong_type(
                            format!("info.files[{index}].path"),
                            "a list of strings",
                        )
                    })?)
                }
                b"path.utf-8" => path_utf8 = byte_strings(value)?,
                b"attr" => {
                    if let Object::Bytes(attr) = value {
                        padding = attr.contains(&b'p');
                    }
                }
                _ => {}
            }
        }
        let length = length.ok_or(TorrentError::MissingField {
            field: "info.files[].length",
        })?;
        let (path, other_path) = file_path(index, path, path_utf8)?;
        files.push(RawFile {
            path,
            other_path,
            length,
            padding,
        });
    }
    Ok(files)
}

/// A list whose items are all byte strings, `None` when it is something else.
fn byte_strings<'ser>(value: Object<'_, 'ser>) -> Result<Option<Vec<&'ser [u8]>>, TorrentError> {
    let Object::List(mut list) = value else {
        return Ok(None);
    };
    let mut out = Vec::new();
    while let Some(item) = list.next_object().map_err(bencode)? {
        match item {
            Object::Bytes(bytes) => out.push(bytes),
            _ => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// A file's checked components: `path.utf-8` when every component is UTF-8, else
/// `path`, which must be; and `path` joined (lossy) when it says otherwise.
fn file_path(
    index: usize,
    path: Option<Vec<&[u8]>>,
    path_utf8: Option<Vec<&[u8]>>,
) -> Result<(Vec<String>, Option<String>), TorrentError> {
    let utf8 = |components: &[&[u8]]| -> Option<Vec<String>> {
        components
            .iter()
            .map(|c| std::str::from_utf8(c).ok().map(str::to_owned))
            .collect()
    };
    let mut other = None;
    let chosen = match (path_utf8.as_deref().and_then(utf8), path) {
        (Some(components), raw) if !components.is_empty() => {
            if let Some(raw) = raw.filter(|raw| {
                raw.len() != components.len()
                    || raw.iter().zip(&components).any(|(r, c)| *r != c.as_bytes())
            }) {
                let joined: Vec<String> = raw
                    .iter()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                other = Some(joined.join("/"));
            }
            components
        }
        (_, None) => {
            return Err(TorrentError::MissingField {
                field: "info.files[].path",
            })
        }
        (_, Some(raw)) => {
            let mut out = Vec::with_capacity(raw.len());
            for component in raw {
                let text =
                    std::str::from_utf8(component).map_err(|_| TorrentError::UnsafePath {
                        file_index: index,
                        component: lossy(component),
                        reason: "is not UTF-8 (and there is no UTF-8 `path.utf-8`)",
                    })?;
                out.push(text.to_owned());
            }
            out
        }
    };
    if chosen.is_empty() {
        return Err(TorrentError::UnsafePath {
            file_index: index,
            component: String::new(),
            reason: "is missing: the path has no components",
        });
    }
    for component in &chosen {
        check_component(component).map_err(|reason| TorrentError::UnsafePath {
            file_index: index,
            component: cut(component, ECHO_MAX),
            reason,
        })?;
    }
    Ok((chosen, other))
}

/// Builds small, valid torrent files: for tests, demos and emulators that need a
/// torrent whose web seeds (BEP 19 `url-list`) point at a server of their own.
///
/// The output is canonical bencode (sorted keys), with the pieces hashed from the
/// data given, so [`Metainfo::from_bytes`] reads it back exactly.
///
/// ```
/// use offline_proto::torrent::{Metainfo, TorrentBuilder};
/// let bytes = TorrentBuilder::new("numbers")
///     .file(&["1.txt"], b"1\n".to_vec())
///     .file(&["2.txt"], b"2\n".to_vec())
///     .web_seed("http://127.0.0.1:8000/seed/")
///     .build();
/// let meta = Metainfo::from_bytes(&bytes).unwrap();
/// assert_eq!(meta.files.len(), 2);
/// assert_eq!(meta.web_seeds, ["http://127.0.0.1:8000/seed/"]);
/// ```
#[derive(Debug, Clone)]
pub struct TorrentBuilder {
    name: String,
    piece_length: u64,
    single: Option<Vec<u8>>,
    files: Vec<(Vec<String>, Vec<u8>)>,
    web_seeds: Vec<String>,
    announce: Option<String>,
}

impl TorrentBuilder {
    /// A torrent named `name` with 16 KiB pieces and no files yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            piece_length: 16 * 1024,
            single: None,
            files: Vec::new(),
            web_seeds: Vec::new(),
            announce: None,
        }
    }

    /// The piece length in bytes (at least 1).
    #[must_use]
    pub fn piece_length(mut self, bytes: u64) -> Self {
        self.piece_length = bytes.max(1);
        self
    }

    /// Makes it a single-file torrent holding `data` (the file is named after the
    /// torrent). Overrides [`file`](Self::file).
    #[must_use]
    pub fn single(mut self, data: Vec<u8>) -> Self {
        self.single = Some(data);
        self
    }

    /// Adds a file at `path` (components under the torrent's folder) to a multi-file
    /// torrent.
    #[must_use]
    pub fn file(mut self, path: &[&str], data: Vec<u8>) -> Self {
        self.files
            .push((path.iter().map(|c| (*c).to_owned()).collect(), data));
        self
    }

    /// Adds a web seed URL (`url-list`).
    #[must_use]
    pub fn web_seed(mut self, url: impl Into<String>) -> Self {
        self.web_seeds.push(url.into());
        self
    }

    /// Sets the tracker URL (`announce`).
    #[must_use]
    pub fn announce(mut self, url: impl Into<String>) -> Self {
        self.announce = Some(url.into());
        self
    }

    /// The torrent file's bytes.
    pub fn build(&self) -> Vec<u8> {
        let data: Vec<u8> = match &self.single {
            Some(d) => d.clone(),
            None => self
                .files
                .iter()
                .flat_map(|(_, d)| d.iter().copied())
                .collect(),
        };
        let mut pieces = Vec::with_capacity(data.len() / self.piece_length as usize * 20 + 20);
        for chunk in data.chunks(self.piece_length as usize) {
            pieces.extend_from_slice(&Sha1::digest(chunk));
        }
        let mut info = Vec::new();
        info.push(b'd');
        if self.single.is_none() {
            put_bytes(&mut info, b"files");
            info.push(b'l');
            for (path, d) in &self.files {
                info.push(b'd');
                put_bytes(&mut info, b"length");
                put_int(&mut info, d.len() as u64);
                put_bytes(&mut info, b"path");
                info.push(b'l');
                for c in path {
                    put_bytes(&mut info, c.as_bytes());
                }
                info.extend_from_slice(b"ee");
            }
            info.push(b'e');
        } else {
            put_bytes(&mut info, b"length");
            put_int(&mut info, data.len() as u64);
        }
        put_bytes(&mut info, b"name");
        put_bytes(&mut info, self.name.as_bytes());
        put_bytes(&mut info, b"piece length");
        put_int(&mut info, self.piece_length);
        put_bytes(&mut info, b"pieces");
        put_bytes(&mut info, &pieces);
        info.push(b'e');

        let mut out = Vec::with_capacity(info.len() + 128);
        out.push(b'd');
        if let Some(a) = &self.announce {
            put_bytes(&mut out, b"announce");
            put_bytes(&mut out, a.as_bytes());
        }
        put_bytes(&mut out, b"info");
        out.extend_from_slice(&info);
        if !self.web_seeds.is_empty() {
            put_bytes(&mut out, b"url-list");
            out.push(b'l');
            for w in &self.web_seeds {
                put_bytes(&mut out, w.as_bytes());
            }
            out.push(b'e');
        }
        out.push(b'e');
        out
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

fn put_int(out: &mut Vec<u8>, n: u64) {
    out.push(b'i');
    out.extend_from_slice(n.to_string().as_bytes());
    out.push(b'e');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A torrent whose `name` of `name_bytes` bytes heads each of `files` empty files.
    fn long_named(name_bytes: usize, files: usize) -> Vec<u8> {
        let mut builder = TorrentBuilder::new("n".repeat(name_bytes));
        for i in 0..files {
            builder = builder.file(&[&i.to_string()], Vec::new());
        }
        builder.build()
    }

    // Issue 10 #10: 570 KB that expanded to 3 GB of paths before the bound.
    #[test]
    fn a_long_name_over_many_files_is_refused_before_it_is_copied() {
        let hostile = long_named(300_000, 10_000);
        assert!(hostile.len() < 600_000, "{}", hostile.len());
        assert_eq!(
            Metainfo::from_bytes(&hostile),
            Err(TorrentError::PathsTooLong {
                max: MAX_PATH_BYTES,
                name_bytes: 300_000,
                files: 10_000,
            })
        );
        // The bound counts the name in every path: 10 files of a 100-byte name and
        // one-digit paths are 1 010 bytes.
        let small = long_named(100, 10);
        let limits = Limits::default().with_max_path_bytes(1_010);
        let meta = Metainfo::from_bytes_with_limits(&small, &limits).unwrap();
        assert_eq!(meta.files.len(), 10);
        assert_eq!(meta.path_bytes(), 1_010);
        let limits = limits.with_max_path_bytes(1_009);
        assert!(matches!(
            Metainfo::from_bytes_with_limits(&small, &limits),
            Err(TorrentError::PathsTooLong { max: 1_009, .. })
        ));
    }

    // Issue 10 #13: the infohash of a torrent whose top-level keys are unsorted is
    // well defined (the info dictionary's bytes); such a file is read, marked.
    #[test]
    fn unsorted_top_level_keys_are_read_and_marked_not_canonical() {
        let info =
            b"d6:lengthi3e4:name5:a.txt12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let canonical = [&b"d8:announce9:http://t/4:info"[..], info, b"e"].concat();
        let unsorted = [
            &b"d4:info"[..],
            info,
            b"7:comment2:hi8:announce9:http://t/e",
        ]
        .concat();
        let sorted = Metainfo::from_bytes(&canonical).unwrap();
        assert!(sorted.canonical);
        let meta = Metainfo::from_bytes(&unsorted).unwrap();
        assert!(!meta.canonical);
        assert_eq!(meta.info_hash, sorted.info_hash);
        assert_eq!(meta.info_hash, InfoHash::of_info_bytes(info));
        assert_eq!(meta.announce.as_deref(), Some("http://t/"));
        assert_eq!(meta.comment.as_deref(), Some("hi"));
        // Still strict below the top level, and about repeated keys.
        let bad_info = b"d4:infod4:name5:a.txt6:lengthi3e12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
        let repeated = [&b"d4:info"[..], info, b"4:info", info, b"e"].concat();
        for bad in [&bad_info[..], &repeated] {
            assert!(matches!(
                Metainfo::from_bytes(bad),
                Err(TorrentError::Bencode {
                    kind: BencodeErrorKind::UnsortedKeys,
                    ..
                })
            ));
        }
    }

    // Issue 10 #12: names other tools would write differently are reported.
    #[test]
    fn windows_unsafe_names_and_disagreeing_paths_are_reported() {
        for (name, unsafe_) in [
            ("CON", true),
            ("con.txt", true),
            ("Lpt9.log", true),
            ("COM0", false),
            ("console.txt", false),
            ("a:b", true),
            ("what?", true),
            ("trailing.", true),
            ("trailing ", true),
            ("bell\u{7}", true),
            ("ordinary name.mkv", false),
            ("测试.mp4", false),
        ] {
            assert_eq!(windows_unsafe(name).is_some(), unsafe_, "{name:?}");
        }
        let info = b"d5:filesld6:lengthi1e4:pathl3:CONe10:path.utf-8l3:CONeed6:lengthi1e4:pathl5:old.te10:path.utf-8l5:new.teee4:name4:pack12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let torrent = [&b"d4:info"[..], info, b"e"].concat();
        let meta = Metainfo::from_bytes(&torrent).unwrap();
        assert_eq!(
            meta.files[0].windows_unsafe(),
            Some(("CON", "is a reserved device name on Windows"))
        );
        assert_eq!(meta.files[0].other_path, None, "path and path.utf-8 agree");
        assert_eq!(meta.files[1].joined_path(), "pack/new.t");
        assert_eq!(meta.files[1].other_path.as_deref(), Some("old.t"));
        assert_eq!(meta.files[1].windows_unsafe(), None);
    }

    #[test]
    fn info_hash_hex_round_trip() {
        let hash: InfoHash = "722FE65B2AA26D14F35B4AD627D20236E481D924".parse().unwrap();
        assert_eq!(hash.to_string(), "722fe65b2aa26d14f35b4ad627d20236e481d924");
        assert_eq!(
            "72".parse::<InfoHash>(),
            Err(InfoHashError::Length { len: 2 })
        );
        assert!(matches!(
            "g22fe65b2aa26d14f35b4ad627d20236e481d924".parse::<InfoHash>(),
            Err(InfoHashError::NotHex {
                position: 0,
                found: 'g'
            })
        ));
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(serde_json::from_str::<InfoHash>(&json).unwrap(), hash);
    }

    #[test]
    fn percent_encoding_keeps_unreserved_only() {
        let mut out = String::new();
        percent_encode_into("a b/ü~", &mut out);
        assert_eq!(out, "a%20b%2F%C3%BC~");
    }

    #[test]
    fn components_are_checked() {
        assert!(check_component("ok.txt").is_ok());
        assert!(check_component("...").is_ok());
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b"] {
            assert!(check_component(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn builder_round_trips_through_the_parser() {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 256) as u8).collect();
        let single = TorrentBuilder::new("blob.bin")
            .piece_length(16384)
            .single(data.clone())
            .web_seed("http://127.0.0.1:1/blob.bin")
            .announce("http://tracker.invalid/announce")
            .build();
        let meta = Metainfo::from_bytes(&single).unwrap();
        assert_eq!(meta.name, "blob.bin");
        assert_eq!(meta.total_length, 40_000);
        assert_eq!(meta.piece_count(), 3);
        assert_eq!(meta.files.len(), 1);
        assert_eq!(meta.web_seeds, ["http://127.0.0.1:1/blob.bin"]);

        let multi = TorrentBuilder::new("dir")
            .file(&["a.txt"], b"hello".to_vec())
            .file(&["sub", "b.bin"], vec![1, 2, 3])
            .build();
        let meta = Metainfo::from_bytes(&multi).unwrap();
        assert_eq!(meta.total_length, 8);
        assert_eq!(meta.files[1].path, ["dir", "sub", "b.bin"]);
        // One piece: the SHA-1 of the files' bytes in order.
        let expected: [u8; 20] = Sha1::digest(b"hello\x01\x02\x03").into();
        assert_eq!(meta.pieces, vec![expected]);
    }

    #[test]
    fn magnet_info_hashes_in_hex_and_base32() {
        let hex = "89d97c2261a21b040cf11caa661a3ba7233bb7e6";
        let want: InfoHash = hex.parse().unwrap();
        assert_eq!(
            InfoHash::from_btih("RHMXYITBUINQIDHRDSVGMGR3U4RTXN7G"),
            Some(want)
        );
        assert_eq!(
            InfoHash::from_btih("rhmxyitbuinqidhrdsvgmgr3u4rtxn7g"),
            Some(want)
        );
        assert_eq!(InfoHash::from_btih(&hex.to_ascii_uppercase()), Some(want));
        assert_eq!(
            InfoHash::from_btih("RHMXYITBUINQIDHRDSVGMGR3U4RTXN71"),
            None
        );
        assert_eq!(InfoHash::from_btih("abc"), None);
        let link = format!("MAGNET:?dn=x&XT=urn:BTIH:{hex}&tr=udp%3A%2F%2Fa");
        assert_eq!(magnet_info_hash(&link), Some(want));
        assert_eq!(
            magnet_info_hash("magnet:?xt=urn:btih:RHMXYITBUINQIDHRDSVGMGR3U4RTXN7G&dn=n"),
            Some(want)
        );
        assert_eq!(magnet_info_hash("magnet:?xt=urn:btih:00"), None);
        assert_eq!(magnet_info_hash("magnet:?dn=only"), None);
        assert_eq!(
            magnet_info_hash(&format!("https://x/?xt=urn:btih:{hex}")),
            None
        );
    }
}
