//! The torrent-client interfaces on the listener: qBittorrent's Web API under
//! `/api/v2/` and Transmission's RPC at `/transmission/rpc`, so that Sonarr, Radarr
//! and the other media apps take the drive for their download client. The protocols
//! are [`offline_proto::qbittorrent`]'s and [`offline_proto::transmission`]'s; this
//! module only reads the request (bounded by each protocol's body limit and
//! [`crate::BODY_TIMEOUT`]; a multipart form decoded with `multer`), hands it over with
//! the store, and sends the reply.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State as AxumState};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use offline_proto::{qbittorrent, transmission};

use crate::http::read_body;
use crate::store::WithDrive;
use crate::{Drive, Gateway};

/// The routes: `/api/v2/{*path}` and `/transmission/rpc`.
pub(crate) fn routes<D: Drive>() -> Router<Gateway<D>> {
    Router::new()
        .route("/api/v2/{*path}", any(qbittorrent_api::<D>))
        .route("/transmission/rpc", any(transmission_rpc::<D>))
}

fn text_of<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A form from a `multipart/form-data` body (its first
/// [`qbittorrent::MAX_FORM_FIELDS`] parts).
async fn multipart(body: Bytes, content_type: &str) -> Result<qbittorrent::Form, String> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| e.to_string())?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let mut form = qbittorrent::Form::default();
    while let Some(field) = parts.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        let bytes = field.bytes().await.map_err(|e| e.to_string())?;
        if !form.push_part(name, filename, bytes.to_vec()) {
            break;
        }
    }
    Ok(form)
}

/// `/api/v2/...`: one qBittorrent Web API call.
async fn qbittorrent_api<D: Drive>(
    AxumState(gateway): AxumState<Gateway<D>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // A peer without a session sends a login form at most: it cannot make the daemon
    // hold a torrent-sized body.
    let now = gateway.shared.started.elapsed().as_secs();
    let limit = {
        let state = gateway
            .shared
            .qbittorrent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        qbittorrent::body_limit(
            text_of(&headers, &header::COOKIE),
            peer.ip().is_loopback(),
            &state,
            &gateway.shared.clients,
            now,
        )
    };
    let body = match read_body(body, limit).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let content_type = text_of(&headers, &header::CONTENT_TYPE).unwrap_or_default();
    let form = if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        match multipart(body, content_type).await {
            Ok(form) => form,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("invalid multipart form: {e}"),
                )
                    .into_response()
            }
        }
    } else {
        qbittorrent::Form::from_urlencoded(&body)
    };
    let path = uri.path().strip_prefix("/api/v2/").unwrap_or_default();
    let new_sid = format!("{:032x}", rand::random::<u128>());
    let request = qbittorrent::Request {
        method: method.as_str(),
        path,
        query: uri.query().unwrap_or_default(),
        form: &form,
        cookie: text_of(&headers, &header::COOKIE),
        host: text_of(&headers, &header::HOST),
        origin: text_of(&headers, &header::ORIGIN),
        referer: text_of(&headers, &header::REFERER),
        peer_loopback: peer.ip().is_loopback(),
        peer: peer.ip(),
        now,
        new_sid: &new_sid,
    };
    let reply = {
        let mut store = gateway.store();
        let mut catalog = WithDrive {
            store: &mut store,
            drive: &gateway.shared.drive,
        };
        let mut state = gateway
            .shared
            .qbittorrent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        qbittorrent::handle(&request, &mut catalog, &mut state, &gateway.shared.clients)
    };
    gateway.shared.wake.notify_one();
    gateway.shared.track.notify_one();
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response();
    if let Some(cookie) = reply
        .set_cookie
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `/transmission/rpc`: one Transmission RPC body. Any other method than `POST`
/// gets the login and session checks (Sonarr's first `GET` learns the session id
/// from its 409) and then Transmission's 405.
async fn transmission_rpc<D: Drive>(
    AxumState(gateway): AxumState<Gateway<D>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let session = HeaderName::from_static("x-transmission-session-id");
    let head = transmission::Request {
        session_id: text_of(&headers, &session),
        authorization: text_of(&headers, &header::AUTHORIZATION),
        peer_loopback: peer.ip().is_loopback(),
        body: &[],
    };
    // The login and the session ID are checked before the body is read: a peer
    // without them cannot make the daemon hold a body.
    let shared = &gateway.shared;
    if let Some(refused) = transmission::refusal(&head, &shared.transmission, &shared.clients) {
        return transmission_reply(refused);
    }
    if method != Method::POST {
        return transmission_reply(transmission::method_not_allowed());
    }
    let body = match read_body(body, transmission::MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let request = transmission::Request {
        body: &body,
        ..head
    };
    let reply = {
        let mut store = gateway.store();
        let mut catalog = WithDrive {
            store: &mut store,
            drive: &shared.drive,
        };
        transmission::handle(
            &request,
            &mut catalog,
            &shared.transmission,
            &shared.clients,
        )
    };
    shared.wake.notify_one();
    shared.track.notify_one();
    transmission_reply(reply)
}

/// The HTTP response for a Transmission [`transmission::Reply`].
fn transmission_reply(reply: transmission::Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = (status, reply.body).into_response();
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
