//! The builder refuses a plain-http base URL unless the host is loopback or insecure
//! http is allowed explicitly: credentials never travel unencrypted by accident.

use provider_123pan::{Error, Pan123};

fn build(base: &str, insecure: bool) -> Result<Pan123, Error> {
    Pan123::builder()
        .base_url(base)
        .client_id("id")
        .client_secret("secret")
        .insecure_http(insecure)
        .build()
}

#[test]
fn plain_http_to_another_host_is_refused() {
    for base in [
        "http://example.com",
        "http://open-api.123pan.com/",
        "http://localhost.example.com",
        "http://10.0.0.1:8080",
        "http://0.0.0.0:1",
    ] {
        match build(base, false) {
            Err(Error::Config(m)) => assert!(m.contains("plain http"), "{base}: {m}"),
            other => panic!("{base}: {other:?}"),
        }
    }
}

#[test]
fn https_loopback_and_explicit_insecure_http_are_allowed() {
    for base in [
        "https://open-api.123pan.com",
        "https://example.com:8443/prefix",
        "http://127.0.0.1:8123",
        "http://127.1.2.3",
        "http://localhost:8123",
        "http://[::1]:8123",
    ] {
        build(base, false).unwrap_or_else(|e| panic!("{base}: {e}"));
    }
    let pan = build("http://example.com", true).unwrap();
    assert_eq!(pan.base_url().as_str(), "http://example.com");
}

#[test]
fn other_schemes_are_refused() {
    for base in ["ftp://example.com", "file:///etc/passwd", "example.com"] {
        assert!(matches!(build(base, true), Err(Error::Config(_))), "{base}");
    }
}
