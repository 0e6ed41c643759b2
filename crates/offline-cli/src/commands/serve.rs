//! `offline serve`: the drive behind aria2's JSON-RPC (see [`offline_gateway`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use crate::cli::Provider;
use crate::client::Client;
use crate::exit;
use crate::output::Output;

/// `offline serve`'s options.
#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// Where to listen; anything but loopback needs --rpc-secret or --web-password.
    #[arg(long, default_value = "127.0.0.1:6800")]
    pub(crate) listen: SocketAddr,
    /// The task store (SQLite; created if missing): every accepted download is written
    /// here before it is submitted, and a restart resumes from it.
    #[arg(long, value_name = "FILE")]
    pub(crate) state: PathBuf,
    /// The aria2 RPC secret: clients send `token:SECRET` as the first parameter.
    #[arg(
        long,
        value_name = "SECRET",
        env = "OFFLINE_RPC_SECRET",
        hide_env_values = true
    )]
    pub(crate) rpc_secret: Option<String>,
    /// The drive folder downloads go to when the client names no `dir` (a path, made
    /// when missing, or a folder ID; 6pan: an absolute path). Default: 123pan's
    /// 来自:离线下载, 6pan's /.
    #[arg(long, value_name = "PATH|ID")]
    pub(crate) dir: Option<String>,
    /// The URL the drive reaches this listener at (e.g. `https://gw.example`): tasks
    /// are created with a callback URL under it and tracked by their callbacks (each
    /// confirmed by one progress call). Default: this listener's own URL when the
    /// drive's base URL is loopback (the emulator), else none (tracking polls).
    #[arg(long, value_name = "URL")]
    pub(crate) callback_url: Option<String>,
    /// A folder to watch: `*.torrent`, `*.magnet` and `*.url`/`*.txt` files (links,
    /// one a line) dropped in are added once, then moved to DIR/.submitted/ (or to
    /// DIR/.failed/ with a `.reason` file beside them).
    #[arg(long, value_name = "DIR")]
    pub(crate) watch: Option<PathBuf>,
    /// The web page's user name (HTTP Basic), with --web-password (default `admin`).
    #[arg(long, value_name = "NAME")]
    pub(crate) web_username: Option<String>,
    /// The web page's password: the page at / and its assets need HTTP Basic
    /// credentials, and JSON-RPC calls that carry them need no token. Without
    /// --rpc-secret it is also the RPC secret (`token:PASSWORD`).
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "OFFLINE_WEB_PASSWORD",
        hide_env_values = true
    )]
    pub(crate) web_password: Option<String>,
    /// Where the media apps see the drive (e.g. `/mnt/cloud`, an rclone or OpenList
    /// mount): the qBittorrent and Transmission interfaces report each drive path
    /// under it (`/Media/TV` as `/mnt/cloud/Media/TV`). Default: drive paths as they are.
    #[arg(long, value_name = "PATH")]
    pub(crate) report_path_prefix: Option<String>,
}

/// The options `provider` cannot honour, and a listen address that needs a secret.
pub(crate) fn check(args: &ServeArgs, provider: Provider) -> Vec<String> {
    let mut problems = Vec::new();
    if provider == Provider::Pan6 && args.dir.as_deref().is_some_and(|d| !d.starts_with('/')) {
        problems.push(
            "--dir: 6pan takes an absolute drive path (such as /downloads), not a folder ID"
                .to_owned(),
        );
    }
    if provider == Provider::Pan6 && args.callback_url.is_some() {
        problems.push(
            "--callback-url: 6pan sends no callbacks (tasks are tracked from its task list)"
                .to_owned(),
        );
    }
    if args
        .report_path_prefix
        .as_deref()
        .is_some_and(|p| !p.starts_with('/') || p.contains('\n'))
    {
        problems.push(
            "--report-path-prefix: an absolute path where the drive is mounted (such as /mnt/cloud)"
                .to_owned(),
        );
    }
    if args.web_username.is_some() && args.web_password.is_none() {
        problems.push(
            "--web-username needs --web-password (the page has no login without one)".to_owned(),
        );
    }
    if offline_gateway::needs_secret(args.listen)
        && args.rpc_secret.is_none()
        && args.web_password.is_none()
    {
        problems.push(format!(
            "--listen {} is not loopback: anyone who can reach it could add downloads; give --rpc-secret or --web-password",
            args.listen
        ));
    }
    problems
}

