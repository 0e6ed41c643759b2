//! The body: one request or a batch in, the answer out, each in its own protocol.
//!
//! How the protocol of a request is told (as Transmission 4.1's
//! `tr_rpc_request_exec_impl` tells it, `libtransmission/rpcimpl.cc`): a request
//! object with a `jsonrpc` member is JSON-RPC 2.0 (and must say `"2.0"`); one without
//! is the bespoke protocol. Each is answered in its own protocol and names.
//!
//! The bespoke protocol (rpc-spec.md 4.0.6 §2; `tr_rpc_request_exec_json` in 4.0.6's
//! rpcimpl.cc): `{"method":…,"arguments":{…},"tag":N}` is answered
//! `{"arguments":{…},"result":"success","tag":N}`, or with the error's text as
//! `result` (and the arguments the method still answers, else `{}`). `tag` is echoed
//! when it is an integer (a boolean counts as 0 or 1, as `tr_variantGetInt` reads
//! it), else left out. No `method` is `"no method name"`; an unknown one
//! `"method name not recognized"` (4.0.6's texts).
//!
//! JSON-RPC 2.0 (rpc-spec.md 4.1 §2, and the JSON-RPC 2.0 specification):
//! `{"jsonrpc":"2.0","method":…,"params":{…},"id":…}` is answered
//! `{"id":…,"jsonrpc":"2.0","result":{…}}` or
//! `{"error":{"code":…,"data":{"error_string":…,"result":{…}},"message":…},"id":…,"jsonrpc":"2.0"}`
//! (`message` is the code's text, `error_string` the details when there are any,
//! `data.result` the arguments the method still answers). A request without `id` is a
//! notification: executed when its method changes something, never answered (HTTP
//! 204, no body). An `id` that is not a string, a number or null is
//! `-32600` "id type must be String, Number, or Null"; an unknown method `-32601`.
//! A batch (an array) is answered with the array of its answers, notifications left
//! out (204 when nothing is left); its elements must be JSON-RPC 2.0 objects
//! (`-32600` "request must be an Object" / "JSON-RPC version is not 2.0" each).
//!
//! Whatever the style, a body that is not JSON is the JSON-RPC 2.0 parse error
//! (`-32700`, with the parser's message as `error_string`), and JSON that is neither
//! an object nor an array `-32600` "request must be an Array or Object": no protocol
//! can be read from such a body, and this is what Transmission 4.1, the version that
//! speaks both, answers.
//!
//! Decided here, where Transmission leaves it open or does something unsafe:
//!
//! - `arguments`/`params` that are present, not `null` and not an object are refused
//!   (bespoke: `"arguments must be an object"`; JSON-RPC: `-32602` "params must be an
//!   object"). Transmission reads them as no arguments, which for `torrent-remove`
//!   means every torrent.
//! - The arguments go in `params` in JSON-RPC 2.0 and in `arguments` in the bespoke
//!   protocol (where `params` is read too when `arguments` is absent, as 4.1's
//!   `api-compat.cc` renames one into the other). A JSON-RPC 2.0 request with
//!   `arguments`, or a bespoke one with both, is refused (`-32602`): Transmission would
//!   read no arguments, and `torrent_remove` without `ids` removes every torrent.
//! - An empty batch is `-32600` (the JSON-RPC 2.0 specification's answer; Transmission
//!   4.1 never answers one). A batch is at most [`MAX_BATCH_LEN`] requests.
//! - An object with a member given twice is `-32600` "a member is given twice".
//!
//! The error codes (Transmission 4.1's `JsonRpc::Error`, `libtransmission/rpcimpl.h`)
//! this layer answers: `-32700`, `-32600`, `-32601`, `-32602` (also for every argument
//! refused by rule: wrong types, unknown or unsupported arguments, values this daemon
//! cannot honour), `-32603`, 3 "path is not absolute", 4 "unrecognized info", 5
//! "system error" (the store or the drive refused: the reason as `error_string`), 6
//! "file index out of range".

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::args::{bounded_elements, kind, Kind};
use super::json::{Out, Style};
use super::methods;
use super::{Config, Reply, State, MAX_BATCH_LEN};
use crate::catalog::Catalog;

