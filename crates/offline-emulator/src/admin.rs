//! The emulator's own routes under `/_emulator/`, never faulted:
//!
//! - `GET /_emulator/stats`: the counters ([`crate::Stats`]), open to anyone;
//! - `GET /_emulator/faults`: the faults in force ([`crate::Faults`] as JSON), open;
//! - `PUT /_emulator/faults`: switches them, and only with the admin token.
//!
//! Every method but `GET` and `HEAD` under `/_emulator/` needs the admin token
//! ([`crate::RunningEmulator::admin_token`]) as `Authorization: Bearer <token>`;
//! without it, or with another one, the answer is HTTP 401 `{"error"}`. An unknown
//! path under `/_emulator/` is HTTP 404 `{"error"}`.

use bytes::Bytes;
use http::header::{ALLOW, AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::json;
use tracing::info;

use crate::common::faults::Faults;
use crate::common::{constant_time_eq, json_response};
use crate::hub::Hub;

/// Where the admin routes live.
const PREFIX: &str = "/_emulator/";
/// Where the faults are read (`GET`) and switched (`PUT`, a [`Faults`] as JSON).
const FAULTS_PATH: &str = "/_emulator/faults";
/// Where the counters are read.
const STATS_PATH: &str = "/_emulator/stats";
/// The largest body of `PUT /_emulator/faults`.
const FAULTS_BODY_LIMIT: usize = 64 * 1024;

/// Whether `path` is an admin route.
pub(crate) fn is_admin_path(path: &str) -> bool {
    path.starts_with(PREFIX) || path == PREFIX.trim_end_matches('/')
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, json!({ "error": message }).to_string())
}

/// Whether the headers carry the admin token as `Authorization: Bearer <token>`.
fn authorized(hub: &Hub, headers: &HeaderMap) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| {
            let (scheme, rest) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .is_some_and(|t| constant_time_eq(t.as_bytes(), hub.admin_token.as_bytes()))
}

/// Answers an admin route.
pub(crate) async fn handle(hub: &Hub, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD);
    if !read_only && !authorized(hub, req.headers()) {
        info!(method = %req.method(), path = %req.uri().path(), "admin call refused: no admin token");
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "this admin route needs the admin token: Authorization: Bearer <token>",
        );
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"offline-emulator admin\""),
        );
        return response;
    }
    match req.uri().path() {
        FAULTS_PATH => faults(hub, req).await,
        STATS_PATH if read_only => json_response(
            StatusCode::OK,
            serde_json::to_vec(&hub.stats()).unwrap_or_default(),
        ),
        STATS_PATH => {
            let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "use GET");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        other => error(
            StatusCode::NOT_FOUND,
            &format!("no such admin route: {other}"),
        ),
    }
}

/// `/_emulator/faults`: `PUT` switches the faults; every method answers those in force.
async fn faults(hub: &Hub, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() == Method::PUT {
        let body = match Limited::new(req.into_body(), FAULTS_BODY_LIMIT)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
        };
        match serde_json::from_slice::<Faults>(&body) {
            Ok(f) => hub.env.faults.set(f),
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        }
    }
    json_response(
        StatusCode::OK,
        serde_json::to_vec(&hub.env.faults.get()).unwrap_or_default(),
    )
}
