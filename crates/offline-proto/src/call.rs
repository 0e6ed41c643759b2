//! One provider call as one sans-IO machine: token, rate limit, send, decode, classify,
//! back off, refresh once, rotate, outcome unknown.
//!
//! Every rule of a call lives here, for both providers; the async providers, the
//! blocking client ([`crate::driver::drive_blocking`]) and any user's own transport are the
//! same small loop around [`Call::poll`] and [`Call::handle_response`]:
//!
//! ```text
//! let mut call = Call::new(request);
//! loop {
//!     match call.poll(&mut state, clock.now(), clock.wall()) {
//!         Output::Send(req)           => call.handle_response(&mut state, http.send(req), clock.now(), clock.wall()),
//!         Output::Wait { until, .. }  => sleep_until(until),
//!         Output::Done(result)        => break result,
//!     }
//! }
//! ```
//!
//! [`ClientState`] is what the calls of one client share (behind one lock in a
//! driver): the base URL, the [`Pacer`] (a token bucket per endpoint and the retry
//! budget) and the provider's [`Auth`] state (123pan's access-token lifecycle, 6pan's
//! rotating login token). A [`Call`] is one request's progress through it. The lock is
//! only ever held for a `poll` or a `handle_response`, never across I/O.
//!
//! # The rules
//!
//! - **Validation first.** An invalid request ends the call before anything, even a
//!   token request, is sent ([`CallError::Invalid`]).
//! - **Tokens.** A call asks the [`Auth`] state for a token. When it must be fetched
//!   (123pan: `POST /api/v1/access_token`; 6pan: a login), exactly one call fetches and
//!   the others wait ([`Output::Wait`], polling again every [`TOKEN_WAIT`]); the fetch
//!   itself is paced and retried like a read. A call fetches at most
//!   [`MAX_TOKEN_FETCHES`] tokens, so a server that hands out tokens that are already
//!   stale cannot make it loop.
//! - **Rejected token.** On a token-invalid answer (123pan code 401, 6pan
//!   `BEARER_AUTHORIZATION_HEADER_INVALID`) the call tells the [`Auth`] state, which
//!   drops the token unless another call already replaced it, and sends again once
//!   (the server did not act on a request it refused).
//! - **Too many tokens.** A "too many tokens" answer (123pan code 401 with
//!   `tokens number has exceeded the limit`, [`ApiError::TooManyTokens`]) is never
//!   answered with a token request: fetching more makes it worse. The call ends with
//!   it, whether it came from the token fetch or from any other call, and the
//!   [`Auth`] state may refuse further fetches for a while ([`AuthStep::Refused`]).
//! - **Pacing.** Every attempt first takes a token from its endpoint's bucket.
//! - **Retries.** A failed attempt is classified once, by [`retry::classify`]: sent
//!   again after a backoff, after the server's `Retry-After` (at most
//!   [`MAX_RETRY_AFTER`]: a longer one gives up with the server's answer as the error),
//!   or not at all, within the call's retries and the client's retry budget.
//! - **Creates.** A request that creates something is sent again only when the server
//!   certainly did not act: the connection never opened, a rate-limit answer, a
//!   refused token. When it may have reached the server — a timeout, a reset, an
//!   answer that cannot be read, a gateway's error page without the provider's
//!   envelope, whatever its status line — the call ends in
//!   [`CallError::OutcomeUnknown`]. Only the provider's own envelope can say that it
//!   did not happen.
//!
//! Time is always handed in: `now` (monotonic, for waits) and `wall` (for token
//! expiry). Nothing here reads a clock or performs I/O.

use std::time::{Duration, Instant, SystemTime};

use crate::clock::checked_deadline;
use crate::retry::{self, Attempt, Backoff, Pacer, Retry};
use crate::{
    ApiError, BaseUrl, EncodeError, HttpRequest, HttpResponse, Secret, TransportError,
    ValidationError,
};

/// How long a call waits before asking again while another call fetches the token.
pub const TOKEN_WAIT: Duration = Duration::from_millis(25);

/// How many tokens one call may fetch before it gives up ([`CallError::TokenLoop`]).
pub const MAX_TOKEN_FETCHES: u32 = 3;

/// The longest `Retry-After` a call waits for (60 s). A server asking for more is
/// answered by giving up with its own answer as the error.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long a token fetch may be under way before another call may start its own: a
/// driver that was dropped mid-fetch must not leave every other call waiting forever.
pub const FETCH_LEASE: Duration = Duration::from_secs(120);

