//! `session-get`, `session-set` and `session-stats`.
//!
//! The session's keys and their values (rpc-spec.md 4.0.6 §4.1 and 4.1 §4.1; the
//! list Transmission 4.0.6 answers is `addSessionField` in `libtransmission/rpcimpl.cc`,
//! 4.1's is `session_accessors`). The values are Transmission's defaults
//! (`docs/Editing-Configuration-Files.md`) except where this daemon differs:
//!
//! | key (old / new name) | value | why |
//! | --- | --- | --- |
//! | `download-dir` / `download_dir` | [`Catalog::default_dir`] under [`Config::report_prefix`] | where downloads go |
//! | `incomplete-dir` / `incomplete_dir` | the same | no separate folder for partial files |
//! | `incomplete-dir-enabled`, `rename-partial-files` | `false` | the drive keeps partial files to itself |
//! | `download-dir-free-space` | `-1` | the drive's free space is unknown (what Transmission says of a folder it cannot read) |
//! | `config-dir` | `""` | the daemon has no Transmission configuration folder |
//! | `seedRatioLimited` / `seed_ratio_limited`, `idle-seeding-limit-enabled` | `false` | the drive does not seed |
//! | `download-queue-enabled`, `seed-queue-enabled`, `queue-stalled-enabled` | `false` | the daemon's queue is not Transmission's |
//! | `dht-enabled`, `pex-enabled`, `lpd-enabled`, `utp-enabled`, `tcp-enabled`, `port-forwarding-enabled`, `blocklist-enabled` | `false` | the daemon talks to no peers |
//! | `preferred_transports` (4.1 only) | `[]` | the same |
//! | `version` | `4.0.6 (offline-<version>)` / `4.1.0 (offline-<version>)` | see the module's versions |
//! | `rpc-version`, `rpc-version-minimum`, `rpc-version-semver` | `17`, `14`, `"5.3.0"` / `18`, `14`, `"6.0.0"` | the same |
//! | `units` | 4.0.6's four units / 4.1's five | as each version answers |
//!
//! `session-set` changes nothing: the daemon has no setting a Transmission client
//! could change. A key whose value is what `session-get` answers changes nothing and
//! is accepted; any other known key is refused (`cannot be changed on this daemon: …`,
//! naming every such key), and unknown keys are refused too (`unknown arguments: …`):
//! no key is ignored without a word.
//!
//! `session-stats`: the daemon keeps no transfer history, so both stats objects count
//! the tasks listed now: `downloadedBytes` the bytes they downloaded, `filesAdded`
//! their number, `sessionCount` 1, `secondsActive` 0 (no clock is read),
//! `uploadedBytes` 0.

use serde_json::{json, Value};

use super::args::{kind, Args, Kind};
use super::envelope::{Failure, Outcome};
use super::fields::{facts, Status};
use super::json::{self, Style};
use super::{Config, State};
use crate::catalog::report_path;
use crate::catalog::Catalog;

/// What a session value is computed from.
pub(super) struct Ctx<'a> {
    pub(super) style: Style,
    pub(super) download_dir: String,
    pub(super) session_id: &'a str,
    pub(super) version: &'a str,
}

