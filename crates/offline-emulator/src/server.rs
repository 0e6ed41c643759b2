//! The HTTP side: the accept loop, one hyper HTTP/1.1 connection per client, and the
//! routing of each request, under the injected faults, to the admin routes, a
//! description, or the provider whose path it is (6pan: `/v1/`, `/v2/`, `/wcs`;
//! 123pan: the rest).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::common::faults::Action;
use crate::common::fetch::cancelled;
use crate::common::GRACE;
use crate::hub::Hub;
use crate::{admin, pan123, sixpan};

/// How long a client may take to send headers.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections until the emulator stops, then lets open connections finish
/// (at most [`GRACE`]).
pub(crate) async fn serve(listener: TcpListener, hub: Arc<Hub>) {
    let mut shutdown = hub.env.shutdown.clone();
    let mut connections = JoinSet::new();
    // One permit per connection served: at the cap, new connections wait in the
    // kernel's backlog until one ends.
    let slots = Arc::new(Semaphore::new(hub.env.max_connections));
    loop {
        let slot = tokio::select! {
            () = cancelled(&mut shutdown) => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        tokio::select! {
            () = cancelled(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    while connections.try_join_next().is_some() {}
                    let hub = hub.clone();
                    connections.spawn(async move {
                        serve_connection(stream, peer, hub).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, go on.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(GRACE, drain).await.is_err() {
        connections.shutdown().await;
    }
    debug!("accept loop ended");
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, hub: Arc<Hub>) {
    let mut shutdown = hub.env.shutdown.clone();
    let service = service_fn(move |req| {
        let hub = hub.clone();
        async move { with_faults(&hub, req, peer).await }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        () = cancelled(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            if let Ok(Err(e)) = tokio::time::timeout(GRACE, conn.as_mut()).await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        }
    }
}

/// The connection is closed on purpose (an injected fault).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped (injected fault)")
    }
}

impl std::error::Error for Dropped {}

/// Answers `req` under the faults in force (the descriptions and the admin routes are
/// never faulted).
async fn with_faults(
    hub: &Arc<Hub>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let path = req.uri().path();
    if path.ends_with("openapi.json") {
        return Ok(handle(hub, req, peer).await);
    }
    if admin::is_admin_path(path) {
        return Ok(admin::handle(hub, req).await);
    }
    if path.starts_with(pan123::DOWNLOAD_PREFIX) {
        // The download URLs stand for the service's CDN, not its API: never faulted.
        return Ok(pan123::serve_download(&hub.pan123, &req).await);
    }
    let is_sixpan = sixpan::is_sixpan_path(path);
    let (action, latency) = hub.env.faults.next();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let answer = if is_sixpan {
        sixpan::fault_answer(action)
    } else {
        pan123::fault_answer(&hub.pan123, action)
    };
    if let Some(answer) = answer {
        return Ok(answer);
    }
    match action {
        Action::ServerError => {
            let mut r = Response::new(Full::new(Bytes::from_static(
                b"<html><body>503 Service Unavailable</body></html>",
            )));
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
            Ok(r)
        }
        Action::DropBefore => Err(Dropped),
        Action::DropAfter => {
            let _ = handle(hub, req, peer).await;
            Err(Dropped)
        }
        Action::Truncate => {
            let response = handle(hub, req, peer).await;
            let (parts, body) = response.into_parts();
            let bytes = http_body_util::BodyExt::collect(body)
                .await
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            // Half of the JSON, with an honest length: the client reads a body that
            // ends in the middle of a value.
            Ok(Response::from_parts(
                parts,
                Full::new(bytes.slice(..bytes.len() / 2)),
            ))
        }
        Action::Pass | Action::RateLimited | Action::TokenExpired => {
            Ok(handle(hub, req, peer).await)
        }
    }
}

/// Answers `req` with the description it names, or hands it to its provider.
async fn handle(hub: &Arc<Hub>, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    if reads && path == pan123::OPENAPI_PATH {
        return pan123::description();
    }
    if reads && path == sixpan::OPENAPI_PATH {
        return sixpan::description(req.headers());
    }
    if sixpan::is_sixpan_path(path) {
        return sixpan::handle(&hub.sixpan, req).await;
    }
    pan123::handle(&hub.pan123, req, peer).await
}
