//! GIDs: the keys aria2 manages downloads by.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use sha1::{Digest, Sha1};

/// A download's GID: a 64-bit value written as 16 hex digits.
///
/// aria2 manual, RPC interface, Terminology, GID: "The GID is stored as 64-bit binary
/// value in aria2. For RPC access, it is represented as a hex string of 16 characters
/// (e.g., `2089b05ecca3d829`)."
///
/// Parses case-insensitively (exactly 16 hex digits, nothing else), displays and
/// serializes as 16 lowercase hex digits. The manual also lets a caller name a
/// download by a unique *prefix* of its GID; that is not supported here (every client
/// this layer is for sends the whole GID it was given).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gid(u64);

impl Gid {
    /// The GID with this value.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The 64-bit value.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// A GID derived from a stable key of a task (e.g. `provider/task-id`, or the
    /// daemon's own row ID): the first 8 bytes of the key's SHA-1, big-endian. The
    /// same key always gives the same GID, across restarts too.
    pub fn derive(key: &[u8]) -> Self {
        let digest = Sha1::digest(key);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Self(u64::from_be_bytes(first))
    }
}

/// A string that is not 16 hex digits, refused by [`Gid::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a GID is exactly 16 hex digits")]
pub struct GidError;

impl FromStr for Gid {
    type Err = GidError;

    /// # Errors
    ///
    /// [`GidError`] unless `s` is exactly 16 ASCII hex digits (either case).
    fn from_str(s: &str) -> Result<Self, GidError> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(GidError);
        }
        u64::from_str_radix(s, 16).map(Self).map_err(|_| GidError)
    }
}

impl fmt::Display for Gid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for Gid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gid({self})")
    }
}

impl Serialize for Gid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_either_case_and_displays_lowercase() {
        let gid: Gid = "2089B05ECCA3D829".parse().unwrap();
        assert_eq!(gid.get(), 0x2089_b05e_cca3_d829);
        assert_eq!(gid.to_string(), "2089b05ecca3d829");
        assert_eq!(Gid::new(1).to_string(), "0000000000000001");
        assert_eq!(
            serde_json::to_string(&Gid::new(0xab)).unwrap(),
            "\"00000000000000ab\""
        );
    }

    #[test]
    fn refuses_anything_but_16_hex_digits() {
        for bad in [
            "",
            "2089b05ecca3d82",
            "2089b05ecca3d8290",
            "2089b05ecca3d82g",
            "+089b05ecca3d829",
            " 089b05ecca3d829",
            "２０８９b05ecca3d8",
        ] {
            assert_eq!(bad.parse::<Gid>(), Err(GidError), "{bad:?}");
        }
    }

    #[test]
    fn derive_is_stable() {
        assert_eq!(Gid::derive(b"123pan/42"), Gid::derive(b"123pan/42"));
        assert_ne!(Gid::derive(b"123pan/42"), Gid::derive(b"6pan/42"));
    }

    proptest! {
        #![proptest_config(crate::proptest_config::regressions_in("proptest-regressions/aria2_gid.txt"))]
        #[test]
        fn display_parse_round_trip(value: u64, upper: bool) {
            let text = Gid::new(value).to_string();
            prop_assert_eq!(text.len(), 16);
            let input = if upper { text.to_uppercase() } else { text };
            prop_assert_eq!(input.parse::<Gid>(), Ok(Gid::new(value)));
        }
    }
}
