//! `offline wait ID...` and `offline wait --from FILE`: watch tasks until they end.

use crate::cli::TaskArgs;
use crate::client::Client;
use crate::output::Output;

/// Runs `wait`.
pub(crate) async fn run(client: &Client, args: &TaskArgs, out: &Output) -> u8 {
    if let Some(from) = &args.from {
        return super::batch::wait_from(client, from, args.journal.as_ref(), out).await;
    }
    match client {
        Client::Pan123(pan, transport) => {
            let refs = match super::status::task_refs(args, out) {
                Ok(r) => r,
                Err(code) => return code,
            };
            let tasks: Vec<_> = refs
                .into_iter()
                .map(|t| (t, format!("task {}", t.id)))
                .collect();
            super::add::set_hint_123(&tasks);
            super::watch::watch_123(pan, transport, &tasks, out, true)
                .await
                .1
        }
        Client::Pan6(pan, transport) => super::pan6::wait(pan, transport, &args.tasks, out).await,
    }
}
