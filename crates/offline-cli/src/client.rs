//! The connection to a provider: the resolved options ([`Conn`]), the transport (the
//! default hyper client behind a watchdog that gives up on a server that refuses every
//! connection), the clients of both providers built with the token cache, and the one
//! provider-agnostic [`Client`] the commands dispatch over.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use offline_proto::{HttpClient, HttpRequest, HttpResponse, TransportError, TransportErrorKind};
use transport_hyper::HyperClient;

use crate::cli::Provider;
use crate::exit;
use crate::output::Output;

/// How long every connection may be refused before the command gives up.
pub(crate) const REFUSED_BUDGET: Duration = Duration::from_secs(3);
/// How long a TCP (and TLS) connection may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The 123pan client the CLI uses.
pub(crate) type Pan123 = provider_123pan::Pan123<Transport>;
/// The 6pan client the CLI uses.
pub(crate) type SixPan = provider_6pan::SixPan<Transport>;

/// The connection options of a command, resolved from the command line (before or
/// after the command's name) and the environment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conn {
    pub(crate) provider: Provider,
    pub(crate) base_url: Option<String>,
    pub(crate) insecure_http: bool,
    pub(crate) rate_limits: Vec<(String, f64)>,
    /// `--call-timeout`: seconds one call keeps trying (0: no deadline).
    pub(crate) call_timeout: Option<u64>,
    /// `--timeout` as given: seconds the whole command may take (0: no deadline);
    /// `None`: the command's default ([`crate::commands::command_timeout`]).
    pub(crate) timeout: Option<u64>,
    /// The instant the command's deadline falls at, once the command has started
    /// (every call of its client gives up then).
    pub(crate) command_deadline: Option<Instant>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
    pub(crate) access_token: Option<String>,
    pub(crate) account: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) token: Option<String>,
    /// Do not read or write the token cache.
    pub(crate) no_token_cache: bool,
}

impl Conn {
    /// The deadline of one call that `--call-timeout` asks for, if it was given
    /// (`Some(None)`: none at all).
    fn call_deadline(&self) -> Option<Option<std::time::Duration>> {
        self.call_timeout
            .map(|s| (s > 0).then(|| std::time::Duration::from_secs(s)))
    }

    /// `--base-url`, else the provider's environment variable.
    pub(crate) fn base_url_for(&self, env: &str) -> Option<String> {
        self.base_url
            .clone()
            .or_else(|| std::env::var(env).ok().filter(|v| !v.trim().is_empty()))
    }

    /// The base URL in use, for messages and the token cache's key.
    pub(crate) fn effective_base_url(&self) -> String {
        match self.provider {
            Provider::Pan123 => self
                .base_url_for("OFFLINE_123PAN_BASE_URL")
                .unwrap_or_else(|| offline_proto::pan123::DEFAULT_BASE_URL.to_owned()),
            Provider::Pan6 => self
                .base_url_for("OFFLINE_6PAN_BASE_URL")
                .unwrap_or_else(|| offline_proto::sixpan::api::DEFAULT_BASE_URL.to_owned()),
        }
    }

    fn has_credentials(&self) -> bool {
        match self.provider {
            Provider::Pan123 => {
                (self.client_id.is_some() && self.client_secret.is_some())
                    || self.access_token.is_some()
            }
            Provider::Pan6 => {
                (self.account.is_some() && self.password.is_some()) || self.token.is_some()
            }
        }
    }
}

#[derive(Debug, Default)]
struct Watch {
    in_flight: usize,
    refused_since: Option<Instant>,
    last_refusal: Option<String>,
    gave_up: bool,
}

/// The transport: [`HyperClient`] with a short connect timeout, watched so that a base
/// URL that refuses every connection for [`REFUSED_BUDGET`] ends the command with a
/// network error instead of backing off for half a minute. Clones share the watch.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    inner: HyperClient,
    watch: Arc<Mutex<Watch>>,
}

