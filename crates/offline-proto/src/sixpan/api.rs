//! The 6pan API host's calls: encoding with `Qingzhen-Token`, decoding the envelope
//! into typed errors, token rotation, login, and local validation of links.
//!
//! Facts: `docs/wire-notes.md` (6pan section), seeds `000` and `001`, and
//! `fixtures/openapi/6pan.yaml`.

use bytes::Bytes;
use http::{header, Method, StatusCode};
use md5::{Digest, Md5};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    AddRequest, AddResult, DeleteRequest, EndpointId, LoginRequest, LogoutOtherRequest,
    OnlineSessions, PageRequest, ParseResult, ParseTorrentRequest, ParseUrlRequest,
    StoreTokenRequest, StoreTokenResult, TaskPage, UploadTokenRequest, UploadTokenResult, UserInfo,
    UserInfoRequest, UserOnlineRequest,
};
use crate::common::{
    decode_field, parse_envelope, rate_limited, refuse_empty, sensitive_header, status_error,
};
use crate::{ApiError, BaseUrl, Code, DecodeError, EncodeError, HttpRequest, HttpResponse};
use crate::{ProviderError, Secret, ValidationError};

/// The production base URL of the v1/v2 generation.
pub const DEFAULT_BASE_URL: &str = "https://api.6pan.cn";

/// The request header carrying the login token.
pub const TOKEN_HEADER: &str = "qingzhen-token";

/// The code of an expired or invalid token.
pub const CODE_TOKEN_INVALID: &str = "BEARER_AUTHORIZATION_HEADER_INVALID";
/// The code of a missing file (a torrent hash not in the drive).
pub const CODE_NOT_FOUND: &str = "FILE_NOT_FOUND";

crate::common::endpoint_trait! {
    /// A 6pan API-host call: a request type that encodes itself and decodes its answer.
    output:
        /// What a successful answer's `result` decodes to.
    to_http:
        /// Builds the request: `POST`, the body as JSON, `Qingzhen-Token: <token>` when
        /// given.
        encode,
    decode:
        /// Decodes the answer's envelope and `result`.
        decode_envelope,
}

fn encode<T: Serialize + ?Sized>(
    id: EndpointId,
    body: &T,
    base: &BaseUrl,
    token: Option<&Secret>,
) -> Result<HttpRequest, EncodeError> {
    let body = serde_json::to_vec(body).map_err(|e| EncodeError::Body(e.to_string()))?;
    let mut builder = http::Request::builder()
        .method(Method::POST)
        .uri(base.endpoint(id.path(), &[])?)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        builder = builder.header(
            TOKEN_HEADER,
            sensitive_header(token.expose(), TOKEN_HEADER)?,
        );
    }
    builder
        .body(Bytes::from(body))
        .map_err(|e| EncodeError::Uri(e.to_string()))
}

#[derive(serde::Deserialize)]
struct RawEnvelope<'a> {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    message: Option<String>,
    #[serde(borrow, default)]
    result: Option<&'a serde_json::value::RawValue>,
}

/// Decodes a 6pan envelope and its `result` as `T`.
///
/// Success is `success == true` and `code == "OK"`. Errors are typed: HTTP 401 or
/// `BEARER_AUTHORIZATION_HEADER_INVALID` → [`ApiError::TokenInvalid`], HTTP 429 →
/// [`ApiError::RateLimited`], `FILE_NOT_FOUND` → [`ApiError::NotFound`], any other code
/// → [`ApiError::Provider`] with the code as text; a non-JSON answer with a failure
/// status (the throttling 403/502 users reported) → [`ApiError::Http`].
///
/// # Errors
///
/// As above, or a [`DecodeError`] with the JSON path and the raw body.
pub fn decode_envelope<T: DeserializeOwned>(response: &HttpResponse) -> Result<T, ApiError> {
    let status = response.status();
    let raw = match parse_envelope::<RawEnvelope<'_>>(response.body()) {
        Ok(raw) => raw,
        Err((path, e)) if status.is_success() => {
            return Err(DecodeError::from_json(&e, Some(path), response).into());
        }
        Err(_) => return Err(status_error(response, Code::Text("HTTP_429".to_owned()))),
    };
    let code = raw.code.unwrap_or_default();
    let ok = raw.success == Some(true) && code == "OK";
    if !ok {
        let error = ProviderError {
            code: Code::Text(if code.is_empty() {
                format!("HTTP_{}", status.as_u16())
            } else {
                code.clone()
            }),
            message: raw.message.unwrap_or_default(),
            trace_id: None,
            status,
        };
        return Err(
            if status == StatusCode::UNAUTHORIZED || code == CODE_TOKEN_INVALID {
                ApiError::TokenInvalid(error)
            } else if status == StatusCode::TOO_MANY_REQUESTS {
                rate_limited(error, response)
            } else if code == CODE_NOT_FOUND {
                ApiError::NotFound(error)
            } else {
                ApiError::Provider(error)
            },
        );
    }
    #[derive(serde::Deserialize)]
    struct ResultOf<T> {
        result: T,
    }
    decode_field(
        response,
        "result",
        raw.result.is_some(),
        |r: ResultOf<T>| r.result,
    )
}

