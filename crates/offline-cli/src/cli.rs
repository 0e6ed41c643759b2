//! The command line: every command, its options, and how the connection options given
//! before the command (`offline --provider 6pan add …`) and after it
//! (`offline add --provider 6pan …`) combine. Only the commands that talk to a
//! provider take connection and credential options; the environment (`OFFLINE_*`)
//! is read once, by the options before the command, and its values are never shown.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::client::Conn;

/// `offline`.
#[derive(Parser, Debug)]
#[command(
    name = "offline",
    version,
    about = "Cloud-drive offline download: hand a URL to the drive, watch the task to the end",
    after_help = after_help(),
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) top: TopArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

fn after_help() -> String {
    format!(
        "Credentials: OFFLINE_123PAN_CLIENT_ID and OFFLINE_123PAN_CLIENT_SECRET (or OFFLINE_123PAN_ACCESS_TOKEN, \
or for a third-party app the client ID after `offline login --oauth`); \
with --provider 6pan, OFFLINE_6PAN_ACCOUNT and OFFLINE_6PAN_PASSWORD (or OFFLINE_6PAN_TOKEN). \
Tokens are cached in OFFLINE_CACHE_DIR (default ~/.cache/offline); `offline logout` deletes them.\n{}\n\
Try `offline demo` for a tour on the built-in emulator.",
        crate::exit::help_line()
    )
}

/// The options before the command: the output form, and the connection options,
/// which the environment fills in.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct TopArgs {
    /// Print one JSON event per line (schema: docs/events.schema.json) instead of
    /// progress bars and tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Which cloud drive to talk to.
    #[arg(
        long,
        value_enum,
        env = "OFFLINE_PROVIDER",
        help_heading = "Connection"
    )]
    pub(crate) provider: Option<Provider>,
    #[command(flatten)]
    pub(crate) conn: TopConn,
    #[command(flatten)]
    pub(crate) creds: TopCreds,
    /// When the command's deadline falls, set once the command has started (not an
    /// option: [`crate::commands::run`] sets it from `--timeout`).
    #[arg(skip)]
    pub(crate) command_deadline: Option<std::time::Instant>,
}

/// Connection options before the command.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Connection")]
pub(crate) struct TopConn {
    /// API root (default: the provider's production URL, or OFFLINE_123PAN_BASE_URL /
    /// OFFLINE_6PAN_BASE_URL), e.g. the URL `offline emulator` prints.
    #[arg(long, value_name = "URL")]
    pub(crate) base_url: Option<String>,
    /// Allow a plain-http base URL on a non-loopback host.
    #[arg(long)]
    pub(crate) insecure_http: bool,
    /// Client-side rate limit of an endpoint in requests per second, e.g.
    /// `offline_download=2` (repeatable; defaults from the provider's published limits).
    #[arg(long = "rate-limit", value_name = "ENDPOINT=PER_SECOND", value_parser = parse_rate_limit)]
    pub(crate) rate_limits: Vec<(String, f64)>,
    /// The longest one provider call keeps trying, retries included, in seconds
    /// (default 120; 0: until its attempts run out). A create that may have been sent
    /// then ends as outcome unknown.
    #[arg(long, value_name = "SECS")]
    pub(crate) call_timeout: Option<u64>,
    /// The longest the whole command may take, in seconds (default 300 for a command
    /// that does not wait; none for `wait`, `add --wait`, `add --from`, `upload`,
    /// `login --oauth`; 0: none). Past it the command ends with exit 9; a call it cuts
    /// ends with its own error. `serve` runs until stopped and refuses it; `callbacks`
    /// stops listening after SECS (exit 0).
    #[arg(long, value_name = "SECS")]
    pub(crate) timeout: Option<u64>,
    /// Neither read nor write the token cache.
    #[arg(long)]
    pub(crate) no_token_cache: bool,
}

