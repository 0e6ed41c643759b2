//! Who may call: sessions (the `SID` cookie), the failed-login ban, and the
//! cross-site check, as qBittorrent's `src/webui/webapplication.cpp` and
//! `src/webui/api/authcontroller.cpp` (v4.6.7) do them.

use std::collections::HashMap;
use std::net::IpAddr;

use super::sync::Snapshot;

/// How long a session lives without a request, in seconds: qBittorrent's default
/// `web_ui_session_timeout` (3600).
pub const SESSION_TIMEOUT: u64 = 3600;

/// Failed logins from one address before it is banned: qBittorrent's default
/// `web_ui_max_auth_fail_count` (5).
pub const MAX_AUTH_FAILS: u32 = 5;

/// How long a ban lasts, in seconds: qBittorrent's default `web_ui_ban_duration`
/// (3600).
pub const BAN_DURATION: u64 = 3600;

/// The most sessions kept; past it, starting one drops the least recently used.
/// qBittorrent keeps every session until it expires; a bound is needed here because a
/// client without cookies (allowed on loopback without a login) starts one per
/// request, as qBittorrent does for it.
pub const MAX_SESSIONS: usize = 256;

/// The most sessions that keep a `sync/maindata` snapshot (about 500 bytes per task
/// each); past it, the least recently synced one loses its snapshot and its next
/// `sync/maindata` is a full update.
pub const MAX_SYNC_SNAPSHOTS: usize = 16;

/// The most addresses whose failed logins are counted; past it, expired bans are
/// forgotten first, then the addresses that failed least recently and are not banned.
pub const MAX_TRACKED_ADDRESSES: usize = 4096;

/// The session cookie's name (qBittorrent's default `web_ui_session_cookie_name`).
pub const SID_COOKIE: &str = "SID";

/// What `auth/login` answers a banned address, with 403 (source, `authcontroller.cpp`).
pub const BANNED_MESSAGE: &str =
    "Your IP address has been banned after too many failed authentication attempts.";

/// The state [`handle`](super::handle) keeps between requests: the sessions (each
/// with its last use and its `sync/maindata` position) and the failed logins per
/// address. Bounded: [`MAX_SESSIONS`], [`MAX_SYNC_SNAPSHOTS`],
/// [`MAX_TRACKED_ADDRESSES`]. Its `Debug` shows counts only (session IDs are
/// credentials).
#[derive(Default)]
pub struct State {
    sessions: HashMap<String, Session>,
    failures: HashMap<IpAddr, Failures>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("sessions", &self.sessions.len())
            .field("addresses_with_failed_logins", &self.failures.len())
            .finish()
    }
}

/// One session.
#[derive(Default)]
pub(super) struct Session {
    /// When it was last used (the request's `now`).
    last_use: u64,
    /// The last `rid` sent to it by `sync/maindata` (0: none yet).
    pub(super) sync_rid: u32,
    /// What the client has after that response, when still kept.
    pub(super) snapshot: Option<Box<Snapshot>>,
    /// When its snapshot was last made (for [`MAX_SYNC_SNAPSHOTS`]).
    synced_at: u64,
}

/// Failed logins from one address.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: u64,
    banned_until: Option<u64>,
}

impl State {
    /// No sessions, no failed logins.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many sessions are open (expired ones included until they are looked at).
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Whether `peer` is banned at `now` (it failed [`MAX_AUTH_FAILS`] logins in a
    /// row less than [`BAN_DURATION`] seconds ago).
    pub fn is_banned(&self, peer: IpAddr, now: u64) -> bool {
        self.failures
            .get(&peer)
            .and_then(|f| f.banned_until)
            .is_some_and(|until| now < until)
    }

    /// The session named by the `Cookie` header, when it exists and has not expired
    /// (an expired one is dropped); its last use becomes `now`.
    pub(super) fn resume(&mut self, cookie: Option<&str>, now: u64) -> Option<String> {
        let sid = session_id(cookie?)?;
        let session = self.sessions.get_mut(sid)?;
        if now.saturating_sub(session.last_use) > SESSION_TIMEOUT {
            self.sessions.remove(sid);
            return None;
        }
        session.last_use = session.last_use.max(now);
        Some(sid.to_owned())
    }

    /// Whether the `Cookie` header names a session that exists and has not expired
    /// (nothing changed).
    pub(crate) fn has_session(&self, cookie: Option<&str>, now: u64) -> bool {
        cookie
            .and_then(session_id)
            .and_then(|sid| self.sessions.get(sid))
            .is_some_and(|s| now.saturating_sub(s.last_use) <= SESSION_TIMEOUT)
    }

    /// Starts a session named `sid` (expired sessions are dropped first, then the
    /// least recently used one past [`MAX_SESSIONS`]).
    pub(super) fn start(&mut self, sid: &str, now: u64) {
        self.sessions
            .retain(|_, s| now.saturating_sub(s.last_use) <= SESSION_TIMEOUT);
        while self.sessions.len() >= MAX_SESSIONS {
            let Some(oldest) = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.last_use)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            self.sessions.remove(&oldest);
        }
        self.sessions.insert(
            sid.to_owned(),
            Session {
                last_use: now,
                ..Session::default()
            },
        );
    }

