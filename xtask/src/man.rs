//! `cargo xtask man [--check]`: writes `docs/man/offline.1`, the man page of the
//! `offline` command, from its clap definition. It runs `offline __man` (a hidden
//! command that renders the page with clap_mangen), so xtask needs no dependency on
//! the CLI.

use std::path::Path;

use crate::{Mode, Result};

/// Where the page goes.
pub(crate) const PAGE: &str = "docs/man/offline.1";

/// Writes or checks the page.
pub(crate) fn run(root: &Path, mode: Mode) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .current_dir(root)
        .args([
            "run",
            "--quiet",
            "--package",
            "offline-cli",
            "--bin",
            "offline",
            "--",
            "__man",
        ])
        .output();
    let page = crate::output::checked_stdout("offline __man", output)?;
    let path = root.join(PAGE);
    let current = std::fs::read(&path).unwrap_or_default();
    if current == page {
        return Ok(());
    }
    match mode {
        Mode::Check => Err(format!("{PAGE} is stale: run `cargo xtask man`")),
        Mode::Write => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&path, &page).map_err(|e| format!("{PAGE}: {e}"))?;
            println!("wrote {PAGE}");
            Ok(())
        }
    }
}
