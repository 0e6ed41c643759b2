//! The endpoints: what each does with the [`Catalog`] (source,
//! `src/webui/api/{app,auth,torrents,transfer}controller.cpp`, v4.6.7).

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Map, Value};

use super::session::{self, State};
use super::torrent::{self, sorted_tags, Field, Row};
use super::{
    sync, Answer, Config, Form, Kind, Refusal, Reply, QBITTORRENT_VERSION, WEBAPI_VERSION,
};
use crate::aria2::{Gid, Source};
use crate::catalog::join;
use crate::catalog::{category_dir, AddError, Catalog, Category, CategoryError, NewTask};
use crate::catalog::{drive_path, report_path};
use crate::torrent::InfoHash;
use crate::torrent::Metainfo;

/// The endpoints that only read: taken with `GET` or `POST`.
const READS: &[&str] = &[
    "app/buildInfo",
    "app/defaultSavePath",
    "app/preferences",
    "app/version",
    "app/webapiVersion",
    "sync/maindata",
    "torrents/categories",
    "torrents/files",
    "torrents/info",
    "torrents/properties",
    "torrents/tags",
    "torrents/trackers",
    "transfer/info",
];

/// The endpoints that act: taken with `POST` only.
const ACTIONS: &[&str] = &[
    "app/setPreferences",
    "auth/login",
    "auth/logout",
    "torrents/add",
    "torrents/addTags",
    "torrents/createCategory",
    "torrents/createTags",
    "torrents/delete",
    "torrents/deleteTags",
    "torrents/editCategory",
    "torrents/pause",
    "torrents/removeCategories",
    "torrents/removeTags",
    "torrents/resume",
    "torrents/setCategory",
    "torrents/start",
    "torrents/stop",
];

/// Queue moves: refused, queueing being off.
const QUEUE_MOVES: &[&str] = &[
    "torrents/bottomPrio",
    "torrents/decreasePrio",
    "torrents/increasePrio",
    "torrents/topPrio",
];

/// Actions on settings the drive does not have: accepted (their `hashes` required, as
/// qBittorrent requires them) and ignored.
const IGNORED: &[&str] = &[
    "torrents/reannounce",
    "torrents/recheck",
    "torrents/setAutoManagement",
    "torrents/setDownloadLimit",
    "torrents/setForceStart",
    "torrents/setShareLimits",
    "torrents/setSuperSeeding",
    "torrents/setUploadLimit",
    "torrents/toggleFirstLastPiecePrio",
    "torrents/toggleSequentialDownload",
];

/// Whether `path` is an endpoint, and of which kind.
pub(super) fn kind(path: &str) -> Option<Kind> {
    if READS.contains(&path) {
        Some(Kind::Read)
    } else if ACTIONS.contains(&path) || QUEUE_MOVES.contains(&path) || IGNORED.contains(&path) {
        Some(Kind::Action)
    } else {
        None
    }
}

/// One call's parameters and configuration.
pub(super) struct Call<'a> {
    /// The parameters (a `GET`'s query, a `POST`'s body).
    pub(super) params: &'a Form,
    /// The report prefix.
    pub(super) prefix: Option<&'a str>,
    /// The configuration.
    pub(super) config: &'a Config,
}

impl Call<'_> {
    /// qBittorrent's `requireParams`: 400 naming the missing ones.
    fn require(&self, names: &[&str]) -> Result<(), Refusal> {
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !self.params.has(n))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Refusal::bad(format!(
                "Missing required parameters: {}",
                missing.join(", ")
            )))
        }
    }

    /// Parameter `name`, required.
    fn required(&self, name: &str) -> Result<&str, Refusal> {
        self.require(&[name])?;
        Ok(self.params.get(name).unwrap_or(""))
    }
}

