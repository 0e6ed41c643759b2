//! `offline login` (check the credentials; the token is cached) and `offline logout`
//! (delete the cached token).

use serde_json::json;

use crate::client::{guarded, refused_123, refused_6, report_6_with, Client, Conn};
use crate::exit;
use crate::output::Output;

/// What to tell a user whose 6pan login was refused for too many sessions.
const LOGOUT_OTHERS_HINT: &str =
    "too many sessions are logged in: `offline --provider 6pan login --logout-others` logs the other sessions out and logs in";

/// Runs `login`; for 6pan, `logout_others` logs the other sessions out when the login
/// is refused for too many of them (`LOGIN_USER_TOO_MUCH`), never otherwise.
pub(crate) async fn login(client: &Client, conn: &Conn, logout_others: bool, out: &Output) -> u8 {
    let result = match client {
        Client::Pan123(pan, transport) => guarded(transport, pan.ensure_token(), refused_123)
            .await
            .map(|_| ())
            .map_err(|e| out.error("login", &e)),
        Client::Pan6(pan, transport) => {
            let r = if logout_others {
                guarded(transport, pan.login_logging_out_others(), refused_6).await
            } else if conn.account.is_some() && conn.token.is_none() {
                guarded(transport, pan.login(), refused_6).await
            } else {
                guarded(transport, pan.user_info(), refused_6).await
            };
            r.map(|_| ()).map_err(|e| {
                let crowded = matches!(&e, provider_6pan::Error::Api(api)
                    if offline_proto::sixpan::auth::is_too_many_sessions(api));
                let hint = (crowded && !logout_others).then_some(LOGOUT_OTHERS_HINT);
                report_6_with(out, "login", &e, hint)
            })
        }
    };
    if let Err(code) = result {
        return code;
    }
    let who = conn
        .account
        .clone()
        .or_else(|| conn.client_id.clone())
        .unwrap_or_else(|| "(token)".to_owned());
    if out.is_json() {
        out.event(json!({"event": "login", "account": who, "ok": true}));
    } else {
        outln!("logged in as {who}");
    }
    exit::OK
}

/// Runs `logout`: deletes the cached token of these credentials, or every one.
pub(crate) fn logout(conn: &Conn, all: bool, out: &Output) -> u8 {
    let Some(dir) = crate::cache::dir() else {
        return out.fail(
            exit::CONFIG,
            "no cache directory (set OFFLINE_CACHE_DIR or HOME)",
            None,
        );
    };
    let removed = if all {
        let mut n = 0u64;
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "json") && std::fs::remove_file(&p).is_ok() {
                    n += 1;
                }
                if p.extension().is_some_and(|x| x == "lock") {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        n
    } else {
        let Some(entry) = crate::cache::Entry::for_conn(conn) else {
            return out.fail(
                exit::CONFIG,
                "no client ID or account to find the cached token by (or use --all)",
                None,
            );
        };
        match entry.remove() {
            Ok(existed) => u64::from(existed),
            Err(e) => {
                return out.fail(
                    exit::CONFIG,
                    &format!("cannot delete the cached token in {}: {e}", dir.display()),
                    None,
                )
            }
        }
    };
    if out.is_json() {
        out.event(json!({"event": "logout", "removed": removed}));
    } else if removed == 0 {
        outln!("no cached token to delete");
    } else {
        outln!("deleted {removed} cached token(s)");
    }
    exit::OK
}