/// What a method answers: its arguments (a JSON object's text), or why not.
pub(super) type Outcome = Result<String, Failure>;

/// Transmission 4.1's error codes, those this layer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Code {
    ParseError,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    InternalError,
    PathNotAbsolute,
    UnrecognizedInfo,
    SystemError,
    FileIndexOutOfRange,
}

impl Code {
    fn number(self) -> i64 {
        match self {
            Code::ParseError => -32700,
            Code::InvalidRequest => -32600,
            Code::MethodNotFound => -32601,
            Code::InvalidParams => -32602,
            Code::InternalError => -32603,
            Code::PathNotAbsolute => 3,
            Code::UnrecognizedInfo => 4,
            Code::SystemError => 5,
            Code::FileIndexOutOfRange => 6,
        }
    }

    /// The code's text (`JsonRpc::Error::to_string`).
    fn message(self) -> &'static str {
        match self {
            Code::ParseError => "Parse error",
            Code::InvalidRequest => "Invalid Request",
            Code::MethodNotFound => "Method not found",
            Code::InvalidParams => "Invalid params",
            Code::InternalError => "Internal error",
            Code::PathNotAbsolute => "path is not absolute",
            Code::UnrecognizedInfo => "unrecognized info",
            Code::SystemError => "system error",
            Code::FileIndexOutOfRange => "file index out of range",
        }
    }
}

/// A refused call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    pub(super) code: Code,
    /// The details (`error_string`; the bespoke `result`); empty: the code's text.
    pub(super) text: String,
    /// Arguments still answered (a JSON object's text).
    pub(super) result: Option<String>,
}

impl Failure {
    fn new(code: Code, text: impl Into<String>) -> Self {
        Self {
            code,
            text: text.into(),
            result: None,
        }
    }

    /// `-32602` with `text`.
    pub(super) fn params(text: impl Into<String>) -> Self {
        Self::new(Code::InvalidParams, text)
    }

    /// 3 with `text`.
    pub(super) fn path_not_absolute(text: impl Into<String>) -> Self {
        Self::new(Code::PathNotAbsolute, text)
    }

    /// 4, "unrecognized info".
    pub(super) fn unrecognized_info() -> Self {
        Self::new(Code::UnrecognizedInfo, "")
    }

    /// 5 with `text`.
    pub(super) fn system(text: impl Into<String>) -> Self {
        Self::new(Code::SystemError, text)
    }

    /// 6, "file index out of range".
    pub(super) fn file_index() -> Self {
        Self::new(Code::FileIndexOutOfRange, "")
    }

    /// `-32603` with `text`.
    pub(super) fn internal(text: impl Into<String>) -> Self {
        Self::new(Code::InternalError, text)
    }

    /// The same, with `result` (a JSON object's text) answered too.
    pub(super) fn with_result(mut self, result: String) -> Self {
        self.result = Some(result);
        self
    }

    /// The bespoke `result` string.
    fn legacy_text(&self) -> &str {
        if self.text.is_empty() {
            self.code.message()
        } else {
            &self.text
        }
    }
}