/// Answers the call to `path` (an endpoint [`kind`] knows) for session `sid`.
pub(super) fn dispatch<C: Catalog + ?Sized>(
    path: &str,
    call: &Call<'_>,
    catalog: &mut C,
    state: &mut State,
    sid: &str,
    now: u64,
) -> Answer {
    let (scope, action) = path.split_once('/').unwrap_or((path, ""));
    match (scope, action) {
        ("auth", "logout") => {
            state.end(sid);
            let mut reply = Reply::empty();
            reply.set_cookie = Some(session::end_cookie());
            Ok(reply)
        }
        ("app", "version") => Ok(Reply::text(format!("v{QBITTORRENT_VERSION}"))),
        ("app", "webapiVersion") => Ok(Reply::text(WEBAPI_VERSION)),
        ("app", "buildInfo") => Ok(Reply::json(&build_info())),
        ("app", "preferences") => Ok(Reply::json(&preferences(call, &*catalog))),
        ("app", "setPreferences") => Ok(Reply::empty()),
        ("app", "defaultSavePath") => Ok(Reply::text(report_path(
            call.prefix,
            &catalog.default_dir(),
        ))),
        ("transfer", "info") => Ok(Reply::json(&transfer_info(&*catalog, call.prefix))),
        ("sync", "maindata") => Ok(sync::maindata(
            &*catalog,
            call.prefix,
            state,
            sid,
            call.params.int_or_zero("rid"),
            now,
        )),
        ("torrents", "info") => Ok(info(call, &*catalog)),
        ("torrents", "properties") => {
            let row = one(call, &*catalog)?;
            Ok(Reply::json(&torrent::properties(&row)))
        }
        ("torrents", "files") => {
            let row = one(call, &*catalog)?;
            let files =
                torrent::files(&row, call.params.get("indexes")).map_err(Refusal::conflict)?;
            Ok(Reply::json(&files))
        }
        ("torrents", "trackers") => {
            let row = one(call, &*catalog)?;
            Ok(Reply::json(&torrent::trackers(&row)))
        }
        ("torrents", "add") => add(call, catalog),
        ("torrents", "delete") => delete(call, catalog),
        ("torrents", "pause" | "stop") => hold(call, catalog, true),
        ("torrents", "resume" | "start") => hold(call, catalog, false),
        ("torrents", "categories") => Ok(Reply::json(&categories(call.prefix, &*catalog))),
        ("torrents", "createCategory") => put_category(call, catalog, true),
        ("torrents", "editCategory") => put_category(call, catalog, false),
        ("torrents", "removeCategories") => {
            let names: Vec<String> = call
                .params
                .get("categories")
                .unwrap_or("")
                .split('\n')
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect();
            catalog.remove_categories(&names);
            Ok(Reply::empty())
        }
        ("torrents", "setCategory") => set_category(call, catalog),
        ("torrents", "tags") => {
            let tags = catalog.tags();
            Ok(Reply::json(&sorted_tags(tags.iter().map(String::as_str))))
        }
        ("torrents", "createTags") => {
            let tags = tag_list(call.required("tags")?);
            catalog.create_tags(&tags);
            Ok(Reply::empty())
        }
        ("torrents", "deleteTags") => {
            let tags = tag_list(call.required("tags")?);
            catalog.delete_tags(&tags);
            Ok(Reply::empty())
        }
        ("torrents", "addTags") => edit_tags(call, catalog, true),
        ("torrents", "removeTags") => edit_tags(call, catalog, false),
        _ if QUEUE_MOVES.contains(&path) => {
            call.require(&["hashes"])?;
            Err(Refusal::conflict("Torrent queueing must be enabled"))
        }
        _ if IGNORED.contains(&path) => {
            call.require(&["hashes"])?;
            Ok(Reply::empty())
        }
        _ => Err(Refusal::not_found()),
    }
}

/// `app/buildInfo`: the library versions qBittorrent 4.6.7's official builds report.
fn build_info() -> Value {
    json!({
        "bitness": 64,
        "boost": "1.84.0",
        "libtorrent": "2.0.10.0",
        "openssl": "3.2.1",
        "qt": "6.5.3",
        "zlib": "1.3.1",
    })
}

