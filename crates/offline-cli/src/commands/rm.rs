//! `offline --provider 6pan rm ID...`: delete tasks; unknown identities are "not found"
//! (exit 3), as in `wait`.

use serde_json::json;

use crate::client::{guarded, refused_6, report_6, Client};
use crate::exit;
use crate::output::Output;

/// Runs `rm`.
pub(crate) async fn run(client: &Client, ids: &[String], out: &Output) -> u8 {
    let Client::Pan6(pan, transport) = client else {
        return exit::USAGE;
    };
    let found = match super::pan6::find(pan, transport, ids).await {
        Ok(f) => f,
        Err(e) => return report_6(out, "rm", &e),
    };
    let missing = super::pan6::report_missing(out, ids, &found);
    let known: Vec<String> = ids
        .iter()
        .filter(|id| found.contains_key(*id))
        .cloned()
        .collect();
    if known.is_empty() {
        return missing;
    }
    match guarded(
        transport,
        pan.delete(&known.iter().map(|k| k.as_str().into()).collect::<Vec<_>>()),
        refused_6,
    )
    .await
    {
        Ok(n) => {
            if out.is_json() {
                out.event(json!({"event": "deleted", "count": n, "tasks": known}));
            } else {
                outln!("deleted {n} task(s)");
            }
            missing
        }
        Err(e) => report_6(out, "rm", &e).max(missing),
    }
}
