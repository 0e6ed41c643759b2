//! The web page at `/`: the daemon's tasks with name, provider, status and a progress
//! bar, kept live, a box to add links, and removal.
//!
//! The page is plain HTML, CSS and JavaScript compiled into the binary (`web/` beside
//! this crate's `src/`, no build step). It is an aria2 JSON-RPC client of the daemon
//! that serves it: it opens the WebSocket at `/jsonrpc`, asks `tellActive`,
//! `tellWaiting` and `tellStopped` about once a second and on each notification
//! (naming [`aria2::PERCENT_KEY`] among the keys, as the drives report percent, not
//! bytes), adds with `aria2.addUri`, and removes with `aria2.remove` (active or
//! waiting) or `aria2.removeDownloadResult` (stopped). Names come from the drive and
//! are only ever written with `textContent`.
//!
//! Security:
//!
//! - With a web login ([`ServeConfig::web_login`](crate::ServeConfig::web_login),
//!   `--web-username`/`--web-password`) the page and its assets need HTTP Basic
//!   credentials (else `401` with `WWW-Authenticate: Basic realm="offline serve"`),
//!   compared in constant time ([`aria2::WebLogin::accepts`]). JSON-RPC requests
//!   (HTTP, or the WebSocket's handshake) that carry them are
//!   [`aria2::Caller::Authenticated`]: their calls need no `token:` (the browser
//!   resends the page's credentials to its origin). Without an RPC secret, the web
//!   password is the RPC secret too, so aria2 clients send `token:<web password>`.
//! - With only an RPC secret the page is served to anyone; it asks for the secret on
//!   its first "Unauthorized" answer, keeps it in the tab's `sessionStorage` and
//!   sends it as `token:`. Every call it makes needs it.
//! - The page is sent with `Content-Security-Policy` (scripts, styles and connections
//!   to its own origin only), `X-Frame-Options: DENY` and
//!   `X-Content-Type-Options: nosniff`. No secret is ever in it.
//! - A `POST /jsonrpc` or WebSocket whose browser `Origin` names another host is
//!   refused (`403`), so another site's page cannot drive the daemon through a
//!   visitor's browser; clients that send no `Origin` are served.

use axum::extract::State as AxumState;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use offline_proto::aria2::{self, Caller};

use crate::{Drive, Gateway};

const INDEX: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE_CSS: &str = include_str!("../web/style.css");

/// The page's `Content-Security-Policy`: everything from its own origin, and its
/// WebSocket (`connect-src 'self'` covers `ws:` to the same host in current browsers;
/// `ws:`/`wss:` are named for the older ones).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The page's routes: `GET /`, `/app.js`, `/style.css`.
pub(crate) fn routes<D: Drive>() -> Router<Gateway<D>> {
    Router::new()
        .route("/", get(index::<D>))
        .route("/app.js", get(app_js::<D>))
        .route("/style.css", get(style_css::<D>))
}

/// Who sent a request with `headers`: [`Caller::Authenticated`] when a web login is
/// configured and its `Authorization` carries it.
pub(crate) fn caller<D: Drive>(gateway: &Gateway<D>, headers: &HeaderMap) -> Caller {
    match &gateway.shared.web_login {
        Some(login)
            if login.accepts(
                headers
                    .get(header::AUTHORIZATION)
                    .map(HeaderValue::as_bytes),
            ) =>
        {
            Caller::Authenticated
        }
        _ => Caller::Anonymous,
    }
}

/// `body` as `content_type` with the page's headers, or `401` without the login.
fn asset<D: Drive>(
    gateway: &Gateway<D>,
    headers: &HeaderMap,
    content_type: &'static str,
    body: String,
) -> Response {
    let mut response =
        if gateway.shared.web_login.is_some() && caller(gateway, headers) == Caller::Anonymous {
            let challenge = format!(
                "Basic realm=\"{}\", charset=\"UTF-8\"",
                aria2::WebLogin::REALM
            );
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
                "the web page needs the --web-username/--web-password login\n",
            )
                .into_response()
        } else {
            (
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                body,
            )
                .into_response()
        };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The provider's name, safe inside an HTML attribute.
fn attribute(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
        .collect()
}

async fn index<D: Drive>(
    AxumState(gateway): AxumState<Gateway<D>>,
    headers: HeaderMap,
) -> Response {
    let page = INDEX.replace("{{provider}}", &attribute(gateway.shared.drive.provider()));
    asset(&gateway, &headers, "text/html; charset=utf-8", page)
}

async fn app_js<D: Drive>(
    AxumState(gateway): AxumState<Gateway<D>>,
    headers: HeaderMap,
) -> Response {
    asset(
        &gateway,
        &headers,
        "text/javascript; charset=utf-8",
        APP_JS.to_owned(),
    )
}

async fn style_css<D: Drive>(
    AxumState(gateway): AxumState<Gateway<D>>,
    headers: HeaderMap,
) -> Response {
    asset(
        &gateway,
        &headers,
        "text/css; charset=utf-8",
        STYLE_CSS.to_owned(),
    )
}
