//! The boundary between the protocol core and whatever moves bytes: request and
//! response types, the [`HttpClient`] trait, transport errors and base URLs.

use std::future::Future;

use bytes::Bytes;

/// A request as plain data: method, URI, headers and the whole body.
pub type HttpRequest = http::Request<Bytes>;

/// A response as plain data: status, headers and the whole body (already size-limited
/// by the transport).
pub type HttpResponse = http::Response<Bytes>;

/// The one thing the provider clients need from a transport: send a request, get the
/// whole response back.
///
/// The default implementation is `transport_hyper::HyperClient`; a test or an embedding
/// application can pass its own (a blocking client on a thread pool, another runtime, a
/// recorded-response mock). Implementations must not follow redirects to other hosts
/// with the request's credentials, and should bound the response body.
pub trait HttpClient: Send + Sync {
    /// Sends `request` and reads the whole response.
    ///
    /// # Errors
    ///
    /// A [`TransportError`] when no complete response arrived; its
    /// [`kind`](TransportError::kind) says whether the request may have reached the
    /// server, which decides whether it is safe to send again.
    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>> + Send;
}

/// A closure is a transport: `|request| async move { ... }` (as oauth2-rs takes its
/// `AsyncHttpClient`). Wrap a shared client in a closure to pass it by `Arc`.
impl<F, Fut> HttpClient for F
where
    F: Fn(HttpRequest) -> Fut + Send + Sync,
    Fut: Future<Output = Result<HttpResponse, TransportError>> + Send,
{
    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>> + Send {
        self(request)
    }
}

/// The largest answer a request may have, in bytes, as a request extension
/// (`request.extensions().get::<ResponseLimit>()`): the call machine sets it from the
/// endpoint ([`crate::call::EndpointKind::response_limit`]), since what an endpoint can
/// legitimately answer differs (a parse answer grows with a torrent's file count). A
/// transport should honour it instead of its own default; `transport-hyper` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLimit(pub usize);

/// A transport shared by `Arc`: several clients (or a test that keeps a handle to count
/// requests) use one `client`.
pub fn shared<T: HttpClient + 'static>(client: std::sync::Arc<T>) -> impl HttpClient + Clone {
    move |request: HttpRequest| {
        let client = std::sync::Arc::clone(&client);
        async move { client.send(request).await }
    }
}

/// What went wrong below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be made (refused, DNS, TLS handshake): the request was
    /// certainly not sent.
    Connect,
    /// The connect or total timeout ran out: the request may have reached the server.
    Timeout,
    /// The connection closed or reset after the request started: it may have reached
    /// the server.
    Closed,
    /// The response body was larger than the transport's limit (bytes).
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Anything else (an invalid request, an I/O error while reading the body).
    Other,
}

/// An error from an [`HttpClient`]: no complete response was received.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl TransportError {
    /// A new error of `kind` with a one-line human message.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What kind of failure this was.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// Whether the request may have reached the server (anything but a connect error).
    /// A request that created something must not be sent again blindly when this is true.
    pub fn may_have_been_sent(&self) -> bool {
        !matches!(self.kind, TransportErrorKind::Connect)
    }
}

/// The root URL of a provider's API, e.g. `https://open-api.123pan.com`.
///
/// Always `http` or `https`, never with a query or fragment; a trailing path (a
/// reverse proxy prefix) is kept and endpoint paths are appended to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    url: url::Url,
}

/// A base URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BaseUrlError {
    /// Not a URL at all.
    #[error("invalid base URL {input:?}: {reason}")]
    Invalid {
        /// What was given.
        input: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A scheme other than http or https.
    #[error("base URL {input:?} must use http or https")]
    Scheme {
        /// What was given.
        input: String,
    },
    /// Plain http to a host other than loopback, without the explicit permission:
    /// credentials would travel unencrypted.
    #[error("base URL {input} is plain http on a non-loopback host; use https or allow insecure http explicitly (--insecure-http)")]
    PlainHttp {
        /// What was given.
        input: String,
    },
    /// A user name or password in the URL (`http://user:pass@host`): never used by
    /// either provider, and it would be printed wherever the URL is. Shown without
    /// them.
    #[error("base URL {redacted} carries a user name or password; remove them (credentials go in their own options)")]
    Userinfo {
        /// The URL with the user name and password removed.
        redacted: String,
    },
}

impl BaseUrl {
    /// Parses a base URL.
    ///
    /// # Errors
    ///
    /// [`BaseUrlError::Invalid`] when `input` is not a URL, [`BaseUrlError::Scheme`]
    /// when its scheme is not http or https.
    pub fn parse(input: &str) -> Result<Self, BaseUrlError> {
        let mut url = url::Url::parse(input).map_err(|e| BaseUrlError::Invalid {
            input: input.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(BaseUrlError::Scheme {
                input: input.to_owned(),
            });
        }
        url.set_query(None);
        url.set_fragment(None);
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&path);
        Ok(Self { url })
    }

