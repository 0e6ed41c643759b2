//! The Qiniu etag ("qetag"): the 28-character file hash 6pan uses to name stored
//! files, ask for an instant upload (秒传) and check a finished storage upload.
//!
//! Facts: `docs/wire-notes.md` (6pan section, "File hash") and the vendor SDK's vectors in
//! `fixtures/qetag/vectors.tsv`. The data is cut into 4 MiB blocks
//! ([`BLOCK_SIZE`], 4 194 304 bytes):
//!
//! - empty data or a single block: `urlsafe_base64(0x16 || sha1(data))`;
//! - more than one block: `urlsafe_base64(0x96 || sha1(sha1(b1) || sha1(b2) || ...))`.
//!
//! The result is always 21 bytes, so 28 base64 characters without padding. Later
//! generations of the service append the size in base 36 ([`size_suffix`]).
//!
//! [`Qetag`] hashes a stream in any chunking and keeps only the running SHA-1 of the
//! current block and the 20-byte digests of the finished ones. To hash blocks in
//! parallel, compute [`block_digest`] of each block (or feed it in pieces to a
//! [`BlockHasher`]) and combine them with [`Etag::from_block_digests`]; the result
//! equals [`qetag`] of the whole data. This crate does no I/O and starts no thread: a
//! parallel file hasher built this way is `provider_6pan::hash::hash_file`.
//!
//! ```
//! use offline_proto::qetag::{qetag, Qetag};
//!
//! let mut hasher = Qetag::new();
//! hasher.update(b"et");
//! hasher.update(b"ag");
//! assert_eq!(hasher.finalize(), qetag(b"etag"));
//! assert_eq!(qetag(b"etag").as_str(), "FpLiADEaVoALPkdb8tJEJyRTXoe_");
//! ```

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha1::{Digest as _, Sha1};

/// The block size of the etag: 4 MiB (4 194 304 bytes).
pub const BLOCK_SIZE: usize = 4 * 1024 * 1024;

/// The length of an etag in characters (21 bytes in base64 without padding).
pub const ETAG_LEN: usize = 28;

/// The first byte of the etag of empty data or of data that fits one block.
pub const PREFIX_SINGLE_BLOCK: u8 = 0x16;

/// The first byte of the etag of data longer than one block.
pub const PREFIX_MULTI_BLOCK: u8 = 0x96;

/// The SHA-1 of one block of data (at most [`BLOCK_SIZE`] bytes), as used by the
/// etag.
///
/// Cut the data into [`BLOCK_SIZE`] blocks (the last may be shorter), hash each one
/// (in any order, on any thread) and pass the digests in order to
/// [`Etag::from_block_digests`]: the result equals [`qetag`] of the whole data.
/// Calling this on more than [`BLOCK_SIZE`] bytes is allowed but the digest is then
/// not a block digest of the etag.
pub fn block_digest(block: &[u8]) -> [u8; 20] {
    Sha1::digest(block).into()
}

/// The SHA-1 of one block, fed in pieces: [`block_digest`] for data that arrives in
/// chunks, so a block never has to be held in memory whole.
///
/// Feed at most [`BLOCK_SIZE`] bytes (the caller cuts the blocks; more is allowed but
/// the digest is then not a block digest of the etag), then call
/// [`finalize`](Self::finalize).
///
/// ```
/// use offline_proto::qetag::{block_digest, BlockHasher};
///
/// let mut hasher = BlockHasher::new();
/// hasher.update(b"bl");
/// hasher.update(b"ock");
/// assert_eq!(hasher.finalize(), block_digest(b"block"));
/// ```
#[derive(Clone, Default)]
pub struct BlockHasher {
    sha1: Sha1,
    len: u64,
}

impl BlockHasher {
    /// A hasher that has seen no data.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes the next piece of the block.
    pub fn update(&mut self, data: &[u8]) {
        self.sha1.update(data);
        self.len += data.len() as u64;
    }

    /// How many bytes have been hashed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte has been hashed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The block's digest, equal to [`block_digest`] of everything fed.
    pub fn finalize(self) -> [u8; 20] {
        self.sha1.finalize().into()
    }
}

impl fmt::Debug for BlockHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockHasher")
            .field("len", &self.len)
            .finish()
    }
}

/// The etag of `data` in one call. Equal to feeding `data` to a [`Qetag`] in any
/// chunking.
pub fn qetag(data: &[u8]) -> Etag {
    let digests: Vec<[u8; 20]> = data.chunks(BLOCK_SIZE).map(block_digest).collect();
    Etag::from_block_digests(&digests)
}

