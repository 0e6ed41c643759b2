//! The storage upload token that `/v1/store/token` hands out, and its put policy.
//!
//! Facts: `docs/wire-notes.md` (6pan section, "Upload to the storage service") and seed
//! `001` (a full token). The token is Qiniu-style `AccessKey:EncodedSign:EncodedPutPolicy`;
//! the put policy is base64 JSON with `scope`, `deadline` (milliseconds since the Unix
//! epoch), `overwrite`, `fsizeLimit`, `callbackUrl`, `callbackBody`, `saveKey`. The
//! client never signs one; it reads the policy to learn when the token expires. The
//! seed's policy uses the standard base64 alphabet with `=` padding and writes
//! `deadline` as a string (`"1517373343891"`), so both alphabets, both paddings, and a
//! number or a numeric string are accepted.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use offline_proto::sixpan::upload_token::UploadToken;
//!
//! // {"scope":"s","deadline":1700000000000}
//! let token = UploadToken::parse("ak:c2lnbg==:eyJzY29wZSI6InMiLCJkZWFkbGluZSI6MTcwMDAwMDAwMDAwMH0=").unwrap();
//! assert_eq!(token.policy().scope.as_deref(), Some("s"));
//! assert_eq!(token.deadline(), Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
//! assert!(!format!("{token:?}").contains("c2lnbg"));
//! ```

use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{Map, Value};

use super::identity::{decode_base64_lenient, preview, string, take};
use crate::Secret;

/// A storage upload token with its decoded put policy.
///
/// The token is a credential: it is kept in a [`Secret`], so `Debug` prints `***`
/// for it, and errors never repeat it. [`UploadToken::expose`] gives it for the
/// `Authorization` header or the `token` form field.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadToken {
    token: Secret,
    policy: PutPolicy,
}

impl UploadToken {
    /// Reads a token `AccessKey:EncodedSign:EncodedPutPolicy` and decodes its policy.
    ///
    /// # Errors
    ///
    /// [`UploadTokenError`] when the token does not have three non-empty parts, or
    /// the policy is not base64 of a JSON object.
    pub fn parse(token: &str) -> Result<Self, UploadTokenError> {
        let parts: Vec<&str> = token.split(':').collect();
        let [access_key, sign, encoded_policy] = parts[..] else {
            return Err(UploadTokenError::Shape { parts: parts.len() });
        };
        for (part, name) in [
            (access_key, "AccessKey"),
            (sign, "EncodedSign"),
            (encoded_policy, "EncodedPutPolicy"),
        ] {
            if part.is_empty() {
                return Err(UploadTokenError::EmptyPart { part: name });
            }
        }
        let json =
            decode_base64_lenient(encoded_policy).map_err(|err| UploadTokenError::Base64 {
                reason: preview(&err.to_string()),
            })?;
        let value: Value = serde_json::from_slice(&json).map_err(|err| UploadTokenError::Json {
            reason: preview(&err.to_string()),
        })?;
        let Value::Object(object) = value else {
            return Err(UploadTokenError::NotAnObject);
        };
        Ok(Self {
            token: Secret::new(token),
            policy: PutPolicy::from_object(object),
        })
    }

    /// The token itself. Call this only to put it on the wire.
    pub fn expose(&self) -> &str {
        self.token.expose()
    }

    /// The token as a [`Secret`].
    pub fn secret(&self) -> &Secret {
        &self.token
    }

    /// The access key: the part before the first `:` (public, not a secret).
    pub fn access_key(&self) -> &str {
        self.token.expose().split(':').next().unwrap_or_default()
    }

    /// The decoded put policy.
    pub fn policy(&self) -> &PutPolicy {
        &self.policy
    }

    /// When the token stops working ([`PutPolicy::deadline_time`]), if the policy
    /// says.
    pub fn deadline(&self) -> Option<SystemTime> {
        self.policy.deadline_time()
    }

    /// Whether the token expires before `now + margin` (or at that instant). `false`
    /// when the policy has no readable deadline: the server is then the judge.
    /// `margin` covers the time an upload takes to start; a minute is typical.
    pub fn expires_within(&self, now: SystemTime, margin: Duration) -> bool {
        let Some(deadline) = self.deadline() else {
            return false;
        };
        // A `now + margin` past what `SystemTime` holds is later than any deadline.
        now.checked_add(margin)
            .is_none_or(|limit| deadline <= limit)
    }
}

