//! The batch journal: one SQLite row per input line, written before and after each
//! submission, so that a batch killed at any moment (SIGKILL included) and run again
//! submits nothing twice and loses no task ID.
//!
//! A line is keyed by its source text and its occurrence (the n-th identical line), so
//! inserting or reordering lines in the input does not resubmit anything. States:
//!
//! | state | meaning | on the next run |
//! |---|---|---|
//! | `pending` | not submitted yet, or last attempt certainly not sent | submitted |
//! | `submitting` | a create was being sent when the process stopped | 6pan: reconciled with the task list (found → `submitted`, absent → `pending`); 123pan, which has no task list: `unknown` |
//! | `submitted` | created; the task ID is recorded | skipped |
//! | `failed` | refused for good (invalid source, provider refusal); reason recorded | skipped |
//! | `unknown` | may or may not exist: check the drive before `--retry-unknown` | skipped unless `--retry-unknown` |
//!
//! The database uses WAL and `synchronous=FULL`: a committed row survives the process
//! being killed. A run that submits holds an exclusive lock on `<journal>.lock`
//! ([`lock`]) for its whole length, so two runs at once never submit a line twice:
//! the second refuses at once. `status --from` and `wait --from` only read
//! ([`Journal::open_read_only`]), lock-free; a line's kind (`cloud`, `image`, `6pan`)
//! is recorded when it is submitted.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

/// A line's state. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Pending,
    Submitting,
    Submitted,
    Failed,
    Unknown,
}

impl State {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Submitting => "submitting",
            Self::Submitted => "submitted",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "submitting" => Self::Submitting,
            "submitted" => Self::Submitted,
            "failed" => Self::Failed,
            "unknown" => Self::Unknown,
            _ => Self::Pending,
        }
    }
}

/// One input line as the journal knows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) line: usize,
    pub(crate) source: String,
    pub(crate) occurrence: u32,
    pub(crate) kind: String,
    pub(crate) state: State,
    /// The task's ID (123pan: a number; 6pan: an identity), as text.
    pub(crate) task: Option<String>,
    /// The task's name, once parsed (6pan: what reconciliation looks for).
    pub(crate) name: Option<String>,
    /// The URL the task will carry, once parsed (6pan: the parse result's `url`, which
    /// the task list's `data.url` repeats), to tell apart tasks of one name.
    pub(crate) task_url: Option<String>,
    /// When the last submission started, milliseconds since the epoch.
    pub(crate) submitted_at: Option<i64>,
    pub(crate) error: Option<String>,
}

/// An input line: its 1-based number, source text and occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InputLine {
    pub(crate) line: usize,
    pub(crate) source: String,
    pub(crate) occurrence: u32,
}

/// Reads a batch file: one source per line; blank lines and `#` comments skipped.
pub(crate) fn parse_input(text: &str) -> Vec<InputLine> {
    // A byte-order mark (editors on Windows write one) is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut seen: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let source = raw.trim();
            if source.is_empty() || source.starts_with('#') {
                return None;
            }
            let n = seen.entry(source).or_insert(0);
            *n += 1;
            Some(InputLine {
                line: i + 1,
                source: source.to_owned(),
                occurrence: *n,
            })
        })
        .collect()
}

/// The default journal path for an input file: beside it, `<file>.journal.sqlite`.
pub(crate) fn default_path(input: &Path) -> PathBuf {
    let mut name = input.file_name().unwrap_or_default().to_os_string();
    name.push(".journal.sqlite");
    input.with_file_name(name)
}

/// Why the journal's lock was not taken.
#[derive(Debug)]
pub(crate) enum LockError {
    /// Another process holds it.
    Busy,
    /// The lock file cannot be opened or locked.
    Io(std::io::Error),
}

/// Takes the exclusive lock of the journal at `path` (a `.lock` file beside it), or
/// says at once that another run holds it. Released when the file is dropped (or the
/// process ends, however it ends).
pub(crate) fn lock(path: &Path) -> Result<std::fs::File, LockError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path.with_file_name(name))
        .map_err(LockError::Io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Busy),
        Err(std::fs::TryLockError::Error(e)) => Err(LockError::Io(e)),
    }
}

