//! 6pan identity blobs: the opaque strings that name a parsed link or torrent
//! (`/v2/offline/parseUrl`, `/v2/offline/parseTorrent`) and that `/v2/offline/add`
//! takes back.
//!
//! Facts: `docs/wire-notes.md` (6pan section, "Identity blob") and seed `000` (one blob in
//! the `parseTorrent` answer, two in the `add` request; copied to
//! `fixtures/6pan/identity/`). A blob is `base64(JSON) + "$" + 32 lowercase hex`; the
//! hex part is a MAC keyed by a server secret. A client can read the JSON but must
//! send the blob back byte for byte and can never mint one, so [`Identity`] keeps the
//! original string, serializes as exactly that string, and can only be made by
//! [`Identity::parse`] (or deserialization, which calls it). [`IdentityView`] is the
//! decoded JSON, for reading only.
//!
//! ```
//! use offline_proto::sixpan::identity::{Identity, IdentityType};
//!
//! let blob = "eyJzdWNjZXNzIjp0cnVlLCJ0eXBlIjo1MDIwLCJpZGVudGl0eSI6IjI3NTk0YTRmM2RiZDFiNjZhNzg3YzYzMTkwMjg3ZWI3IiwidXJsIjoiaHR0cHM6Ly9hcGkuNnBhbi5jbi92Mi9vZmZsaW5lL3BhcnNlVXJsIiwibmFtZSI6InBhcnNlVXJsIn0=$e71c503288938e9614dca1c55e0ab811";
//! let identity = Identity::parse(blob).unwrap();
//! assert_eq!(identity.view().kind, IdentityType::Http);
//! assert_eq!(identity.view().name.as_deref(), Some("parseUrl"));
//! assert_eq!(identity.mac(), "e71c503288938e9614dca1c55e0ab811");
//! assert_eq!(identity.as_str(), blob);
//! ```

use std::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The most characters of input an error message repeats.
const ECHO_MAX: usize = 80;

/// The length of the MAC after the last `$`, in hex digits.
pub const MAC_LEN: usize = 32;

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Decodes base64 in the standard (`+/`) or the URL-safe (`-_`) alphabet, with or
/// without `=` padding: the 6pan blobs use the standard alphabet with padding, the
/// Qiniu-style put policy nominally the URL-safe one.
pub(super) fn decode_base64_lenient(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    if text.contains(['-', '_']) {
        URL_SAFE_LENIENT.decode(text)
    } else {
        STANDARD_LENIENT.decode(text)
    }
}

/// At most [`ECHO_MAX`] characters of `text`, with `…` when cut.
pub(super) fn preview(text: &str) -> String {
    let mut out: String = text.chars().take(ECHO_MAX).collect();
    if text.chars().nth(ECHO_MAX).is_some() {
        out.push('…');
    }
    out
}

/// What an identity names, from the JSON `type` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityType {
    /// `5030`: a torrent (`url` is `qingzhen-internal://<etag>` for one in the drive;
    /// seed `000`).
    BitTorrent,
    /// `5020`: an http(s) link (seed `000` carries it on a bilibili page and on an
    /// https link).
    Http,
    /// Any other code, kept as sent. No source supports the `5070` ("share link") and
    /// `5090` ("video site") codes earlier notes named: they read as `Unknown` too.
    Unknown(i64),
}

impl IdentityType {
    /// The type for a wire code; codes without a variant give [`IdentityType::Unknown`].
    pub fn from_code(code: i64) -> Self {
        match code {
            5030 => Self::BitTorrent,
            5020 => Self::Http,
            other => Self::Unknown(other),
        }
    }

    /// The wire code.
    pub fn code(self) -> i64 {
        match self {
            Self::BitTorrent => 5030,
            Self::Http => 5020,
            Self::Unknown(code) => code,
        }
    }

    /// The code from a JSON value: an integer, or a string of one.
    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Number(number) => number.as_i64(),
            Value::String(text) => text.parse().ok(),
            _ => None,
        }
        .map(Self::from_code)
    }
}

