//! Log in and token rotation.
//!
//! A login ends every older token of the account at once (as a login elsewhere does)
//! and hands out a token, an HS256 JWT. Every authenticated call must send a valid one
//! in `Qingzhen-Token` and gets a new one in the answer's `qingzhen-token` header; the
//! token it sent stays valid for the rotation grace period (so that calls in flight
//! still work), then stops working. Every token also ends `token_lifetime` after it was
//! issued.
//!
//! Each login is a session with an `ssid`; more than `sixpan_max_devices` logins
//! within one token lifetime are refused with `LOGIN_USER_TOO_MUCH`, and that refusal
//! carries a token (as the real service's does) that works only for
//! `/v2/user/online` (the sessions) and `/v2/user/logoutOther {ssid: [...]}` (which
//! ends those sessions and frees their places), the emulator's reading of the Android
//! client's "log out other devices" flow.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use offline_proto::sixpan::{EndpointId, ErrorCode, LoginRequest, LogoutOtherRequest};
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
#[derive(Debug, Clone)]
struct Record {
    expires: Instant,
    /// When a newer token replaced it (it works for the grace period after).
    superseded: Option<Instant>,
    /// Ended by a newer login or [`SixpanState::expire_tokens`].
    revoked: bool,
    /// The session (login) it belongs to; `None` for the token of a refused login.
    ssid: Option<String>,
    /// Good only for `/v2/user/online` and `/v2/user/logoutOther` (the token of a
    /// `LOGIN_USER_TOO_MUCH` refusal, and its rotations).
    limited: bool,
}

/// One login: a session.
#[derive(Debug, Clone)]
struct Login {
    at: Instant,
    at_ms: i64,
    ssid: String,
}

/// The tokens issued and the recent logins.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    tokens: HashMap<String, Record>,
    /// The recent logins, oldest first (for the devices limit).
    logins: VecDeque<Login>,
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

    fn insert(&mut self, token: String, record: Record, now: Instant, grace: Duration) {
        if self.tokens.len() >= PRUNE_AT {
            self.tokens.retain(|_, r| {
                !r.revoked
                    && now < r.expires
                    && r.superseded
                        .is_none_or(|at| now < at.checked_add(grace).unwrap_or(at + FAR_FUTURE))
            });
        }
        self.tokens.insert(token, record);
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
    /// A refused login's token on another call than `online`/`logoutOther`.
    Limited,
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
            Self::Limited => {
                "token invalid: the token of a LOGIN_USER_TOO_MUCH answer only lists (/v2/user/online) and logs out (/v2/user/logoutOther) the other sessions"
            }
        }
    }
}

impl SixpanState {
    /// `POST /v2/user/login`: the user and a new token, ending all older ones. The
    /// error comes with a token only for `LOGIN_USER_TOO_MUCH`: a limited one, good
    /// for `/v2/user/online` and `/v2/user/logoutOther`.
    pub(super) fn login(&self, body: &[u8]) -> Result<(Value, String), (ApiError, Option<String>)> {
        self.check_login(body).map_err(|e| (e, None))?;
        let now = self.env.now();
        let token = {
            let mut sessions = lock(&self.auth);
            let window = self.token_lifetime;
            while sessions
                .logins
                .front()
                .is_some_and(|l| now.duration_since(l.at) >= window)
            {
                sessions.logins.pop_front();
            }
            if sessions.logins.len() >= self.max_devices {
                info!("6pan login refused: too many devices");
                let token = self.mint_token();
                let record = self.record(now, None, true);
                sessions.insert(token.clone(), record, now, self.rotation_grace);
                return Err((
                    ApiError::bad(
                        ErrorCode::LoginUserTooMuch.as_str(),
                        "too many devices logged in",
                    ),
                    Some(token),
                ));
            }
            sessions.revoke_all();
            let ssid = random_hex(16);
            sessions.logins.push_back(Login {
                at: now,
                at_ms: self.env.now_ms(),
                ssid: ssid.clone(),
            });
            let token = self.mint_token();
            let record = self.record(now, Some(ssid), false);
            sessions.insert(token.clone(), record, now, self.rotation_grace);
            token
        };
        self.logins
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        info!("6pan login");
        Ok((self.user_json(), token))
    }

    /// The checks of a login's body and credentials.
    fn check_login(&self, body: &[u8]) -> Result<(), ApiError> {
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
        Ok(())
    }