/// The fresh token an answer carries, if any: the `qingzhen-token` response header, or
/// (v1 servers) `Authorization: Bearer <jwt>`, or the body's `token` field.
pub fn rotated_token(response: &HttpResponse) -> Option<Secret> {
    let headers = response.headers();
    if let Some(v) = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()) {
        if !v.trim().is_empty() {
            return Some(Secret::new(v.trim()));
        }
    }
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.trim().strip_prefix("Bearer ") {
            if !t.trim().is_empty() {
                return Some(Secret::new(t.trim()));
            }
        }
    }
    #[derive(serde::Deserialize)]
    struct TokenField {
        #[serde(default)]
        token: Option<String>,
    }
    serde_json::from_slice::<TokenField>(response.body())
        .ok()
        .and_then(|t| t.token)
        .filter(|t| !t.trim().is_empty() && t != "...")
        .map(Secret::new)
}

/// Token rotation as a state machine: every answer may carry a fresh token, and the
/// client must keep the newest one.
///
/// "Newest" is decided by the order requests were **sent**, not the order answers
/// arrive: [`begin`](Session::begin) hands out a sequence number with the token; a
/// token from the answer to request `n` replaces the current one only if no answer to
/// a later request has set it already. So a slow answer to an old request never rolls
/// the token back.
#[derive(Debug, Clone, Default)]
pub struct Session {
    token: Option<Secret>,
    token_seq: u64,
    next_seq: u64,
    rotations: u64,
}

impl Session {
    /// A session without a token (log in first).
    pub fn new() -> Self {
        Self::default()
    }

    /// A session starting from a token the user supplied.
    pub fn with_token(token: Secret) -> Self {
        Self {
            token: Some(token),
            ..Self::default()
        }
    }

    /// The current token.
    pub fn token(&self) -> Option<&Secret> {
        self.token.as_ref()
    }

    /// How many times an answer replaced the token.
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// Starts a request: its sequence number and the token to send.
    pub fn begin(&mut self) -> (u64, Option<Secret>) {
        self.next_seq += 1;
        (self.next_seq, self.token.clone())
    }

    /// The answer to request `seq` arrived: keeps its fresh token if it is the newest.
    /// Returns whether the token changed.
    pub fn handle_response(&mut self, seq: u64, response: &HttpResponse) -> bool {
        match rotated_token(response) {
            Some(token) => self.handle_token(seq, token),
            None => false,
        }
    }

    /// A token arrived with the answer to request `seq` (a login's, or a rotation).
    /// Returns whether it replaced the current one.
    pub fn handle_token(&mut self, seq: u64, token: Secret) -> bool {
        if seq < self.token_seq || self.token.as_ref() == Some(&token) {
            return false;
        }
        self.token = Some(token);
        self.token_seq = seq;
        self.rotations += 1;
        true
    }

    /// The server rejected `token`. Forgets it if it is still the current one; returns
    /// whether a newer token is already held (so the request is worth sending again).
    pub fn handle_rejected(&mut self, token: Option<&Secret>) -> bool {
        if self.token.as_ref() == token {
            self.token = None;
            false
        } else {
            self.token.is_some()
        }
    }
}

/// The lowercase hex MD5 of a password, as `login` wants it.
pub fn password_digest(password: &str) -> Secret {
    let digest = Md5::digest(password.as_bytes());
    let mut hex = String::with_capacity(32);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    Secret::new(hex)
}

impl LoginRequest {
    /// A password login for `account` (phone number or e-mail); the password is sent
    /// as its MD5 digest.
    pub fn with_password(account: impl Into<String>, password: &str) -> Self {
        Self {
            value: account.into(),
            password: password_digest(password),
            country_code: None,
            code: String::new(),
        }
    }
}

impl Endpoint for LoginRequest {
    type Output = UserInfo;
    const ID: EndpointId = EndpointId::Login;

    fn validate(&self) -> Result<(), ValidationError> {
        refuse_empty("value", self.value.trim().is_empty())?;
        refuse_empty("password", self.password.is_empty())
    }
}

