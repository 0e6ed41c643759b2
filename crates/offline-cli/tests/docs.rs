//! The generated documentation: `offline completions SHELL` prints a script that knows
//! every command, and `docs/man/offline.1` is exactly what `offline __man` prints
//! (`cargo xtask man` writes it; CI checks it with `cargo xtask man --check`).

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_offline");

/// The commands a user types (the hidden `__man` is not one).
const COMMANDS: [&str; 15] = [
    "demo",
    "emulator",
    "add",
    "status",
    "wait",
    "list",
    "rm",
    "login",
    "logout",
    "hash",
    "callbacks",
    "upload",
    "torrent",
    "completions",
    "inspect",
];

/// Runs `offline ARGS` with no `OFFLINE_*` variable of the caller's around.
fn offline(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OFFLINE_") {
            cmd.env_remove(k);
        }
    }
    cmd.output().unwrap()
}

#[test]
fn bash_completions_know_every_command_and_option() {
    let o = offline(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0));
    let script = String::from_utf8(o.stdout).unwrap();
    assert!(script.len() > 1000, "{script}");
    assert!(
        script.contains("complete -F _offline"),
        "a bash completion: {script}"
    );
    for command in COMMANDS {
        assert!(
            script.contains(command),
            "no {command} in the bash completions"
        );
    }
    for option in ["--provider", "--base-url", "--json", "--from", "--select"] {
        assert!(
            script.contains(option),
            "no {option} in the bash completions"
        );
    }
    // The providers, as values of --provider.
    assert!(script.contains("123pan") && script.contains("6pan"));
}

#[test]
fn every_shell_gets_a_script() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = offline(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(o.stdout).unwrap();
        assert!(script.contains("emulator"), "{shell}: {script}");
    }
    let o = offline(&["completions", "tcsh"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn the_committed_man_page_is_what_the_binary_prints() {
    let committed =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/man/offline.1"))
            .expect("docs/man/offline.1 exists (cargo xtask man)");
    let o = offline(&["__man"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        o.stdout == committed,
        "docs/man/offline.1 differs from `offline __man`: run `cargo xtask man`"
    );
    let page = String::from_utf8(committed).unwrap();
    assert!(page.contains(".TH offline 1"), "{page}");
    // One page: a section per command (with its options), no page it refers to.
    for command in COMMANDS.iter().filter(|c| **c != "inspect") {
        let heading = format!(".SH \"OFFLINE {}\"", command.to_uppercase());
        assert!(page.contains(&heading), "no {heading}: {page}");
    }
    assert!(page.contains(".SH \"OFFLINE TORRENT INSPECT\""), "{page}");
    assert!(!page.contains("(1)"), "a reference to another page: {page}");
    assert!(page.contains("\\-\\-select"), "the options of add: {page}");
    assert!(
        !page.contains("__man"),
        "the hidden command is not in the page"
    );
    // The exit codes, from the one table.
    assert!(page.contains("Exit codes: 0 ok"), "{page}");
}
