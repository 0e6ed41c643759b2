//! The methods: what each does with the [`Catalog`].
//!
//! Names: the bespoke protocol's (rpc-spec.md 4.0.6: `torrent-get`, …; the snake_case
//! names are accepted there too, as 4.1's `api-compat.cc` converts them) and JSON-RPC
//! 2.0's (4.1: `torrent_get`, …; only those).
//!
//! - `torrent-get`: see [`fields`] for the fields. `ids`: absent (all
//!   listed tasks), an ID, a hash string, an array of both, or `"recently-active"`
//!   (`"recently_active"`), which answers every listed task (the daemon does not know
//!   which changed lately: all of them is the safe superset) and as `removed` the IDs
//!   of the last [`REMEMBERED_REMOVALS`](super::REMEMBERED_REMOVALS) tasks removed
//!   through this interface that no live task has taken since (removals through other
//!   interfaces are not known here). IDs and hashes naming no task are skipped, as
//!   Transmission skips them; a task named twice is answered once. `fields` is
//!   required (bespoke: absent is `"no fields specified"`; JSON-RPC: no known field
//!   is `-32602` "no fields specified", as 4.1). `format`: `"table"`, or objects.
//!   4.0.6 also reads a single integer `id` when `ids` is absent; so does this, in the
//!   bespoke protocol.
//! - `torrent-add`: `filename` (a magnet link, or any other link with a scheme: an
//!   `http(s)` link to a `.torrent` file, which Transmission would fetch and add, is
//!   handed to the drive as a download of that link — the drive fetches it, and stores
//!   what it gets) or `metainfo` (base64 `.torrent`, checked here: one that does not
//!   parse is Transmission's `"unrecognized info"`), not both. A `filename` that is no
//!   link (a path on the server, which Transmission would read) is `"unrecognized
//!   info"`: the daemon reads no files for a client. `download-dir` (absolute, under
//!   [`Config::report_prefix`](super::Config::report_prefix) when there is one;
//!   `"download directory path is not absolute"` otherwise, as Transmission), else the
//!   first label's category folder ([`category_dir`]) when that label names a
//!   category, else the daemon's default. `labels` (Transmission's rules: trimmed, not
//!   empty, no comma; duplicates dropped) become [`NewTask::tags`], and the first one
//!   [`NewTask::category`] when it names a category. `paused` is [`NewTask::held`].
//!   `files-unwanted` (less `files-wanted`, which wins as in Transmission) becomes
//!   [`NewTask::unwanted`]: only with `metainfo`, where the files are known (an index
//!   out of range is `"file index out of range"`; leaving no file is refused); for a
//!   link it is refused (`files-wanted` alone changes nothing and is accepted).
//!   Arguments this daemon cannot honour are refused, naming them: `cookies` (not
//!   empty: the drive fetches the link, with no cookies), `peer-limit`,
//!   `priority-high`/`priority-low` (not empty), `bandwidthPriority` other than 0,
//!   `sequential_download` true, `sequential_download_from_piece` other than 0;
//!   `priority-normal` changes nothing (every file is normal) and is accepted after
//!   its indices are checked. The answer is `torrent-added` `{hashString, id, name}`,
//!   or `torrent-duplicate` with the task already there ([`AddError::Duplicate`]); a
//!   refusal ([`AddError::Refused`]) is the error with its reason (JSON-RPC: 5
//!   "system error", the reason as `error_string`).
//! - `torrent-remove`: [`Catalog::delete`] each task (`delete-local-data` is
//!   `delete_files`); the first refusal is the error, the others still tried.
//! - `torrent-start`, `torrent-start-now`: releases held tasks ([`Catalog::hold`]);
//!   others are already started. `torrent-stop`: holds back each task the drive does
//!   not have yet; a task the drive has cannot be stopped ([`Hold::NotPossible`]) and
//!   is left as it is, the call still answered `success` (as Transmission answers a
//!   stop of a torrent that is not running). Complete and failed tasks are stopped
//!   already.
//! - `torrent-verify`, `torrent-reannounce`, `queue-move-top`/`-up`/`-down`/`-bottom`:
//!   `success`, changing nothing: the drive verifies and announces by itself, and the
//!   daemon sends queued tasks in the order added (Sonarr moves a new torrent to the
//!   top after adding it; refusing would fail its grab).
//! - `torrent-set`: `labels` → [`Catalog::set_tags`], and [`Catalog::set_category`] to
//!   the first label when it names a category, else to none. `seedRatioLimit`,
//!   `seedRatioMode`, `seedIdleLimit`, `seedIdleMode`, `uploadLimit`, `uploadLimited`
//!   are accepted (type-checked) and change nothing: the drive never uploads or seeds,
//!   so every seeding and upload limit is met (Sonarr sets them after each add).
//!   `bandwidthPriority` 0, `downloadLimited` false, `honorsSessionLimits` true,
//!   `sequential_download` false, `group` `""`, `priority-normal`, a `files-wanted` of
//!   wanted files and a `files-unwanted` of unwanted ones, and a `location` that is
//!   the task's folder, ask for what is already so and are accepted; any other value
//!   of those, and `downloadLimit`, `peer-limit`, `queuePosition`, `priority-high`,
//!   `priority-low`, `trackerAdd`, `trackerList`, `trackerRemove`, `trackerReplace`,
//!   `sequential_download_from_piece`, are refused, naming them. Nothing is changed
//!   when anything is refused.
//! - `torrent-set-location`: refused for any task not already in `location`
//!   (`location` missing: `"no location"`; relative: `"new location path is not
//!   absolute"`, as Transmission): a cloud-drive task's files stay where the drive
//!   stored them.
//! - `session-get`, `session-set`, `session-stats`, `free-space`: see
//!   [`session`].
//! - `group-get`: `{"group": []}` (there are no bandwidth groups).
//! - Not provided, answered as Transmission answers an unknown method:
//!   `blocklist-update`, `port-test`, `session-close` (a client does not shut the
//!   daemon down), `group-set`, `torrent-rename-path` (the drive's names are the
//!   drive's).
//!
//! Every mutating method refuses arguments it does not know (`unknown arguments: …`):
//! no argument is ignored without a word. The read-only ones ignore them, as
//! Transmission does.

