//! `offline completions SHELL` (clap_complete) and the hidden `offline __man`
//! (clap_mangen), which `cargo xtask man` writes to `docs/man/offline.1`.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit;

/// Prints the completion script of `shell`.
pub(crate) fn completions(shell: clap_complete::Shell) -> u8 {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "offline", &mut buf);
    write_all(&buf)
}

/// Prints the man page.
pub(crate) fn man() -> u8 {
    let cmd = Cli::command();
    let mut buf = Vec::new();
    if let Err(e) = clap_mangen::Man::new(cmd).render(&mut buf) {
        errln!("error: cannot render the man page: {e}");
        return exit::CONFIG;
    }
    write_all(&buf)
}

fn write_all(bytes: &[u8]) -> u8 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        crate::output::stdout_failed(&e);
    }
    exit::OK
}
