//! Method dispatch: one [`Request`] in, one [`Response`] out.
//!
//! What each method does here (aria2 manual, RPC interface, under each method's name,
//! for the parameters, answers and `OK`s; the error messages are aria2's own):
//!
//! - `aria2.addUri(uris[, options[, position]])`: [`Downloads::add`] with
//!   [`Source::Uris`]; the GID. Options read: `dir`, `out` (string values); the others
//!   are accepted and ignored, as aria2 skips options that do not apply.
//! - `aria2.addTorrent(torrent[, uris[, options[, position]]])`: `torrent` is base64
//!   (padding optional); [`Source::Torrent`]; the GID.
//! - `aria2.remove(gid)`, `aria2.forceRemove(gid)`: for an active or waiting task,
//!   [`Downloads::remove`]; the GID. A stopped or unknown one: "Active Download not
//!   found for GID#…".
//! - `aria2.pause`, `aria2.forcePause`, `aria2.unpause` (gid): a cloud drive's task
//!   cannot be paused, so they answer as aria2 does for a download it cannot pause:
//!   "GID#… cannot be paused now" / "… cannot be unpaused now". `pauseAll`,
//!   `forcePauseAll`, `unpauseAll`: `OK`, doing nothing (there is nothing to pause).
//! - `aria2.tellStatus(gid[, keys])`, `aria2.getUris(gid)`, `aria2.getFiles(gid)`: see
//!   [`status`](super::status()), [`uris`](super::uris()), [`files`](super::files()).
//!   `aria2.getPeers(gid)`: `[]` (the drive's peers are not ours to see).
//! - `aria2.tellActive([keys])`, `aria2.tellWaiting(offset, num[, keys])`,
//!   `aria2.tellStopped(offset, num[, keys])`: pages of the queues, negative offsets
//!   counting from the end in reverse order ([`page`]).
//! - `aria2.removeDownloadResult(gid)`: for a stopped task,
//!   [`Downloads::remove_result`]; `OK`. `aria2.purgeDownloadResult`:
//!   [`Downloads::purge_results`]; `OK`.
//! - `aria2.getGlobalStat`: the queues' counts (`numStoppedTotal` = `numStopped`: no
//!   cap applies) and [`Downloads::download_speed`].
//! - `aria2.getVersion`: [`Config::version`] and [`ENABLED_FEATURES`].
//!   `aria2.getSessionInfo`: [`Config::session_id`].
//! - `aria2.getGlobalOption`: `{"dir": default dir}`; `aria2.getOption(gid)`: the task's
//!   `dir`, and `out` when its name is known. The secret is never among them.
//!   `aria2.changeGlobalOption(options)`, `aria2.changeOption(gid, options)`: `OK`,
//!   ignoring every option (none has a meaning for a task the drive runs).
//! - `aria2.saveSession`: `OK` (the daemon's store is its session).
//! - `system.multicall`, `system.listMethods`, `system.listNotifications`: as the
//!   manual says.
//!
//! Not provided (answered "No such method: …"): `addMetalink`, `changePosition`,
//! `changeUri`, `getServers`, `shutdown`, `forceShutdown`.

use std::ops::Range;

use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::auth::Caller;
use super::envelope::{Request, Response, RpcError, MAX_BATCH_LEN};
use super::status::number;
use super::{files, status, uris, AddRequest, Config, Downloads, Event, Gid, Queue, Source};
use crate::secret::constant_time_eq;

/// What `system.listMethods` answers: every method [`handle`] serves.
pub const METHODS: [&str; 30] = [
    "aria2.addUri",
    "aria2.addTorrent",
    "aria2.remove",
    "aria2.forceRemove",
    "aria2.pause",
    "aria2.pauseAll",
    "aria2.forcePause",
    "aria2.forcePauseAll",
    "aria2.unpause",
    "aria2.unpauseAll",
    "aria2.tellStatus",
    "aria2.getUris",
    "aria2.getFiles",
    "aria2.getPeers",
    "aria2.tellActive",
    "aria2.tellWaiting",
    "aria2.tellStopped",
    "aria2.getOption",
    "aria2.changeOption",
    "aria2.getGlobalOption",
    "aria2.changeGlobalOption",
    "aria2.getGlobalStat",
    "aria2.purgeDownloadResult",
    "aria2.removeDownloadResult",
    "aria2.getVersion",
    "aria2.getSessionInfo",
    "aria2.saveSession",
    "system.multicall",
    "system.listMethods",
    "system.listNotifications",
];

