//! The 6pan half of the emulator over real loopback HTTP: login and token rotation,
//! store tokens and instant upload, form and block uploads to the storage service,
//! parsing torrents and links, and tasks (web-seed downloads, file selection, page,
//! delete).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Method, StatusCode};
use offline_emulator::{EmulatorConfig, RunningEmulator};
use offline_proto::qetag::qetag;
use offline_proto::sixpan::identity::{Identity, IdentityType};
use offline_proto::sixpan::upload_token::UploadToken;
use offline_proto::sixpan::TaskStatus;
use serde_json::{json, Value};
use sha1::{Digest as _, Sha1};
use tokio::time::Instant;

const ALICE: &[u8] = include_bytes!("../../../fixtures/torrents/alice.torrent");
const NUMBERS: &[u8] = include_bytes!("../../../fixtures/torrents/numbers.torrent");
const INVALID_TOKEN: &str = "BEARER_AUTHORIZATION_HEADER_INVALID";

/// Bencode of a single-file torrent of `content` with a `url-list`.
fn single_file_torrent(name: &str, content: &[u8], piece_length: usize, web_seed: &str) -> Vec<u8> {
    let mut pieces = Vec::new();
    for chunk in content.chunks(piece_length) {
        pieces.extend_from_slice(&Sha1::digest(chunk));
    }
    let mut out = Vec::new();
    out.extend_from_slice(b"d4:infod");
    out.extend_from_slice(format!("6:lengthi{}e", content.len()).as_bytes());
    out.extend_from_slice(format!("4:name{}:{name}", name.len()).as_bytes());
    out.extend_from_slice(format!("12:piece lengthi{piece_length}e").as_bytes());
    out.extend_from_slice(format!("6:pieces{}:", pieces.len()).as_bytes());
    out.extend_from_slice(&pieces);
    out.extend_from_slice(format!("e8:url-list{}:{web_seed}e", web_seed.len()).as_bytes());
    out
}

/// A torrent file with a `url-list` added (its top-level keys all sort before it).
fn with_web_seed(torrent: &[u8], web_seed: &str) -> Vec<u8> {
    assert!(torrent.ends_with(b"ee"));
    let mut out = torrent[..torrent.len() - 1].to_vec();
    out.extend_from_slice(format!("8:url-list{}:{web_seed}e", web_seed.len()).as_bytes());
    out
}

/// Headers as owned pairs.
fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Uploads `torrent` as `name` and parses it; the parse result.
async fn uploaded_torrent(api: &mut SixPan, name: &str, torrent: &[u8]) -> Value {
    api.form_upload(name, torrent).await;
    api.parse_torrent(qetag(torrent).as_str()).await
}

/// Starts an emulator with `config` and a 6pan client that has not logged in.
async fn anonymous(config: EmulatorConfig) -> (RunningEmulator, SixPan) {
    let emu = start(config).await;
    let api = SixPan::new(&emu);
    (emu, api)
}

