//! `offline emulator`: the emulator of both providers on its own, until Ctrl-C or
//! SIGTERM (a temporary data directory is removed either way).
//!
//! Its credentials come from its own flags or the demo defaults, never from the
//! client's `OFFLINE_*` variables; it prints both providers' credentials and a `try:`
//! command to paste. It binds loopback addresses only, unless `--public`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use crate::cli::Addr;
use crate::exit;
use crate::output::Output;

/// `offline emulator`'s options.
#[derive(Args, Debug)]
pub(crate) struct EmulatorArgs {
    /// Address to listen on (loopback; another address needs --public).
    #[arg(long, default_value = "127.0.0.1:8123")]
    addr: Addr,
    /// Allow listening on a non-loopback address (anyone who can reach it can use it).
    #[arg(long)]
    public: bool,
    /// The 123pan client ID the emulator accepts (default: the demo's).
    #[arg(long)]
    client_id: Option<String>,
    /// The 123pan client secret the emulator accepts (default: the demo's).
    #[arg(long)]
    client_secret: Option<String>,
    /// The 6pan account the emulator accepts (default: the demo's).
    #[arg(long)]
    account: Option<String>,
    /// The 6pan password the emulator accepts (default: the demo's).
    #[arg(long)]
    password: Option<String>,
    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    token_lifetime: u64,
    /// How many live 123pan access tokens one client ID may hold; one more is refused
    /// with code 401 `tokens number has exceeded the limit` (the service allows 3).
    /// Default: no cap.
    #[arg(long, value_name = "N")]
    max_tokens: Option<usize>,
    /// 6pan: logins allowed within one token lifetime before LOGIN_USER_TOO_MUCH
    /// (`login --logout-others` frees places).
    #[arg(long, default_value_t = offline_emulator::EmulatorConfig::default().sixpan_max_devices)]
    sixpan_max_sessions: usize,
    /// Where downloaded files are stored (default: a temporary directory, removed on exit).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Throttle source downloads to this many bytes per second.
    #[arg(long)]
    fetch_rate: Option<u64>,
    /// Inject faults into this share of requests (0 to 1), split evenly between 503s,
    /// rate limits, connections dropped before or after the work, truncated bodies and
    /// expired tokens. Switch at run time with `PUT /_emulator/faults`.
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    fault_rate: f64,
    /// Seed of the fault generator (the same seed gives the same faults).
    #[arg(long, default_value_t = 0)]
    fault_seed: u64,
    /// Milliseconds added before every answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share of callbacks never sent (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    callback_lost: f64,
    /// Share of callbacks sent twice (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    callback_twice: f64,
    /// Milliseconds before each callback is sent.
    #[arg(long, default_value_t = 0)]
    callback_delay_ms: u64,
    /// A token that is always valid (for tools that cannot log in first): a 123pan bearer
    /// token, a 6pan `Qingzhen-Token`, and a 6pan upload token.
    #[arg(long, value_name = "TOKEN")]
    static_token: Option<String>,
    /// The token the control API (`PUT`/`POST`/`DELETE /_emulator/...`: faults, rate
    /// limits, token expiry) wants as `Authorization: Bearer <token>` (default: a random
    /// one, printed at start). `GET /_emulator/stats` needs none.
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,
    /// Fetch sources and send callbacks only to loopback hosts; other tasks fail at once.
    #[arg(long)]
    loopback_only: bool,
    /// Serve without rate limits (every endpoint answers as fast as it is asked).
    #[arg(long)]
    no_rate_limits: bool,
}

/// A share: a number from 0 to 1.
fn share(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|e| format!("{s:?}: {e}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
}

/// Single-quotes `s` for a POSIX shell when it needs it.
fn sh(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// How to run this program from a shell: `offline` when that is what `PATH` finds,
/// else this executable's path (`cargo run` builds one that is not on `PATH`), so that
/// the `try:` lines work when pasted.
fn invocation() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "offline".to_owned();
    };
    let same = |p: &std::path::Path| {
        matches!(
            (std::fs::canonicalize(p), std::fs::canonicalize(&exe)),
            (Ok(a), Ok(b)) if a == b
        )
    };
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("offline"))
            .find(|p| p.is_file())
    });
    match on_path {
        Some(p) if same(&p) => "offline".to_owned(),
        _ => sh(&exe.display().to_string()),
    }
}

