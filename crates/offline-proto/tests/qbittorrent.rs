//! The qBittorrent Web API layer against an in-memory [`Catalog`], through
//! [`handle`] only, with requests written as Sonarr and Radarr
//! (`QBittorrentProxyV2.cs`) and `qbittorrent-api` send them.
//!
//! The snapshots (`tests/snapshots/qbittorrent__*.snap`) are the claim that the
//! answers have the shapes of qBittorrent 4.6.7's WebUI API (the wiki's "WebUI API
//! (qBittorrent 4.1)": `torrents/info`'s fields and their types, `torrents/files`,
//! `torrents/properties`, `sync/maindata`):
//!
//! - `info_*`: one `torrents/info` object per kind of task, mapped as the module's
//!   table says (`state`, `progress`, `size` of the selected files, paths under the
//!   report prefix);
//! - `files`, `properties`: those of the running multi-file torrent;
//! - `maindata_full`, `maindata_partial`: a full update, then the partial one after
//!   one task's progress changed and another was deleted.

use std::net::IpAddr;

use offline_proto::aria2::{
    Failure, FailureKind, FileView, Gid, Progress, Source, TaskState, TaskView, TorrentInfo,
};
use offline_proto::catalog::{task_hash, NewTask};
use offline_proto::qbittorrent::{
    body_limit, handle, Config, Form, FormFile, Login, Reply, Request, State, BANNED_MESSAGE,
    BAN_DURATION, MAX_ANONYMOUS_BODY_BYTES, MAX_AUTH_FAILS, MAX_BODY_BYTES,
};
use offline_proto::torrent::TorrentBuilder;
use offline_proto::Secret;
use serde_json::{json, Value};

// --- The fake catalog ---------------------------------------------------------------

#[path = "common/fake_catalog.rs"]
mod fake_catalog;
use fake_catalog::Fake;

// --- Harness ------------------------------------------------------------------------

const HOST: &str = "127.0.0.1:8080";

struct Daemon {
    fake: Fake,
    state: State,
    config: Config,
    now: u64,
    /// The `Cookie` header to send (the last `SID` set).
    cookie: Option<String>,
    peer: IpAddr,
    sids: u32,
}

impl Daemon {
    /// Served to a loopback peer with no login configured.
    fn new(fake: Fake) -> Self {
        Self {
            fake,
            state: State::default(),
            config: Config {
                login: None,
                report_prefix: Some("/mnt/cloud".into()),
                version: "0.1.0".into(),
            },
            now: 1000,
            cookie: None,
            peer: "127.0.0.1".parse().unwrap(),
            sids: 0,
        }
    }

    /// Served to `peer` with login `admin`/`adminadmin`.
    fn with_login(fake: Fake, peer: &str) -> Self {
        let mut d = Self::new(fake);
        d.config.login = Some(Login {
            username: "admin".into(),
            password: Secret::new("adminadmin"),
        });
        d.peer = peer.parse().unwrap();
        d
    }

    fn send(&mut self, method: &str, path: &str, query: &str, form: &Form) -> Reply {
        self.send_from(method, path, query, form, None)
    }

    fn send_from(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        form: &Form,
        origin: Option<&str>,
    ) -> Reply {
        self.sids += 1;
        let new_sid = format!("sid{:04}", self.sids);
        let request = Request {
            method,
            path,
            query,
            form,
            cookie: self.cookie.as_deref(),
            host: Some(HOST),
            origin,
            referer: None,
            peer_loopback: self.peer.is_loopback(),
            peer: self.peer,
            now: self.now,
            new_sid: &new_sid,
        };
        let reply = handle(&request, &mut self.fake, &mut self.state, &self.config);
        if let Some(cookie) = &reply.set_cookie {
            let value = cookie
                .split(';')
                .next()
                .and_then(|p| p.strip_prefix("SID="))
                .unwrap();
            self.cookie = (!value.is_empty()).then(|| format!("SID={value}"));
        }
        reply
    }

    fn get(&mut self, path: &str, query: &str) -> Reply {
        self.send("GET", path, query, &Form::default())
    }

    fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let form = form(fields);
        self.send("POST", path, "", &form)
    }

    /// A GET that must answer JSON.
    fn json(&mut self, path: &str, query: &str) -> Value {
        json_of(&self.get(path, query))
    }

    /// A POST that must answer 200; its text.
    fn ok(&mut self, path: &str, fields: &[(&str, &str)]) -> String {
        let reply = self.post(path, fields);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text_body());
        reply.text_body().into_owned()
    }

    /// The hashes `torrents/info?query` lists, in order.
    fn hashes(&mut self, query: &str) -> Vec<String> {
        self.json("torrents/info", query)
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["hash"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn form(fields: &[(&str, &str)]) -> Form {
    Form {
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        files: Vec::new(),
    }
}

fn json_of(reply: &Reply) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.text_body());
    assert_eq!(reply.content_type, "application/json");
    serde_json::from_slice(&reply.body).unwrap()
}

fn text(reply: &Reply) -> (u16, &'static str, String) {
    (
        reply.status,
        reply.content_type,
        reply.text_body().into_owned(),
    )
}

const TXT: &str = "text/plain; charset=UTF-8";

const MAGNET_HASH: &str = "0a3893293e27ac0490424c06de4d09242215f0a6";
const MAGNET: &str = "magnet:?xt=urn:btih:0a3893293e27ac0490424c06de4d09242215f0a6&dn=Some.Show.S01E02.1080p&tr=udp%3A%2F%2Ftracker.example.org%3A1337";

fn hash_of(n: u8) -> String {
    format!("{n:02x}").repeat(20)
}

fn task(n: u8, state: TaskState, dir: &str) -> TaskView {
    let mut t = TaskView::new(Gid::new(u64::from(n)), state, dir);
    t.id = u64::from(n);
    t.hash = hash_of(n);
    t.added_on = 1_767_225_600 + i64::from(n);
    t
}