impl Endpoint for UserInfoRequest {
    type Output = UserInfo;
    const ID: EndpointId = EndpointId::UserInfo;
}

impl Endpoint for StoreTokenRequest {
    type Output = StoreTokenResult;
    const ID: EndpointId = EndpointId::StoreToken;

    fn validate(&self) -> Result<(), ValidationError> {
        crate::common::file_name(&self.name)
    }
}

impl Endpoint for UserOnlineRequest {
    type Output = OnlineSessions;
    const ID: EndpointId = EndpointId::UserOnline;
}

impl Endpoint for LogoutOtherRequest {
    type Output = bool;
    const ID: EndpointId = EndpointId::LogoutOther;

    fn validate(&self) -> Result<(), ValidationError> {
        refuse_empty("ssid", self.ssid.is_empty())
    }
}

impl LogoutOtherRequest {
    /// Logs out every session `sessions` lists as another one (`online`), never this
    /// one (`self`, when given): the Android client's "log out other devices".
    pub fn others(sessions: &OnlineSessions) -> Self {
        let this = sessions.this.as_ref().map(|s| s.ssid.as_str());
        Self {
            ssid: sessions
                .online
                .iter()
                .map(|s| s.ssid.clone())
                .filter(|ssid| !ssid.is_empty() && Some(ssid.as_str()) != this)
                .collect(),
        }
    }
}

impl Endpoint for UploadTokenRequest {
    type Output = UploadTokenResult;
    const ID: EndpointId = EndpointId::UploadToken;

    fn validate(&self) -> Result<(), ValidationError> {
        crate::common::file_name(&self.name)
    }
}

impl From<&StoreTokenRequest> for UploadTokenRequest {
    /// The v2 body for what a `storeToken` body asks: the same `name` and `hash`, the
    /// parent folder as `path`, or as `identity` (its UUID) when only `parent` is set.
    fn from(request: &StoreTokenRequest) -> Self {
        Self {
            name: request.name.clone(),
            identity: request.parent.clone().filter(|_| request.path.is_none()),
            path: request.path.clone(),
            hash: request.hash,
        }
    }
}

/// What kind of link a source is, for `parseUrl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// `http://` or `https://`.
    Http,
    /// `magnet:?xt=urn:btih:...`.
    Magnet,
    /// `ed2k://|file|name|size|hash|/`.
    Ed2k,
}

/// Checks one link for `parseUrl`: http(s) with a host, a magnet link with a BitTorrent
/// infohash (`xt=urn:btih:` and 40 hex or 32 base32 characters), or an ed2k file link
/// (`ed2k://|file|<name>|<size>|<32 hex>|`).
///
/// # Errors
///
/// [`ValidationError::UnsupportedScheme`] for another scheme,
/// [`ValidationError::InvalidUrl`] for a malformed link of a known scheme.
pub fn validate_link(link: &str) -> Result<LinkKind, ValidationError> {
    let link = link.trim();
    let invalid = |reason: &str| ValidationError::InvalidUrl {
        url: link.chars().take(200).collect(),
        reason: reason.to_owned(),
    };
    let lower = link.to_ascii_lowercase();
    if lower.starts_with("magnet:") {
        let btih = link
            .split(['?', '&'])
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| k.eq_ignore_ascii_case("xt"))
            .find_map(|(_, v)| {
                v.get(..9)
                    .filter(|p| p.eq_ignore_ascii_case("urn:btih:"))
                    .map(|_| &v[9..])
            })
            .ok_or_else(|| invalid("a magnet link needs xt=urn:btih:<infohash>"))?;
        let ok = (btih.len() == 40 && btih.bytes().all(|b| b.is_ascii_hexdigit()))
            || (btih.len() == 32 && btih.bytes().all(|b| b.is_ascii_alphanumeric()));
        return if ok {
            Ok(LinkKind::Magnet)
        } else {
            Err(invalid(
                "the infohash must be 40 hex or 32 base32 characters",
            ))
        };
    }
    if lower.starts_with("ed2k://") {
        let parts: Vec<&str> = link["ed2k://".len()..].split('|').collect();
        // ["", "file", name, size, hash, "/"...]
        let ok = parts.len() >= 5
            && parts[1].eq_ignore_ascii_case("file")
            && !parts[2].is_empty()
            && parts[3].parse::<u64>().is_ok()
            && parts[4].len() == 32
            && parts[4].bytes().all(|b| b.is_ascii_hexdigit());
        return if ok {
            Ok(LinkKind::Ed2k)
        } else {
            Err(invalid(
                "an ed2k link must be ed2k://|file|<name>|<size>|<32 hex>|/",
            ))
        };
    }
    match crate::common::http_url("url", link) {
        Ok(_) => Ok(LinkKind::Http),
        Err(ValidationError::UnsupportedScheme { url, scheme, .. }) => {
            Err(ValidationError::UnsupportedScheme {
                url,
                scheme,
                allowed: "6pan downloads http, https, magnet and ed2k links",
            })
        }
        Err(e) => Err(e),
    }
}