/// What `aria2.getVersion` lists as `enabledFeatures` (aria2's own feature names, for
/// what this daemon offers: torrents, and HTTPS sources).
pub const ENABLED_FEATURES: [&str; 2] = ["BitTorrent", "HTTPS"];

/// Executes one request against `store`.
///
/// The secret (aria2 manual, RPC interface, RPC authorization secret token): a first
/// parameter that is a string starting with `token:` is always taken off the
/// parameters; when [`Config::secret`] is set, it must be there and match (compared in
/// constant time), else the answer is code 1 "Unauthorized" and
/// [`Response::unauthorized`] is set. `system.listMethods` and
/// `system.listNotifications` need no token; `system.multicall` needs none itself, and
/// each call inside it is checked on its own.
pub fn handle<D: Downloads + ?Sized>(request: Request, store: &mut D, config: &Config) -> Response {
    handle_from(request, store, config, Caller::Anonymous)
}

/// [`handle`] for a request from `caller`: an [`Caller::Authenticated`] one needs no
/// token (a `token:` parameter it sends is taken off, not checked).
pub fn handle_from<D: Downloads + ?Sized>(
    request: Request,
    store: &mut D,
    config: &Config,
    caller: Caller,
) -> Response {
    let Request { id, method, params } = request;
    let (result, unauthorized) = call(&method, params, store, config, caller);
    Response {
        id,
        result,
        unauthorized,
    }
}

/// One call: its result, and whether it was refused for its token.
fn call<D: Downloads + ?Sized>(
    method: &str,
    mut params: Vec<Value>,
    store: &mut D,
    config: &Config,
    caller: Caller,
) -> (Result<Value, RpcError>, bool) {
    match method {
        "system.listMethods" => return (Ok(json!(METHODS)), false),
        "system.listNotifications" => {
            let names: Vec<_> = Event::ALL.iter().map(|e| e.method()).collect();
            return (Ok(json!(names)), false);
        }
        "system.multicall" => return multicall(params, store, config, caller),
        _ => {}
    }
    let token = match params.first() {
        Some(Value::String(first)) => first.strip_prefix("token:").map(str::to_owned),
        _ => None,
    };
    if token.is_some() {
        params.remove(0);
    }
    if let (Some(secret), Caller::Anonymous) = (&config.secret, caller) {
        let matches =
            |given: &String| constant_time_eq(given.as_bytes(), secret.expose().as_bytes());
        if !token.as_ref().is_some_and(matches) {
            return (Err(RpcError::aria2("Unauthorized")), true);
        }
    }
    let result = dispatch(method, &Params(params), store, config).map_err(RpcError::aria2);
    (result, false)
}

