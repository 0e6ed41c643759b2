//! The HTTP rules before a body is read: who may call, and the session id (Transmission
//! 4.1.0's `handle_request`, `libtransmission/rpc-server.cc`; 4.0.6's is the same but
//! for the 409's wording and its version header).
//!
//! 1. With a [`Login`]: the `Authorization` header must be `Basic base64(user:pass)`
//!    with its user name and password (both compared in constant time; the password
//!    may contain `:`, split at the first one as `tr_strv_sep` does). Else 401,
//!    `WWW-Authenticate: Basic realm="Transmission"`, body `<h1>401: Unauthorized</h1>`.
//!    Without a login, only a loopback peer is served (Transmission's default
//!    whitelist is `127.0.0.1,::1`); another is 403 `<h1>403: Forbidden</h1>`. (Older
//!    Transmissions wrote "Unauthorized IP Address." in that body; 4.0's
//!    "use generic error http error messages" change dropped it, so 4.0.6 and 4.1 send
//!    the bare `<h1>`.)
//! 2. The `X-Transmission-Session-Id` header must be the current session id, else 409
//!    with the header `X-Transmission-Session-Id: <id>`, `X-Transmission-Rpc-Version:
//!    6.0.0` (rpc-spec.md 4.1 §5: this tells clients that speak both protocols that
//!    JSON-RPC 2.0 is spoken here), `Access-Control-Expose-Headers` naming both, and
//!    Transmission's explanation as the body.
//!
//! Not copied: Transmission answers every request with `Access-Control-Allow-Origin:
//! *`, which lets any web page read the 409's session id and then drive the RPC of a
//! Transmission without a password from the user's own browser. This layer sends no
//! CORS header, so a browser keeps other origins from reading any answer (and an
//! `OPTIONS` preflight, which Transmission answers 200 before any check, gets the
//! same checks as any request here: no cross-origin page is let in).

use crate::secret::constant_time_eq;

use super::{
    Config, Login, Reply, Request, State, JSONRPC_RPC_VERSION_SEMVER, RPC_VERSION_HEADER,
    SESSION_HEADER,
};

/// The realm of the `WWW-Authenticate` challenge (`MY_REALM` in rpc-server.cc).
pub(super) const REALM: &str = "Transmission";

/// The 401, 403 or 409 to send instead of executing `request`, if any.
pub(super) fn refusal(request: &Request<'_>, state: &State, config: &Config) -> Option<Reply> {
    match &config.login {
        Some(login) if !authorized(login, request.authorization) => {
            let mut reply = simple(401, "Unauthorized", "");
            reply
                .headers
                .push(("WWW-Authenticate", format!("Basic realm=\"{REALM}\"")));
            return Some(reply);
        }
        Some(_) => {}
        None if !request.peer_loopback => return Some(simple(403, "Forbidden", "")),
        None => {}
    }
    let current = state.session_id();
    let matches = request
        .session_id
        .is_some_and(|given| constant_time_eq(given.as_bytes(), current.as_bytes()));
    if matches {
        return None;
    }
    let body = format!(
        "<p>Your request had an invalid session_id header.</p>\
         <p>To fix this, follow these steps:\
         <ol><li> When reading a response, get its {SESSION_HEADER} header and remember it\
         <li> Add the updated header to your outgoing requests\
         <li> When you get this 409 error message, resend your request with the updated header\
         </ol></p>\
         <p>This requirement has been added to help prevent \
         <a href=\"https://en.wikipedia.org/wiki/Cross-site_request_forgery\">CSRF</a> \
         attacks.</p>\
         <p><code>{SESSION_HEADER}: {current}</code></p>"
    );
    let mut reply = simple(409, "Conflict", &body);
    reply.headers.push((SESSION_HEADER, current.to_owned()));
    reply
        .headers
        .push((RPC_VERSION_HEADER, JSONRPC_RPC_VERSION_SEMVER.to_owned()));
    reply.headers.push((
        "Access-Control-Expose-Headers",
        format!("{SESSION_HEADER}, {RPC_VERSION_HEADER}"),
    ));
    Some(reply)
}

/// Transmission's `send_simple_response`: `<h1>CODE: REASON</h1>` and `text`, as
/// HTML (libevent's default type, ISO-8859-1; every byte here is ASCII but the
/// session id's, which the daemon makes ASCII).
pub(super) fn simple(status: u16, reason: &str, text: &str) -> Reply {
    Reply {
        status,
        headers: vec![("Content-Type", "text/html; charset=ISO-8859-1".into())],
        body: format!("<h1>{status}: {reason}</h1>{text}").into_bytes(),
    }
}

/// Whether `authorization` carries `login`'s Basic credentials
/// ([`WebLogin::accepts`](crate::aria2::WebLogin::accepts)).
fn authorized(login: &Login, authorization: Option<&str>) -> bool {
    login.accepts(authorization.map(str::as_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use base64::Engine as _;

    fn basic(pair: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    #[test]
    fn basic_credentials() {
        let login = Login {
            username: "admin".into(),
            password: Secret::new("pw:with colon"),
        };
        assert!(authorized(&login, Some(&basic("admin:pw:with colon"))));
        assert!(authorized(
            &login,
            Some(&basic("admin:pw:with colon").replace("Basic", "basic"))
        ));
        assert!(!authorized(&login, None));
        assert!(!authorized(&login, Some(&basic("admin:pw"))));
        assert!(!authorized(&login, Some(&basic("root:pw:with colon"))));
        assert!(!authorized(&login, Some(&basic("admin"))));
        assert!(!authorized(&login, Some("Bearer abc")));
        assert!(!authorized(&login, Some("Basic !!!")));
    }
}
