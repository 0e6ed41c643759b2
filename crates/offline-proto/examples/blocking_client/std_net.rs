//! A blocking HTTP/1.1 transport over `std::net::TcpStream`: one connection per
//! request (`Connection: close`), the answer read to its end, every failure typed by
//! whether the request may have reached the server (what the call machine's create
//! rule needs). Plain http only, no redirects, a body limit.
#![allow(unreachable_pub)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use offline_proto::driver::BlockingHttpClient;
use offline_proto::{HttpRequest, HttpResponse, TransportError, TransportErrorKind};

/// The transport's settings.
#[derive(Debug, Clone, Copy)]
pub struct StdNet {
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Read and write timeout.
    pub io_timeout: Duration,
    /// The largest answer accepted, headers included, in bytes.
    pub limit: usize,
}

impl Default for StdNet {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(30),
            limit: 8 * 1024 * 1024,
        }
    }
}

fn closed(message: impl Into<String>) -> TransportError {
    TransportError::new(TransportErrorKind::Closed, message)
}

impl BlockingHttpClient for StdNet {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let uri = request.uri();
        let host = uri
            .host()
            .ok_or_else(|| TransportError::new(TransportErrorKind::Other, "no host"))?;
        let port = uri.port_u16().unwrap_or(80);
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
            .map_err(|e| TransportError::new(TransportErrorKind::Connect, e.to_string()))?
            .next()
            .ok_or_else(|| TransportError::new(TransportErrorKind::Connect, "no address"))?;
        // Until the connection is open, nothing was sent.
        let mut stream = TcpStream::connect_timeout(&addr, self.connect_timeout)
            .map_err(|e| TransportError::new(TransportErrorKind::Connect, e.to_string()))?;
        let timed_out = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                TransportError::new(TransportErrorKind::Timeout, e.to_string())
            }
            _ => closed(e.to_string()),
        };
        stream
            .set_read_timeout(Some(self.io_timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.io_timeout)))
            .map_err(timed_out)?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut head = format!(
            "{} {path} HTTP/1.1\r\nhost: {host}:{port}\r\nconnection: close\r\n",
            request.method()
        );
        for (name, value) in request.headers() {
            let value = value
                .to_str()
                .map_err(|_| TransportError::new(TransportErrorKind::Other, "header value"))?;
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", request.body().len()));
        stream.write_all(head.as_bytes()).map_err(timed_out)?;
        stream.write_all(request.body()).map_err(timed_out)?;
        // From here on the request may have reached the server.
        let mut raw = Vec::new();
        let read = (&mut stream)
            .take(self.limit as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(timed_out)?;
        if read > self.limit {
            return Err(TransportError::new(
                TransportErrorKind::BodyTooLarge { limit: self.limit },
                "answer over the limit",
            ));
        }
        parse(&raw)
    }
}

/// Parses a whole HTTP/1.1 answer (a `Content-Length` body, or one read to EOF).
fn parse(raw: &[u8]) -> Result<HttpResponse, TransportError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| closed("the connection closed before the answer's headers ended"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| closed("headers not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| closed("no status line"))?;
    let mut response = http::Response::builder().status(status);
    let mut length = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
            response = response.header(name.trim(), value.trim());
        }
    }
    let body = &raw[split + 4..];
    if let Some(n) = length {
        if body.len() < n {
            return Err(closed(format!(
                "the answer ended after {} of {n} body bytes",
                body.len()
            )));
        }
    }
    let body = Bytes::copy_from_slice(&body[..length.unwrap_or(body.len()).min(body.len())]);
    response
        .body(body)
        .map_err(|e| TransportError::new(TransportErrorKind::Other, e.to_string()))
}
