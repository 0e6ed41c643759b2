//! `offline serve`'s web page and its security, as a real process against the
//! in-process emulator over real loopback HTTP: the page and its headers, the
//! `--web-password` login (HTTP Basic for the page, and in place of `token:` for
//! JSON-RPC), a cross-origin POST refused, and no secret in the page or in
//! `aria2.getGlobalOption`.

mod common;

use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use offline_emulator::EmulatorConfig;
use serde_json::{json, Value};

const BASIC_ADMIN_PW: &str = "Basic YWRtaW46d2ViLXB3"; // admin:web-pw
const BASIC_WRONG: &str = "Basic YWRtaW46bm9wZQ=="; // admin:nope

/// A request to `url`: its status, headers and body.
async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, http::HeaderMap, String) {
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    let resp = client
        .request(req.body(Full::new(bytes::Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

async fn rpc(url: &str, headers: &[(&str, &str)], method: &str, params: Value) -> Value {
    let call = json!({"jsonrpc": "2.0", "id": "t", "method": method, "params": params});
    let (_, _, body) = request("POST", url, headers, Some(&call)).await;
    serde_json::from_str(&body).unwrap()
}

/// Starts `offline serve` on an ephemeral loopback port; the process and its base URL.
fn serve(env: &Env, extra: &[&str]) -> (Running, String) {
    let state = env.path("serve.sqlite");
    let mut args = vec![
        "--json",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--state",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut running = Running::spawn(&mut env.cmd(&args));
    let listening = running.json_line();
    assert_eq!(listening["event"], "listening", "{listening}");
    let addr = listening["addr"].as_str().unwrap().to_owned();
    (running, format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_is_served_with_its_headers_and_no_secret() {
    let env = Env::start(EmulatorConfig::default(), 1000.0, bin_and_png()).await;
    let (_daemon, base) = serve(&env, &["--rpc-secret", "rpc-s3cret"]);
    let (status, headers, page) = request("GET", &format!("{base}/"), &[], None).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(page.contains("id=\"add-url\"") && page.contains("data-provider=\"123pan\""));
    assert!(!page.contains("rpc-s3cret"));
    for asset in ["/app.js", "/style.css"] {
        let (status, _, body) = request("GET", &format!("{base}{asset}"), &[], None).await;
        assert_eq!(status, 200, "{asset}");
        assert!(!body.contains("rpc-s3cret"));
    }
    // Only the page is open: its calls need the secret like any other.
    let url = format!("{base}/jsonrpc");
    let refused = rpc(&url, &[], "aria2.getGlobalOption", json!([])).await;
    assert_eq!(refused["error"]["message"], "Unauthorized", "{refused}");
    let options = rpc(
        &url,
        &[],
        "aria2.getGlobalOption",
        json!(["token:rpc-s3cret"]),
    )
    .await;
    assert!(options["result"]["dir"].is_string(), "{options}");
    assert!(!options.to_string().contains("rpc-s3cret"), "{options}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_password_guards_the_page_and_stands_for_the_token() {
    let env = Env::start(EmulatorConfig::default(), 1000.0, bin_and_png()).await;
    let (_daemon, base) = serve(&env, &["--web-password", "web-pw"]);
    let page = format!("{base}/");
    let (status, headers, _) = request("GET", &page, &[], None).await;
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .split(',')
            .next()
            .unwrap(),
        "Basic realm=\"offline serve\""
    );
    let (status, _, _) = request("GET", &page, &[("authorization", BASIC_WRONG)], None).await;
    assert_eq!(status, 401);
    let (status, _, body) = request("GET", &page, &[("authorization", BASIC_ADMIN_PW)], None).await;
    assert_eq!(status, 200);
    assert!(!body.contains("web-pw"));
    let (status, _, _) = request(
        "GET",
        &format!("{base}/app.js"),
        &[("authorization", BASIC_ADMIN_PW)],
        None,
    )
    .await;
    assert_eq!(status, 200);

    let url = format!("{base}/jsonrpc");
    // JSON-RPC: with the login, no token needed; without it (or with a wrong one),
    // Unauthorized; the web password as a token works for aria2 clients.
    let with = rpc(
        &url,
        &[("authorization", BASIC_ADMIN_PW)],
        "aria2.getGlobalOption",
        json!([]),
    )
    .await;
    assert!(with["result"]["dir"].is_string(), "{with}");
    assert!(!with.to_string().contains("web-pw"));
    let added = rpc(
        &url,
        &[("authorization", BASIC_ADMIN_PW)],
        "aria2.addUri",
        json!([[env.url(1)]]),
    )
    .await;
    assert_eq!(added["result"].as_str().map(str::len), Some(16), "{added}");
    for headers in [&[][..], &[("authorization", BASIC_WRONG)][..]] {
        let refused = rpc(&url, headers, "aria2.tellActive", json!([])).await;
        assert_eq!(refused["error"]["message"], "Unauthorized", "{refused}");
    }
    let token = rpc(
        &url,
        &[],
        "aria2.tellActive",
        json!(["token:web-pw", ["gid"]]),
    )
    .await;
    assert!(token["result"].is_array(), "{token}");

    // A page elsewhere cannot POST through a visitor's browser, login or not; the
    // daemon's own origin can.
    let call = json!({"jsonrpc": "2.0", "id": "t", "method": "aria2.getVersion", "params": []});
    let (status, _, _) = request(
        "POST",
        &url,
        &[
            ("origin", "https://evil.example"),
            ("authorization", BASIC_ADMIN_PW),
        ],
        Some(&call),
    )
    .await;
    assert_eq!(status, 403);
    let own = base.clone();
    let (status, _, _) = request(
        "POST",
        &url,
        &[("origin", own.as_str()), ("authorization", BASIC_ADMIN_PW)],
        Some(&call),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_web_password_is_enough_to_listen_beyond_loopback() {
    let env = Env::start(EmulatorConfig::default(), 1000.0, bin_and_png()).await;
    let state = env.path("serve.sqlite");
    let state = state.to_str().unwrap();
    let o = env
        .run(&["serve", "--listen", "0.0.0.0:0", "--state", state])
        .await;
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("--web-password"), "{stderr}");
    // A user name without a password would be ignored: refused.
    let o = env
        .run(&["serve", "--state", state, "--web-username", "bob"])
        .await;
    assert_eq!(o.status.code(), Some(2));
    // With one, it starts (and says nothing of the password).
    let mut running = Running::spawn(&mut env.cmd(&[
        "--json",
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--state",
        state,
        "--web-password",
        "beyond-pw",
    ]));
    let listening = running.json_line();
    assert_eq!(listening["event"], "listening", "{listening}");
    assert!(!listening.to_string().contains("beyond-pw"));
}
