//! `offline callbacks --listen ADDR`: receives 123pan callbacks and confirms each one
//! with the progress call before reporting it.
//!
//! A callback carries no signature and names the task's source URL, not its ID, so it
//! is only a hint: anybody who can reach the listener can POST one. Each callback is
//! matched by URL against the tasks the user names (`--task ID=URL`, or the journal of
//! `add --from FILE`, read again at every callback so that tasks submitted after the
//! listener started are known), and is reported `confirmed` only when the progress
//! call says one of those tasks ended the way the callback claims. Everything else (no
//! task with that URL, a task still running, one that ended the other way, a status
//! code that is neither 0 nor 1) is reported unconfirmed, with the reason.
//!
//! Only the status is confirmed: the callback's `fileID` and `failReason` are the
//! sender's word, reported as `unverified`.
//!
//! The receiver accepts `POST` with `Content-Type: application/json` only (415
//! otherwise, 405 for other methods), bodies of at most
//! [`CALLBACK_MAX_BYTES`] (413), bodies [`decode_callback`] reads (400 otherwise); it
//! answers 200 at once and confirms afterwards, [`CONFIRMING`] callbacks at a time
//! (their progress calls paced by the client's rate limit). A callback for a URL no
//! known task has is looked up once more a second later, without taking a
//! confirmation slot, then reported unconfirmed; it does not count toward `--max`. At
//! most [`MAX_CONNECTIONS`] connections are served at once, each with 10 s for its
//! headers and 10 s for its body.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use offline_proto::pan123::{decode_callback, Callback, CallbackStatus, CALLBACK_MAX_BYTES};
use provider_123pan::{TaskId, TaskRef, TaskStatus};

use crate::client::{Client, Conn, Pan123};
use serde_json::json;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use crate::exit;
use crate::output::Output;

/// How long a client may take to send its headers, and then its body.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Callbacks received and not yet confirmed, at most; more are answered 503.
const QUEUE: usize = 1024;
/// How many times a task that is still running is asked (the callback may come a
/// moment before the progress call shows the end), and the pause between.
const CONFIRM_ATTEMPTS: u32 = 3;
const CONFIRM_PAUSE: Duration = Duration::from_secs(1);
/// How many callbacks are confirmed at once.
const CONFIRMING: usize = 8;
/// How many callbacks may wait at once for their URL to appear in the journal; more
/// are reported unconfirmed at once.
const LOOKUPS: usize = 256;
/// How many connections the receiver serves at once; more wait in the backlog.
const MAX_CONNECTIONS: usize = 256;

#[derive(Args, Debug)]
pub(crate) struct CallbacksArgs {
    /// Where to listen, e.g. 127.0.0.1:8080 (port 0: a free port; the URL to pass as
    /// `--callback` is printed first).
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// A task to confirm callbacks against: `ID=URL`, the task and the source URL it
    /// was created for (repeatable). A bare `ID` has no URL to match a callback with.
    #[arg(long = "task", value_name = "ID=URL")]
    tasks: Vec<String>,
    /// The `--task` tasks are image-bed tasks.
    #[arg(long)]
    image: bool,
    /// A batch submitted with `add --from FILE --callback URL`: its journal gives each
    /// line's task and URL.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// The batch's journal (default: beside FILE).
    #[arg(long, value_name = "PATH", requires = "from")]
    journal: Option<PathBuf>,
    /// Stop after this many callbacks.
    #[arg(long, value_name = "N")]
    max: Option<u64>,
    // Stopping after SECS is the connection options' `--timeout` (`Conn::timeout`,
    // before or after the command): for `callbacks` it ends the listening with its
    // summary (exit 0), not with exit 9.
}

/// A task callbacks are matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    task: TaskRef,
    /// The source URL the task was created for, when known.
    url: Option<String>,
}

/// What the receiver hands to the confirming loop.
enum Received {
    Callback(Callback),
    /// A request that was refused, with its HTTP status and why.
    Refused(StatusCode, String),
}

