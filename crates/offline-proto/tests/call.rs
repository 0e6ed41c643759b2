//! The call machine's rules, on synthetic time: tokens, pacing, retries, the create
//! rule, `Retry-After`, token fetch bounds. No I/O: answers are made up here.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use offline_proto::call::{Call, CallError, ClientState, EnsureToken, Output, Unknown};
use offline_proto::clock::{Clock, ManualClock};
use offline_proto::driver::drive_blocking;
use offline_proto::pan123::{
    Credentials, EndpointId, OfflineDownloadRequest, OfflineProcessRequest, TaskCreated, TaskId,
};
use offline_proto::{
    ApiError, BaseUrl, HttpRequest, HttpResponse, TransportError, TransportErrorKind,
};

fn wall0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn rfc3339(t: SystemTime) -> String {
    let odt = time::OffsetDateTime::from(t);
    odt.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn state(limits: f64) -> ClientState<Credentials> {
    ClientState::new(
        BaseUrl::parse("http://127.0.0.1:1").unwrap(),
        Credentials::client("id", "secret", Duration::from_secs(300)),
        EndpointId::ALL.map(|e| (e, limits)),
        7,
    )
}

fn json(status: u16, body: &str) -> HttpResponse {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_owned()))
        .unwrap()
}

fn token_answer(token: &str, expires: SystemTime) -> HttpResponse {
    json(
        200,
        &format!(
            r#"{{"code":0,"message":"ok","data":{{"accessToken":"{token}","expiredAt":"{}"}},"x-traceID":"t"}}"#,
            rfc3339(expires)
        ),
    )
}

