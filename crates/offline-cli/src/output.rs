//! Everything the CLI prints: human lines, progress bars and tables on a terminal, one
//! JSON object per line with `--json`. Secrets are never printed.

use std::collections::BTreeMap;
use std::io::Write;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use provider_123pan::{Error, Progress, TaskRef, TaskStatus};
use serde_json::json;

use crate::exit;

/// Where output goes and in which form.
pub(crate) struct Output {
    json: bool,
}

impl Output {
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    fn line(&self, value: &serde_json::Value) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{value}");
    }

    /// A plain human line on stdout (nothing in JSON mode).
    pub(crate) fn say(&self, text: &str) {
        if !self.json {
            println!("{text}");
        }
    }

    pub(crate) fn created(&self, url: &str, task: TaskRef) {
        if self.json {
            self.line(&json!({
                "event": "created",
                "task": task.id.0,
                "kind": task.kind.as_str(),
                "url": url,
            }));
        } else {
            println!(
                "created task {} ({}) for {url}",
                task.id,
                task.kind.as_str()
            );
        }
    }

    pub(crate) fn progress_json(&self, p: &Progress) {
        self.line(&progress_value(p));
    }

    pub(crate) fn status_line(&self, p: &Progress) {
        if self.json {
            self.progress_json(p);
        } else {
            println!(
                "task {} ({}): {} {:.1}%",
                p.task.id,
                p.task.kind.as_str(),
                p.status,
                p.percent
            );
        }
    }

    /// Reports `error` about `subject` (a URL or a task) and returns its exit code.
    pub(crate) fn error(&self, subject: &str, error: &Error) -> u8 {
        let provider = error.provider_error();
        if self.json {
            self.line(&json!({
                "event": "error",
                "subject": subject,
                "kind": error_kind(error),
                "message": error.to_string(),
                "code": provider.map(|p| p.code.to_string()),
                "trace_id": provider.and_then(|p| p.trace_id.clone()),
            }));
        } else {
            eprintln!("error: {subject}: {error}");
        }
        exit_code(error)
    }

    /// A one-line error that is not a provider call's.
    pub(crate) fn error_line(&self, message: &str, subject: Option<&str>) {
        if self.json {
            self.line(&json!({"event": "error", "subject": subject, "kind": "config", "message": message}));
        } else {
            eprintln!("error: {message}");
        }
    }

    /// The started emulator's address and the credentials it accepts. The client
    /// secret is printed only when it is the built-in demo secret (public, and needed
    /// to try the emulator); one the user chose (`--client-secret` or the environment)
    /// shows as `***`, as every other secret does.
    pub(crate) fn emulator_started(&self, emu: &offline_emulator::RunningEmulator) {
        let demo = offline_emulator::EmulatorConfig::default().client_secret;
        let secret = if emu.client_secret() == demo {
            emu.client_secret()
        } else {
            "***"
        };
        if self.json {
            self.line(&json!({
                "event": "emulator",
                "base_url": emu.base_url(),
                "client_id": emu.client_id(),
                "client_secret": secret,
                "data_dir": emu.data_dir(),
            }));
        } else {
            println!("emulator listening on {}", emu.base_url());
            println!("  client ID:     {}", emu.client_id());
            println!("  client secret: {secret}");
            println!("  data dir:      {}", emu.data_dir().display());
            println!();
            println!("try: OFFLINE_123PAN_CLIENT_ID={} OFFLINE_123PAN_CLIENT_SECRET={secret} offline --base-url {} add URL --wait", emu.client_id(), emu.base_url());
            println!("stop with Ctrl-C");
        }
        let _ = std::io::stdout().flush();
    }

    /// Progress bars (terminal) or JSON lines for a set of watched tasks.
    pub(crate) fn watcher(&self, tasks: &[(TaskRef, String)]) -> Watcher<'_> {
        let keyed: Vec<(String, String)> = tasks
            .iter()
            .map(|(t, label)| (t.id.to_string(), label.clone()))
            .collect();
        self.bars(&keyed)
    }

    /// One progress bar per `(key, label)` on a terminal; nothing in JSON mode.
    pub(crate) fn bars(&self, tasks: &[(String, String)]) -> Watcher<'_> {
        let multi = MultiProgress::new();
        let mut bars = BTreeMap::new();
        if !self.json {
            let style =
                ProgressStyle::with_template("{prefix:<24} [{bar:30.cyan/blue}] {pos:>3}% {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            for (key, label) in tasks {
                let bar = multi.add(ProgressBar::new(100));
                bar.set_style(style.clone());
                bar.set_prefix(format!("{} {}", shorten(key, 8), shorten(label, 15)));
                bar.set_message("waiting");
                bars.insert(key.clone(), bar);
            }
        }
        Watcher { out: self, bars }
    }
}