    /// A new token's record.
    fn record(&self, now: Instant, ssid: Option<String>, limited: bool) -> Record {
        Record {
            expires: self.expiry(now),
            superseded: None,
            revoked: false,
            ssid,
            limited,
        }
    }

    /// `POST /v2/user/online`: `{self, online}`, the caller's session (none for a
    /// refused login's token) and the others, as the Android client's `UserOnlineBean`.
    pub(super) fn online(&self, body: &[u8], token: &str) -> Answer {
        self.empty_body(EndpointId::UserOnline, body)?;
        let sessions = lock(&self.auth);
        let mine = sessions.tokens.get(token).and_then(|r| r.ssid.clone());
        let view = |l: &Login| {
            json!({
                "device": "emulator", "ignoreCase": false, "refreshTime": l.at_ms,
                "ssid": l.ssid, "status": 1,
            })
        };
        let this = sessions
            .logins
            .iter()
            .find(|l| Some(&l.ssid) == mine.as_ref())
            .map(view);
        let online: Vec<Value> = sessions
            .logins
            .iter()
            .filter(|l| Some(&l.ssid) != mine.as_ref())
            .map(view)
            .collect();
        let mut result = json!({ "online": online });
        if let Some(this) = this {
            result["self"] = this;
        }
        Ok(result)
    }

    /// `POST /v2/user/logoutOther {ssid: [...]}`: ends those sessions (their tokens,
    /// and their places under the devices limit); `true`. Unknown ssids are ignored.
    pub(super) fn logout_other(&self, body: &[u8]) -> Answer {
        let (request, json): (LogoutOtherRequest, _) = parse_json(body)?;
        if request.ssid.is_empty() {
            return Err(ApiError::parameter("ssid must list at least one session"));
        }
        conform(EndpointId::LogoutOther, &json)?;
        let mut sessions = lock(&self.auth);
        sessions.logins.retain(|l| !request.ssid.contains(&l.ssid));
        for record in sessions.tokens.values_mut() {
            if record
                .ssid
                .as_ref()
                .is_some_and(|s| request.ssid.contains(s))
            {
                record.revoked = true;
            }
        }
        info!(sessions = request.ssid.len(), "6pan sessions logged out");
        Ok(Value::Bool(true))
    }

    /// Checks the `Qingzhen-Token` header and rotates: the new token to hand out. The
    /// static token ([`EmulatorConfig::static_token`](crate::EmulatorConfig::static_token))
    /// is always valid and is handed back unchanged (no login ends it, and nothing is
    /// remembered per call).
    ///
    /// A refused login's token (and its rotations) is accepted only when `limited_ok`
    /// (`/v2/user/online`, `/v2/user/logoutOther`).
    pub(super) fn authenticate(
        &self,
        headers: &HeaderMap,
        limited_ok: bool,
    ) -> Result<String, Refusal> {
        let token = header_text(headers, REQUEST_HEADER)
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::Missing)?;
        if self.env.is_static_token(token) {
            return Ok(token.to_owned());
        }
        let now = self.env.now();
        let mut sessions = lock(&self.auth);
        sessions.check(token, now, self.rotation_grace)?;
        let (ssid, limited) = match sessions.tokens.get_mut(token) {
            Some(record) => {
                record.superseded.get_or_insert(now);
                (record.ssid.clone(), record.limited)
            }
            None => (None, false),
        };
        if limited && !limited_ok {
            return Err(Refusal::Limited);
        }
        let new = self.mint_token();
        let record = self.record(now, ssid, limited);
        sessions.insert(new.clone(), record, now, self.rotation_grace);
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
        self.empty_body(EndpointId::UserInfo, body)?;
        Ok(self.user_json())
    }

    /// Checks the `{}` body of `endpoint` (an empty body is taken as `{}`).
    fn empty_body(&self, endpoint: EndpointId, body: &[u8]) -> Result<(), ApiError> {
        if !body.iter().all(u8::is_ascii_whitespace) {
            let json: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::parameter(format!("invalid request body: {e}")))?;
            if !json.is_object() {
                return Err(ApiError::parameter(
                    "request body must be a JSON object ({})",
                ));
            }
            conform(endpoint, &json)?;
        }
        Ok(())
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
        let record = Record {
            expires: now + Duration::from_secs(3600),
            superseded: None,
            revoked: false,
            ssid: None,
            limited: false,
        };
        s.insert("a".into(), record, now, grace);
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
