//! `sync/maindata` (source, `src/webui/api/synccontroller.cpp`, v4.6.7:
//! `SyncController::maindataAction` and `generateSyncData`).
//!
//! Each session keeps a [`Snapshot`] of what its last answer told the client. A
//! request whose `rid` is that answer's gets only what changed since: the torrents
//! added (every field) or changed (the changed fields), `torrents_removed`, the
//! categories added (whole) or changed (the changed keys), `categories_removed`, the
//! tags added and `tags_removed`, the `server_state` keys that changed; keys with
//! nothing to say are left out. Any other `rid` (0, an older one, one the session
//! never got, or after the session lost its snapshot to [`MAX_SYNC_SNAPSHOTS`]) gets a
//! full update: `full_update: true` and everything, `trackers` `{}` (this daemon talks
//! to no tracker). A torrent object is `torrents/info`'s without `hash` (the hash is
//! its key). The answer's `rid` is the last one's plus one, cycling through 1 to
//! 1000000, or 1 when the request's was 0 (qBittorrent's rule).
//!
//! A snapshot keeps, per task, a 64-bit fingerprint of each field
//! ([`Cell::fingerprint`]), not the values: about 500 bytes a task.
//!
//! [`MAX_SYNC_SNAPSHOTS`]: super::MAX_SYNC_SNAPSHOTS

use std::collections::{BTreeMap, HashMap};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};

use super::endpoints::{category_json, reported_save_path, transfer_info};
use super::session::State;
use super::torrent::{sorted_tags, Cell, Field, Row};
use super::Reply;
use crate::catalog::Catalog;

/// What a session's client has after its last `sync/maindata` answer.
#[derive(Debug, Default)]
pub(super) struct Snapshot {
    /// Per task hash, the fingerprint of each field, in [`Field::ALL`]'s order.
    torrents: HashMap<String, Box<[u64]>>,
    /// Per category, its reported `savePath`.
    categories: BTreeMap<String, String>,
    /// The tags.
    tags: Vec<String>,
    /// `server_state`.
    server_state: Map<String, Value>,
}

/// The torrents of an answer: per hash, the fields to send.
struct Torrents<'a>(Vec<(&'a str, Vec<(Field, Cell<'a>)>)>);

impl Serialize for Torrents<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Fields<'c, 'a>(&'c [(Field, Cell<'a>)]);
        impl Serialize for Fields<'_, '_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (field, cell) in self.0 {
                    map.serialize_entry(field.name(), cell)?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (hash, fields) in &self.0 {
            map.serialize_entry(hash, &Fields(fields))?;
        }
        map.end()
    }
}

/// The answer, its keys in Qt's (alphabetical) order.
#[derive(serde::Serialize)]
struct Maindata<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    categories: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    categories_removed: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    full_update: Option<bool>,
    rid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_state: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags_removed: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    torrents: Option<Torrents<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    torrents_removed: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trackers: Option<Map<String, Value>>,
}

/// `Some(v)` unless `v` is empty.
fn nonempty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// `server_state`: `transfer/info`'s keys and the session's (no queueing, no
/// alternative limits, a refresh every 1500 ms), the statistics 0 (`global_ratio`
/// `"-"`, as qBittorrent with nothing uploaded), `free_space_on_disk` 0 (unknown).
fn server_state<C: Catalog + ?Sized>(catalog: &C, prefix: Option<&str>) -> Map<String, Value> {
    let mut state = transfer_info(catalog, prefix);
    let done = state.get("dl_info_data").cloned().unwrap_or(json!(0));
    for (key, value) in [
        ("alltime_dl", done),
        ("alltime_ul", json!(0)),
        ("average_time_queue", json!(0)),
        ("free_space_on_disk", json!(0)),
        ("global_ratio", json!("-")),
        ("queued_io_jobs", json!(0)),
        ("queueing", json!(false)),
        ("read_cache_hits", json!("0")),
        ("read_cache_overload", json!("0")),
        ("refresh_interval", json!(1500)),
        ("total_buffers_size", json!(0)),
        ("total_peer_connections", json!(0)),
        ("total_queued_size", json!(0)),
        ("total_wasted_session", json!(0)),
        ("use_alt_speed_limits", json!(false)),
        ("use_subcategories", json!(false)),
        ("write_cache_overload", json!("0")),
    ] {
        state.insert(key.to_owned(), value);
    }
    state
}

