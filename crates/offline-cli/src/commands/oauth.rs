//! `offline login --oauth` (123pan third-party apps): prints the authorize URL (with a
//! random `state`), receives the code on a loopback redirect listener (or takes a
//! pasted `--code`), exchanges it, and keeps the refresh token with the access token
//! in the token cache, written under the cache's lock before anything uses them.
//! Later commands with that client ID refresh from the cache
//! ([`Client::connect`](crate::client::Client::connect)); `offline logout` deletes it.
//!
//! What the redirect carries and what the exchange sends are
//! [`offline_proto::pan123`]'s ([`oauth_redirect_code`], [`oauth_code_request`]); this
//! module moves the bytes and keeps the time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use clap::Args;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use offline_proto::pan123::{
    authorize_page, authorize_url, decode_oauth_token, oauth_code_request, oauth_redirect_code,
    RedirectError, DEFAULT_SCOPE,
};
use offline_proto::HttpClient;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::cli::Provider;
use crate::client::{guarded, Conn, Transport};
use crate::exit;
use crate::output::Output;

/// How long the browser may take to send its request's headers to the listener.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The path of the listener's redirect URI.
const CALLBACK_PATH: &str = "/callback";

/// `login`'s OAuth options (123pan third-party apps).
#[derive(Args, Debug, Default)]
pub(crate) struct OAuthArgs {
    /// 123pan: authorize a third-party app for your drive (OAuth) instead of checking
    /// a client ID and secret: prints the authorize URL, receives the code, keeps the
    /// refresh token in the token cache. Needs the client ID; the secret is optional.
    #[arg(long)]
    pub(crate) oauth: bool,
    /// With --oauth: the code the authorize page sent to --redirect-uri, pasted (no
    /// listener).
    #[arg(
        long,
        value_name = "CODE",
        requires_all = ["oauth", "redirect_uri"],
        conflicts_with = "redirect_listen"
    )]
    pub(crate) code: Option<String>,
    /// With --oauth: the redirect URI registered for the app. With --code, the one the
    /// code was sent to; alone, the authorize URL for it is printed and nothing waits.
    #[arg(long, value_name = "URI", requires = "oauth")]
    pub(crate) redirect_uri: Option<String>,
    /// With --oauth: receive the code on this loopback address (default 127.0.0.1:0,
    /// a free port; the redirect URI is http://ADDR/callback unless --redirect-uri).
    #[arg(long, value_name = "ADDR", requires = "oauth")]
    pub(crate) redirect_listen: Option<SocketAddr>,
    /// With --oauth: how long to wait for the redirect, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300, requires = "oauth")]
    pub(crate) oauth_timeout: u64,
}

/// The problems of the OAuth options with `conn`: a provider other than 123pan, a
/// listener that is not loopback, no token cache to keep the refresh token in.
pub(crate) fn check(args: &OAuthArgs, conn: &Conn) -> Vec<String> {
    if !args.oauth {
        return Vec::new();
    }
    let mut problems = Vec::new();
    if conn.provider != Provider::Pan123 {
        problems.push(
            "--oauth is 123pan's third-party app authorization; 6pan logs in with an account and password"
                .to_owned(),
        );
    }
    if let Some(addr) = args.redirect_listen.filter(|a| !a.ip().is_loopback()) {
        problems.push(format!(
            "--redirect-listen {addr} is not a loopback address (the code must not travel off this machine)"
        ));
    }
    if conn.no_token_cache {
        problems.push(
            "--no-token-cache: login --oauth keeps the refresh token in the token cache".to_owned(),
        );
    }
    problems
}