/// Runs the emulator until Ctrl-C or SIGTERM.
pub(crate) async fn run(args: EmulatorArgs, out: &Output) -> u8 {
    if !args.addr.ip().is_loopback() && !args.public {
        return out.fail(
            exit::USAGE,
            &format!(
                "{} is not a loopback address: the emulator accepts anyone's requests; pass --public to listen there anyway",
                args.addr
            ),
            None,
        );
    }
    if !args.addr.ip().is_loopback() {
        // Standard error, also under --json: stdout carries only the events.
        errln!(
            "warning: listening on {}, a non-loopback address: anyone who can reach it can use the emulator, which fetches any URL a task names (a test tool, not a service)",
            args.addr
        );
    }
    if let Some(dir) = &args.data_dir {
        // Created, and written to once: a directory the downloads cannot go to is
        // refused now, not at the first task.
        if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| tempfile::tempfile_in(dir)) {
            return out.fail(
                exit::CONFIG,
                &format!("cannot use the data directory {}: {e}", dir.display()),
                None,
            );
        }
    }
    let stop = StopSignals::listen();
    let defaults = offline_emulator::EmulatorConfig::default();
    let mut config = offline_emulator::EmulatorConfig {
        addr: args.addr,
        client_id: args.client_id.clone().unwrap_or(defaults.client_id.clone()),
        client_secret: args
            .client_secret
            .clone()
            .unwrap_or(defaults.client_secret.clone()),
        sixpan_account: args
            .account
            .clone()
            .unwrap_or(defaults.sixpan_account.clone()),
        sixpan_password: args
            .password
            .clone()
            .unwrap_or(defaults.sixpan_password.clone()),
        token_lifetime: Duration::from_secs(args.token_lifetime),
        max_tokens_per_client: args.max_tokens,
        data_dir: args.data_dir.clone(),
        fetch_rate: args.fetch_rate,
        sixpan_max_devices: args.sixpan_max_sessions,
        faults: offline_emulator::Faults {
            latency: Duration::from_millis(args.latency_ms),
            callback_lost: args.callback_lost,
            callback_twice: args.callback_twice,
            callback_delay: Duration::from_millis(args.callback_delay_ms),
            ..offline_emulator::Faults::mixed(args.fault_seed, args.fault_rate)
        },
        static_token: args.static_token.clone(),
        admin_token: args.admin_token.clone(),
        loopback_only: args.loopback_only,
        ..defaults
    };
    if args.no_rate_limits {
        config.rate_limits.clear();
    }
    let emu = match offline_emulator::Emulator::start(config).await {
        Ok(e) => e,
        Err(e) => {
            let what = if args.data_dir.is_none() {
                // Binding comes after the temporary directory: say which failed.
                match tempfile::Builder::new()
                    .prefix("offline-emulator-")
                    .tempdir()
                {
                    Err(te) => format!(
                        "cannot create a temporary data directory in {}: {te}",
                        std::env::temp_dir().display()
                    ),
                    Ok(_) => format!("cannot listen on {}: {e}", args.addr),
                }
            } else {
                format!("cannot listen on {}: {e}", args.addr)
            };
            return out.fail(exit::CONFIG, &what, None);
        }
    };
    let secret = emu.client_secret().to_owned();
    if out.is_json() {
        out.event(json!({
            "event": "emulator",
            "base_url": emu.base_url(),
            "client_id": emu.client_id(),
            "client_secret": secret,
            "account": emu.sixpan_account(),
            "password": emu.sixpan_password(),
            "data_dir": emu.data_dir(),
            "admin_token": emu.admin_token(),
        }));
    } else {
        outln!("emulator listening on {}", emu.base_url());
        outln!("  123pan client ID:     {}", emu.client_id());
        outln!("  123pan client secret: {secret}");
        outln!("  6pan account:         {}", emu.sixpan_account());
        outln!("  6pan password:        {}", emu.sixpan_password());
        outln!("  data dir:             {}", emu.data_dir().display());
        outln!("  admin token:          {}", emu.admin_token());
        outln!();
        let offline = invocation();
        let base = emu.base_url();
        // A source that is always there: the emulator's own API description.
        outln!(
            "try: OFFLINE_123PAN_CLIENT_ID={} OFFLINE_123PAN_CLIENT_SECRET={} {offline} --base-url {base} add {base}/openapi.json --wait",
            sh(emu.client_id()),
            sh(&secret),
        );
        outln!(
            "     OFFLINE_6PAN_ACCOUNT={} OFFLINE_6PAN_PASSWORD={} {offline} --provider 6pan --base-url {base} list",
            sh(emu.sixpan_account()),
            sh(emu.sixpan_password()),
        );
        outln!("(the first downloads the emulator's own API description into the data dir)");
        outln!("stop with Ctrl-C");
    }
    stop.wait().await;
    emu.shutdown().await;
    exit::OK
}

/// Ctrl-C or SIGTERM, listened for from the moment it is made: a signal that comes
/// while the emulator is starting, or right after it has printed its address, still
/// stops it cleanly (and removes its temporary data directory).
struct StopSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Self {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            if let (Some(mut term), Some(mut int)) = (self.term, self.int) {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                return;
            }
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