/// Answers `sync/maindata?rid=asked` for session `sid`, and keeps the new snapshot.
pub(super) fn maindata<C: Catalog + ?Sized>(
    catalog: &C,
    prefix: Option<&str>,
    state: &mut State,
    sid: &str,
    asked: i32,
    now: u64,
) -> Reply {
    let (last_rid, kept) = match state.session_mut(sid) {
        Some(session) => (session.sync_rid, session.snapshot.take()),
        None => (0, None),
    };
    let asked = u32::try_from(asked).unwrap_or(0);
    let base = kept.filter(|_| asked > 0 && asked == last_rid);
    let rid = if asked == 0 {
        1
    } else {
        last_rid % 1_000_000 + 1
    };
    let full = base.is_none();
    let base = base.unwrap_or_default();
    let mut next = Snapshot::default();

    let listed = catalog.listed();
    let rows: Vec<Row<'_>> = listed.iter().map(|v| Row::new(v, prefix)).collect();
    let mut torrents = Vec::new();
    next.torrents.reserve(rows.len());
    for row in &rows {
        let cells: Vec<Cell<'_>> = Field::ALL.iter().map(|&f| row.value(f)).collect();
        let prints: Box<[u64]> = cells.iter().map(Cell::fingerprint).collect();
        let old = base.torrents.get(&row.view.hash);
        let fields: Vec<(Field, Cell<'_>)> = Field::ALL
            .iter()
            .zip(cells)
            .enumerate()
            .filter(|(_, (&f, _))| f != Field::Hash)
            .filter(|(i, _)| old.is_none_or(|old| old.get(*i) != prints.get(*i)))
            .map(|(_, (&f, cell))| (f, cell))
            .collect();
        if !fields.is_empty() {
            torrents.push((row.view.hash.as_str(), fields));
        }
        next.torrents.insert(row.view.hash.clone(), prints);
    }
    let mut torrents_removed: Vec<String> = base
        .torrents
        .keys()
        .filter(|h| !next.torrents.contains_key(*h))
        .cloned()
        .collect();
    torrents_removed.sort_unstable();

    let mut categories = Map::new();
    for (name, category) in catalog.categories() {
        let save_path = reported_save_path(prefix, &category);
        match base.categories.get(&name) {
            Some(old) if *old == save_path => {}
            Some(_) => {
                categories.insert(name.clone(), json!({ "savePath": save_path }));
            }
            None => {
                categories.insert(name.clone(), category_json(&name, &save_path));
            }
        }
        next.categories.insert(name, save_path);
    }
    let categories_removed: Vec<String> = base
        .categories
        .keys()
        .filter(|n| !next.categories.contains_key(*n))
        .cloned()
        .collect();

    next.tags = {
        let tags = catalog.tags();
        sorted_tags(tags.iter().map(String::as_str))
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    let tags: Vec<String> = next
        .tags
        .iter()
        .filter(|t| !base.tags.contains(t))
        .cloned()
        .collect();
    let tags_removed: Vec<String> = base
        .tags
        .iter()
        .filter(|t| !next.tags.contains(t))
        .cloned()
        .collect();

    next.server_state = server_state(catalog, prefix);
    let server_state: Map<String, Value> = next
        .server_state
        .iter()
        .filter(|(k, v)| base.server_state.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    let answer = if full {
        Maindata {
            categories: Some(categories),
            categories_removed: None,
            full_update: Some(true),
            rid,
            server_state: Some(server_state),
            tags: Some(tags),
            tags_removed: None,
            torrents: Some(Torrents(torrents)),
            torrents_removed: None,
            trackers: Some(Map::new()),
        }
    } else {
        Maindata {
            categories: (!categories.is_empty()).then_some(categories),
            categories_removed: nonempty(categories_removed),
            full_update: None,
            rid,
            server_state: (!server_state.is_empty()).then_some(server_state),
            tags: nonempty(tags),
            tags_removed: nonempty(tags_removed),
            torrents: nonempty(torrents).map(Torrents),
            torrents_removed: nonempty(torrents_removed),
            trackers: None,
        }
    };
    let body = serde_json::to_vec(&answer).expect("the answer serializes");
    drop(rows);
    state.keep_snapshot(sid, Box::new(next), rid, now);
    Reply::json_bytes(body)
}