    /// Ends session `sid`.
    pub(super) fn end(&mut self, sid: &str) {
        self.sessions.remove(sid);
    }

    /// Session `sid`, for `sync/maindata`.
    pub(super) fn session_mut(&mut self, sid: &str) -> Option<&mut Session> {
        self.sessions.get_mut(sid)
    }

    /// Records that session `sid` now keeps a snapshot made at `now`, and drops the
    /// least recently synced other snapshots past [`MAX_SYNC_SNAPSHOTS`].
    pub(super) fn keep_snapshot(&mut self, sid: &str, snapshot: Box<Snapshot>, rid: u32, now: u64) {
        if let Some(session) = self.sessions.get_mut(sid) {
            session.snapshot = Some(snapshot);
            session.sync_rid = rid;
            session.synced_at = now;
        }
        loop {
            let kept: Vec<(&String, u64)> = self
                .sessions
                .iter()
                .filter(|(_, s)| s.snapshot.is_some())
                .map(|(id, s)| (id, s.synced_at))
                .collect();
            if kept.len() <= MAX_SYNC_SNAPSHOTS {
                return;
            }
            let Some(oldest) = kept
                .into_iter()
                .filter(|(id, _)| id.as_str() != sid)
                .min_by_key(|(_, at)| *at)
                .map(|(id, _)| id.clone())
            else {
                return;
            };
            if let Some(session) = self.sessions.get_mut(&oldest) {
                session.snapshot = None;
            }
        }
    }

    /// Forgets `peer`'s failed logins (after a successful one).
    pub(super) fn login_succeeded(&mut self, peer: IpAddr) {
        self.failures.remove(&peer);
    }

    /// Counts a failed login from `peer` at `now`; the [`MAX_AUTH_FAILS`]th starts a
    /// ban of [`BAN_DURATION`] seconds. Returns the count.
    pub(super) fn login_failed(&mut self, peer: IpAddr, now: u64) -> u32 {
        if !self.failures.contains_key(&peer) && self.failures.len() >= MAX_TRACKED_ADDRESSES {
            self.make_room(now);
        }
        let entry = self.failures.entry(peer).or_insert(Failures {
            count: 0,
            last: now,
            banned_until: None,
        });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        if entry.count >= MAX_AUTH_FAILS {
            entry.banned_until = Some(now.saturating_add(BAN_DURATION));
        }
        entry.count
    }

    /// Forgets a ban that ended (qBittorrent erases the address's record then, so its
    /// count starts again from 0).
    pub(super) fn lift_ended_ban(&mut self, peer: IpAddr, now: u64) {
        if let Some(f) = self.failures.get(&peer) {
            if f.banned_until.is_some_and(|until| now >= until) {
                self.failures.remove(&peer);
            }
        }
    }

    fn make_room(&mut self, now: u64) {
        self.failures
            .retain(|_, f| f.banned_until.is_none_or(|until| now < until));
        while self.failures.len() >= MAX_TRACKED_ADDRESSES {
            let victim = self
                .failures
                .iter()
                .filter(|(_, f)| f.banned_until.is_none())
                .min_by_key(|(_, f)| f.last)
                .or_else(|| self.failures.iter().min_by_key(|(_, f)| f.last))
                .map(|(ip, _)| *ip);
            match victim {
                Some(ip) => self.failures.remove(&ip),
                None => break,
            };
        }
    }
}

/// The `SID` value of a `Cookie` header (RFC 6265, 4.2.1: `name=value` pairs
/// separated by `;`; a quoted value is unquoted; the last `SID` wins, as
/// qBittorrent's `parseCookie` fills a map).
fn session_id(cookie: &str) -> Option<&str> {
    cookie
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(name, _)| name.trim() == SID_COOKIE)
        .map(|(_, value)| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
        })
        .rfind(|value| !value.is_empty())
}

/// The `Set-Cookie` value that starts session `sid`, as qBittorrent 4.6.7 sends it
/// with CSRF protection on (`sessionStart`: HttpOnly, path `/`, `SameSite=Strict`).
pub(super) fn start_cookie(sid: &str) -> String {
    format!("{SID_COOKIE}={sid}; HttpOnly; SameSite=Strict; path=/")
}

/// The `Set-Cookie` value that ends a session (`sessionEnd`: the cookie expired).
pub(super) fn end_cookie() -> String {
    format!("{SID_COOKIE}=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT")
}

