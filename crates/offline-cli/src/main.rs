//! `offline`: submit cloud-drive offline downloads and watch them to the end, or run
//! the demo and the emulator.

mod batch;
mod callbacks;
mod commands;
mod demo;
mod journal;
mod output;
mod sixpan;
mod tools;
mod upload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit codes a script can branch on.
pub(crate) mod exit {
    /// Everything succeeded.
    pub(crate) const OK: u8 = 0;
    /// A task ended failed (`--wait`, `wait`).
    pub(crate) const TASK_FAILED: u8 = 1;
    /// Bad command line (clap's own code).
    pub(crate) const USAGE: u8 = 2;
    /// The provider refused a call (its code and trace ID are printed).
    pub(crate) const PROVIDER: u8 = 3;
    /// No answer: the network or the server failed.
    pub(crate) const TRANSPORT: u8 = 4;
    /// A create call may have reached the server without an answer: check before
    /// submitting again.
    pub(crate) const OUTCOME_UNKNOWN: u8 = 5;
    /// Missing or refused credentials, bad configuration, invalid input.
    pub(crate) const CONFIG: u8 = 6;
}

#[derive(Parser, Debug)]
#[command(
    name = "offline",
    version,
    about = "Cloud-drive offline download: hand a URL to the drive, watch the task to the end",
    after_help = "Credentials: OFFLINE_123PAN_CLIENT_ID and OFFLINE_123PAN_CLIENT_SECRET (or OFFLINE_123PAN_ACCESS_TOKEN).\n\
Exit codes: 0 ok, 1 a task failed, 2 usage, 3 provider error, 4 network error, 5 outcome unknown (check before resubmitting), 6 configuration or invalid input.\n\
Try `offline demo` for a tour on the built-in emulator."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
pub(crate) struct Global {
    /// Which cloud drive to talk to.
    #[arg(long, global = true, value_enum, default_value_t = Provider::Pan123, env = "OFFLINE_PROVIDER")]
    provider: Provider,
    /// API root (default: the provider's production URL, or OFFLINE_123PAN_BASE_URL /
    /// OFFLINE_6PAN_BASE_URL), e.g. the URL `offline emulator` prints.
    #[arg(long, global = true)]
    base_url: Option<String>,
    /// Print one JSON object per line instead of progress bars and tables.
    #[arg(long, global = true)]
    json: bool,
    /// Allow a plain-http base URL on a non-loopback host.
    #[arg(long, global = true)]
    insecure_http: bool,
    /// The application's client ID.
    #[arg(
        long,
        global = true,
        env = "OFFLINE_123PAN_CLIENT_ID",
        hide_env_values = true
    )]
    client_id: Option<String>,
    /// The application's client secret (prefer the environment variable).
    #[arg(
        long,
        global = true,
        env = "OFFLINE_123PAN_CLIENT_SECRET",
        hide_env_values = true
    )]
    client_secret: Option<String>,
    /// 6pan account (phone number or e-mail).
    #[arg(
        long,
        global = true,
        env = "OFFLINE_6PAN_ACCOUNT",
        hide_env_values = true
    )]
    account: Option<String>,
    /// 6pan password (prefer the environment variable).
    #[arg(
        long,
        global = true,
        env = "OFFLINE_6PAN_PASSWORD",
        hide_env_values = true
    )]
    password: Option<String>,
    /// A ready 6pan token instead of an account and password.
    #[arg(
        long,
        global = true,
        env = "OFFLINE_6PAN_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Client-side rate limit of an endpoint in requests per second, e.g.
    /// `offline_download=2` (repeatable; defaults from the provider's published limits).
    #[arg(long = "rate-limit", global = true, value_name = "ENDPOINT=PER_SECOND", value_parser = parse_rate_limit)]
    rate_limits: Vec<(String, f64)>,
    /// A ready access token instead of a client ID and secret.
    #[arg(
        long,
        global = true,
        env = "OFFLINE_123PAN_ACCESS_TOKEN",
        hide_env_values = true
    )]
    access_token: Option<String>,
}

