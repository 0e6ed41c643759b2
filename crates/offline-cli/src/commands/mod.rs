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

/// Runs the parsed command line; returns the exit code.
pub(crate) async fn run(cli: Cli, explicit: Vec<&'static str>) -> u8 {
    dispatch(cli, explicit).await.unwrap_or_else(|code| code)
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
        return Err(Output::without_provider(json).fail(
            exit::USAGE,
            &format!("{flag} is a connection option; `{command}` talks to no provider"),
            None,
        ));
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
