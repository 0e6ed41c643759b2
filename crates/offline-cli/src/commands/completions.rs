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

/// Prints the man page: one page for every command (the top-level options, then a
/// section per command with its synopsis and options, then the exit codes), so that
/// it refers to no other page.
pub(crate) fn man() -> u8 {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut buf = Vec::new();
    if let Err(e) = render_man(&cmd, &mut buf) {
        errln!("error: cannot render the man page: {e}");
        return exit::CONFIG;
    }
    write_all(&once_preamble(&buf))
}

/// Every section clap_mangen renders starts with the same two lines defining `Aq`
/// (the apostrophe); the page needs them once, at its top.
fn once_preamble(page: &[u8]) -> Vec<u8> {
    const PREAMBLE: [&str; 2] = [".ie \\n(.g .ds Aq \\(aq", ".el .ds Aq '"];
    let text = String::from_utf8_lossy(page);
    let mut seen = [false; 2];
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if let Some(i) = PREAMBLE.iter().position(|p| *p == line) {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out.into_bytes()
}

fn render_man(cmd: &clap::Command, w: &mut Vec<u8>) -> std::io::Result<()> {
    let top = clap_mangen::Man::new(cmd.clone());
    top.render_title(w)?;
    top.render_name_section(w)?;
    top.render_synopsis_section(w)?;
    top.render_description_section(w)?;
    top.render_options_section(w)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        render_command(sub, w)?;
    }
    top.render_extra_section(w)?;
    top.render_version_section(w)
}

/// A command's section (`OFFLINE ADD`): its description, synopsis and options as
/// subsections, then those of its own subcommands.
fn render_command(cmd: &clap::Command, w: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Write;
    let name = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_owned();
    let man = clap_mangen::Man::new(cmd.clone().display_name(name.clone()));
    writeln!(w, ".SH \"{}\"", name.to_uppercase())?;
    let mut section = Vec::new();
    man.render_description_section(&mut section)?;
    man.render_synopsis_section(&mut section)?;
    man.render_options_section(&mut section)?;
    for line in String::from_utf8_lossy(&section).lines() {
        match line.strip_prefix(".SH ") {
            Some(heading) => writeln!(w, ".SS {heading}")?,
            None => writeln!(w, "{line}")?,
        }
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        render_command(sub, w)?;
    }
    Ok(())
}

fn write_all(bytes: &[u8]) -> u8 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        crate::output::stdout_failed(&e);
    }
    exit::OK
}
