//! One module per command, and the dispatch: for a command that talks to a provider,
//! its options are checked against the provider first (a flag the provider cannot
//! honour is refused with exit 2 before anything is sent), then the client is built
//! (reading the token cache), the command runs, and the newest token is cached.

pub(crate) mod add;
pub(crate) mod batch;
pub(crate) mod callbacks;
pub(crate) mod completions;
pub(crate) mod demo;
pub(crate) mod emulator;
pub(crate) mod files;
pub(crate) mod list;
pub(crate) mod login;
pub(crate) mod oauth;
pub(crate) mod pan6;
pub(crate) mod rm;
pub(crate) mod serve;
pub(crate) mod status;
pub(crate) mod tools;
pub(crate) mod upload;
pub(crate) mod wait;
pub(crate) mod watch;

use std::time::{Duration, Instant};

use clap::parser::ValueSource;

use crate::cli::{Cli, Command, ConnArgs, Provider};
use crate::client::{Client, Conn};
use crate::exit;
use crate::output::Output;

/// The credential options given on the command line (before or after the command),
/// by id: a credential of the other provider is refused, not ignored.
pub(crate) fn explicit_options(matches: &clap::ArgMatches) -> Vec<&'static str> {
    const IDS: [&str; 6] = [
        "client_id",
        "client_secret",
        "access_token",
        "account",
        "password",
        "token",
    ];
    let given = |m: &clap::ArgMatches, id: &str| {
        m.try_contains_id(id).unwrap_or(false)
            && m.value_source(id) == Some(ValueSource::CommandLine)
    };
    let sub = matches.subcommand().map(|(_, m)| m);
    IDS.into_iter()
        .filter(|id| given(matches, id) || sub.is_some_and(|m| given(m, id)))
        .collect()
}

/// Refuses, with exit 2, options that `provider` cannot honour.
pub(crate) fn refuse(out: &Output, provider: Provider, problems: &[String]) -> Option<u8> {
    let first = problems.first()?;
    let rest = if problems.len() > 1 {
        format!(
            " (and {} more: {})",
            problems.len() - 1,
            problems[1..].join("; ")
        )
    } else {
        String::new()
    };
    Some(out.fail(
        exit::USAGE,
        &format!("{first}{rest}; nothing was sent to {}", provider.name()),
        None,
    ))
}

fn foreign_credentials(conn: &Conn, explicit: &[&'static str]) -> Vec<String> {
    let foreign: &[&str] = match conn.provider {
        Provider::Pan123 => &["account", "password", "token"],
        Provider::Pan6 => &["client_id", "client_secret", "access_token"],
    };
    explicit
        .iter()
        .filter(|id| foreign.contains(id))
        .map(|id| {
            format!(
                "--{} is a {} credential, not one of {}",
                id.replace('_', "-"),
                if conn.provider == Provider::Pan123 {
                    "6pan"
                } else {
                    "123pan"
                },
                conn.provider.name()
            )
        })
        .collect()
}

/// The deadline of a command that does not wait for anything (`status`, `list`, `ls`,
/// `info`, `link`, `rm`, `login`, `logout`, `add` without `--wait` or `--from`) when no
/// `--timeout` is given: 300 s.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a command may take when `--timeout` does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// [`DEFAULT_TIMEOUT`]: the command makes its calls and ends.
    Default,
    /// None: the command waits for tasks, a browser, a transfer, or a whole batch.
    Waits,
    /// None, and `--timeout` is refused: the command runs until stopped.
    UntilStopped,
    /// None: the command reads `--timeout` itself (`callbacks`: stop listening then,
    /// with its summary).
    Own,
}