/// `app/preferences` (`AppController::preferencesAction`): the fields the apps read,
/// with the values that say what this daemon does. Sonarr and Radarr
/// (`QBittorrentPreferences`) read `save_path`, the share limits (`max_ratio_enabled`,
/// `max_ratio`, `max_seeding_time_enabled`, `max_seeding_time`, `max_ratio_act`),
/// `queueing_enabled` and `dht`; the drive does not seed, so no limit is set, and
/// it has no queue the apps could order.
fn preferences<C: Catalog + ?Sized>(call: &Call<'_>, catalog: &C) -> Value {
    let save_path = report_path(call.prefix, &catalog.default_dir());
    let temp_path = join(&save_path, "temp");
    let username = call
        .config
        .login
        .as_ref()
        .map_or("admin", |l| l.username.as_str());
    let fields: [(&str, Value); 44] = [
        ("add_to_top_of_queue", json!(false)),
        ("add_trackers", json!("")),
        ("add_trackers_enabled", json!(false)),
        ("auto_delete_mode", json!(0)),
        ("auto_tmm_enabled", json!(false)),
        ("bypass_local_auth", json!(call.config.login.is_none())),
        ("category_changed_tmm_enabled", json!(false)),
        ("dht", json!(true)),
        ("dl_limit", json!(0)),
        ("dont_count_slow_torrents", json!(false)),
        ("export_dir", json!("")),
        ("export_dir_fin", json!("")),
        ("incomplete_files_ext", json!(false)),
        ("locale", json!("en")),
        ("lsd", json!(false)),
        ("max_active_downloads", json!(3)),
        ("max_active_torrents", json!(5)),
        ("max_active_uploads", json!(3)),
        ("max_inactive_seeding_time", json!(-1)),
        ("max_inactive_seeding_time_enabled", json!(false)),
        ("max_ratio", json!(-1)),
        ("max_ratio_act", json!(0)),
        ("max_ratio_enabled", json!(false)),
        ("max_seeding_time", json!(-1)),
        ("max_seeding_time_enabled", json!(false)),
        ("pex", json!(false)),
        ("preallocate_all", json!(false)),
        ("queueing_enabled", json!(false)),
        ("save_path", json!(save_path)),
        ("save_path_changed_tmm_enabled", json!(false)),
        ("scan_dirs", json!({})),
        ("scheduler_enabled", json!(false)),
        ("start_paused_enabled", json!(false)),
        ("temp_path", json!(temp_path)),
        ("temp_path_enabled", json!(false)),
        ("torrent_changed_tmm_enabled", json!(true)),
        ("torrent_content_layout", json!("Original")),
        ("up_limit", json!(0)),
        ("use_subcategories", json!(false)),
        ("web_ui_ban_duration", json!(super::BAN_DURATION)),
        ("web_ui_csrf_protection_enabled", json!(true)),
        ("web_ui_max_auth_fail_count", json!(super::MAX_AUTH_FAILS)),
        ("web_ui_session_timeout", json!(super::SESSION_TIMEOUT)),
        ("web_ui_username", json!(username)),
    ];
    let map: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    Value::Object(map)
}

/// `transfer/info` (`TransferController::infoAction`): the drive's download speed
/// (the running tasks' sum) and bytes done; no upload, no limits, no DHT nodes.
pub(super) fn transfer_info<C: Catalog + ?Sized>(
    catalog: &C,
    prefix: Option<&str>,
) -> Map<String, Value> {
    let (mut speed, mut done) = (0u64, 0u64);
    for view in catalog.listed() {
        let row = Row::new(view, prefix);
        speed = speed.saturating_add(row.speed());
        done = done.saturating_add(row.done);
    }
    let mut map = Map::new();
    map.insert("connection_status".into(), json!("connected"));
    map.insert("dht_nodes".into(), json!(0));
    map.insert("dl_info_data".into(), json!(torrent::int(done)));
    map.insert("dl_info_speed".into(), json!(torrent::int(speed)));
    map.insert("dl_rate_limit".into(), json!(0));
    map.insert("up_info_data".into(), json!(0));
    map.insert("up_info_speed".into(), json!(0));
    map.insert("up_rate_limit".into(), json!(0));
    map
}

/// Whether a torrent in `state` passes `torrents/info`'s `filter` (qBittorrent's
/// `TorrentFilter`; 5.0's `stopped`/`running` as 4.6.7's `paused`/`resumed`; an
/// unknown filter is `all`).
fn passes(filter: &str, state: &str) -> bool {
    let paused = matches!(state, "pausedDL" | "pausedUP");
    match filter {
        "downloading" => matches!(
            state,
            "downloading" | "metaDL" | "stalledDL" | "pausedDL" | "queuedDL"
        ),
        "seeding" => matches!(state, "uploading" | "stalledUP" | "queuedUP"),
        "completed" => matches!(state, "pausedUP" | "uploading" | "stalledUP" | "queuedUP"),
        "paused" | "stopped" => paused,
        "resumed" | "running" => !paused,
        "active" => matches!(state, "downloading" | "metaDL"),
        "inactive" => !matches!(state, "downloading" | "metaDL"),
        "stalled" => matches!(state, "stalledDL" | "stalledUP"),
        "stalled_uploading" => state == "stalledUP",
        "stalled_downloading" => state == "stalledDL",
        "errored" => matches!(state, "error" | "missingFiles"),
        "checking" => state.starts_with("checking"),
        "moving" => state == "moving",
        _ => true,
    }
}

