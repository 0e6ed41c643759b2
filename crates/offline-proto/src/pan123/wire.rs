//! 123pan open platform wire types, with the providers' own field names.
//!
//! Facts: `API-NOTES.md` (123pan section) and seeds `002` (cloud-drive create),
//! `003` (create and progress), `004` (image-bed create).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::Secret;

/// The response envelope of every 123pan call:
/// `{"code": int, "message": string, "data": object|null, "x-traceID": string}`.
///
/// `code == 0` is success. HTTP status is 200 even for most errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// `0` on success; `401` token invalid, `429` rate limited, others per endpoint.
    pub code: i64,
    /// A human message (`ok` on success, often Chinese otherwise).
    #[serde(default)]
    pub message: String,
    /// The endpoint's data, `null` on error.
    #[serde(default = "Option::default")]
    pub data: Option<T>,
    /// The trace ID users quote to support.
    #[serde(rename = "x-traceID", default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

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

/// Body of `POST /api/v1/access_token`: `{clientID, clientSecret}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenRequest {
    /// The application's client ID.
    #[serde(rename = "clientID")]
    pub client_id: String,
    /// The application's client secret.
    #[serde(rename = "clientSecret")]
    pub client_secret: Secret,
}

/// `data` of the access token answer: `{accessToken, expiredAt}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenData {
    /// The bearer token.
    #[serde(rename = "accessToken")]
    pub access_token: Secret,
    /// When the token stops working: RFC 3339 with an offset, e.g.
    /// `2025-03-23T15:48:37+08:00`.
    #[serde(rename = "expiredAt", with = "time::serde::rfc3339")]
    pub expired_at: OffsetDateTime,
}

/// A task ID as the provider assigns it (`taskID`, a number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub u64);

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

/// Body of `POST /api/v1/offline/download` (seed `002`): fetch an http(s) URL into the
/// cloud drive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineDownloadRequest {
    /// The source, http or https only (required).
    pub url: String,
    /// A custom file name. Free-form here: the seed's note about image extensions was
    /// copied from the image-bed page, and clients in the wild ignore it.
    #[serde(rename = "fileName", default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// The folder to download into; the root (0) is refused, absent means the folder
    /// named `来自:离线下载`.
    #[serde(rename = "dirID", default, skip_serializing_if = "Option::is_none")]
    pub dir_id: Option<u64>,
    /// Where the service POSTs a [`Callback`] when the task ends.
    #[serde(
        rename = "callBackUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub callback_url: Option<String>,
}

/// The only business type the image-bed call accepts (`type`, always 1, seed `004`).
pub const OSS_BUSINESS_TYPE: u32 = 1;

/// Body of `POST /api/v1/oss/offline/download` (seed `004`): migrate an image into the
/// image bed (图床).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OssOfflineDownloadRequest {
    /// The image source, http or https, ending in an image extension unless
    /// `fileName` does (required).
    pub url: String,
    /// A custom file name that must end in an image extension.
    #[serde(rename = "fileName", default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// The image-bed folder: a **string** here, unlike the cloud drive's `dirID`.
    #[serde(
        rename = "businessDirID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub business_dir_id: Option<String>,
    /// Where the service POSTs a [`Callback`] when the task ends.
    #[serde(
        rename = "callBackUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub callback_url: Option<String>,
    /// Business type, always [`OSS_BUSINESS_TYPE`] (required).
    #[serde(rename = "type")]
    pub business_type: u32,
}

/// `data` of both create calls: `{taskID}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCreated {
    /// The new task's ID, for the progress call.
    #[serde(rename = "taskID")]
    pub task_id: TaskId,
}

/// Query of both progress calls: `?taskID=N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessQuery {
    /// The task to ask about.
    #[serde(rename = "taskID")]
    pub task_id: TaskId,
}

/// A task's state (`status` of the progress calls, seed `003`).
///
/// Only [`Failed`](Self::Failed) and [`Succeeded`](Self::Succeeded) are final; a
/// retrying task is still alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// `0`: downloading.
    Running,
    /// `1`: failed (progress drops to 0).
    Failed,
    /// `2`: done.
    Succeeded,
    /// `3`: the service is retrying; not final.
    Retrying,
    /// A value this crate does not know yet; treated as not final.
    Unknown(i64),
}

impl TaskStatus {
    /// The wire value.
    pub fn code(self) -> i64 {
        match self {
            Self::Running => 0,
            Self::Failed => 1,
            Self::Succeeded => 2,
            Self::Retrying => 3,
            Self::Unknown(c) => c,
        }
    }

    /// The status for a wire value.
    pub fn from_code(code: i64) -> Self {
        match code {
            0 => Self::Running,
            1 => Self::Failed,
            2 => Self::Succeeded,
            3 => Self::Retrying,
            c => Self::Unknown(c),
        }
    }

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

impl Serialize for TaskStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.code())
    }
}

impl<'de> Deserialize<'de> for TaskStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        i64::deserialize(deserializer).map(Self::from_code)
    }
}

/// `data` of both progress calls: `{process, status}`.
///
/// The cloud-drive call reports `process` as a float percent, the image-bed call as an
/// integer 0..=100; both decode here as a float percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Process {
    /// Progress in percent, 0 to 100 (drops to 0 when the task fails).
    pub process: f64,
    /// The task's state.
    pub status: TaskStatus,
}

/// Outcome code of a [`Callback`]: `0` success, `1` failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallbackStatus {
    /// `0`: the file is in the drive.
    Succeeded,
    /// `1`: the task failed; see the reason.
    Failed,
    /// Any other value.
    Unknown(i64),
}

impl CallbackStatus {
    /// The wire value.
    pub fn code(self) -> i64 {
        match self {
            Self::Succeeded => 0,
            Self::Failed => 1,
            Self::Unknown(c) => c,
        }
    }
}

impl Serialize for CallbackStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.code())
    }
}

impl<'de> Deserialize<'de> for CallbackStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match i64::deserialize(deserializer)? {
            0 => Self::Succeeded,
            1 => Self::Failed,
            c => Self::Unknown(c),
        })
    }
}

/// The JSON the service POSTs to `callBackUrl` when a task ends:
/// `{"url", "status", "failReason", "fileID"}`.
///
/// The seeds' prose calls the reason `fileReason` while their example says
/// `failReason`: both are accepted (`failReason` wins when both are present), and
/// `failReason` is written. The callback carries no signature: treat it as a hint and
/// confirm with the progress call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RawCallback")]
pub struct Callback {
    /// The source URL of the task.
    pub url: String,
    /// Whether the task succeeded.
    pub status: CallbackStatus,
    /// Why it failed; empty on success.
    #[serde(rename = "failReason")]
    pub fail_reason: String,
    /// The file's ID in the drive on success.
    #[serde(rename = "fileID", default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<u64>,
}

#[derive(Deserialize)]
struct RawCallback {
    url: String,
    status: CallbackStatus,
    #[serde(rename = "failReason", default)]
    fail_reason: Option<String>,
    #[serde(rename = "fileReason", default)]
    file_reason: Option<String>,
    #[serde(rename = "fileID", default)]
    file_id: Option<u64>,
}

impl From<RawCallback> for Callback {
    fn from(raw: RawCallback) -> Self {
        Self {
            url: raw.url,
            status: raw.status,
            fail_reason: raw.fail_reason.or(raw.file_reason).unwrap_or_default(),
            file_id: raw.file_id,
        }
    }
}