/// The provider command's connection options and how long it may take by default;
/// `None` for a command that talks to no provider.
fn bound(command: &Command) -> Option<(&ConnArgs, Bound)> {
    Some(match command {
        Command::Add { args, conn } if args.wait || args.from.is_some() => (conn, Bound::Waits),
        Command::Wait { conn, .. } | Command::Upload { conn, .. } => (conn, Bound::Waits),
        Command::Login { oauth, conn, .. } if oauth.oauth && oauth.code.is_none() => {
            (conn, Bound::Waits)
        }
        Command::Serve { conn, .. } => (conn, Bound::UntilStopped),
        Command::Callbacks { conn, .. } => (conn, Bound::Own),
        Command::Add { conn, .. }
        | Command::Status { conn, .. }
        | Command::List { conn }
        | Command::Ls { conn, .. }
        | Command::Info { conn, .. }
        | Command::Link { conn, .. }
        | Command::Rm { conn, .. }
        | Command::Login { conn, .. }
        | Command::Logout { conn, .. } => (conn, Bound::Default),
        Command::Demo(_)
        | Command::Emulator(_)
        | Command::Hash(_)
        | Command::Torrent(_)
        | Command::Completions { .. }
        | Command::Man => return None,
    })
}

/// The command's name, for messages.
fn name(command: &Command) -> &'static str {
    match command {
        Command::Demo(_) => "demo",
        Command::Emulator(_) => "emulator",
        Command::Add { .. } => "add",
        Command::Status { .. } => "status",
        Command::Wait { .. } => "wait",
        Command::List { .. } => "list",
        Command::Ls { .. } => "ls",
        Command::Info { .. } => "info",
        Command::Link { .. } => "link",
        Command::Serve { .. } => "serve",
        Command::Rm { .. } => "rm",
        Command::Login { .. } => "login",
        Command::Logout { .. } => "logout",
        Command::Hash(_) => "hash",
        Command::Callbacks { .. } => "callbacks",
        Command::Upload { .. } => "upload",
        Command::Torrent(_) => "torrent",
        Command::Completions { .. } => "completions",
        Command::Man => "__man",
    }
}

/// The whole command's deadline, from `--timeout` (after the command, else before it)
/// or the command's default: `Ok(None)` for none.
///
/// # Errors
///
/// The usage error of `--timeout` (other than 0) on a command that runs until stopped.
pub(crate) fn command_timeout(cli: &Cli) -> Result<Option<Duration>, String> {
    let Some((conn, bound)) = bound(&cli.command) else {
        return Ok(None);
    };
    match (conn.timeout.or(cli.top.conn.timeout), bound) {
        (_, Bound::Own) | (Some(0), _) => Ok(None),
        (Some(_), Bound::UntilStopped) => Err(format!(
            "--timeout: `{}` runs until stopped (Ctrl-C, SIGTERM) and takes no overall              deadline (--call-timeout bounds each of its calls)",
            name(&cli.command)
        )),
        (Some(secs), _) => Ok(Some(Duration::from_secs(secs))),
        (None, Bound::Default) => Ok(Some(DEFAULT_TIMEOUT)),
        (None, _) => Ok(None),
    }
}

/// Runs the parsed command line; returns the exit code. A command with a deadline
/// ([`command_timeout`]) ends at it with [`exit::TIMED_OUT`]: every call of its client
/// gives up then too, and a call cut by it ends the command with its own error first.
pub(crate) async fn run(mut cli: Cli, explicit: Vec<&'static str>) -> u8 {
    let started = Instant::now();
    let json = cli.top.json;
    let provider = bound(&cli.command)
        .map_or(cli.top.provider(), |(conn, _)| {
            cli.top.resolve(conn).provider
        })
        .name();
    let limit = match command_timeout(&cli) {
        Ok(limit) => limit,
        Err(message) => return Output::new(json, provider).fail(exit::USAGE, &message, None),
    };
    let Some((limit, deadline)) = limit.and_then(|d| Some((d, started.checked_add(d)?))) else {
        return dispatch(cli, explicit).await.unwrap_or_else(|code| code);
    };
    cli.top.command_deadline = Some(deadline);
    let command = name(&cli.command);
    let given = bound(&cli.command)
        .and_then(|(conn, _)| conn.timeout.or(cli.top.conn.timeout))
        .is_some();
    // The command first: a call cut at the deadline ends it with that call's error.
    tokio::select! {
        biased;
        code = dispatch(cli, explicit) => code.unwrap_or_else(|code| code),
        () = tokio::time::sleep_until(deadline.into()) => {
            timed_out(&Output::new(json, provider), command, limit, given)
        }
    }
}

