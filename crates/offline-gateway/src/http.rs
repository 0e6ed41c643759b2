//! The listener: the accept loop with its bounds, and the routes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path as UrlPath, State as AxumState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use offline_proto::aria2::{self, Gid};
use tokio::sync::{broadcast, Semaphore};
use tower::ServiceExt as _;
use tracing::{debug, warn};

use crate::store::WithDrive;
use crate::{Drive, Gateway, BODY_TIMEOUT, HEADER_TIMEOUT, MAX_CONNECTIONS};

/// How long to wait after an accept error (out of file descriptors) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts connections forever, [`MAX_CONNECTIONS`] at once, each bounded by
/// [`HEADER_TIMEOUT`].
pub(crate) async fn accept_loop(listener: tokio::net::TcpListener, router: Router) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off, go on.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // The peer's address, for the interfaces that serve loopback peers only.
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        tokio::spawn(async move {
            let _slot = slot;
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
            if let Err(e) = served {
                debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

impl<D: Drive> Gateway<D> {
    /// The routes: `POST /jsonrpc`, `GET /jsonrpc` upgraded to a WebSocket,
    /// `POST /callback/{gid}/{token}`, the web page (`GET /` and its assets), and the
    /// torrent-client interfaces (`/api/v2/…`, `/transmission/rpc`).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/jsonrpc", post(jsonrpc::<D>).get(websocket::<D>))
            .route("/callback/{gid}/{token}", post(callback::<D>))
            .merge(crate::web::routes::<D>())
            .merge(crate::clients::routes::<D>())
            .with_state(self.clone())
    }

    /// Answers one JSON-RPC body (HTTP or a WebSocket frame) and wakes the work up; a
    /// refused token is answered after a second, as aria2 does, to slow guessing.
    pub(crate) async fn answer(&self, body: &[u8], caller: aria2::Caller) -> aria2::Reply {
        let reply = {
            let mut store = self.store();
            let mut downloads = WithDrive {
                store: &mut store,
                drive: &self.shared.drive,
            };
            aria2::handle_body_from(body, &mut downloads, &self.shared.rpc, caller)
        };
        self.shared.wake.notify_one();
        self.shared.track.notify_one();
        if reply.unauthorized {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        reply
    }
}

/// A request body read whole within [`BODY_TIMEOUT`] and `limit` bytes.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, Response> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {limit} bytes, or broke off"),
        )
            .into_response()),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            format!("the body took over {} s", BODY_TIMEOUT.as_secs()),
        )
            .into_response()),
    }
}

/// `POST /jsonrpc`: one JSON-RPC body through [`aria2::handle_body_from`]; refused
/// when a browser's `Origin` names another host (a page elsewhere).
async fn jsonrpc<D: Drive>(
    AxumState(gateway): AxumState<Gateway<D>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !origin_allowed(&headers) {
        return (StatusCode::FORBIDDEN, "Origin not allowed").into_response();
    }
    let caller = crate::web::caller(&gateway, &headers);
    let body = match read_body(body, aria2::MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let reply = gateway.answer(&body, caller).await;
    let status = StatusCode::from_u16(reply.http_status).unwrap_or(StatusCode::OK);
    (
        status,
        [(header::CONTENT_TYPE, "application/json-rpc")],
        reply.body,
    )
        .into_response()
}

/// `POST /callback/{gid}/{token}`: a task-end callback from the drive. One that names
/// no task of this daemon (a wrong GID or token) is dropped at once (404); one that
/// does is queued for the tracker to confirm (204), or refused with 503 when the
/// queue is full (the drive sends it again).
async fn callback<D: Drive>(
    AxumState(gateway): AxumState<Gateway<D>>,
    UrlPath((gid, token)): UrlPath<(String, String)>,
    body: Body,
) -> Response {
    let Ok(gid) = gid.parse::<Gid>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if gateway.store().by_callback(gid, &token).is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let body = match read_body(body, offline_proto::pan123::CALLBACK_MAX_BYTES).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let Some(hint) = gateway.shared.drive.decode_callback(&body) else {
        return (StatusCode::BAD_REQUEST, "not a callback of this drive").into_response();
    };
    match gateway.shared.hints.try_send((gid, hint)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Whether a WebSocket's or a `POST /jsonrpc`'s `Origin` may drive the daemon: absent (not a browser), or
/// naming the host it connected to (`Host`), or a loopback host.
pub(crate) fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host_of = |s: &str| {
        let rest = s.split_once("://").map_or(s, |(_, r)| r);
        rest.split('/').next().unwrap_or("").to_ascii_lowercase()
    };
    let origin_host = host_of(origin);
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.to_ascii_lowercase());
    if own.as_deref() == Some(origin_host.as_str()) {
        return true;
    }
    let name = origin_host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(origin_host.as_str(), |(name, _)| name);
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// `GET /jsonrpc` as a WebSocket: each text frame is a JSON-RPC body answered in
/// order; state changes arrive as aria2 notifications.
async fn websocket<D: Drive>(
    AxumState(gateway): AxumState<Gateway<D>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers) {
        return (StatusCode::FORBIDDEN, "Origin not allowed").into_response();
    }
    let caller = crate::web::caller(&gateway, &headers);
    upgrade
        .max_message_size(aria2::MAX_BODY_BYTES)
        .on_upgrade(move |socket| session(gateway, socket, caller))
}

async fn session<D: Drive>(gateway: Gateway<D>, mut socket: WebSocket, caller: aria2::Caller) {
    let mut events = gateway.store().events.subscribe();
    loop {
        tokio::select! {
            message = socket.recv() => {
                let body = match message {
                    Some(Ok(Message::Text(text))) => Bytes::from(text.as_str().to_owned()),
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    Some(Ok(_)) => continue,
                };
                let reply = gateway.answer(&body, caller).await;
                if socket.send(Message::Text(reply.body.into())).await.is_err() {
                    return;
                }
            }
            event = events.recv() => match event {
                Ok(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                // A slow reader missed some: it goes on with the next ones.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let headers = |origin: Option<&str>, host: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, host.parse().unwrap());
            if let Some(o) = origin {
                h.insert(header::ORIGIN, o.parse().unwrap());
            }
            h
        };
        assert!(origin_allowed(&headers(None, "10.0.0.2:6800")));
        assert!(origin_allowed(&headers(
            Some("http://10.0.0.2:6800"),
            "10.0.0.2:6800"
        )));
        assert!(origin_allowed(&headers(
            Some("http://localhost:3000"),
            "127.0.0.1:6800"
        )));
        assert!(origin_allowed(&headers(
            Some("http://127.0.0.1"),
            "127.0.0.1:6800"
        )));
        assert!(!origin_allowed(&headers(
            Some("https://evil.example"),
            "127.0.0.1:6800"
        )));
        assert!(!origin_allowed(&headers(
            Some("http://localhost.evil.example"),
            "127.0.0.1:6800"
        )));
    }
}
