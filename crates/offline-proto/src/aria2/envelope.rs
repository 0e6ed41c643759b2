//! The JSON-RPC envelope: request bodies in, response bodies out.
//!
//! What aria2 does with an envelope is in its manual (aria2 manual, RPC interface:
//! "based on JSON-RPC 2.0", "Batch requests as described in the JSON-RPC 2.0
//! Specification", "Error Handling": a JSON object with `code` and `message`) and, for
//! the details the manual leaves out, in how aria2 itself answers, which this module
//! matches:
//!
//! - a body that is not JSON: `-32700 "Parse error."`, `id` null;
//! - JSON that is neither an object nor an array: `-32600 "Invalid Request."`, `id`
//!   null;
//! - an object without `id`: `-32600`, `id` null (aria2 takes no client
//!   notifications); `"id": null` is an `id` and is echoed;
//! - `method` not a string: `-32600` with the `id`;
//! - `params` present but not an array: `-32602 "Invalid params."` with the `id`
//!   (named parameters are not supported); absent or `null` reads as `[]`;
//! - `jsonrpc` is not looked at: a 1.x style object (`id`, `method`, `params` only)
//!   is served like a 2.0 one, and the answer says `"jsonrpc":"2.0"`;
//! - in a batch, elements that are not objects are skipped (no answer for them), and
//!   an empty batch is answered with `[]`;
//! - errors raised by a method are code `1` with aria2's message (see
//!   [`RpcError::aria2`]); aria2 answers an unknown method that way too ("No such
//!   method: …"), not with `-32601`.
//!
//! Two bounds of this layer's own, checked before anything is executed:
//! [`MAX_BODY_BYTES`] and [`MAX_BATCH_LEN`]; either refuses the whole body with
//! `-32600` and a message that names the bound.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use serde_json::Value;

/// The largest request body accepted, in bytes (1 MiB). A torrent sent to
/// `aria2.addTorrent` is base64 inside the body, so this also bounds torrents (to
/// about 768 KiB).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The most calls one body may carry: the elements of a batch array, and the calls of
/// one `system.multicall`.
pub const MAX_BATCH_LEN: usize = 1000;

/// One call read from the envelope: its `id` (any JSON value, echoed in the answer),
/// its `method` and its positional `params` (the `token:` secret, when sent, is still
/// the first of them).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The `id`, as sent.
    pub id: Value,
    /// The method name, e.g. `aria2.addUri`.
    pub method: String,
    /// The positional parameters (`[]` when absent).
    pub params: Vec<Value>,
}

/// A JSON-RPC error object, `{"code":…,"message":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RpcError {
    /// The code: `1` for everything a method refuses, else one of the standard
    /// JSON-RPC 2.0 codes below.
    pub code: i64,
    /// The message.
    pub message: String,
}

impl RpcError {
    /// The code of every error a method raises (aria2 manual, RPC interface, Error
    /// Handling: over XML-RPC "`faultCode=1`"; aria2 uses the same `1` over JSON-RPC).
    pub const ARIA2: i64 = 1;
    /// JSON-RPC 2.0: the body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON-RPC 2.0: the JSON is not a request (and this layer's bounds).
    pub const INVALID_REQUEST: i64 = -32600;
    /// JSON-RPC 2.0: `params` is not an array.
    pub const INVALID_PARAMS: i64 = -32602;

    /// An error raised by a method: code [`RpcError::ARIA2`] and `message`.
    pub fn aria2(message: impl Into<String>) -> Self {
        Self {
            code: Self::ARIA2,
            message: message.into(),
        }
    }

    fn parse_error() -> Self {
        Self {
            code: Self::PARSE_ERROR,
            message: "Parse error.".into(),
        }
    }

    fn invalid_request(message: impl Into<String>) -> Self {
        Self {
            code: Self::INVALID_REQUEST,
            message: message.into(),
        }
    }
}