/// A new `state`: 128 random bits in hex.
fn new_state() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Runs `login --oauth`.
pub(crate) async fn login(conn: &Conn, args: &OAuthArgs, out: &Output) -> u8 {
    crate::interrupt::install(out);
    let Some(client_id) = conn.client_id.clone() else {
        return out.fail(
            exit::CONFIG,
            "login --oauth needs the app's client ID (--client-id or OFFLINE_123PAN_CLIENT_ID)",
            None,
        );
    };
    let Some(entry) = crate::cache::Entry::for_conn(conn) else {
        return out.fail(
            exit::CONFIG,
            "no cache directory to keep the refresh token in (set OFFLINE_CACHE_DIR or HOME)",
            None,
        );
    };
    let base_url = conn.effective_base_url();
    let base = match offline_proto::BaseUrl::parse_for_credentials(&base_url, conn.insecure_http) {
        Ok(b) => b,
        Err(e) => {
            let e = provider_123pan::Error::Config(e.to_string());
            return out.fail(exit::CONFIG, &crate::client::explain_123(&e), None);
        }
    };
    let transport = match Transport::new() {
        Ok(t) => t,
        Err(e) => {
            return out.fail(
                exit::CONFIG,
                &format!("cannot set up the transport: {e}"),
                None,
            )
        }
    };
    let state = new_state();
    let prompt = |redirect_uri: &str| {
        let url = authorize_url(
            &authorize_page(&base_url),
            &client_id,
            redirect_uri,
            DEFAULT_SCOPE,
            &state,
        );
        if out.is_json() {
            out.event(json!({
                "event": "login", "account": client_id, "oauth": true, "step": "authorize",
                "authorize_url": url, "redirect_uri": redirect_uri,
            }));
        } else {
            outln!("open this URL in a browser to authorize the app {client_id}:\n  {url}");
        }
    };
    let (code, redirect_uri) = match (&args.code, &args.redirect_uri, args.redirect_listen) {
        (Some(code), Some(uri), _) => (code.clone(), uri.clone()),
        (None, Some(uri), None) => {
            prompt(uri);
            if !out.is_json() {
                errln!("then run `offline login --oauth --redirect-uri URI --code CODE` with the code the page sends to {uri}");
            }
            return exit::OK;
        }
        (_, uri, listen) => {
            let listen = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            let listener = match TcpListener::bind(listen).await {
                Ok(l) => l,
                Err(e) => {
                    return out.fail(
                        exit::CONFIG,
                        &format!("cannot listen on {listen}: {e}"),
                        None,
                    )
                }
            };
            let addr = listener.local_addr().unwrap_or(listen);
            let uri = uri
                .clone()
                .unwrap_or_else(|| format!("http://{addr}{CALLBACK_PATH}"));
            prompt(&uri);
            if !out.is_json() {
                errln!(
                    "waiting up to {} s for the redirect to {uri} (stop with Ctrl-C)",
                    args.oauth_timeout
                );
            }
            let wait = Duration::from_secs(args.oauth_timeout);
            match receive(listener, &state, wait).await {
                Ok(code) => (code, uri),
                Err((code, message)) => return out.fail(code, &message, Some("login")),
            }
        }
    };
    let request = match oauth_code_request(
        &base,
        &client_id,
        conn.client_secret
            .clone()
            .map(offline_proto::Secret::new)
            .as_ref(),
        &code,
        &redirect_uri,
    ) {
        Ok(r) => r,
        Err(e) => return out.fail(exit::CONFIG, &e.to_string(), Some("login")),
    };
    // One attempt: the code is single use, a second exchange would be refused anyway.
    let sent = SystemTime::now();
    let answer = guarded(&transport, transport.send(request), |e| e).await;
    let tokens = answer
        .map_err(provider_123pan::Error::Transport)
        .and_then(|a| decode_oauth_token(&a).map_err(provider_123pan::Error::Api));
    let tokens = match tokens {
        Ok(t) => t,
        Err(e) => return out.error("login", &e),
    };
    let expires_at = sent + Duration::from_secs(tokens.expires_in);
    let saved = entry.lock().and_then(|l| {
        l.save_oauth(
            &tokens.refresh_token,
            Some((tokens.access_token.expose(), Some(expires_at))),
        )
    });
    if let Err(e) = saved {
        return out.fail(
            exit::CONFIG,
            &format!("cannot keep the refresh token in the token cache: {e}"),
            Some("login"),
        );
    }
    if out.is_json() {
        out.event(json!({"event": "login", "account": client_id, "oauth": true, "ok": true}));
    } else {
        outln!("logged in as {client_id} (OAuth; the refresh token is kept in the token cache, `offline logout` deletes it)");
    }
    exit::OK
}

/// What the listener hands over: the code, or the refusal the page redirected with.
type Redirect = Result<String, RedirectError>;

/// Serves the redirect listener until a redirect of this authorization (`state`)
/// arrives or `wait` passes: the code, or the exit code and message.
async fn receive(
    listener: TcpListener,
    state: &str,
    wait: Duration,
) -> Result<String, (u8, String)> {
    let (tx, mut rx) = mpsc::channel::<Redirect>(1);
    let state = state.to_owned();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let (tx, state) = (tx.clone(), state.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let answer = redirected(&req, &state, &tx);
                    async move { Ok::<_, Infallible>(answer) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(READ_TIMEOUT)
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let got = tokio::time::timeout(wait, rx.recv()).await;
    server.abort();
    match got {
        Ok(Some(Ok(code))) => Ok(code),
        Ok(Some(Err(e))) => Err((exit::CREDENTIALS, e.to_string())),
        Ok(None) | Err(_) => Err((
            exit::NETWORK,
            format!(
                "no redirect with a code within {} s (--oauth-timeout)",
                wait.as_secs()
            ),
        )),
    }
}

/// Answers one request to the listener: a redirect of this authorization is handed
/// over (a code or a refusal); another state, a missing code or another method is
/// answered 400 or 405 and ignored.
fn redirected(
    req: &Request<Incoming>,
    state: &str,
    tx: &mpsc::Sender<Redirect>,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return page(
            StatusCode::METHOD_NOT_ALLOWED,
            "This address only receives the authorization redirect.",
        );
    }
    let query = req.uri().query().unwrap_or("");
    match oauth_redirect_code(query, state) {
        Err(RedirectError::State) => {
            errln!("ignored a request to the redirect listener with another state");
            page(
                StatusCode::BAD_REQUEST,
                "This link does not belong to the login waiting here (state mismatch); nothing was done.",
            )
        }
        Err(RedirectError::NoCode) => {
            page(StatusCode::BAD_REQUEST, "The redirect carries no code.")
        }
        redirect => {
            let text = if redirect.is_ok() {
                "The app is authorized. You can close this window and return to the terminal."
            } else {
                "The authorization was refused. You can close this window."
            };
            // Only the first redirect counts; the channel holds one.
            let _ = tx.try_send(redirect);
            page(StatusCode::OK, text)
        }
    }
}

/// A small HTML page with `text`.
fn page(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>offline login</title></head><body><p>{text}</p></body></html>\n"
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}