/// One session key.
pub(super) struct Key {
    /// (old name, snake_case name).
    pub(super) names: (&'static str, &'static str),
    /// Answered in the bespoke protocol too (false: a 4.1 key, JSON-RPC 2.0 only).
    legacy: bool,
    value: fn(&Ctx<'_>) -> Value,
}

macro_rules! keys {
    ($( $legacy:literal $snake:literal $both:literal => $value:expr ;)*) => {
        /// Every session key, in the order of the spec's table.
        pub(super) const KEYS: &[Key] = &[
            $( Key { names: ($legacy, $snake), legacy: $both, value: $value }, )*
        ];
    };
}

keys! {
    "alt-speed-down" "alt_speed_down" true => |_| json!(50);
    "alt-speed-enabled" "alt_speed_enabled" true => |_| json!(false);
    "alt-speed-time-begin" "alt_speed_time_begin" true => |_| json!(540);
    "alt-speed-time-day" "alt_speed_time_day" true => |_| json!(127);
    "alt-speed-time-enabled" "alt_speed_time_enabled" true => |_| json!(false);
    "alt-speed-time-end" "alt_speed_time_end" true => |_| json!(1020);
    "alt-speed-up" "alt_speed_up" true => |_| json!(50);
    "anti-brute-force-enabled" "anti_brute_force_enabled" true => |_| json!(false);
    "anti-brute-force-threshold" "anti_brute_force_threshold" true => |_| json!(100);
    "blocklist-enabled" "blocklist_enabled" true => |_| json!(false);
    "blocklist-size" "blocklist_size" true => |_| json!(0);
    "blocklist-url" "blocklist_url" true => |_| json!("http://www.example.com/blocklist");
    "cache-size-mb" "cache_size_mib" true => |_| json!(4);
    "config-dir" "config_dir" true => |_| json!("");
    "default-trackers" "default_trackers" true => |_| json!("");
    "dht-enabled" "dht_enabled" true => |_| json!(false);
    "download-dir" "download_dir" true => |c| json!(c.download_dir);
    "download-dir-free-space" "download_dir_free_space" true => |_| json!(-1);
    "download-queue-enabled" "download_queue_enabled" true => |_| json!(false);
    "download-queue-size" "download_queue_size" true => |_| json!(5);
    "encryption" "encryption" true => |_| json!("preferred");
    "idle-seeding-limit" "idle_seeding_limit" true => |_| json!(30);
    "idle-seeding-limit-enabled" "idle_seeding_limit_enabled" true => |_| json!(false);
    "incomplete-dir" "incomplete_dir" true => |c| json!(c.download_dir);
    "incomplete-dir-enabled" "incomplete_dir_enabled" true => |_| json!(false);
    "lpd-enabled" "lpd_enabled" true => |_| json!(false);
    "peer-limit-global" "peer_limit_global" true => |_| json!(200);
    "peer-limit-per-torrent" "peer_limit_per_torrent" true => |_| json!(50);
    "peer-port" "peer_port" true => |_| json!(51413);
    "peer-port-random-on-start" "peer_port_random_on_start" true => |_| json!(false);
    "pex-enabled" "pex_enabled" true => |_| json!(false);
    "port-forwarding-enabled" "port_forwarding_enabled" true => |_| json!(false);
    "preferred_transports" "preferred_transports" false => |_| json!([]);
    "queue-stalled-enabled" "queue_stalled_enabled" true => |_| json!(false);
    "queue-stalled-minutes" "queue_stalled_minutes" true => |_| json!(30);
    "rename-partial-files" "rename_partial_files" true => |_| json!(false);
    "reqq" "reqq" false => |_| json!(2000);
    "rpc-version" "rpc_version" true => |c| json!(c.style.pick_n(super::RPC_VERSION, super::JSONRPC_RPC_VERSION));
    "rpc-version-minimum" "rpc_version_minimum" true => |_| json!(super::RPC_VERSION_MINIMUM);
    "rpc-version-semver" "rpc_version_semver" true => |c| json!(c.style.pick(super::RPC_VERSION_SEMVER, super::JSONRPC_RPC_VERSION_SEMVER));
    "script-torrent-added-enabled" "script_torrent_added_enabled" true => |_| json!(false);
    "script-torrent-added-filename" "script_torrent_added_filename" true => |_| json!("");
    "script-torrent-done-enabled" "script_torrent_done_enabled" true => |_| json!(false);
    "script-torrent-done-filename" "script_torrent_done_filename" true => |_| json!("");
    "script-torrent-done-seeding-enabled" "script_torrent_done_seeding_enabled" true => |_| json!(false);
    "script-torrent-done-seeding-filename" "script_torrent_done_seeding_filename" true => |_| json!("");
    "seed-queue-enabled" "seed_queue_enabled" true => |_| json!(false);
    "seed-queue-size" "seed_queue_size" true => |_| json!(10);
    "seedRatioLimit" "seed_ratio_limit" true => |_| json::real(2.0);
    "seedRatioLimited" "seed_ratio_limited" true => |_| json!(false);
    "sequential_download" "sequential_download" false => |_| json!(false);
    "session-id" "session_id" true => |c| json!(c.session_id);
    "speed-limit-down" "speed_limit_down" true => |_| json!(100);
    "speed-limit-down-enabled" "speed_limit_down_enabled" true => |_| json!(false);
    "speed-limit-up" "speed_limit_up" true => |_| json!(100);
    "speed-limit-up-enabled" "speed_limit_up_enabled" true => |_| json!(false);
    "start-added-torrents" "start_added_torrents" true => |_| json!(true);
    "tcp-enabled" "tcp_enabled" true => |_| json!(false);
    "trash-original-torrent-files" "trash_original_torrent_files" true => |_| json!(false);
    "units" "units" true => units;
    "utp-enabled" "utp_enabled" true => |_| json!(false);
    "version" "version" true => |c| json!(c.version);
}

/// `units`: Transmission 4.0.6's daemon (`daemon/daemon.cc`: kB, kB/s, KiB; four
/// units each) or 4.1's (`values_get_units`: five units each, from the byte).
fn units(c: &Ctx<'_>) -> Value {
    match c.style {
        Style::Legacy => json!({
            "memory-bytes": 1024,
            "memory-units": ["KiB", "MiB", "GiB", "TiB"],
            "size-bytes": 1000,
            "size-units": ["kB", "MB", "GB", "TB"],
            "speed-bytes": 1000,
            "speed-units": ["kB/s", "MB/s", "GB/s", "TB/s"],
        }),
        Style::JsonRpc => json!({
            "memory_bytes": 1024,
            "memory_units": ["B", "KiB", "MiB", "GiB", "TiB"],
            "size_bytes": 1000,
            "size_units": ["B", "kB", "MB", "GB", "TB"],
            "speed_bytes": 1000,
            "speed_units": ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"],
        }),
    }
}

/// The keys this style answers, with the name it answers each under.
fn answered(style: Style) -> impl Iterator<Item = (&'static str, &'static Key)> {
    KEYS.iter()
        .filter(move |k| style == Style::JsonRpc || k.legacy)
        .map(move |k| (style.pick(k.names.0, k.names.1), k))
}

/// The key named `name` in a request of `style` (a bespoke request may use either
/// name, as 4.1's `api-compat.cc` converts them).
fn lookup(style: Style, name: &str) -> Option<&'static Key> {
    answered(style)
        .find(|(answered, k)| *answered == name || (style == Style::Legacy && k.names.1 == name))
        .map(|(_, k)| k)
}