/// What the endpoints of one provider have in common, as far as a call is concerned.
pub trait EndpointKind: Copy + Ord + std::fmt::Debug + Send + Sync + 'static {
    /// Whether a successful call creates something, so that sending it twice could
    /// create two.
    fn creates(self) -> bool;
    /// The published (or customary) rate limit, requests per second.
    fn default_rate_per_second(self) -> f64;
    /// The largest answer this endpoint can legitimately send, in bytes: 8 MiB unless
    /// an endpoint's answer grows with its input. Configurable per client
    /// ([`ClientState::set_response_limit`]).
    fn response_limit(self) -> usize {
        DEFAULT_RESPONSE_LIMIT
    }
}

/// The answer size limit of an endpoint that does not say otherwise: 8 MiB.
pub const DEFAULT_RESPONSE_LIMIT: usize = 8 * 1024 * 1024;

/// The longest one call keeps trying, from its start: 120 s. A retry that would start
/// later is not made; the call ends with the last failure (a create that may have
/// reached the server: [`CallError::OutcomeUnknown`]). Against a silent server with a
/// 60 s request timeout a call thus takes about two attempts, not nine (9 minutes).
/// [`ClientState::set_call_deadline`] changes it.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(120);

/// The source of the error a call ends with when it would start, or send, or go on
/// waiting, at or after its client's command deadline
/// ([`ClientState::set_command_deadline`]): nothing was sent for it after that
/// instant. [`past_command_deadline`] tells such an error apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the command's deadline has passed")]
pub struct CommandDeadlinePassed;

/// Whether `e` is the error of a call that ended because its client's command deadline
/// had passed before it could send (its source is [`CommandDeadlinePassed`]), rather
/// than a request that was cut or failed on the wire.
pub fn past_command_deadline(e: &TransportError) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<CommandDeadlinePassed>())
}

/// The error of a call that the command deadline ends before it sends: a timeout (the
/// same kind a deadline that cuts a request gives) that is a [`CallError::Transport`]
/// even for a create, since nothing left for it after the deadline.
fn command_deadline_error() -> CallError {
    CallError::Transport(
        TransportError::new(
            crate::TransportErrorKind::Timeout,
            "not sent: the command's deadline has passed",
        )
        .with_source(CommandDeadlinePassed),
    )
}

/// The token a request was sent with, and its place in the send order (6pan keeps the
/// token of the answer to the latest *sent* request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The send-order number.
    pub seq: u64,
    /// The token sent, if any.
    pub token: Option<Secret>,
}

/// What the [`Auth`] state says a call must do to get a token.
#[derive(Debug, Clone)]
pub enum AuthStep {
    /// Send with this ticket.
    Use(Ticket),
    /// Fetch a token (send [`Auth::fetch_request`]), then report with
    /// [`Auth::handle_fetched`] or [`Auth::handle_fetch_failed`].
    Fetch,
    /// Another call is fetching: ask again later.
    Wait,
    /// No token is held and none can be fetched (no credentials).
    Unavailable,
    /// No token is held and fetching one now would be refused for this reason (123pan:
    /// too many live tokens): the call ends with it, sending nothing.
    Refused(ApiError),
}

/// A provider's credential rules, as a sans-IO state shared by a client's calls.
pub trait Auth: Send + 'static {
    /// The provider's endpoint table.
    type Id: EndpointKind;

    /// The endpoint a token fetch is paced as.
    fn fetch_endpoint(&self) -> Self::Id;
    /// What a request needs at wall-clock time `wall`.
    fn poll(&mut self, wall: SystemTime) -> AuthStep;
    /// The token request (123pan's access-token call, 6pan's login).
    ///
    /// # Errors
    ///
    /// [`EncodeError`] when it cannot be built (credentials with characters a request
    /// cannot carry).
    fn fetch_request(&self, base: &BaseUrl) -> Result<HttpRequest, EncodeError>;
    /// The answer to a token request arrived at `wall`.
    ///
    /// # Errors
    ///
    /// The provider's refusal or an unreadable answer; the fetch then counts as failed
    /// (the implementation resets its own state).
    fn handle_fetched(&mut self, response: &HttpResponse, wall: SystemTime)
        -> Result<(), ApiError>;
    /// A token fetch failed in transport or was abandoned.
    fn handle_fetch_failed(&mut self);
    /// Any answer to a request sent with `ticket` arrived (6pan rotates its token from
    /// every answer; a login call's answer carries a token).
    fn handle_answer(&mut self, endpoint: Self::Id, ticket: &Ticket, response: &HttpResponse);
    /// The server refused `ticket`'s token. Returns whether sending once more is worth
    /// it (a new token can be had, or another call already replaced it).
    fn handle_rejected(&mut self, ticket: &Ticket) -> bool;
}