/// The outcome of confirming one callback.
#[derive(Debug, Clone, PartialEq)]
struct Verdict {
    /// A known task was created for the callback's URL (only these count toward
    /// `--max`).
    matched: bool,
    confirmed: bool,
    /// The task the verdict is about, when one was asked.
    task: Option<TaskRef>,
    /// Its status as the progress call reported it.
    task_status: Option<TaskStatus>,
    reason: String,
}

fn parse_task(text: &str, image: bool) -> Result<Known, String> {
    let (id, url) = match text.split_once('=') {
        Some((id, url)) => (id, Some(url.trim().to_owned()).filter(|u| !u.is_empty())),
        None => (text, None),
    };
    let id: TaskId = id
        .parse()
        .map_err(|_| format!("--task {text:?}: expected ID=URL with a numeric 123pan task ID"))?;
    let task = if image {
        TaskRef::image(id)
    } else {
        TaskRef::cloud(id)
    };
    Ok(Known { task, url })
}

/// The submitted 123pan tasks of a batch's journal, with their source URLs.
fn journal_tasks(input: &std::path::Path, given: Option<&PathBuf>) -> Result<Vec<Known>, String> {
    let text = std::fs::read_to_string(input)
        .map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let path = given
        .cloned()
        .unwrap_or_else(|| crate::journal::default_path(input));
    if !path.exists() {
        return Ok(Vec::new());
    }
    // Read only: the journal belongs to `add --from`.
    let journal = crate::journal::Journal::open_read_only(&path)
        .map_err(|e| format!("cannot open the journal {}: {e}", path.display()))?;
    let entries = journal
        .read(&crate::journal::parse_input(&text))
        .map_err(|e| format!("journal read failed: {e}"))?;
    Ok(entries
        .into_iter()
        .flatten()
        .filter(|e| e.kind != "6pan")
        .filter_map(|e| {
            let id = TaskId(e.task.as_deref()?.parse().ok()?);
            let task = if e.kind == "image" {
                TaskRef::image(id)
            } else {
                TaskRef::cloud(id)
            };
            Some(Known {
                task,
                url: Some(e.source),
            })
        })
        .collect())
}