use std::collections::{HashMap, HashSet};

use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::args::{kind, names_list, Arg, Args, Kind};
use super::envelope::{Failure, Outcome};
use super::fields::{self, display_name, Field, Positions};
use super::json::{self, Out, Style};
use super::{drive_path, session, Config, State};
use crate::aria2::{AddRequest, Gid, Source, TaskState, TaskView};
use crate::catalog::{category_dir, is_hash, AddError, Catalog, Category, Hold, NewTask};
use crate::torrent::Metainfo;

/// A method this layer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    FreeSpace,
    GroupGet,
    QueueMove,
    SessionGet,
    SessionSet,
    SessionStats,
    TorrentAdd,
    TorrentGet,
    TorrentNoop,
    TorrentRemove,
    TorrentSet,
    TorrentSetLocation,
    TorrentStart,
    TorrentStop,
}

/// (method, old name, snake_case name, changes something).
const METHODS: &[(Method, &str, &str, bool)] = &[
    (Method::FreeSpace, "free-space", "free_space", false),
    (Method::GroupGet, "group-get", "group_get", false),
    (
        Method::QueueMove,
        "queue-move-bottom",
        "queue_move_bottom",
        true,
    ),
    (
        Method::QueueMove,
        "queue-move-down",
        "queue_move_down",
        true,
    ),
    (Method::QueueMove, "queue-move-top", "queue_move_top", true),
    (Method::QueueMove, "queue-move-up", "queue_move_up", true),
    (Method::SessionGet, "session-get", "session_get", false),
    (Method::SessionSet, "session-set", "session_set", true),
    (
        Method::SessionStats,
        "session-stats",
        "session_stats",
        false,
    ),
    (Method::TorrentAdd, "torrent-add", "torrent_add", true),
    (Method::TorrentGet, "torrent-get", "torrent_get", false),
    (
        Method::TorrentNoop,
        "torrent-reannounce",
        "torrent_reannounce",
        true,
    ),
    (
        Method::TorrentRemove,
        "torrent-remove",
        "torrent_remove",
        true,
    ),
    (Method::TorrentSet, "torrent-set", "torrent_set", true),
    (
        Method::TorrentSetLocation,
        "torrent-set-location",
        "torrent_set_location",
        true,
    ),
    (Method::TorrentStart, "torrent-start", "torrent_start", true),
    (
        Method::TorrentStart,
        "torrent-start-now",
        "torrent_start_now",
        true,
    ),
    (Method::TorrentStop, "torrent-stop", "torrent_stop", true),
    (
        Method::TorrentNoop,
        "torrent-verify",
        "torrent_verify",
        true,
    ),
];