impl ParseUrlRequest {
    /// A request for several links, joined by `\n`.
    pub fn new<S: AsRef<str>>(links: &[S]) -> Self {
        Self {
            url: links
                .iter()
                .map(|l| l.as_ref().trim())
                .collect::<Vec<_>>()
                .join("\n"),
            password: None,
        }
    }

    /// The links of the request.
    pub fn links(&self) -> impl Iterator<Item = &str> {
        self.url
            .split('\n')
            .map(str::trim)
            .filter(|l| !l.is_empty())
    }
}

impl Endpoint for ParseUrlRequest {
    type Output = Vec<ParseResult>;
    const ID: EndpointId = EndpointId::ParseUrl;

    /// Every link must be http(s), magnet or ed2k; at least one link.
    fn validate(&self) -> Result<(), ValidationError> {
        let mut any = false;
        for link in self.links() {
            validate_link(link)?;
            any = true;
        }
        if any {
            Ok(())
        } else {
            Err(ValidationError::Empty("url"))
        }
    }
}

impl Endpoint for ParseTorrentRequest {
    type Output = Vec<ParseResult>;
    const ID: EndpointId = EndpointId::ParseTorrent;

    fn validate(&self) -> Result<(), ValidationError> {
        refuse_empty("hash", self.hash.is_empty())
    }
}

impl Endpoint for AddRequest {
    type Output = AddResult;
    const ID: EndpointId = EndpointId::AddTasks;

    fn validate(&self) -> Result<(), ValidationError> {
        refuse_empty("task", self.task.is_empty())?;
        if !self.path.starts_with('/') {
            return Err(ValidationError::InvalidValue {
                field: "path",
                reason: format!(
                    "{:?} must be an absolute folder path such as /downloads",
                    self.path
                ),
            });
        }
        Ok(())
    }
}

impl Endpoint for PageRequest {
    type Output = TaskPage;
    const ID: EndpointId = EndpointId::ListTasks;

    fn validate(&self) -> Result<(), ValidationError> {
        if self.page == 0 || self.page_size == 0 {
            return Err(ValidationError::InvalidValue {
                field: "page",
                reason: "page and pageSize start at 1".to_owned(),
            });
        }
        Ok(())
    }
}

impl Endpoint for DeleteRequest {
    type Output = u64;
    const ID: EndpointId = EndpointId::DeleteTasks;

    fn validate(&self) -> Result<(), ValidationError> {
        refuse_empty("identities", self.identities.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Bytes::from(body.to_owned())).unwrap()
    }

    #[test]
    fn password_is_sent_as_md5_hex() {
        assert_eq!(
            password_digest("password").expose(),
            "5f4dcc3b5aa765d61d8327deb882cf99"
        );
        let req = LoginRequest::with_password("a@b.c", "password");
        let http = req
            .to_http(&BaseUrl::parse(DEFAULT_BASE_URL).unwrap(), None)
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(http.body()).unwrap();
        assert_eq!(body["password"], "5f4dcc3b5aa765d61d8327deb882cf99");
        assert_eq!(body["code"], "");
        assert!(http.headers().get(TOKEN_HEADER).is_none());
    }

