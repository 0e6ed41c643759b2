//! Log in and token rotation.
//!
//! A login ends every older token of the account at once (as a login elsewhere does)
//! and hands out a token, an HS256 JWT. Every authenticated call must send a valid one
//! in `Qingzhen-Token` and gets a new one in the answer's `qingzhen-token` header; the
//! token it sent stays valid for the rotation grace period (so that calls in flight
//! still work), then stops working. Every token also ends `token_lifetime` after it was
//! issued.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use offline_proto::sixpan::{EndpointId, ErrorCode, LoginRequest};
use serde_json::{json, Value};
use sha2::Sha256;
use tracing::info;

use super::{
    conform, header_text, is_lower_hex, parse_json, Answer, ApiError, SixpanState, PASSWORD_ERROR,
    USER_NOT_FOUND,
};
use crate::common::{constant_time_eq, lock, random_hex};

/// The request header that carries the token.
const REQUEST_HEADER: &str = "qingzhen-token";
/// Token records kept before invalid ones are pruned.
const PRUNE_AT: usize = 4096;
/// Stand-in for a lifetime too long to add to an instant.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// One issued token.
#[derive(Debug, Clone, Copy)]
struct Record {
    expires: Instant,
    /// When a newer token replaced it (it works for the grace period after).
    superseded: Option<Instant>,
    /// Ended by a newer login or [`SixpanState::expire_tokens`].
    revoked: bool,
}

/// The tokens issued and the recent logins.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    tokens: HashMap<String, Record>,
    /// When recent logins happened, oldest first (for the devices limit).
    logins: VecDeque<Instant>,
}

impl Sessions {
    /// Ends every token at once.
    pub(super) fn revoke_all(&mut self) {
        for record in self.tokens.values_mut() {
            record.revoked = true;
        }
    }

    fn check(&self, token: &str, now: Instant, grace: Duration) -> Result<(), Refusal> {
        let record = self.tokens.get(token).ok_or(Refusal::Unknown)?;
        if record.revoked {
            return Err(Refusal::Ended);
        }
        if now >= record.expires {
            return Err(Refusal::Expired);
        }
        if record
            .superseded
            .is_some_and(|at| now >= at.checked_add(grace).unwrap_or(at + FAR_FUTURE))
        {
            return Err(Refusal::Superseded);
        }
        Ok(())
    }

    fn insert(&mut self, token: String, expires: Instant, now: Instant, grace: Duration) {
        if self.tokens.len() >= PRUNE_AT {
            self.tokens.retain(|_, r| {
                !r.revoked
                    && now < r.expires
                    && r.superseded
                        .is_none_or(|at| now < at.checked_add(grace).unwrap_or(at + FAR_FUTURE))
            });
        }
        self.tokens.insert(
            token,
            Record {
                expires,
                superseded: None,
                revoked: false,
            },
        );
    }
}

/// Why a token was refused (the code is always `BEARER_AUTHORIZATION_HEADER_INVALID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    Missing,
    Unknown,
    Ended,
    Expired,
    Superseded,
}

impl Refusal {
    pub(super) fn message(self) -> &'static str {
        match self {
            Self::Missing => "token invalid: missing Qingzhen-Token header",
            Self::Unknown => "token invalid",
            Self::Ended => "token invalid: ended by a login elsewhere",
            Self::Expired => "token invalid: expired",
            Self::Superseded => {
                "token invalid: replaced by a newer token (keep the qingzhen-token of every answer)"
            }
        }
    }
}

