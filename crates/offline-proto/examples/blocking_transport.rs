//! Driving the 123pan protocol with no async runtime and no HTTP library: a blocking
//! HTTP/1.1 exchange over `std::net::TcpStream`, the core's encoders and decoders, and
//! its state machines fed with `Instant::now()` / `SystemTime::now()`.
//!
//! This is how an author embeds the protocol core in a transport of their own. It
//! speaks plain http only, so point it at an emulator:
//!
//! ```sh
//! offline emulator --addr 127.0.0.1:8123 &
//! cargo run -p offline-proto --example blocking_transport -- http://127.0.0.1:8123 http://127.0.0.1:8000/file.bin
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use offline_proto::pan123::{
    AccessTokenRequest, Endpoint, OfflineDownloadRequest, OfflineProcessRequest,
};
use offline_proto::token::{TokenAction, TokenLifecycle, DEFAULT_MARGIN};
use offline_proto::tracker::{Next, PollPolicy, Tracker};
use offline_proto::{BaseUrl, HttpRequest, HttpResponse, Secret};

type Failure = Box<dyn std::error::Error>;

/// One blocking exchange: `Connection: close`, the whole answer read to EOF.
fn send(request: &HttpRequest) -> Result<HttpResponse, Failure> {
    let uri = request.uri();
    let host = uri.host().ok_or("no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let mut stream = TcpStream::connect((host, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nhost: {host}:{port}\r\nconnection: close\r\n",
        request.method()
    );
    for (name, value) in request.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str()?));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", request.body().len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(request.body())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header end")?;
    let head = std::str::from_utf8(&raw[..split])?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .ok_or("no status")?
        .parse()?;
    let mut response = http::Response::builder().status(status);
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            response = response.header(name.trim(), value.trim());
        }
    }
    Ok(response.body(Bytes::copy_from_slice(&raw[split + 4..]))?)
}

fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let base = BaseUrl::parse(
        &args
            .next()
            .unwrap_or_else(|| "http://127.0.0.1:8123".into()),
    )?;
    let source = args
        .next()
        .ok_or("usage: blocking_transport BASE_URL SOURCE_URL")?;
    let client_id =
        std::env::var("OFFLINE_123PAN_CLIENT_ID").unwrap_or_else(|_| "offline-demo-client".into());
    let secret = Secret::new(
        std::env::var("OFFLINE_123PAN_CLIENT_SECRET")
            .unwrap_or_else(|_| "offline-demo-secret".into()),
    );

    // The token lifecycle says when to fetch; we do the fetching.
    let mut tokens = TokenLifecycle::fetching(DEFAULT_MARGIN);
    let mut token = || -> Result<Secret, Failure> {
        loop {
            match tokens.poll(SystemTime::now()) {
                TokenAction::Use(t) => return Ok(t),
                TokenAction::Fetch => {
                    let req = AccessTokenRequest {
                        client_id: client_id.clone(),
                        client_secret: secret.clone(),
                    };
                    let data = AccessTokenRequest::decode(&send(&req.to_http(&base, None)?)?)?;
                    tokens.handle_token(data.access_token, data.expired_at.into());
                }
                TokenAction::Wait | TokenAction::Unavailable => return Err("no token".into()),
            }
        }
    };

    let create = OfflineDownloadRequest::new(source.clone());
    let task =
        OfflineDownloadRequest::decode(&send(&create.to_http(&base, Some(&token()?))?)?)?.task_id;
    println!("created task {task} for {source}");

    // The tracker says when to poll; we sleep and ask.
    let mut tracker = Tracker::new(PollPolicy::default());
    tracker.add(task, Instant::now());
    loop {
        match tracker.poll(Instant::now()) {
            Next::Poll(id) => {
                let req = OfflineProcessRequest::new(id).to_http(&base, Some(&token()?))?;
                let p = OfflineProcessRequest::decode(&send(&req)?)?;
                println!("task {id}: {} {:.1}%", p.status, p.process);
                tracker.handle_progress(&id, p.status.is_final(), Instant::now());
            }
            Next::At(when) => std::thread::sleep(when.saturating_duration_since(Instant::now())),
            Next::Awaiting | Next::Done => return Ok(()),
        }
    }
}
