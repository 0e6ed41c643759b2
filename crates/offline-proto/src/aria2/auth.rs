//! Who may call: the `token:SECRET` of aria2's clients, and the HTTP Basic login of
//! `offline serve`'s web page.
//!
//! aria2's clients authorize each call with `token:SECRET` as its first parameter
//! ([`Config::secret`](super::Config::secret)). A browser cannot be made to add that
//! to a page it did not write, but it resends the HTTP Basic credentials of a page to
//! the same origin: so a transport that checked a request's `Authorization` against
//! the [`WebLogin`] hands the body in as [`Caller::Authenticated`]
//! ([`handle_body_from`](super::handle_body_from)), and its calls need no token (one
//! sent is taken off and not looked at). Everything else comes in as
//! [`Caller::Anonymous`] and is checked call by call as aria2 does.
//!
//! The daemon's rule for a web password alone (no RPC secret): the web password is
//! also the RPC secret, so aria2 clients send `token:<web password>`.

use base64::Engine as _;

use crate::secret::constant_time_eq;
use crate::Secret;

/// How the transport vouches for a body's sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Nothing known: with a secret configured, each call needs `token:SECRET`.
    Anonymous,
    /// The transport checked the sender's credentials (the web page's HTTP Basic
    /// login): its calls need no token.
    Authenticated,
}

/// The web page's login (`--web-username`, `--web-password`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebLogin {
    /// The user name (default `admin`).
    pub username: String,
    /// The password.
    pub password: Secret,
}

impl WebLogin {
    /// The realm of the `WWW-Authenticate: Basic realm="…"` challenge.
    pub const REALM: &'static str = "offline serve";

    /// Whether `authorization` (an `Authorization` header's value) is
    /// `Basic base64(username:password)` with this login's user name and password,
    /// both compared in constant time (RFC 7617; the scheme's name is
    /// case-insensitive).
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some((scheme, encoded)) = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.trim().split_once(' '))
        else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        // Padding optional, as Transmission's own decoder takes it.
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let Ok(decoded) = engine.decode(encoded.trim()) else {
            return false;
        };
        // No colon: a user name only (an empty password).
        let (user, password) = match decoded.iter().position(|&b| b == b':') {
            Some(colon) => (&decoded[..colon], &decoded[colon + 1..]),
            None => (&decoded[..], &[][..]),
        };
        self.matches(user, password)
    }

    /// Whether `username` and `password` are this login's, both compared in constant
    /// time whatever the first gives, so the time tells neither.
    pub fn matches(&self, username: &[u8], password: &[u8]) -> bool {
        let user_ok = constant_time_eq(username, self.username.as_bytes());
        let password_ok = constant_time_eq(password, self.password.expose().as_bytes());
        user_ok & password_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(pair: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
        .into_bytes()
    }

    #[test]
    fn basic_credentials_are_checked_whole() {
        let login = WebLogin {
            username: "admin".into(),
            password: Secret::new("pw:with colon"),
        };
        assert!(login.accepts(Some(&basic("admin:pw:with colon"))));
        assert!(login.accepts(Some(
            format!(
                "basic  {}",
                base64::engine::general_purpose::STANDARD.encode("admin:pw:with colon")
            )
            .trim_end()
            .as_bytes()
        )));
        assert!(!login.accepts(None));
        assert!(!login.accepts(Some(&basic("admin:pw"))));
        assert!(!login.accepts(Some(&basic("root:pw:with colon"))));
        assert!(!login.accepts(Some(&basic("admin"))));
        assert!(!login.accepts(Some(b"Bearer abc")));
        assert!(!login.accepts(Some(b"Basic !!!")));
        assert!(!login.accepts(Some(b"Basic")));
    }

    #[test]
    fn constant_time_eq_is_eq() {
        use crate::secret::constant_time_eq;
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cre", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret!", b"s3cret"));
        assert!(!constant_time_eq(b"s3crex", b"s3cret"));
        assert!(!constant_time_eq(b"", b"s3cret"));
        assert!(constant_time_eq(b"", b""));
    }
}