/// The hashes a `hashes` parameter names (`|`-separated, any case), or `None` for
/// `all`.
fn hash_set(text: &str) -> Option<HashSet<String>> {
    if text == "all" {
        return None;
    }
    Some(
        text.split('|')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect(),
    )
}

/// `torrents/info` (`TorrentsController::infoAction`).
fn info<C: Catalog + ?Sized>(call: &Call<'_>, catalog: &C) -> Reply {
    let params = call.params;
    let filter = params.get("filter").unwrap_or("all");
    let category = params.get("category");
    let tag = params.get("tag");
    let hashes = params
        .get("hashes")
        .filter(|h| !h.is_empty())
        .and_then(hash_set);
    let mut rows: Vec<Row<'_>> = catalog
        .listed()
        .into_iter()
        .filter(|v| category.is_none_or(|c| v.category.as_deref().unwrap_or("") == c))
        .filter(|v| {
            tag.is_none_or(|t| {
                if t.is_empty() {
                    v.tags.is_empty()
                } else {
                    v.tags.iter().any(|x| x == t)
                }
            })
        })
        .filter(|v| {
            hashes
                .as_ref()
                .is_none_or(|set| set.contains(&v.hash.to_ascii_lowercase()))
        })
        // The state first: a row (its sizes and save path) only for tasks that pass.
        .filter(|v| passes(filter, torrent::state(v)))
        .map(|v| Row::new(v, call.prefix))
        .collect();
    let reverse = params.flag("reverse").unwrap_or(false);
    if let Some(field) = params
        .get("sort")
        .filter(|s| !s.is_empty())
        .and_then(Field::from_name)
    {
        let mut keyed: Vec<_> = rows.into_iter().map(|r| (r.value(field), r)).collect();
        keyed.sort_by(|(a, _), (b, _)| if reverse { b.cmp(a) } else { a.cmp(b) });
        rows = keyed.into_iter().map(|(_, r)| r).collect();
    }
    // qBittorrent's normalization: a negative offset counts from the end, one out of
    // range is 0; a limit of 0 or less is none.
    let size = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let mut offset = i64::from(params.int_or_zero("offset"));
    if offset < 0 {
        offset += size;
    }
    if offset >= size || offset < 0 {
        offset = 0;
    }
    let limit = params.int_or_zero("limit");
    let offset = usize::try_from(offset).unwrap_or(0);
    let end = match usize::try_from(limit) {
        Ok(limit) if limit > 0 => offset.saturating_add(limit).min(rows.len()),
        _ => rows.len(),
    };
    // About 1.5 KiB an object: written once, without growing the buffer.
    let mut body = Vec::with_capacity((end - offset).saturating_mul(1536).saturating_add(2));
    serde_json::to_writer(&mut body, &rows[offset..end]).expect("the rows serialize");
    Reply::json_bytes(body)
}

/// The task a `hash` parameter names, as a row; 404 when there is none.
fn one<'c, C: Catalog + ?Sized>(call: &Call<'c>, catalog: &'c C) -> Result<Row<'c>, Refusal> {
    let hash = call.required("hash")?;
    catalog
        .by_hash(hash.trim())
        .map(|view| Row::new(view, call.prefix))
        .ok_or_else(Refusal::not_found)
}

