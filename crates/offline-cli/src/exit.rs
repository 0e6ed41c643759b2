//! The exit codes, in one table: what `offline --help`, the README and every command
//! use. When several apply (a batch), the highest code is the exit status.

/// Everything succeeded.
pub(crate) const OK: u8 = 0;
/// A task ended failed (`--wait`, `wait`).
pub(crate) const TASK_FAILED: u8 = 1;
/// Bad command line: an unknown option, a missing argument, a combination of options
/// that the chosen provider cannot honour. Nothing was sent.
pub(crate) const USAGE: u8 = 2;
/// The provider refused a call or does not know the task (its code and trace ID are
/// printed).
pub(crate) const PROVIDER: u8 = 3;
/// No answer: the network or the server failed (connection refused, timeout, 5xx).
pub(crate) const NETWORK: u8 = 4;
/// A create call may have reached the server without an answer: check before
/// submitting again (`--retry-unknown`).
pub(crate) const OUTCOME_UNKNOWN: u8 = 5;
/// Configuration or invalid input: no credentials, a bad base URL, an unreadable file,
/// a source the provider cannot take, standard output unwritable.
pub(crate) const CONFIG: u8 = 6;
/// The provider refused the credentials (wrong client ID or secret, account or
/// password, or an expired fixed token).
pub(crate) const CREDENTIALS: u8 = 7;
/// Another `offline add --from` run holds the batch's journal.
pub(crate) const BUSY: u8 = 8;
/// The command's deadline (`--timeout`) passed between provider calls (a call it cut
/// ends with that call's own error: network, or outcome unknown for a create).
pub(crate) const TIMED_OUT: u8 = 9;
/// Interrupted (Ctrl-C, SIGINT); the tasks keep running on the drive.
pub(crate) const INTERRUPTED: u8 = 130;

/// Every exit code with its meaning, as printed by `offline --help` and listed in the
/// README.
pub(crate) const TABLE: &[(u8, &str)] = &[
    (OK, "ok"),
    (TASK_FAILED, "a task failed"),
    (USAGE, "usage error (nothing was sent)"),
    (PROVIDER, "provider error, or task not found"),
    (NETWORK, "network error"),
    (
        OUTCOME_UNKNOWN,
        "outcome unknown (a task may exist: check before resubmitting)",
    ),
    (CONFIG, "configuration error or invalid input"),
    (CREDENTIALS, "credentials refused"),
    (BUSY, "the batch journal is in use by another run"),
    (TIMED_OUT, "timed out (--timeout)"),
    (
        INTERRUPTED,
        "interrupted (the tasks keep running on the drive)",
    ),
];

/// The table as one line for `--help`.
pub(crate) fn help_line() -> String {
    let items: Vec<String> = TABLE.iter().map(|(c, m)| format!("{c} {m}")).collect();
    format!("Exit codes: {}.", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_exit_code() {
        let readme = include_str!("../../../README.md");
        for (code, meaning) in TABLE {
            let row = format!("| `{code}` | {meaning} |");
            assert!(readme.contains(&row), "README lacks the row {row}");
        }
    }
}
