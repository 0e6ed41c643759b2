//! Writing generated files, or checking them with `--check`, and formatting Rust with
//! rustfmt.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Mode, Result};

/// The files one task generates, collected before anything is written.
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    files: Vec<(PathBuf, String)>,
    /// Generated files found on disk that no longer would be (removed, or reported).
    stale: Vec<PathBuf>,
}

impl Outputs {
    /// Adds a file, `path` relative to the workspace root.
    pub(crate) fn add(&mut self, path: impl Into<PathBuf>, contents: String) {
        self.files.push((path.into(), contents));
    }

    /// Whether `path` is one of the files added so far.
    #[cfg_attr(not(feature = "fixtures"), allow(dead_code, reason = "fixtures only"))]
    pub(crate) fn contains(&self, path: &Path) -> bool {
        self.files.iter().any(|(p, _)| p == path)
    }

    /// Marks a generated file on disk that is no longer produced.
    #[cfg_attr(not(feature = "fixtures"), allow(dead_code, reason = "fixtures only"))]
    pub(crate) fn add_stale(&mut self, path: PathBuf) {
        self.stale.push(path);
    }

    /// Writes what changed, or with [`Mode::Check`] fails listing what would change.
    pub(crate) fn finish(self, root: &Path, mode: Mode, command: &str) -> Result<()> {
        let mut changed = Vec::new();
        for (path, contents) in &self.files {
            let full = root.join(path);
            let current = std::fs::read_to_string(&full).ok();
            if current.as_deref() == Some(contents.as_str()) {
                continue;
            }
            changed.push(path.display().to_string());
            if mode == Mode::Write {
                if let Some(dir) = full.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                std::fs::write(&full, contents)
                    .map_err(|e| format!("cannot write {}: {e}", full.display()))?;
            }
        }
        for path in &self.stale {
            changed.push(format!("{} (stale)", path.display()));
            if mode == Mode::Write {
                std::fs::remove_file(root.join(path))
                    .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
            }
        }
        match mode {
            Mode::Write => {
                for path in &changed {
                    println!("wrote {path}");
                }
                println!(
                    "{command}: {} files, {} changed",
                    self.files.len(),
                    changed.len()
                );
                Ok(())
            }
            Mode::Check if changed.is_empty() => {
                println!("{command} --check: {} files up to date", self.files.len());
                Ok(())
            }
            Mode::Check => Err(format!(
                "{command} --check: {} generated files are stale; run `{command}` and commit:\n  {}",
                changed.len(),
                changed.join("\n  ")
            )),
        }
    }
}

/// The standard output of a command that ran to its end, or an error naming `what`
/// (why it could not run, or its exit status and standard error).
pub(crate) fn checked_stdout(
    what: &str,
    output: std::io::Result<std::process::Output>,
) -> Result<Vec<u8>> {
    let output = output.map_err(|e| format!("cannot run {what}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{what} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(output.stdout)
}

/// Formats Rust source with `rustfmt --edition 2021` (which ships with the toolchain).
pub(crate) fn rustfmt(source: &str) -> Result<String> {
    let rustfmt = std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".to_owned());
    let mut child = Command::new(&rustfmt)
        .args(["--edition", "2021"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {rustfmt}: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("rustfmt has no stdin")?
        .write_all(source.as_bytes())
        .map_err(|e| format!("cannot feed rustfmt: {e}"))?;
    let stdout = checked_stdout("rustfmt", child.wait_with_output())
        .map_err(|e| format!("{e}\n--- source ---\n{source}"))?;
    String::from_utf8(stdout).map_err(|e| format!("rustfmt printed non-UTF-8: {e}"))
}
