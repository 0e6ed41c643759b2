//! Ctrl-C (SIGINT) during a command that watches or submits tasks: one line saying
//! that the tasks keep running on the drive and which command shows them, then exit
//! [`exit::INTERRUPTED`].
//!
//! A batch (`add --from`) is *cooperative*: the first Ctrl-C lets the line being
//! submitted finish and be recorded, then the batch stops with its summary, so the
//! journal never holds a line it need not (a second Ctrl-C stops at once, which the
//! journal survives as it survives a kill). Every other command stops at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::exit;
use crate::output::Output;

static COOPERATIVE: AtomicBool = AtomicBool::new(false);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static HINT: Mutex<Option<String>> = Mutex::new(None);

/// Starts listening for Ctrl-C (on the current runtime).
pub(crate) fn install(out: &Output) {
    let out = out.clone();
    tokio::spawn(async move {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            if COOPERATIVE.load(Ordering::SeqCst) && !INTERRUPTED.swap(true, Ordering::SeqCst) {
                continue;
            }
            report(&out);
            std::process::exit(i32::from(exit::INTERRUPTED));
        }
    });
}

/// Prints the one line about the interruption.
pub(crate) fn report(out: &Output) {
    let hint = HINT.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let text = match &hint {
        Some(h) => format!("interrupted: the tasks keep running on the drive; `{h}` shows them"),
        None => "interrupted: tasks already created keep running on the drive".to_owned(),
    };
    if out.is_json() {
        out.event(serde_json::json!({"event": "interrupted", "message": text, "command": hint}));
    } else {
        errln!("{text}");
    }
}

/// The command that shows the tasks of this run, if one was set ([`set_hint`]).
pub(crate) fn hint() -> Option<String> {
    HINT.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The command that shows the tasks of this run, for the interruption's line.
pub(crate) fn set_hint(command: String) {
    *HINT.lock().unwrap_or_else(|p| p.into_inner()) = Some(command);
}

/// A batch: the first Ctrl-C only asks it to stop after the current line.
pub(crate) fn set_cooperative(on: bool) {
    COOPERATIVE.store(on, Ordering::SeqCst);
}

/// Whether Ctrl-C was pressed (in cooperative mode).
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