/// A three-file torrent the drive is fetching.
fn running_torrent() -> TaskView {
    let mut t = task(1, TaskState::Running, "/Media/TV");
    t.uris = Vec::new();
    t.name = Some("Some.Show.S01".into());
    t.total_length = Some(3_000_000);
    t.progress = Progress::Bytes(1_200_000);
    t.download_speed = 400_000;
    t.files = vec![
        FileView {
            path: "Some.Show.S01/E01.mkv".into(),
            length: 2_000_000,
            selected: true,
        },
        FileView {
            path: "Some.Show.S01/E02.mkv".into(),
            length: 999_000,
            selected: true,
        },
        FileView {
            path: "Some.Show.S01/info.nfo".into(),
            length: 1_000,
            selected: true,
        },
    ];
    t.torrent = Some(TorrentInfo {
        info_hash: Some(hash_of(1).parse().unwrap()),
        name: Some("Some.Show.S01".into()),
        multi_file: true,
        announce_list: vec![vec!["http://tracker.example.org/announce".into()]],
        comment: Some("season one".into()),
        creation_date: Some(1_767_000_000),
        piece_length: Some(262_144),
    });
    t.category = Some("tv".into());
    t.tags = vec!["sonarr".into()];
    t
}

/// A single-file link, complete.
fn complete() -> TaskView {
    let mut t = task(2, TaskState::Complete, "/Downloads/movies");
    t.uris = vec!["https://cdn.example.com/Movie.2026.mkv".into()];
    t.name = Some("Movie.2026.mkv".into());
    t.total_length = Some(5_000_000);
    t.progress = Progress::Percent(100);
    t.completed_on = Some(1_767_229_200);
    t.category = Some("movies".into());
    t
}

/// A link the drive gave up on.
fn failed() -> TaskView {
    let mut t = task(
        3,
        TaskState::Failed(Failure {
            kind: FailureKind::NotFound,
            message: "the source answered 404".into(),
        }),
        "/Downloads",
    );
    t.uris = vec!["https://gone.example.com/file.iso".into()];
    t.completed_on = Some(1_767_226_000);
    t
}

/// A magnet link before its metadata.
fn magnet() -> TaskView {
    let mut t = task(4, TaskState::Running, "/Downloads");
    t.hash = MAGNET_HASH.into();
    t.uris = vec![MAGNET.into()];
    t.progress = Progress::Percent(0);
    t.torrent = Some(TorrentInfo {
        info_hash: Some(MAGNET_HASH.parse().unwrap()),
        ..TorrentInfo::default()
    });
    t.tags = vec!["radarr".into(), "sonarr".into()];
    t
}

/// A link added paused: held back, not yet sent to the drive.
fn held() -> TaskView {
    let mut t = task(5, TaskState::Queued, "/Downloads");
    t.uris = vec!["https://cdn.example.com/held.zip".into()];
    t.held = true;
    t
}

/// A 6pan torrent complete with one file not selected.
fn partly_selected() -> TaskView {
    let mut t = task(6, TaskState::Complete, "/Media/TV");
    t.name = Some("Pack".into());
    t.progress = Progress::Percent(100);
    t.files = vec![
        FileView {
            path: "Pack/a.mkv".into(),
            length: 700_000,
            selected: true,
        },
        FileView {
            path: "Pack/b.mkv".into(),
            length: 300_000,
            selected: false,
        },
    ];
    t.torrent = Some(TorrentInfo {
        info_hash: Some(hash_of(6).parse().unwrap()),
        name: Some("Pack".into()),
        multi_file: true,
        piece_length: Some(65_536),
        ..TorrentInfo::default()
    });
    t.completed_on = Some(1_767_230_000);
    t.category = Some("tv".into());
    t
}

/// An http link the drive is fetching (the drive reports a percent).
fn http_link() -> TaskView {
    let mut t = task(7, TaskState::Running, "/Downloads");
    t.uris = vec!["http://files.example.net/big.tar".into()];
    t.name = Some("big.tar".into());
    t.total_length = Some(10_000_000);
    t.progress = Progress::Percent(40);
    t.download_speed = 250_000;
    t
}

fn every_kind() -> Vec<TaskView> {
    vec![
        running_torrent(),
        complete(),
        failed(),
        magnet(),
        held(),
        partly_selected(),
        http_link(),
    ]
}

// --- Who may call -------------------------------------------------------------------

#[test]
fn login_fail_ban_and_logout() {
    let mut d = Daemon::with_login(Fake::with(every_kind()), "192.0.2.7");
    assert_eq!(
        text(&d.get("torrents/info", "")),
        (403, TXT, "Forbidden".into())
    );
    // A wrong password: Fails., counted.
    for _ in 1..MAX_AUTH_FAILS {
        let reply = d.post("auth/login", &[("username", "admin"), ("password", "nope")]);
        assert_eq!(text(&reply), (200, TXT, "Fails.".into()));
        assert_eq!(reply.set_cookie, None);
    }
    assert_eq!(
        d.ok(
            "auth/login",
            &[("username", "x"), ("password", "adminadmin")]
        ),
        "Fails."
    );
    // Banned now, even with the right password.
    let banned = d.post(
        "auth/login",
        &[("username", "admin"), ("password", "adminadmin")],
    );
    assert_eq!(text(&banned), (403, TXT, BANNED_MESSAGE.into()));
    d.now += BAN_DURATION;
    // Logins are POST only.
    assert_eq!(
        d.get("auth/login", "username=admin&password=adminadmin")
            .status,
        405
    );
    let ok = d.post(
        "auth/login",
        &[("username", "admin"), ("password", "adminadmin")],
    );
    assert_eq!(text(&ok), (200, TXT, "Ok.".into()));
    let cookie = ok.set_cookie.unwrap();
    assert!(cookie.starts_with("SID=sid"), "{cookie}");
    assert!(
        cookie.ends_with("; HttpOnly; SameSite=Strict; path=/"),
        "{cookie}"
    );
    assert_eq!(d.json("torrents/info", "").as_array().unwrap().len(), 7);
    // Logged in already: Ok. without a new session.
    let again = d.post("auth/login", &[]);
    assert_eq!((again.status, again.set_cookie), (200, None));
    // Logout (POST only) ends the session and expires the cookie.
    assert_eq!(d.get("auth/logout", "").status, 405);
    let out = d.post("auth/logout", &[]);
    assert_eq!(out.status, 200);
    assert!(out
        .set_cookie
        .unwrap()
        .starts_with("SID=; path=/; expires="));
    d.cookie = Some(cookie.split(';').next().unwrap().to_owned());
    assert_eq!(d.get("app/version", "").status, 403);
}

