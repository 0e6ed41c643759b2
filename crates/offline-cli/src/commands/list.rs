//! `offline --provider 6pan list`: every task.

use crate::client::{next_guarded, refused_6, report_6, Client};
use crate::exit;
use crate::output::{percent_text, table, Output};

use super::watch::{status_word, task_json};

/// Runs `list`.
pub(crate) async fn run(client: &Client, out: &Output) -> u8 {
    let Client::Pan6(pan, transport) = client else {
        return exit::USAGE;
    };
    let mut rows = Vec::new();
    let mut stream = super::pan6::all_tasks(pan);
    while let Some(t) = next_guarded(transport, &mut stream, refused_6).await {
        match t {
            Ok(t) if out.is_json() => out.event(task_json("task", &t)),
            Ok(t) => rows.push(vec![
                t.identity.0.clone(),
                status_word(t.status).to_owned(),
                percent_text(t.progress.unwrap_or(0.0)),
                t.size.map(|s| s.to_string()).unwrap_or_default(),
                t.name.clone(),
                t.failure_reason().unwrap_or_default(),
            ]),
            Err(e) => return report_6(out, "list", &e),
        }
    }
    if !out.is_json() {
        outln!(
            "{}",
            table(&["task", "status", "%", "bytes", "name", "reason"], &rows)
        );
    }
    exit::OK
}