/// Runs `callbacks`.
pub(crate) async fn run(conn: &Conn, args: CallbacksArgs, out: &Output) -> u8 {
    let mut given = Vec::new();
    for t in &args.tasks {
        match parse_task(t, args.image) {
            Ok(k) => given.push(k),
            Err(message) => {
                out.error_line(&message, Some(t));
                return exit::USAGE;
            }
        }
    }
    let pan = match Client::connect(conn, out).await {
        Ok(Client::Pan123(p, _)) => p,
        Ok(Client::Pan6(..)) => return exit::USAGE,
        Err(code) => return code,
    };
    if let Some(from) = &args.from {
        // Fail early on an unreadable batch file; the journal may not exist yet.
        if let Err(message) = journal_tasks(from, args.journal.as_ref()) {
            out.error_line(&message, None);
            return exit::CONFIG;
        }
    }
    let listener = match TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            out.error_line(&format!("cannot listen on {}: {e}", args.listen), None);
            return exit::CONFIG;
        }
    };
    let addr = listener.local_addr().unwrap_or(args.listen);
    let url = format!("http://{addr}/");
    if out.is_json() {
        out.event(json!({"event": "listening", "addr": addr.to_string(), "url": url}));
    } else {
        outln!("listening for 123pan callbacks on {url} (pass it as --callback; stop with Ctrl-C)");
    }
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let server = tokio::spawn(serve(listener, tx));
    let deadline = conn
        .timeout
        .filter(|s| *s > 0)
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let (mut received, mut confirmed, mut unmatched) = (0u64, 0u64, 0u64);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let known = Arc::new(KnownTasks {
        given,
        from: args.from.clone(),
        journal: args.journal.clone(),
    });
    let slots = Arc::new(Semaphore::new(CONFIRMING));
    let lookups = Arc::new(Semaphore::new(LOOKUPS));
    let mut confirming = JoinSet::new();
    let why = loop {
        if args.max.is_some_and(|max| received >= max) {
            break "max";
        }
        let next = tokio::select! {
            next = rx.recv() => next,
            Some(done) = confirming.join_next(), if !confirming.is_empty() => {
                let Ok((cb, verdict, journal_error)): Result<(Callback, Verdict, Option<String>), _> = done else {
                    continue;
                };
                if let Some(message) = journal_error {
                    out.error_line(&message, None);
                }
                if verdict.matched {
                    received += 1;
                } else {
                    unmatched += 1;
                }
                confirmed += u64::from(verdict.confirmed);
                report(out, &cb, &verdict);
                continue;
            }
            () = sleep_until(deadline) => break "timeout",
            _ = &mut interrupted => break "interrupted",
        };
        match next {
            None => break "receiver_stopped",
            Some(Received::Refused(status, reason)) => report_refused(out, status, &reason),
            Some(Received::Callback(cb)) => {
                let (pan, known, slots) = (pan.clone(), known.clone(), slots.clone());
                let lookup = lookups.clone().try_acquire_owned().ok();
                confirming.spawn(async move {
                    let verdict = confirm(&pan, &known, &cb, &slots, lookup).await;
                    (cb, verdict.0, verdict.1)
                });
            }
        }
    };
    confirming.abort_all();
    server.abort();
    if out.is_json() {
        out.event(json!({
            "event": "stopped", "reason": why, "received": received, "confirmed": confirmed,
            "unmatched": unmatched,
        }));
    } else {
        outln!("stopped ({why}): {received} callback(s), {confirmed} confirmed; {unmatched} for no known task");
    }
    exit::OK
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The callback's status as a stable word for `--json` (its code is `status_code`).
fn callback_status_key(status: CallbackStatus) -> &'static str {
    match status {
        CallbackStatus::Succeeded => "succeeded",
        CallbackStatus::Failed => "failed",
        CallbackStatus::Unknown(_) => "unknown",
    }
}

/// The callback's status for humans, with the code when it means nothing.
fn callback_status_word(status: CallbackStatus) -> String {
    match status {
        CallbackStatus::Succeeded => "succeeded".to_owned(),
        CallbackStatus::Failed => "failed".to_owned(),
        CallbackStatus::Unknown(c) => format!("unknown ({c})"),
    }
}

/// The tasks callbacks are matched against: `--task`, and the journal of `--from`,
/// read again at every look-up.
struct KnownTasks {
    given: Vec<Known>,
    from: Option<PathBuf>,
    journal: Option<PathBuf>,
}

impl KnownTasks {
    /// Every known task now, and why the journal could not be read (if it could not).
    fn now(&self) -> (Vec<Known>, Option<String>) {
        let mut known = self.given.clone();
        let mut error = None;
        if let Some(from) = &self.from {
            match journal_tasks(from, self.journal.as_ref()) {
                Ok(tasks) => known.extend(tasks),
                Err(message) => error = Some(message),
            }
        }
        (known, error)
    }

    /// The known tasks created for `url`, sorted, each once.
    fn for_url(&self, url: &str) -> (Vec<TaskRef>, bool, Option<String>) {
        let (known, error) = self.now();
        let mut candidates: Vec<TaskRef> = known
            .iter()
            .filter(|k| k.url.as_deref() == Some(url))
            .map(|k| k.task)
            .collect();
        candidates.sort();
        candidates.dedup();
        (candidates, known.iter().any(|k| k.url.is_some()), error)
    }
}