/// What a body is answered with: a JSON text, or nothing (HTTP 204).
pub(super) fn answer<C: Catalog + ?Sized>(
    body: &[u8],
    catalog: &mut C,
    state: &State,
    config: &Config,
) -> Reply {
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(_) => return json_reply(Some(refused(Code::ParseError, "the body is not UTF-8"))),
    };
    let raw: &RawValue = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(e) => return json_reply(Some(refused(Code::ParseError, &e.to_string()))),
    };
    let mut ctx = Ctx {
        catalog,
        state,
        config,
    };
    match kind(raw) {
        Kind::Object => json_reply(ctx.one(raw, false)),
        Kind::Array => {
            let Some(items) = bounded_elements(raw, MAX_BATCH_LEN) else {
                let text = format!("a batch holds at most {MAX_BATCH_LEN} requests");
                return json_reply(Some(refused(Code::InvalidRequest, &text)));
            };
            if items.is_empty() {
                return json_reply(Some(refused(Code::InvalidRequest, "")));
            }
            let answers: Vec<String> = items
                .into_iter()
                .filter_map(|item| match kind(item) {
                    Kind::Object => ctx.one(item, true),
                    _ => Some(refused(Code::InvalidRequest, "request must be an Object")),
                })
                .collect();
            if answers.is_empty() {
                return json_reply(None);
            }
            json_reply(Some(format!("[{}]", answers.join(","))))
        }
        _ => json_reply(Some(refused(
            Code::InvalidRequest,
            "request must be an Array or Object",
        ))),
    }
}

/// The HTTP reply for an answer (`None`: 204, as 4.1 answers notifications).
fn json_reply(answer: Option<String>) -> Reply {
    match answer {
        Some(body) => Reply {
            status: 200,
            headers: vec![("Content-Type", "application/json; charset=UTF-8".into())],
            body: body.into_bytes(),
        },
        None => Reply {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        },
    }
}

/// A JSON-RPC 2.0 error answer with a null `id`.
fn refused(code: Code, text: &str) -> String {
    jsonrpc_answer("null", Err(Failure::new(code, text)))
}

/// The members of a request object this layer reads (others are ignored, as
/// Transmission ignores them).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    arguments: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    tag: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
}

/// A member that is present, `null` included.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

struct Ctx<'c, C: ?Sized> {
    catalog: &'c mut C,
    state: &'c State,
    config: &'c Config,
}

impl<C: Catalog + ?Sized> Ctx<'_, C> {
    /// The answer to one request object (`None` for a notification).
    fn one(&mut self, raw: &RawValue, in_batch: bool) -> Option<String> {
        let Ok(env) = serde_json::from_str::<Envelope<'_>>(raw.get()) else {
            return Some(refused(Code::InvalidRequest, "a member is given twice"));
        };
        match env.jsonrpc {
            Some(version) if version.get() == "\"2.0\"" => self.jsonrpc(&env),
            Some(_) => Some(refused(Code::InvalidRequest, "JSON-RPC version is not 2.0")),
            None if in_batch => Some(refused(Code::InvalidRequest, "JSON-RPC version is not 2.0")),
            None => Some(self.legacy(&env)),
        }
    }

    fn legacy(&mut self, env: &Envelope<'_>) -> String {
        let tag = env.tag.and_then(|t| match t.get() {
            "true" => Some(1),
            "false" => Some(0),
            text => text.parse::<i64>().ok(),
        });
        let name = env
            .method
            .filter(|m| kind(m) == Kind::String)
            .and_then(|m| serde_json::from_str::<String>(m.get()).ok());
        let outcome = match name {
            None => Err(Failure::new(Code::MethodNotFound, "no method name")),
            Some(name) => match methods::find(Style::Legacy, &name) {
                None => Err(Failure::new(
                    Code::MethodNotFound,
                    "method name not recognized",
                )),
                Some(method) => match (env.arguments, env.params) {
                    (Some(_), Some(_)) => Err(Failure::params(
                        "arguments and params are both given: send arguments",
                    )),
                    (arguments, params) => methods::run(
                        method,
                        arguments.or(params),
                        Style::Legacy,
                        self.catalog,
                        self.state,
                        self.config,
                    ),
                },
            },
        };
        legacy_answer(tag, outcome)
    }

    fn jsonrpc(&mut self, env: &Envelope<'_>) -> Option<String> {
        let id = match env.id {
            Some(id) if matches!(kind(id), Kind::String | Kind::Number | Kind::Null) => {
                Some(id.get())
            }
            Some(_) => {
                return Some(refused(
                    Code::InvalidRequest,
                    "id type must be String, Number, or Null",
                ))
            }
            None => None,
        };
        let name = env
            .method
            .filter(|m| kind(m) == Kind::String)
            .and_then(|m| serde_json::from_str::<String>(m.get()).ok())
            .unwrap_or_default();
        let Some(method) = methods::find(Style::JsonRpc, &name) else {
            return id.map(|id| jsonrpc_answer(id, Err(Failure::new(Code::MethodNotFound, ""))));
        };
        if id.is_none() && !methods::changes_something(method) {
            return None;
        }
        let outcome = if env.arguments.is_some() {
            Err(Failure::params(
                "JSON-RPC 2.0 takes params, not arguments: send params",
            ))
        } else {
            methods::run(
                method,
                env.params,
                Style::JsonRpc,
                self.catalog,
                self.state,
                self.config,
            )
        };
        id.map(|id| jsonrpc_answer(id, outcome))
    }
}

