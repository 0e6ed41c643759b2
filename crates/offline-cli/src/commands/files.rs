//! 123pan folders and files: `--dir PATH|ID` for `add`, the stored file after
//! `add --wait`, and `offline ls`, `offline info`, `offline link`.
//!
//! Every one prints, with `--json`, `file` events (`docs/events.schema.json`): an
//! entry's `id`, `name`, `type` (`file`/`folder`), `size` (bytes), `etag` (MD5 hex)
//! and `parent`, plus `path` when known, `task` for the file a task stored, `created`
//! for a folder `--dir` made, and `url` for `link`.

use offline_proto::pan123::{stored_file, url_stored_name, FileDetailData, FileEntry};
use provider_123pan::{FileId, Pan123, TaskRef};
use serde_json::{json, Value};

use crate::client::{guarded, refused_123, Client, Transport};
use crate::exit;
use crate::output::{table, Output};

/// The folder `--dir` names: an ID as given (the root, 0, is refused: offline
/// download cannot target it), or a path resolved from the root with missing folders
/// created (each announced).
///
/// # Errors
///
/// The exit code, after printing why.
pub(crate) async fn download_dir(
    pan: &Pan123<Transport>,
    transport: &Transport,
    dir: &str,
    out: &Output,
) -> Result<FileId, u8> {
    if let Some(id) = FileId::from_arg(dir) {
        if id.is_root() {
            return Err(out.fail(
                exit::USAGE,
                "--dir 0 is the root, which offline download cannot target; give a folder (a path such as /Downloads, or its ID)",
                Some(dir),
            ));
        }
        return Ok(id);
    }
    let resolved = guarded(transport, pan.resolve_dir(dir, true), refused_123)
        .await
        .map_err(|e| out.error(dir, &e))?;
    if resolved.id.is_root() {
        return Err(out.fail(
            exit::USAGE,
            "--dir / is the root, which offline download cannot target; give a folder such as /Downloads",
            Some(dir),
        ));
    }
    for (i, path) in resolved.created.iter().enumerate() {
        let is_last = i + 1 == resolved.created.len();
        if out.is_json() {
            out.event(json!({
                "event": "file",
                "type": "folder",
                "path": path.to_string(),
                "created": true,
                "id": is_last.then(|| resolved.id.to_string()),
            }));
        } else {
            out.say(&format!("created folder {path}"));
        }
    }
    Ok(resolved.id)
}

/// After `add --wait`: for each cloud-drive task that succeeded, the file it stored,
/// found in its folder by name ([`stored_file`]); printed as `stored` lines or `file`
/// events.
pub(crate) async fn report_stored(
    pan: &Pan123<Transport>,
    transport: &Transport,
    succeeded: &[(TaskRef, String)],
    dir: Option<FileId>,
    name: Option<&str>,
    out: &Output,
) -> u8 {
    if succeeded.is_empty() {
        return exit::OK;
    }
    let folder = match dir {
        Some(id) => id,
        None => {
            let default = format!("/{}", offline_proto::pan123::OFFLINE_FOLDER);
            match guarded(transport, pan.resolve_dir(&default, false), refused_123).await {
                Ok(r) => r.id,
                Err(e) => return out.error("stored files", &e),
            }
        }
    };
    let entries = match guarded(transport, pan.list_all(folder), refused_123).await {
        Ok(entries) => entries,
        Err(e) => return out.error("stored files", &e),
    };
    let folder_path = match guarded(transport, path_of(pan, folder), refused_123).await {
        Ok(p) => p,
        Err(e) => return out.error("stored files", &e),
    };
    let mut claimed = Vec::new();
    for (task, url) in succeeded {
        let wanted = name.map_or_else(|| url_stored_name(url), str::to_owned);
        let Some(file) = stored_file(&entries, &wanted, &claimed) else {
            out.say(&format!(
                "task {}: no file named {wanted} found in {folder_path}",
                task.id
            ));
            continue;
        };
        claimed.push(file.file_id);
        let path = join(&folder_path, &file.filename);
        if out.is_json() {
            let mut v = entry_value(file);
            v["task"] = json!(task.id.to_string());
            v["path"] = json!(path);
            out.event(v);
        } else {
            outln!(
                "task {}: stored {path} ({} bytes, etag {}, file ID {})",
                task.id,
                file.size,
                file.etag,
                file.file_id
            );
        }
    }
    exit::OK
}

/// The path of folder `id` from the root, by its details' parents.
async fn path_of(pan: &Pan123<Transport>, id: FileId) -> Result<String, provider_123pan::Error> {
    let mut names = Vec::new();
    let mut at = id;
    while !at.is_root() && names.len() < 64 {
        let detail = pan.file(at).await?;
        names.push(detail.filename);
        at = detail.parent_file_id;
    }
    names.reverse();
    Ok(format!("/{}", names.join("/")))
}