/// The method named `name` in `style`.
pub(super) fn find(style: Style, name: &str) -> Option<Method> {
    METHODS
        .iter()
        .find(|(_, legacy, snake, _)| *snake == name || (style == Style::Legacy && *legacy == name))
        .map(|(m, _, _, _)| *m)
}

/// Whether `method` changes something (Transmission 4.1's `has_side_effects`: a
/// notification of a method that does not is not executed).
pub(super) fn changes_something(method: Method) -> bool {
    METHODS
        .iter()
        .find(|(m, _, _, _)| *m == method)
        .is_some_and(|(_, _, _, changes)| *changes)
}

/// Executes `method` with the arguments `raw`.
pub(super) fn run<C: Catalog + ?Sized>(
    method: Method,
    raw: Option<&RawValue>,
    style: Style,
    catalog: &mut C,
    state: &State,
    config: &Config,
) -> Outcome {
    let args = Args::parse(raw, style)?;
    match method {
        Method::FreeSpace => session::free_space(args),
        Method::GroupGet => Ok(r#"{"group":[]}"#.into()),
        Method::SessionGet => session::get(args, catalog, state, config),
        Method::SessionSet => session::set(args, catalog, state, config),
        Method::SessionStats => session::stats(&args, catalog),
        Method::TorrentAdd => torrent_add(args, catalog, config),
        Method::TorrentGet => torrent_get(args, catalog, state, config),
        Method::TorrentNoop | Method::QueueMove => {
            let mut args = args;
            read_ids(&mut args)?;
            args.refuse_rest()?;
            Ok("{}".into())
        }
        Method::TorrentRemove => torrent_remove(args, catalog, state),
        Method::TorrentSet => torrent_set(args, catalog, config),
        Method::TorrentSetLocation => torrent_set_location(args, catalog, config),
        Method::TorrentStart => start_stop(args, catalog, false),
        Method::TorrentStop => start_stop(args, catalog, true),
    }
}

// --- ids ----------------------------------------------------------------------------

/// Which tasks a call names.
enum Ids {
    All,
    RecentlyActive,
    Named(Vec<Named>),
}

enum Named {
    Id(u64),
    Text(String),
}

/// Reads `ids` (rpc-spec.md §3.1), or in the bespoke protocol a lone integer `id`.
fn read_ids(args: &mut Args<'_>) -> Result<Ids, Failure> {
    let style = args.style();
    let legacy_id = if style == Style::Legacy && !args.has("ids") {
        args.take_some("id")
    } else {
        None
    };
    let Some(arg) = args.take_some("ids").or(legacy_id) else {
        return Ok(Ids::All);
    };
    let expected = || {
        Failure::params(format!(
            "wrong type for {}: expected a torrent ID, a hash string, \"{}\" or an array of IDs and hash strings",
            arg.name,
            style.pick("recently-active", "recently_active")
        ))
    };
    let one = |raw: &RawValue| -> Result<Option<Named>, Failure> {
        match kind(raw) {
            Kind::Number => {
                let n: i64 = serde_json::from_str(raw.get()).map_err(|_| expected())?;
                Ok(u64::try_from(n).ok().map(Named::Id))
            }
            Kind::String => {
                let text: String = serde_json::from_str(raw.get()).map_err(|_| expected())?;
                Ok(Some(Named::Text(text)))
            }
            _ => Err(expected()),
        }
    };
    match kind(arg.raw()) {
        Kind::String => {
            let text = arg.string()?;
            let recent =
                text == "recently_active" || (style == Style::Legacy && text == "recently-active");
            if recent {
                return Ok(Ids::RecentlyActive);
            }
            Ok(Ids::Named(vec![Named::Text(text)]))
        }
        Kind::Number => Ok(Ids::Named(one(arg.raw())?.into_iter().collect())),
        Kind::Array => {
            let mut named = Vec::new();
            for item in arg.array()? {
                named.extend(one(item)?);
            }
            Ok(Ids::Named(named))
        }
        _ => Err(expected()),
    }
}

/// The task `named` names, unless removed.
fn lookup<'c, C: Catalog + ?Sized>(catalog: &'c C, named: &Named) -> Option<&'c TaskView> {
    match named {
        Named::Id(id) => catalog.by_id(*id),
        Named::Text(text) if is_hash(text) => catalog.by_hash(text),
        Named::Text(text) => {
            crate::torrent::magnet_info_hash(text).and_then(|h| catalog.by_hash(&h.to_string()))
        }
    }
}