/// Asks the tasks of the callback's URL until one has ended as the callback claims,
/// holding one of `slots` while it asks. A URL no known task has is looked up once
/// more after [`CONFIRM_PAUSE`] (a callback can arrive before `add --from` has written
/// the task's ID to its journal), while `lookup` (a permit of [`LOOKUPS`]) is held;
/// without one, at once. Returns the verdict and a journal read error, if any.
async fn confirm(
    pan: &Pan123,
    known: &KnownTasks,
    cb: &Callback,
    slots: &Semaphore,
    lookup: Option<tokio::sync::OwnedSemaphorePermit>,
) -> (Verdict, Option<String>) {
    let unconfirmed = |task: Option<TaskRef>, task_status, reason: String| Verdict {
        matched: task.is_some(),
        confirmed: false,
        task,
        task_status,
        reason,
    };
    let expected = match cb.status {
        CallbackStatus::Succeeded => TaskStatus::Succeeded,
        CallbackStatus::Failed => TaskStatus::Failed,
        CallbackStatus::Unknown(c) => {
            let reason = format!("status {c} is neither 0 (succeeded) nor 1 (failed)");
            let (candidates, _, error) = known.for_url(&cb.url);
            let verdict = Verdict {
                matched: !candidates.is_empty(),
                ..unconfirmed(None, None, reason)
            };
            return (verdict, error);
        }
    };
    let claimed = callback_status_word(cb.status);
    let (mut candidates, mut any_url, mut error) = known.for_url(&cb.url);
    if candidates.is_empty() && lookup.is_some() {
        tokio::time::sleep(CONFIRM_PAUSE).await;
        (candidates, any_url, error) = known.for_url(&cb.url);
    }
    drop(lookup);
    if candidates.is_empty() {
        let why = if any_url {
            "no known task was created for this URL"
        } else {
            "there is no task to check it against (give --task ID=URL or --from FILE)"
        };
        let reason = format!("the callback says {claimed}, but {why}");
        return (unconfirmed(None, None, reason), error);
    }
    let Ok(_slot) = slots.acquire().await else {
        return (unconfirmed(None, None, "stopping".to_owned()), error);
    };
    let mut last: (Option<TaskRef>, Option<TaskStatus>) = (Some(candidates[0]), None);
    let mut notes = Vec::new();
    for attempt in 1..=CONFIRM_ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(CONFIRM_PAUSE).await;
            (candidates, _, error) = known.for_url(&cb.url);
        }
        notes.clear();
        let mut running = false;
        for task in &candidates {
            match pan.progress(*task).await {
                Ok(p) if p.status == expected => {
                    let verdict = Verdict {
                        matched: true,
                        confirmed: true,
                        task: Some(*task),
                        task_status: Some(p.status),
                        reason: format!("task {} {}", task.id, p.status),
                    };
                    return (verdict, error);
                }
                Ok(p) => {
                    running |= !p.status.is_final();
                    last = (Some(*task), Some(p.status));
                    if p.status.is_final() {
                        notes.push(format!("task {} {}", task.id, p.status));
                    } else {
                        notes.push(format!(
                            "task {} is {} ({:.1}%)",
                            task.id, p.status, p.percent
                        ));
                    }
                }
                Err(e) => {
                    last = (Some(*task), None);
                    notes.push(format!("task {}: progress call failed: {e}", task.id));
                }
            }
        }
        if !running {
            break;
        }
    }
    let reason = format!("the callback says {claimed}, but {}", notes.join("; "));
    let verdict = Verdict {
        matched: true,
        ..unconfirmed(last.0, last.1, reason)
    };
    (verdict, error)
}