#[test]
fn sessions_expire() {
    let mut d = Daemon::with_login(Fake::default(), "192.0.2.7");
    d.ok(
        "auth/login",
        &[("username", "admin"), ("password", "adminadmin")],
    );
    d.now += 3600;
    assert_eq!(d.get("app/version", "").status, 200);
    d.now += 3601;
    assert_eq!(d.get("app/version", "").status, 403);
}

#[test]
fn a_login_configured_applies_to_loopback_too() {
    let mut d = Daemon::with_login(Fake::default(), "127.0.0.1");
    assert_eq!(d.get("app/version", "").status, 403);
    assert_eq!(
        d.ok(
            "auth/login",
            &[("username", "admin"), ("password", "adminadmin")]
        ),
        "Ok."
    );
    assert_eq!(d.get("app/version", "").status, 200);
}

#[test]
fn cross_site_requests_are_refused() {
    let mut d = Daemon::new(Fake::default());
    assert_eq!(d.get("app/version", "").status, 200);
    let none = Form::default();
    let evil = d.send_from(
        "POST",
        "torrents/delete",
        "",
        &none,
        Some("http://evil.example"),
    );
    assert_eq!(text(&evil), (401, TXT, "Unauthorized".into()));
    let same = d.send_from(
        "GET",
        "app/version",
        "",
        &none,
        Some("http://127.0.0.1:8080"),
    );
    assert_eq!(same.status, 200);
}

#[test]
fn loopback_without_a_login_needs_none() {
    let mut d = Daemon::new(Fake::with(every_kind()));
    let first = d.get("app/webapiVersion", "");
    assert_eq!(text(&first), (200, TXT, "2.9.3".into()));
    // A session was started for it, as qBittorrent's localhost bypass does.
    assert!(first.set_cookie.unwrap().starts_with("SID=sid0001;"));
    let second = d.get("app/version", "");
    assert_eq!((second.status, second.set_cookie), (200, None));
    assert_eq!(
        d.ok("auth/login", &[("username", "any"), ("password", "thing")]),
        "Ok."
    );
    // A cookie-less client gets a session per request.
    d.cookie = None;
    assert!(d.get("app/version", "").set_cookie.is_some());
}

#[test]
fn only_a_session_may_send_a_big_body() {
    let mut d = Daemon::with_login(Fake::with(every_kind()), "192.0.2.7");
    let limit = |d: &Daemon, loopback| {
        body_limit(d.cookie.as_deref(), loopback, &d.state, &d.config, d.now)
    };
    assert_eq!(limit(&d, false), MAX_ANONYMOUS_BODY_BYTES);
    assert_eq!(limit(&d, true), MAX_ANONYMOUS_BODY_BYTES);
    d.cookie = Some("SID=made-up".into());
    assert_eq!(limit(&d, false), MAX_ANONYMOUS_BODY_BYTES);
    d.ok(
        "auth/login",
        &[("username", "admin"), ("password", "adminadmin")],
    );
    assert_eq!(limit(&d, false), MAX_BODY_BYTES);
    // An expired session is none.
    d.now += offline_proto::qbittorrent::SESSION_TIMEOUT + 1;
    assert_eq!(limit(&d, false), MAX_ANONYMOUS_BODY_BYTES);
    // No login configured: loopback peers need no session.
    let open = Daemon::new(Fake::default());
    assert_eq!(limit(&open, true), MAX_BODY_BYTES);
    assert_eq!(limit(&open, false), MAX_ANONYMOUS_BODY_BYTES);
}

#[test]
fn other_peers_without_a_login_are_refused() {
    let mut d = Daemon::new(Fake::with(every_kind()));
    d.peer = "192.0.2.7".parse().unwrap();
    assert_eq!(
        text(&d.get("torrents/info", "")),
        (403, TXT, "Forbidden".into())
    );
    let login = d.post("auth/login", &[("username", "admin"), ("password", "")]);
    assert_eq!((login.status, login.set_cookie), (403, None));
}

#[test]
fn request_debug_shows_no_credentials() {
    let body = form(&[("username", "admin"), ("password", "sentinel-pw")]);
    let request = Request {
        method: "POST",
        path: "auth/login",
        query: "password=sentinel-q",
        form: &body,
        cookie: Some("SID=sentinel-cookie"),
        host: Some(HOST),
        origin: None,
        referer: None,
        peer_loopback: true,
        peer: "127.0.0.1".parse().unwrap(),
        now: 1,
        new_sid: "sentinel-sid",
    };
    let shown = format!("{request:?}");
    assert!(!shown.contains("sentinel"), "{shown}");
    assert!(shown.contains("admin"), "{shown}");
}

// --- app/* --------------------------------------------------------------------------