/// A request a [`Call`] can carry for a provider whose credential rules are `A`.
///
/// Implemented for every `pan123::Endpoint` (with `A` = [`crate::pan123::Credentials`])
/// and every `sixpan::api::Endpoint` (with `A` = [`crate::sixpan::auth::Credentials`]).
pub trait Request<A: Auth> {
    /// What a successful answer decodes to.
    type Output;
    /// Which endpoint this is.
    fn id(&self) -> A::Id;
    /// Whether it is sent with the token (all but the token requests themselves).
    fn authenticated(&self) -> bool {
        true
    }
    /// Whether there is a request to send at all: `false` for [`EnsureToken`], which
    /// ends as soon as a token is held.
    fn sends(&self) -> bool {
        true
    }
    /// Checks the request locally.
    ///
    /// # Errors
    ///
    /// A [`ValidationError`] saying what is wrong.
    fn validate(&self) -> Result<(), ValidationError>;
    /// Encodes the request with `token`.
    ///
    /// # Errors
    ///
    /// [`EncodeError`].
    fn to_http(&self, base: &BaseUrl, token: Option<&Secret>) -> Result<HttpRequest, EncodeError>;
    /// Decodes the answer.
    ///
    /// # Errors
    ///
    /// The provider's error or a [`crate::DecodeError`].
    fn decode(&self, response: &HttpResponse) -> Result<Self::Output, ApiError>;
}

/// The methods both providers' `Error` types share, over the variants they share
/// (`Config`, `Invalid`, `Transport`, `Api`, `OutcomeUnknown { endpoint, source }`,
/// `NotAuthenticated`, `TokenLoop { fetches }`), so that one situation is one variant
/// and one rule in both: `provider_error`, `ask_again_later` and `from_call`.
#[doc(hidden)]
#[macro_export]
macro_rules! provider_error_impls {
    ($error:ident, $id:ty) => {
        impl $error {
            /// The provider's answer, if the error is one: code, message, trace ID.
            pub fn provider_error(&self) -> Option<&$crate::ProviderError> {
                match self {
                    Self::Api(e) => e.provider_error(),
                    _ => None,
                }
            }

            /// For a watch whose progress or list call failed: `Some(wait)` to ask
            /// again later, `None` when the failure is final
            /// ([`offline_proto::retry::ask_again_later`]; a call that the command
            /// deadline ended, [`offline_proto::call::past_command_deadline`], is final).
            pub fn ask_again_later(&self) -> Option<Option<std::time::Duration>> {
                match self {
                    Self::Transport(e) if $crate::call::past_command_deadline(e) => None,
                    Self::Transport(_) => Some(None),
                    Self::Api(e) => $crate::retry::ask_again_later(e),
                    _ => None,
                }
            }

            /// The error a call machine's `CallError` at `endpoint` is.
            pub(crate) fn from_call(e: $crate::call::CallError, endpoint: $id) -> Self {
                use $crate::call::CallError;
                match e {
                    CallError::Invalid(e) => Self::Invalid(e),
                    CallError::Transport(e) => Self::Transport(e),
                    CallError::Api(e) => Self::Api(e),
                    CallError::OutcomeUnknown(source) => Self::OutcomeUnknown { endpoint, source },
                    CallError::TokenLoop { fetches } => Self::TokenLoop { fetches },
                    _ => Self::NotAuthenticated,
                }
            }
        }
    };
}

/// Makes a provider's endpoint table an [`EndpointKind`] and every request type of its
/// `Endpoint` trait a [`Request`] for its credentials `Auth`; the listed endpoints are
/// sent without the token (the token requests themselves).
macro_rules! provider_requests {
    ($endpoint:ident, $auth:ty, $id:ty, unauthenticated: [$($un:path),*]) => {
        impl $crate::call::EndpointKind for $id {
            fn creates(self) -> bool {
                <$id>::creates(self)
            }
            fn default_rate_per_second(self) -> f64 {
                <$id>::default_rate_per_second(self)
            }
            fn response_limit(self) -> usize {
                <$id>::response_limit(self)
            }
        }

        impl<E: $endpoint> $crate::call::Request<$auth> for E {
            type Output = E::Output;

            fn id(&self) -> $id {
                E::ID
            }

            fn authenticated(&self) -> bool {
                !matches!(E::ID, $($un)|*)
            }

            fn validate(&self) -> Result<(), $crate::ValidationError> {
                $endpoint::validate(self)
            }

            fn to_http(
                &self,
                base: &$crate::BaseUrl,
                token: Option<&$crate::Secret>,
            ) -> Result<$crate::HttpRequest, $crate::EncodeError> {
                $endpoint::to_http(self, base, token)
            }

            fn decode(&self, response: &$crate::HttpResponse) -> Result<E::Output, $crate::ApiError> {
                E::decode(response)
            }
        }
    };
}
pub(crate) use provider_requests;