/// Runs the daemon until the process is stopped (Ctrl-C, SIGTERM).
pub(crate) async fn run(client: &Client, args: &ServeArgs, out: &Output) -> u8 {
    match client {
        Client::Pan123(pan, _) => {
            let loopback = pan.base_url().is_loopback();
            serve(pan.clone(), loopback, args, out).await
        }
        Client::Pan6(pan, _) => {
            let drive = offline_gateway::SixPanDrive::new(pan.clone());
            serve(drive, false, args, out).await
        }
    }
}

/// Serves `drive`; `callbacks_on_loopback`: the drive sends callbacks and is on
/// loopback (the emulator), so that this listener's own URL can be given it.
async fn serve<D: offline_gateway::Drive>(
    drive: D,
    callbacks_on_loopback: bool,
    args: &ServeArgs,
    out: &Output,
) -> u8 {
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            return out.fail(
                exit::CONFIG,
                &format!("cannot listen on {}: {e}", args.listen),
                None,
            )
        }
    };
    let addr = listener.local_addr().unwrap_or(args.listen);
    // The drive must reach the callback URL: by default only the emulator (on
    // loopback, like this listener) can.
    let callback_base = args.callback_url.clone().or_else(|| {
        (callbacks_on_loopback && addr.ip().is_loopback()).then(|| format!("http://{addr}"))
    });
    let config = offline_gateway::ServeConfig {
        secret: args.rpc_secret.clone().map(offline_proto::Secret::new),
        default_dir: args.dir.clone(),
        callback_base,
        watch: args.watch.clone(),
        web_login: args
            .web_password
            .clone()
            .map(|password| offline_proto::aria2::WebLogin {
                username: args
                    .web_username
                    .clone()
                    .unwrap_or_else(|| "admin".to_owned()),
                password: offline_proto::Secret::new(password),
            }),
        report_prefix: args
            .report_path_prefix
            .as_deref()
            .map(|p| p.trim_end_matches('/').to_owned()),
    };
    let provider = drive.provider();
    // One daemon per state file: a second one would submit the same pending rows.
    let _lock = match offline_store::lock(&args.state) {
        Ok(lock) => lock,
        Err(offline_store::LockError::Busy) => {
            return out.fail(
                exit::BUSY,
                &format!(
                    "the task store {} is in use by another `offline serve` (or `add --from`): nothing was started",
                    args.state.display()
                ),
                None,
            )
        }
        Err(offline_store::LockError::Io(e)) => {
            return out.fail(
                exit::CONFIG,
                &format!("cannot lock the task store {}: {e}", args.state.display()),
                None,
            )
        }
    };
    let gateway = match offline_gateway::Gateway::open(drive, &args.state, config) {
        Ok(g) => g,
        Err(e) => {
            return out.fail(
                exit::CONFIG,
                &format!("cannot open the task store {}: {e}", args.state.display()),
                None,
            )
        }
    };
    let url = format!("http://{addr}/jsonrpc");
    let qbittorrent = format!("http://{addr}/");
    let transmission = format!("http://{addr}/transmission/rpc");
    if out.is_json() {
        out.event(json!({
            "event": "listening", "addr": addr.to_string(), "url": url,
            "qbittorrent": qbittorrent, "transmission": transmission,
        }));
    } else {
        out.say(&format!(
            "aria2 JSON-RPC on {url}, qBittorrent Web API at {qbittorrent}api/v2/, Transmission RPC on {transmission} (the drive: {provider}); stop with Ctrl-C"
        ));
    }
    match gateway.serve(listener, std::future::pending()).await {
        Ok(()) => exit::OK,
        Err(e) => out.fail(exit::NETWORK, &format!("serving stopped: {e}"), None),
    }
}