#[test]
fn app_answers() {
    let mut d = Daemon::new(Fake::default());
    assert_eq!(text(&d.get("app/version", "")), (200, TXT, "v4.6.7".into()));
    assert_eq!(
        text(&d.post("app/webapiVersion", &[])),
        (200, TXT, "2.9.3".into())
    );
    assert_eq!(
        d.json("app/buildInfo", ""),
        json!({"bitness": 64, "boost": "1.84.0", "libtorrent": "2.0.10.0",
               "openssl": "3.2.1", "qt": "6.5.3", "zlib": "1.3.1"})
    );
    let prefs = d.json("app/preferences", "");
    for (key, value) in [
        ("save_path", json!("/mnt/cloud/Downloads")),
        ("temp_path", json!("/mnt/cloud/Downloads/temp")),
        ("temp_path_enabled", json!(false)),
        ("max_ratio_enabled", json!(false)),
        ("max_ratio", json!(-1)),
        ("max_seeding_time_enabled", json!(false)),
        ("max_seeding_time", json!(-1)),
        ("max_ratio_act", json!(0)),
        ("queueing_enabled", json!(false)),
        ("dht", json!(true)),
        ("auto_tmm_enabled", json!(false)),
        ("torrent_content_layout", json!("Original")),
        ("start_paused_enabled", json!(false)),
        ("web_ui_username", json!("admin")),
    ] {
        assert_eq!(prefs[key], value, "{key}");
    }
    assert_eq!(
        text(&d.get("app/defaultSavePath", "")),
        (200, TXT, "/mnt/cloud/Downloads".into())
    );
    assert_eq!(
        d.ok("app/setPreferences", &[("json", "{\"dht\":false}")]),
        ""
    );
    assert_eq!(d.get("app/setPreferences", "").status, 405);
    assert_eq!(
        text(&d.get("app/nothing", "")),
        (404, TXT, "Not Found".into())
    );
    assert_eq!(d.get("nothing", "").status, 404);
    assert_eq!(
        d.send("PUT", "app/version", "", &Form::default()).status,
        405
    );
}

#[test]
fn transfer_info_sums_the_running_tasks() {
    let mut d = Daemon::new(Fake::with(every_kind()));
    assert_eq!(
        d.json("transfer/info", ""),
        json!({
            "connection_status": "connected",
            "dht_nodes": 0,
            "dl_info_data": 1_200_000 + 5_000_000 + 700_000 + 4_000_000,
            "dl_info_speed": 650_000,
            "dl_rate_limit": 0,
            "up_info_data": 0,
            "up_info_speed": 0,
            "up_rate_limit": 0,
        })
    );
}

// --- torrents/info ------------------------------------------------------------------

#[test]
fn info_objects_are_as_snapshotted() {
    let mut d = Daemon::new(Fake::with(every_kind()));
    let all = d.json("torrents/info", "");
    let names = [
        "info_running_torrent",
        "info_complete",
        "info_failed",
        "info_magnet_without_metadata",
        "info_held",
        "info_partly_selected",
        "info_http_link",
    ];
    assert_eq!(all.as_array().unwrap().len(), names.len());
    for (name, object) in names.iter().zip(all.as_array().unwrap()) {
        insta::assert_json_snapshot!(*name, object);
    }
    let states: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "downloading",
            "pausedUP",
            "error",
            "metaDL",
            "pausedDL",
            "pausedUP",
            "downloading"
        ]
    );
    let partly = &all[5];
    assert_eq!(
        (partly["size"].clone(), partly["total_size"].clone()),
        (json!(700_000), json!(1_000_000))
    );
    assert_eq!(partly["progress"], json!(1));
}

#[test]
fn info_filters() {
    let mut d = Daemon::new(Fake::with(every_kind()));
    let h = |ns: &[u8]| -> Vec<String> {
        ns.iter()
            .map(|&n| {
                if n == 4 {
                    MAGNET_HASH.to_owned()
                } else {
                    hash_of(n)
                }
            })
            .collect()
    };
    for (filter, expected) in [
        ("all", h(&[1, 2, 3, 4, 5, 6, 7])),
        ("downloading", h(&[1, 4, 5, 7])),
        ("seeding", h(&[])),
        ("completed", h(&[2, 6])),
        ("paused", h(&[2, 5, 6])),
        ("stopped", h(&[2, 5, 6])),
        ("resumed", h(&[1, 3, 4, 7])),
        ("running", h(&[1, 3, 4, 7])),
        ("active", h(&[1, 4, 7])),
        ("inactive", h(&[2, 3, 5, 6])),
        ("stalled", h(&[])),
        ("stalled_uploading", h(&[])),
        ("stalled_downloading", h(&[])),
        ("errored", h(&[3])),
        ("no-such-filter", h(&[1, 2, 3, 4, 5, 6, 7])),
    ] {
        assert_eq!(d.hashes(&format!("filter={filter}")), expected, "{filter}");
    }
    assert_eq!(d.hashes("category=tv"), h(&[1, 6]));
    assert_eq!(d.hashes("category="), h(&[3, 4, 5, 7]));
    assert_eq!(d.hashes("category=none"), h(&[]));
    assert_eq!(d.hashes("tag=sonarr"), h(&[1, 4]));
    assert_eq!(d.hashes("tag="), h(&[2, 3, 5, 6, 7]));
    assert_eq!(
        d.hashes("filter=downloading&tag=sonarr&category=tv"),
        h(&[1])
    );
    let upper = format!(
        "{}|{}",
        hash_of(2).to_uppercase(),
        MAGNET_HASH.to_uppercase()
    );
    assert_eq!(d.hashes(&format!("hashes={upper}")), h(&[2, 4]));
    assert_eq!(d.hashes("hashes=all"), h(&[1, 2, 3, 4, 5, 6, 7]));
    // The same parameters in a POST body.
    let posted = json_of(&d.post("torrents/info", &[("filter", "errored")]));
    assert_eq!(posted[0]["hash"], hash_of(3));
    // Stalled: running with no speed.
    d.fake.tasks[6].download_speed = 0;
    assert_eq!(d.hashes("filter=stalled"), h(&[7]));
    assert_eq!(d.hashes("filter=stalled_downloading"), h(&[7]));
}

