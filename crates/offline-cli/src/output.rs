//! Everything the CLI prints: human lines, progress bars and tables on a terminal, one
//! JSON event per line with `--json` (the schema: `docs/events.schema.json`). Secrets
//! are never printed.
//!
//! Standard output is written only through [`emit`] (the `outln!` macro): a closed
//! pipe (`offline hash * | head -1`) ends the process quietly with exit 0, as ripgrep
//! does; any other write error (a full disk) is one error line and exit
//! [`exit::CONFIG`], never a panic. Standard error goes through `errln!`, which
//! ignores write errors.

use std::collections::BTreeMap;
use std::io::Write;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use provider_123pan::{Error, Progress, TaskRef, TaskStatus};
use serde_json::{json, Value};

use crate::exit;

/// Writes one line to standard output (see the [module docs](crate::output)).
macro_rules! outln {
    () => {
        $crate::output::emit(format_args!(""))
    };
    ($($t:tt)*) => {
        $crate::output::emit(format_args!($($t)*))
    };
}

/// Writes one line to standard error, ignoring write errors.
macro_rules! errln {
    ($($t:tt)*) => {
        $crate::output::emit_err(format_args!($($t)*))
    };
}

/// Writes `args` and a newline to standard output; see the [module docs](self).
pub(crate) fn emit(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let result = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    if let Err(e) = result {
        stdout_failed(&e);
    }
}

/// Ends the process after a failed write to standard output.
pub(crate) fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        // The reader has gone (`| head`): nothing more is wanted.
        std::process::exit(0);
    }
    let _ = writeln!(
        std::io::stderr(),
        "error: cannot write to standard output: {e}"
    );
    std::process::exit(i32::from(exit::CONFIG));
}

/// Writes `args` and a newline to standard error; errors are ignored.
pub(crate) fn emit_err(args: std::fmt::Arguments<'_>) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr
        .write_fmt(args)
        .and_then(|()| stderr.write_all(b"\n"));
}

/// Where output goes and in which form.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    json: bool,
    provider: Option<&'static str>,
}

impl Output {
    /// Human output, or JSON events with `json`, about `provider` (its name in every
    /// event).
    pub(crate) fn new(json: bool, provider: &'static str) -> Self {
        Self {
            json,
            provider: Some(provider),
        }
    }

    /// Output of a command that talks to no provider (`offline emulator`, which
    /// serves both): its events carry no `provider`.
    pub(crate) fn without_provider(json: bool) -> Self {
        Self {
            json,
            provider: None,
        }
    }

    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    /// Prints one JSON event; `provider` is added when the value lacks it (and the
    /// command has one).
    pub(crate) fn event(&self, mut value: Value) {
        if let (Value::Object(map), Some(provider)) = (&mut value, self.provider) {
            map.entry("provider")
                .or_insert_with(|| Value::from(provider));
        }
        outln!("{value}");
    }

    /// A plain human line on stdout (nothing in JSON mode).
    pub(crate) fn say(&self, text: &str) {
        if !self.json {
            outln!("{text}");
        }
    }

    pub(crate) fn created(&self, url: &str, task: TaskRef) {
        if self.json {
            self.event(json!({
                "event": "created",
                "task": task.id.to_string(),
                "kind": task.kind.as_str(),
                "source": url,
            }));
        } else {
            outln!(
                "created task {} ({}) for {url}",
                task.id,
                task.kind.as_str()
            );
        }
    }

    pub(crate) fn progress_json(&self, p: &Progress) {
        self.event(progress_value(p));
    }

    pub(crate) fn status_line(&self, p: &Progress) {
        if self.json {
            let mut v = progress_value(p);
            v["event"] = json!("status");
            self.event(v);
        } else {
            outln!(
                "task {} ({}): {} {}%",
                p.task.id,
                p.task.kind.as_str(),
                p.status,
                percent_text(p.percent)
            );
        }
    }

    /// Reports a 123pan `error` about `subject` (a URL or a task) and returns its exit
    /// code.
    pub(crate) fn error(&self, subject: &str, error: &Error) -> u8 {
        let code = exit_code(error);
        let provider = error.provider_error();
        self.error_event(
            subject,
            code,
            &crate::client::explain_123(error),
            provider.map(|p| p.code.to_string()),
            provider.and_then(|p| p.trace_id.clone()),
        );
        code
    }

    /// One error: an `error` event in JSON mode, else a line on stderr.
    pub(crate) fn error_event(
        &self,
        subject: &str,
        code: u8,
        message: &str,
        provider_code: Option<String>,
        trace_id: Option<String>,
    ) {
        if self.json {
            self.event(json!({
                "event": "error",
                "subject": subject,
                "kind": kind_of(code),
                "message": message,
                "code": provider_code,
                "trace_id": trace_id,
                "exit_code": code,
            }));
        } else if subject.is_empty() {
            errln!("error: {message}");
        } else {
            errln!("error: {subject}: {message}");
        }
    }