impl Serialize for IdentityType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.code())
    }
}

impl<'de> Deserialize<'de> for IdentityType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        i64::deserialize(deserializer).map(Self::from_code)
    }
}

/// The JSON inside an identity blob, read-only.
///
/// Known fields of an unexpected type (a numeric `name`) read as `None` and stay in
/// [`extra`](Self::extra) under their wire name, so a server change never makes a
/// blob unusable: it is sent back as received anyway.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct IdentityView {
    /// `identity`: the server's ID of the item (a hex digest in the seeds; the info
    /// hash for a torrent).
    pub identity: String,
    /// `success`: whether the server could parse the link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// `type`: what the identity names.
    #[serde(rename = "type")]
    pub kind: IdentityType,
    /// `name`: the display name (the torrent's name, or a digest for links).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `url`: the source (`qingzhen-internal://<etag>` for a torrent in the drive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `infoHash`: a torrent's info hash, 40 hex digits.
    #[serde(rename = "infoHash", skip_serializing_if = "Option::is_none")]
    pub info_hash: Option<String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl IdentityView {
    fn from_object(mut object: Map<String, Value>) -> Result<Self, IdentityError> {
        let identity = match object.remove("identity") {
            Some(Value::String(identity)) => identity,
            Some(_) => return Err(IdentityError::IdentityNotAString),
            None => return Err(IdentityError::MissingIdentity),
        };
        let kind = match object.get("type") {
            None => return Err(IdentityError::MissingType),
            Some(value) => {
                IdentityType::from_json(value).ok_or_else(|| IdentityError::BadType {
                    found: preview(&value.to_string()),
                })?
            }
        };
        object.remove("type");
        let success = take(&mut object, "success", Value::as_bool);
        let name = take(&mut object, "name", string);
        let url = take(&mut object, "url", string);
        let info_hash = take(&mut object, "infoHash", string);
        Ok(Self {
            identity,
            success,
            kind,
            name,
            url,
            info_hash,
            extra: object,
        })
    }
}

/// A JSON string's text, for [`take`].
pub(super) fn string(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// Removes `key` from `object` when `read` understands its value; otherwise leaves it
/// there and answers `None` (`null` is removed and read as `None`).
pub(super) fn take<T>(
    object: &mut Map<String, Value>,
    key: &str,
    read: impl Fn(&Value) -> Option<T>,
) -> Option<T> {
    let value = object.get(key)?;
    if value.is_null() {
        object.remove(key);
        return None;
    }
    let read = read(value)?;
    object.remove(key);
    Some(read)
}

/// A 6pan identity blob: `base64(JSON) + "$" + MAC`, kept byte for byte.
///
/// Only [`Identity::parse`] (and deserialization, which calls it) makes one: a client
/// cannot mint an identity, it can only hand back what the server gave. Equality and
/// hashing compare the original string. Serializes as that string.
#[derive(Clone)]
pub struct Identity {
    raw: String,
    /// Where the MAC starts in `raw` (just after the last `$`).
    mac_start: usize,
    view: IdentityView,
}

impl Identity {
    /// Reads a blob: splits it at the last `$`, checks the MAC's form (32 lowercase
    /// hex digits; it cannot be verified without the server's key), decodes the
    /// base64 (standard or URL-safe alphabet, with or without padding) and the JSON.
    ///
    /// # Errors
    ///
    /// [`IdentityError`] naming the part that failed: no `$`, a malformed MAC, bad
    /// base64, bytes that are not JSON, JSON that is not an object, or an object
    /// without a string `identity` or a numeric `type`.
    pub fn parse(blob: &str) -> Result<Self, IdentityError> {
        let (encoded, mac) =
            blob.rsplit_once('$')
                .ok_or_else(|| IdentityError::MissingSeparator {
                    found: preview(blob),
                })?;
        if mac.len() != MAC_LEN || !mac.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(IdentityError::BadMac {
                found: preview(mac),
            });
        }
        let json = decode_base64_lenient(encoded).map_err(|err| IdentityError::Base64 {
            reason: preview(&err.to_string()),
        })?;
        let value: Value = serde_json::from_slice(&json).map_err(|err| IdentityError::Json {
            reason: preview(&err.to_string()),
        })?;
        let Value::Object(object) = value else {
            return Err(IdentityError::NotAnObject);
        };
        let view = IdentityView::from_object(object)?;
        Ok(Self {
            raw: blob.to_owned(),
            mac_start: encoded.len() + 1,
            view,
        })
    }

    /// The blob exactly as received: what to send back.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The decoded JSON.
    pub fn view(&self) -> &IdentityView {
        &self.view
    }

    /// What the identity names (the view's `type`).
    pub fn kind(&self) -> IdentityType {
        self.view.kind
    }

    /// The MAC: the 32 lowercase hex digits after the last `$`.
    pub fn mac(&self) -> &str {
        &self.raw[self.mac_start..]
    }
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for Identity {}

impl std::hash::Hash for Identity {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("identity", &self.view.identity)
            .field("kind", &self.view.kind)
            .field("name", &self.view.name)
            .field("mac", &self.mac())
            .finish()
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl std::str::FromStr for Identity {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Identity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Identity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let blob = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&blob).map_err(serde::de::Error::custom)
    }
}