#[tokio::test(start_paused = true)]
async fn login_checks_credentials_and_devices() {
    let (emulator, mut api) = anonymous(EmulatorConfig {
        sixpan_max_devices: 2,
        ..EmulatorConfig::default()
    })
    .await;
    let (account, password) = (emulator.sixpan_account(), emulator.sixpan_password());
    assert_eq!(account, "demo@offline.local");

    let reply = api
        .login_as(account, "not the password")
        .await
        .err(400, "PASSWORD_ERROR");
    assert!(reply.new_token().is_none());
    api.login_as("someone@else", password)
        .await
        .err(400, "USER_NOT_FOUND");
    let bad = json!({"value": account, "password": "PLAIN", "code": ""});
    api.post_with("/v2/user/login", None, &bad)
        .await
        .err(400, "PARAMETER_ERROR");
    assert_eq!(emulator.sixpan_logins(), 0);

    let reply = api.login_as(account, password).await.ok(0);
    let first = reply
        .new_token()
        .expect("token in the qingzhen-token header");
    assert_eq!(first.split('.').count(), 3, "a JWT: {first}");
    assert_eq!(reply.result()["email"], "demo@offline.local");
    assert_eq!(emulator.sixpan_logins(), 1);

    // A second login (another device) ends the first token at once.
    api.login(&emulator).await;
    let second = api.token.clone().unwrap();
    api.info_with(Some(&first)).await.err(401, INVALID_TOKEN);
    api.info_with(Some(&second)).await.ok(0);

    // A third login within the token lifetime is one device too many.
    api.login_as(account, password)
        .await
        .err(400, "LOGIN_USER_TOO_MUCH");
    assert_eq!(emulator.sixpan_logins(), 2);
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn tokens_rotate_on_every_call() {
    let (emulator, mut api) = sixpan(EmulatorConfig::default()).await;
    let t0 = api.token.clone().unwrap();

    let reply = api.call("/v2/user/info", &json!({})).await.ok(0);
    let t1 = reply.new_token().unwrap();
    assert_ne!(t1, t0);
    assert_eq!(reply.result()["identity"].as_str().unwrap().len(), 32);
    let t2 = api
        .call("/v2/user/info", &json!({}))
        .await
        .ok(0)
        .new_token()
        .unwrap();
    assert_ne!(t2, t1);

    // The superseded token still works within the grace period (and rotates too).
    let again = api.info_with(Some(&t0)).await.ok(0);
    assert!(again.new_token().is_some_and(|t| t != t0));

    // v1 answers carry the token in the body and as a bearer header too.
    let v1 = api
        .call("/v1/store/token", &json!({"name": "a.bin"}))
        .await
        .ok(200);
    let t3 = v1.new_token().unwrap();
    assert_eq!(v1.json["token"], t3.as_str());
    assert_eq!(v1.headers["authorization"], format!("Bearer {t3}").as_str());

    // No token, an unknown one.
    api.info_with(None).await.err(401, INVALID_TOKEN);
    api.info_with(Some("nope")).await.err(401, INVALID_TOKEN);

    // Like a login elsewhere: every token ends.
    emulator.expire_sixpan_tokens();
    let refused = api.info_with(Some(&t3)).await.err(401, INVALID_TOKEN);
    assert!(refused.new_token().is_none());
    api.info_with(Some(&t0)).await.err(401, INVALID_TOKEN);
    api.login(&emulator).await;
    api.call("/v2/user/info", &json!({})).await.ok(0);
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn superseded_tokens_stop_after_the_grace_and_tokens_expire() {
    let (emulator, mut api) = sixpan(EmulatorConfig {
        sixpan_rotation_grace: Duration::from_millis(300),
        ..EmulatorConfig::default()
    })
    .await;
    let t0 = api.token.clone().unwrap();
    api.call("/v2/user/info", &json!({})).await.ok(0);
    api.info_with(Some(&t0)).await.ok(0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let refused = api.info_with(Some(&t0)).await.err(401, INVALID_TOKEN);
    assert!(
        refused.json["message"]
            .as_str()
            .unwrap()
            .contains("replaced"),
        "{refused:?}"
    );
    // The newest token works.
    api.call("/v2/user/info", &json!({})).await.ok(0);
    emulator.shutdown().await;

    let (emulator, mut api) = sixpan(EmulatorConfig {
        token_lifetime: Duration::from_millis(300),
        ..EmulatorConfig::default()
    })
    .await;
    api.call("/v2/user/info", &json!({})).await.ok(0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    api.call("/v2/user/info", &json!({}))
        .await
        .err(401, INVALID_TOKEN);
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn form_upload_then_instant_upload() {
    let (emulator, mut api) = anonymous(EmulatorConfig::default()).await;
    // Unauthenticated store token calls are refused.
    api.post_with("/v1/store/token", None, &json!({"name": "alice.torrent"}))
        .await
        .err(401, INVALID_TOKEN);
    api.login(&emulator).await;
    let etag = qetag(ALICE);

    // Not stored yet: an upload token, Qiniu style, with a deadline an hour away.
    let reply = api
        .call(
            "/v1/store/token",
            &json!({"name": "alice.torrent", "hash": etag.as_str(), "path": ":torrent"}),
        )
        .await
        .ok(200);
    let result = reply.result();
    assert_eq!(result["uploadUrl"], format!("{}/wcs", emulator.base_url()));
    assert_eq!(result["parent"], ":torrent");
    assert_eq!(result["version"], 1);
    let token = UploadToken::parse(result["token"].as_str().unwrap()).unwrap();
    let deadline = token.deadline().unwrap();
    let from_now = deadline.duration_since(emulator.clock().wall()).unwrap();
    assert!(
        from_now > Duration::from_secs(3500) && from_now <= Duration::from_secs(3600),
        "{from_now:?}"
    );
    assert!(token.policy().save_key.is_some());
    assert_eq!(token.policy().fsize_limit, Some(0));

    let stored = api.form_upload("alice.torrent", ALICE).await;
    assert_eq!(stored.status, StatusCode::OK, "{stored:?}");
    assert_eq!(stored.json["hash"], etag.as_str());
    assert!(stored.json["key"].as_str().is_some_and(|k| !k.is_empty()));
    let blob = emulator.stored_blob(etag).expect("blob stored");
    assert_eq!(std::fs::read(blob).unwrap(), ALICE);
    assert_eq!(emulator.instant_uploads(), 0);

    // Now the hash is known: the file is created at once.
    let reply = api
        .call(
            "/v1/store/token",
            &json!({"name": "again.torrent", "hash": etag.as_str(), "path": ":torrent"}),
        )
        .await
        .ok(200);
    let file = reply.result();
    assert_eq!(file["storeId"], etag.as_str());
    assert_eq!(file["size"], ALICE.len());
    assert_eq!(file["name"], "again.torrent");
    assert_eq!(file["ext"], ".torrent");
    assert_eq!(file["path"], ":torrent");
    assert_eq!(file["uuid"].as_str().unwrap().len(), 32);
    assert!(file.get("token").is_none());
    assert_eq!(emulator.instant_uploads(), 1);

    // A form whose `file` is not last, and one without a token.
    let (token, url) = api.upload_token("x.bin", None).await;
    let upload = format!("{url}/file/upload");
    let (ct, body) = form(&[("file", b"abc"), ("token", token.as_bytes())]);
    let late = api
        .send(Method::POST, &upload, &[("content-type", &ct)], body)
        .await
        .storage_err(400, "last");
    assert_eq!(late.status, StatusCode::BAD_REQUEST, "{late:?}");
    let (ct, body) = multipart(&[], b"abc");
    let anonymous = api
        .send(Method::POST, &upload, &[("content-type", &ct)], body)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{anonymous:?}");
    assert_eq!(anonymous.json["code"], 401);
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn block_upload_of_9_mib_in_3_blocks() {
    let (emulator, mut api) = sixpan(EmulatorConfig::default()).await;
    let data = pattern(9 * MIB);
    let etag = qetag(&data);
    let (token, url) = api.upload_token("nine.bin", Some(etag.as_str())).await;
    let mut ctxs = Vec::new();
    for (index, block) in data.chunks(BLOCK).enumerate() {
        ctxs.push(api.put_block(&url, &token, index, block, MIB).await);
    }
    assert_eq!(emulator.uploaded_chunks(), 9);
    let mkfile = format!("{url}/mkfile/{}", data.len());
    let reply = api
        .send(
            Method::POST,
            &mkfile,
            &[
                ("authorization", &token),
                ("UploadBatch", BATCH),
                ("content-type", "text/plain;charset=UTF-8"),
            ],
            ctxs.join(","),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.json["hash"], etag.as_str());
    let blob = emulator.stored_blob(etag.as_str()).expect("blob stored");
    assert!(std::fs::read(blob).unwrap() == data);
    // The ctxs are used up.
    let again = api
        .send(
            Method::POST,
            &mkfile,
            &[("authorization", &token), ("UploadBatch", BATCH)],
            ctxs.join(","),
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{again:?}");
    // Now instant.
    api.call(
        "/v1/store/token",
        &json!({"name": "nine-again.bin", "hash": etag.as_str()}),
    )
    .await
    .ok(200);
    assert_eq!(emulator.instant_uploads(), 1);
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn block_upload_refusals() {
    let (emulator, mut api) = sixpan(EmulatorConfig::default()).await;
    let (token, url) = api.upload_token("x.bin", None).await;
    let octet = ("content-type", "application/octet-stream");
    let chunk = vec![7u8; 1000];
    let post = |path: String, headers: Vec<(String, String)>, body: Vec<u8>| {
        let api = &api;
        let url = url.clone();
        async move {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            api.send(Method::POST, &format!("{url}{path}"), &headers, body)
                .await
        }
    };

    let bearer = format!("Bearer {token}");
    for (path, headers, needle, status) in [
        (
            "/mkblk/4000/0",
            owned(&[("authorization", &bearer), ("UploadBatch", BATCH), octet]),
            "Bearer",
            401,
        ),
        (
            "/mkblk/4000/0",
            owned(&[("UploadBatch", BATCH), octet]),
            "Authorization",
            401,
        ),
        (
            "/mkblk/4000/0",
            owned(&[
                ("authorization", "ak:c2ln:e30="),
                ("UploadBatch", BATCH),
                octet,
            ]),
            "unknown upload token",
            401,
        ),
        (
            "/mkblk/4000/0",
            owned(&[("authorization", &token), octet]),
            "UploadBatch",
            400,
        ),
        (
            "/mkblk/9999999/0",
            owned(&[("authorization", &token), ("UploadBatch", BATCH), octet]),
            "blockSize",
            400,
        ),
    ] {
        post(path.to_owned(), headers, chunk.clone())
            .await
            .storage_err(status, needle);
    }

    let headers = owned(&block_headers(&token));
    let r = post("/mkblk/4000/0".to_owned(), headers.clone(), chunk.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let ctx = r.json["ctx"].as_str().unwrap().to_owned();
    // A wrong offset, then a chunk past the block's end, then an unknown ctx.
    for (path, body, needle) in [
        (format!("/bput/{ctx}/999"), chunk.clone(), "offset 999"),
        (
            format!("/bput/{ctx}/1000"),
            vec![1u8; 3001],
            "past the block size",
        ),
        ("/bput/nope/1000".to_owned(), chunk.clone(), "ctx"),
    ] {
        post(path, headers.clone(), body)
            .await
            .storage_err(400, needle);
    }
    // An incomplete block, and sizes that do not add up.
    let text = owned(&[("authorization", &token), ("UploadBatch", BATCH)]);
    post(
        "/mkfile/4000".to_owned(),
        text.clone(),
        ctx.clone().into_bytes(),
    )
    .await
    .storage_err(400, "incomplete");
    let r = post(
        format!("/bput/{ctx}/1000"),
        headers.clone(),
        vec![1u8; 3000],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let ctx = r.json["ctx"].as_str().unwrap().to_owned();
    post(
        "/mkfile/4001".to_owned(),
        text.clone(),
        ctx.clone().into_bytes(),
    )
    .await
    .storage_err(400, "not fileSize");
    // A chunk over 4 MiB.
    post("/mkblk/4194304/1".to_owned(), headers, vec![0u8; BLOCK + 1])
        .await
        .storage_err(413, "larger");
    let r = post("/mkfile/4000".to_owned(), text, ctx.into_bytes()).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");

    // An expired upload token.
    let (emulator2, mut api2) = sixpan(EmulatorConfig {
        sixpan_upload_token_lifetime: Duration::ZERO,
        ..EmulatorConfig::default()
    })
    .await;
    let (token, url) = api2.upload_token("x.bin", None).await;
    api2.send(
        Method::POST,
        &format!("{url}/mkblk/4000/0"),
        &block_headers(&token),
        chunk,
    )
    .await
    .storage_err(401, "expired");
    emulator2.shutdown().await;
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn parse_torrent_of_uploaded_files() {
    let (emulator, mut api) = sixpan(EmulatorConfig::default()).await;
    let etag = qetag(ALICE);
    let parsed = uploaded_torrent(&mut api, "alice.torrent", ALICE).await;
    assert_eq!(parsed["name"], "alice.txt");
    assert_eq!(parsed["size"], 163_783);
    let files = parsed["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["name"], "alice.txt");
    assert_eq!(files[0]["size"], 163_783);
    assert_eq!(files[0]["fileIndex"], 0);
    let path_identity = files[0]["pathIdentity"].as_str().unwrap();
    assert!(path_identity.len() == 32 && path_identity.bytes().all(|b| b.is_ascii_hexdigit()));
    let identity = Identity::parse(parsed["identity"].as_str().unwrap()).unwrap();
    assert_eq!(identity.kind(), IdentityType::BitTorrent);
    assert_eq!(
        identity.view().info_hash.as_deref(),
        Some("722fe65b2aa26d14f35b4ad627d20236e481d924")
    );
    assert_eq!(
        identity.view().url.as_deref(),
        Some(format!("qingzhen-internal://{etag}").as_str())
    );
    assert_eq!(identity.view().name.as_deref(), Some("alice.txt"));
    // Stable per torrent: parsing again gives the same path identities.
    let again = api.parse_torrent(etag.as_str()).await;
    assert_eq!(again["files"][0]["pathIdentity"], path_identity);

    // Unknown hash; a stored file that is not a torrent; a malformed hash.
    let text = b"just some text, not bencode";
    api.form_upload("notes.torrent", text).await;
    for (hash, code) in [
        (qetag(b"nothing").as_str().to_owned(), "FILE_NOT_FOUND"),
        (qetag(text).as_str().to_owned(), "UNSUPPORTED_FILE"),
        ("short".to_owned(), "PARAMETER_ERROR"),
    ] {
        api.call("/v2/offline/parseTorrent", &json!({"hash": [hash]}))
            .await
            .err(400, code);
    }
    emulator.shutdown().await;
}

/// A torrent whose `name` of `name_bytes` bytes heads each of `files` empty files.
fn long_named(name_bytes: usize, files: usize) -> Vec<u8> {
    let mut builder = offline_proto::torrent::TorrentBuilder::new("n".repeat(name_bytes));
    for i in 0..files {
        builder = builder.file(&[&i.to_string()], Vec::new());
    }
    builder.build()
}

// Issue 10 #10: a 300 KB name over 10 000 files would be 3 GB of paths (and of answer).
#[tokio::test(start_paused = true)]
async fn parse_torrent_answers_stay_proportional_to_the_input() {
    let (emulator, mut api) = sixpan(EmulatorConfig::default()).await;
    let hostile = long_named(300_000, 10_000);
    assert!(hostile.len() < 600_000, "{}", hostile.len());
    api.form_upload("long.torrent", &hostile).await;
    let hash = qetag(&hostile);
    let reply = api
        .call(
            "/v2/offline/parseTorrent",
            &json!({"hash": [hash.as_str()]}),
        )
        .await;
    assert!(
        reply
            .json
            .to_string()
            .contains("file paths come to more than"),
        "{}",
        reply.json
    );
    reply.err(400, "UNSUPPORTED_FILE");
    // Within the bound one torrent parses (1 000 files of 10 KB paths: 10 MB), but an
    // answer that lists it seven times would pass 64 MiB.
    let big = long_named(10_000, 1_000);
    api.form_upload("big.torrent", &big).await;
    let hash = qetag(&big);
    assert_eq!(
        api.parse_torrent(hash.as_str()).await["files"]
            .as_array()
            .unwrap()
            .len(),
        1_000
    );
    api.call(
        "/v2/offline/parseTorrent",
        &json!({"hash": vec![hash.as_str(); 7]}),
    )
    .await
    .err(400, "PARAMETER_ERROR");
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn parse_url_of_each_kind() {
    let (emulator, mut api) = sixpan(EmulatorConfig::default()).await;
    let links = [
        "https://example.com/files/archive%20v1.zip",
        "magnet:?xt=urn:btih:89D97C2261A21B040CF11CAA661A3BA7233BB7E6&dn=numbers",
        "magnet:?xt=urn:btih:RHMXYITBUINQIDHRDSVGMGR3U4RTXN7G",
        "ed2k://|file|movie.mkv|734003200|0123456789ABCDEF0123456789ABCDEF|/",
    ];
    let results = api.parse_url(&links).await;
    assert_eq!(results.len(), 4);
    let identity = |i: usize| Identity::parse(results[i]["identity"].as_str().unwrap()).unwrap();

    assert_eq!(results[0]["name"], "archive v1.zip");
    assert_eq!(results[0]["size"], 0);
    assert_eq!(identity(0).kind(), IdentityType::Http);
    assert_eq!(identity(0).view().url.as_deref(), Some(links[0]));

    assert_eq!(results[1]["name"], "numbers");
    assert_eq!(identity(1).kind(), IdentityType::BitTorrent);
    let hex = "89d97c2261a21b040cf11caa661a3ba7233bb7e6";
    assert_eq!(identity(1).view().info_hash.as_deref(), Some(hex));
    assert_eq!(identity(2).view().info_hash.as_deref(), Some(hex));
    assert_eq!(results[2]["name"], hex);

    assert_eq!(results[3]["name"], "movie.mkv");
    assert_eq!(results[3]["size"], 734_003_200u64);
    assert_eq!(identity(3).kind(), IdentityType::Unknown(5040));

    for (link, code) in [
        ("magnet:?dn=nohash", "MAGNET_URL_INVALID"),
        ("magnet:?xt=urn:btih:1234", "MAGNET_URL_INVALID"),
        (
            "ed2k://|file|a|notanumber|0123456789abcdef0123456789abcdef|/",
            "ED2K_URL_INVALID",
        ),
        ("ed2k://|server|1.2.3.4|4661|/", "ED2K_URL_INVALID"),
        ("ftp://example.com/a.zip", "UNSUPPORED_PROTOCOL"),
        (
            "thunder://QUFodHRwOi8vZXhhbXBsZS5jb20vYS56aXBaWg==",
            "UNSUPPORED_PROTOCOL",
        ),
        ("just words", "UNSUPPORED_PROTOCOL"),
    ] {
        let body = json!({"url": format!("https://example.com/ok.zip\n{link}")});
        api.call("/v2/offline/parseUrl", &body).await.err(400, code);
    }
    for body in [json!({"url": " \n "}), json!({"link": "x"})] {
        api.call("/v2/offline/parseUrl", &body)
            .await
            .err(400, "PARAMETER_ERROR");
    }
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn add_refuses_bad_identities_and_creates_nothing() {
    let (emulator, mut api) = sixpan(EmulatorConfig::default()).await;
    let results = api.parse_url(&["https://example.com/a.zip"]).await;
    let good = results[0]["identity"].as_str().unwrap().to_owned();
    let (encoded, mac) = good.rsplit_once('$').unwrap();

    // A different MAC digit.
    let first = if mac.starts_with('0') { '1' } else { '0' };
    let flipped = format!("{first}{}", &mac[1..]);
    let tampered_mac = format!("{encoded}${flipped}");
    // Altered JSON with the original MAC.
    use base64::Engine as _;
    let json = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let altered = String::from_utf8(json)
        .unwrap()
        .replace("example.com", "evil.example");
    let tampered_json = format!(
        "{}${mac}",
        base64::engine::general_purpose::STANDARD.encode(altered)
    );
    // Truncated, and one minted elsewhere (the seed's).
    let truncated = good[..good.len() - 4].to_owned();
    let foreign = "eyJzdWNjZXNzIjp0cnVlLCJ0eXBlIjo1MDIwLCJpZGVudGl0eSI6IjI3NTk0YTRmM2RiZDFiNjZhNzg3YzYzMTkwMjg3ZWI3IiwidXJsIjoiaHR0cHM6Ly9hcGkuNnBhbi5jbi92Mi9vZmZsaW5lL3BhcnNlVXJsIiwibmFtZSI6InBhcnNlVXJsIn0=$e71c503288938e9614dca1c55e0ab811";

    for bad in [
        &tampered_mac,
        &tampered_json,
        &truncated,
        &foreign.to_owned(),
        &"no-dollar".to_owned(),
    ] {
        let body = json!({"path": "/", "task": [{"identity": good}, {"identity": bad}]});
        api.call("/v2/offline/add", &body)
            .await
            .err(400, "IDENTITY_INVALID");
    }
    api.call("/v2/offline/add", &json!({"path": "/", "task": []}))
        .await
        .err(400, "PARAMETER_ERROR");
    assert!(emulator.sixpan_tasks().is_empty());
    assert_eq!(api.page(1, 20).await["totalCount"], 0);
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn torrent_with_a_loopback_web_seed_is_downloaded() {
    let content = pattern(100_000);
    let mut corrupt = content.clone();
    corrupt[40_000] ^= 0xff;
    let octet = "application/octet-stream";
    let source = served(&[
        ("payload.bin", octet, &content),
        ("corrupt.bin", octet, &corrupt),
    ])
    .await;
    let (emulator, mut api) = sixpan(EmulatorConfig::default()).await;

    let seeded =
        |file: &str| single_file_torrent("payload.bin", &content, 16_384, &source.file_url(file));
    let parsed = uploaded_torrent(&mut api, "payload.torrent", &seeded("payload.bin")).await;
    assert_eq!(parsed["size"], 100_000);
    let (id, task) = api.run(&parsed["identity"], json!({})).await;
    assert_eq!(task["status"], 1000, "{task}");
    assert_eq!(task["progress"], 100.0);
    assert_eq!(task["type"], 5030);
    assert_eq!(task["name"], "payload.bin");
    assert_eq!(task["size"], 100_000);
    assert_eq!(task["downloadSize"], 100_000);
    // As real servers answer (the shapes six-cli and FlyingPiggyCloud decode): a
    // numeric `userIdentity`, and `data` a JSON string holding an object.
    assert!(task["userIdentity"].is_i64(), "{task}");
    let data: Value = serde_json::from_str(task["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["path"], "/downloads", "{data}");

    let snapshot = sixpan_task(&emulator, &id);
    assert_eq!(snapshot.status, TaskStatus::Done);
    assert_eq!(snapshot.selected_files, ["payload.bin"]);
    assert_eq!(snapshot.stored_paths.len(), 1);
    assert!(std::fs::read(&snapshot.stored_paths[0]).unwrap() == content);
    // The downloaded file is in the drive: uploading it again is instant.
    assert!(emulator.stored_blob(qetag(&content)).is_some());
    api.call(
        "/v1/store/token",
        &json!({"name": "p.bin", "hash": qetag(&content).as_str()}),
    )
    .await
    .ok(200);
    assert_eq!(emulator.instant_uploads(), 1);

    // The same torrent served with one byte changed fails its piece check.
    let parsed = uploaded_torrent(&mut api, "bad.torrent", &seeded("corrupt.bin")).await;
    let (id, task) = api.run(&parsed["identity"], json!({})).await;
    assert_eq!(task["status"], -1, "{task}");
    let snapshot = sixpan_task(&emulator, &id);
    assert!(
        snapshot.fail_reason.as_deref().unwrap().contains("SHA-1"),
        "{snapshot:?}"
    );
    assert!(snapshot.stored_paths.is_empty());
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn file_selection_stores_only_the_selected_files() {
    let source = served(&[
        ("numbers/1.txt", "text/plain", b"1"),
        ("numbers/2.txt", "text/plain", b"22"),
        ("numbers/3.txt", "text/plain", b"333"),
    ])
    .await;
    let torrent = with_web_seed(NUMBERS, &format!("{}/files/", source.base_url()));

    let (emulator, mut api) = sixpan(EmulatorConfig::default()).await;
    let parsed = uploaded_torrent(&mut api, "numbers.torrent", &torrent).await;
    let listed = parsed["files"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[1]["path"], "numbers/2.txt");
    let skip = listed[1]["pathIdentity"].clone();

    let (id, task) = api
        .run(&parsed["identity"], json!({"iginreFiles": [skip]}))
        .await;
    assert_eq!(
        task["status"], 900,
        "partly done: a file was skipped: {task}"
    );
    assert_eq!(task["size"], 4);
    let snapshot = sixpan_task(&emulator, &id);
    assert_eq!(snapshot.selected_files, ["numbers/1.txt", "numbers/3.txt"]);
    let contents: Vec<(String, Vec<u8>)> = snapshot
        .stored_paths
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(p).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        contents,
        [
            ("1.txt".to_owned(), b"1".to_vec()),
            ("3.txt".to_owned(), b"333".to_vec())
        ]
    );
    assert!(emulator.stored_blob(qetag(b"22")).is_none());

    // Every file: done.
    let (id, task) = api
        .run(&parsed["identity"], json!({"iginreFiles": []}))
        .await;
    assert_eq!(task["status"], 1000, "{task}");
    assert_eq!(sixpan_task(&emulator, &id).stored_paths.len(), 3);

    // Skipping every file is refused.
    let all: Vec<Value> = listed.iter().map(|f| f["pathIdentity"].clone()).collect();
    api.call(
        "/v2/offline/add",
        &json!({"path": "/", "task": [{"identity": parsed["identity"], "iginreFiles": all}]}),
    )
    .await
    .err(400, "PARAMETER_ERROR");
    emulator.shutdown().await;
}

/// The `field` of every task of a page, as text.
fn listed(page: &Value, field: &str) -> Vec<String> {
    page["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn http_and_simulated_tasks_page_and_delete() {
    let content = pattern(300_000);
    let source = served(&[("movie.bin", "application/octet-stream", &content)]).await;
    let (emulator, mut api) = sixpan(EmulatorConfig {
        sixpan_simulated_duration: Duration::from_millis(500),
        ..EmulatorConfig::default()
    })
    .await;

    let (movie, missing) = (source.file_url("movie.bin"), source.file_url("missing.bin"));
    let links = [
        movie.as_str(),
        missing.as_str(),
        "magnet:?xt=urn:btih:89d97c2261a21b040cf11caa661a3ba7233bb7e6&dn=numbers",
        "ed2k://|file|movie.mkv|1000|0123456789abcdef0123456789abcdef|/",
    ];
    let reply = api.add_links("/ab/c", &links).await;
    assert_eq!(reply.result(), &json!({"success": true, "count": 4}));

    // Newest first.
    let page = api.page(1, 20).await;
    assert_eq!(page["totalCount"], 4);
    assert_eq!(page["totalPage"], 1);
    let names = listed(&page, "name");
    assert_eq!(names, ["movie.mkv", "numbers", "missing.bin", "movie.bin"]);
    let ids = listed(&page, "identity");

    for id in &ids {
        let task = api.wait_final(id).await;
        let failed = task["name"] == "missing.bin";
        assert_eq!(task["status"], if failed { -1 } else { 1000 }, "{task}");
        // As Mrs4s/six-cli's `SixOfflineTask` reads them: a failed task's reason in
        // `errorCode` (int32) and `errorMessage`, a finished one's folder in
        // `accessPath`, never both; `data` a JSON string with `user` and `path`.
        if failed {
            assert!(task["errorCode"].as_i64().is_some_and(|c| c != 0), "{task}");
            let message = task["errorMessage"].as_str().unwrap();
            assert!(message.contains("404"), "{task}");
            assert!(task.get("accessPath").is_none(), "{task}");
        } else {
            assert_eq!(
                task["accessPath"].as_str(),
                Some(format!("/ab/c/{}", task["name"].as_str().unwrap()).as_str()),
                "{task}"
            );
            assert!(task.get("errorCode").is_none(), "{task}");
            assert!(task.get("errorMessage").is_none(), "{task}");
        }
        let data: Value = serde_json::from_str(task["data"].as_str().unwrap()).unwrap();
        assert_eq!(data["path"], "/ab/c", "{data}");
        assert!(data["user"].is_i64(), "{data}");
    }
    let snapshots = emulator.sixpan_tasks();
    let named = |name: &str| snapshots.iter().find(|t| t.name == name).unwrap();
    let http = named("movie.bin");
    assert_eq!(http.type_code, 5020);
    assert!(std::fs::read(&http.stored_paths[0]).unwrap() == content);
    assert_eq!(http.folder, "/ab/c");
    let missing = named("missing.bin");
    assert!(
        missing.fail_reason.as_deref().unwrap().contains("404"),
        "{missing:?}"
    );
    let ed2k = named("movie.mkv");
    assert_eq!((ed2k.type_code, ed2k.download_size), (5040, 1000));
    assert!(ed2k.stored_paths.is_empty());

    // Paging: small pages, a clamped page size, a bad one.
    let second = api.page(2, 3).await;
    assert_eq!(second["totalPage"], 2);
    assert_eq!(second["list"].as_array().unwrap().len(), 1);
    assert_eq!(second["list"][0]["identity"], ids[3].as_str());
    assert_eq!(api.page(1, 1000).await["pageSize"], 100);
    api.call("/v2/offline/page", &json!({"page": 1, "pageSize": 0}))
        .await
        .err(400, "PARAMETER_ERROR");

    // Delete: unknown identities are ignored.
    let reply = api
        .call(
            "/v2/offline/delete",
            &json!({"identities": [ids[0], ids[1], "ffffffffffffffffffffffffffffffff"]}),
        )
        .await
        .ok(0);
    assert_eq!(reply.result(), 2);
    let page = api.page(1, 20).await;
    assert_eq!(page["totalCount"], 2);
    assert_eq!(emulator.sixpan_tasks().len(), 2);
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn unknown_paths_methods_and_bodies() {
    let (emulator, mut api) = sixpan(EmulatorConfig::default()).await;
    let token = api.token.clone().unwrap();
    let r = api
        .send(
            Method::GET,
            "/v2/user/info",
            &[("Qingzhen-Token", &token)],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "POST");
    assert_eq!(r.code(), "METHOD_NOT_ALLOWED");
    api.post_with("/v2/nothing", Some(&token), &json!({}))
        .await
        .err(404, "API_NOT_FOUND");
    let r = api
        .send(Method::POST, "/wcs/nothing", &[], Bytes::new())
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    api.call("/v2/offline/page", &json!({"page": "one"}))
        .await
        .err(400, "PARAMETER_ERROR");
    let r = api
        .send(
            Method::POST,
            "/v2/offline/page",
            &[("Qingzhen-Token", api.token.as_deref().unwrap())],
            "{not json",
        )
        .await
        .err(400, "PARAMETER_ERROR");
    assert_eq!(r.json["status"], 0);
    let r = api
        .send(
            Method::POST,
            "/v1/store/token",
            &[("Qingzhen-Token", r.new_token().as_deref().unwrap())],
            vec![b' '; 2 * MIB],
        )
        .await
        .err(413, "REQUEST_TOO_LARGE");
    assert_eq!(r.json["status"], 413, "v1 errors repeat the HTTP status");
    // The 123pan half still answers.
    let r = api
        .send(
            Method::POST,
            "/api/v1/access_token",
            &[("platform", "open_platform")],
            "{}",
        )
        .await;
    assert!(r.json.get("x-traceID").is_some(), "{r:?}");
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_running_downloads() {
    let source = served(&[("slow.bin", "application/octet-stream", &pattern(MIB))]).await;
    let (emulator, mut api) = sixpan(EmulatorConfig {
        fetch_rate: Some(64 * 1024),
        ..EmulatorConfig::default()
    })
    .await;
    let results = api.parse_url(&[&source.file_url("slow.bin")]).await;
    let id = api
        .add_one(json!({"identity": results[0]["identity"]}))
        .await;
    let deadline = Instant::now() + POLL_LIMIT;
    loop {
        let task = sixpan_task(&emulator, &id);
        if task.download_size > 0 {
            assert_eq!(task.status, TaskStatus::Downloading);
            assert!(task.progress > 0.0 && task.progress < 100.0, "{task:?}");
            assert_eq!(task.size, MIB as u64);
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {task:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::timeout(Duration::from_secs(6), emulator.shutdown())
        .await
        .expect("shutdown does not wait for the whole download");
}