    /// A one-line error that is not a provider call's, with the exit code it ends in
    /// (which gives its `kind`).
    pub(crate) fn fail(&self, code: u8, message: &str, subject: Option<&str>) -> u8 {
        self.error_event(subject.unwrap_or(""), code, message, None, None);
        code
    }

    /// A one-line configuration error (exit [`exit::CONFIG`]).
    pub(crate) fn error_line(&self, message: &str, subject: Option<&str>) {
        self.fail(exit::CONFIG, message, subject);
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
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let mut bars = BTreeMap::new();
        if !self.json {
            let style =
                ProgressStyle::with_template("{prefix} [{bar:30.cyan/blue}] {pos:>3}% {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            for (key, label) in tasks {
                let bar = multi.add(ProgressBar::new(100));
                bar.set_style(style.clone());
                bar.set_prefix(format!(
                    "{} {}",
                    fit(&shorten(key, 8), 8),
                    fit(&shorten(&screen(label), 15), 15)
                ));
                bar.set_message("waiting");
                bars.insert(key.clone(), bar);
            }
        }
        Watcher { out: self, bars }
    }
}

/// Pads `s` with spaces to `width` columns of the screen (CJK characters take two).
pub(crate) fn fit(s: &str, width: usize) -> String {
    let w = unicode_width::UnicodeWidthStr::width(s);
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
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
            bar.set_message(screen(message).into_owned());
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

/// A percentage as the provider reported it, for humans: no trailing `.0`.
pub(crate) fn percent_text(p: f64) -> String {
    let s = format!("{p:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn progress_value(p: &Progress) -> Value {
    json!({
        "event": if p.status.is_final() { "done" } else { "progress" },
        "task": p.task.id.to_string(),
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

/// A word for the kind of an error, from its exit code, for `--json`.
pub(crate) fn kind_of(code: u8) -> &'static str {
    match code {
        exit::USAGE => "usage",
        exit::NETWORK => "network",
        exit::OUTCOME_UNKNOWN => "outcome_unknown",
        exit::CONFIG => "config",
        exit::CREDENTIALS => "credentials",
        exit::BUSY => "busy",
        exit::TIMED_OUT => "timeout",
        exit::INTERRUPTED => "interrupted",
        exit::TASK_FAILED => "task_failed",
        _ => "provider",
    }
}

/// The exit code for a 123pan error.
pub(crate) fn exit_code(e: &Error) -> u8 {
    use offline_proto::ApiError;
    match e {
        Error::Config(_) | Error::Invalid(_) => exit::CONFIG,
        Error::NotAuthenticated | Error::Api(ApiError::TokenInvalid(_)) => exit::CREDENTIALS,
        Error::Transport(t) if offline_proto::call::past_command_deadline(t) => exit::TIMED_OUT,
        Error::Transport(_) | Error::Api(ApiError::Http { .. } | ApiError::Decode(_)) => {
            exit::NETWORK
        }
        Error::OutcomeUnknown { .. } => exit::OUTCOME_UNKNOWN,
        _ => exit::PROVIDER,
    }
}

/// `s` safe to print on a terminal: every control character (ESC, BEL, CR, LF, NUL,
/// …) shown as an escape (`\u{1b}`), so a name from a torrent or a server cannot move
/// the cursor, retitle the window or forge lines. JSON output is never passed
/// through this: it stays exact.
pub(crate) fn screen(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Renders rows as a table with a header, aligned by screen width (CJK file names take
/// two columns a character); a table for people, every cell passed through [`screen`].
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    for row in rows {
        t.add_row(row.iter().map(|c| screen(c).into_owned()));
    }
    t.lines()
        .map(|l| l.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
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
    fn tables_align_by_screen_width() {
        let t = table(
            &["task", "name"],
            &[
                vec!["1".into(), "电影.mkv".into()],
                vec!["100002".into(), "a.iso".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        // The second column starts at the same screen column on every line.
        let col = |l: &str| {
            let idx = l
                .find(|c: char| !c.is_ascii_digit() && c != ' ')
                .unwrap_or(0);
            unicode_width::UnicodeWidthStr::width(&l[..idx])
        };
        assert_eq!(col(lines[1]), col(lines[2]), "{t}");
    }

    #[test]
    fn fit_pads_by_screen_width() {
        assert_eq!(fit("电影", 6), "电影  ");
        assert_eq!(fit("ab", 4), "ab  ");
    }

    #[test]
    fn shorten_keeps_the_tail() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("abcdefgh", 5), "…efgh");
    }

    #[test]
    fn percentages_keep_what_the_provider_said() {
        assert_eq!(percent_text(100.0), "100");
        assert_eq!(percent_text(45.5), "45.5");
        assert_eq!(percent_text(33.333), "33.33");
    }
}
