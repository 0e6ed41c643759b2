//! 6pan identity blobs: the three from seed 000 (`fixtures/6pan/identity/`) parse to
//! the expected views and go back out byte for byte; malformed blobs give the typed
//! error naming the failed part; property tests: any JSON object with any MAC
//! survives byte for byte, and nothing panics.

use std::path::PathBuf;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use offline_proto::qetag::Etag;
use offline_proto::sixpan::identity::{Identity, IdentityError, IdentityType};
use offline_proto::torrent::InfoHash;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

mod common;
use common::proptest_config::persisted;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/6pan/identity")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // The files hold the blob alone; tolerate an editor's final newline.
    text.strip_suffix('\n').unwrap_or(&text).to_owned()
}

fn blob(json: &str, mac: &str) -> String {
    format!("{}${mac}", STANDARD.encode(json))
}

const MAC: &str = "0123456789abcdef0123456789abcdef";

/// Parses the seed blob in fixture `file` and checks what every seed blob states: the
/// identity, its type, the display name and the source URL.
fn seed_blob(file: &str, kind: IdentityType, identity: &str, name: &str, url: &str) -> Identity {
    let parsed = Identity::parse(&fixture(file)).unwrap();
    let view = parsed.view();
    assert_eq!(view.kind, kind, "{file}");
    assert_eq!(view.identity, identity, "{file}");
    assert_eq!(view.name.as_deref(), Some(name), "{file}");
    assert_eq!(view.url.as_deref(), Some(url), "{file}");
    parsed
}

// ---------------------------------------------------------------------------------
// The seed blobs
// ---------------------------------------------------------------------------------

#[test]
fn seed_000_parse_torrent_blob() {
    let text = fixture("parse_torrent_bt.txt");
    let identity = seed_blob(
        "parse_torrent_bt.txt",
        IdentityType::BitTorrent,
        "7e84c5236e77828be9727ed9dae3fe39c1a425b8",
        "FSET774C",
        "qingzhen-internal://FhIXuVl6_FgFM6yKdfcIIicpwMrG",
    );
    let view = identity.view();
    assert_eq!(identity.kind().code(), 5030);
    assert_eq!(view.success, Some(true));
    assert_eq!(
        view.info_hash.as_deref(),
        Some("7e84c5236e77828be9727ed9dae3fe39c1a425b8")
    );
    assert!(view.extra.is_empty());
    assert_eq!(identity.mac(), "462517477d4d80d79a48796a07bb7540");
    assert_eq!(identity.as_str(), text);

    // The pieces agree with the other modules: the URL names the torrent file by its
    // etag (the hash sent to parseTorrent in the seed), and infoHash is an info hash.
    let etag: Etag = view
        .url
        .as_deref()
        .and_then(|u| u.strip_prefix("qingzhen-internal://"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(etag.as_str(), "FhIXuVl6_FgFM6yKdfcIIicpwMrG");
    let hash: InfoHash = view.info_hash.as_deref().unwrap().parse().unwrap();
    assert_eq!(hash.to_string(), view.identity);
}

#[test]
fn seed_000_add_request_blobs() {
    let bilibili = seed_blob(
        "add_task_bilibili.txt",
        IdentityType::Http,
        "dda0b4e445c73dfd32832d8c683e5fa6",
        "dda0b4e445c73dfd32832d8c683e5fa6",
        "https://www.bilibili.com/video/av14112839/?spm_id_from=333.788.videocard.0",
    );
    let view = bilibili.view();
    assert_eq!(view.success, Some(true));
    assert_eq!(view.info_hash, None);
    assert!(view.extra.is_empty());
    assert_eq!(bilibili.mac(), "7e9c34935b3749ac669e222aaa055454");

    let parse_url = seed_blob(
        "add_task_parse_url.txt",
        IdentityType::Http,
        "27594a4f3dbd1b66a787c63190287eb7",
        "parseUrl",
        "https://api.6pan.cn/v2/offline/parseUrl",
    );
    assert_eq!(parse_url.mac(), "e71c503288938e9614dca1c55e0ab811");
}

/// The `task` items of seed 000's `add` request.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Task {
    identity: Identity,
    #[serde(rename = "iginreFiles", default, skip_serializing_if = "Vec::is_empty")]
    ignore_files: Vec<String>,
}

#[test]
fn seed_blobs_go_back_byte_for_byte() {
    for name in [
        "parse_torrent_bt.txt",
        "add_task_bilibili.txt",
        "add_task_parse_url.txt",
    ] {
        let text = fixture(name);
        let identity = Identity::parse(&text).unwrap();
        assert_eq!(identity.as_str(), text, "{name}");
        assert_eq!(identity.to_string(), text, "{name}");
        let json = serde_json::to_string(&identity).unwrap();
        assert_eq!(json, serde_json::to_string(&text).unwrap(), "{name}");
        let back: Identity = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_str(), text, "{name}");
        assert_eq!(back, identity);
        assert_eq!(text.parse::<Identity>().unwrap(), identity);
    }

    // The request body of seed 000, rebuilt from the parsed blobs.
    let task = Task {
        identity: Identity::parse(&fixture("add_task_bilibili.txt")).unwrap(),
        ignore_files: vec!["1a53d7efd98288b66986429b71cffcee".to_owned()],
    };
    let value = serde_json::to_value(&task).unwrap();
    assert_eq!(
        value,
        json!({
            "identity": fixture("add_task_bilibili.txt"),
            "iginreFiles": ["1a53d7efd98288b66986429b71cffcee"],
        })
    );
    assert_eq!(serde_json::from_value::<Task>(value).unwrap(), task);
}