#[test]
fn info_sort_reverse_limit_offset() {
    let mut d = Daemon::new(Fake::with(every_kind()));
    let h = |ns: &[u8]| -> Vec<String> {
        ns.iter()
            .map(|&n| {
                if n == 4 {
                    MAGNET_HASH.to_owned()
                } else {
                    hash_of(n)
                }
            })
            .collect()
    };
    // size: 1 3_000_000, 2 5_000_000, 3 0, 4 0, 5 0, 6 700_000, 7 10_000_000 (ties stay
    // in order).
    assert_eq!(d.hashes("sort=size"), h(&[3, 4, 5, 6, 1, 2, 7]));
    assert_eq!(
        d.hashes("sort=size&reverse=true"),
        h(&[7, 2, 1, 6, 3, 4, 5])
    );
    assert_eq!(
        d.hashes("sort=name&limit=2"),
        h(&[2, 6, 1, 4, 7, 3, 5])[..2].to_vec()
    );
    assert_eq!(d.hashes("sort=size&limit=2&offset=1"), h(&[4, 5]));
    assert_eq!(d.hashes("sort=size&offset=-2"), h(&[2, 7]));
    assert_eq!(d.hashes("sort=size&offset=-2&limit=1"), h(&[2]));
    // Out of range: from the start (qBittorrent's normalization).
    assert_eq!(d.hashes("sort=size&offset=-20&limit=1"), h(&[3]));
    assert_eq!(d.hashes("sort=size&offset=7&limit=1"), h(&[3]));
    assert_eq!(d.hashes("sort=size&limit=0").len(), 7);
    assert_eq!(d.hashes("sort=size&limit=-1").len(), 7);
    // An unknown field sorts nothing.
    assert_eq!(
        d.hashes("sort=nothing&reverse=true"),
        h(&[1, 2, 3, 4, 5, 6, 7])
    );
    assert_eq!(
        d.hashes("sort=progress&reverse=true")[..3],
        h(&[2, 6, 1])[..]
    );
}

/// Ten thousand tasks: every one listed, and a `sync/maindata` with nothing changed
/// sends none of them again. (How fast: `cargo xtask bench --only rpc`, through the
/// daemon under a load tool.)
#[test]
fn ten_thousand_tasks_are_listed_and_an_unchanged_sync_is_empty() {
    let tasks: Vec<TaskView> = (0..10_000u32)
        .map(|i| {
            let mut t = running_torrent();
            t.gid = Gid::new(u64::from(i) + 1);
            t.hash = format!("{i:040x}");
            t.download_speed = u64::from(i);
            t
        })
        .collect();
    let mut d = Daemon::new(Fake::with(tasks));
    let listed = d.json("torrents/info", "");
    assert_eq!(listed.as_array().map(Vec::len), Some(10_000));
    assert_eq!(listed[9_999]["hash"], format!("{:040x}", 9_999));
    let full = d.json("sync/maindata", "rid=0");
    assert_eq!(full["torrents"].as_object().map(|t| t.len()), Some(10_000));
    let rid = full["rid"].as_i64().unwrap();
    let partial = d.json("sync/maindata", &format!("rid={rid}"));
    assert!(partial.get("full_update").is_none(), "{partial}");
    assert!(partial.get("torrents").is_none(), "{partial}");
}

// --- One torrent --------------------------------------------------------------------

#[test]
fn files_properties_trackers() {
    let mut d = Daemon::new(Fake::with(every_kind()));
    let hash = hash_of(1);
    insta::assert_json_snapshot!("files", d.json("torrents/files", &format!("hash={hash}")));
    insta::assert_json_snapshot!(
        "properties",
        d.json(
            "torrents/properties",
            &format!("hash={}", hash.to_uppercase())
        )
    );
    let picked = d.json("torrents/files", &format!("hash={hash}&indexes=2|0"));
    assert_eq!(picked[0]["index"], 2);
    assert_eq!(picked[1]["index"], 0);
    let bad = d.get("torrents/files", &format!("hash={hash}&indexes=9"));
    assert_eq!(text(&bad), (409, TXT, "Index 9 is out of bounds.".into()));
    let trackers = d.json("torrents/trackers", &format!("hash={hash}"));
    assert_eq!(trackers.as_array().unwrap().len(), 4);
    assert_eq!(trackers[3]["url"], "http://tracker.example.org/announce");
    // The failed task's reason.
    let failed = d.json("torrents/properties", &format!("hash={}", hash_of(3)));
    assert_eq!(failed["comment"], "the source answered 404");
    // A magnet link without metadata has no files yet.
    assert_eq!(
        d.json("torrents/files", &format!("hash={MAGNET_HASH}")),
        json!([])
    );
    for path in ["torrents/files", "torrents/properties", "torrents/trackers"] {
        let unknown = d.get(path, &format!("hash={}", hash_of(99)));
        assert_eq!(text(&unknown), (404, TXT, "Not Found".into()), "{path}");
        let missing = d.get(path, "");
        assert_eq!(
            text(&missing),
            (400, TXT, "Missing required parameters: hash".into()),
            "{path}"
        );
    }
}

// --- torrents/add -------------------------------------------------------------------

fn torrent_file() -> Vec<u8> {
    TorrentBuilder::new("album")
        .file(&["a.flac"], vec![1; 40_000])
        .file(&["cover.jpg"], vec![3; 1_000])
        .announce("http://tracker.example.org/announce")
        .build()
}

