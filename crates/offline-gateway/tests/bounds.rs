//! The listener's bounds against slow and many clients, on a real loopback socket
//! with tokio's paused clock (the timeouts pass without waiting for them): headers
//! trickled past [`HEADER_TIMEOUT`] close the connection; a body trickled past
//! [`BODY_TIMEOUT`] is answered 408; [`MAX_CONNECTIONS`] idle connections hold every
//! slot, and a genuine request waits for one to free instead of being served beyond
//! the cap.

use std::time::Duration;

use offline_gateway::{
    Accepted, Claim, Drive, Gateway, Job, Observed, ServeConfig, Submitted, BODY_TIMEOUT,
    HEADER_TIMEOUT, MAX_CONNECTIONS,
};
use offline_proto::aria2::{AddRequest, Source, StoreError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A drive that takes every link and never finishes anything.
struct Idle;

impl Drive for Idle {
    fn provider(&self) -> &'static str {
        "idle"
    }

    fn kind(&self) -> &'static str {
        "cloud"
    }

    fn default_dir(&self) -> String {
        "/".to_owned()
    }

    fn progress_budget(&self) -> f64 {
        1.0
    }

    fn accept(&self, request: &AddRequest) -> Result<Accepted, StoreError> {
        match &request.source {
            Source::Uris(uris) => Ok(Accepted {
                source: uris[0].clone(),
                name: None,
                torrent: None,
            }),
            Source::Torrent { .. } => Err(StoreError("no torrents".into())),
        }
    }

    async fn submit<'a>(
        &'a self,
        _job: &'a Job,
        claim: &'a (dyn Fn(Claim<'_>) + Send + Sync),
    ) -> Submitted {
        claim(Claim::Sending);
        Submitted::Created("1".into())
    }

    async fn progress<'a>(&'a self, _task: &'a str) -> Result<Observed, String> {
        Ok(Observed {
            percent: 0.0,
            total_length: None,
            completed_length: None,
            ended: None,
        })
    }
}

/// Starts the daemon on an ephemeral port; its address (the temporary directory must
/// outlive it).
async fn start(dir: &tempfile::TempDir) -> std::net::SocketAddr {
    let gateway = Gateway::open(Idle, &dir.path().join("s.sqlite"), ServeConfig::default())
        .expect("the store opens");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(gateway.serve(listener, std::future::pending()));
    addr
}

/// Reads until the peer closes; what it sent.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let _ = stream.read_to_end(&mut all).await;
    String::from_utf8_lossy(&all).into_owned()
}

const VERSION: &str = r#"{"jsonrpc":"2.0","id":"v","method":"aria2.getVersion"}"#;

fn request(body: &str) -> String {
    format!(
        "POST /jsonrpc HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(start_paused = true)]
async fn trickled_headers_are_cut_at_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(&dir).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"POST /jsonrpc HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut slow).await;
    let waited = started.elapsed();
    assert!(waited >= HEADER_TIMEOUT, "closed after {waited:?}");
    assert!(waited < HEADER_TIMEOUT * 2, "closed after {waited:?}");
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test(start_paused = true)]
async fn a_trickled_body_is_answered_408_at_the_body_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(&dir).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(
        b"POST /jsonrpc HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{\"jsonrpc\"",
    )
    .await
    .unwrap();
    let answer = read_to_close(&mut slow).await;
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(waited >= BODY_TIMEOUT, "answered after {waited:?}");
}

#[tokio::test(start_paused = true)]
async fn idle_connections_at_the_cap_make_a_request_wait_not_overflow_it() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(&dir).await;
    // Served at once while there are free slots.
    let mut quick = TcpStream::connect(addr).await.unwrap();
    quick.write_all(request(VERSION).as_bytes()).await.unwrap();
    let answer = read_to_close(&mut quick).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Every slot held by a connection that sends half its headers.
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /jsonrpc HTTP/1.1\r\n").await.unwrap();
        idle.push(s);
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = Instant::now();
    let mut genuine = TcpStream::connect(addr).await.unwrap();
    genuine
        .write_all(request(VERSION).as_bytes())
        .await
        .unwrap();
    let answer = read_to_close(&mut genuine).await;
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // It waited in the backlog until the header timeout freed the slots.
    assert!(
        waited >= HEADER_TIMEOUT - Duration::from_millis(20),
        "answered after {waited:?}: beyond the cap"
    );
}
