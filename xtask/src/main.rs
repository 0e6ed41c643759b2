//! `cargo xtask`: the project's own tasks (the alias is in `.cargo/config.toml`).
//!
//! - `cargo xtask codegen [--check]`: reads the provider descriptions
//!   (`fixtures/openapi/*.yaml`) and writes the Rust wire types and endpoint tables in
//!   `offline-proto`, plus the JSON form of each description that the emulator serves.
//! - `cargo xtask fixtures [--check]`: writes `fixtures/<provider>/<endpoint>/*.gen.http`
//!   from the examples in the descriptions: the exact request each encoder produces,
//!   and every documented response.
//! - `cargo xtask man [--check]`: writes `docs/man/offline.1`, the `offline` man page,
//!   from the CLI's clap definition (through its hidden `offline __man`).
//! - `cargo xtask bench`: builds release binaries and measures every performance figure
//!   beside its baseline (the Python SDK's qetag, `openssl sha1`, `curl`, the rate-limit
//!   bound, a real `aria2c`'s JSON-RPC for `offline serve`'s), printing the ratios and
//!   writing `target/bench/report.md`. Long; not in CI. `cargo xtask bench --only rpc`
//!   runs the RPC throughput figures alone (`bench_rpc`; `target/bench/report-rpc.md`).
//!
//! With `--check`, nothing is written: the command fails when a committed file differs
//! from what it would write (CI runs both). Every generated file starts with a line
//! naming the command that made it.

mod bench;
mod bench_rpc;
mod codegen;
#[cfg(feature = "fixtures")]
mod fixtures;
mod man;
mod openapi;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

/// What to do with the generated files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Write the files that changed (and remove stale generated ones).
    Write,
    /// Write nothing; fail when a file would change.
    Check,
}

const USAGE: &str = "usage: cargo xtask <codegen|fixtures|man> [--check]
       cargo xtask bench [--only rpc]

  codegen    write the wire types, endpoint tables and JSON descriptions from fixtures/openapi/*.yaml
  fixtures   write fixtures/<provider>/<endpoint>/*.gen.http from the descriptions' examples
  man        write docs/man/offline.1 from the offline command's clap definition
  --check    write nothing; fail when a committed file is stale
  bench      measure every performance figure beside its baseline (minutes; needs python3,
             openssl, curl, /usr/bin/time, aria2c and wrk); writes target/bench/report.md
  --only rpc the JSON-RPC throughput of offline serve vs aria2c alone (aria2c, wrk, python3;
             Debian: apt-get install aria2 wrk); writes target/bench/report-rpc.md";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut command = None;
    let mut mode = Mode::Write;
    let mut only = bench::Only::All;
    let mut args_left = args.iter();
    while let Some(arg) = args_left.next() {
        match arg.as_str() {
            "--check" => mode = Mode::Check,
            "--only" => match args_left.next().map(String::as_str) {
                Some("rpc") => only = bench::Only::Rpc,
                other => {
                    eprintln!("--only takes `rpc`, not {other:?}\n\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "codegen" | "fixtures" | "man" | "bench" if command.is_none() => {
                command = Some(arg.as_str())
            }
            other => {
                eprintln!("unknown argument {other:?}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if only != bench::Only::All && command != Some("bench") {
        eprintln!("--only is for bench\n\n{USAGE}");
        return ExitCode::from(2);
    }
    let root = workspace_root();
    let result = match command {
        Some("codegen") => codegen::run(&root, mode),
        Some("fixtures") => run_fixtures(&root, mode),
        Some("man") => man::run(&root, mode),
        Some("bench") if mode == Mode::Check => {
            eprintln!("bench has no --check\n\n{USAGE}");
            return ExitCode::from(2);
        }
        Some("bench") => bench::run(&root, only),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask fixtures`: runs the writer, which needs the `fixtures` feature.
#[cfg(feature = "fixtures")]
fn run_fixtures(root: &std::path::Path, mode: Mode) -> Result<()> {
    fixtures::run(root, mode)
}

/// `cargo xtask fixtures` without the `fixtures` feature: builds and runs this tool
/// again with it (the writer links offline-proto for its encoders; codegen does not).
#[cfg(not(feature = "fixtures"))]
fn run_fixtures(root: &std::path::Path, mode: Mode) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(root)
        .args([
            "run",
            "--quiet",
            "--package",
            "xtask",
            "--features",
            "fixtures",
            "--",
        ])
        .arg("fixtures");
    if mode == Mode::Check {
        command.arg("--check");
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("the fixture writer failed".to_owned())
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or_else(|| manifest.clone(), std::path::Path::to_path_buf)
}

/// The error type of every task: a message for a human.
type Result<T, E = String> = std::result::Result<T, E>;