impl Transport {
    /// The transport with the CLI's settings.
    pub(crate) fn new() -> Result<Self, TransportError> {
        Ok(Self {
            inner: HyperClient::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .build()?,
            watch: Arc::default(),
        })
    }

    fn watch(&self) -> std::sync::MutexGuard<'_, Watch> {
        self.watch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves once every connection has been refused for [`REFUSED_BUDGET`] with no
    /// request in flight (every call is waiting to retry: dropping it sends nothing
    /// twice), with the last refusal.
    async fn given_up(&self) -> String {
        loop {
            {
                let mut w = self.watch();
                let expired = w
                    .refused_since
                    .is_some_and(|since| since.elapsed() >= REFUSED_BUDGET);
                if w.gave_up || (expired && w.in_flight == 0) {
                    w.gave_up = true;
                    return w
                        .last_refusal
                        .clone()
                        .unwrap_or_else(|| "could not connect".to_owned());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The error of a command that gave up on a refusing server, once it has.
    pub(crate) async fn gave_up_error(&self) -> TransportError {
        let last = self.given_up().await;
        self.refused_error(&last)
    }

    fn refused_error(&self, last: &str) -> TransportError {
        TransportError::new(
            TransportErrorKind::Connect,
            format!(
                "{}; gave up after {} s",
                short_refusal(last),
                REFUSED_BUDGET.as_secs()
            ),
        )
    }
}

/// "connection refused" rather than hyper's whole chain, when that is what it says.
pub(crate) fn short_refusal(message: &str) -> String {
    if message.contains("Connection refused") || message.contains("connection refused") {
        "connection refused".to_owned()
    } else {
        message.to_owned()
    }
}

impl HttpClient for Transport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        {
            let mut w = self.watch();
            if w.gave_up {
                let last = w.last_refusal.clone().unwrap_or_default();
                drop(w);
                return Err(self.refused_error(&last));
            }
            w.in_flight += 1;
        }
        let result = self.inner.send(request).await;
        let mut w = self.watch();
        w.in_flight -= 1;
        match &result {
            Err(e) if e.kind() == TransportErrorKind::Connect => {
                w.refused_since.get_or_insert_with(Instant::now);
                w.last_refusal = Some(e.to_string());
            }
            _ => w.refused_since = None,
        }
        result
    }
}

/// Runs a provider call; if the watchdog gives up first, the call is dropped (it is
/// waiting to retry, nothing in flight) and `refused` makes its error.
pub(crate) async fn guarded<T, E>(
    transport: &Transport,
    call: impl Future<Output = Result<T, E>>,
    refused: impl FnOnce(TransportError) -> E,
) -> Result<T, E> {
    tokio::select! {
        r = call => r,
        last = transport.given_up() => Err(refused(transport.refused_error(&last))),
    }
}

/// The next item of a provider stream, or the watchdog's error.
pub(crate) async fn next_guarded<T, E>(
    transport: &Transport,
    stream: &mut (impl futures_util::Stream<Item = Result<T, E>> + Unpin),
    refused: impl FnOnce(TransportError) -> E,
) -> Option<Result<T, E>> {
    use futures_util::StreamExt;
    tokio::select! {
        r = stream.next() => r,
        last = transport.given_up() => Some(Err(refused(transport.refused_error(&last)))),
    }
}

/// A 123pan transport error as the provider's error type.
pub(crate) fn refused_123(e: TransportError) -> provider_123pan::Error {
    provider_123pan::Error::Transport(e)
}

/// A 6pan transport error as the provider's error type.
pub(crate) fn refused_6(e: TransportError) -> provider_6pan::Error {
    provider_6pan::Error::Transport(e)
}

pub(crate) use offline_proto::error_chain as chain;

/// An error's message with the hint that fixes it, when there is one: `config` is the
/// configuration message, `transport` the transport error.
fn explain(
    e: &dyn std::error::Error,
    config: Option<&str>,
    transport: Option<&TransportError>,
) -> String {
    match (config, transport) {
        (Some(m), _) if m.contains("plain http") && !m.contains("--insecure-http") => {
            format!("{} (pass --insecure-http to allow it)", chain(e))
        }
        (_, Some(t)) => format!("transport: {}", short_refusal(&chain(t))),
        _ => chain(e),
    }
}

/// What to do about 123pan's "too many tokens": how `offline` reuses its token.
pub(crate) const TOO_MANY_TOKENS_HELP: &str = "`offline` reuses one cached access token per client ID across runs (its token cache, OFFLINE_CACHE_DIR): keep the cache (no --no-token-cache), do not fetch tokens for this client ID elsewhere, or wait until an older token expires";

/// A 123pan error's message, with the hint that fixes it when there is one.
pub(crate) fn explain_123(e: &provider_123pan::Error) -> String {
    use provider_123pan::Error;
    match e {
        Error::Api(offline_proto::ApiError::TooManyTokens { .. }) => {
            format!("{}. {TOO_MANY_TOKENS_HELP}", chain(e))
        }
        Error::Config(m) => explain(e, Some(m), None),
        Error::Transport(t) => explain(e, None, Some(t)),
        _ => explain(e, None, None),
    }
}

/// A 6pan error's message, with the hint that fixes it when there is one.
pub(crate) fn explain_6(e: &provider_6pan::Error) -> String {
    use provider_6pan::Error;
    match e {
        Error::Config(m) => explain(e, Some(m), None),
        Error::Transport(t) => explain(e, None, Some(t)),
        _ => explain(e, None, None),
    }
}

/// The exit code for a 6pan error.
pub(crate) fn exit_code_6(e: &provider_6pan::Error) -> u8 {
    use offline_proto::ApiError;
    use provider_6pan::Error;
    match e {
        Error::Config(_) | Error::Invalid(_) | Error::Selection(_) | Error::Io { .. } => {
            exit::CONFIG
        }
        Error::NotAuthenticated | Error::Api(ApiError::TokenInvalid(_)) => exit::CREDENTIALS,
        Error::Transport(t) if offline_proto::call::past_command_deadline(t) => exit::TIMED_OUT,
        Error::Api(a)
            if a.provider_error().is_some_and(|p| {
                let c = p.code.to_string();
                c.contains("PASSWORD") || c.contains("LOGIN") || c.contains("USER_NOT")
            }) =>
        {
            exit::CREDENTIALS
        }
        Error::Transport(_) | Error::Api(ApiError::Http { .. } | ApiError::Decode(_)) => {
            exit::NETWORK
        }
        Error::OutcomeUnknown { .. } => exit::OUTCOME_UNKNOWN,
        _ => exit::PROVIDER,
    }
}

/// Reports a 6pan error about `subject`; returns its exit code.
pub(crate) fn report_6(out: &Output, subject: &str, e: &provider_6pan::Error) -> u8 {
    report_6_with(out, subject, e, None)
}

/// [`report_6`], with `hint` (what the user can do) after the explanation.
pub(crate) fn report_6_with(
    out: &Output,
    subject: &str,
    e: &provider_6pan::Error,
    hint: Option<&str>,
) -> u8 {
    let code = exit_code_6(e);
    let p = e.provider_error();
    let message = match hint {
        Some(hint) => format!("{}; {hint}", explain_6(e)),
        None => explain_6(e),
    };
    out.error_event(
        subject,
        code,
        &message,
        p.map(|p| p.code.to_string()),
        p.and_then(|p| p.trace_id.clone()),
    );
    code
}

/// The provider-agnostic client: what every command that talks to a drive holds.
#[derive(Clone, Debug)]
pub(crate) enum Client {
    /// The 123pan open platform.
    Pan123(Pan123, Transport),
    /// 6pan.
    Pan6(SixPan, Transport),
}

impl Client {
    /// Builds the chosen provider's client, reading the token cache. Reports why not.
    pub(crate) async fn connect(conn: &Conn, out: &Output) -> Result<Self, u8> {
        Self::connect_with(conn, out, |b| b).await
    }

    /// As [`connect`](Self::connect), with more 6pan builder settings.
    pub(crate) async fn connect_with(
        conn: &Conn,
        out: &Output,
        more6: impl FnOnce(
            provider_6pan::SixPanBuilder<Transport>,
        ) -> provider_6pan::SixPanBuilder<Transport>,
    ) -> Result<Self, u8> {
        let transport = Transport::new().map_err(|e| {
            out.fail(
                exit::CONFIG,
                &format!("cannot set up the transport: {e}"),
                None,
            )
        })?;
        let hint = |code: u8, msg: String| -> u8 {
            let msg = if conn.has_credentials() {
                msg
            } else {
                match conn.provider {
                    Provider::Pan123 => format!("{msg} (set OFFLINE_123PAN_CLIENT_ID and OFFLINE_123PAN_CLIENT_SECRET, or OFFLINE_123PAN_ACCESS_TOKEN; or, for a third-party app, OFFLINE_123PAN_CLIENT_ID after `offline login --oauth`)"),
                    Provider::Pan6 => format!("{msg} (set OFFLINE_6PAN_ACCOUNT and OFFLINE_6PAN_PASSWORD, or OFFLINE_6PAN_TOKEN)"),
                }
            };
            out.fail(code, &msg, None)
        };
        match conn.provider {
            Provider::Pan123 => {
                // With a client ID (and a secret, or a refresh token cached by `login
                // --oauth`), the cache's lock is held from reading the cached token to
                // saving a fetched one: concurrent runs fetch one token. With OAuth,
                // every rotated refresh token is written by the client's hook, under
                // that lock while it is held, else under the lock taken for the write.
                let entry = (!conn.no_token_cache && conn.access_token.is_none())
                    .then(|| crate::cache::Entry::for_conn(conn))
                    .flatten();
                let lock = entry.as_ref().and_then(|e| e.lock().ok());
                let refresh = lock.as_ref().and_then(crate::cache::Locked::refresh_token);
                let lock = lock.filter(|_| refresh.is_some() || conn.client_secret.is_some());
                let cached = lock.as_ref().and_then(crate::cache::Locked::load_fresh);
                let fresh = cached.is_some();
                let store = entry.zip(lock).map(|(entry, lock)| {
                    let store = crate::cache::TokenStore::new(entry);
                    store.hold(lock);
                    store
                });
                let oauth = refresh.zip(store.as_ref().map(crate::cache::TokenStore::hook));
                let pan = build_123(conn, transport.clone(), cached, oauth)
                    .map_err(|e| hint(crate::output::exit_code(&e), explain_123(&e)))?;
                if let (Some(store), false) = (&store, fresh) {
                    match guarded(&transport, pan.ensure_token(), refused_123).await {
                        Ok(_) => {
                            if let Some((token, exp)) = pan.current_token() {
                                let _ = store.with_lock(|l| l.save(token.expose(), exp));
                            }
                        }
                        Err(e) => return Err(out.error("access token", &e)),
                    }
                }
                if let Some(store) = &store {
                    store.release();
                }
                Ok(Self::Pan123(pan, transport))
            }
            Provider::Pan6 => {
                let cached =
                    (!conn.no_token_cache && conn.token.is_none() && conn.account.is_some())
                        .then(|| crate::cache::Entry::for_conn(conn))
                        .flatten()
                        .and_then(|e| e.lock().ok())
                        .and_then(|l| l.load_fresh());
                let pan = build_6(conn, transport.clone(), cached, more6)
                    .map_err(|e| hint(exit_code_6(&e), explain_6(&e)))?;
                Ok(Self::Pan6(pan, transport))
            }
        }
    }

    /// The provider's name in events.
    pub(crate) fn provider(&self) -> Provider {
        match self {
            Self::Pan123(..) => Provider::Pan123,
            Self::Pan6(..) => Provider::Pan6,
        }
    }

    /// Saves the newest token to the cache (6pan tokens rotate with every answer; a
    /// 123pan token may have been refreshed after a 401).
    pub(crate) async fn save_token(&self, conn: &Conn) {
        if conn.no_token_cache {
            return;
        }
        let Some(entry) = crate::cache::Entry::for_conn(conn) else {
            return;
        };
        match self {
            Self::Pan123(pan, _) if conn.access_token.is_none() => {
                if let (Some((token, exp)), Ok(lock)) = (pan.current_token(), entry.lock()) {
                    let _ = lock.save(token.expose(), exp);
                }
            }
            Self::Pan6(pan, _) if conn.token.is_none() && conn.account.is_some() => {
                if let (Some(token), Ok(lock)) = (pan.current_token(), entry.lock()) {
                    let _ = lock.save(token.expose(), None);
                }
            }
            _ => {}
        }
    }
}

/// Builds the 123pan client from the options (and the cached token, when fresh).
fn build_123(
    conn: &Conn,
    http: Transport,
    cached: Option<(String, Option<std::time::SystemTime>)>,
    oauth: Option<(offline_proto::Secret, offline_proto::pan123::RefreshHook)>,
) -> Result<Pan123, provider_123pan::Error> {
    use provider_123pan::Error;
    let mut builder = provider_123pan::Pan123::builder()
        .http_client(http)
        .insecure_http(conn.insecure_http);
    if let Some(url) = conn.base_url_for("OFFLINE_123PAN_BASE_URL") {
        builder = builder.base_url(url);
    }
    if let Some(id) = &conn.client_id {
        builder = builder.client_id(id.clone());
    }
    if let Some(secret) = &conn.client_secret {
        builder = builder.client_secret(secret.clone());
    }
    if let Some(token) = &conn.access_token {
        builder = builder.access_token(token.clone(), None);
    } else if let Some((token, exp)) = cached {
        builder = builder.access_token(token, exp);
    }
    if let Some((refresh, hook)) = oauth {
        builder = builder.oauth_refresh_token(refresh, Some(hook));
    }
    for (name, rate) in &conn.rate_limits {
        let endpoint = crate::cli::find_endpoint(
            &provider_123pan::EndpointId::ALL,
            |e| e.operation_id(),
            name,
        )
        .map_err(Error::Config)?;
        builder = builder.rate_limit(endpoint, *rate);
    }
    if let Some(deadline) = conn.call_deadline() {
        builder = builder.call_deadline(deadline);
    }
    builder = builder.command_deadline(conn.command_deadline);
    builder.build()
}

/// Builds the 6pan client from the options (and the cached token).
fn build_6(
    conn: &Conn,
    http: Transport,
    cached: Option<(String, Option<std::time::SystemTime>)>,
    more: impl FnOnce(
        provider_6pan::SixPanBuilder<Transport>,
    ) -> provider_6pan::SixPanBuilder<Transport>,
) -> Result<SixPan, provider_6pan::Error> {
    use provider_6pan::Error;
    let mut b =
        more(provider_6pan::SixPan::builder().http_client(http)).insecure_http(conn.insecure_http);
    if let Some(url) = conn.base_url_for("OFFLINE_6PAN_BASE_URL") {
        b = b.base_url(url);
    }
    if let (Some(a), Some(p)) = (&conn.account, &conn.password) {
        b = b.login(a.clone(), p.clone());
    }
    if let Some(t) = &conn.token {
        b = b.token(t.clone());
    } else if let Some((token, _)) = cached {
        b = b.token(token);
    }
    for (name, rate) in &conn.rate_limits {
        let endpoint =
            crate::cli::find_endpoint(&provider_6pan::EndpointId::ALL, |e| e.operation_id(), name)
                .map_err(Error::Config)?;
        b = b.rate_limit(endpoint, *rate);
    }
    if let Some(deadline) = conn.call_deadline() {
        b = b.call_deadline(deadline);
    }
    b = b.command_deadline(conn.command_deadline);
    b.build()
}