impl SixpanState {
    /// `POST /v2/user/login`: the user and a new token, ending all older ones.
    pub(super) fn login(&self, body: &[u8]) -> Result<(Value, String), ApiError> {
        let (request, json): (LoginRequest, _) = parse_json(body)?;
        let value = request.value.trim();
        if value.is_empty() {
            return Err(ApiError::parameter(
                "value (phone number or e-mail) is required",
            ));
        }
        let password = request.password.expose();
        if !is_lower_hex(password, 32) {
            return Err(ApiError::parameter(
                "password must be the lowercase hex MD5 of the password (32 digits)",
            ));
        }
        conform(EndpointId::Login, &json)?;
        if !value.eq_ignore_ascii_case(self.account.trim()) {
            info!("6pan login refused: unknown account");
            return Err(ApiError::bad(USER_NOT_FOUND, "no such user"));
        }
        if !constant_time_eq(password.as_bytes(), self.password_md5.as_bytes()) {
            info!("6pan login refused: wrong password");
            return Err(ApiError::bad(PASSWORD_ERROR, "wrong password"));
        }
        let now = self.env.now();
        let token = {
            let mut sessions = lock(&self.auth);
            let window = self.token_lifetime;
            while sessions
                .logins
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                sessions.logins.pop_front();
            }
            if sessions.logins.len() >= self.max_devices {
                info!("6pan login refused: too many devices");
                return Err(ApiError::bad(
                    ErrorCode::LoginUserTooMuch.as_str(),
                    "too many devices logged in",
                ));
            }
            sessions.revoke_all();
            sessions.logins.push_back(now);
            let token = self.mint_token();
            sessions.insert(token.clone(), self.expiry(now), now, self.rotation_grace);
            token
        };
        self.logins
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        info!("6pan login");
        Ok((self.user_json(), token))
    }

    /// Checks the `Qingzhen-Token` header and rotates: the new token to hand out. The
    /// static token ([`EmulatorConfig::static_token`](crate::EmulatorConfig::static_token))
    /// is always valid and is handed back unchanged (no login ends it, and nothing is
    /// remembered per call).
    pub(super) fn authenticate(&self, headers: &HeaderMap) -> Result<String, Refusal> {
        let token = header_text(headers, REQUEST_HEADER)
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::Missing)?;
        if self.env.is_static_token(token) {
            return Ok(token.to_owned());
        }
        let now = self.env.now();
        let mut sessions = lock(&self.auth);
        sessions.check(token, now, self.rotation_grace)?;
        if let Some(record) = sessions.tokens.get_mut(token) {
            record.superseded.get_or_insert(now);
        }
        let new = self.mint_token();
        sessions.insert(new.clone(), self.expiry(now), now, self.rotation_grace);
        Ok(new)
    }

    fn expiry(&self, now: Instant) -> Instant {
        now.checked_add(self.token_lifetime)
            .unwrap_or(now + FAR_FUTURE)
    }

    /// A new HS256 JWT naming the user; its validity is what the server remembers.
    fn mint_token(&self) -> String {
        let issued = self.env.now_ms() / 1000;
        let lifetime = i64::try_from(self.token_lifetime.as_secs()).unwrap_or(i64::MAX);
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = json!({
            "sub": self.user.identity,
            "iat": issued,
            "exp": issued.saturating_add(lifetime),
            "jti": random_hex(16),
        });
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{payload}");
        let signature = match Hmac::<Sha256>::new_from_slice(&self.keys.jwt) {
            Ok(mut mac) => {
                mac.update(input.as_bytes());
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            }
            // HMAC takes keys of any length; not reached.
            Err(_) => random_hex(32),
        };
        format!("{}{input}.{signature}", self.env.token_prefix)
    }

    /// The user, as login and user info answer it (the fields are not documented).
    fn user_json(&self) -> Value {
        let (email, phone) = if self.account.contains('@') {
            (Value::from(self.account.clone()), Value::Null)
        } else {
            (Value::Null, Value::from(self.account.clone()))
        };
        let used: u64 = self.drive_bytes();
        json!({
            "id": self.user.id,
            "identity": self.user.identity,
            "name": self.account.split('@').next().unwrap_or_default(),
            "email": email,
            "phone": phone,
            "createTime": self.user.created,
            "spaceUsed": used,
            "spaceCapacity": 1u64 << 40,
            "vip": false,
        })
    }

    /// `POST /v2/user/info`: the user (the token was already rotated). The body should
    /// be `{}`; an empty one is taken as `{}`.
    pub(super) fn user_info_call(&self, body: &[u8]) -> Answer {
        if !body.iter().all(u8::is_ascii_whitespace) {
            let json: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::parameter(format!("invalid request body: {e}")))?;
            if !json.is_object() {
                return Err(ApiError::parameter(
                    "request body must be a JSON object ({})",
                ));
            }
            conform(EndpointId::UserInfo, &json)?;
        }
        Ok(self.user_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_grace_and_revocation() {
        let mut s = Sessions::default();
        let now = Instant::now();
        let grace = Duration::from_secs(30);
        s.insert("a".into(), now + Duration::from_secs(3600), now, grace);
        assert_eq!(s.check("a", now, grace), Ok(()));
        assert_eq!(s.check("b", now, grace), Err(Refusal::Unknown));
        s.tokens.get_mut("a").unwrap().superseded = Some(now);
        assert_eq!(s.check("a", now + Duration::from_secs(29), grace), Ok(()));
        assert_eq!(
            s.check("a", now + Duration::from_secs(30), grace),
            Err(Refusal::Superseded)
        );
        assert_eq!(
            s.check("a", now + Duration::from_secs(3600), Duration::MAX),
            Err(Refusal::Expired)
        );
        s.revoke_all();
        assert_eq!(s.check("a", now, grace), Err(Refusal::Ended));
    }
}