fn created(id: u64) -> HttpResponse {
    json(
        200,
        &format!(r#"{{"code":0,"message":"ok","data":{{"taskID":{id}}},"x-traceID":"t"}}"#),
    )
}

fn progress() -> HttpResponse {
    json(
        200,
        r#"{"code":0,"message":"ok","data":{"process":50.0,"status":0},"x-traceID":"t"}"#,
    )
}

fn is_token_request(r: &HttpRequest) -> bool {
    r.uri().path() == "/api/v1/access_token"
}

/// A server in a closure: answers token requests with `token`, the rest with `other`;
/// counts token requests and other requests.
struct Scripted<F> {
    other: F,
    expires_in: Duration,
    clock: ManualClock,
    tokens: Mutex<u32>,
    calls: Mutex<u32>,
}

impl<F: Fn(u32, &HttpRequest) -> Result<HttpResponse, TransportError>> Scripted<F> {
    fn new(clock: &ManualClock, expires_in: Duration, other: F) -> Self {
        Self {
            other,
            expires_in,
            clock: clock.clone(),
            tokens: Mutex::new(0),
            calls: Mutex::new(0),
        }
    }

    fn send(&self, r: HttpRequest) -> Result<HttpResponse, TransportError> {
        if is_token_request(&r) {
            let mut n = self.tokens.lock().unwrap();
            *n += 1;
            return Ok(token_answer(
                &format!("tok{n}"),
                self.clock.wall() + self.expires_in,
            ));
        }
        let mut n = self.calls.lock().unwrap();
        *n += 1;
        (self.other)(*n, &r)
    }

    fn tokens(&self) -> u32 {
        *self.tokens.lock().unwrap()
    }
    fn calls(&self) -> u32 {
        *self.calls.lock().unwrap()
    }
}

fn run<R: offline_proto::call::Request<Credentials>>(
    st: &Mutex<ClientState<Credentials>>,
    server: &Scripted<impl Fn(u32, &HttpRequest) -> Result<HttpResponse, TransportError>>,
    clock: &ManualClock,
    request: R,
) -> Result<R::Output, CallError> {
    drive_blocking(st, &|r| server.send(r), clock, request, |_| {})
}

/// [`run`] of a create: an offline download of a made-up file.
fn create(
    st: &Mutex<ClientState<Credentials>>,
    server: &Scripted<impl Fn(u32, &HttpRequest) -> Result<HttpResponse, TransportError>>,
    clock: &ManualClock,
) -> Result<TaskCreated, CallError> {
    run(
        st,
        server,
        clock,
        OfflineDownloadRequest::new("https://example.com/a.bin"),
    )
}

/// A manual clock at [`wall0`].
fn manual_clock() -> ManualClock {
    ManualClock::new(Instant::now(), wall0())
}

/// A server whose tokens last two hours.
fn scripted<F: Fn(u32, &HttpRequest) -> Result<HttpResponse, TransportError>>(
    clock: &ManualClock,
    other: F,
) -> Scripted<F> {
    Scripted::new(clock, Duration::from_secs(7200), other)
}

/// A 429 answer with `Retry-After: after`.
fn too_many(after: &str, body: &'static [u8]) -> HttpResponse {
    http::Response::builder()
        .status(429)
        .header("retry-after", after)
        .body(Bytes::from_static(body))
        .unwrap()
}

#[test]
fn thirty_two_calls_that_need_a_token_make_one_token_request() {
    let mut st = state(0.0);
    let now = Instant::now();
    let mut calls: Vec<_> = (0..32)
        .map(|i| Call::new(OfflineProcessRequest::new(TaskId(i))))
        .collect();
    let mut token_requests = 0;
    let mut fetcher = None;
    for (i, call) in calls.iter_mut().enumerate() {
        match call.poll(&mut st, now, wall0()) {
            Output::Send(r) if is_token_request(&r) => {
                token_requests += 1;
                fetcher = Some(i);
            }
            Output::Wait { .. } => {}
            other => panic!("call {i}: {other:?}"),
        }
    }
    assert_eq!(token_requests, 1);
    let f = fetcher.unwrap();
    calls[f].handle_response(
        &mut st,
        Ok(token_answer("t", wall0() + Duration::from_secs(7200))),
        now,
        wall0(),
    );
    // Every call now sends its own request with that token, and no other token request.
    for call in &mut calls {
        match call.poll(&mut st, now + Duration::from_millis(30), wall0()) {
            Output::Send(r) => {
                assert!(!is_token_request(&r));
                assert_eq!(r.headers()["authorization"], "Bearer t");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(st.token_fetches(), 1);
}

#[test]
fn a_token_that_expires_inside_the_margin_is_used_not_refetched_every_call() {
    let clock = manual_clock();
    let server = Scripted::new(&clock, Duration::from_secs(120), |_, _| Ok(progress()));
    let st = Mutex::new(state(0.0));
    for i in 0..20 {
        run(&st, &server, &clock, OfflineProcessRequest::new(TaskId(i))).unwrap();
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(
        server.tokens(),
        1,
        "120 s token, 300 s margin: used until it expires"
    );
    clock.advance(Duration::from_secs(120));
    run(&st, &server, &clock, OfflineProcessRequest::new(TaskId(1))).unwrap();
    assert_eq!(server.tokens(), 2, "expired: one new token");
}

#[test]
fn tokens_stale_on_arrival_end_the_call_after_three_fetches() {
    let clock = manual_clock();
    // Every token the server hands out has already expired.
    let server = Scripted::new(&clock, Duration::ZERO, |_, _| Ok(progress()));
    let st = Mutex::new(state(0.0));
    let err = run(&st, &server, &clock, OfflineProcessRequest::new(TaskId(1))).unwrap_err();
    assert!(
        matches!(err, CallError::TokenLoop { fetches: 3 }),
        "{err:?}"
    );
    assert_eq!(server.tokens(), 3);
    assert_eq!(server.calls(), 0);
}

#[test]
fn retry_after_beyond_the_cap_gives_up_with_the_servers_answer_and_never_panics() {
    for after in ["86400", "18446744073709551615"] {
        let clock = manual_clock();
        let server = scripted(&clock, move |_, _| Ok(too_many(after, b"slow down")));
        let st = Mutex::new(state(0.0));
        let started = clock.now();
        let err = run(&st, &server, &clock, OfflineProcessRequest::new(TaskId(1))).unwrap_err();
        assert!(
            matches!(err, CallError::Api(ApiError::RateLimited { .. })),
            "{after}: {err:?}"
        );
        assert_eq!(server.calls(), 1, "{after}: not sent again");
        assert!(
            clock.now() - started < Duration::from_secs(1),
            "{after}: no wait"
        );
    }
    // Eight zeros, then a huge value: still no panic, still capped.
    let clock = manual_clock();
    let server = scripted(&clock, |n, _| {
        let after = if n <= 8 { "0" } else { "18446744073709551615" };
        Ok(too_many(after, b""))
    });
    let st = Mutex::new(state(0.0));
    let err = run(&st, &server, &clock, OfflineProcessRequest::new(TaskId(1))).unwrap_err();
    assert!(
        matches!(err, CallError::Api(ApiError::RateLimited { .. })),
        "{err:?}"
    );
}

#[test]
fn a_gateway_error_page_after_a_create_is_outcome_unknown_and_a_read_is_retried() {
    let page = |_: u32, _: &HttpRequest| {
        Ok(http::Response::builder()
            .status(502)
            .header("content-type", "text/html")
            .body(Bytes::from_static(b"<html>502 Bad Gateway</html>"))
            .unwrap())
    };
    let clock = manual_clock();
    let server = scripted(&clock, page);
    let st = Mutex::new(state(0.0));
    let err = create(&st, &server, &clock).unwrap_err();
    assert!(
        matches!(
            err,
            CallError::OutcomeUnknown(Unknown::Answer(ApiError::Http { .. }))
        ),
        "{err:?}"
    );
    assert_eq!(
        server.calls(),
        1,
        "a create is never sent again after a 502"
    );

    let server = scripted(
        &clock,
        |n, r| {
            if n < 3 {
                page(n, r)
            } else {
                Ok(progress())
            }
        },
    );
    let st = Mutex::new(state(0.0));
    run(&st, &server, &clock, OfflineProcessRequest::new(TaskId(1))).unwrap();
    assert_eq!(server.calls(), 3, "a read is retried");
}

#[test]
fn creates_are_sent_again_only_when_the_server_certainly_did_not_act() {
    let clock = manual_clock();
    // Refused connection, then a rate limit, then a token rejection, then success.
    let server = scripted(&clock, |n, _| match n {
        1 => Err(TransportError::new(TransportErrorKind::Connect, "refused")),
        2 => Ok(json(
            200,
            r#"{"code":429,"message":"too many","data":null,"x-traceID":"t"}"#,
        )),
        3 => Ok(json(
            200,
            r#"{"code":401,"message":"expired","data":null,"x-traceID":"t"}"#,
        )),
        _ => Ok(created(9)),
    });
    let st = Mutex::new(state(0.0));
    let out = create(&st, &server, &clock).unwrap();
    assert_eq!(out.task_id, TaskId(9));
    assert_eq!(server.calls(), 4);
    assert_eq!(server.tokens(), 2, "the rejected token was replaced once");

    for failure in [TransportErrorKind::Timeout, TransportErrorKind::Closed] {
        let server = scripted(&clock, move |_, _| {
            Err(TransportError::new(failure, "lost"))
        });
        let st = Mutex::new(state(0.0));
        let err = create(&st, &server, &clock).unwrap_err();
        assert!(
            matches!(err, CallError::OutcomeUnknown(Unknown::Transport(_))),
            "{err:?}"
        );
        assert_eq!(server.calls(), 1);
    }
}

#[test]
fn pacing_spaces_requests_at_the_rate_limit() {
    let clock = manual_clock();
    let server = scripted(&clock, |_, _| Ok(progress()));
    let st = Mutex::new(state(5.0));
    let start = clock.now();
    for i in 0..11 {
        run(&st, &server, &clock, OfflineProcessRequest::new(TaskId(i))).unwrap();
    }
    let took = clock.now() - start;
    // 11 calls at 5/s (paced at 99 %): ten intervals of about 202 ms.
    assert!(
        took >= Duration::from_millis(2_000) && took < Duration::from_millis(2_200),
        "{took:?}"
    );
}

#[test]
fn an_abandoned_token_fetch_lets_the_next_call_fetch_at_once() {
    let mut st = state(0.0);
    let now = Instant::now();
    let mut first = Call::new(EnsureToken(EndpointId::AccessToken));
    assert!(matches!(first.poll(&mut st, now, wall0()), Output::Send(_)));
    first.abandon(&mut st);
    let mut second = Call::new(OfflineProcessRequest::new(TaskId(1)));
    match second.poll(&mut st, now, wall0()) {
        Output::Send(r) => assert!(is_token_request(&r)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_requests_send_nothing_not_even_a_token_request() {
    let clock = manual_clock();
    let server = scripted(&clock, |_, _| Ok(progress()));
    let st = Mutex::new(state(0.0));
    let err = run(
        &st,
        &server,
        &clock,
        OfflineDownloadRequest::new("ftp://example.com/a"),
    )
    .unwrap_err();
    assert!(matches!(err, CallError::Invalid(_)), "{err:?}");
    assert_eq!((server.tokens(), server.calls()), (0, 0));
}

#[test]
fn a_token_fetch_retried_after_refused_connections_is_one_fetch() {
    let clock = manual_clock();
    let refused = Mutex::new(0);
    let st = Mutex::new(state(0.0));
    let http = |r: HttpRequest| {
        if is_token_request(&r) {
            let mut n = refused.lock().unwrap();
            *n += 1;
            if *n <= 5 {
                return Err(TransportError::new(TransportErrorKind::Connect, "refused"));
            }
            return Ok(token_answer("t", wall0() + Duration::from_secs(7200)));
        }
        Ok(progress())
    };
    let out = drive_blocking(
        &st,
        &http,
        &clock,
        OfflineProcessRequest::new(TaskId(1)),
        |_| {},
    );
    assert!(out.is_ok(), "{out:?}");
    assert_eq!(*refused.lock().unwrap(), 6);
}

// Issue 10 #4: against a silent server (every attempt a 60 s timeout) a read tried up
// to nine times for about nine minutes. The call's deadline (120 s from its start)
// stops it after about two attempts; without a deadline the attempts run out instead.
#[test]
fn a_call_stops_retrying_at_its_deadline() {
    let clock = manual_clock();
    let silent = {
        let clock = clock.clone();
        move |_: u32, _: &HttpRequest| {
            clock.advance(Duration::from_secs(60));
            Err(TransportError::new(
                TransportErrorKind::Timeout,
                "no answer in 60 s",
            ))
        }
    };
    let server = scripted(&clock, silent);
    let st = Mutex::new(state(0.0));
    assert_eq!(
        st.lock().unwrap().call_deadline(),
        Some(offline_proto::call::DEFAULT_CALL_DEADLINE)
    );
    let started = clock.now();
    let err = run(&st, &server, &clock, OfflineProcessRequest::new(TaskId(1))).unwrap_err();
    assert!(matches!(err, CallError::Transport(_)), "{err:?}");
    let took = clock.now() - started;
    assert!(took <= Duration::from_secs(180), "took {took:?}");
    assert_eq!(server.calls(), 2, "two 60 s attempts fit in 120 s");

    let server = scripted(&clock, {
        let clock = clock.clone();
        move |_: u32, _: &HttpRequest| {
            clock.advance(Duration::from_secs(60));
            Err(TransportError::new(TransportErrorKind::Timeout, "x"))
        }
    });
    let st = Mutex::new(state(0.0));
    st.lock().unwrap().set_call_deadline(None);
    run(&st, &server, &clock, OfflineProcessRequest::new(TaskId(1))).unwrap_err();
    assert!(server.calls() > 2, "{} attempts", server.calls());
}

/// A state whose client holds a usable token (no token request first), every endpoint
/// paced at `limits` per second.
fn state_with_token(limits: f64) -> ClientState<Credentials> {
    ClientState::new(
        BaseUrl::parse("http://127.0.0.1:1").unwrap(),
        Credentials::token("t", None),
        EndpointId::ALL.map(|e| (e, limits)),
        7,
    )
}

/// The call's error is the command deadline's: a timeout that is not sent.
fn assert_past_command_deadline<T: std::fmt::Debug>(out: Output<T>) {
    match out {
        Output::Done(Err(CallError::Transport(e))) => {
            assert!(offline_proto::call::past_command_deadline(&e), "{e:?}");
            assert_eq!(e.kind(), TransportErrorKind::Timeout);
        }
        other => panic!("{other:?}"),
    }
}

// The command deadline: a call started 10 s before it, with the default 120 s call
// deadline, gives up at the command deadline: its request is cut then (a create: outcome
// unknown) and no retry follows.
#[test]
fn a_call_gives_up_at_the_command_deadline_when_it_comes_first() {
    let t0 = Instant::now();
    let command = t0 + Duration::from_secs(10);
    let mut st = state_with_token(0.0);
    st.set_command_deadline(Some(command));
    assert_eq!(st.command_deadline(), Some(command));
    assert_eq!(
        st.call_deadline(),
        Some(offline_proto::call::DEFAULT_CALL_DEADLINE)
    );

    let mut read = Call::new(OfflineProcessRequest::new(TaskId(1)));
    assert!(matches!(read.poll(&mut st, t0, wall0()), Output::Send(_)));
    assert_eq!(read.deadline(), Some(command));
    assert!(read.deadline_is_command());
    // What a driver hands in when it cuts the request at the deadline.
    let cut = || TransportError::new(TransportErrorKind::Timeout, "no answer");
    read.handle_response(&mut st, Err(cut()), command, wall0());
    match read.poll(&mut st, command, wall0()) {
        Output::Done(Err(CallError::Transport(e))) => {
            assert!(!offline_proto::call::past_command_deadline(&e), "{e:?}");
        }
        other => panic!("no retry after the deadline: {other:?}"),
    }
    assert_eq!(read.attempts(), 1);

    let mut create = Call::new(OfflineDownloadRequest::new("https://example.com/a.bin"));
    assert!(matches!(create.poll(&mut st, t0, wall0()), Output::Send(_)));
    assert_eq!(create.deadline(), Some(command));
    create.handle_response(&mut st, Err(cut()), command, wall0());
    match create.poll(&mut st, command, wall0()) {
        Output::Done(Err(CallError::OutcomeUnknown(Unknown::Transport(_)))) => {}
        other => panic!("{other:?}"),
    }

    // A failure 5 s in is retried only while the retry starts before the deadline.
    let mut early = Call::new(OfflineProcessRequest::new(TaskId(2)));
    assert!(matches!(early.poll(&mut st, t0, wall0()), Output::Send(_)));
    let five = t0 + Duration::from_secs(5);
    early.handle_response(&mut st, Err(cut()), five, wall0());
    match early.poll(&mut st, five, wall0()) {
        Output::Wait { until, .. } => assert!(until <= command, "{until:?}"),
        other => panic!("{other:?}"),
    }
}

// A call whose own deadline comes first keeps it.
#[test]
fn a_later_command_deadline_leaves_the_call_deadline() {
    let t0 = Instant::now();
    let mut st = state_with_token(0.0);
    st.set_command_deadline(Some(t0 + Duration::from_secs(1000)));
    let mut call = Call::new(OfflineProcessRequest::new(TaskId(1)));
    assert!(matches!(call.poll(&mut st, t0, wall0()), Output::Send(_)));
    assert_eq!(
        call.deadline(),
        Some(t0 + offline_proto::call::DEFAULT_CALL_DEADLINE)
    );
    assert!(!call.deadline_is_command());
    // With no call deadline at all, the command deadline is the call's.
    st.set_call_deadline(None);
    let mut call = Call::new(OfflineProcessRequest::new(TaskId(1)));
    assert!(matches!(call.poll(&mut st, t0, wall0()), Output::Send(_)));
    assert_eq!(call.deadline(), Some(t0 + Duration::from_secs(1000)));
}

// A call started at or after the command deadline ends at once, sending nothing, even a
// token request, and a create among them is not reported as possibly carried out.
#[test]
fn a_call_started_at_or_after_the_command_deadline_ends_at_once() {
    let t0 = Instant::now();
    for st in [state(0.0), state_with_token(0.0)] {
        let mut st = st;
        st.set_command_deadline(Some(t0));
        for at in [t0, t0 + Duration::from_secs(3)] {
            let mut read = Call::new(OfflineProcessRequest::new(TaskId(1)));
            assert_past_command_deadline(read.poll(&mut st, at, wall0()));
            assert_eq!(read.attempts(), 0);
            let mut create = Call::new(OfflineDownloadRequest::new("https://example.com/a"));
            assert_past_command_deadline(create.poll(&mut st, at, wall0()));
            assert!(create.is_done());
        }
        assert_eq!(st.token_fetches(), 0);
    }
    // Validation still comes first.
    let mut st = state_with_token(0.0);
    st.set_command_deadline(Some(t0));
    let mut bad = Call::new(OfflineDownloadRequest::new("ftp://example.com/a"));
    match bad.poll(&mut st, t0, wall0()) {
        Output::Done(Err(CallError::Invalid(_))) => {}
        other => panic!("{other:?}"),
    }
}

// A call waiting for its rate limit past the command deadline wakes at the deadline and
// ends there, unsent, rather than being sent late.
#[test]
fn a_rate_limit_wait_ends_at_the_command_deadline() {
    let t0 = Instant::now();
    let command = t0 + Duration::from_secs(1);
    // One request per 100 s: the second waits about 100 s.
    let mut st = state_with_token(0.01);
    st.set_command_deadline(Some(command));
    let mut first = Call::new(OfflineDownloadRequest::new("https://example.com/a"));
    assert!(matches!(first.poll(&mut st, t0, wall0()), Output::Send(_)));
    let mut second = Call::new(OfflineDownloadRequest::new("https://example.com/b"));
    match second.poll(&mut st, t0, wall0()) {
        Output::Wait { until, .. } => assert_eq!(until, command),
        other => panic!("{other:?}"),
    }
    assert_past_command_deadline(second.poll(&mut st, command, wall0()));
    assert_eq!(second.attempts(), 0);
}

// A call waiting while another fetches the token ends at the command deadline too, and
// the fetcher cut then releases the fetch.
#[test]
fn a_call_waiting_for_another_calls_token_ends_at_the_command_deadline() {
    let t0 = Instant::now();
    let command = t0 + Duration::from_millis(100);
    let mut st = state(0.0);
    st.set_command_deadline(Some(command));
    let mut fetcher = Call::new(OfflineProcessRequest::new(TaskId(1)));
    assert!(matches!(
        fetcher.poll(&mut st, t0, wall0()),
        Output::Send(r) if is_token_request(&r)
    ));
    let mut waiter = Call::new(OfflineProcessRequest::new(TaskId(2)));
    let mut now = t0;
    loop {
        match waiter.poll(&mut st, now, wall0()) {
            Output::Wait { until, .. } => {
                assert!(until <= command, "{until:?}");
                now = until;
            }
            out => {
                assert_past_command_deadline(out);
                break;
            }
        }
    }
    assert_eq!(now, command);
    fetcher.handle_response(
        &mut st,
        Err(TransportError::new(TransportErrorKind::Timeout, "cut")),
        command,
        wall0(),
    );
    assert!(matches!(
        fetcher.poll(&mut st, command, wall0()),
        Output::Done(Err(CallError::Transport(_)))
    ));
}

// No command deadline (the default) changes nothing: the call deadline alone.
#[test]
fn no_command_deadline_is_the_call_deadline_alone() {
    let t0 = Instant::now();
    let mut st = state_with_token(0.0);
    assert_eq!(st.command_deadline(), None);
    st.set_command_deadline(None);
    let mut call = Call::new(OfflineProcessRequest::new(TaskId(1)));
    assert!(matches!(call.poll(&mut st, t0, wall0()), Output::Send(_)));
    assert_eq!(
        call.deadline(),
        Some(t0 + offline_proto::call::DEFAULT_CALL_DEADLINE)
    );
    assert!(!call.deadline_is_command());
    st.set_call_deadline(None);
    let mut call = Call::new(OfflineProcessRequest::new(TaskId(1)));
    assert!(matches!(call.poll(&mut st, t0, wall0()), Output::Send(_)));
    assert_eq!(call.deadline(), None);
}

// A silent server against the blocking driver (which cannot cut a request): with a
// command deadline 10 s away, the first 60 s attempt is the last.
#[test]
fn a_silent_server_is_tried_once_past_the_command_deadline() {
    let clock = manual_clock();
    let server = scripted(&clock, {
        let clock = clock.clone();
        move |_: u32, _: &HttpRequest| {
            clock.advance(Duration::from_secs(60));
            Err(TransportError::new(
                TransportErrorKind::Timeout,
                "no answer in 60 s",
            ))
        }
    });
    let st = Mutex::new(state(0.0));
    st.lock()
        .unwrap()
        .set_command_deadline(Some(clock.now() + Duration::from_secs(10)));
    let err = run(&st, &server, &clock, OfflineProcessRequest::new(TaskId(1))).unwrap_err();
    assert!(matches!(err, CallError::Transport(_)), "{err:?}");
    assert_eq!(server.calls(), 1);
    // The next call of the command ends at once, sending nothing.
    let err = create(&st, &server, &clock).unwrap_err();
    match err {
        CallError::Transport(e) => assert!(offline_proto::call::past_command_deadline(&e)),
        other => panic!("{other:?}"),
    }
    assert_eq!((server.tokens(), server.calls()), (1, 1));
}

/// The answer of a token call when the client holds too many tokens.
fn tokens_exceeded() -> HttpResponse {
    json(
        200,
        r#"{"code":401,"message":"tokens number has exceeded the limit","data":null,"x-traceID":"t"}"#,
    )
}

#[test]
fn too_many_tokens_ends_the_call_after_one_token_request_and_pauses_further_fetches() {
    let st = Mutex::new(state(0.0));
    let clock = manual_clock();
    let fetches = Mutex::new(0u32);
    let send = |r: HttpRequest| -> Result<HttpResponse, TransportError> {
        assert!(is_token_request(&r), "nothing but the token call is sent");
        *fetches.lock().unwrap() += 1;
        Ok(tokens_exceeded())
    };
    let request = OfflineProcessRequest::new(TaskId(1));
    let err = drive_blocking(&st, &send, &clock, request, |_| {}).unwrap_err();
    match err.api_error() {
        Some(ApiError::TooManyTokens {
            error,
            oldest_expires_at,
        }) => {
            assert_eq!(error.message, "tokens number has exceeded the limit");
            assert_eq!(*oldest_expires_at, None, "no token of this client is known");
        }
        other => panic!("expected TooManyTokens, got {other:?} ({err:?})"),
    }
    assert_eq!(*fetches.lock().unwrap(), 1, "exactly one token request");
    // A second call within the pause sends nothing at all and fails the same way.
    let err = drive_blocking(&st, &send, &clock, request, |_| {}).unwrap_err();
    assert!(
        matches!(err.api_error(), Some(ApiError::TooManyTokens { .. })),
        "{err:?}"
    );
    assert_eq!(
        *fetches.lock().unwrap(),
        1,
        "no token request during the pause"
    );
    // After the pause, one fetch is tried again.
    clock.advance(offline_proto::pan123::TOO_MANY_TOKENS_PAUSE);
    let _ = drive_blocking(&st, &send, &clock, request, |_| {});
    assert_eq!(*fetches.lock().unwrap(), 2);
}

#[test]
fn too_many_tokens_on_a_call_is_not_answered_with_a_token_request() {
    let st = Mutex::new(state(0.0));
    let clock = manual_clock();
    let server = scripted(&clock, |_, _| Ok(tokens_exceeded()));
    let err = run(&st, &server, &clock, OfflineProcessRequest::new(TaskId(1))).unwrap_err();
    assert!(
        matches!(err.api_error(), Some(ApiError::TooManyTokens { .. })),
        "{err:?}"
    );
    assert_eq!(server.tokens(), 1, "only the first token; no refresh");
    assert_eq!(server.calls(), 1, "the call is not sent again");
}

#[test]
fn too_many_tokens_names_the_oldest_known_token_expiry() {
    let clock = manual_clock();
    let cached_until = wall0() + Duration::from_secs(600);
    let credentials = Credentials::client("id", "secret", Duration::from_secs(300))
        .with_cached_token("old", cached_until, wall0());
    let st = Mutex::new(ClientState::new(
        BaseUrl::parse("http://127.0.0.1:1").unwrap(),
        credentials,
        EndpointId::ALL.map(|e| (e, 0.0)),
        7,
    ));
    // The cached token is inside its margin: a fetch is due, and refused.
    clock.advance(Duration::from_secs(400));
    let send = |_: HttpRequest| -> Result<HttpResponse, TransportError> { Ok(tokens_exceeded()) };
    let err = drive_blocking(
        &st,
        &send,
        &clock,
        EnsureToken(EndpointId::AccessToken),
        |_| {},
    )
    .unwrap_err();
    match err.api_error() {
        Some(
            e @ ApiError::TooManyTokens {
                oldest_expires_at, ..
            },
        ) => {
            assert_eq!(*oldest_expires_at, Some(cached_until));
            let text = e.to_string();
            assert!(text.contains("reuse"), "{text}");
            let when = format!(
                "the oldest known token expires at {}",
                rfc3339(cached_until)
            );
            assert!(text.contains(&when), "{text}");
        }
        other => panic!("expected TooManyTokens, got {other:?}"),
    }
}