/// An open journal.
pub(crate) struct Journal {
    conn: Connection,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`.
    pub(crate) fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS entries (
                source     TEXT NOT NULL,
                occurrence INTEGER NOT NULL,
                line       INTEGER NOT NULL,
                kind       TEXT NOT NULL,
                state      TEXT NOT NULL,
                task       TEXT,
                name       TEXT,
                submitted_at INTEGER,
                error      TEXT,
                attempts   INTEGER NOT NULL DEFAULT 0,
                updated_at INTEGER NOT NULL,
                PRIMARY KEY (source, occurrence)
            );",
        )?;
        // Added later: the exit code of a line's last outcome; the task's URL.
        for (column, ty) in [("exit_code", "INTEGER"), ("task_url", "TEXT")] {
            if !has_column(&conn, column)? {
                conn.execute_batch(&format!("ALTER TABLE entries ADD COLUMN {column} {ty}"))?;
            }
        }
        Ok(Self { conn })
    }

    /// Opens an existing journal only to read it: nothing is created or written.
    pub(crate) fn open_read_only(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(Self { conn })
    }

    /// Every input line's entry, `None` for a line never recorded (nothing is written).
    pub(crate) fn read(&self, lines: &[InputLine]) -> rusqlite::Result<Vec<Option<Entry>>> {
        lines
            .iter()
            .map(|l| match self.get(&l.source, l.occurrence) {
                Ok(mut e) => {
                    e.line = l.line;
                    Ok(Some(e))
                }
                Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
                Err(e) => Err(e),
            })
            .collect()
    }

    /// Marks a line `submitting` with the kind it is submitted as (committed before
    /// anything is sent).
    pub(crate) fn claim(&self, entry: &Entry, kind: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE entries SET kind = ?3 WHERE source = ?1 AND occurrence = ?2",
            params![entry.source, entry.occurrence, kind],
        )?;
        self.set(entry, State::Submitting, None, None)
    }

    /// Records the exit code of a line's outcome.
    pub(crate) fn set_code(&self, entry: &Entry, code: u8) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE entries SET exit_code = ?3 WHERE source = ?1 AND occurrence = ?2",
            params![entry.source, entry.occurrence, code],
        )?;
        Ok(())
    }

    /// The exit code recorded for a line, if any.
    pub(crate) fn code(&self, entry: &Entry) -> Option<u8> {
        self.conn
            .query_row(
                "SELECT exit_code FROM entries WHERE source = ?1 AND occurrence = ?2",
                params![entry.source, entry.occurrence],
                |r| r.get::<_, Option<u8>>(0),
            )
            .ok()
            .flatten()
    }

    /// Makes sure every input line has a row (new ones `pending`), updates line
    /// numbers, and returns every line's entry in input order.
    pub(crate) fn sync(&mut self, lines: &[InputLine], kind: &str) -> rusqlite::Result<Vec<Entry>> {
        let tx = self.conn.transaction()?;
        for l in lines {
            tx.execute(
                "INSERT INTO entries (source, occurrence, line, kind, state, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'pending', unixepoch())
                 ON CONFLICT (source, occurrence) DO UPDATE SET line = excluded.line",
                params![
                    l.source,
                    l.occurrence,
                    i64::try_from(l.line).unwrap_or(i64::MAX),
                    kind
                ],
            )?;
        }
        tx.commit()?;
        lines
            .iter()
            .map(|l| self.get(&l.source, l.occurrence))
            .collect()
    }

    fn get(&self, source: &str, occurrence: u32) -> rusqlite::Result<Entry> {
        // A journal of an older version, opened read-only, has no `task_url` yet.
        let url = if has_column(&self.conn, "task_url")? {
            "task_url"
        } else {
            "NULL"
        };
        self.conn.query_row(
            &format!(
                "SELECT line, source, occurrence, kind, state, task, name, submitted_at, error,
                    {url} FROM entries WHERE source = ?1 AND occurrence = ?2"
            ),
            params![source, occurrence],
            |r| {
                Ok(Entry {
                    line: r.get::<_, i64>(0)? as usize,
                    source: r.get(1)?,
                    occurrence: r.get(2)?,
                    kind: r.get(3)?,
                    state: State::parse(&r.get::<_, String>(4)?),
                    task: r.get(5)?,
                    name: r.get(6)?,
                    submitted_at: r.get(7)?,
                    error: r.get(8)?,
                    task_url: r.get(9)?,
                })
            },
        )
    }

    /// Records a state change (committed before this returns). Entering
    /// `submitting` stamps the submission time and counts an attempt.
    pub(crate) fn set(
        &self,
        entry: &Entry,
        state: State,
        task: Option<&str>,
        error: Option<&str>,
    ) -> rusqlite::Result<()> {
        let starting = state == State::Submitting;
        self.conn.execute(
            "UPDATE entries SET state = ?3, task = COALESCE(?4, task), error = ?5,
                 attempts = attempts + ?6,
                 submitted_at = CASE WHEN ?6 = 1 THEN ?7 ELSE submitted_at END,
                 updated_at = unixepoch()
             WHERE source = ?1 AND occurrence = ?2",
            params![
                entry.source,
                entry.occurrence,
                state.as_str(),
                task,
                error,
                i32::from(starting),
                now_ms()
            ],
        )?;
        Ok(())
    }

    /// Records the name a source parsed to and the URL its task will carry (before
    /// it is added).
    pub(crate) fn set_name(
        &self,
        entry: &Entry,
        name: &str,
        task_url: Option<&str>,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE entries SET name = ?3, task_url = ?4 WHERE source = ?1 AND occurrence = ?2",
            params![entry.source, entry.occurrence, name, task_url],
        )?;
        Ok(())
    }
}

/// Whether the journal's `entries` table has `column`.
fn has_column(conn: &Connection, column: &str) -> rusqlite::Result<bool> {
    conn.prepare("SELECT 1 FROM pragma_table_info('entries') WHERE name = ?1")?
        .exists([column])
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_skips_comments_and_counts_duplicates() {
        let lines = parse_input("# header\nhttp://a/1\n\n  http://a/2  \nhttp://a/1\n# http://x\n");
        assert_eq!(
            lines,
            vec![
                InputLine {
                    line: 2,
                    source: "http://a/1".into(),
                    occurrence: 1
                },
                InputLine {
                    line: 4,
                    source: "http://a/2".into(),
                    occurrence: 1
                },
                InputLine {
                    line: 5,
                    source: "http://a/1".into(),
                    occurrence: 2
                },
            ]
        );
    }

    #[test]
    fn states_survive_reopening_and_inserted_lines_keep_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let mut j = Journal::open(&path).unwrap();
        let entries = j
            .sync(&parse_input("http://a/1\nhttp://a/2\n"), "cloud")
            .unwrap();
        j.set(&entries[0], State::Submitting, None, None).unwrap();
        j.set_name(&entries[0], "one", Some("https://example.com/one"))
            .unwrap();
        j.set(&entries[0], State::Submitted, Some("42"), None)
            .unwrap();
        drop(j);
        let mut j = Journal::open(&path).unwrap();
        let entries = j
            .sync(
                &parse_input("http://new\nhttp://a/1\nhttp://a/2\n"),
                "cloud",
            )
            .unwrap();
        assert_eq!(entries[0].state, State::Pending);
        assert_eq!(entries[1].state, State::Submitted);
        assert_eq!(entries[1].task.as_deref(), Some("42"));
        assert_eq!(entries[1].name.as_deref(), Some("one"));
        assert!(entries[1].submitted_at.is_some());
        assert_eq!(entries[1].line, 2);
        assert_eq!(entries[2].state, State::Pending);
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_line() {
        let lines = parse_input("\u{feff}http://a/1\nhttp://a/2\n");
        assert_eq!(lines[0].source, "http://a/1");
    }

    #[test]
    fn the_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let held = lock(&path).unwrap();
        assert!(matches!(lock(&path), Err(LockError::Busy)));
        drop(held);
        assert!(lock(&path).is_ok());
    }

    #[test]
    fn default_path_is_beside_the_input() {
        assert_eq!(
            default_path(Path::new("/x/urls.txt")),
            PathBuf::from("/x/urls.txt.journal.sqlite")
        );
    }
}