/// One answer: the `id` of its request and a result or an error.
///
/// Serializes exactly as aria2 writes it, keys in this order:
/// `{"id":…,"jsonrpc":"2.0","result":…}` or `{"id":…,"jsonrpc":"2.0","error":{"code":…,"message":…}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The request's `id` (null when it could not be read).
    pub id: Value,
    /// The result, or the error.
    pub result: Result<Value, RpcError>,
    /// Whether a secret token was missing or wrong (in a `system.multicall`: in any of
    /// its calls). aria2 holds such answers back for a while to slow guessing (aria2
    /// manual, RPC interface, RPC authorization secret token: "designed to take at
    /// least a certain amount of time"); a daemon should delay them too.
    pub unauthorized: bool,
}

impl Response {
    /// A response to a request whose `id` could not be read.
    fn refused(error: RpcError) -> Self {
        Self {
            id: Value::Null,
            result: Err(error),
            unauthorized: false,
        }
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a JSON value always serializes")
    }

    /// The HTTP status aria2 sends with this answer over HTTP: 200 for a result, 400
    /// for code 1 and `-32600`, 500 for the others. (A batch is always sent with 200.)
    pub fn http_status(&self) -> u16 {
        match &self.result {
            Ok(_) => 200,
            Err(e) if e.code == RpcError::ARIA2 || e.code == RpcError::INVALID_REQUEST => 400,
            Err(_) => 500,
        }
    }
}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Response", 3)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("jsonrpc", "2.0")?;
        match &self.result {
            Ok(result) => s.serialize_field("result", result)?,
            Err(error) => s.serialize_field("error", error)?,
        }
        s.end()
    }
}

/// One element of a body: a request to execute, or the answer to send for an
/// element that is not a valid request.
pub type Call = Result<Request, Response>;

/// A parsed body.
#[derive(Debug, Clone, PartialEq)]
pub enum Envelope {
    /// A single request object.
    Single(Call),
    /// A batch array: its object elements in order (at most [`MAX_BATCH_LEN`]).
    Batch(Vec<Call>),
}

/// Reads a request body (HTTP `POST /jsonrpc`, or a WebSocket text frame).
///
/// # Errors
///
/// The one answer to send instead of executing anything: the body is over
/// [`MAX_BODY_BYTES`] or a batch over [`MAX_BATCH_LEN`] (`-32600`), the body is not
/// JSON (`-32700`), or it is neither an object nor an array (`-32600`).
pub fn parse(body: &[u8]) -> Result<Envelope, Response> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Response::refused(RpcError::invalid_request(format!(
            "Invalid Request: the body is over {MAX_BODY_BYTES} bytes."
        ))));
    }
    let json: Value =
        serde_json::from_slice(body).map_err(|_| Response::refused(RpcError::parse_error()))?;
    match json {
        Value::Object(_) => Ok(Envelope::Single(call(json))),
        Value::Array(items) if items.len() > MAX_BATCH_LEN => {
            Err(Response::refused(RpcError::invalid_request(format!(
                "Invalid Request: a batch is at most {MAX_BATCH_LEN} calls."
            ))))
        }
        Value::Array(items) => Ok(Envelope::Batch(
            items
                .into_iter()
                .filter(Value::is_object)
                .map(call)
                .collect(),
        )),
        _ => Err(Response::refused(RpcError::invalid_request(
            "Invalid Request.",
        ))),
    }
}

/// One request object.
fn call(json: Value) -> Call {
    let Value::Object(mut object) = json else {
        return Err(Response::refused(RpcError::invalid_request(
            "Invalid Request.",
        )));
    };
    let Some(id) = object.remove("id") else {
        return Err(Response::refused(RpcError::invalid_request(
            "Invalid Request.",
        )));
    };
    let answer = |error| Response {
        id: id.clone(),
        result: Err(error),
        unauthorized: false,
    };
    let Some(Value::String(method)) = object.remove("method") else {
        return Err(answer(RpcError::invalid_request("Invalid Request.")));
    };
    let params = match object.remove("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(params)) => params,
        Some(_) => {
            return Err(answer(RpcError {
                code: RpcError::INVALID_PARAMS,
                message: "Invalid params.".into(),
            }))
        }
    };
    Ok(Request { id, method, params })
}