/// Why a string is not an identity blob. Messages repeat at most 80 characters of
/// the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// There is no `$` between the base64 JSON and the MAC.
    #[error("identity blob has no `$` separating the base64 JSON from the MAC: {found:?}")]
    MissingSeparator {
        /// The start of the input.
        found: String,
    },
    /// The part after the last `$` is not 32 lowercase hex digits.
    #[error("identity MAC (after the last `$`) must be 32 lowercase hex digits, found {found:?}")]
    BadMac {
        /// The start of the part found.
        found: String,
    },
    /// The part before the last `$` is not base64.
    #[error("identity JSON part (before the last `$`) is not valid base64: {reason}")]
    Base64 {
        /// The decoder's message.
        reason: String,
    },
    /// The decoded bytes are not JSON.
    #[error("identity JSON part does not decode to JSON: {reason}")]
    Json {
        /// The parser's message.
        reason: String,
    },
    /// The JSON is not an object.
    #[error("identity JSON part is not a JSON object")]
    NotAnObject,
    /// The JSON object has no `identity` field.
    #[error("identity JSON has no `identity` field")]
    MissingIdentity,
    /// The JSON object's `identity` is not a string.
    #[error("identity JSON field `identity` is not a string")]
    IdentityNotAString,
    /// The JSON object has no `type` field.
    #[error("identity JSON has no `type` field")]
    MissingType,
    /// The JSON `type` is not an integer (nor a string of one).
    #[error("identity JSON field `type` is not an integer code: {found}")]
    BadType {
        /// The start of the value found, as JSON.
        found: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_base64_accepts_both_alphabets_and_padding() {
        assert_eq!(decode_base64_lenient("e30=").unwrap(), b"{}");
        assert_eq!(decode_base64_lenient("e30").unwrap(), b"{}");
        assert_eq!(decode_base64_lenient("-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode_base64_lenient("+/8=").unwrap(), [0xfb, 0xff]);
        assert!(decode_base64_lenient("+_8").is_err());
    }

    #[test]
    fn preview_is_bounded() {
        assert_eq!(preview(&"x".repeat(500)).chars().count(), ECHO_MAX + 1);
        assert_eq!(preview("short"), "short");
    }

    #[test]
    fn type_codes_round_trip() {
        for code in [5030, 5020, 5070, 5090, 1, -7] {
            assert_eq!(IdentityType::from_code(code).code(), code);
        }
        assert_eq!(IdentityType::from_code(42), IdentityType::Unknown(42));
        // No source supports 5070 or 5090: unknown codes, kept as sent.
        assert_eq!(IdentityType::from_code(5070), IdentityType::Unknown(5070));
        assert_eq!(IdentityType::from_code(5090), IdentityType::Unknown(5090));
    }
}