/// The put policy: what the storage service accepts with this token.
///
/// Known fields of an unexpected type (an `overwrite` of `"yes"`) read as `None`
/// and stay in [`extra`](Self::extra) under their wire name.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PutPolicy {
    /// `scope`: the bucket (`other-storage` in seed 001), optionally `bucket:key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `deadline` as written, in milliseconds since the Unix epoch (a number or a
    /// numeric string on the wire); see [`PutPolicy::deadline_time`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
    /// `overwrite`: `1` lets an upload replace an existing key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overwrite: Option<i64>,
    /// `fsizeLimit`: the largest file accepted, in bytes; `0` means no limit.
    #[serde(rename = "fsizeLimit", skip_serializing_if = "Option::is_none")]
    pub fsize_limit: Option<i64>,
    /// `callbackUrl`: where the storage service reports the upload to 6pan.
    #[serde(rename = "callbackUrl", skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// `callbackBody`: the template of that report (`size=$(fsize)&hash=$(hash)&...`).
    #[serde(rename = "callbackBody", skip_serializing_if = "Option::is_none")]
    pub callback_body: Option<String>,
    /// `saveKey`: the key the file is stored under.
    #[serde(rename = "saveKey", skip_serializing_if = "Option::is_none")]
    pub save_key: Option<String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PutPolicy {
    fn from_object(mut object: Map<String, Value>) -> Self {
        Self {
            scope: take(&mut object, "scope", string),
            deadline: take(&mut object, "deadline", unsigned),
            overwrite: take(&mut object, "overwrite", signed),
            fsize_limit: take(&mut object, "fsizeLimit", signed),
            callback_url: take(&mut object, "callbackUrl", string),
            callback_body: take(&mut object, "callbackBody", string),
            save_key: take(&mut object, "saveKey", string),
            extra: object,
        }
    }

    /// `deadline` as a time. The notes and seed 001 give milliseconds; Qiniu's own
    /// policies use seconds, so a value below 10^11 (which in milliseconds would be
    /// before 1973-03-03) is read as seconds.
    pub fn deadline_time(&self) -> Option<SystemTime> {
        let value = self.deadline?;
        let since_epoch = if value < 100_000_000_000 {
            Duration::from_secs(value)
        } else {
            Duration::from_millis(value)
        };
        SystemTime::UNIX_EPOCH.checked_add(since_epoch)
    }
}

/// A non-negative integer: a JSON integer, an integral float, or a string of digits.
fn unsigned(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64().or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..1.8e19).contains(f))
                // In range and integral, so the conversion is exact enough for a time.
                .map(|f| f as u64)
        }),
        Value::String(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().ok()
        }
        _ => None,
    }
}