/// Credentials before the command (from the environment too).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Credentials")]
pub(crate) struct TopCreds {
    /// 123pan: the application's client ID.
    #[arg(long, env = "OFFLINE_123PAN_CLIENT_ID", hide_env_values = true)]
    pub(crate) client_id: Option<String>,
    /// 123pan: the application's client secret (prefer the environment variable).
    #[arg(long, env = "OFFLINE_123PAN_CLIENT_SECRET", hide_env_values = true)]
    pub(crate) client_secret: Option<String>,
    /// 123pan: a ready access token instead of a client ID and secret.
    #[arg(long, env = "OFFLINE_123PAN_ACCESS_TOKEN", hide_env_values = true)]
    pub(crate) access_token: Option<String>,
    /// 6pan: the account (phone number or e-mail).
    #[arg(long, env = "OFFLINE_6PAN_ACCOUNT", hide_env_values = true)]
    pub(crate) account: Option<String>,
    /// 6pan: the password (prefer the environment variable).
    #[arg(long, env = "OFFLINE_6PAN_PASSWORD", hide_env_values = true)]
    pub(crate) password: Option<String>,
    /// 6pan: a ready token instead of an account and password.
    #[arg(long, env = "OFFLINE_6PAN_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

impl TopConn {
    /// The options given, as their flags (none reads the environment).
    pub(crate) fn given(&self) -> Vec<&'static str> {
        [
            (self.base_url.is_some(), "--base-url"),
            (self.insecure_http, "--insecure-http"),
            (!self.rate_limits.is_empty(), "--rate-limit"),
            (self.call_timeout.is_some(), "--call-timeout"),
            (self.timeout.is_some(), "--timeout"),
            (self.no_token_cache, "--no-token-cache"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect()
    }
}

/// The connection options after the command (they win over those before it).
#[derive(Args, Debug, Clone, Default)]
#[command(
    next_help_heading = "Connection (also before the command; OFFLINE_* variables fill them in)"
)]
pub(crate) struct ConnArgs {
    /// Which cloud drive to talk to (OFFLINE_PROVIDER).
    #[arg(long, value_enum)]
    pub(crate) provider: Option<Provider>,
    /// API root, e.g. the URL `offline emulator` prints.
    #[arg(long, value_name = "URL")]
    pub(crate) base_url: Option<String>,
    /// Allow a plain-http base URL on a non-loopback host.
    #[arg(long)]
    pub(crate) insecure_http: bool,
    /// Client-side rate limit of an endpoint, e.g. `offline_download=2` (repeatable).
    #[arg(long = "rate-limit", value_name = "ENDPOINT=PER_SECOND", value_parser = parse_rate_limit)]
    pub(crate) rate_limits: Vec<(String, f64)>,
    /// The longest one provider call keeps trying, retries included, in seconds
    /// (default 120; 0: until its attempts run out).
    #[arg(long, value_name = "SECS")]
    pub(crate) call_timeout: Option<u64>,
    /// The longest the whole command may take, in seconds (default 300 unless the
    /// command waits for tasks; 0: none); past it, exit 9. `callbacks`: stop listening
    /// after SECS (exit 0).
    #[arg(long, value_name = "SECS")]
    pub(crate) timeout: Option<u64>,
    /// Neither read nor write the token cache.
    #[arg(long)]
    pub(crate) no_token_cache: bool,
    #[command(flatten)]
    pub(crate) creds: SubCreds,
}

/// Credentials after the command.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Credentials (also before the command or from OFFLINE_* variables)")]
pub(crate) struct SubCreds {
    /// 123pan: the application's client ID.
    #[arg(long)]
    pub(crate) client_id: Option<String>,
    /// 123pan: the client secret (prefer OFFLINE_123PAN_CLIENT_SECRET).
    #[arg(long)]
    pub(crate) client_secret: Option<String>,
    /// 123pan: a ready access token.
    #[arg(long)]
    pub(crate) access_token: Option<String>,
    /// 6pan: the account.
    #[arg(long)]
    pub(crate) account: Option<String>,
    /// 6pan: the password (prefer OFFLINE_6PAN_PASSWORD).
    #[arg(long)]
    pub(crate) password: Option<String>,
    /// 6pan: a ready token.
    #[arg(long)]
    pub(crate) token: Option<String>,
}

impl TopArgs {
    /// The connection of a command: its own options over those before it (and the
    /// environment).
    pub(crate) fn resolve(&self, sub: &ConnArgs) -> Conn {
        let pick = |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());
        let mut rate_limits = self.conn.rate_limits.clone();
        rate_limits.extend(sub.rate_limits.iter().cloned());
        Conn {
            provider: sub.provider.or(self.provider).unwrap_or_default(),
            base_url: pick(&sub.base_url, &self.conn.base_url),
            insecure_http: sub.insecure_http || self.conn.insecure_http,
            rate_limits,
            call_timeout: sub.call_timeout.or(self.conn.call_timeout),
            timeout: sub.timeout.or(self.conn.timeout),
            command_deadline: self.command_deadline,
            client_id: pick(&sub.creds.client_id, &self.creds.client_id),
            client_secret: pick(&sub.creds.client_secret, &self.creds.client_secret),
            access_token: pick(&sub.creds.access_token, &self.creds.access_token),
            account: pick(&sub.creds.account, &self.creds.account),
            password: pick(&sub.creds.password, &self.creds.password),
            token: pick(&sub.creds.token, &self.creds.token),
            no_token_cache: sub.no_token_cache || self.conn.no_token_cache,
        }
    }

    /// The provider named before the command (or by the environment).
    pub(crate) fn provider(&self) -> Provider {
        self.provider.unwrap_or_default()
    }
}