    #[test]
    fn envelope_success_and_typed_errors() {
        let ok = response(
            200,
            &[],
            r#"{"status":0,"result":{"success":true,"count":2},"code":"OK","success":true}"#,
        );
        let r: AddResult = decode_envelope(&ok).unwrap();
        assert_eq!(r.count, 2);
        /// An answer's status and body, and what its error must be.
        type Refused = (u16, &'static str, fn(&ApiError) -> bool);
        let refused: [Refused; 5] = [
            (
                401,
                r#"{"status":401,"result":null,"code":"BEARER_AUTHORIZATION_HEADER_INVALID","success":false,"message":"jwt expired"}"#,
                |e| matches!(e, ApiError::TokenInvalid(_)),
            ),
            (
                400,
                r#"{"status":400,"code":"FILE_NOT_FOUND","success":false,"message":"no"}"#,
                |e| matches!(e, ApiError::NotFound(_)),
            ),
            (
                400,
                r#"{"status":400,"code":"UNSUPPORED_PROTOCOL","success":false}"#,
                |e| {
                    matches!(e, ApiError::Provider(p)
                        if p.code == Code::Text("UNSUPPORED_PROTOCOL".into()))
                },
            ),
            (502, "<html>bad gateway</html>", |e| {
                matches!(e, ApiError::Http { .. })
            }),
            // success flag without OK code is not success
            (
                200,
                r#"{"status":0,"result":{"success":true,"count":2},"code":"WEIRD","success":true}"#,
                |e| matches!(e, ApiError::Provider(_)),
            ),
        ];
        for (status, body, expected) in refused {
            let error = decode_envelope::<AddResult>(&response(status, &[], body)).unwrap_err();
            assert!(expected(&error), "{status} {body}: {error:?}");
        }
    }

    #[test]
    fn rotated_token_from_header_authorization_or_body() {
        let r = response(200, &[("qingzhen-token", "t1")], "{}");
        assert_eq!(rotated_token(&r), Some(Secret::new("t1")));
        let r = response(200, &[("authorization", "Bearer t2")], "{}");
        assert_eq!(rotated_token(&r), Some(Secret::new("t2")));
        let r = response(200, &[], r#"{"token":"t3","success":true}"#);
        assert_eq!(rotated_token(&r), Some(Secret::new("t3")));
        let r = response(200, &[], r#"{"token":"...","success":true}"#);
        assert_eq!(rotated_token(&r), None);
    }

    #[test]
    fn session_keeps_the_token_of_the_latest_sent_request() {
        let mut s = Session::with_token(Secret::new("t0"));
        let (a, ta) = s.begin();
        let (b, _) = s.begin();
        assert_eq!(ta, Some(Secret::new("t0")));
        // The later request's answer arrives first.
        assert!(s.handle_token(b, Secret::new("tb")));
        // The earlier request's answer arrives late: no roll-back.
        assert!(!s.handle_token(a, Secret::new("ta")));
        assert_eq!(s.token(), Some(&Secret::new("tb")));
        let (c, _) = s.begin();
        assert!(s.handle_token(c, Secret::new("tc")));
        assert_eq!(s.rotations(), 2);
        // A rejection of an old token keeps the newer one.
        assert!(s.handle_rejected(Some(&Secret::new("tb"))));
        assert!(!s.handle_rejected(Some(&Secret::new("tc"))));
        assert_eq!(s.token(), None);
    }

    #[test]
    fn links_are_validated_locally() {
        assert_eq!(validate_link("https://x.y/a.iso").unwrap(), LinkKind::Http);
        assert_eq!(
            validate_link("magnet:?xt=urn:btih:722fe65b2aa26d14f35b4ad627d20236e481d924&dn=alice")
                .unwrap(),
            LinkKind::Magnet
        );
        assert_eq!(
            validate_link("magnet:?dn=x&xt=urn:btih:CKKYAOTVBMH2OLCSFOQGOSZAFAB3SX2Q").unwrap(),
            LinkKind::Magnet
        );
        assert_eq!(
            validate_link("ed2k://|file|a.iso|123|0123456789abcdef0123456789abcdef|/").unwrap(),
            LinkKind::Ed2k
        );
        assert!(matches!(
            validate_link("magnet:?xt=urn:btih:zz"),
            Err(ValidationError::InvalidUrl { .. })
        ));
        assert!(matches!(
            validate_link("ed2k://|file|a|x|y|/"),
            Err(ValidationError::InvalidUrl { .. })
        ));
        assert!(matches!(
            validate_link("ftp://x.y/a"),
            Err(ValidationError::UnsupportedScheme { .. })
        ));
        let req = ParseUrlRequest::new(&[
            "https://x.y/a",
            "magnet:?xt=urn:btih:722fe65b2aa26d14f35b4ad627d20236e481d924",
        ]);
        assert_eq!(req.url.lines().count(), 2);
        assert!(req.validate().is_ok());
        assert!(ParseUrlRequest::new(&["https://x.y/a", "ftp://b"])
            .validate()
            .is_err());
        assert!(ParseUrlRequest::new::<&str>(&[]).validate().is_err());
    }

    #[test]
    fn token_header_is_sent_and_sensitive() {
        let req = UserInfoRequest {}
            .to_http(
                &BaseUrl::parse(DEFAULT_BASE_URL).unwrap(),
                Some(&Secret::new("jwt")),
            )
            .unwrap();
        assert_eq!(req.uri().to_string(), "https://api.6pan.cn/v2/user/info");
        assert_eq!(req.headers()[TOKEN_HEADER], "jwt");
        assert!(req.headers()[TOKEN_HEADER].is_sensitive());
        assert_eq!(req.body().as_ref(), b"{}");
    }
}