/// Reports that the command's deadline passed; returns [`exit::TIMED_OUT`].
fn timed_out(out: &Output, command: &str, limit: Duration, given: bool) -> u8 {
    let secs = limit.as_secs();
    let flag = if given {
        format!("--timeout {secs}")
    } else {
        format!("the default --timeout of `{command}`; --timeout 0 for none")
    };
    let mut message = format!("gave up after {secs} s ({flag})");
    if let Some(hint) = crate::interrupt::hint() {
        message.push_str(&format!(
            "; the tasks keep running on the drive, `{hint}` shows them"
        ));
    }
    if out.is_json() {
        out.fail(exit::TIMED_OUT, &message, Some(command))
    } else {
        errln!("offline: {message}");
        exit::TIMED_OUT
    }
}

/// [`run`]; `Err` holds the exit code of a command refused before it started.
async fn dispatch(cli: Cli, explicit: Vec<&'static str>) -> Result<u8, u8> {
    let json = cli.top.json;
    let top = cli.top;
    let prepare = |conn: &ConnArgs, extra: Vec<String>| -> Result<(Conn, Output), u8> {
        let conn = top.resolve(conn);
        let out = Output::new(json, conn.provider.name());
        let mut problems = foreign_credentials(&conn, &explicit);
        problems.extend(extra);
        if let Some(code) = refuse(&out, conn.provider, &problems) {
            return Err(code);
        }
        Ok((conn, out))
    };
    macro_rules! with_client {
        ($conn:expr, $out:expr, |$client:ident| $body:expr) => {{
            crate::interrupt::install(&$out);
            match Client::connect(&$conn, &$out).await {
                Ok($client) => {
                    let code = $body;
                    $client.save_token(&$conn).await;
                    code
                }
                Err(code) => code,
            }
        }};
    }
    // A command that talks to no provider (or starts its own emulator) has no use for
    // connection options: refused, never ignored.
    let local = match &cli.command {
        Command::Demo(_) => Some("demo"),
        Command::Emulator(_) => Some("emulator"),
        Command::Hash(_) => Some("hash"),
        Command::Torrent(_) => Some("torrent"),
        Command::Completions { .. } => Some("completions"),
        Command::Man => Some("__man"),
        _ => None,
    };
    if let (Some(command), [flag, ..]) = (local, top.conn.given().as_slice()) {
        let message = match (*flag, command) {
            ("--timeout", "emulator") => format!(
                "--timeout: `{command}` runs until stopped (Ctrl-C) and takes no overall deadline"
            ),
            _ => format!("{flag} is a connection option; `{command}` talks to no provider"),
        };
        return Err(Output::without_provider(json).fail(exit::USAGE, &message, None));
    }
    Ok(match cli.command {
        Command::Demo(args) => demo::run(args, &Output::new(json, "123pan")).await,
        Command::Emulator(args) => emulator::run(args, &Output::without_provider(json)).await,
        Command::Add { args, conn } => {
            let provider = top.resolve(&conn).provider;
            let (conn, out) = prepare(&conn, add::check(&args, provider))?;
            if let Some(code) = add::check_inputs(&args, &out) {
                return Ok(code);
            }
            with_client!(conn, out, |client| add::run(&client, &args, &out).await)
        }
        Command::Status { args, conn } => {
            let provider = top.resolve(&conn).provider;
            let (conn, out) = prepare(&conn, status::check(&args, provider))?;
            if let Some(from) = &args.from {
                return Ok(batch::status_from(&conn, from, args.journal.as_ref(), &out).await);
            }
            with_client!(conn, out, |client| status::run(&client, &args, &out).await)
        }
        Command::Wait { args, conn } => {
            let provider = top.resolve(&conn).provider;
            let (conn, out) = prepare(&conn, status::check(&args, provider))?;
            with_client!(conn, out, |client| wait::run(&client, &args, &out).await)
        }
        Command::List { conn } => {
            let (conn, out) = prepare(&conn, only_6pan("list", &top.resolve(&conn)))?;
            with_client!(conn, out, |client| list::run(&client, &out).await)
        }
        Command::Ls { target, conn } => {
            let (conn, out) = prepare(&conn, only_123("ls", &top.resolve(&conn)))?;
            with_client!(conn, out, |client| files::ls(&client, &target, &out).await)
        }
        Command::Info { file, conn } => {
            let (conn, out) = prepare(&conn, only_123("info", &top.resolve(&conn)))?;
            with_client!(conn, out, |client| files::info(&client, &file, &out).await)
        }
        Command::Link { file, conn } => {
            let (conn, out) = prepare(&conn, only_123("link", &top.resolve(&conn)))?;
            with_client!(conn, out, |client| files::link(&client, &file, &out).await)
        }
        Command::Serve { args, conn } => {
            let provider = top.resolve(&conn).provider;
            let (conn, out) = prepare(&conn, serve::check(&args, provider))?;
            with_client!(conn, out, |client| serve::run(&client, &args, &out).await)
        }
        Command::Rm { tasks, conn } => {
            let (conn, out) = prepare(&conn, only_6pan("rm", &top.resolve(&conn)))?;
            with_client!(conn, out, |client| rm::run(&client, &tasks, &out).await)
        }
        Command::Login {
            logout_others,
            oauth,
            conn,
        } => {
            let mut refused = oauth::check(&oauth, &top.resolve(&conn));
            if logout_others {
                refused.extend(only(
                    Provider::Pan6,
                    "login --logout-others",
                    &top.resolve(&conn),
                    "123pan has no sessions to log out",
                ));
            }
            let (conn, out) = prepare(&conn, refused)?;
            if oauth.oauth {
                return Ok(oauth::login(&conn, &oauth, &out).await);
            }
            with_client!(conn, out, |client| login::login(
                &client,
                &conn,
                logout_others,
                &out
            )
            .await)
        }
        Command::Logout { all, conn } => {
            let (conn, out) = prepare(&conn, Vec::new())?;
            login::logout(&conn, all, &out)
        }
        Command::Hash(args) => tools::hash(&args, &Output::new(json, "6pan")),
        Command::Callbacks { args, conn } => {
            let (conn, out) = prepare(
                &conn,
                only(
                    Provider::Pan123,
                    "callbacks",
                    &top.resolve(&conn),
                    "6pan sends no callbacks",
                ),
            )?;
            callbacks::run(&conn, args, &out).await
        }
        Command::Upload { args, conn } => {
            let (conn, out) = prepare(&conn, only_6pan("upload", &top.resolve(&conn)))?;
            upload::upload(&conn, &args, &out).await
        }
        Command::Torrent(cmd) => tools::torrent(&cmd, &Output::new(json, top.provider().name())),
        Command::Completions { shell } => completions::completions(shell),
        Command::Man => completions::man(),
    })
}