    /// Parses a base URL that credentials will be sent to: like [`parse`](Self::parse),
    /// and refusing plain http to a non-loopback host unless `allow_insecure_http`,
    /// and any user name or password in the URL (the error does not repeat them).
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse); [`BaseUrlError::PlainHttp`],
    /// [`BaseUrlError::Userinfo`].
    pub fn parse_for_credentials(
        input: &str,
        allow_insecure_http: bool,
    ) -> Result<Self, BaseUrlError> {
        if let Ok(mut url) = url::Url::parse(input) {
            if !url.username().is_empty() || url.password().is_some() {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                return Err(BaseUrlError::Userinfo {
                    redacted: url.to_string(),
                });
            }
        }
        let base = Self::parse(input)?;
        if !base.is_https() && !base.is_loopback() && !allow_insecure_http {
            return Err(BaseUrlError::PlainHttp {
                input: base.as_str().to_owned(),
            });
        }
        Ok(base)
    }

    /// The URL as given (normalised, without a trailing slash).
    pub fn as_str(&self) -> &str {
        self.url.as_str().trim_end_matches('/')
    }

    /// Whether the host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
    pub fn is_loopback(&self) -> bool {
        match self.url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        }
    }

    /// Whether the scheme is https.
    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The URI of `path` (starting with `/`) with an optional query of key/value pairs,
    /// percent-encoded.
    ///
    /// # Errors
    ///
    /// [`crate::EncodeError::Uri`] if the result is not a valid URI (cannot happen for
    /// the provider paths this crate uses).
    pub fn endpoint(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<http::Uri, crate::EncodeError> {
        let mut s = String::with_capacity(self.as_str().len() + path.len() + 32);
        s.push_str(self.as_str());
        s.push_str(path);
        if !query.is_empty() {
            s.push('?');
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                ser.append_pair(k, v);
            }
            s.push_str(&ser.finish());
        }
        s.parse::<http::Uri>()
            .map_err(|e| crate::EncodeError::Uri(e.to_string()))
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BaseUrl {
    type Err = BaseUrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_normalises_and_joins() {
        let b = BaseUrl::parse("https://open-api.123pan.com/").unwrap();
        assert_eq!(b.as_str(), "https://open-api.123pan.com");
        let u = b
            .endpoint("/api/v1/offline/download/process", &[("taskID", "7")])
            .unwrap();
        assert_eq!(
            u.to_string(),
            "https://open-api.123pan.com/api/v1/offline/download/process?taskID=7"
        );
        let p = BaseUrl::parse("http://127.0.0.1:8080/prefix/").unwrap();
        assert_eq!(
            p.endpoint("/x", &[]).unwrap().to_string(),
            "http://127.0.0.1:8080/prefix/x"
        );
        assert!(p.is_loopback());
        assert!(!b.is_loopback());
    }

    #[test]
    fn credentials_go_over_https_or_loopback_or_explicitly_insecure_http() {
        for base in [
            "http://example.com",
            "http://open-api.123pan.com/",
            "http://localhost.example.com",
            "http://10.0.0.1:8080",
            "http://0.0.0.0:1",
        ] {
            assert!(
                matches!(
                    BaseUrl::parse_for_credentials(base, false),
                    Err(BaseUrlError::PlainHttp { .. })
                ),
                "{base}"
            );
            assert!(BaseUrl::parse_for_credentials(base, true).is_ok(), "{base}");
        }
        for base in [
            "https://open-api.123pan.com",
            "https://example.com:8443/prefix",
            "http://127.0.0.1:8123",
            "http://127.1.2.3",
            "http://localhost:8123",
            "http://[::1]:8123",
        ] {
            assert!(
                BaseUrl::parse_for_credentials(base, false).is_ok(),
                "{base}"
            );
        }
        for base in ["ftp://example.com", "file:///etc/passwd", "example.com"] {
            assert!(
                BaseUrl::parse_for_credentials(base, true).is_err(),
                "{base}"
            );
        }
    }

    #[test]
    fn a_password_in_a_base_url_is_refused_and_never_repeated() {
        for base in [
            "http://user:hunter2@127.0.0.1:8123",
            "https://hunter2@example.com/",
        ] {
            let err = BaseUrl::parse_for_credentials(base, true).unwrap_err();
            assert!(matches!(err, BaseUrlError::Userinfo { .. }), "{base}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
            assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
        }
    }

    #[test]
    fn base_url_rejects_other_schemes() {
        assert!(matches!(
            BaseUrl::parse("ftp://x.y"),
            Err(BaseUrlError::Scheme { .. })
        ));
        assert!(matches!(
            BaseUrl::parse("not a url"),
            Err(BaseUrlError::Invalid { .. })
        ));
    }
}