/// The base-36 suffix (digits then lowercase letters) that later generations of the
/// service append to the etag: `size` is the file size in bytes.
///
/// The later-generation hash is the 28-character etag immediately followed by this
/// suffix, with no separator: a 163 783-byte file with etag `E` is known as
/// `E` + `"3idj"`. The v1/v2 calls this crate implements use the bare etag.
///
/// ```
/// use offline_proto::qetag::size_suffix;
///
/// assert_eq!(size_suffix(0), "0");
/// assert_eq!(size_suffix(35), "z");
/// assert_eq!(size_suffix(36), "10");
/// assert_eq!(size_suffix(163_783), "3idj");
/// assert_eq!(size_suffix(u64::MAX), "3w5e11264sgsf");
/// ```
pub fn size_suffix(size: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rest = size;
    let mut out = Vec::new();
    loop {
        // `rest % 36` is below 36, so the index is in range.
        out.push(DIGITS[(rest % 36) as usize]);
        rest /= 36;
        if rest == 0 {
            break;
        }
    }
    out.reverse();
    out.into_iter().map(char::from).collect()
}

/// A streaming etag hasher.
///
/// Feed the data with [`update`](Self::update) in chunks of any size, then call
/// [`finalize`](Self::finalize). Memory stays at one running SHA-1 plus 20 bytes per
/// finished 4 MiB block: no block is ever buffered.
#[derive(Clone, Default)]
pub struct Qetag {
    /// The SHA-1 of the current, unfinished block.
    block: Sha1,
    /// Bytes of the current block hashed so far, always below [`BLOCK_SIZE`].
    in_block: usize,
    /// The digests of the finished blocks, in order.
    digests: Vec<[u8; 20]>,
    /// Bytes hashed in total.
    total: u64,
}

impl Qetag {
    /// A hasher that has seen no data (whose etag would be that of empty data).
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes the next `data`. Chunk boundaries do not matter.
    pub fn update(&mut self, mut data: &[u8]) {
        // Common case: the data stays inside the current block.
        if data.len() < BLOCK_SIZE - self.in_block {
            self.block.update(data);
            self.in_block += data.len();
            self.total += data.len() as u64;
            return;
        }
        while !data.is_empty() {
            let room = BLOCK_SIZE - self.in_block;
            let (now, later) = data.split_at(room.min(data.len()));
            self.block.update(now);
            self.in_block += now.len();
            self.total += now.len() as u64;
            if self.in_block == BLOCK_SIZE {
                let block = std::mem::take(&mut self.block);
                self.digests.push(block.finalize().into());
                self.in_block = 0;
            }
            data = later;
        }
    }

    /// How many bytes have been hashed so far.
    pub fn bytes_hashed(&self) -> u64 {
        self.total
    }

    /// The etag of everything hashed.
    pub fn finalize(mut self) -> Etag {
        if self.in_block > 0 {
            self.digests.push(self.block.finalize().into());
        }
        Etag::from_block_digests(&self.digests)
    }
}

impl fmt::Debug for Qetag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qetag")
            .field("bytes_hashed", &self.total)
            .field("finished_blocks", &self.digests.len())
            .finish()
    }
}

/// A 28-character Qiniu etag, e.g. `Fto5o-5ea0sNMlW_75VgGJCv2AcJ` (the etag of empty
/// data).
///
/// Always 21 bytes in URL-safe base64 without padding: a prefix byte
/// ([`PREFIX_SINGLE_BLOCK`] or [`PREFIX_MULTI_BLOCK`]) and a SHA-1 digest. Displays,
/// parses ([`FromStr`]) and serializes as the string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Etag([u8; ETAG_LEN]);

impl Etag {
    /// The etag of data whose [`BLOCK_SIZE`] blocks have these [`block_digest`]s, in
    /// order. Equal to [`qetag`] of the data. An empty slice gives the etag of empty
    /// data.
    pub fn from_block_digests(digests: &[[u8; 20]]) -> Self {
        let mut raw = [0u8; 21];
        match digests {
            [] => {
                raw[0] = PREFIX_SINGLE_BLOCK;
                raw[1..].copy_from_slice(&block_digest(b""));
            }
            [only] => {
                raw[0] = PREFIX_SINGLE_BLOCK;
                raw[1..].copy_from_slice(only);
            }
            many => {
                let mut outer = Sha1::new();
                for digest in many {
                    outer.update(digest);
                }
                raw[0] = PREFIX_MULTI_BLOCK;
                raw[1..].copy_from_slice(&outer.finalize());
            }
        }
        Self::from_raw(&raw)
    }

