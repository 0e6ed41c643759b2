//! The task store: one SQLite row per submission, written before and after each
//! create, so that a process killed at any moment (SIGKILL included) and run again
//! submits nothing twice and loses no task ID. The CLI's batch journal
//! (`offline add --from FILE`: one row per input line, [`Journal::sync`]) and the
//! `offline serve` daemon (one row per accepted download, [`Journal::append`]) share
//! this schema and this code.
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
pub enum State {
    /// Not submitted yet, or the last attempt certainly was not sent.
    Pending,
    /// A create was being sent when the process stopped (may have reached the server).
    Submitting,
    /// Created; the task ID is recorded.
    Submitted,
    /// Refused for good; the reason is recorded.
    Failed,
    /// May or may not exist: check the drive before submitting again.
    Unknown,
}

impl State {
    /// The state as stored and printed: `pending`, `submitting`, `submitted`,
    /// `failed`, `unknown`.
    pub fn as_str(self) -> &'static str {
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
pub struct Entry {
    /// The 1-based input line (the daemon: the order the download was accepted in).
    pub line: usize,
    /// The source as given: a URL, a magnet link, a torrent file's path.
    pub source: String,
    /// Which identical source this is (1 for the first).
    pub occurrence: u32,
    /// What it is submitted as: `cloud`, `image`, `6pan`.
    pub kind: String,
    /// Where it stands.
    pub state: State,
    /// The task's ID (123pan: a number; 6pan: an identity), as text.
    pub task: Option<String>,
    /// The task's name, once parsed (6pan: what reconciliation looks for).
    pub name: Option<String>,
    /// The URL the task will carry, once parsed (6pan: the parse result's `url`, which
    /// the task list's `data.url` repeats), to tell apart tasks of one name.
    pub task_url: Option<String>,
    /// When the last submission started, milliseconds since the epoch.
    pub submitted_at: Option<i64>,
    /// The options it was accepted with, as JSON (`offline serve`: `{"dir", "out"}`).
    pub options: Option<String>,
    /// Why it failed, or what to check when its outcome is unknown.
    pub error: Option<String>,
    /// How the task ended on the drive, as the daemon recorded it (JSON text, the
    /// daemon's own shape: `offline serve` writes `{"status": "complete"|"error"|
    /// "removed", ...}`); `None` while it runs, and always for batch lines.
    pub outcome: Option<String>,
}

/// An input line: its 1-based number, source text and occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLine {
    /// The 1-based line number.
    pub line: usize,
    /// The source text, trimmed.
    pub source: String,
    /// Which identical line this is (1 for the first).
    pub occurrence: u32,
}

/// Reads a batch file: one source per line; blank lines and `#` comments skipped.
pub fn parse_input(text: &str) -> Vec<InputLine> {
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
pub fn default_path(input: &Path) -> PathBuf {
    let mut name = input.file_name().unwrap_or_default().to_os_string();
    name.push(".journal.sqlite");
    input.with_file_name(name)
}

/// Why the journal's lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it.
    Busy,
    /// The lock file cannot be opened or locked.
    Io(std::io::Error),
}

