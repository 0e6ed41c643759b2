//! `offline status ID...` (and `--from FILE`, see [`super::batch`]).

use provider_123pan::{TaskId, TaskRef};

use crate::cli::{Provider, TaskArgs};
use crate::client::{guarded, refused_123, Client};
use crate::exit;
use crate::output::Output;

/// The options of `status` and `wait` that `provider` cannot honour.
pub(crate) fn check(args: &TaskArgs, provider: Provider) -> Vec<String> {
    let mut problems = Vec::new();
    if provider == Provider::Pan6 && args.image {
        problems.push("--image is 123pan's image bed; 6pan has none".to_owned());
    }
    if args.from.is_some() && args.image {
        problems.push(
            "--image with --from: the journal records each line's kind, drop --image".to_owned(),
        );
    }
    problems
}

/// The 123pan tasks named on the command line, or the exit code of a bad ID.
pub(crate) fn task_refs(args: &TaskArgs, out: &Output) -> Result<Vec<TaskRef>, u8> {
    args.tasks
        .iter()
        .map(|s| {
            let id: TaskId = s.parse().map_err(|_| {
                out.fail(
                    exit::USAGE,
                    &format!("{s:?} is not a 123pan task ID (a number)"),
                    Some(s),
                )
            })?;
            Ok(if args.image {
                TaskRef::image(id)
            } else {
                TaskRef::cloud(id)
            })
        })
        .collect()
}

/// How many progress calls `status` has under way at once.
const STATUS_CONCURRENCY: usize = 8;

/// Runs `status` with task IDs.
pub(crate) async fn run(client: &Client, args: &TaskArgs, out: &Output) -> u8 {
    match client {
        Client::Pan123(pan, transport) => {
            let refs = match task_refs(args, out) {
                Ok(r) => r,
                Err(code) => return code,
            };
            // Asked concurrently (8 at a time, paced by the client's rate limit),
            // printed in the order given.
            use futures_util::StreamExt as _;
            let mut answers = futures_util::stream::iter(refs)
                .map(|task| async move {
                    (
                        task,
                        guarded(transport, pan.progress(task), refused_123).await,
                    )
                })
                .buffered(STATUS_CONCURRENCY);
            let mut code = exit::OK;
            while let Some((task, answer)) = answers.next().await {
                match answer {
                    Ok(p) => out.status_line(&p),
                    Err(e) => code = code.max(out.error(&format!("task {}", task.id), &e)),
                }
            }
            code
        }
        Client::Pan6(pan, transport) => super::pan6::status(pan, transport, &args.tasks, out).await,
    }
}