/// Whether the request is cross-site (qBittorrent's `isCrossSiteRequest`): `Origin`
/// when present, else `Referer` when present, names another host or port than
/// `Host`. Neither present: not cross-site ("lets be permissive here"). Hosts compare
/// case-insensitively; a port compares as written (`host` and `host:80` differ, as
/// with Qt's `QUrl::port`).
pub(super) fn is_cross_site(
    host: Option<&str>,
    origin: Option<&str>,
    referer: Option<&str>,
) -> bool {
    let source = match (nonempty(origin), nonempty(referer)) {
        (Some(origin), _) => origin,
        (None, Some(referer)) => referer,
        (None, None) => return false,
    };
    let target = authority(host.unwrap_or(""));
    let source = authority(source.split_once("://").map_or("", |(_, rest)| rest));
    source != target
}

fn nonempty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// `(host, port)` of the authority at the start of `text` (up to `/`, `?` or `#`),
/// user info dropped, the host lower-cased.
fn authority(text: &str) -> (String, Option<String>) {
    let end = text.find(['/', '?', '#']).unwrap_or(text.len());
    let authority = &text[..end];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => (rest, None),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    (
        host.to_ascii_lowercase(),
        port.filter(|p| !p.is_empty()).map(str::to_owned),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies() {
        assert_eq!(session_id("SID=abc"), Some("abc"));
        assert_eq!(session_id("a=1; SID=\"q/+=\"; b=2"), Some("q/+="));
        assert_eq!(session_id("SID=one; SID=two"), Some("two"));
        assert_eq!(session_id("sid=abc"), None);
        assert_eq!(session_id("SID="), None);
        assert_eq!(session_id("garbage"), None);
    }

    #[test]
    fn cross_site() {
        let host = Some("localhost:8080");
        assert!(!is_cross_site(host, None, None));
        assert!(!is_cross_site(host, Some("http://localhost:8080"), None));
        assert!(!is_cross_site(host, Some("http://LOCALHOST:8080"), None));
        assert!(!is_cross_site(
            host,
            None,
            Some("http://localhost:8080/x?y")
        ));
        assert!(is_cross_site(host, Some("http://evil.example"), None));
        assert!(is_cross_site(host, Some("http://localhost:9090"), None));
        assert!(is_cross_site(
            host,
            None,
            Some("https://evil.example/localhost:8080")
        ));
        // Origin decides when both are there.
        assert!(is_cross_site(
            host,
            Some("http://evil"),
            Some("http://localhost:8080/")
        ));
        assert!(is_cross_site(host, Some("null"), None));
        assert!(is_cross_site(None, Some("http://localhost"), None));
        assert!(!is_cross_site(
            Some("[::1]:80"),
            Some("http://[::1]:80"),
            None
        ));
        assert!(is_cross_site(Some("host:80"), Some("http://host"), None));
    }

    #[test]
    fn bans_start_at_the_fifth_failure_and_end() {
        let mut state = State::new();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for n in 1..MAX_AUTH_FAILS {
            assert_eq!(state.login_failed(ip, 100), n);
            assert!(!state.is_banned(ip, 100));
        }
        state.login_failed(ip, 100);
        assert!(state.is_banned(ip, 100));
        assert!(state.is_banned(ip, 100 + BAN_DURATION - 1));
        assert!(!state.is_banned(ip, 100 + BAN_DURATION));
        state.lift_ended_ban(ip, 100 + BAN_DURATION);
        assert_eq!(state.login_failed(ip, 100 + BAN_DURATION), 1);
    }

    #[test]
    fn tracked_addresses_are_bounded() {
        let mut state = State::new();
        for i in 0..(MAX_TRACKED_ADDRESSES as u32 + 10) {
            state.login_failed(IpAddr::from(i.to_be_bytes()), u64::from(i));
        }
        assert!(state.failures.len() <= MAX_TRACKED_ADDRESSES);
    }

    #[test]
    fn sessions_expire_and_are_bounded() {
        let mut state = State::new();
        state.start("a", 10);
        assert_eq!(
            state.resume(Some("SID=a"), 10 + SESSION_TIMEOUT),
            Some("a".into())
        );
        assert_eq!(state.resume(Some("SID=a"), 11 + 2 * SESSION_TIMEOUT), None);
        assert_eq!(state.sessions(), 0);
        for i in 0..(MAX_SESSIONS + 5) {
            state.start(&format!("s{i}"), 1000 + i as u64);
        }
        assert_eq!(state.sessions(), MAX_SESSIONS);
        assert_eq!(state.resume(Some("SID=s0"), 2000), None);
        assert!(state
            .resume(Some(&format!("SID=s{}", MAX_SESSIONS + 4)), 2000)
            .is_some());
        assert_eq!(
            format!("{state:?}"),
            format!("State {{ sessions: {MAX_SESSIONS}, addresses_with_failed_logins: 0 }}")
        );
    }
}