/// Takes the exclusive lock of the journal at `path` (a `.lock` file beside it), or
/// says at once that another run holds it. Released when the file is dropped (or the
/// process ends, however it ends).
pub fn lock(path: &Path) -> Result<std::fs::File, LockError> {
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
pub struct Journal {
    conn: Connection,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
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
            );
            CREATE TABLE IF NOT EXISTS settings (
                key   TEXT PRIMARY KEY,
                value TEXT NOT NULL
            );",
        )?;
        // Added later: the exit code of a line's last outcome; the task's URL; the
        // options it was accepted with (the daemon's `dir` and `out`, as JSON).
        for (column, ty) in [
            ("exit_code", "INTEGER"),
            ("task_url", "TEXT"),
            ("options", "TEXT"),
            ("outcome", "TEXT"),
        ] {
            if !has_column(&conn, column)? {
                conn.execute_batch(&format!("ALTER TABLE entries ADD COLUMN {column} {ty}"))?;
            }
        }
        Ok(Self { conn })
    }

    /// Opens an existing journal only to read it: nothing is created or written.
    pub fn open_read_only(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(Self { conn })
    }

    /// Every input line's entry, `None` for a line never recorded (nothing is written).
    pub fn read(&self, lines: &[InputLine]) -> rusqlite::Result<Vec<Option<Entry>>> {
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
    pub fn claim(&self, entry: &Entry, kind: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE entries SET kind = ?3 WHERE source = ?1 AND occurrence = ?2",
            params![entry.source, entry.occurrence, kind],
        )?;
        self.set(entry, State::Submitting, None, None)
    }

    /// Records the exit code of a line's outcome.
    pub fn set_code(&self, entry: &Entry, code: u8) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE entries SET exit_code = ?3 WHERE source = ?1 AND occurrence = ?2",
            params![entry.source, entry.occurrence, code],
        )?;
        Ok(())
    }

    /// The exit code recorded for a line, if any.
    pub fn code(&self, entry: &Entry) -> Option<u8> {
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
    pub fn sync(&mut self, lines: &[InputLine], kind: &str) -> rusqlite::Result<Vec<Entry>> {
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

    /// Records a new submission of `source` as `kind` (`pending`, committed before this
    /// returns): the next occurrence of that source, numbered after every row so far.
    /// The daemon calls this for each download it accepts, before submitting it.
    ///
    /// # Errors
    ///
    /// A SQLite error; nothing is recorded then.
    pub fn append(&mut self, source: &str, kind: &str) -> rusqlite::Result<Entry> {
        let tx = self.conn.transaction()?;
        let (occurrence, line): (u32, i64) = tx.query_row(
            "SELECT COALESCE((SELECT MAX(occurrence) FROM entries WHERE source = ?1), 0) + 1,
                    COALESCE((SELECT MAX(line) FROM entries), 0) + 1",
            params![source],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.execute(
            "INSERT INTO entries (source, occurrence, line, kind, state, updated_at)
             VALUES (?1, ?2, ?3, ?4, 'pending', unixepoch())",
            params![source, occurrence, line, kind],
        )?;
        tx.commit()?;
        self.get(source, occurrence)
    }

    /// Records the options a submission was accepted with (JSON text).
    ///
    /// # Errors
    ///
    /// A SQLite error.
    pub fn set_options(&self, entry: &Entry, options: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE entries SET options = ?3 WHERE source = ?1 AND occurrence = ?2",
            params![entry.source, entry.occurrence, options],
        )?;
        Ok(())
    }

    /// Records how a submitted task ended (JSON text; `None` clears it), committed
    /// before this returns.
    ///
    /// # Errors
    ///
    /// A SQLite error.
    pub fn set_outcome(&self, entry: &Entry, outcome: Option<&str>) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE entries SET outcome = ?3, updated_at = unixepoch()
             WHERE source = ?1 AND occurrence = ?2",
            params![entry.source, entry.occurrence, outcome],
        )?;
        Ok(())
    }

    /// Every row, in line order.
    ///
    /// # Errors
    ///
    /// A SQLite error.
    pub fn all(&self) -> rusqlite::Result<Vec<Entry>> {
        let sql = format!("{} ORDER BY line, rowid", self.select()?);
        let mut statement = self.conn.prepare(&sql)?;
        let rows = statement.query_map([], entry_of_row)?;
        rows.collect()
    }

    /// Deletes a row (a download result the user removed).
    ///
    /// # Errors
    ///
    /// A SQLite error.
    pub fn remove(&self, entry: &Entry) -> rusqlite::Result<()> {
        self.conn.execute(
            "DELETE FROM entries WHERE source = ?1 AND occurrence = ?2",
            params![entry.source, entry.occurrence],
        )?;
        Ok(())
    }

    fn get(&self, source: &str, occurrence: u32) -> rusqlite::Result<Entry> {
        let sql = format!("{} WHERE source = ?1 AND occurrence = ?2", self.select()?);
        self.conn
            .query_row(&sql, params![source, occurrence], entry_of_row)
    }

    /// The `SELECT` of every [`Entry`] column: a journal of an older version, opened
    /// read-only, has no `task_url`, `options` or `outcome` yet (read as `NULL`).
    fn select(&self) -> rusqlite::Result<String> {
        let column = |name: &'static str| -> rusqlite::Result<&'static str> {
            Ok(if has_column(&self.conn, name)? {
                name
            } else {
                "NULL"
            })
        };
        let (url, options, outcome) = (column("task_url")?, column("options")?, column("outcome")?);
        Ok(format!(
            "SELECT line, source, occurrence, kind, state, task, name, submitted_at, error,
                {url}, {options}, {outcome} FROM entries"
        ))
    }

    /// Records a state change (committed before this returns). Entering
    /// `submitting` stamps the submission time and counts an attempt.
    pub fn set(
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

    /// A setting the daemon keeps beside its rows (such as its categories, as JSON
    /// text); `None` when never set.
    ///
    /// # Errors
    ///
    /// A SQLite error.
    pub fn setting(&self, key: &str) -> rusqlite::Result<Option<String>> {
        match self.conn.query_row(
            "SELECT value FROM settings WHERE key = ?1",
            params![key],
            |r| r.get(0),
        ) {
            Ok(value) => Ok(Some(value)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records a setting (`None` forgets it), committed before this returns.
    ///
    /// # Errors
    ///
    /// A SQLite error.
    pub fn set_setting(&self, key: &str, value: Option<&str>) -> rusqlite::Result<()> {
        match value {
            Some(value) => self.conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?,
            None => self
                .conn
                .execute("DELETE FROM settings WHERE key = ?1", params![key])?,
        };
        Ok(())
    }

    /// Records the name a source parsed to and the URL its task will carry (before
    /// it is added).
    pub fn set_name(
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

/// An [`Entry`] from a row of [`Journal::select`].
fn entry_of_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        line: usize::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
        source: r.get(1)?,
        occurrence: r.get(2)?,
        kind: r.get(3)?,
        state: State::parse(&r.get::<_, String>(4)?),
        task: r.get(5)?,
        name: r.get(6)?,
        submitted_at: r.get(7)?,
        error: r.get(8)?,
        task_url: r.get(9)?,
        options: r.get(10)?,
        outcome: r.get(11)?,
    })
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
    fn appended_rows_count_occurrences_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let mut j = Journal::open(&path).unwrap();
        let a = j.append("http://a/1", "cloud").unwrap();
        let b = j.append("http://a/1", "cloud").unwrap();
        let c = j.append("http://a/2", "cloud").unwrap();
        assert_eq!((a.occurrence, b.occurrence, c.occurrence), (1, 2, 1));
        assert_eq!((a.line, b.line, c.line), (1, 2, 3));
        j.set(&b, State::Submitted, Some("7"), None).unwrap();
        drop(j);
        let j = Journal::open(&path).unwrap();
        let all = j.all().unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].task.as_deref(), Some("7"));
        j.remove(&all[0]).unwrap();
        assert_eq!(j.all().unwrap().len(), 2);
    }

    #[test]
    fn settings_survive_reopening_and_can_be_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.setting("categories").unwrap(), None);
        j.set_setting("categories", Some("{}")).unwrap();
        j.set_setting("categories", Some(r#"{"tv":"/TV"}"#))
            .unwrap();
        drop(j);
        let j = Journal::open(&path).unwrap();
        assert_eq!(
            j.setting("categories").unwrap().as_deref(),
            Some(r#"{"tv":"/TV"}"#)
        );
        j.set_setting("categories", None).unwrap();
        assert_eq!(j.setting("categories").unwrap(), None);
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