/// The providers.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    /// The 123pan open platform.
    #[value(name = "123pan")]
    Pan123,
    /// 6pan.
    #[value(name = "6pan")]
    Pan6,
}

impl Global {
    /// `--base-url`, else the provider's environment variable.
    pub(crate) fn base_url_for(&self, env: &str) -> Option<String> {
        self.base_url
            .clone()
            .or_else(|| std::env::var(env).ok().filter(|v| !v.trim().is_empty()))
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Tour the whole flow on an embedded emulator: real files, an image, a 404, callbacks.
    Demo(demo::DemoArgs),
    /// Run the emulator on its own and print its base URL and credentials.
    Emulator(EmulatorArgs),
    /// Submit URLs for offline download; prints each task ID.
    Add(commands::AddArgs),
    /// Show tasks' progress once.
    Status(commands::TaskArgs),
    /// Watch tasks until they end.
    Wait(commands::TaskArgs),
    /// List every task (6pan).
    List,
    /// Delete tasks by identity (6pan).
    Rm {
        /// Task identities, as `list` shows them.
        #[arg(required = true)]
        tasks: Vec<String>,
    },
    /// Check the credentials by logging in (6pan).
    Login,
    /// Print the qetag (the 28-character Qiniu etag 6pan identifies files by) of files.
    Hash(tools::HashArgs),
    /// Receive 123pan callbacks on --listen ADDR and confirm each with the progress call.
    Callbacks(callbacks::CallbacksArgs),
    /// Upload files into the drive (6pan): instant when the drive knows the etag, else
    /// in blocks, several at once.
    Upload(upload::UploadArgs),
    /// Look inside torrent files.
    #[command(subcommand)]
    Torrent(tools::TorrentCommand),
}

#[derive(Args, Debug)]
struct EmulatorArgs {
    /// Address to listen on (loopback only is sensible).
    #[arg(long, default_value = "127.0.0.1:8123")]
    addr: SocketAddr,
    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    token_lifetime: u64,
    /// Where downloaded files are stored (default: a temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Throttle source downloads to this many bytes per second.
    #[arg(long)]
    fetch_rate: Option<u64>,
    /// Inject faults into this share of requests (0 to 1), split evenly between 503s,
    /// rate limits, connections dropped before or after the work, truncated bodies and
    /// expired tokens. Switch at run time with `PUT /_emulator/faults`.
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Seed of the fault generator (the same seed gives the same faults).
    #[arg(long, default_value_t = 0)]
    fault_seed: u64,
    /// Milliseconds added before every answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share of callbacks never sent (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    callback_lost: f64,
    /// Share of callbacks sent twice (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    callback_twice: f64,
    /// Milliseconds before each callback is sent.
    #[arg(long, default_value_t = 0)]
    callback_delay_ms: u64,
    /// A token that is always valid (for tools that cannot log in first): a 123pan bearer
    /// token, a 6pan `Qingzhen-Token`, and a 6pan upload token.
    #[arg(long, value_name = "TOKEN")]
    static_token: Option<String>,
    /// Fetch sources and send callbacks only to loopback hosts; other tasks fail at once.
    #[arg(long)]
    loopback_only: bool,
    /// Serve without rate limits (every endpoint answers as fast as it is asked).
    #[arg(long)]
    no_rate_limits: bool,
}

/// The `snake_case` form of an `operationId` (`offlineDownload` → `offline_download`).
pub(crate) fn snake(operation_id: &str) -> String {
    let mut out = String::new();
    for c in operation_id.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Finds the endpoint named `name` (its `operationId` or that in `snake_case`).
///
/// # Errors
///
/// A message listing the known names.
pub(crate) fn find_endpoint<E: Copy>(
    all: &[E],
    operation_id: impl Fn(E) -> &'static str,
    name: &str,
) -> Result<E, String> {
    all.iter()
        .copied()
        .find(|e| operation_id(*e) == name || snake(operation_id(*e)) == name)
        .ok_or_else(|| {
            let names: Vec<String> = all.iter().map(|e| snake(operation_id(*e))).collect();
            format!(
                "unknown endpoint {name:?} for --rate-limit; one of: {}",
                names.join(", ")
            )
        })
}

fn parse_rate_limit(s: &str) -> Result<(String, f64), String> {
    let (name, rate) = s.split_once('=').ok_or("expected ENDPOINT=PER_SECOND")?;
    let rate: f64 = rate
        .trim()
        .parse()
        .map_err(|e| format!("bad rate {rate:?}: {e}"))?;
    if !(rate.is_finite() && rate > 0.0) {
        return Err("the rate must be a positive number".to_owned());
    }
    Ok((name.trim().to_owned(), rate))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    let code = runtime.block_on(run(cli));
    ExitCode::from(code)
}

async fn run(cli: Cli) -> u8 {
    let out = output::Output::new(cli.global.json);
    match cli.command {
        Command::Demo(args) => demo::run(args, &out).await,
        Command::Emulator(args) => run_emulator(&cli.global, args, &out).await,
        Command::Add(args) => commands::add(&cli.global, args, &out).await,
        Command::Status(args) => commands::status(&cli.global, args, &out).await,
        Command::Wait(args) => commands::wait(&cli.global, args, &out).await,
        Command::List | Command::Rm { .. } | Command::Login
            if cli.global.provider == Provider::Pan123 =>
        {
            out.error_line(
                "list, rm and login are 6pan commands: add --provider 6pan",
                None,
            );
            exit::USAGE
        }
        Command::List => sixpan::list(&cli.global, &out).await,
        Command::Rm { tasks } => sixpan::rm(&cli.global, &tasks, &out).await,
        Command::Login => sixpan::login(&cli.global, &out).await,
        Command::Hash(args) => tools::hash(&args, &out),
        Command::Callbacks(args) => callbacks::run(&cli.global, args, &out).await,
        Command::Upload(args) => upload::upload(&cli.global, &args, &out).await,
        Command::Torrent(cmd) => tools::torrent(&cmd, &out),
    }
}

/// Runs the emulator until Ctrl-C. It accepts `--client-id`/`--client-secret` when
/// given, else the demo credentials.
async fn run_emulator(global: &Global, args: EmulatorArgs, out: &output::Output) -> u8 {
    let defaults = offline_emulator::EmulatorConfig::default();
    let config = offline_emulator::EmulatorConfig {
        addr: args.addr,
        client_id: global.client_id.clone().unwrap_or(defaults.client_id),
        client_secret: global
            .client_secret
            .clone()
            .unwrap_or(defaults.client_secret),
        token_lifetime: std::time::Duration::from_secs(args.token_lifetime),
        data_dir: args.data_dir,
        fetch_rate: args.fetch_rate,
        faults: offline_emulator::Faults {
            latency: std::time::Duration::from_millis(args.latency_ms),
            callback_lost: args.callback_lost,
            callback_twice: args.callback_twice,
            callback_delay: std::time::Duration::from_millis(args.callback_delay_ms),
            ..offline_emulator::Faults::mixed(args.fault_seed, args.fault_rate)
        },
        static_token: args.static_token,
        loopback_only: args.loopback_only,
        ..defaults
    };
    let mut config = config;
    if args.no_rate_limits {
        config.rate_limits.clear();
    }
    let emu = match offline_emulator::Emulator::start(config).await {
        Ok(e) => e,
        Err(e) => {
            out.error_line(
                &format!("cannot start the emulator on {}: {e}", args.addr),
                None,
            );
            return exit::CONFIG;
        }
    };
    out.emulator_started(&emu);
    let _ = tokio::signal::ctrl_c().await;
    emu.shutdown().await;
    exit::OK
}
