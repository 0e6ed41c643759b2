//! The notifications sent over WebSocket, and when to send them.

use super::{Gid, Queue, TaskState};

/// A server-initiated notification (WebSocket only; aria2 manual, RPC interface, JSON-RPC
/// over WebSocket, Notifications: "much like a normal method request but lacks the id
/// key").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// `aria2.onDownloadStart`: "sent when a download is started".
    Start,
    /// `aria2.onDownloadPause`: "sent when a download is paused" (never sent here:
    /// nothing can be paused).
    Pause,
    /// `aria2.onDownloadStop`: "sent when a download is stopped by the user".
    Stop,
    /// `aria2.onDownloadComplete`: "sent when a download is complete".
    Complete,
    /// `aria2.onDownloadError`: "sent when a download is stopped due to an error".
    Error,
    /// `aria2.onBtDownloadComplete`: "sent when a torrent download is complete but
    /// seeding is still going on".
    BtComplete,
}

impl Event {
    /// Every event, in the manual's order (what `system.listNotifications` answers).
    pub const ALL: [Event; 6] = [
        Event::Start,
        Event::Pause,
        Event::Stop,
        Event::Complete,
        Event::Error,
        Event::BtComplete,
    ];

    /// The notification's method name, e.g. `aria2.onDownloadStart`.
    pub const fn method(self) -> &'static str {
        match self {
            Event::Start => "aria2.onDownloadStart",
            Event::Pause => "aria2.onDownloadPause",
            Event::Stop => "aria2.onDownloadStop",
            Event::Complete => "aria2.onDownloadComplete",
            Event::Error => "aria2.onDownloadError",
            Event::BtComplete => "aria2.onBtDownloadComplete",
        }
    }

    /// The notification's JSON text for the download `gid`:
    /// `{"jsonrpc":"2.0","method":"aria2.onDownloadStart","params":[{"gid":"…"}]}`
    /// (aria2 manual, RPC interface, Notifications, `aria2.onDownloadStart`: the event
    /// is a struct with the key `gid`).
    pub fn notification(self, gid: Gid) -> String {
        serde_json::json!({
            "jsonrpc": "2.0",
            "method": self.method(),
            "params": [{"gid": gid}],
        })
        .to_string()
    }

    /// The notifications to send when a task goes from `before` (`None`: just added)
    /// to `after`; `torrent` says whether it is a torrent download. Nothing when the
    /// queue and the status stay the same.
    ///
    /// - entering the active queue ([`TaskState::queue`]): [`Event::Start`];
    /// - becoming `Complete`: [`Event::Complete`], for a torrent first
    ///   [`Event::BtComplete`] (the drive does not seed, so the download is complete and
    ///   its seeding over at once, and aria2 sends both for a torrent that stops
    ///   seeding at once);
    /// - becoming `Failed` or `UnknownOutcome`: [`Event::Error`];
    /// - becoming `Removed`: [`Event::Stop`] ("stopped by the user").
    ///
    /// A stopped task does not move again; a change between two stopped states sends
    /// nothing.
    pub fn between(
        before: Option<&TaskState>,
        after: &TaskState,
        torrent: bool,
    ) -> &'static [Event] {
        let was = before.map(TaskState::queue);
        if was == Some(Queue::Stopped) {
            return &[];
        }
        match after {
            TaskState::Queued => &[],
            TaskState::Submitting | TaskState::Running if was == Some(Queue::Active) => &[],
            TaskState::Submitting | TaskState::Running => &[Event::Start],
            TaskState::Complete if torrent => &[Event::BtComplete, Event::Complete],
            TaskState::Complete => &[Event::Complete],
            TaskState::Failed(_) | TaskState::UnknownOutcome => &[Event::Error],
            TaskState::Removed => &[Event::Stop],
        }
    }
}