/// `system.multicall(methods)`: aria2 manual, RPC interface, `system.multicall`: each
/// element `{"methodName","params"}`; the answer has, per call, a one-item array with
/// its result or an error struct.
fn multicall<D: Downloads + ?Sized>(
    params: Vec<Value>,
    store: &mut D,
    config: &Config,
    caller: Caller,
) -> (Result<Value, RpcError>, bool) {
    let params = Params(params);
    let refusal = match params.required(0, Value::as_array) {
        Ok(calls) if calls.len() > MAX_BATCH_LEN => Some(format!(
            "system.multicall takes at most {MAX_BATCH_LEN} calls."
        )),
        Ok(_) => None,
        Err(message) => Some(message),
    };
    if let Some(message) = refusal {
        return (Err(RpcError::aria2(message)), false);
    }
    let Some(Value::Array(calls)) = params.0.into_iter().next() else {
        unreachable!("parameter 0 was just read as an array")
    };
    let mut unauthorized = false;
    let answers = calls
        .into_iter()
        .map(|spec| {
            let result = match spec {
                Value::Object(mut spec) => match spec.remove("methodName") {
                    Some(Value::String(name)) if name == "system.multicall" => {
                        Err(RpcError::aria2("Recursive system.multicall forbidden."))
                    }
                    Some(Value::String(name)) => {
                        let params = match spec.remove("params") {
                            Some(Value::Array(params)) => params,
                            _ => Vec::new(),
                        };
                        let (result, refused) = call(&name, params, store, config, caller);
                        unauthorized |= refused;
                        result
                    }
                    _ => Err(RpcError::aria2("Missing methodName.")),
                },
                _ => Err(RpcError::aria2("system.multicall expected struct.")),
            };
            match result {
                Ok(value) => json!([value]),
                Err(error) => json!(error),
            }
        })
        .collect();
    (Ok(Value::Array(answers)), unauthorized)
}

/// A method's positional parameters, the token taken off; errors are aria2's
/// messages, with 0-based positions.
struct Params(Vec<Value>);

impl Params {
    /// Parameter `i` if present, of the type `read` accepts.
    fn optional<'a, T>(
        &'a self,
        i: usize,
        read: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, String> {
        self.0
            .get(i)
            .map(|v| read(v).ok_or_else(|| format!("The parameter at {i} has wrong type.")))
            .transpose()
    }

    /// Parameter `i`, of the type `read` accepts.
    fn required<'a, T>(
        &'a self,
        i: usize,
        read: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<T, String> {
        self.optional(i, read)?
            .ok_or_else(|| format!("The parameter at {i} is required but missing."))
    }

    /// Parameter `i`, a GID.
    fn gid(&self, i: usize) -> Result<Gid, String> {
        let text = self.required(i, Value::as_str)?;
        text.parse().map_err(|_| {
            let shown: String = text.chars().take(32).collect();
            format!("Invalid GID {shown}")
        })
    }

    /// Parameter `i` if present, an array, its strings taken ([`texts`]).
    fn strings(&self, i: usize) -> Result<Vec<String>, String> {
        Ok(self
            .optional(i, Value::as_array)?
            .map_or_else(Vec::new, |a| texts(a)))
    }