#[test]
fn add_links_magnets_infohashes_and_files() {
    let mut d = Daemon::new(Fake::with_categories());
    let urls = format!(
        "{MAGNET}\r\n https://cdn.example.com/a.mkv \n\n{}\n",
        "AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH"
    );
    let bytes = torrent_file();
    let mut body = form(&[("urls", &urls), ("tags", "sonarr, new"), ("category", "tv")]);
    body.files.push(FormFile {
        field: "torrents".into(),
        filename: Some("album.torrent".into()),
        bytes: bytes.clone(),
    });
    let reply = d.send("POST", "torrents/add", "", &body);
    assert_eq!(text(&reply), (200, TXT, "Ok.".into()));
    let added = &d.fake.added;
    assert_eq!(added.len(), 4);
    assert_eq!(added[0].request.source, Source::Uris(vec![MAGNET.into()]));
    assert_eq!(
        added[1].request.source,
        Source::Uris(vec!["https://cdn.example.com/a.mkv".into()])
    );
    assert_eq!(
        added[2].request.source,
        Source::Uris(vec![
            "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567".into()
        ])
    );
    assert_eq!(
        added[3].request.source,
        Source::Torrent {
            bytes,
            web_seeds: Vec::new()
        }
    );
    for task in added {
        // The category's folder, since no savepath was given.
        assert_eq!(task.request.dir.as_deref(), Some("/Media/TV"));
        assert_eq!(task.category.as_deref(), Some("tv"));
        assert_eq!(task.tags, ["sonarr", "new"]);
        assert!(!task.held && task.unwanted.is_empty() && task.request.out.is_none());
    }
    // All duplicates now: Fails.
    let again = d.send("POST", "torrents/add", "", &body);
    assert_eq!(text(&again), (200, TXT, "Fails.".into()));
    // A bare 40-hex infohash.
    d.ok("torrents/add", &[("urls", &hash_of(0xab).to_uppercase())]);
    assert_eq!(
        d.fake.added[4].request.source,
        Source::Uris(vec![format!("magnet:?xt=urn:btih:{}", hash_of(0xab))])
    );
    // Nothing at all, or only what the drive refuses: Fails.
    assert_eq!(d.ok("torrents/add", &[]), "Fails.");
    assert_eq!(
        d.ok("torrents/add", &[("urls", "ftp://x.example/a")]),
        "Fails."
    );
    assert_eq!(d.get("torrents/add", &format!("urls={MAGNET}")).status, 405);
}

#[test]
fn add_options() {
    let mut d = Daemon::new(Fake::with_categories());
    let add = |d: &mut Daemon, url: &str, fields: &[(&str, &str)]| -> (String, Option<NewTask>) {
        let mut all = vec![("urls", url)];
        all.extend_from_slice(fields);
        let before = d.fake.added.len();
        let reply = d.post("torrents/add", &all);
        let added = d.fake.added.get(before).cloned();
        (format!("{} {}", reply.status, reply.text_body()), added)
    };
    // savepath under the prefix: the drive's folder.
    let (r, t) = add(
        &mut d,
        "https://a.example/1",
        &[("savepath", "/mnt/cloud/Media/Films/")],
    );
    assert_eq!(r, "200 Ok.");
    assert_eq!(t.unwrap().request.dir.as_deref(), Some("/Media/Films"));
    // A relative savepath: under the default folder.
    let (_, t) = add(&mut d, "https://a.example/2", &[("savepath", "sub/dir")]);
    assert_eq!(
        t.unwrap().request.dir.as_deref(),
        Some("/Downloads/sub/dir")
    );
    // Outside the prefix: a drive path as it is.
    let (r, t) = add(&mut d, "https://a.example/3", &[("savepath", "/data/tv")]);
    assert_eq!(r, "200 Ok.");
    assert_eq!(t.unwrap().request.dir.as_deref(), Some("/data/tv"));
    // A `..` component: refused, nothing added.
    let (r, t) = add(
        &mut d,
        "https://a.example/4",
        &[("savepath", "/mnt/cloud/../etc")],
    );
    assert!(
        r.starts_with("400 the path \"/mnt/cloud/../etc\" has"),
        "{r}"
    );
    assert!(t.is_none());
    // savepath wins over the category's folder.
    let (_, t) = add(
        &mut d,
        "https://a.example/4",
        &[("savepath", "/mnt/cloud/x"), ("category", "tv")],
    );
    let t = t.unwrap();
    assert_eq!(
        (t.request.dir.as_deref(), t.category.as_deref()),
        (Some("/x"), Some("tv"))
    );
    // A category without a folder: the default folder's subfolder.
    let (_, t) = add(&mut d, "https://a.example/5", &[("category", "movies")]);
    assert_eq!(t.unwrap().request.dir.as_deref(), Some("/Downloads/movies"));
    // An unknown category is made.
    let (_, t) = add(&mut d, "https://a.example/6", &[("category", "anime")]);
    let t = t.unwrap();
    assert_eq!(
        (t.request.dir.as_deref(), t.category.as_deref()),
        (Some("/Downloads/anime"), Some("anime"))
    );
    assert!(d.fake.categories.contains_key("anime"));
    // One that cannot be made is dropped.
    let (_, t) = add(&mut d, "https://a.example/7", &[("category", "bad\\name")]);
    let t = t.unwrap();
    assert_eq!((t.request.dir, t.category), (None, None));
    // paused (4.x) and stopped (5.x): held.
    let (_, t) = add(&mut d, "https://a.example/8", &[("paused", "true")]);
    assert!(t.unwrap().held);
    let (_, t) = add(&mut d, "https://a.example/9", &[("stopped", "TRUE")]);
    assert!(t.unwrap().held);
    let (_, t) = add(&mut d, "https://a.example/10", &[("paused", "false")]);
    assert!(!t.unwrap().held);
    // rename: the name to store it under.
    let (_, t) = add(
        &mut d,
        "https://a.example/11",
        &[("rename", " Better Name.mkv ")],
    );
    assert_eq!(t.unwrap().request.out.as_deref(), Some("Better Name.mkv"));
    // The added one is listed, held as pausedDL.
    let listed = d.json(
        "torrents/info",
        &format!("hashes={}", task_hash(None, "https://a.example/8", 0)),
    );
    assert_eq!(listed[0]["state"], "pausedDL");
    // A file that is not a torrent: 400, nothing added (not even the links).
    let before = d.fake.added.len();
    let mut body = form(&[("urls", "https://a.example/12")]);
    body.files.push(FormFile {
        field: "torrents".into(),
        filename: Some("junk.torrent".into()),
        bytes: b"not bencode".to_vec(),
    });
    let reply = d.send("POST", "torrents/add", "", &body);
    assert_eq!(
        text(&reply),
        (
            400,
            TXT,
            "Error: 'junk.torrent' is not a valid torrent file.".into()
        )
    );
    assert_eq!(d.fake.added.len(), before);
}