#[test]
fn debug_is_short_and_display_is_the_blob() {
    let identity = Identity::parse(&fixture("parse_torrent_bt.txt")).unwrap();
    let debug = format!("{identity:?}");
    assert!(
        debug.contains("BitTorrent") && debug.contains("FSET774C"),
        "{debug}"
    );
    assert!(!debug.contains("eyJ"), "{debug}");
}

// ---------------------------------------------------------------------------------
// Leniency
// ---------------------------------------------------------------------------------

#[test]
fn base64_variants_are_accepted() {
    let json = r#"{"identity":"x","type":5030,"name":"??>>"}"#;
    for encoded in [
        STANDARD.encode(json),
        STANDARD_NO_PAD.encode(json),
        URL_SAFE.encode(json),
        URL_SAFE_NO_PAD.encode(json),
    ] {
        let text = format!("{encoded}${MAC}");
        let identity = Identity::parse(&text).unwrap();
        assert_eq!(identity.view().name.as_deref(), Some("??>>"));
        assert_eq!(identity.as_str(), text);
    }
}

#[test]
fn unknown_fields_and_codes_are_kept() {
    let text = blob(
        r#"{"identity":"x","type":7777,"success":false,"extraNumber":1,"nested":{"a":[1,2]}}"#,
        MAC,
    );
    let identity = Identity::parse(&text).unwrap();
    let view = identity.view();
    assert_eq!(view.kind, IdentityType::Unknown(7777));
    assert_eq!(view.success, Some(false));
    assert_eq!(view.extra.get("extraNumber"), Some(&json!(1)));
    assert_eq!(view.extra.get("nested"), Some(&json!({"a": [1, 2]})));
    assert_eq!(identity.as_str(), text);

    // Every known code.
    for (code, kind) in [
        (5030, IdentityType::BitTorrent),
        (5020, IdentityType::Http),
        (5070, IdentityType::Unknown(5070)),
        (5090, IdentityType::Unknown(5090)),
    ] {
        let identity =
            Identity::parse(&blob(&format!(r#"{{"identity":"x","type":{code}}}"#), MAC)).unwrap();
        assert_eq!(identity.kind(), kind);
        assert_eq!(kind.code(), code);
    }
    // A code written as a string.
    let identity = Identity::parse(&blob(r#"{"identity":"x","type":"5020"}"#, MAC)).unwrap();
    assert_eq!(identity.kind(), IdentityType::Http);
}

#[test]
fn mistyped_known_fields_stay_in_extra() {
    let text = blob(
        r#"{"identity":"x","type":5030,"name":42,"url":null,"success":"yes","infoHash":["a"]}"#,
        MAC,
    );
    let identity = Identity::parse(&text).unwrap();
    let view = identity.view();
    assert_eq!(view.name, None);
    assert_eq!(view.url, None);
    assert_eq!(view.success, None);
    assert_eq!(view.info_hash, None);
    assert_eq!(view.extra.get("name"), Some(&json!(42)));
    assert_eq!(view.extra.get("success"), Some(&json!("yes")));
    assert_eq!(view.extra.get("infoHash"), Some(&json!(["a"])));
    assert!(!view.extra.contains_key("url"));
    assert_eq!(identity.as_str(), text);
    // The view serializes without repeating a key.
    let value = serde_json::to_value(view).unwrap();
    assert_eq!(value["name"], json!(42));
    assert_eq!(value["type"], json!(5030));
}

// ---------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------

#[test]
fn malformed_blobs_give_typed_errors() {
    let good_json = r#"{"identity":"x","type":5030}"#;
    type Check = fn(&IdentityError) -> bool;
    let cases: Vec<(String, Check, &str)> = vec![
        (
            STANDARD.encode(good_json),
            |e| matches!(e, IdentityError::MissingSeparator { .. }),
            "no `$`",
        ),
        (
            blob(good_json, &MAC.to_uppercase()),
            |e| matches!(e, IdentityError::BadMac { .. }),
            "MAC",
        ),
        (
            blob(good_json, &MAC[1..]),
            |e| matches!(e, IdentityError::BadMac { .. }),
            "MAC",
        ),
        (
            blob(good_json, &format!("{MAC}0")),
            |e| matches!(e, IdentityError::BadMac { .. }),
            "MAC",
        ),
        (
            blob(good_json, ""),
            |e| matches!(e, IdentityError::BadMac { .. }),
            "MAC",
        ),
        (
            format!("not*base64${MAC}"),
            |e| matches!(e, IdentityError::Base64 { .. }),
            "base64",
        ),
        (
            // The split is at the last `$`: an earlier one belongs to the base64 part.
            format!("{}${}${MAC}", STANDARD.encode(good_json), MAC),
            |e| matches!(e, IdentityError::Base64 { .. }),
            "base64",
        ),
        (
            format!("${MAC}"),
            |e| matches!(e, IdentityError::Json { .. }),
            "JSON",
        ),
        (
            blob("not json", MAC),
            |e| matches!(e, IdentityError::Json { .. }),
            "JSON",
        ),
        (
            blob(r#"{"identity":"x","type":5030"#, MAC),
            |e| matches!(e, IdentityError::Json { .. }),
            "JSON",
        ),
        (
            blob("[1,2]", MAC),
            |e| matches!(e, IdentityError::NotAnObject),
            "not a JSON object",
        ),
        (
            blob(r#"{"type":5030}"#, MAC),
            |e| matches!(e, IdentityError::MissingIdentity),
            "`identity`",
        ),
        (
            blob(r#"{"identity":5,"type":5030}"#, MAC),
            |e| matches!(e, IdentityError::IdentityNotAString),
            "`identity`",
        ),
        (
            blob(r#"{"identity":"x"}"#, MAC),
            |e| matches!(e, IdentityError::MissingType),
            "`type`",
        ),
        (
            blob(r#"{"identity":"x","type":"bt"}"#, MAC),
            |e| matches!(e, IdentityError::BadType { .. }),
            "`type`",
        ),
        (
            blob(r#"{"identity":"x","type":50.5}"#, MAC),
            |e| matches!(e, IdentityError::BadType { .. }),
            "`type`",
        ),
    ];
    for (text, check, mention) in cases {
        let error = Identity::parse(&text).unwrap_err();
        assert!(check(&error), "{text:?}: {error:?}");
        assert!(
            error.to_string().contains(mention),
            "{text:?}: message {error} should mention {mention}"
        );
    }
}

#[test]
fn error_messages_echo_at_most_80_characters() {
    let long = "A".repeat(10_000);
    for text in [
        long.clone(),
        format!("{long}$"),
        format!("x${long}"),
        blob(&format!(r#"{{"identity":"x","type":"{long}"}}"#), MAC),
        blob(
            &format!(r#"{{"identity":"x","type":5030,"a":{long}}}"#),
            MAC,
        ),
    ] {
        let error = Identity::parse(&text).unwrap_err();
        let message = error.to_string();
        assert!(!message.contains(&"A".repeat(81)), "{message}");
        assert!(message.len() < 250, "{message}");
    }
}

#[test]
fn deserializing_a_bad_blob_is_an_error() {
    assert!(serde_json::from_str::<Identity>(r#""no separator""#).is_err());
    assert!(serde_json::from_str::<Identity>("5").is_err());
}

// ---------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const KNOWN: [&str; 6] = ["identity", "type", "success", "name", "url", "infoHash"];

/// A JSON object as a server could send: the required fields, maybe the optional
/// ones, and unknown ones.
fn identity_object() -> impl Strategy<Value = Map<String, Value>> {
    (
        "\\PC{0,40}",
        prop_oneof![
            prop::sample::select(vec![5030i64, 5020, 5070, 5090]),
            any::<i64>()
        ],
        proptest::option::of(any::<bool>()),
        proptest::option::of("\\PC{0,30}"),
        proptest::option::of("\\PC{0,60}"),
        proptest::option::of("[0-9a-f]{40}"),
        prop::collection::btree_map(
            "[a-zA-Z_]{1,10}".prop_filter("unknown key", |k| !KNOWN.contains(&k.as_str())),
            json_value(),
            0..4,
        ),
    )
        .prop_map(|(identity, kind, success, name, url, info_hash, extra)| {
            let mut object: Map<String, Value> = extra.into_iter().collect();
            object.insert("identity".into(), json!(identity));
            object.insert("type".into(), json!(kind));
            if let Some(success) = success {
                object.insert("success".into(), json!(success));
            }
            if let Some(name) = name {
                object.insert("name".into(), json!(name));
            }
            if let Some(url) = url {
                object.insert("url".into(), json!(url));
            }
            if let Some(info_hash) = info_hash {
                object.insert("infoHash".into(), json!(info_hash));
            }
            object
        })
}

proptest! {
    #![proptest_config(persisted(256, "proptest-regressions/sixpan_identity.txt"))]

    #[test]
    fn any_object_and_mac_survive_byte_for_byte(
        object in identity_object(),
        mac in "[0-9a-f]{32}",
        engine in 0..4usize,
    ) {
        let json = serde_json::to_string(&Value::Object(object.clone())).unwrap();
        let encoded = match engine {
            0 => STANDARD.encode(&json),
            1 => STANDARD_NO_PAD.encode(&json),
            2 => URL_SAFE.encode(&json),
            _ => URL_SAFE_NO_PAD.encode(&json),
        };
        let text = format!("{encoded}${mac}");
        let identity = Identity::parse(&text).unwrap();
        prop_assert_eq!(identity.as_str(), text.as_str());
        prop_assert_eq!(identity.mac(), mac.as_str());

        let view = identity.view();
        prop_assert_eq!(Some(&json!(view.identity)), object.get("identity"));
        prop_assert_eq!(Some(&json!(view.kind.code())), object.get("type"));
        prop_assert_eq!(view.success.map(|b| json!(b)), object.get("success").cloned());
        prop_assert_eq!(view.name.as_ref().map(|s| json!(s)), object.get("name").cloned());
        prop_assert_eq!(view.url.as_ref().map(|s| json!(s)), object.get("url").cloned());
        prop_assert_eq!(view.info_hash.as_ref().map(|s| json!(s)), object.get("infoHash").cloned());
        let unknown: Map<String, Value> = object
            .iter()
            .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        prop_assert_eq!(&view.extra, &unknown);

        let serialized = serde_json::to_string(&identity).unwrap();
        prop_assert_eq!(&serialized, &serde_json::to_string(&text).unwrap());
        let back: Identity = serde_json::from_str(&serialized).unwrap();
        prop_assert_eq!(back.as_str(), text.as_str());
        prop_assert_eq!(back.view(), identity.view());
    }

    #[test]
    fn parse_never_panics_on_arbitrary_strings(text in "\\PC{0,200}") {
        let _ = Identity::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_near_blobs(
        body in "[A-Za-z0-9+/=_$-]{0,120}",
        mac in "[0-9a-fA-F$]{0,40}",
    ) {
        let _ = Identity::parse(&format!("{body}${mac}"));
    }

    #[test]
    fn parse_never_panics_on_any_base64_payload(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        mac in "[0-9a-f]{32}",
    ) {
        let _ = Identity::parse(&format!("{}${mac}", STANDARD.encode(bytes)));
    }
}