/// An integer: a JSON integer or a string of one.
fn signed(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

/// Why a string is not an upload token. Messages never repeat the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UploadTokenError {
    /// Not three `:`-separated parts.
    #[error("upload token must be `AccessKey:EncodedSign:EncodedPutPolicy` (3 parts separated by `:`), found {parts} part(s)")]
    Shape {
        /// The number of parts found.
        parts: usize,
    },
    /// One of the three parts is empty.
    #[error("upload token part `{part}` is empty")]
    EmptyPart {
        /// `AccessKey`, `EncodedSign` or `EncodedPutPolicy`.
        part: &'static str,
    },
    /// The put policy (third part) is not base64.
    #[error(
        "upload token's put policy (the part after the last `:`) is not valid base64: {reason}"
    )]
    Base64 {
        /// The decoder's message.
        reason: String,
    },
    /// The decoded put policy is not JSON.
    #[error("upload token's put policy does not decode to JSON: {reason}")]
    Json {
        /// The parser's message.
        reason: String,
    },
    /// The put policy is JSON but not an object.
    #[error("upload token's put policy is not a JSON object")]
    NotAnObject,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::proptest_config::persisted;

    /// The token of seed 001 (`/v1/store/token` answer).
    const SEED_001: &str = "0a3836b4ef298e7dc9fc5da291252fc4ac3e0c7f:Zjk2YWUzYTc4NWM1MWM1ZjllYjVmYmNiM2Q4MWYwMTAyZGIzYjk0ZA==:eyJzY29wZSI6Im90aGVyLXN0b3JhZ2UiLCJkZWFkbGluZSI6IjE1MTczNzMzNDM4OTEiLCJvdmVyd3JpdGUiOjEsImZzaXplTGltaXQiOjAsImNhbGxiYWNrVXJsIjoiaHR0cDovL2FwaS5ibG9nMTIwLmNvbS92MS9jYWxsYmFjay93cy9wb3N0IiwiY2FsbGJhY2tCb2R5Ijoic2l6ZT0kKGZzaXplKSZoYXNoPSQoaGFzaCkma2V5PSQoa2V5KSZtaW1lVHlwZT0kKG1pbWVUeXBlKSZpcD0kKGlwKSZhdmluZm89JChhdmluZm8pJmJ1Y2tldD0kKGJ1Y2tldCkmdXJsPUBxenl1cmxzdGFydCQodXJsKUBxenl1cmxlbmQmdXNlcklkPTEmZmlsZU5hbWU9QHF6eWZpbGVzdGFydCQoZm5hbWUpQHF6eWZpbGVlbmQiLCJzYXZlS2V5IjoidXNlci11cGxvYWQvLzIwMTgwMTMwLzExNTE3Mjg2OTQzODkyLnRtcCJ9";

    fn token_with_policy(json: &str) -> String {
        use base64::Engine as _;
        let policy = base64::engine::general_purpose::URL_SAFE.encode(json);
        format!("ak:c2lnbg==:{policy}")
    }

    #[test]
    fn seed_001_token() {
        let token = UploadToken::parse(SEED_001).unwrap();
        let policy = token.policy();
        assert_eq!(policy.scope.as_deref(), Some("other-storage"));
        assert_eq!(policy.deadline, Some(1_517_373_343_891));
        assert_eq!(policy.overwrite, Some(1));
        assert_eq!(policy.fsize_limit, Some(0));
        assert_eq!(
            policy.callback_url.as_deref(),
            Some("http://api.blog120.com/v1/callback/ws/post")
        );
        assert!(policy
            .callback_body
            .as_deref()
            .unwrap()
            .starts_with("size=$(fsize)&hash=$(hash)&key=$(key)"));
        assert_eq!(
            policy.save_key.as_deref(),
            Some("user-upload//20180130/11517286943892.tmp")
        );
        assert!(policy.extra.is_empty());
        let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(1_517_373_343_891);
        assert_eq!(token.deadline(), Some(deadline));
        assert_eq!(
            token.access_key(),
            "0a3836b4ef298e7dc9fc5da291252fc4ac3e0c7f"
        );
        assert_eq!(token.expose(), SEED_001);

        let minute = Duration::from_secs(60);
        assert!(!token.expires_within(deadline - 2 * minute, minute));
        assert!(token.expires_within(deadline - minute, minute));
        assert!(token.expires_within(deadline - Duration::from_secs(1), minute));
        assert!(token.expires_within(deadline + minute, Duration::ZERO));
        assert!(token.expires_within(deadline, Duration::MAX));
    }

    #[test]
    fn debug_hides_the_token() {
        let token = UploadToken::parse(SEED_001).unwrap();
        let debug = format!("{token:?}");
        assert!(debug.contains("token: ***"), "{debug}");
        assert!(!debug.contains("Zjk2YWUz"), "{debug}");
        assert!(!debug.contains("eyJzY29wZ"), "{debug}");
    }

    #[test]
    fn numeric_deadline_and_unknown_fields() {
        let token = UploadToken::parse(&token_with_policy(
            r#"{"scope":"b:k","deadline":1517373343891,"returnBody":"x","persistentOps":[1]}"#,
        ))
        .unwrap();
        assert_eq!(token.policy().deadline, Some(1_517_373_343_891));
        assert_eq!(token.policy().extra.len(), 2);
        assert_eq!(token.policy().extra["returnBody"], serde_json::json!("x"));
        assert_eq!(token.access_key(), "ak");
    }

    #[test]
    fn no_or_unreadable_deadline_never_expires_locally() {
        for json in [
            r#"{"scope":"s"}"#,
            r#"{"deadline":"soon"}"#,
            r#"{"deadline":-5}"#,
        ] {
            let token = UploadToken::parse(&token_with_policy(json)).unwrap();
            assert_eq!(token.deadline(), None, "{json}");
            assert!(!token.expires_within(SystemTime::now(), Duration::from_secs(3600)));
        }
        let token = UploadToken::parse(&token_with_policy(r#"{"deadline":"soon"}"#)).unwrap();
        assert_eq!(token.policy().extra["deadline"], serde_json::json!("soon"));
    }

    #[test]
    fn malformed_tokens_give_typed_errors() {
        let secret_part = "c2VjcmV0LXNpZ25hdHVyZQ";
        let cases = [
            ("", UploadTokenError::Shape { parts: 1 }),
            ("onlyone", UploadTokenError::Shape { parts: 1 }),
            ("a:b", UploadTokenError::Shape { parts: 2 }),
            ("a:b:e30:d", UploadTokenError::Shape { parts: 4 }),
            (":b:e30", UploadTokenError::EmptyPart { part: "AccessKey" }),
            (
                "a::e30",
                UploadTokenError::EmptyPart {
                    part: "EncodedSign",
                },
            ),
            (
                "a:b:",
                UploadTokenError::EmptyPart {
                    part: "EncodedPutPolicy",
                },
            ),
            (
                "a:b:[1]",
                UploadTokenError::Base64 {
                    reason: String::new(),
                },
            ),
            (
                "a:b:bm90IGpzb24",
                UploadTokenError::Json {
                    reason: String::new(),
                },
            ),
            ("a:b:WzEsMl0", UploadTokenError::NotAnObject),
        ];
        for (text, expected) in cases {
            let error = UploadToken::parse(text).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&error),
                std::mem::discriminant(&expected),
                "{text:?}: {error:?}"
            );
        }
        let error = UploadToken::parse(&format!("ak:{secret_part}:!!!")).unwrap_err();
        assert!(!error.to_string().contains(secret_part), "{error}");
        assert!(error.to_string().contains("put policy"), "{error}");
    }

    proptest! {
        #![proptest_config(persisted(256, "proptest-regressions/upload_token.txt"))]

        #[test]
        fn parse_never_panics(text in "\\PC{0,200}") {
            let _ = UploadToken::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_near_tokens(
            ak in "[a-z0-9]{0,8}",
            sign in "[A-Za-z0-9+/=]{0,12}",
            policy in "[A-Za-z0-9+/=_:-]{0,80}",
        ) {
            let _ = UploadToken::parse(&format!("{ak}:{sign}:{policy}"));
        }

        #[test]
        fn any_deadline_reads_back(deadline in any::<u64>(), as_string in any::<bool>()) {
            let value = if as_string {
                serde_json::json!(deadline.to_string())
            } else {
                serde_json::json!(deadline)
            };
            let json = serde_json::json!({"scope": "s", "deadline": value}).to_string();
            let token = UploadToken::parse(&token_with_policy(&json)).unwrap();
            prop_assert_eq!(token.policy().deadline, Some(deadline));
            // Never panics, whatever the time.
            let _ = token.expires_within(SystemTime::UNIX_EPOCH, Duration::MAX);
            let _ = token.deadline();
        }
    }

    #[test]
    fn numbers_are_read_leniently() {
        assert_eq!(unsigned(&serde_json::json!(12)), Some(12));
        assert_eq!(unsigned(&serde_json::json!("12")), Some(12));
        assert_eq!(unsigned(&serde_json::json!(12.0)), Some(12));
        assert_eq!(unsigned(&serde_json::json!(12.5)), None);
        assert_eq!(unsigned(&serde_json::json!(-1)), None);
        assert_eq!(unsigned(&serde_json::json!("-1")), None);
        assert_eq!(unsigned(&serde_json::json!("")), None);
        assert_eq!(signed(&serde_json::json!("-1")), Some(-1));
        assert_eq!(signed(&serde_json::json!(true)), None);
    }

    #[test]
    fn seconds_and_milliseconds_deadlines() {
        let mut object = Map::new();
        object.insert("deadline".into(), serde_json::json!(1_517_373_343u64));
        let policy = PutPolicy::from_object(object);
        assert_eq!(
            policy.deadline_time(),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_517_373_343))
        );
    }
}