fn context<'a, C: Catalog + ?Sized>(
    style: Style,
    catalog: &C,
    state: &'a State,
    config: &'a Config,
    version: &'a str,
) -> Ctx<'a> {
    Ctx {
        style,
        download_dir: report_path(config.report_prefix.as_deref(), &catalog.default_dir()),
        session_id: state.session_id(),
        version,
    }
}

/// `session-get`: every key, or those named by `fields` (unknown names skipped, as
/// Transmission does).
pub(super) fn get<C: Catalog + ?Sized>(
    mut args: Args<'_>,
    catalog: &C,
    state: &State,
    config: &Config,
) -> Outcome {
    let style = args.style();
    let version = super::version_text(style, &config.version);
    let ctx = context(style, catalog, state, config, &version);
    let wanted: Option<Vec<String>> = args.take_some("fields").map(|f| f.strings()).transpose()?;
    let mut map = serde_json::Map::new();
    match wanted {
        None => {
            for (name, key) in answered(style) {
                map.insert(name.to_owned(), (key.value)(&ctx));
            }
        }
        Some(names) => {
            for name in names {
                if let Some(key) = lookup(style, &name) {
                    let answered = style.pick(key.names.0, key.names.1);
                    map.insert(answered.to_owned(), (key.value)(&ctx));
                }
            }
        }
    }
    Ok(json::to_text(&Value::Object(map), style))
}

/// `session-set`: see the module's docs.
pub(super) fn set<C: Catalog + ?Sized>(
    mut args: Args<'_>,
    catalog: &C,
    state: &State,
    config: &Config,
) -> Outcome {
    let style = args.style();
    let version = super::version_text(style, &config.version);
    let ctx = context(style, catalog, state, config, &version);
    let mut refused = Vec::new();
    let mut unknown = Vec::new();
    for name in args
        .rest()
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    {
        let Some(key) = lookup(style, &name) else {
            unknown.push(name);
            continue;
        };
        let arg = args
            .take(key.names.1)
            .expect("a key found by its name was sent");
        if !same(&(key.value)(&ctx), arg.raw()) {
            refused.push(arg.name);
        }
    }
    if !refused.is_empty() {
        return Err(Failure::params(format!(
            "cannot be changed on this daemon: {}",
            super::args::names_list(refused.iter().map(String::as_str))
        )));
    }
    if !unknown.is_empty() {
        return Err(Failure::params(format!(
            "unknown arguments: {}",
            super::args::names_list(unknown.iter().map(String::as_str))
        )));
    }
    Ok("{}".into())
}

