//! Slow and many clients (issue 10 #14): a body trickled a byte at a time is cut off at
//! [`BODY_DEADLINE`], and no more than `max_connections` connections are served at
//! once, the rest waiting until one ends. Paused time: the 10 s between bytes and the
//! deadline itself take no real time.

mod common;

use std::time::Duration;

use common::*;
use offline_emulator::{EmulatorConfig, RunningEmulator, BODY_DEADLINE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The start of a token request whose 1,000-byte body is still to come (the token
/// call reads its body first).
fn token_head(emu_addr: &str) -> String {
    format!(
        "POST {TOKEN} HTTP/1.1\r\nhost: {emu_addr}\r\ncontent-type: application/json\r\n\
         platform: open_platform\r\ncontent-length: 1000\r\n\r\n"
    )
}

/// Reads until the server answers or closes; the bytes read.
async fn read_answer(sock: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") {
                    return out;
                }
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_trickled_a_byte_every_ten_seconds_is_cut_off_at_the_deadline() {
    let emu = start(relaxed_config()).await;
    let addr = emu.base_url().trim_start_matches("http://").to_owned();
    let mut sock = TcpStream::connect(&addr).await.unwrap();
    sock.write_all(token_head(&addr).as_bytes()).await.unwrap();
    let started = Instant::now();
    // One byte every 10 s: each arrives well within the 30 s a chunk may take, so only
    // a deadline on the whole body ends this (1,000 bytes would take 10,000 s).
    let (mut reader, mut writer) = sock.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..1000 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    });
    let mut answer = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(BODY_DEADLINE * 3, read)
        .await
        .expect("the emulator gave up on the body");
    let waited = started.elapsed();
    trickle.abort();
    assert!(
        waited >= BODY_DEADLINE && waited < BODY_DEADLINE + Duration::from_secs(15),
        "cut off after {waited:?}: {}",
        String::from_utf8_lossy(&answer)
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 ") && text.contains("timed out reading the request body"),
        "an error answer: {text}"
    );
    emu.shutdown().await;
}

/// An emulator serving `max` connections at once, `held` silent connections to it
/// taking slots, and one more connection that has sent `GET /_emulator/stats`.
async fn capped(max: usize, held: usize) -> (RunningEmulator, Vec<TcpStream>, TcpStream) {
    let emu = start(EmulatorConfig {
        max_connections: max,
        ..relaxed_config()
    })
    .await;
    let addr = emu.base_url().trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..held {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stats = format!("GET /_emulator/stats HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    let mut next = TcpStream::connect(&addr).await.unwrap();
    next.write_all(stats.as_bytes()).await.unwrap();
    (emu, idle, next)
}

#[tokio::test(start_paused = true)]
async fn connections_over_the_cap_wait_until_one_ends() {
    // Three clients that connect and say nothing hold the three slots.
    let (emu, mut idle, mut fourth) = capped(3, 3).await;
    // Not served while the slots are taken (the connection waits in the backlog)...
    let early = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut fourth)).await;
    assert!(early.is_err(), "served beyond the cap: {early:?}");
    // ...and served as soon as one ends.
    drop(idle.pop());
    let answer = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut fourth))
        .await
        .expect("served once a slot is free");
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    drop(idle);
    emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn silent_connections_are_closed_after_the_header_timeout_and_free_their_slot() {
    let (emu, mut silent, mut next) = capped(1, 1).await;
    let mut silent = silent.pop().unwrap();
    // The silent client is dropped after the 30 s header timeout; the next is served.
    let closed = tokio::time::timeout(Duration::from_secs(60), read_answer(&mut silent))
        .await
        .expect("the silent connection was closed");
    assert!(closed.is_empty() || closed.starts_with(b"HTTP/1.1 408"));
    let answer = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut next))
        .await
        .expect("served after the silent one went");
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    emu.shutdown().await;
}
