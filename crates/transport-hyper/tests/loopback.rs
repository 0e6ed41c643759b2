//! The transport against small servers on loopback: success, body limit, timeout,
//! refused connection, a connection dropped mid-body.

use std::time::Duration;

use bytes::Bytes;
use offline_proto::{HttpClient, HttpResponse, TransportError, TransportErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use transport_hyper::HyperClient;

/// Serves one connection with a canned raw answer, then stops.
async fn one_shot(answer: &'static [u8], delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let accepted = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await;
        if let Ok(Ok((mut sock, _))) = accepted {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            tokio::time::sleep(delay).await;
            let _ = sock.write_all(answer).await;
            let _ = sock.shutdown().await;
        }
    });
    format!("http://{addr}/")
}

fn get(uri: &str) -> http::Request<Bytes> {
    http::Request::get(uri).body(Bytes::new()).unwrap()
}

/// What `client` makes of a GET answered at once with the raw bytes `answer`.
async fn send(client: &HyperClient, answer: &'static [u8]) -> Result<HttpResponse, TransportError> {
    let uri = one_shot(answer, Duration::ZERO).await;
    client.send(get(&uri)).await
}

#[tokio::test]
async fn reads_a_whole_response() {
    let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"code\":0}\n";
    let resp = send(&HyperClient::new().unwrap(), answer).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(&resp.body()[..], b"{\"code\":0}\n");
}

#[tokio::test]
async fn refuses_a_body_over_the_limit() {
    let client = HyperClient::builder().body_limit(10).build().unwrap();
    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n01234567890123456789";
    let err = send(&client, answer).await.unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::BodyTooLarge { limit: 10 });
}

// Paused time: the server's 3 s and the client's 200 ms pass without waiting.
#[tokio::test(start_paused = true)]
async fn times_out() {
    transport_hyper::keep_paused_time_moving();
    let uri = one_shot(
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    let client = HyperClient::builder()
        .total_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = client.send(get(&uri)).await.unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::Timeout);
    assert!(err.may_have_been_sent());
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = HyperClient::new().unwrap();
    let err = client
        .send(get(&format!("http://{addr}/")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::Connect);
    assert!(!err.may_have_been_sent());
}

#[tokio::test]
async fn truncated_body_is_closed_not_success() {
    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"code\":0,";
    let err = send(&HyperClient::new().unwrap(), answer)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::Closed);
}

#[tokio::test]
async fn does_not_follow_redirects() {
    let answer =
        b"HTTP/1.1 302 Found\r\nlocation: http://127.0.0.2:1/steal\r\ncontent-length: 0\r\n\r\n";
    let resp = send(&HyperClient::new().unwrap(), answer).await.unwrap();
    assert_eq!(resp.status(), 302);
}