    /// Parameter `i`, an options struct, and its `dir` and `out`.
    fn options(&self, i: usize) -> Result<(Option<String>, Option<String>), String> {
        let options = self.optional(i, Value::as_object)?;
        let get = |key: &str| {
            options
                .and_then(|o| o.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Ok((get("dir"), get("out")))
    }

    /// Parameter `i`, the queue position.
    fn position(&self, i: usize) -> Result<Option<u64>, String> {
        match self.optional(i, Value::as_i64)? {
            Some(p) => u64::try_from(p)
                .map(Some)
                .map_err(|_| "Position must be greater than or equal to 0.".to_owned()),
            None => Ok(None),
        }
    }
}

/// The strings of `items`; other elements are skipped, as aria2 does.
fn texts(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// Pads or not: aria2's clients send standard base64 with padding; some leave it off.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn dispatch<D: Downloads + ?Sized>(
    method: &str,
    p: &Params,
    store: &mut D,
    config: &Config,
) -> Result<Value, String> {
    let ok = || Ok(json!("OK"));
    let stored = |e: super::StoreError| e.0;
    match method {
        "aria2.addUri" => {
            let uris = texts(p.required(0, Value::as_array)?);
            let (dir, out) = p.options(1)?;
            let position = p.position(2)?;
            if uris.is_empty() {
                return Err("URI is not provided.".into());
            }
            let source = Source::Uris(uris);
            let gid = store.add(AddRequest {
                source,
                dir,
                out,
                position,
            });
            Ok(json!(gid.map_err(stored)?))
        }
        "aria2.addTorrent" => {
            let text = p.required(0, Value::as_str)?;
            let web_seeds = p.strings(1)?;
            let (dir, out) = p.options(2)?;
            let position = p.position(3)?;
            let bytes = BASE64
                .decode(text.trim())
                .map_err(|_| "The parameter at 0 is not valid base64.".to_owned())?;
            if bytes.is_empty() {
                return Err("No Torrent to download.".into());
            }
            let source = Source::Torrent { bytes, web_seeds };
            let gid = store.add(AddRequest {
                source,
                dir,
                out,
                position,
            });
            Ok(json!(gid.map_err(stored)?))
        }
        "aria2.remove" | "aria2.forceRemove" => {
            let gid = p.gid(0)?;
            match store.task(gid) {
                Some(task) if task.state.queue() != Queue::Stopped => {
                    store
                        .remove(gid, method == "aria2.forceRemove")
                        .map_err(stored)?;
                    Ok(json!(gid))
                }
                _ => Err(format!("Active Download not found for GID#{gid}")),
            }
        }
        "aria2.pause" | "aria2.forcePause" => {
            Err(format!("GID#{} cannot be paused now", p.gid(0)?))
        }
        "aria2.unpause" => Err(format!("GID#{} cannot be unpaused now", p.gid(0)?)),
        "aria2.pauseAll" | "aria2.forcePauseAll" | "aria2.unpauseAll" => ok(),
        "aria2.tellStatus" => {
            let task = known(p, store, "No such download for GID#")?;
            Ok(status(&task, &p.strings(1)?))
        }
        "aria2.getUris" => Ok(json!(uris(&known(
            p,
            store,
            "No URI data is available for GID#"
        )?))),
        "aria2.getFiles" => Ok(json!(files(&known(
            p,
            store,
            "No file data is available for GID#"
        )?))),
        "aria2.getPeers" => {
            known(p, store, "No peer data is available for GID#")?;
            Ok(json!([]))
        }
        "aria2.tellActive" => {
            let keys = p.strings(0)?;
            let tasks = store.list(Queue::Active, 0..store.count(Queue::Active));
            Ok(tasks.iter().map(|t| status(t, &keys)).collect())
        }
        "aria2.tellWaiting" => tell_page(p, store, Queue::Waiting),
        "aria2.tellStopped" => tell_page(p, store, Queue::Stopped),
        "aria2.getOption" => {
            let task = known(p, store, "Cannot get option for GID#")?;
            let mut options = Map::new();
            options.insert("dir".into(), json!(task.dir));
            if let Some(name) = task.name {
                options.insert("out".into(), json!(name));
            }
            Ok(Value::Object(options))
        }
        "aria2.changeOption" => {
            known(p, store, "Cannot change option for GID#")?;
            p.required(1, Value::as_object)?;
            ok()
        }
        "aria2.getGlobalOption" => Ok(json!({ "dir": config.default_dir })),
        "aria2.changeGlobalOption" => {
            p.required(0, Value::as_object)?;
            ok()
        }
        "aria2.getGlobalStat" => {
            let count = |q| number(store.count(q) as u64);
            Ok(json!({
                "downloadSpeed": number(store.download_speed()),
                "numActive": count(Queue::Active),
                "numStopped": count(Queue::Stopped),
                "numStoppedTotal": count(Queue::Stopped),
                "numWaiting": count(Queue::Waiting),
                "uploadSpeed": number(0),
            }))
        }
        "aria2.purgeDownloadResult" => {
            store.purge_results();
            ok()
        }
        "aria2.removeDownloadResult" => {
            let gid = p.gid(0)?;
            match store.task(gid) {
                Some(task) if task.state.queue() == Queue::Stopped => {
                    store.remove_result(gid).map_err(stored)?;
                    ok()
                }
                _ => Err(format!("Could not remove download result of GID#{gid}")),
            }
        }
        "aria2.getVersion" => Ok(json!({
            "enabledFeatures": ENABLED_FEATURES,
            "version": config.version,
        })),
        "aria2.getSessionInfo" => Ok(json!({ "sessionId": config.session_id })),
        "aria2.saveSession" => ok(),
        _ => Err(format!("No such method: {method}")),
    }
}

/// The task named by parameter 0, or `missing` followed by its GID.
fn known<D: Downloads + ?Sized>(
    p: &Params,
    store: &D,
    missing: &str,
) -> Result<super::TaskView, String> {
    let gid = p.gid(0)?;
    store.task(gid).ok_or_else(|| format!("{missing}{gid}"))
}

/// `tellWaiting` / `tellStopped`: `offset`, `num` (at least 0), `keys`.
fn tell_page<D: Downloads + ?Sized>(p: &Params, store: &D, queue: Queue) -> Result<Value, String> {
    let offset = p.required(0, Value::as_i64)?;
    let num = p.required(1, Value::as_i64)?;
    if num < 0 {
        return Err("The integer parameter at 1 has invalid value: \
                    the value must be greater than or equal to 0."
            .into());
    }
    let keys = p.strings(2)?;
    let (range, reversed) = page(offset, num, store.count(queue));
    let mut tasks = if range.is_empty() {
        Vec::new()
    } else {
        store.list(queue, range)
    };
    if reversed {
        tasks.reverse();
    }
    Ok(tasks.iter().map(|t| status(t, &keys)).collect())
}

/// The positions `tellWaiting(offset, num)` returns from a queue of `len`, and whether
/// they are returned in reverse.
///
/// aria2 manual, RPC interface, `aria2.tellWaiting`: a non-negative `offset` gives
/// "the range of [*offset*, *offset* + *num*)"; "*offset* == -1 points last download
/// in the waiting queue and *offset* == -2 points the download before the last
/// download, and so on. Downloads in the response are in reversed order then."
/// (`tellWaiting(-1, 2)` of A, B, C is C, B.) Positions past either end are left out.
pub fn page(offset: i64, num: i64, len: usize) -> (Range<usize>, bool) {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let num = num.max(0);
    if offset >= 0 {
        let start = offset.min(len_i);
        let end = start.saturating_add(num).min(len_i);
        (to_usize(start)..to_usize(end), false)
    } else {
        // The first position returned (the last in queue order), then back `num` - 1.
        let last = len_i.saturating_add(offset);
        if last < 0 || num == 0 {
            return (0..0, true);
        }
        let first = last.saturating_sub(num - 1).max(0);
        (to_usize(first)..to_usize(last + 1), true)
    }
}

fn to_usize(n: i64) -> usize {
    usize::try_from(n).expect("within 0..=len")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn page_follows_the_manuals_examples() {
        // A, B, C waiting.
        assert_eq!(page(0, 1, 3), (0..1, false));
        assert_eq!(page(1, 2, 3), (1..3, false));
        assert_eq!(page(-1, 2, 3), (1..3, true));
        assert_eq!(page(-3, 5, 3), (0..1, true));
        assert_eq!(page(-4, 5, 3), (0..0, true));
        assert_eq!(page(3, 5, 3), (3..3, false));
        assert_eq!(page(0, 0, 3), (0..0, false));
        assert_eq!(page(i64::MIN, i64::MAX, 3), (0..0, true));
        assert_eq!(page(i64::MAX, i64::MAX, 3), (3..3, false));
        assert_eq!(page(-1, i64::MAX, 3), (0..3, true));
    }

    proptest! {
        #![proptest_config(crate::proptest_config::regressions_in("proptest-regressions/aria2_page.txt"))]
        /// `page` against a walk over the queue, one position at a time.
        #[test]
        fn page_matches_a_walk(offset in -40i64..40, num in -2i64..40, len in 0usize..30) {
            let mut expected = Vec::new();
            let mut pos = if offset >= 0 { offset } else { len as i64 + offset };
            while (expected.len() as i64) < num && pos >= 0 && pos < len as i64 {
                expected.push(pos as usize);
                pos += if offset >= 0 { 1 } else { -1 };
            }
            let (range, reversed) = page(offset, num, len);
            let mut got: Vec<usize> = range.collect();
            if reversed {
                got.reverse();
            }
            prop_assert_eq!(got, expected);
        }
    }
}
