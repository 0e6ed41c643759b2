//! The 6pan side of `add`, `status` and `wait`, and the task lookup `rm` and `wait`
//! share.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt;
use provider_6pan::{OfflineTask, Selection};
use serde_json::json;

use crate::client::{guarded, next_guarded, refused_6, report_6, Client, SixPan, Transport};
use crate::exit;
use crate::output::{percent_text, Output};

use super::add::AddArgs;
use super::watch::{status_word, task_json, watch_6};

/// Whether `source` is a torrent file on this machine.
pub(crate) fn source_is_torrent_file(source: &str) -> bool {
    source.to_ascii_lowercase().ends_with(".torrent") && std::path::Path::new(source).is_file()
}

/// The selection `--select` asks for.
pub(crate) fn selection(args: &AddArgs) -> Selection {
    if args.select.is_empty() {
        Selection::All
    } else {
        Selection::Globs(args.select.clone())
    }
}

/// `add` for 6pan.
pub(crate) async fn add(client: &Client, args: &AddArgs, out: &Output) -> u8 {
    let Client::Pan6(pan, transport) = client else {
        return exit::USAGE;
    };
    let path = args.path.clone().unwrap_or_else(|| "/".to_owned());
    let selection = selection(args);
    let mut code = exit::OK;
    let mut created: Vec<OfflineTask> = Vec::new();
    let mut with_selection = BTreeSet::new();
    for source in &args.urls {
        let results = if source_is_torrent_file(source) {
            match guarded(transport, pan.upload_torrent(source), refused_6).await {
                Ok(up) => {
                    if out.is_json() {
                        out.event(json!({"event": "uploaded", "file": source, "etag": up.etag.as_str(), "instant": up.instant, "files": up.result.files.len()}));
                    } else {
                        let how = if up.instant {
                            "instant upload (the drive knew its etag)"
                        } else {
                            "uploaded"
                        };
                        outln!(
                            "{source}: {how}, etag {}, {} files",
                            up.etag,
                            up.result.files.len()
                        );
                    }
                    Ok(vec![up.result])
                }
                Err(e) => Err(e),
            }
        } else {
            guarded(transport, pan.parse_urls(&[source.as_str()]), refused_6).await
        };
        let results = match results {
            Ok(r) => r,
            Err(e) => {
                code = code.max(report_6(out, source, &e));
                continue;
            }
        };
        for result in results {
            if result.files.is_empty() && selection != Selection::All {
                code = code.max(out.fail(
                    exit::USAGE,
                    &format!("--select needs a source with files (a torrent or magnet); {source} has none"),
                    Some(source),
                ));
                continue;
            }
            match guarded(
                transport,
                pan.add_parsed(&result, &selection, &path),
                refused_6,
            )
            .await
            {
                Ok(tasks) => {
                    for t in tasks {
                        if selection != Selection::All {
                            with_selection.insert(t.identity.0.clone());
                        }
                        if out.is_json() {
                            out.event(task_json("created", &t));
                        } else {
                            outln!(
                                "created task {} ({}) in {}",
                                t.identity,
                                crate::output::screen(&t.name),
                                crate::output::screen(&path)
                            );
                        }
                        created.push(t);
                        let ids: Vec<&str> = created.iter().map(|t| t.identity.as_str()).collect();
                        crate::interrupt::set_hint(format!(
                            "offline --provider 6pan status {}",
                            ids.join(" ")
                        ));
                    }
                }
                Err(e) => code = code.max(report_6(out, source, &e)),
            }
        }
    }
    if args.wait && !created.is_empty() {
        let ids = created
            .iter()
            .map(|t| (t.identity.0.clone(), t.name.clone()))
            .collect();
        code = code.max(watch_6(pan, transport, ids, &with_selection, out).await);
    }
    code
}

/// Every task in the list whose identity is in `ids`.
pub(crate) async fn find(
    pan: &SixPan,
    transport: &Transport,
    ids: &[String],
) -> Result<BTreeMap<String, OfflineTask>, provider_6pan::Error> {
    let mut found = BTreeMap::new();
    let mut stream = pan.tasks();
    while let Some(t) = next_guarded(transport, &mut stream, refused_6).await {
        let t = t?;
        if ids.contains(&t.identity.0) {
            found.insert(t.identity.0.clone(), t);
        }
    }
    Ok(found)
}

/// Reports the identities not in `found` as not found; returns the exit code.
pub(crate) fn report_missing(
    out: &Output,
    ids: &[String],
    found: &BTreeMap<String, OfflineTask>,
) -> u8 {
    let mut code = exit::OK;
    for id in ids {
        if !found.contains_key(id) {
            code = out.fail(
                exit::PROVIDER,
                "not found: no such task in the task list",
                Some(&format!("task {id}")),
            );
        }
    }
    code
}

/// `status` for 6pan.
pub(crate) async fn status(
    pan: &SixPan,
    transport: &Transport,
    ids: &[String],
    out: &Output,
) -> u8 {
    let found = match find(pan, transport, ids).await {
        Ok(f) => f,
        Err(e) => return report_6(out, "status", &e),
    };
    for id in ids {
        if let Some(t) = found.get(id) {
            if out.is_json() {
                out.event(task_json("status", t));
            } else {
                let reason = t
                    .failure_reason()
                    .map(|r| format!(": {}", crate::output::screen(&r)))
                    .unwrap_or_default();
                outln!(
                    "task {} ({}): {} {}%{reason}",
                    crate::output::screen(id),
                    crate::output::screen(&t.name),
                    status_word(t.status),
                    percent_text(t.progress.unwrap_or(0.0))
                );
            }
        }
    }
    report_missing(out, ids, &found)
}

/// `wait` for 6pan: unknown identities are reported not found (exit 3), the others
/// watched.
pub(crate) async fn wait(pan: &SixPan, transport: &Transport, ids: &[String], out: &Output) -> u8 {
    let found = match find(pan, transport, ids).await {
        Ok(f) => f,
        Err(e) => return report_6(out, "wait", &e),
    };
    let missing = report_missing(out, ids, &found);
    let known: Vec<(String, String)> = ids
        .iter()
        .filter_map(|id| found.get(id).map(|t| (id.clone(), t.name.clone())))
        .collect();
    if known.is_empty() {
        return missing;
    }
    crate::interrupt::set_hint(format!(
        "offline --provider 6pan status {}",
        known
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let code = watch_6(pan, transport, known, &BTreeSet::new(), out).await;
    code.max(missing)
}

/// The 6pan tasks' stream, for `list`.
pub(crate) fn all_tasks(
    pan: &SixPan,
) -> futures_util::stream::BoxStream<'_, Result<OfflineTask, provider_6pan::Error>> {
    pan.tasks().boxed()
}