fn join(folder: &str, name: &str) -> String {
    format!("{}/{name}", folder.trim_end_matches('/'))
}

fn kind_word(folder: bool) -> &'static str {
    if folder {
        "folder"
    } else {
        "file"
    }
}

fn entry_value(e: &FileEntry) -> Value {
    json!({
        "event": "file",
        "id": e.file_id.to_string(),
        "name": e.filename,
        "type": kind_word(e.is_folder()),
        "size": e.size,
        "etag": e.etag,
        "parent": e.parent_file_id.to_string(),
    })
}

fn detail_value(d: &FileDetailData) -> Value {
    json!({
        "event": "file",
        "id": d.file_id.to_string(),
        "name": d.filename,
        "type": kind_word(d.is_folder()),
        "size": d.size,
        "etag": d.etag,
        "parent": d.parent_file_id.to_string(),
        "trashed": d.trashed.0,
    })
}

/// The provider's client, or the exit code of a command that needs 123pan.
fn pan123<'a>(
    client: &'a Client,
    command: &str,
    out: &Output,
) -> Result<(&'a Pan123<Transport>, &'a Transport), u8> {
    match client {
        Client::Pan123(pan, transport) => Ok((pan, transport)),
        Client::Pan6(..) => Err(out.fail(
            exit::USAGE,
            &format!("`{command}` is a 123pan command"),
            None,
        )),
    }
}

/// `offline ls PATH|ID`: the entries of a folder (the trash left out).
pub(crate) async fn ls(client: &Client, target: &str, out: &Output) -> u8 {
    let (pan, transport) = match pan123(client, "ls", out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let folder = match FileId::from_arg(target) {
        Some(id) => id,
        None => match guarded(transport, pan.resolve_dir(target, false), refused_123).await {
            Ok(r) => r.id,
            Err(e) => return out.error(target, &e),
        },
    };
    let entries = match guarded(transport, pan.list_all(folder), refused_123).await {
        Ok(e) => e,
        Err(e) => return out.error(target, &e),
    };
    if out.is_json() {
        for e in &entries {
            out.event(entry_value(e));
        }
        return exit::OK;
    }
    if entries.is_empty() {
        outln!("{target}: empty");
        return exit::OK;
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.file_id.to_string(),
                kind_word(e.is_folder()).to_owned(),
                e.size.to_string(),
                e.etag.clone(),
                e.filename.clone(),
            ]
        })
        .collect();
    outln!("{}", table(&["ID", "TYPE", "SIZE", "ETAG", "NAME"], &rows));
    exit::OK
}

/// The file ID argument of `info` and `link`, or the exit code after refusing it.
fn file_id(target: &str, out: &Output) -> Result<FileId, u8> {
    FileId::from_arg(target).ok_or_else(|| {
        out.fail(
            exit::USAGE,
            "expected a file ID (a number, as `offline ls` shows it)",
            Some(target),
        )
    })
}

/// `offline info FILE_ID`: one entry's details.
pub(crate) async fn info(client: &Client, target: &str, out: &Output) -> u8 {
    let (pan, transport) = match pan123(client, "info", out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let id = match file_id(target, out) {
        Ok(id) => id,
        Err(code) => return code,
    };
    let detail = match guarded(transport, pan.file(id), refused_123).await {
        Ok(d) => d,
        Err(e) => return out.error(target, &e),
    };
    if out.is_json() {
        out.event(detail_value(&detail));
        return exit::OK;
    }
    let created = detail
        .create_at
        .as_ref()
        .map_or_else(String::new, ToString::to_string);
    outln!(
        "id       {}\nname     {}\ntype     {}\nsize     {} bytes\netag     {}\nparent   {}\ncreated  {created}\ntrashed  {}",
        detail.file_id,
        detail.filename,
        kind_word(detail.is_folder()),
        detail.size,
        detail.etag,
        detail.parent_file_id,
        if detail.trashed.0 { "yes" } else { "no" },
    );
    exit::OK
}

/// `offline link FILE_ID`: a download URL for the file (short-lived; it counts
/// against the account's download traffic).
pub(crate) async fn link(client: &Client, target: &str, out: &Output) -> u8 {
    let (pan, transport) = match pan123(client, "link", out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let id = match file_id(target, out) {
        Ok(id) => id,
        Err(code) => return code,
    };
    match guarded(transport, pan.download_url(id), refused_123).await {
        Ok(url) if out.is_json() => {
            out.event(json!({"event": "file", "id": id.to_string(), "url": url}));
            exit::OK
        }
        Ok(url) => {
            outln!("{url}");
            exit::OK
        }
        Err(e) => out.error(target, &e),
    }
}