/// The providers.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Provider {
    /// The 123pan open platform.
    #[default]
    #[value(name = "123pan")]
    Pan123,
    /// 6pan.
    #[value(name = "6pan")]
    Pan6,
}

impl Provider {
    /// Its name in events and messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Pan123 => "123pan",
            Self::Pan6 => "6pan",
        }
    }
}

/// The commands.
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Tour the whole flow on an embedded emulator: real files, an image, a 404, callbacks.
    Demo(crate::commands::demo::DemoArgs),
    /// Run the emulator on its own and print its base URL and both providers' credentials.
    Emulator(crate::commands::emulator::EmulatorArgs),
    /// Submit URLs for offline download; prints each task ID.
    Add {
        #[command(flatten)]
        args: crate::commands::add::AddArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Show tasks' progress once (reads the batch journal with --from, never writes it).
    Status {
        #[command(flatten)]
        args: TaskArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Watch tasks until they end (with --from, every submitted line's task).
    Wait {
        #[command(flatten)]
        args: TaskArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// List every task (6pan).
    List {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// List a drive folder, by path (`/Movies/2026`) or ID (123pan).
    Ls {
        /// The folder: a path from the root, or its numeric ID.
        #[arg(value_name = "PATH|ID")]
        target: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Show one file's or folder's details: name, size, etag, parent (123pan).
    Info {
        /// The file ID, as `ls` shows it.
        #[arg(value_name = "FILE_ID")]
        file: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print a download URL for a file (123pan; short-lived, counts against traffic).
    Link {
        /// The file ID, as `ls` shows it.
        #[arg(value_name = "FILE_ID")]
        file: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Serve the drive as an aria2 download client: JSON-RPC on --listen.
    Serve {
        #[command(flatten)]
        args: crate::commands::serve::ServeArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Delete tasks by identity (6pan).
    Rm {
        /// Task identities, as `list` shows them.
        #[arg(required = true)]
        tasks: Vec<String>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Check the credentials by logging in (6pan) or fetching a token (123pan); with
    /// --oauth, authorize a 123pan third-party app and cache its refresh token.
    Login {
        /// 6pan: when the login is refused for too many sessions (LOGIN_USER_TOO_MUCH),
        /// log the other sessions out and log in.
        #[arg(long)]
        logout_others: bool,
        #[command(flatten)]
        oauth: crate::commands::oauth::OAuthArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Delete the cached token of these credentials (--all: every cached token).
    Logout {
        /// Delete every cached token, of every provider and account.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print the qetag (the 28-character Qiniu etag 6pan identifies files by) of files.
    Hash(crate::commands::tools::HashArgs),
    /// Receive 123pan callbacks on --listen ADDR and confirm each with the progress call.
    Callbacks {
        #[command(flatten)]
        args: crate::commands::callbacks::CallbacksArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Upload files into the drive (6pan): instant when the drive knows the etag, else
    /// in blocks, several at once.
    Upload {
        #[command(flatten)]
        args: crate::commands::upload::UploadArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Look inside torrent files.
    #[command(subcommand)]
    Torrent(crate::commands::tools::TorrentCommand),
    /// Print a shell completion script, e.g. `offline completions bash > /etc/bash_completion.d/offline`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), for `cargo xtask man`.
    #[command(name = "__man", hide = true)]
    Man,
}

/// Tasks named on the command line, or a batch file.
#[derive(Args, Debug)]
pub(crate) struct TaskArgs {
    /// Task IDs (123pan numbers, 6pan identities).
    #[arg(required_unless_present = "from", conflicts_with = "from")]
    pub(crate) tasks: Vec<String>,
    /// 123pan: the tasks are image-bed tasks.
    #[arg(long)]
    pub(crate) image: bool,
    /// Every line of a batch file submitted with `add --from FILE`.
    #[arg(long, value_name = "FILE")]
    pub(crate) from: Option<PathBuf>,
    /// The batch's journal (default: beside FILE).
    #[arg(long, value_name = "PATH", requires = "from")]
    pub(crate) journal: Option<PathBuf>,
}

/// The emulator's address type, for its arguments.
pub(crate) type Addr = SocketAddr;

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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_after_the_command_win() {
        let cli = Cli::try_parse_from([
            "offline",
            "--provider",
            "6pan",
            "--base-url",
            "http://a",
            "add",
            "--base-url",
            "http://b",
            "x",
        ])
        .unwrap();
        let Command::Add { conn, .. } = &cli.command else {
            panic!()
        };
        let c = cli.top.resolve(conn);
        assert_eq!(c.provider, Provider::Pan6);
        assert_eq!(c.base_url.as_deref(), Some("http://b"));
    }
}