/// Whether `sent` asks for `current`: equal JSON, numbers compared as numbers,
/// booleans also as `0`/`1`/`"true"`/`"false"`, folders with or without a final `/`.
fn same(current: &Value, sent: &serde_json::value::RawValue) -> bool {
    let Ok(sent) = serde_json::from_str::<Value>(sent.get()) else {
        return false;
    };
    match (current, &sent) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Bool(a), Value::Number(n)) => n.as_u64() == Some(u64::from(*a)),
        (Value::Bool(a), Value::String(s)) => s == if *a { "true" } else { "false" },
        (Value::String(a), Value::String(b)) => {
            a == b || (a.len() > 1 && a.trim_end_matches('/') == b.trim_end_matches('/'))
        }
        _ => *current == sent,
    }
}

/// `session-stats`: see the module's docs.
pub(super) fn stats<C: Catalog + ?Sized>(args: &Args<'_>, catalog: &C) -> Outcome {
    let style = args.style();
    let tasks = catalog.listed();
    let mut active = 0u64;
    let mut speed = 0u64;
    let mut downloaded = 0u64;
    for task in &tasks {
        let f = facts(task);
        if f.status == Status::Download {
            active += 1;
            speed = speed.saturating_add(f.rate_download);
        }
        downloaded = downloaded.saturating_add(f.have);
    }
    let total = tasks.len() as u64;
    let stats = |style: Style| {
        let mut m = serde_json::Map::new();
        let mut put = |legacy: &'static str, snake: &'static str, v: Value| {
            m.insert(style.pick(legacy, snake).to_owned(), v);
        };
        put("downloadedBytes", "downloaded_bytes", json!(downloaded));
        put("filesAdded", "files_added", json!(total));
        put("secondsActive", "seconds_active", json!(0));
        put("sessionCount", "session_count", json!(1));
        put("uploadedBytes", "uploaded_bytes", json!(0));
        Value::Object(m)
    };
    let mut m = serde_json::Map::new();
    let mut put = |legacy: &'static str, snake: &'static str, v: Value| {
        m.insert(style.pick(legacy, snake).to_owned(), v);
    };
    put("activeTorrentCount", "active_torrent_count", json!(active));
    put("cumulative-stats", "cumulative_stats", stats(style));
    put("current-stats", "current_stats", stats(style));
    put("downloadSpeed", "download_speed", json!(speed));
    put(
        "pausedTorrentCount",
        "paused_torrent_count",
        json!(total - active),
    );
    put("torrentCount", "torrent_count", json!(total));
    put("uploadSpeed", "upload_speed", json!(0));
    Ok(json::to_text(&Value::Object(m), style))
}

/// `free-space`: Transmission answers a folder it cannot measure with `size-bytes` and
/// `total_size` `-1` and the system's error as the result (rpc-spec.md §4.7;
/// `freeSpace` in rpcimpl.cc); the drive's free space is unknown to the daemon, so
/// every absolute path is answered so. A missing or relative path is refused as
/// Transmission refuses it.
pub(super) fn free_space(mut args: Args<'_>) -> Outcome {
    let style = args.style();
    let path = match args.take_some("path") {
        None => {
            return Err(Failure::params("directory path argument is missing"));
        }
        Some(arg) if kind(arg.raw()) != Kind::String => {
            return Err(Failure::params("directory path argument is missing"));
        }
        Some(arg) => arg.string()?,
    };
    if !path.starts_with('/') {
        return Err(Failure::path_not_absolute("directory path is not absolute"));
    }
    let mut m = serde_json::Map::new();
    m.insert("path".into(), json!(path));
    m.insert(style.pick("size-bytes", "size_bytes").into(), json!(-1));
    m.insert("total_size".into(), json!(-1));
    Err(
        Failure::system("the free space of a cloud drive is unknown to this daemon")
            .with_result(json::to_text(&Value::Object(m), style)),
    )
}