// --- Actions ------------------------------------------------------------------------

#[test]
fn delete_torrents() {
    let mut d = Daemon::new(Fake::with(every_kind()));
    let both = format!("{}|{}", hash_of(2).to_uppercase(), hash_of(3));
    assert_eq!(
        d.ok(
            "torrents/delete",
            &[("hashes", &both), ("deleteFiles", "false")]
        ),
        ""
    );
    assert_eq!(d.fake.deleted, [(Gid::new(2), false), (Gid::new(3), false)]);
    let missing = d.post("torrents/delete", &[("hashes", &hash_of(1))]);
    assert_eq!(
        text(&missing),
        (400, TXT, "Missing required parameters: deleteFiles".into())
    );
    d.fake.refuse_deletes = true;
    let refused = d.post(
        "torrents/delete",
        &[("hashes", &hash_of(1)), ("deleteFiles", "true")],
    );
    assert_eq!(
        text(&refused),
        (409, TXT, "this drive cannot delete files".into())
    );
    d.fake.refuse_deletes = false;
    // Unknown hashes are skipped; `all` is every task.
    d.ok(
        "torrents/delete",
        &[("hashes", &hash_of(99)), ("deleteFiles", "true")],
    );
    assert_eq!(d.fake.deleted.len(), 2);
    d.ok(
        "torrents/delete",
        &[("hashes", "all"), ("deleteFiles", "true")],
    );
    assert!(d.fake.tasks.is_empty());
    assert_eq!(d.fake.deleted.len(), 7);
}

#[test]
fn pause_and_resume() {
    let mut d = Daemon::new(Fake::with(every_kind()));
    let mut queued = task(8, TaskState::Queued, "/Downloads");
    queued.uris = vec!["https://a.example/q".into()];
    d.fake.tasks.push(queued);
    // A running task cannot be paused: nothing changes, and the call succeeds.
    assert_eq!(d.ok("torrents/pause", &[("hashes", &hash_of(1))]), "");
    assert_eq!(d.fake.task_with_hash(&hash_of(1)).state, TaskState::Running);
    assert!(!d.fake.task_with_hash(&hash_of(1)).held);
    // A queued one is held, and released.
    d.ok("torrents/pause", &[("hashes", &hash_of(8))]);
    assert!(d.fake.task_with_hash(&hash_of(8)).held);
    assert_eq!(
        d.json("torrents/info", &format!("hashes={}", hash_of(8)))[0]["state"],
        "pausedDL"
    );
    d.ok("torrents/resume", &[("hashes", &hash_of(8))]);
    assert!(!d.fake.task_with_hash(&hash_of(8)).held);
    // 5.x names.
    d.ok("torrents/stop", &[("hashes", "all")]);
    assert!(d.fake.task_with_hash(&hash_of(8)).held);
    d.ok("torrents/start", &[("hashes", &hash_of(8))]);
    assert!(!d.fake.task_with_hash(&hash_of(8)).held);
    assert_eq!(d.post("torrents/pause", &[]).status, 400);
    assert_eq!(
        d.get("torrents/pause", &format!("hashes={}", hash_of(8)))
            .status,
        405
    );
    // Queue moves with queueing off, and settings the drive has not.
    let top = d.post("torrents/topPrio", &[("hashes", &hash_of(1))]);
    assert_eq!(
        text(&top),
        (409, TXT, "Torrent queueing must be enabled".into())
    );
    let limits = d.post(
        "torrents/setShareLimits",
        &[
            ("hashes", &hash_of(1)),
            ("ratioLimit", "2"),
            ("seedingTimeLimit", "-2"),
        ],
    );
    assert_eq!(limits.status, 200);
    assert_eq!(
        d.post(
            "torrents/setForceStart",
            &[("hashes", "all"), ("value", "true")]
        )
        .status,
        200
    );
}