/// A "call" that sends nothing of its own: it ends, with the ticket it was given, as
/// soon as a usable token is held, fetching one (or logging in) first when needed,
/// under the same rules as every call. `0` is the endpoint it is paced and reported as.
#[derive(Debug, Clone, Copy)]
pub struct EnsureToken<K>(pub K);

impl<A: Auth> Request<A> for EnsureToken<A::Id> {
    type Output = ();
    fn id(&self) -> A::Id {
        self.0
    }
    fn sends(&self) -> bool {
        false
    }
    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
    fn to_http(&self, _: &BaseUrl, _: Option<&Secret>) -> Result<HttpRequest, EncodeError> {
        Err(EncodeError::Body("EnsureToken sends nothing".to_owned()))
    }
    fn decode(&self, _: &HttpResponse) -> Result<(), ApiError> {
        Ok(())
    }
}

/// What the calls of one client share: the base URL, the pacer and the credentials.
/// Keep it behind one lock; see the [module docs](self).
#[derive(Debug)]
pub struct ClientState<A: Auth> {
    base: BaseUrl,
    pacer: Pacer<A::Id>,
    auth: A,
    fetching_since: Option<Instant>,
    token_fetches: u64,
    server_offset: Option<(bool, Duration)>,
    response_limits: std::collections::BTreeMap<A::Id, usize>,
    call_deadline: Option<Duration>,
    command_deadline: Option<Instant>,
}

impl<A: Auth> ClientState<A> {
    /// A state for `base` with credentials `auth`, every endpoint of `limits` paced at
    /// its rate (requests per second; 0 or less: unlimited), jitter seeded by `seed`.
    pub fn new(
        base: BaseUrl,
        auth: A,
        limits: impl IntoIterator<Item = (A::Id, f64)>,
        seed: u64,
    ) -> Self {
        let mut pacer = Pacer::new(seed);
        for (id, rate) in limits {
            pacer.set_limit(id, rate);
        }
        Self {
            base,
            pacer,
            auth,
            fetching_since: None,
            token_fetches: 0,
            server_offset: None,
            response_limits: std::collections::BTreeMap::new(),
            call_deadline: Some(DEFAULT_CALL_DEADLINE),
            command_deadline: None,
        }
    }

    /// How long one call may keep trying, from its start ([`DEFAULT_CALL_DEADLINE`]);
    /// `None`: as long as its retry budget and attempts allow.
    pub fn set_call_deadline(&mut self, deadline: Option<Duration>) {
        self.call_deadline = deadline;
    }

    /// How long one call may keep trying, from its start.
    pub fn call_deadline(&self) -> Option<Duration> {
        self.call_deadline
    }

    /// The instant (monotonic, as the `now` handed to [`Call::poll`]) past which no
    /// call of this state keeps trying: a whole command's deadline, over however many
    /// calls it makes. `None` (the default): none, each call has only its
    /// [call deadline](Self::set_call_deadline).
    ///
    /// A call started before it gives up at the earlier of its start plus the call
    /// deadline and this instant ([`Call::deadline`]): no retry starts later, and an
    /// async driver cuts a request still waiting for its answer then (a timeout, so a
    /// create may have been sent: [`CallError::OutcomeUnknown`]). A call started at or
    /// after it, or still waiting (for a rate-limit token, a retry, another call's
    /// token fetch) when it comes, ends then without sending, with a
    /// [`CallError::Transport`] timeout whose source is [`CommandDeadlinePassed`]
    /// ([`past_command_deadline`]). Set it before the calls it should bound start: a
    /// call takes it when it is first polled.
    pub fn set_command_deadline(&mut self, deadline: Option<Instant>) {
        self.command_deadline = deadline;
    }

    /// The command deadline ([`set_command_deadline`](Self::set_command_deadline)).
    pub fn command_deadline(&self) -> Option<Instant> {
        self.command_deadline
    }

    /// Sets the largest answer `id` may send, in bytes (instead of its
    /// [`EndpointKind::response_limit`]).
    pub fn set_response_limit(&mut self, id: A::Id, bytes: usize) {
        self.response_limits.insert(id, bytes);
    }

    /// The largest answer `id` may send, in bytes.
    pub fn response_limit(&self, id: A::Id) -> usize {
        self.response_limits
            .get(&id)
            .copied()
            .unwrap_or_else(|| id.response_limit())
    }

    /// The base URL.
    pub fn base(&self) -> &BaseUrl {
        &self.base
    }

    /// The credential state.
    pub fn auth(&self) -> &A {
        &self.auth
    }