/// The tasks `ids` names, each once, in the order named (listed order for all).
fn select<'c, C: Catalog + ?Sized>(catalog: &'c C, ids: &Ids) -> Vec<&'c TaskView> {
    match ids {
        Ids::All | Ids::RecentlyActive => catalog.listed(),
        Ids::Named(named) => {
            let mut seen = HashSet::new();
            named
                .iter()
                .filter_map(|n| lookup(catalog, n))
                .filter(|t| seen.insert(t.gid))
                .collect()
        }
    }
}

// --- torrent-get --------------------------------------------------------------------

fn torrent_get<C: Catalog + ?Sized>(
    mut args: Args<'_>,
    catalog: &C,
    state: &State,
    config: &Config,
) -> Outcome {
    let style = args.style();
    let ids = read_ids(&mut args)?;
    let table = match args.take_some("format") {
        Some(format) => format.string()? == "table",
        None => false,
    };
    let recent = matches!(ids, Ids::RecentlyActive);
    let removed = || -> String {
        let ids: Vec<Value> = state
            .removed_ids()
            .into_iter()
            .filter(|id| catalog.by_id(*id).is_none())
            .map(Value::from)
            .collect();
        json::to_text(&Value::Array(ids), style)
    };
    let fields_arg = args.take_some("fields");
    let Some(fields_arg) = fields_arg else {
        let mut answered = String::from("{");
        if recent {
            answered.push_str("\"removed\":");
            answered.push_str(&removed());
            answered.push(',');
        }
        answered.push_str("\"torrents\":[]}");
        let failure = Failure::params("no fields specified");
        return Err(match style {
            Style::Legacy => failure.with_result(answered),
            Style::JsonRpc => failure,
        });
    };
    let mut fields: Vec<Field> = Vec::new();
    for name in fields_arg.strings()? {
        if let Some(field) = Field::named(style, &name) {
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
    }
    if fields.is_empty() && style == Style::JsonRpc {
        return Err(Failure::params("no fields specified"));
    }
    let tasks = select(catalog, &ids);
    let positions = match ids {
        Ids::Named(_) if fields.contains(&Field::QueuePosition) => Positions::ByGid(
            catalog
                .listed()
                .iter()
                .enumerate()
                .map(|(i, t)| (t.gid, i))
                .collect::<HashMap<_, _>>(),
        ),
        _ => Positions::InOrder,
    };
    let ctx = fields::Ctx {
        prefix: config.report_prefix.as_deref(),
        positions,
    };
    let mut out = Out::new(style);
    out.byte(b'{');
    if recent {
        out.raw("\"removed\":");
        out.raw(&removed());
        out.byte(b',');
    }
    out.raw("\"torrents\":");
    fields::write_torrents(&mut out, &tasks, &fields, table, &ctx);
    out.byte(b'}');
    Ok(out.into_string())
}

// --- torrent-add --------------------------------------------------------------------

/// `labels`: Transmission's `make_labels` rules (trimmed; not empty; no comma),
/// duplicates dropped.
fn labels(arg: &Arg<'_>) -> Result<Vec<String>, Failure> {
    let mut labels: Vec<String> = Vec::new();
    for label in arg.strings()? {
        let label = label.trim();
        if label.is_empty() {
            return Err(Failure::params("labels cannot be empty"));
        }
        if label.contains(',') {
            return Err(Failure::params("labels cannot contain comma (,) character"));
        }
        if !labels.iter().any(|l| l == label) {
            labels.push(label.to_owned());
        }
    }
    Ok(labels)
}

/// The category a list of labels files a task under: its first label, when that is a
/// category.
fn category_of(
    labels: &[String],
    categories: &std::collections::BTreeMap<String, Category>,
) -> Option<String> {
    labels
        .first()
        .filter(|l| categories.contains_key(*l))
        .cloned()
}

/// Whether `filename` is a link the drive may fetch: it starts with a URI scheme
/// (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`) of two or more
/// characters (one is a Windows drive letter) other than `file`, and a colon. (Not a
/// full URL parse: `ed2k://|file|…|/` links, which some drives take, are no WHATWG
/// URLs.)
fn is_link(filename: &str) -> bool {
    let Some((scheme, rest)) = filename.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    first_ok
        && rest_ok
        && scheme.len() >= 2
        && !scheme.eq_ignore_ascii_case("file")
        && !rest.is_empty()
        && !filename.chars().any(char::is_control)
}

/// The base64 of `metainfo`, as Transmission's lenient decoder reads it: whitespace
/// skipped, padding optional.
fn decode_metainfo(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engine = GeneralPurpose::new(
        &STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    engine.decode(compact.as_bytes()).ok()
}

/// Names of the arguments refused by rule, as the request named them.
struct Unsupported(Vec<String>);

impl Unsupported {
    fn check(&mut self, arg: &Arg<'_>, fine: bool) {
        if !fine {
            self.0.push(arg.name.clone());
        }
    }

    fn verdict(&self) -> Result<(), Failure> {
        if self.0.is_empty() {
            return Ok(());
        }
        Err(Failure::params(format!(
            "not supported for cloud-drive downloads: {}",
            names_list(self.0.iter().map(String::as_str))
        )))
    }
}

fn torrent_add<C: Catalog + ?Sized>(
    mut args: Args<'_>,
    catalog: &mut C,
    config: &Config,
) -> Outcome {
    let style = args.style();
    let filename = args.take_some("filename");
    let metainfo = args.take_some("metainfo");
    let download_dir = args.take_some("download_dir");
    let paused = args.take_some("paused");
    let labels_arg = args.take_some("labels");
    let unwanted_arg = args.take_some("files_unwanted");
    let wanted_arg = args.take_some("files_wanted");
    let normal_arg = args.take_some("priority_normal");
    let mut unsupported = Unsupported(Vec::new());
    let refusable = [
        "cookies",
        "peer_limit",
        "priority_high",
        "priority_low",
        "bandwidth_priority",
        "sequential_download",
        "sequential_download_from_piece",
    ];
    let mut others = Vec::new();
    for name in refusable {
        if let Some(arg) = args.take_some(name) {
            others.push((name, arg));
        }
    }
    args.refuse_rest()?;

    let filename = filename
        .map(|a| a.string())
        .transpose()?
        .filter(|s| !s.is_empty());
    let metainfo = metainfo
        .map(|a| a.string())
        .transpose()?
        .filter(|s| !s.is_empty());
    let download_dir = download_dir.map(|a| a.string()).transpose()?;
    let held = paused.map(|a| a.boolean()).transpose()?.unwrap_or(false);
    let labels = labels_arg
        .map(|a| labels(&a))
        .transpose()?
        .unwrap_or_default();
    let unwanted = unwanted_arg
        .map(|a| a.indices())
        .transpose()?
        .unwrap_or_default();
    let wanted = wanted_arg
        .map(|a| a.indices())
        .transpose()?
        .unwrap_or_default();
    let normal = normal_arg
        .map(|a| a.indices())
        .transpose()?
        .unwrap_or_default();
    for (name, arg) in &others {
        let fine = match *name {
            "cookies" => arg.string()?.is_empty(),
            "peer_limit" => {
                arg.integer()?;
                false
            }
            "priority_high" | "priority_low" => arg.indices()?.is_empty(),
            "bandwidth_priority" => arg.integer()? == 0,
            "sequential_download" => !arg.boolean()?,
            _ => arg.integer()? == 0,
        };
        unsupported.check(arg, fine);
    }

    let source_text = match (filename, metainfo) {
        (Some(_), Some(_)) => {
            return Err(Failure::params(
                "filename and metainfo are both given: send one",
            ))
        }
        (None, None) => return Err(Failure::params("no filename or metainfo specified")),
        (Some(link), None) => Err(link),
        (None, Some(meta)) => Ok(meta),
    };
    let dir = match &download_dir {
        Some(dir) => Some(drive_path(config.report_prefix.as_deref(), dir)?),
        None => None,
    };
    unsupported.verdict()?;

    let unwanted_name = style.pick("files-unwanted", "files_unwanted");
    let (source, unwanted) = match source_text {
        Ok(meta_base64) => {
            let bytes = decode_metainfo(&meta_base64).ok_or_else(Failure::unrecognized_info)?;
            let meta = Metainfo::from_bytes(&bytes).map_err(|_| Failure::unrecognized_info())?;
            let count = meta.files.len() as u64;
            if unwanted
                .iter()
                .chain(&wanted)
                .chain(&normal)
                .any(|&i| i >= count)
            {
                return Err(Failure::file_index());
            }
            let mut skip: Vec<usize> = unwanted
                .iter()
                .filter(|i| !wanted.contains(i))
                .filter_map(|&i| usize::try_from(i).ok())
                .collect();
            skip.sort_unstable();
            skip.dedup();
            if !meta.files.is_empty() && skip.len() == meta.files.len() {
                return Err(Failure::params(format!(
                    "{unwanted_name} leaves no file to download"
                )));
            }
            (
                Source::Torrent {
                    bytes,
                    web_seeds: Vec::new(),
                },
                skip,
            )
        }
        Err(link) => {
            if !is_link(&link) {
                return Err(Failure::unrecognized_info());
            }
            if !unwanted.is_empty() {
                return Err(Failure::params(format!(
                    "{unwanted_name} needs the torrent's file list: send the .torrent file as metainfo"
                )));
            }
            (Source::Uris(vec![link]), Vec::new())
        }
    };

    let categories = catalog.categories();
    let category = category_of(&labels, &categories);
    let dir = dir.or_else(|| {
        let name = category.as_deref()?;
        let cat = categories.get(name)?;
        Some(category_dir(&catalog.default_dir(), name, cat))
    });
    let task = NewTask {
        request: AddRequest {
            source,
            dir,
            out: None,
            position: None,
        },
        category,
        tags: labels,
        held,
        unwanted,
    };
    let (key, gid) = match catalog.add(task) {
        Ok(gid) => (style.pick("torrent-added", "torrent_added"), gid),
        Err(AddError::Duplicate(gid)) => {
            (style.pick("torrent-duplicate", "torrent_duplicate"), gid)
        }
        Err(AddError::Refused(reason)) => return Err(Failure::system(reason)),
    };
    let listed = catalog.listed();
    let Some(task) = listed.iter().rev().find(|t| t.gid == gid) else {
        return Err(Failure::internal(
            "the task store does not list the task it has just added",
        ));
    };
    let added = json!({
        key: {
            style.pick("hashString", "hash_string"): task.hash,
            "id": task.id,
            "name": display_name(task),
        }
    });
    Ok(json::to_text(&added, style))
}

// --- torrent-remove, -start, -stop ---------------------------------------------------

fn torrent_remove<C: Catalog + ?Sized>(
    mut args: Args<'_>,
    catalog: &mut C,
    state: &State,
) -> Outcome {
    let ids = read_ids(&mut args)?;
    let delete_files = args
        .take_some("delete_local_data")
        .map(|a| a.boolean())
        .transpose()?
        .unwrap_or(false);
    args.refuse_rest()?;
    let chosen: Vec<(Gid, u64)> = select(&*catalog, &ids)
        .iter()
        .map(|t| (t.gid, t.id))
        .collect();
    let mut first_error = None;
    for (gid, id) in chosen {
        match catalog.delete(gid, delete_files) {
            Ok(()) => state.record_removed(id),
            Err(e) => {
                first_error.get_or_insert(e.0);
            }
        }
    }
    match first_error {
        None => Ok("{}".into()),
        Some(reason) => Err(Failure::system(reason)),
    }
}

fn start_stop<C: Catalog + ?Sized>(mut args: Args<'_>, catalog: &mut C, stop: bool) -> Outcome {
    let ids = read_ids(&mut args)?;
    args.refuse_rest()?;
    let chosen: Vec<Gid> = select(&*catalog, &ids)
        .iter()
        .filter(|t| {
            if stop {
                !t.held
                    && matches!(
                        t.state,
                        TaskState::Queued | TaskState::Submitting | TaskState::Running
                    )
            } else {
                t.held
            }
        })
        .map(|t| t.gid)
        .collect();
    for gid in chosen {
        // `Hold::NotPossible`: the drive has it; nothing to do (see the module docs).
        let _: Hold = catalog.hold(gid, stop);
    }
    Ok("{}".into())
}

// --- torrent-set, torrent-set-location ----------------------------------------------

/// The files of a task as `torrent-get` lists them: (count, wanted flags).
fn file_selection(task: &TaskView) -> Vec<bool> {
    if !task.files.is_empty() {
        return task.files.iter().map(|f| f.selected).collect();
    }
    let named = task.name.as_deref().is_some_and(|n| !n.is_empty())
        || task
            .torrent
            .as_ref()
            .and_then(|t| t.name.as_deref())
            .is_some();
    if named {
        vec![true]
    } else {
        Vec::new()
    }
}

/// Whether `location` (a path a client sent) names drive folder `drive_dir`.
fn same_folder(prefix: Option<&str>, drive_dir: &str, location: &str) -> bool {
    let ours = crate::catalog::drive_path(None, drive_dir, "/");
    let theirs = crate::catalog::drive_path(prefix, location, "/");
    matches!((ours, theirs), (Ok(a), Ok(b)) if a == b)
}

fn torrent_set<C: Catalog + ?Sized>(
    mut args: Args<'_>,
    catalog: &mut C,
    config: &Config,
) -> Outcome {
    let ids = read_ids(&mut args)?;
    let labels_arg = args.take_some("labels");
    let vacuous = [
        "seed_ratio_limit",
        "seed_ratio_mode",
        "seed_idle_limit",
        "seed_idle_mode",
        "upload_limit",
        "upload_limited",
    ];
    let conditional = [
        "bandwidth_priority",
        "download_limited",
        "honors_session_limits",
        "sequential_download",
        "group",
        "priority_normal",
        "files_wanted",
        "files_unwanted",
        "location",
    ];
    let refused = [
        "download_limit",
        "peer_limit",
        "queue_position",
        "priority_high",
        "priority_low",
        "tracker_add",
        "tracker_list",
        "tracker_remove",
        "tracker_replace",
        "sequential_download_from_piece",
    ];
    let mut taken: Vec<(&str, Arg<'_>)> = Vec::new();
    for name in vacuous.iter().chain(&conditional).chain(&refused) {
        if let Some(arg) = args.take(name) {
            taken.push((name, arg));
        }
    }
    args.refuse_rest()?;
    let labels = labels_arg.map(|a| labels(&a)).transpose()?;

    let tasks = select(&*catalog, &ids);
    let prefix = config.report_prefix.as_deref();
    let mut unsupported = Unsupported(Vec::new());
    for (name, arg) in &taken {
        let fine = match *name {
            "seed_ratio_limit" => {
                arg.number()?;
                true
            }
            "upload_limited" => {
                arg.boolean()?;
                true
            }
            "seed_ratio_mode" | "seed_idle_limit" | "seed_idle_mode" | "upload_limit" => {
                arg.integer()?;
                true
            }
            "bandwidth_priority" => arg.integer()? == 0,
            "download_limited" | "sequential_download" => !arg.boolean()?,
            "honors_session_limits" => arg.boolean()?,
            "group" => arg.string()?.is_empty(),
            "priority_normal" | "files_wanted" | "files_unwanted" => {
                let indices = arg.indices()?;
                let mut fine = true;
                for task in &tasks {
                    let files = file_selection(task);
                    if indices.iter().any(|&i| i >= files.len() as u64) {
                        return Err(Failure::file_index());
                    }
                    let all: Vec<u64> = (0..files.len() as u64).collect();
                    let named = if indices.is_empty() { &all } else { &indices };
                    let wanted = |i: &u64| {
                        files
                            .get(usize::try_from(*i).unwrap_or(usize::MAX))
                            .copied()
                    };
                    fine &= match *name {
                        "files_wanted" => named.iter().all(|i| wanted(i) == Some(true)),
                        "files_unwanted" => named.iter().all(|i| wanted(i) == Some(false)),
                        _ => true,
                    };
                }
                fine
            }
            "location" => {
                let location = arg.string()?;
                tasks.iter().all(|t| same_folder(prefix, &t.dir, &location))
            }
            _ => false,
        };
        unsupported.check(arg, fine);
    }
    unsupported.verdict()?;

    let Some(labels) = labels else {
        return Ok("{}".into());
    };
    let categories = catalog.categories();
    let category = category_of(&labels, &categories);
    let chosen: Vec<Gid> = tasks.iter().map(|t| t.gid).collect();
    for gid in chosen {
        catalog
            .set_tags(gid, &labels)
            .map_err(|e| Failure::system(e.0))?;
        catalog
            .set_category(gid, category.as_deref())
            .map_err(|e| Failure::system(e.to_string()))?;
    }
    Ok("{}".into())
}

fn torrent_set_location<C: Catalog + ?Sized>(
    mut args: Args<'_>,
    catalog: &mut C,
    config: &Config,
) -> Outcome {
    let ids = read_ids(&mut args)?;
    let location = args.take_some("location");
    let moving = args.take_some("move");
    args.refuse_rest()?;
    let Some(location) = location.filter(|l| kind(l.raw()) == Kind::String) else {
        return Err(Failure::params("no location"));
    };
    let location = location.string()?;
    if !location.starts_with('/') {
        return Err(Failure::path_not_absolute(
            "new location path is not absolute",
        ));
    }
    moving.map(|m| m.boolean()).transpose()?;
    let prefix = config.report_prefix.as_deref();
    let all_there = select(&*catalog, &ids)
        .iter()
        .all(|t| same_folder(prefix, &t.dir, &location));
    if all_there {
        return Ok("{}".into());
    }
    Err(Failure::params(
        "a cloud-drive task cannot be moved: its files stay where the drive stored them",
    ))
}