fn report(out: &Output, cb: &Callback, v: &Verdict) {
    if out.is_json() {
        out.event(json!({
            "event": "callback",
            "url": cb.url,
            "status": callback_status_key(cb.status),
            "status_code": cb.status.code(),
            "fail_reason": cb.fail_reason,
            "file_id": cb.file_id,
            "confirmed": v.confirmed,
            // The progress call confirms the status only.
            "unverified": ["file_id", "fail_reason"],
            "task": v.task.map(|t| t.id.to_string()),
            "kind": v.task.map(|t| t.kind.as_str()),
            "task_status": v.task_status.map(TaskStatus::as_str),
            "reason": v.reason,
        }));
    } else {
        let verdict = if v.confirmed {
            "confirmed"
        } else {
            "NOT confirmed"
        };
        let mut line = format!(
            "callback for {}: {}",
            crate::output::screen(&cb.url),
            callback_status_word(cb.status)
        );
        if !cb.fail_reason.is_empty() {
            line.push_str(&format!(
                " ({}, unverified)",
                crate::output::screen(&cb.fail_reason)
            ));
        }
        if let Some(id) = cb.file_id {
            line.push_str(&format!(" file ID {id} (unverified)"));
        }
        outln!("{line}; {verdict}: {}", crate::output::screen(&v.reason));
    }
}

fn report_refused(out: &Output, status: StatusCode, reason: &str) {
    if out.is_json() {
        out.event(json!({"event": "refused", "http_status": status.as_u16(), "reason": reason}));
    } else {
        errln!("refused a request ({status}): {reason}");
    }
}

async fn serve(listener: TcpListener, tx: mpsc::Sender<Received>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: back off, go on.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| {
                let tx = tx.clone();
                async move { Ok::<_, Infallible>(receive(req, &tx).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static(if status.is_success() {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        }),
    );
    response
}

/// Whether a `Content-Type` is JSON (`application/json`, parameters allowed).
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Answers one request: 200 for a callback (queued for confirmation), else the error.
async fn receive(req: Request<Incoming>, tx: &mpsc::Sender<Received>) -> Response<Full<Bytes>> {
    let refuse = |status: StatusCode, reason: String, body: &'static str| {
        // The queue is only full under a flood; the refusal is then not reported.
        let _ = tx.try_send(Received::Refused(status, reason));
        answer(status, body)
    };
    if req.method() != Method::POST {
        let reason = format!("method {} (callbacks are POSTed)", req.method());
        let mut response = refuse(StatusCode::METHOD_NOT_ALLOWED, reason, "POST only\n");
        response
            .headers_mut()
            .insert(ALLOW, http::HeaderValue::from_static("POST"));
        return response;
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !is_json(content_type) {
        let reason = format!("content type {content_type:?} is not application/json");
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, reason, "JSON only\n");
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body over {CALLBACK_MAX_BYTES} bytes"),
            "too large\n",
        )
    };
    if declared.is_some_and(|n| n > CALLBACK_MAX_BYTES as u64) {
        return too_large();
    }
    let read = Limited::new(req.into_body(), CALLBACK_MAX_BYTES).collect();
    let body = match tokio::time::timeout(READ_TIMEOUT, read).await {
        Err(_) => {
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                "body not sent in time".to_owned(),
                "timed out\n",
            )
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Ok(Err(e)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("body broken off: {e}"),
                "broken body\n",
            )
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    match decode_callback(&body) {
        Ok(cb) => match tx.try_send(Received::Callback(cb)) {
            Ok(()) => answer(StatusCode::OK, "{\"ok\":true}"),
            Err(_) => answer(StatusCode::SERVICE_UNAVAILABLE, "busy\n"),
        },
        Err(e) => refuse(
            StatusCode::BAD_REQUEST,
            format!("not a callback: {e}"),
            "not a 123pan callback\n",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_id_and_url() {
        let k = parse_task("100001=https://example.com/a?b=c", false).unwrap();
        assert_eq!(k.task, TaskRef::cloud(TaskId(100_001)));
        assert_eq!(k.url.as_deref(), Some("https://example.com/a?b=c"));
        let k = parse_task("7", true).unwrap();
        assert_eq!(k.task, TaskRef::image(TaskId(7)));
        assert_eq!(k.url, None);
        assert!(parse_task("x=https://example.com", false).is_err());
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/jsonx"));
        assert!(!is_json(""));
    }
}