/// The GIDs of the tasks a `hashes` parameter names (`all`: every task); unknown
/// hashes are skipped (qBittorrent's `applyToTorrents`).
fn gids<C: Catalog + ?Sized>(catalog: &C, hashes: &str) -> Vec<Gid> {
    if hashes == "all" {
        return catalog.listed().iter().map(|v| v.gid).collect();
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for hash in hashes.split('|').map(str::trim).filter(|h| !h.is_empty()) {
        if let Some(view) = catalog.by_hash(hash) {
            if seen.insert(view.gid) {
                out.push(view.gid);
            }
        }
    }
    out
}

/// A bare infohash as a magnet link: 40 hex digits, or 32 base32 digits (BEP 9)
/// turned into hex ([`InfoHash::from_btih`]); anything else as sent.
fn as_link(url: &str) -> String {
    match InfoHash::from_btih(url) {
        Some(hash) => format!("magnet:?xt=urn:btih:{hash}"),
        None => url.to_owned(),
    }
}

/// `torrents/add` (`TorrentsController::addAction`): each line of `urls` and each
/// uploaded file is one add; `Ok.` when at least one was added, else `Fails.`.
///
/// Every file is checked before anything is added (qBittorrent refuses a file that is
/// not a torrent with 400 after adding the links before it); a `savepath` outside the
/// report prefix is refused (400) likewise. A category that does not exist is made
/// (qBittorrent's `SessionImpl::addTorrent_impl`), and dropped if it cannot be.
fn add<C: Catalog + ?Sized>(call: &Call<'_>, catalog: &mut C) -> Answer {
    let params = call.params;
    for file in &call.params.files {
        if Metainfo::from_bytes(&file.bytes).is_err() {
            let name = file.filename.as_deref().unwrap_or(&file.field);
            return Err(Refusal::bad(format!(
                "Error: '{name}' is not a valid torrent file."
            )));
        }
    }
    let default_dir = catalog.default_dir();
    let auto_tmm = params.flag("autoTMM").unwrap_or(false);
    let savepath = params
        .get("savepath")
        .map(str::trim)
        .filter(|p| !p.is_empty() && !auto_tmm);
    let mut dir = match savepath {
        Some(path) => Some(drive_path(call.prefix, path, &default_dir).map_err(Refusal::bad)?),
        None => None,
    };
    let mut category = params
        .get("category")
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    if let Some(name) = &category {
        let known = catalog.categories().get(name).cloned();
        let known = match known {
            Some(c) => Some(c),
            None => catalog
                .put_category(name, Category::default(), true)
                .ok()
                .map(|()| Category::default()),
        };
        match known {
            Some(c) if dir.is_none() => dir = Some(category_dir(&default_dir, name, &c)),
            Some(_) => {}
            None => category = None,
        }
    }
    let tags = tag_list(params.get("tags").unwrap_or(""));
    let held = params.flag("paused").or_else(|| params.flag("stopped")) == Some(true);
    let out = params
        .get("rename")
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let mut sources: Vec<Source> = params
        .get("urls")
        .unwrap_or("")
        .split('\n')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| Source::Uris(vec![as_link(u)]))
        .collect();
    sources.extend(params.files.iter().map(|f| Source::Torrent {
        bytes: f.bytes.clone(),
        web_seeds: Vec::new(),
    }));
    let mut added = false;
    for source in sources {
        let mut task = NewTask::new(source);
        task.request.dir.clone_from(&dir);
        task.request.out.clone_from(&out);
        task.category.clone_from(&category);
        task.tags.clone_from(&tags);
        task.held = held;
        match catalog.add(task) {
            Ok(_) => added = true,
            Err(AddError::Duplicate(_) | AddError::Refused(_)) => {}
        }
    }
    Ok(Reply::text(if added { "Ok." } else { "Fails." }))
}

/// `torrents/delete`: each named task deleted (its files too with `deleteFiles`);
/// the first the catalog refuses stops the call with 409 and its reason.
fn delete<C: Catalog + ?Sized>(call: &Call<'_>, catalog: &mut C) -> Answer {
    call.require(&["hashes", "deleteFiles"])?;
    let delete_files = call.params.flag("deleteFiles").unwrap_or(false);
    for gid in gids(catalog, call.params.get("hashes").unwrap_or("")) {
        catalog
            .delete(gid, delete_files)
            .map_err(|e| Refusal::conflict(e.0))?;
    }
    Ok(Reply::empty())
}

/// `torrents/pause`/`stop` (`held`) and `resume`/`start`: [`Catalog::hold`] for each
/// named task; a task the drive already fetches cannot be paused
/// ([`Hold::NotPossible`](crate::catalog::Hold::NotPossible)): nothing changes for
/// it, and the call still succeeds, as qBittorrent's does.
fn hold<C: Catalog + ?Sized>(call: &Call<'_>, catalog: &mut C, held: bool) -> Answer {
    let hashes = call.required("hashes")?;
    for gid in gids(catalog, hashes) {
        let _ = catalog.hold(gid, held);
    }
    Ok(Reply::empty())
}

/// A category as `torrents/categories` and `sync/maindata` write it
/// (`CategoryOptions::toJSON` with `savePath` and `name`): `download_path` null (none
/// set), `savePath` under the report prefix, `""` when none is set.
pub(super) fn category_json(name: &str, save_path: &str) -> Value {
    json!({
        "download_path": null,
        "name": name,
        "savePath": save_path,
    })
}

/// A category's `savePath` as reported.
pub(super) fn reported_save_path(prefix: Option<&str>, category: &Category) -> String {
    if category.save_path.is_empty() {
        String::new()
    } else {
        report_path(prefix, &category.save_path)
    }
}