/// The refusal of `command` unless the provider is `provider`: `hint` says what to do.
fn only(provider: Provider, command: &str, conn: &Conn, hint: &str) -> Vec<String> {
    if conn.provider == provider {
        Vec::new()
    } else {
        vec![format!(
            "`{command}` is a {} command: {hint}",
            provider.name()
        )]
    }
}

fn only_123(command: &str, conn: &Conn) -> Vec<String> {
    only(
        Provider::Pan123,
        command,
        conn,
        "add --provider 123pan (6pan's files are not listed by this tool yet)",
    )
}

fn only_6pan(command: &str, conn: &Conn) -> Vec<String> {
    only(Provider::Pan6, command, conn, "add --provider 6pan")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn timeout_of(args: &[&str]) -> Result<Option<Duration>, String> {
        let argv = std::iter::once("offline").chain(args.iter().copied());
        command_timeout(&Cli::try_parse_from(argv).unwrap())
    }

    // The deadline each command has when no --timeout is given: 300 s for a command
    // that makes its calls and ends, none for one that waits or runs until stopped.
    #[test]
    fn each_command_has_its_default_deadline() {
        let redirect = ["--redirect-uri", "http://127.0.0.1:9/cb"];
        for args in [
            &["status", "1"][..],
            &["status", "--from", "urls.txt"],
            &["add", "https://example.com/a"],
            &["--provider", "6pan", "add", "magnet:?xt=urn:btih:x"],
            &["list"],
            &["ls", "/"],
            &["info", "1"],
            &["link", "1"],
            &["rm", "x"],
            &["login"],
            &["login", "--logout-others"],
            &[&["login", "--oauth", "--code", "c"], &redirect[..]].concat(),
            &["logout"],
        ] {
            assert_eq!(timeout_of(args), Ok(Some(DEFAULT_TIMEOUT)), "{args:?}");
        }
        assert_eq!(DEFAULT_TIMEOUT, Duration::from_secs(300));
        for args in [
            &["wait", "1"][..],
            &["wait", "--from", "urls.txt"],
            &["add", "--wait", "https://example.com/a"],
            &["add", "--from", "urls.txt"],
            &["upload", "f.bin"],
            &["login", "--oauth"],
            &["serve", "--state", "s.sqlite"],
            &["callbacks", "--listen", "127.0.0.1:0"],
            &["callbacks", "--listen", "127.0.0.1:0", "--timeout", "5"],
            &["demo"],
            &["emulator"],
            &["hash", "f.bin"],
            &["torrent", "inspect", "a.torrent"],
            &["completions", "bash"],
        ] {
            assert_eq!(timeout_of(args), Ok(None), "{args:?}");
        }
    }

    // An explicit --timeout, before or after the command (after wins), applies to any
    // provider command; 0 is none; `serve` refuses any other.
    #[test]
    fn an_explicit_timeout_applies_to_any_command_but_serve() {
        let secs = |n| Ok(Some(Duration::from_secs(n)));
        assert_eq!(timeout_of(&["--timeout", "7", "wait", "1"]), secs(7));
        assert_eq!(timeout_of(&["wait", "1", "--timeout", "7"]), secs(7));
        assert_eq!(
            timeout_of(&["add", "--wait", "x", "--timeout", "2"]),
            secs(2)
        );
        assert_eq!(timeout_of(&["upload", "f", "--timeout", "9"]), secs(9));
        assert_eq!(timeout_of(&["status", "1", "--timeout", "1"]), secs(1));
        assert_eq!(
            timeout_of(&["--timeout", "3", "status", "1", "--timeout", "4"]),
            secs(4)
        );
        assert_eq!(timeout_of(&["status", "1", "--timeout", "0"]), Ok(None));
        assert_eq!(timeout_of(&["--timeout", "0", "ls", "/"]), Ok(None));
        let serve = ["serve", "--state", "s.sqlite"];
        let given = ["--timeout", "5"];
        let err = timeout_of(&[&serve[..], &given].concat()).unwrap_err();
        assert!(err.contains("runs until stopped"), "{err}");
        let err = timeout_of(&[&given[..], &serve].concat()).unwrap_err();
        assert!(err.contains("`serve`"), "{err}");
        assert_eq!(
            timeout_of(&[&serve[..], &["--timeout", "0"]].concat()),
            Ok(None)
        );
    }
}
