//! The transport's guarantees that keep credentials and memory safe: a redirect is
//! handed back, never followed (so an `Authorization` header never reaches the host
//! it points to), and the default client refuses a body over its default limit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use offline_proto::{HttpClient, TransportErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use transport_hyper::{HyperClient, DEFAULT_BODY_LIMIT};

/// Answers every connection with `head` followed by `body_len` bytes of body.
async fn serve(head: String, body_len: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            let head = head.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(head.as_bytes()).await;
                let chunk = vec![b'x'; 64 * 1024];
                let mut left = body_len;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if sock.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), connections)
}

// Paused time: the 100 ms given to a stray connection pass without waiting.
#[tokio::test(start_paused = true)]
async fn a_redirect_to_another_host_is_not_followed_with_the_credentials() {
    transport_hyper::keep_paused_time_moving();
    let (elsewhere, reached) =
        serve("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_owned(), 0).await;
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let (origin, _) = serve(
            format!(
                "HTTP/1.1 {status}\r\nlocation: {elsewhere}/steal\r\ncontent-length: 0\r\n\r\n"
            ),
            0,
        )
        .await;
        let request = http::Request::post(format!("{origin}/api/v1/offline/download"))
            .header("authorization", "Bearer secret-token")
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        let response = HyperClient::new().unwrap().send(request).await.unwrap();
        assert_eq!(response.status().as_str(), &status[..3]);
        assert_eq!(
            response.headers()["location"],
            format!("{elsewhere}/steal").as_str()
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the redirect target was contacted"
    );
}

#[tokio::test]
async fn the_default_client_limits_every_body() {
    // Declared length over the limit, and an undeclared (close-delimited) body.
    for head in [
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            DEFAULT_BODY_LIMIT + 1
        ),
        "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_owned(),
    ] {
        let (url, _) = serve(head, DEFAULT_BODY_LIMIT + 1).await;
        let request = http::Request::get(url).body(Bytes::new()).unwrap();
        let err = HyperClient::new().unwrap().send(request).await.unwrap_err();
        assert_eq!(
            err.kind(),
            TransportErrorKind::BodyTooLarge {
                limit: DEFAULT_BODY_LIMIT
            }
        );
    }
    // At the limit exactly: accepted.
    let (url, _) = serve(
        format!("HTTP/1.1 200 OK\r\ncontent-length: {DEFAULT_BODY_LIMIT}\r\n\r\n"),
        DEFAULT_BODY_LIMIT,
    )
    .await;
    let request = http::Request::get(url).body(Bytes::new()).unwrap();
    let response = HyperClient::new().unwrap().send(request).await.unwrap();
    assert_eq!(response.body().len(), DEFAULT_BODY_LIMIT);
}

#[tokio::test]
async fn a_request_can_carry_its_own_limit() {
    let big = DEFAULT_BODY_LIMIT + 1024;
    let (url, _) = serve(
        format!("HTTP/1.1 200 OK\r\ncontent-length: {big}\r\n\r\n"),
        big,
    )
    .await;
    let mut request = http::Request::get(&url).body(Bytes::new()).unwrap();
    request
        .extensions_mut()
        .insert(offline_proto::ResponseLimit(DEFAULT_BODY_LIMIT * 2));
    let response = HyperClient::new().unwrap().send(request).await.unwrap();
    assert_eq!(
        response.body().len(),
        big,
        "an endpoint that may answer more"
    );

    let mut request = http::Request::get(&url).body(Bytes::new()).unwrap();
    request
        .extensions_mut()
        .insert(offline_proto::ResponseLimit(16));
    let err = HyperClient::new().unwrap().send(request).await.unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::BodyTooLarge { limit: 16 });
}