/// `torrents/categories`.
fn categories<C: Catalog + ?Sized>(prefix: Option<&str>, catalog: &C) -> BTreeMap<String, Value> {
    catalog
        .categories()
        .into_iter()
        .map(|(name, c)| {
            let value = category_json(&name, &reported_save_path(prefix, &c));
            (name, value)
        })
        .collect()
}

/// `torrents/createCategory` and `torrents/editCategory`.
fn put_category<C: Catalog + ?Sized>(call: &Call<'_>, catalog: &mut C, create: bool) -> Answer {
    if create {
        call.require(&["category"])?;
    } else {
        call.require(&["category", "savePath"])?;
    }
    let name = call.params.get("category").unwrap_or("");
    if name.is_empty() {
        return Err(Refusal::bad("Category cannot be empty"));
    }
    let given = call.params.get("savePath").unwrap_or("").trim();
    let save_path = if given.is_empty() {
        String::new()
    } else {
        drive_path(call.prefix, given, &catalog.default_dir()).map_err(Refusal::bad)?
    };
    catalog
        .put_category(name, Category { save_path }, create)
        .map_err(|e| match e {
            CategoryError::InvalidName(_) => Refusal::conflict("Incorrect category name"),
            CategoryError::Exists(_) => Refusal::conflict("Unable to create category"),
            CategoryError::Missing(_) => Refusal::conflict("Unable to edit category"),
            CategoryError::BadPath(reason) => Refusal::bad(reason),
            CategoryError::Store(reason) => Refusal::conflict(reason),
        })?;
    Ok(Reply::empty())
}

/// `torrents/setCategory`: `""` takes the category off.
fn set_category<C: Catalog + ?Sized>(call: &Call<'_>, catalog: &mut C) -> Answer {
    call.require(&["hashes", "category"])?;
    let category = call.params.get("category").filter(|c| !c.is_empty());
    for gid in gids(catalog, call.params.get("hashes").unwrap_or("")) {
        catalog.set_category(gid, category).map_err(|e| match e {
            CategoryError::Missing(_) | CategoryError::InvalidName(_) => {
                Refusal::conflict("Incorrect category name")
            }
            CategoryError::Exists(reason)
            | CategoryError::BadPath(reason)
            | CategoryError::Store(reason) => Refusal::conflict(reason),
        })?;
    }
    Ok(Reply::empty())
}

/// A `tags` parameter: comma-separated, each trimmed, empty ones and repeats dropped.
fn tag_list(text: &str) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_owned());
        }
    }
    tags
}

/// `torrents/addTags` (`add`) and `torrents/removeTags`: each named task's tags
/// become the union with (the difference from) the given ones.
fn edit_tags<C: Catalog + ?Sized>(call: &Call<'_>, catalog: &mut C, add: bool) -> Answer {
    call.require(&["hashes", "tags"])?;
    let given = tag_list(call.params.get("tags").unwrap_or(""));
    for gid in gids(catalog, call.params.get("hashes").unwrap_or("")) {
        let Some(view) = catalog.listed().into_iter().find(|v| v.gid == gid) else {
            continue;
        };
        let mut tags = view.tags.clone();
        if add {
            for tag in &given {
                if !tags.contains(tag) {
                    tags.push(tag.clone());
                }
            }
        } else {
            tags.retain(|t| !given.contains(t));
        }
        if tags != view.tags {
            catalog
                .set_tags(gid, &tags)
                .map_err(|e| Refusal::conflict(e.0))?;
        }
    }
    Ok(Reply::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_infohashes_become_magnets() {
        let hex = "0123456789ABCDEF0123456789abcdef01234567";
        assert_eq!(
            as_link(hex),
            "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"
        );
        // The same 20 bytes in base32.
        assert_eq!(
            as_link("AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH"),
            "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(as_link("https://a.example/x"), "https://a.example/x");
        assert_eq!(as_link("1".repeat(32).as_str()), "1".repeat(32));
    }

    #[test]
    fn tag_lists() {
        assert_eq!(tag_list(" a, b,,a ,c "), ["a", "b", "c"]);
        assert!(tag_list("").is_empty());
    }

    #[test]
    fn every_endpoint_has_one_kind() {
        for list in [READS, ACTIONS, QUEUE_MOVES, IGNORED] {
            for path in list {
                assert!(kind(path).is_some(), "{path}");
            }
        }
        assert_eq!(kind("torrents/nothing"), None);
    }
}