#[test]
fn categories() {
    let mut d = Daemon::new(Fake::with(every_kind()));
    assert_eq!(
        d.json("torrents/categories", ""),
        json!({
            "movies": {"download_path": null, "name": "movies", "savePath": ""},
            "tv": {"download_path": null, "name": "tv", "savePath": "/mnt/cloud/Media/TV"},
        })
    );
    d.ok(
        "torrents/createCategory",
        &[
            ("category", "anime"),
            ("savePath", "/mnt/cloud/Media/Anime"),
        ],
    );
    assert_eq!(d.fake.categories["anime"].save_path, "/Media/Anime");
    d.ok(
        "torrents/createCategory",
        &[("category", "music"), ("savePath", "")],
    );
    assert_eq!(d.fake.categories["music"].save_path, "");
    let exists = d.post("torrents/createCategory", &[("category", "tv")]);
    assert_eq!(
        text(&exists),
        (409, TXT, "Unable to create category".into())
    );
    let invalid = d.post("torrents/createCategory", &[("category", "a\\b")]);
    assert_eq!(text(&invalid), (409, TXT, "Incorrect category name".into()));
    let empty = d.post("torrents/createCategory", &[("category", "")]);
    assert_eq!(text(&empty), (400, TXT, "Category cannot be empty".into()));
    let climbing = d.post(
        "torrents/createCategory",
        &[("category", "x"), ("savePath", "/srv/../x")],
    );
    assert_eq!(climbing.status, 400);
    d.ok(
        "torrents/createCategory",
        &[("category", "y"), ("savePath", "/srv/y")],
    );
    assert_eq!(d.fake.categories["y"].save_path, "/srv/y");
    d.ok(
        "torrents/editCategory",
        &[("category", "anime"), ("savePath", "Anime")],
    );
    assert_eq!(d.fake.categories["anime"].save_path, "/Downloads/Anime");
    let missing = d.post(
        "torrents/editCategory",
        &[("category", "nope"), ("savePath", "")],
    );
    assert_eq!(text(&missing), (409, TXT, "Unable to edit category".into()));
    assert_eq!(
        d.post("torrents/editCategory", &[("category", "anime")])
            .status,
        400
    );
    // setCategory: a missing category is 409, "" clears.
    let hashes = format!("{}|{}", hash_of(3), hash_of(7));
    d.ok(
        "torrents/setCategory",
        &[("hashes", &hashes), ("category", "anime")],
    );
    assert_eq!(d.hashes("category=anime"), [hash_of(3), hash_of(7)]);
    let bad = d.post(
        "torrents/setCategory",
        &[("hashes", &hashes), ("category", "nope")],
    );
    assert_eq!(text(&bad), (409, TXT, "Incorrect category name".into()));
    d.ok(
        "torrents/setCategory",
        &[("hashes", &hash_of(7)), ("category", "")],
    );
    assert_eq!(d.fake.task_with_hash(&hash_of(7)).category, None);
    d.ok(
        "torrents/removeCategories",
        &[("categories", "anime\nmusic\ny\nunknown")],
    );
    assert_eq!(
        d.fake.categories.keys().collect::<Vec<_>>(),
        ["movies", "tv"]
    );
}

#[test]
fn tags() {
    let mut d = Daemon::new(Fake::with(every_kind()));
    assert_eq!(d.json("torrents/tags", ""), json!(["radarr", "sonarr"]));
    d.ok("torrents/createTags", &[("tags", "a, b,,c")]);
    assert_eq!(
        d.json("torrents/tags", ""),
        json!(["a", "b", "c", "radarr", "sonarr"])
    );
    d.ok("torrents/deleteTags", &[("tags", "c")]);
    assert_eq!(
        d.json("torrents/tags", ""),
        json!(["a", "b", "radarr", "sonarr"])
    );
    let both = format!("{}|{}", hash_of(1), MAGNET_HASH);
    d.ok(
        "torrents/addTags",
        &[("hashes", &both), ("tags", "a,sonarr")],
    );
    assert_eq!(d.fake.task_with_hash(&hash_of(1)).tags, ["sonarr", "a"]);
    assert_eq!(
        d.fake.task_with_hash(MAGNET_HASH).tags,
        ["radarr", "sonarr", "a"]
    );
    d.ok(
        "torrents/removeTags",
        &[("hashes", &both), ("tags", "sonarr")],
    );
    assert_eq!(d.fake.task_with_hash(&hash_of(1)).tags, ["a"]);
    assert_eq!(d.fake.task_with_hash(MAGNET_HASH).tags, ["radarr", "a"]);
    assert_eq!(d.hashes("tag=a"), [hash_of(1), MAGNET_HASH.to_owned()]);
    assert_eq!(d.post("torrents/addTags", &[("hashes", &both)]).status, 400);
}

// --- sync/maindata ------------------------------------------------------------------

#[test]
fn maindata_full_then_partial() {
    let mut d = Daemon::new(Fake::with(every_kind()));
    let full = d.json("sync/maindata", "rid=0");
    assert_eq!(full["rid"], 1);
    assert_eq!(full["full_update"], true);
    assert_eq!(full["torrents"].as_object().unwrap().len(), 7);
    assert!(full["torrents"][hash_of(1)].get("hash").is_none());
    insta::assert_json_snapshot!("maindata_full", full);

    // Nothing changed: the rid only.
    let same = d.json("sync/maindata", "rid=1");
    assert_eq!(same, json!({"rid": 2}));

    // One task's progress changed, another deleted, a tag and a category made.
    let t = d
        .fake
        .tasks
        .iter_mut()
        .find(|t| t.hash == hash_of(7))
        .unwrap();
    t.progress = Progress::Percent(60);
    d.ok(
        "torrents/delete",
        &[("hashes", &hash_of(3)), ("deleteFiles", "false")],
    );
    d.ok("torrents/createTags", &[("tags", "new")]);
    d.ok("torrents/createCategory", &[("category", "anime")]);
    d.ok("torrents/removeCategories", &[("categories", "movies")]);
    let partial = d.json("sync/maindata", "rid=2");
    assert_eq!(partial["rid"], 3);
    assert!(partial.get("full_update").is_none());
    assert_eq!(partial["torrents_removed"], json!([hash_of(3)]));
    let changed = partial["torrents"].as_object().unwrap();
    assert_eq!(changed.keys().collect::<Vec<_>>(), [&hash_of(7)]);
    insta::assert_json_snapshot!("maindata_partial", partial);

    // A stale rid: a full update again.
    let stale = d.json("sync/maindata", "rid=2");
    assert_eq!(stale["full_update"], true);
    assert_eq!(stale["rid"], 4);
    assert_eq!(stale["torrents"].as_object().unwrap().len(), 6);
    // rid 0 starts again at 1.
    assert_eq!(d.json("sync/maindata", "")["rid"], 1);
    // Another session has its own rids.
    let mine = d.cookie.take();
    let other = d.json("sync/maindata", "rid=1");
    assert_eq!(
        (other["rid"].clone(), other["full_update"].clone()),
        (json!(1), json!(true))
    );
    d.cookie = mine;
    assert_eq!(d.json("sync/maindata", "rid=1"), json!({"rid": 2}));
}
