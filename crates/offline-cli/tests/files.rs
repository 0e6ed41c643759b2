//! The `offline` binary and 123pan folders: `add --dir PATH --wait` creating the
//! folders and printing the stored file, `ls`, `info`, `link` (whose bytes are the
//! source's), and the refusals (6pan, the root, a missing folder).

mod common;

use common::*;
use offline_emulator::source::ServedFile;
use offline_emulator::EmulatorConfig;
use serde_json::Value;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn events(o: &std::process::Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn add_into_a_path_creates_the_folders_and_the_file_is_listed_and_linked() {
    let source: Vec<u8> = (0..250_000u32).map(|i| (i % 241) as u8).collect();
    let env = Env::start(
        EmulatorConfig::default(),
        1000.0,
        [(
            "movie.mkv".to_owned(),
            ServedFile::new("video/x-matroska", source.clone()),
        )],
    )
    .await;
    let url = env.src.file_url("movie.mkv");

    let o = env.run(&["add", &url, "--dir", "/a/b", "--wait"]).await;
    let text = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("created folder /a\n"), "{text}");
    assert!(text.contains("created folder /a/b\n"), "{text}");
    assert!(
        text.contains("stored /a/b/movie.mkv (250000 bytes, etag "),
        "{text}"
    );

    // The same path again: nothing to create.
    let o = env.run(&["add", &url, "--dir", "/a/b"]).await;
    assert_eq!(o.status.code(), Some(0));
    assert!(!stdout(&o).contains("created folder"), "{}", stdout(&o));

    // ls by path, as JSON: the first file with its size.
    let o = env.run(&["--json", "ls", "/a/b"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let listed = events(&o);
    let file = listed
        .iter()
        .find(|e| e["name"] == "movie.mkv")
        .unwrap_or_else(|| panic!("{listed:?}"));
    assert_eq!(file["size"], 250_000);
    assert_eq!(file["type"], "file");
    let id = file["id"].as_str().unwrap().to_owned();

    // ls as text; info; the link's bytes are the source's.
    let o = env.run(&["ls", "/a"]).await;
    assert!(stdout(&o).contains(" b"), "{}", stdout(&o));
    let o = env.run(&["info", &id]).await;
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("size     250000 bytes"),
        "{}",
        stdout(&o)
    );
    let o = env.run(&["link", &id]).await;
    assert_eq!(o.status.code(), Some(0));
    let link = stdout(&o).trim().to_owned();
    use offline_proto::HttpClient as _;
    let fetched = transport_hyper::HyperClient::new()
        .unwrap()
        .send(http::Request::get(&link).body(bytes::Bytes::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.body().as_ref(), &source[..]);

    // A numeric --dir is taken as an ID; ls of a missing folder fails and creates
    // nothing; the root and 6pan are refused before anything is sent.
    let o = env.run(&["ls", "/nope"]).await;
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no folder /nope"));
    let o = env.run(&["add", &url, "--dir", "/"]).await;
    assert_eq!(o.status.code(), Some(2));
    let o = env.run(&["add", &url, "--dir", "0"]).await;
    assert_eq!(o.status.code(), Some(2));
    let o = env.run(&["--provider", "6pan", "ls", "/a"]).await;
    assert_eq!(o.status.code(), Some(2));
    let o = env.run(&["info", "abc"]).await;
    assert_eq!(o.status.code(), Some(2));
    let created = env.emu.tasks().len();
    assert_eq!(created, 2, "the refused adds created nothing");
}