/// A bespoke answer: keys sorted (`arguments`, `result`, `tag`).
fn legacy_answer(tag: Option<i64>, outcome: Outcome) -> String {
    let mut out = Out::new(Style::Legacy);
    let (arguments, result) = match &outcome {
        Ok(arguments) => (arguments.as_str(), "success"),
        Err(failure) => (
            failure.result.as_deref().unwrap_or("{}"),
            failure.legacy_text(),
        ),
    };
    out.raw("{\"arguments\":");
    out.raw(arguments);
    out.raw(",\"result\":");
    out.string(result);
    if let Some(tag) = tag {
        out.raw(",\"tag\":");
        out.int(tag);
    }
    out.byte(b'}');
    out.into_string()
}

/// A JSON-RPC 2.0 answer: keys sorted (`error`/`id`/`jsonrpc`/`result`).
fn jsonrpc_answer(id: &str, outcome: Outcome) -> String {
    let mut out = Out::new(Style::JsonRpc);
    match outcome {
        Ok(result) => {
            out.raw("{\"id\":");
            out.raw(id);
            out.raw(",\"jsonrpc\":\"2.0\",\"result\":");
            out.raw(&result);
            out.byte(b'}');
        }
        Err(failure) => {
            let message = failure.code.message();
            out.raw("{\"error\":{\"code\":");
            out.int(failure.code.number());
            let error_string = (!failure.text.is_empty()
                && failure.text != message
                && failure.code != Code::MethodNotFound)
                .then_some(failure.text.as_str());
            let result = failure.result.as_deref().filter(|r| *r != "{}");
            if error_string.is_some() || result.is_some() {
                out.raw(",\"data\":{");
                let mut first = true;
                if let Some(text) = error_string {
                    out.key(&mut first, "error_string");
                    out.string(text);
                }
                if let Some(result) = result {
                    out.key(&mut first, "result");
                    out.raw(result);
                }
                out.byte(b'}');
            }
            out.raw(",\"message\":");
            out.string(message);
            out.raw("},\"id\":");
            out.raw(id);
            out.raw(",\"jsonrpc\":\"2.0\"}");
        }
    }
    out.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_in_each_style() {
        assert_eq!(
            legacy_answer(Some(7), Ok("{}".into())),
            r#"{"arguments":{},"result":"success","tag":7}"#
        );
        assert_eq!(
            legacy_answer(None, Err(Failure::unrecognized_info())),
            r#"{"arguments":{},"result":"unrecognized info"}"#
        );
        assert_eq!(
            jsonrpc_answer("\"a\"", Err(Failure::params("no fields specified"))),
            r#"{"error":{"code":-32602,"data":{"error_string":"no fields specified"},"message":"Invalid params"},"id":"a","jsonrpc":"2.0"}"#
        );
        assert_eq!(
            jsonrpc_answer(
                "1",
                Err(Failure::new(Code::MethodNotFound, "no method name"))
            ),
            r#"{"error":{"code":-32601,"message":"Method not found"},"id":1,"jsonrpc":"2.0"}"#
        );
    }
}