    fn from_raw(raw: &[u8; 21]) -> Self {
        let mut text = [0u8; ETAG_LEN];
        let written = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut text)
            .expect("21 bytes encode to exactly 28 base64 characters");
        debug_assert_eq!(written, ETAG_LEN);
        Self(text)
    }

    /// The etag as its 28 characters.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("an etag is ASCII by construction")
    }

    /// The 21 bytes the string encodes: the prefix byte then the SHA-1 digest.
    pub fn to_raw(&self) -> [u8; 21] {
        let mut raw = [0u8; 21];
        let read = URL_SAFE_NO_PAD
            .decode_slice(self.0, &mut raw)
            .expect("an etag is valid base64 by construction");
        debug_assert_eq!(read, 21);
        raw
    }

    /// The prefix byte: [`PREFIX_SINGLE_BLOCK`] (`0x16`) or [`PREFIX_MULTI_BLOCK`]
    /// (`0x96`).
    pub fn prefix(&self) -> u8 {
        self.to_raw()[0]
    }

    /// The 20-byte SHA-1 after the prefix byte: of the data itself for one block, of
    /// the concatenated block digests otherwise.
    pub fn digest(&self) -> [u8; 20] {
        let raw = self.to_raw();
        let mut digest = [0u8; 20];
        digest.copy_from_slice(&raw[1..]);
        digest
    }

    /// Whether the data was longer than one 4 MiB block.
    pub fn is_multi_block(&self) -> bool {
        self.prefix() == PREFIX_MULTI_BLOCK
    }
}

impl fmt::Display for Etag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Etag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Etag({})", self.as_str())
    }
}

impl AsRef<str> for Etag {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Why a string is not an etag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EtagError {
    /// Not 28 characters long.
    #[error("an etag has {ETAG_LEN} characters, this one has {len}")]
    Length {
        /// The length found, in characters.
        len: usize,
    },
    /// A character outside the URL-safe base64 alphabet (`A-Z a-z 0-9 - _`).
    #[error(
        "an etag is URL-safe base64 (A-Z a-z 0-9 - _); found {found:?} at character {position}"
    )]
    Alphabet {
        /// The character's position, from 0.
        position: usize,
        /// The character.
        found: char,
    },
    /// The first byte is neither `0x16` nor `0x96`.
    #[error("an etag starts with byte 0x16 or 0x96, this one with 0x{prefix:02x}")]
    Prefix {
        /// The first byte found.
        prefix: u8,
    },
}

impl FromStr for Etag {
    type Err = EtagError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let len = s.chars().count();
        if len != ETAG_LEN || s.len() != ETAG_LEN {
            return Err(EtagError::Length { len });
        }
        if let Some((position, found)) = s
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(EtagError::Alphabet { position, found });
        }
        let mut raw = [0u8; 21];
        // 28 characters of the alphabet are exactly 168 bits: they always decode to
        // 21 bytes, with no padding and no leftover bits.
        if URL_SAFE_NO_PAD.decode_slice(s.as_bytes(), &mut raw) != Ok(21) {
            // Unreachable by the above; an error rather than a panic all the same.
            return Err(EtagError::Length { len });
        }
        if raw[0] != PREFIX_SINGLE_BLOCK && raw[0] != PREFIX_MULTI_BLOCK {
            return Err(EtagError::Prefix { prefix: raw[0] });
        }
        Ok(Self::from_raw(&raw))
    }
}

impl Serialize for Etag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Etag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_data_and_no_blocks_agree() {
        assert_eq!(qetag(b"").as_str(), "Fto5o-5ea0sNMlW_75VgGJCv2AcJ");
        assert_eq!(Etag::from_block_digests(&[]), qetag(b""));
        assert_eq!(Qetag::new().finalize(), qetag(b""));
    }

    #[test]
    fn accessors_split_the_raw_bytes() {
        let etag = qetag(b"a");
        assert_eq!(etag.prefix(), PREFIX_SINGLE_BLOCK);
        assert_eq!(etag.digest(), block_digest(b"a"));
        assert!(!etag.is_multi_block());
        assert_eq!(etag.to_string().parse::<Etag>(), Ok(etag));
    }

    #[test]
    fn parse_rejects_bad_strings() {
        assert_eq!("abc".parse::<Etag>(), Err(EtagError::Length { len: 3 }));
        assert!(matches!(
            "Fto5o-5ea0sNMlW_75VgGJCv2Ac+".parse::<Etag>(),
            Err(EtagError::Alphabet {
                position: 27,
                found: '+'
            })
        ));
        // A valid base64 string whose first byte is 0x00.
        assert_eq!(
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAA".parse::<Etag>(),
            Err(EtagError::Prefix { prefix: 0 })
        );
        // 28 characters but not 28 bytes.
        assert!(matches!(
            "é".repeat(28).parse::<Etag>(),
            Err(EtagError::Length { len: 28 })
        ));
    }

    #[test]
    fn serde_is_the_string() {
        let etag = qetag(b"etag");
        let json = serde_json::to_string(&etag).unwrap();
        assert_eq!(json, "\"FpLiADEaVoALPkdb8tJEJyRTXoe_\"");
        assert_eq!(serde_json::from_str::<Etag>(&json).unwrap(), etag);
        assert!(serde_json::from_str::<Etag>("\"nope\"").is_err());
    }

    #[test]
    fn debug_of_the_hasher_is_short() {
        let mut hasher = Qetag::new();
        hasher.update(&[0u8; 10]);
        assert_eq!(
            format!("{hasher:?}"),
            "Qetag { bytes_hashed: 10, finished_blocks: 0 }"
        );
    }
}
