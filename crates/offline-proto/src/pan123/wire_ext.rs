//! Hand-written impls on the generated wire types (`wire.rs`): constructors of
//! envelopes, how task IDs print and parse, and what a task status means.

use super::{Envelope, TaskId, TaskStatus};

impl<T> Envelope<T> {
    /// A success envelope (`code` 0, `message` `ok`).
    pub fn ok(data: T, trace_id: impl Into<String>) -> Self {
        Self {
            code: 0,
            message: "ok".to_owned(),
            data: Some(data),
            trace_id: Some(trace_id.into()),
        }
    }

    /// An error envelope with `data: null`.
    pub fn error(code: i64, message: impl Into<String>, trace_id: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
            trace_id: Some(trace_id.into()),
        }
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for TaskId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(Self)
    }
}

impl TaskStatus {
    /// Whether the task has ended (failed or succeeded): stop polling.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Failed | Self::Succeeded)
    }

    /// A lowercase word for humans and `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Failed => "failed",
            Self::Succeeded => "succeeded",
            Self::Retrying => "retrying",
            Self::Unknown(_) => "unknown",
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unknown(c) => write!(f, "unknown ({c})"),
            other => f.write_str(other.as_str()),
        }
    }
}