    /// The credential state, to change it (a login forced by the user, a token given).
    pub fn auth_mut(&mut self) -> &mut A {
        &mut self.auth
    }

    /// How many token requests the calls of this state have sent.
    pub fn token_fetches(&self) -> u64 {
        self.token_fetches
    }

    /// Takes a rate-limit token for `id` at `now` (for requests sent outside a
    /// [`Call`], such as storage uploads driven by their own plan).
    ///
    /// # Errors
    ///
    /// `Err(wait)`: try again after `wait`.
    pub fn try_acquire(&mut self, id: A::Id, now: Instant) -> Result<(), Duration> {
        self.pacer.try_acquire(id, now)
    }

    /// The server's clock at local wall time `wall`, estimated from the `Date` header of
    /// the latest answer (1 s resolution); `wall` itself before any answer had one.
    pub fn server_time(&self, wall: SystemTime) -> SystemTime {
        match self.server_offset {
            Some((true, ahead)) => wall.checked_add(ahead).unwrap_or(wall),
            Some((false, behind)) => wall.checked_sub(behind).unwrap_or(wall),
            None => wall,
        }
    }

    fn observe_date(&mut self, response: &HttpResponse, wall: SystemTime) {
        if let Some(date) = crate::common::server_date(response) {
            self.server_offset = Some(match date.duration_since(wall) {
                Ok(ahead) => (true, ahead),
                Err(e) => (false, e.duration()),
            });
        }
    }

    /// The pacer (rate limits, retry budget), for machines that pace their own
    /// requests.
    pub fn pacer_mut(&mut self) -> &mut Pacer<A::Id> {
        &mut self.pacer
    }
}

/// What a driver does next.
#[derive(Debug)]
pub enum Output<T> {
    /// Send this request and report what came back with [`Call::handle_response`].
    Send(HttpRequest),
    /// Sleep until `until`, then poll again. `retry` is set when the wait is a retry
    /// after a failure (worth telling a person about when it is long).
    Wait {
        /// When to poll again.
        until: Instant,
        /// Why, when the wait is a retry.
        retry: Option<RetryNotice>,
    },
    /// The call is over.
    Done(Result<T, CallError>),
}