/// Live display of watched tasks.
pub(crate) struct Watcher<'a> {
    out: &'a Output,
    bars: BTreeMap<String, ProgressBar>,
}

impl Watcher<'_> {
    /// A 123pan update: a bar on a terminal, a JSON line with `--json`.
    pub(crate) fn update(&self, p: &Progress) {
        if self.out.json {
            self.out.progress_json(p);
            return;
        }
        let done = p
            .status
            .is_final()
            .then_some(p.status == TaskStatus::Succeeded);
        self.set(
            &p.task.id.to_string(),
            p.percent,
            &p.status.to_string(),
            done,
        );
    }

    /// Moves the bar of `key` to `percent` with `message`; `done` is `Some(succeeded)`
    /// for a final state. Does nothing in JSON mode.
    pub(crate) fn set(&self, key: &str, percent: f64, message: &str, done: Option<bool>) {
        if let Some(bar) = self.bars.get(key) {
            bar.set_position(percent.clamp(0.0, 100.0).round() as u64);
            bar.set_message(message.to_owned());
            match done {
                Some(true) => bar.finish(),
                // Keep the real position: a failed task's progress drops to 0.
                Some(false) => bar.abandon(),
                None => {}
            }
        }
    }

    pub(crate) fn failed(&self, task: TaskRef, error: &Error) -> u8 {
        if let Some(bar) = self.bars.get(&task.id.to_string()) {
            bar.abandon_with_message(format!("error: {error}"));
        }
        if self.out.json {
            self.out.error(&format!("task {}", task.id), error)
        } else {
            exit_code(error)
        }
    }
}

fn progress_value(p: &Progress) -> serde_json::Value {
    json!({
        "event": if p.status.is_final() { "done" } else { "progress" },
        "task": p.task.id.0,
        "kind": p.task.kind.as_str(),
        "status": p.status.as_str(),
        "status_code": p.status.code(),
        "percent": p.percent,
    })
}

fn shorten(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        s.to_owned()
    } else {
        let tail: String = s.chars().skip(count - (max - 1)).collect();
        format!("…{tail}")
    }
}

/// A word for the kind of error, for `--json`.
fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::Config(_) | Error::Invalid(_) | Error::NotAuthenticated => "config",
        Error::Transport(_) => "transport",
        Error::Api(_) => "provider",
        Error::OutcomeUnknown { .. } => "outcome_unknown",
        _ => "other",
    }
}

/// The exit code for an error.
pub(crate) fn exit_code(e: &Error) -> u8 {
    use offline_proto::ApiError;
    match e {
        Error::Config(_) | Error::Invalid(_) | Error::NotAuthenticated => exit::CONFIG,
        Error::Transport(_) | Error::Api(ApiError::Http { .. } | ApiError::Decode(_)) => {
            exit::TRANSPORT
        }
        Error::OutcomeUnknown { .. } => exit::OUTCOME_UNKNOWN,
        _ => exit::PROVIDER,
    }
}

/// Renders rows as an aligned text table with a header.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let render = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = render(header.to_vec());
    out.push('\n');
    out.push_str(&render(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for row in rows {
        out.push('\n');
        out.push_str(&render(row.iter().map(String::as_str).collect()));
    }
    out
}

/// The exit code for a final status.
pub(crate) fn status_exit(status: TaskStatus) -> u8 {
    if status == TaskStatus::Succeeded {
        exit::OK
    } else {
        exit::TASK_FAILED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["task", "outcome"],
            &[
                vec!["1".into(), "succeeded".into()],
                vec!["100002".into(), "failed".into()],
            ],
        );
        assert_eq!(
            t,
            "task    outcome\n------  ---------\n1       succeeded\n100002  failed"
        );
    }

    #[test]
    fn shorten_keeps_the_tail() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("abcdefgh", 5), "…efgh");
    }
}
