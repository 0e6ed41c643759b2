//! `offline`: submit cloud-drive offline downloads and watch them to the end, or run
//! the demo and the emulator.
//!
//! Modules, none importing a module that imports it: [`cli`] (the command line),
//! [`exit`] (the exit codes), [`output`] (everything printed), [`client`] (the
//! provider-agnostic client and its transport), [`cache`] (the token cache),
//! [`journal`] (the batch journal), [`interrupt`] (Ctrl-C), [`retrylog`] (retries on
//! stderr) and [`commands`], one file per command.

#[macro_use]
mod output;
mod cache;
mod cli;
mod client;
mod commands;
mod exit;
mod interrupt;
/// The batch journal is the shared task store.
use offline_store as journal;
mod retrylog;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

fn main() -> ExitCode {
    let json = std::env::args_os().any(|a| a == "--json");
    let matches = match cli::Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return ExitCode::from(usage_error(&e, json)),
    };
    let parsed = match cli::Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return ExitCode::from(usage_error(&e, json)),
    };
    let explicit = commands::explicit_options(&matches);
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    let code = runtime.block_on(commands::run(parsed, explicit));
    ExitCode::from(code)
}

/// Reports a command-line error (an event with `--json`); `--help` and `--version`
/// print and exit 0.
fn usage_error(e: &clap::Error, json: bool) -> u8 {
    if json && e.use_stderr() {
        let text = e.render().to_string();
        let message = text
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("error: ")
            .to_owned();
        output::Output::new(true, provider_named()).fail(exit::USAGE, &message, None);
        return exit::USAGE;
    }
    let _ = e.print();
    if e.use_stderr() {
        exit::USAGE
    } else {
        exit::OK
    }
}

/// The provider a command line that could not be parsed names (`--provider X` or
/// `--provider=X`, else `OFFLINE_PROVIDER`), for its usage error's event.
fn provider_named() -> &'static str {
    let args: Vec<String> = std::env::args().collect();
    let given = args
        .iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("--provider") {
            Some("") => args.get(i + 1).cloned(),
            Some(v) => v.strip_prefix('=').map(str::to_owned),
            None => None,
        })
        .or_else(|| std::env::var("OFFLINE_PROVIDER").ok());
    match given.as_deref().map(str::trim) {
        Some("6pan") => cli::Provider::Pan6.name(),
        _ => cli::Provider::Pan123.name(),
    }
}

/// Logs (`RUST_LOG`, default `warn`) to stderr, coloured only on a terminal; retries
/// rendered as one line each ([`retrylog`]).
fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter);
    let retries = retrylog::RetryLayer::default().with_filter(
        tracing_subscriber::filter::Targets::new()
            .with_target(retrylog::TARGET, tracing::Level::INFO)
            .with_target("provider_123pan", tracing::Level::DEBUG)
            .with_target("provider_6pan", tracing::Level::DEBUG),
    );
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(retries)
        .try_init();
}