/// A retry about to happen: for a driver to log (`offline::retry` at INFO in the
/// providers) or show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryNotice {
    /// The endpoint, as `Debug` prints it.
    pub endpoint: String,
    /// What went wrong, one line.
    pub error: String,
    /// How long until the next attempt.
    pub delay: Duration,
    /// Which retry this is (from 1).
    pub attempt: u32,
    /// The most retries the call makes.
    pub max: u32,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// Refused locally; nothing was sent.
    #[error("invalid request")]
    Invalid(#[source] EncodeError),
    /// No complete answer arrived and the request is safe to send again later (a read,
    /// or a create that certainly did not leave this machine).
    #[error("no answer from the server")]
    Transport(#[source] TransportError),
    /// The provider answered with an error.
    #[error("the provider refused the request")]
    Api(#[source] ApiError),
    /// A create may have reached the server, but what it did is unknown; it was not
    /// sent again.
    #[error("the outcome of a create is unknown: it may have been carried out")]
    OutcomeUnknown(#[source] Unknown),
    /// No token is held and no credentials are configured to get one.
    #[error("not authenticated: the token was rejected or expired and no credentials are configured to get a new one")]
    NotAuthenticated,
    /// Every token fetched in this call was unusable at once.
    #[error("{fetches} access tokens were fetched for one call and none could be used")]
    TokenLoop {
        /// How many were fetched.
        fetches: u32,
    },
}

impl CallError {
    /// The provider's answer, when the error is one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Self::Api(e) => Some(e),
            _ => None,
        }
    }
}

/// What is known of a create whose outcome is unknown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Unknown {
    /// No complete answer (a timeout, a reset) after the request may have left.
    #[error("no complete answer")]
    Transport(#[source] TransportError),
    /// An answer came but is not the provider's (a gateway's error page) or cannot be
    /// read.
    #[error("the answer is not the provider's or cannot be read")]
    Answer(#[source] ApiError),
    /// The create was answered, but what it created could not be found afterwards
    /// (6pan: the task list could not be read): it was carried out, under an identity
    /// that is not known.
    #[error("carried out, but its task could not be found: {0}")]
    Unlisted(String),
}

#[derive(Debug)]
enum State {
    Start,
    NeedAuth,
    FetchReady,
    FetchInFlight,
    Ready(Ticket),
    InFlight(Ticket),
    Done,
}

/// One call: a request's way through tokens, pacing, retries and the create rule.
/// See the [module docs](self).
#[derive(Debug)]
pub struct Call<A: Auth, R: Request<A>> {
    request: R,
    id: A::Id,
    state: State,
    backoff: Option<Backoff>,
    fetch_backoff: Option<Backoff>,
    refreshed: bool,
    token_fetches: u32,
    retry_at: Option<(Instant, Option<RetryNotice>)>,
    result: Option<Result<R::Output, CallError>>,
    attempts: u32,
    /// When the call must have stopped retrying: the earlier of
    /// [`ClientState::call_deadline`] after its first poll and the command deadline.
    give_up_at: Option<Instant>,
    /// The command deadline, as the call found it at its first poll.
    command_deadline: Option<Instant>,
}

impl<A: Auth, R: Request<A>> Call<A, R> {
    /// A call of `request`; nothing happens until [`poll`](Self::poll).
    pub fn new(request: R) -> Self {
        let id = request.id();
        Self {
            request,
            id,
            state: State::Start,
            backoff: None,
            fetch_backoff: None,
            refreshed: false,
            token_fetches: 0,
            retry_at: None,
            result: None,
            attempts: 0,
            give_up_at: None,
            command_deadline: None,
        }
    }

    /// The request.
    pub fn request(&self) -> &R {
        &self.request
    }

    /// How many times the request itself has been handed out to send.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// When the call stops trying: the earlier of [`ClientState::call_deadline`] after
    /// its first poll and the [command deadline](ClientState::set_command_deadline)
    /// (`None` before the first poll, or with neither). No retry starts later, and an
    /// async driver cuts a request still waiting for its answer then (as a timeout: a
    /// create may have been sent).
    pub fn deadline(&self) -> Option<Instant> {
        self.give_up_at
    }

    /// Whether [`deadline`](Self::deadline) is the command deadline (it comes no later
    /// than the call's own), for a driver's message when it cuts a request.
    pub fn deadline_is_command(&self) -> bool {
        self.command_deadline.is_some() && self.give_up_at == self.command_deadline
    }

    /// Whether the command deadline has come at `now`.
    fn past_command_deadline(&self, now: Instant) -> bool {
        self.command_deadline.is_some_and(|at| now >= at)
    }

    /// A wait until `until`, brought forward to the command deadline: the call ends
    /// then rather than waiting past it.
    fn wait_until(&self, until: Instant, retry: Option<RetryNotice>) -> Output<R::Output> {
        let until = match self.command_deadline {
            Some(at) if at < until => at,
            _ => until,
        };
        Output::Wait { until, retry }
    }

    /// Whether the request is out on the wire right now (a driver that must record
    /// "may have been sent" before it goes checks this after [`Output::Send`]).
    pub fn request_in_flight(&self) -> bool {
        matches!(self.state, State::InFlight(_))
    }

    /// What to do next at `now` (monotonic) / `wall` (wall clock).
    pub fn poll(
        &mut self,
        state: &mut ClientState<A>,
        now: Instant,
        wall: SystemTime,
    ) -> Output<R::Output> {
        loop {
            if let Some((until, notice)) = &self.retry_at {
                if now < *until && !self.past_command_deadline(now) {
                    return self.wait_until(*until, notice.clone());
                }
                self.retry_at = None;
            }
            if self.past_command_deadline(now)
                && matches!(
                    self.state,
                    State::NeedAuth | State::FetchReady | State::Ready(_)
                )
            {
                if matches!(self.state, State::FetchReady) {
                    state.auth.handle_fetch_failed();
                    state.fetching_since = None;
                }
                return self.finish(Err(command_deadline_error()));
            }
            match std::mem::replace(&mut self.state, State::Done) {
                State::Start => {
                    if let Err(e) = self.request.validate() {
                        return self.finish(Err(CallError::Invalid(e.into())));
                    }
                    self.command_deadline = state.command_deadline;
                    if self.past_command_deadline(now) {
                        return self.finish(Err(command_deadline_error()));
                    }
                    self.backoff = Some(state.pacer.begin(self.id, now));
                    let own = state.call_deadline.and_then(|d| checked_deadline(now, d));
                    self.give_up_at = match (own, self.command_deadline) {
                        (Some(own), Some(command)) => Some(own.min(command)),
                        (own, command) => own.or(command),
                    };
                    self.state = if self.request.authenticated() {
                        State::NeedAuth
                    } else {
                        State::Ready(Ticket {
                            seq: 0,
                            token: None,
                        })
                    };
                }
                State::NeedAuth => match state.auth.poll(wall) {
                    AuthStep::Use(ticket) => self.state = State::Ready(ticket),
                    AuthStep::Fetch => {
                        if self.token_fetches >= MAX_TOKEN_FETCHES {
                            state.auth.handle_fetch_failed();
                            return self.finish(Err(CallError::TokenLoop {
                                fetches: self.token_fetches,
                            }));
                        }
                        self.token_fetches += 1;
                        let fetch_id = state.auth.fetch_endpoint();
                        if self.fetch_backoff.is_none() {
                            self.fetch_backoff = Some(state.pacer.begin(fetch_id, now));
                        }
                        state.fetching_since = Some(now);
                        self.state = State::FetchReady;
                    }
                    AuthStep::Wait => {
                        let stale = state
                            .fetching_since
                            .is_some_and(|t| now.saturating_duration_since(t) >= FETCH_LEASE);
                        if stale {
                            state.auth.handle_fetch_failed();
                            state.fetching_since = None;
                        }
                        self.state = State::NeedAuth;
                        self.retry_at = Some((now + TOKEN_WAIT, None));
                    }
                    AuthStep::Unavailable => return self.finish(Err(CallError::NotAuthenticated)),
                    AuthStep::Refused(e) => return self.finish(Err(CallError::Api(e))),
                },
                State::FetchReady => {
                    if let Err(wait) = state.pacer.try_acquire(state.auth.fetch_endpoint(), now) {
                        self.state = State::FetchReady;
                        return self.wait_until(deadline(now, wait), None);
                    }
                    match state.auth.fetch_request(&state.base) {
                        Ok(request) => {
                            state.token_fetches += 1;
                            self.state = State::FetchInFlight;
                            return Output::Send(request);
                        }
                        Err(e) => {
                            state.auth.handle_fetch_failed();
                            state.fetching_since = None;
                            return self.finish(Err(CallError::Invalid(e)));
                        }
                    }
                }
                State::Ready(_) if !self.request.sends() => {
                    let result = self
                        .request
                        .decode(&HttpResponse::default())
                        .map_err(CallError::Api);
                    return self.finish(result);
                }
                State::Ready(ticket) => {
                    if let Err(wait) = state.pacer.try_acquire(self.id, now) {
                        self.state = State::Ready(ticket);
                        return self.wait_until(deadline(now, wait), None);
                    }
                    match self.request.to_http(&state.base, ticket.token.as_ref()) {
                        Ok(mut request) => {
                            let limit = state.response_limit(self.id);
                            request.extensions_mut().insert(crate::ResponseLimit(limit));
                            self.attempts += 1;
                            self.state = State::InFlight(ticket);
                            return Output::Send(request);
                        }
                        Err(e) => return self.finish(Err(CallError::Invalid(e))),
                    }
                }
                s @ (State::FetchInFlight | State::InFlight(_)) => {
                    // Polled before the answer was handed in: nothing new to do. The
                    // request is not handed out twice.
                    self.state = s;
                    return Output::Wait {
                        until: now + TOKEN_WAIT,
                        retry: None,
                    };
                }
                State::Done => {
                    return Output::Done(
                        self.result
                            .take()
                            .unwrap_or(Err(CallError::NotAuthenticated)),
                    );
                }
            }
        }
    }

    /// What came back for the request last handed out by [`Output::Send`], at `now` /
    /// `wall`.
    pub fn handle_response(
        &mut self,
        state: &mut ClientState<A>,
        result: Result<HttpResponse, TransportError>,
        now: Instant,
        wall: SystemTime,
    ) {
        match std::mem::replace(&mut self.state, State::Done) {
            State::FetchInFlight => {
                state.fetching_since = None;
                let failure = match result {
                    Ok(response) => match state.auth.handle_fetched(&response, wall) {
                        Ok(()) => {
                            self.state = State::NeedAuth;
                            return;
                        }
                        Err(e) => Attempt::Api(e),
                    },
                    Err(e) => {
                        state.auth.handle_fetch_failed();
                        Attempt::Transport(e)
                    }
                };
                let fetch_id = state.auth.fetch_endpoint();
                let backoff = self
                    .fetch_backoff
                    .get_or_insert_with(|| Backoff::new(Duration::ZERO, Duration::ZERO, 0, 0));
                let give_up_at = self.give_up_at;
                match retry_decision(&mut state.pacer, backoff, false, &failure, now, give_up_at) {
                    Some(delay) => {
                        // A failed fetch sent again is the same fetch: only tokens that
                        // arrived and were unusable count toward MAX_TOKEN_FETCHES.
                        self.token_fetches = self.token_fetches.saturating_sub(1);
                        let attempt = backoff.attempts();
                        self.schedule_retry(fetch_id, &failure, delay, attempt, now);
                        self.state = State::NeedAuth;
                    }
                    None => self.state_finish(Err(CallError::from_attempt(failure, false))),
                }
            }
            State::InFlight(ticket) => {
                if let Ok(response) = &result {
                    state.observe_date(response, wall);
                    state.auth.handle_answer(self.id, &ticket, response);
                }
                let failure = match result {
                    Ok(response) => match self.request.decode(&response) {
                        Ok(output) => return self.state_finish(Ok(output)),
                        Err(e) => Attempt::Api(e),
                    },
                    Err(e) => Attempt::Transport(e),
                };
                if let Attempt::Api(ApiError::TokenInvalid(_)) = &failure {
                    if self.request.authenticated() && !self.refreshed {
                        self.refreshed = true;
                        if state.auth.handle_rejected(&ticket) {
                            self.state = State::NeedAuth;
                            return;
                        }
                    }
                    return self.state_finish(Err(CallError::from_attempt(failure, false)));
                }
                let creates = self.id.creates();
                let backoff = self
                    .backoff
                    .get_or_insert_with(|| Backoff::new(Duration::ZERO, Duration::ZERO, 0, 0));
                let give_up_at = self.give_up_at;
                match retry_decision(
                    &mut state.pacer,
                    backoff,
                    creates,
                    &failure,
                    now,
                    give_up_at,
                ) {
                    Some(delay) => {
                        let attempt = backoff.attempts();
                        self.schedule_retry(self.id, &failure, delay, attempt, now);
                        self.state = if self.request.authenticated() {
                            State::NeedAuth
                        } else {
                            State::Ready(ticket)
                        };
                    }
                    None => self.state_finish(Err(CallError::from_attempt(failure, creates))),
                }
            }
            other => {
                // An answer nobody asked for: ignored.
                self.state = other;
            }
        }
    }

    /// The driver gives up on the call (its future was dropped): a token fetch under
    /// way is released so that another call can fetch.
    pub fn abandon(&mut self, state: &mut ClientState<A>) {
        if matches!(self.state, State::FetchInFlight | State::FetchReady) {
            state.auth.handle_fetch_failed();
            state.fetching_since = None;
        }
        self.state = State::Done;
    }

    /// Whether the call is over.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn schedule_retry(
        &mut self,
        id: A::Id,
        failure: &Attempt,
        delay: Duration,
        attempt: u32,
        now: Instant,
    ) {
        let notice = RetryNotice {
            endpoint: format!("{id:?}"),
            error: failure.to_string(),
            delay,
            attempt,
            max: retry::MAX_RETRIES,
        };
        match checked_deadline(now, delay) {
            Some(until) => self.retry_at = Some((until, Some(notice))),
            None => self.retry_at = None,
        }
    }

    fn state_finish(&mut self, result: Result<R::Output, CallError>) {
        self.result = Some(result);
        self.state = State::Done;
    }

    fn finish(&mut self, result: Result<R::Output, CallError>) -> Output<R::Output> {
        self.state = State::Done;
        Output::Done(result)
    }
}

fn deadline(now: Instant, wait: Duration) -> Instant {
    checked_deadline(now, wait).unwrap_or(now + MAX_RETRY_AFTER)
}

/// The one retry decision: [`retry::classify`], the call's backoff, the budget, the
/// cap on `Retry-After`, and the call's deadline (`give_up_at`).
fn retry_decision<K: Ord + Copy>(
    pacer: &mut Pacer<K>,
    backoff: &mut Backoff,
    creates: bool,
    failure: &Attempt,
    now: Instant,
    give_up_at: Option<Instant>,
) -> Option<Duration> {
    if let Retry::After(wait) = retry::classify(creates, &failure.as_failure()) {
        if wait > MAX_RETRY_AFTER {
            return None;
        }
    }
    let delay = pacer.retry_delay(backoff, creates, &failure.as_failure(), now)?;
    match (give_up_at, checked_deadline(now, delay)) {
        (Some(limit), Some(at)) if at > limit => None,
        (Some(_), None) => None,
        _ => Some(delay),
    }
}

impl CallError {
    /// The error a call ends with after `failure`: the create rule.
    fn from_attempt(failure: Attempt, creates: bool) -> Self {
        match failure {
            Attempt::Transport(e) if creates && e.may_have_been_sent() => {
                Self::OutcomeUnknown(Unknown::Transport(e))
            }
            Attempt::Transport(e) => Self::Transport(e),
            // Not the provider's envelope (a gateway's page) or unreadable: for a
            // create, only the provider's envelope can say it did not happen.
            Attempt::Api(e @ (ApiError::Http { .. } | ApiError::Decode(_))) if creates => {
                Self::OutcomeUnknown(Unknown::Answer(e))
            }
            Attempt::Api(e) => Self::Api(e),
        }
    }
}
