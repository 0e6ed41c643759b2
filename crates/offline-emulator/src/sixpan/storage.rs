//! The drive's files, the blobs behind them (one per etag, shared by every file of that
//! etag: what makes a second upload instant), upload tokens (`/v1/store/token`), and
//! the storage service under `/wcs`, in the style of Wangsu WCS:
//!
//! - `POST /wcs/file/upload`: a multipart form (`token`, optional `key`, `mimeType`,
//!   `deadline`, `x:<name>` fields, and `file` last) → `{"hash", "key"}`;
//! - `POST /wcs/mkblk/{blockSize}/{blockIndex}` with the block's first chunk →
//!   `{"ctx", "offset"}`; `POST /wcs/bput/{ctx}/{offset}` with the next chunk → a new
//!   `{"ctx", "offset"}`; `POST /wcs/mkfile/{fileSize}` with the last `ctx` of every
//!   block joined by `,` → `{"hash", "key"}`. These need `Authorization: <upload
//!   token>` (no `Bearer`) and `UploadBatch: <uuid>`.
//!
//! Blocks are kept on disk under `<data_dir>/6pan/blocks` until `mkfile` assembles
//! them; blobs live in `<data_dir>/6pan/blobs/<etag>` (or where a task downloaded them).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use offline_proto::qetag::{qetag, Etag, Qetag, BLOCK_SIZE};
use offline_proto::sixpan::{ChunkStored, EndpointId, FileStored, StoredFile, UploadInfo};
use offline_proto::Secret;
use serde::Deserialize;
use serde_json::{json, Value};
use sha1::Sha1;
use tokio::io::AsyncWriteExt;
use tracing::{debug, info};

use super::{
    conform, header_text, md5_hex, normalize_folder, parse_json, to_value, Answer, ApiError,
    SixpanState, DESCRIPTION,
};
use crate::common::body::{read_body, BodyError};
use crate::common::fetch::remove_quietly;
use crate::common::{hex, is_uuid, json_response, lock, random_hex};

/// Where the storage service is mounted.
pub(super) const PREFIX: &str = "/wcs";
/// The largest form upload body: one block plus room for the other fields.
const FORM_LIMIT: usize = BLOCK_SIZE + 1024 * 1024;
/// The largest chunk body.
const CHUNK_LIMIT: usize = BLOCK_SIZE;
/// The largest `mkfile` body (the ctx list).
const MKFILE_LIMIT: usize = 1024 * 1024;
/// Folder names under `<data_dir>/6pan`.
const BLOBS: &str = "blobs";
const BLOCKS: &str = "blocks";
const TMP: &str = "tmp";

/// A stored blob.
#[derive(Debug, Clone)]
pub(super) struct Blob {
    pub(super) path: PathBuf,
    pub(super) size: u64,
}

/// A file in the drive.
#[derive(Debug, Clone)]
struct DriveFile {
    uuid: String,
    etag: Etag,
    folder: String,
    name: String,
    size: u64,
    ctime: i64,
    lft: i64,
}

/// What an upload token is for.
#[derive(Debug, Clone)]
struct PendingUpload {
    name: String,
    folder: String,
    deadline_ms: i64,
    save_key: String,
}

/// A block being uploaded.
#[derive(Debug, Clone)]
struct Block {
    batch: String,
    index: u64,
    size: u64,
    written: u64,
    /// The only ctx that continues or finishes the block.
    ctx: String,
    path: PathBuf,
    /// A chunk is being written, or `mkfile` is assembling it.
    busy: bool,
}

/// The drive, the blobs, and the uploads in progress.
#[derive(Debug, Default)]
pub(super) struct Store {
    blobs: HashMap<String, Blob>,
    files: Vec<DriveFile>,
    uploads: HashMap<String, PendingUpload>,
    blocks: HashMap<String, Block>,
    /// The latest ctx of each block → the block's ID.
    ctxs: HashMap<String, String>,
}

/// `POST /v1/store/token` body. The generated `StoreTokenRequest` reads `hash` as a
/// bare 28-character etag; this one also takes the base-36 size suffix of later
/// generations, as the description allows.
#[derive(Debug, Deserialize)]
struct StoreTokenBody {
    name: String,
    #[serde(default)]
    hash: Option<String>,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    path: Option<String>,
}

/// `POST /v2/upload/token` body `{name, path | identity, hash}`, read as leniently as
/// [`StoreTokenBody`] (the etag may carry its size suffix).
#[derive(Debug, Deserialize)]
struct UploadTokenBody {
    name: String,
    #[serde(default)]
    hash: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    identity: Option<String>,
}

/// What a token call settles: the file created at once, or a pending upload.
enum Issued {
    Instant(Box<StoredFile>),
    Upload {
        token: String,
        upload_url: String,
        folder: String,
    },
}

/// A token call's `name` (not empty) and `hash` (absent or empty: none).
fn name_and_etag<'a>(
    name: &'a str,
    hash: Option<&str>,
) -> Result<(&'a str, Option<Etag>), ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::parameter("name is required"));
    }
    let etag = hash
        .filter(|h| !h.trim().is_empty())
        .map(parse_etag)
        .transpose()
        .map_err(ApiError::parameter)?;
    Ok((name, etag))
}

/// An etag, optionally followed by its size in base 36.
pub(super) fn parse_etag(text: &str) -> Result<Etag, String> {
    let text = text.trim();
    let bare = match text.get(..28) {
        Some(head)
            if text.len() > 28
                && text[28..]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()) =>
        {
            head
        }
        _ => text,
    };
    bare.parse::<Etag>()
        .map_err(|e| format!("invalid hash {text:?}: {e}"))
}

impl SixpanState {
    /// The blob of `etag` (a bare etag, or one with a size suffix).
    pub(super) fn blob(&self, etag: &str) -> Option<Blob> {
        let etag = parse_etag(etag).ok()?;
        lock(&self.store).blobs.get(etag.as_str()).cloned()
    }

    /// Records a blob unless one of the same etag is stored; the path that holds it.
    pub(super) fn add_blob(&self, etag: Etag, path: PathBuf, size: u64) -> PathBuf {
        lock(&self.store)
            .blobs
            .entry(etag.as_str().to_owned())
            .or_insert(Blob { path, size })
            .path
            .clone()
    }

    /// Bytes of every file in the drive.
    pub(super) fn drive_bytes(&self) -> u64 {
        lock(&self.store).files.iter().map(|f| f.size).sum()
    }

    /// Creates a file of a stored etag in the drive.
    pub(super) fn create_file(
        &self,
        etag: Etag,
        folder: &str,
        name: &str,
        size: u64,
    ) -> StoredFile {
        let mut store = lock(&self.store);
        let lft = i64::try_from(store.files.len()).unwrap_or(i64::MAX / 4) * 2 + 2;
        let file = DriveFile {
            uuid: random_hex(16),
            etag,
            folder: folder.to_owned(),
            name: name.to_owned(),
            size,
            ctime: self.env.now_ms(),
            lft,
        };
        store.files.push(file.clone());
        drop(store);
        debug!(folder, name, etag = %etag, "6pan file created");
        self.stored_file(&file)
    }

    fn stored_file(&self, file: &DriveFile) -> StoredFile {
        let ext = file
            .name
            .rfind('.')
            .filter(|i| *i > 0)
            .map(|i| file.name[i..].to_owned())
            .unwrap_or_default();
        StoredFile {
            uuid: file.uuid.clone(),
            store_id: file.etag,
            user_id: Some(self.user.id),
            path_id: Some(md5_hex(
                format!("path:{}/{}", file.folder, file.name).as_bytes(),
            )),
            lft: Some(file.lft),
            rgt: Some(file.lft + 1),
            path: Some(file.folder.clone()),
            name: file.name.clone(),
            ext: Some(ext),
            size: file.size,
            parent: Some(folder_uuid(&file.folder)),
            file_type: Some(0),
            atime: Some(file.ctime),
            ctime: Some(file.ctime),
            mtime: Some(0),
            version: Some(0),
            locking: Some(false),
        }
    }

    /// Moves a finished temporary file into the blob store (or drops it when the etag
    /// is stored already); the blob's path.
    async fn keep_blob(&self, tmp: PathBuf, etag: Etag, size: u64) -> Result<PathBuf, String> {
        if let Some(existing) = self.blob(etag.as_str()) {
            remove_quietly(&tmp).await;
            return Ok(existing.path);
        }
        let dir = self.dir(BLOBS);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| format!("cannot store the file: {e}"))?;
        let path = dir.join(etag.as_str());
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| format!("cannot store the file: {e}"))?;
        Ok(self.add_blob(etag, path, size))
    }

    /// A fresh temporary path under `<data_dir>/6pan/tmp`.
    async fn tmp_path(&self) -> Result<PathBuf, String> {
        let dir = self.dir(TMP);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| format!("cannot store the file: {e}"))?;
        Ok(dir.join(random_hex(16)))
    }

    /// `POST /v1/store/token`: the created file when `hash` is stored, else an upload
    /// token.
    pub(super) async fn store_token(&self, body: &[u8], host: Option<&str>) -> Answer {
        let (request, json): (StoreTokenBody, _) = parse_json(body)?;
        let (name, etag) = name_and_etag(&request.name, request.hash.as_deref())?;
        conform(EndpointId::StoreToken, &json)?;
        let folder = match (
            request.path.as_deref().map(str::trim),
            request.parent.as_deref().map(str::trim),
        ) {
            (Some(path), _) if !path.is_empty() => normalize_folder(path),
            (_, Some(":torrent")) => ":torrent".to_owned(),
            _ => "/".to_owned(),
        };
        match self.issue(name, etag, folder, host) {
            Issued::Instant(file) => to_value(&file),
            Issued::Upload {
                token,
                upload_url,
                folder,
            } => to_value(&UploadInfo {
                token: Secret::new(token),
                upload_url,
                upload_type: Some(0),
                version: Some(1),
                name: Some(name.to_owned()),
                parent: Some(folder),
                user_id: Some(self.user.id),
            }),
        }
    }

    /// `POST /v2/upload/token` (what every v2 client calls): `{hashCached: true}` when
    /// `hash` is stored (the file is created at once, as for `/v1/store/token`), else
    /// `{hashCached: false, uploadInfo: {uploadToken, type, uploadUrl, filePath}}`. The
    /// folder is `path`; an `identity` (a folder UUID, which the emulator's folders do
    /// not have) other than `:torrent` is the root.
    pub(super) async fn upload_token(&self, body: &[u8], host: Option<&str>) -> Answer {
        let (request, json): (UploadTokenBody, _) = parse_json(body)?;
        let (name, etag) = name_and_etag(&request.name, request.hash.as_deref())?;
        conform(EndpointId::UploadToken, &json)?;
        let folder = match (
            request.path.as_deref().map(str::trim),
            request.identity.as_deref().map(str::trim),
        ) {
            (Some(path), _) if !path.is_empty() => normalize_folder(path),
            (_, Some(":torrent")) => ":torrent".to_owned(),
            _ => "/".to_owned(),
        };
        Ok(match self.issue(name, etag, folder, host) {
            Issued::Instant(_) => json!({ "hashCached": true }),
            Issued::Upload {
                token,
                upload_url,
                folder,
            } => json!({
                "hashCached": false,
                "uploadInfo": {
                    "uploadToken": token,
                    "type": 0,
                    "uploadUrl": upload_url,
                    "filePath": format!("{}/{name}", folder.trim_end_matches('/')),
                },
            }),
        })
    }

    /// Creates the file at once when `etag` is stored (an instant upload), else
    /// records a pending upload into `folder` and mints its token.
    fn issue(&self, name: &str, etag: Option<Etag>, folder: String, host: Option<&str>) -> Issued {
        if let Some(etag) = etag {
            if let Some(blob) = self.blob(etag.as_str()) {
                let file = self.create_file(etag, &folder, name, blob.size);
                self.instant_uploads.fetch_add(1, Ordering::Relaxed);
                info!(etag = %etag, "6pan instant upload");
                return Issued::Instant(Box::new(file));
            }
        }
        let deadline_ms = self.env.now_ms().saturating_add(
            i64::try_from(self.upload_token_lifetime.as_millis()).unwrap_or(i64::MAX),
        );
        let save_key = format!("user-upload/{}/{}.tmp", self.user.id, random_hex(8));
        let token = self.mint_upload_token(deadline_ms, &save_key);
        let mut store = lock(&self.store);
        let now = self.env.now_ms();
        store.uploads.retain(|_, u| u.deadline_ms > now);
        store.uploads.insert(
            token.clone(),
            PendingUpload {
                name: name.to_owned(),
                folder: folder.clone(),
                deadline_ms,
                save_key,
            },
        );
        drop(store);
        let host = host.filter(|h| !h.is_empty()).unwrap_or("127.0.0.1");
        Issued::Upload {
            token,
            upload_url: format!("http://{host}{PREFIX}"),
            folder,
        }
    }

    /// `AccessKey:EncodedSign:EncodedPutPolicy`, Qiniu style: the policy is URL-safe
    /// base64 JSON, the sign URL-safe base64 of the hex HMAC-SHA1 of the encoded policy.
    fn mint_upload_token(&self, deadline_ms: i64, save_key: &str) -> String {
        let policy = json!({
            "scope": "offline-emulator",
            "deadline": deadline_ms,
            "overwrite": 1,
            "fsizeLimit": 0,
            "saveKey": save_key,
            "returnBody": "hash=$(hash)&key=$(key)",
        });
        let encoded_policy = URL_SAFE.encode(policy.to_string());
        let sign = match Hmac::<Sha1>::new_from_slice(&self.keys.upload) {
            Ok(mut mac) => {
                mac.update(encoded_policy.as_bytes());
                hex(&mac.finalize().into_bytes())
            }
            // HMAC takes keys of any length; not reached.
            Err(_) => random_hex(20),
        };
        format!(
            "{}:{}:{encoded_policy}",
            self.keys.access_key,
            URL_SAFE.encode(sign)
        )
    }

    /// The pending upload of a token, if the token is known and not past its deadline.
    /// The static token ([`EmulatorConfig::static_token`](crate::EmulatorConfig::static_token))
    /// is always valid: it uploads a file named `upload-<hex>` to the root folder.
    fn upload_of(&self, token: &str) -> Result<PendingUpload, StorageError> {
        if self.env.is_static_token(token.trim()) {
            return Ok(PendingUpload {
                name: format!("upload-{}", random_hex(4)),
                folder: "/".to_owned(),
                deadline_ms: i64::MAX,
                save_key: format!("user-upload/{}/{}.tmp", self.user.id, random_hex(8)),
            });
        }
        let upload = lock(&self.store)
            .uploads
            .get(token.trim())
            .cloned()
            .ok_or_else(|| StorageError::unauthorized("unknown upload token"))?;
        if self.env.now_ms() >= upload.deadline_ms {
            return Err(StorageError::unauthorized("upload token expired"));
        }
        Ok(upload)
    }

    /// Creates the file of a finished upload: stores the blob, then the drive file.
    async fn finish_upload(
        &self,
        upload: &PendingUpload,
        tmp: PathBuf,
        etag: Etag,
        size: u64,
    ) -> Result<(), StorageError> {
        self.keep_blob(tmp, etag, size)
            .await
            .map_err(StorageError::internal)?;
        self.create_file(etag, &upload.folder, &upload.name, size);
        info!(etag = %etag, size, "6pan upload stored");
        Ok(())
    }
}

/// The UUID of a folder: stable per path.
fn folder_uuid(folder: &str) -> String {
    md5_hex(format!("folder:{folder}").as_bytes())
}

/// An error of the storage service: `{"code": <HTTP status>, "message"}`.
#[derive(Debug)]
pub(super) struct StorageError {
    status: StatusCode,
    message: String,
}

impl StorageError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<BodyError> for StorageError {
    fn from(e: BodyError) -> Self {
        let status = match e {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Read(_) => StatusCode::BAD_REQUEST,
        };
        Self::new(status, e.message())
    }
}

/// Answers a storage call.
pub(super) async fn handle(
    state: &Arc<SixpanState>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let rest = path.strip_prefix(PREFIX).unwrap_or_default();
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let known = matches!(
        segments.as_slice(),
        ["file", "upload"] | ["mkblk", _, _] | ["bput", _, _] | ["mkfile", _, ..] | ["_baseline"]
    );
    let result = if !known {
        Err(StorageError::new(
            StatusCode::NOT_FOUND,
            format!("no such storage API: {path}"),
        ))
    } else if req.method() != Method::POST {
        Err(StorageError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {} not allowed; use POST", req.method()),
        ))
    } else {
        match segments.as_slice() {
            ["file", "upload"] => form_upload(state, req).await,
            ["_baseline"] => baseline(state, req).await,
            ["mkblk", size, index] => {
                let (size, index) = ((*size).to_owned(), (*index).to_owned());
                make_block(state, req, &size, &index).await
            }
            ["bput", ctx, offset] => {
                let (ctx, offset) = ((*ctx).to_owned(), (*offset).to_owned());
                put_chunk(state, req, &ctx, &offset).await
            }
            ["mkfile", size, ..] => {
                let size = (*size).to_owned();
                make_file(state, req, &size).await
            }
            _ => Err(StorageError::new(
                StatusCode::NOT_FOUND,
                "no such storage API",
            )),
        }
    };
    match result {
        Ok(body) => json_response(StatusCode::OK, body.to_string()),
        Err(e) => {
            debug!(%path, status = e.status.as_u16(), message = %e.message, "storage call refused");
            json_response(
                e.status,
                json!({"code": e.status.as_u16(), "message": e.message}).to_string(),
            )
        }
    }
}

type Stored = Result<Value, StorageError>;

fn encode<T: serde::Serialize>(value: &T) -> Stored {
    serde_json::to_value(value)
        .map_err(|e| StorageError::internal(format!("cannot encode the answer: {e}")))
}

/// `POST /wcs/file/upload`: one multipart form with the whole file.
async fn form_upload(state: &Arc<SixpanState>, req: Request<Incoming>) -> Stored {
    let content_type = header_text(req.headers(), CONTENT_TYPE.as_str())
        .unwrap_or("")
        .to_owned();
    let boundary = multer::parse_boundary(&content_type).map_err(|_| {
        StorageError::bad("Content-Type must be multipart/form-data with a boundary")
    })?;
    let body = read_body(req, FORM_LIMIT).await?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut token: Option<String> = None;
    let mut key: Option<String> = None;
    let mut file: Option<Bytes> = None;
    // Every field as text, for the description check (the file as its name only).
    let mut fields: Vec<(String, String)> = Vec::new();
    loop {
        let field = form
            .next_field()
            .await
            .map_err(|e| StorageError::bad(format!("invalid multipart form: {e}")))?;
        let Some(field) = field else { break };
        let name = field.name().unwrap_or_default().to_owned();
        if file.is_some() {
            return Err(StorageError::bad(format!(
                "`file` must be the last field of the form; found `{name}` after it"
            )));
        }
        let read_error =
            |e: multer::Error| StorageError::bad(format!("invalid form field `{name}`: {e}"));
        if name == "file" {
            file = Some(field.bytes().await.map_err(read_error)?);
            fields.push((name, String::new()));
            continue;
        }
        let text = field.text().await.map_err(read_error)?;
        match name.as_str() {
            "token" => token = Some(text.clone()),
            "key" => key = Some(text.clone()),
            // `mimeType`, `deadline`, `x:<name>` variables and anything else: read and
            // not needed.
            _ => {}
        }
        fields.push((name, text));
    }
    let token = token
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| StorageError::unauthorized("the form has no `token` field"))?;
    let upload = state.upload_of(&token)?;
    let file = file.ok_or_else(|| StorageError::bad("the form has no `file` field"))?;
    let endpoint = EndpointId::Upload;
    DESCRIPTION
        .check_form(&endpoint.method(), endpoint.path(), &content_type, &fields)
        .map_err(StorageError::bad)?;
    let etag = qetag(&file);
    let size = file.len() as u64;
    let tmp = state.tmp_path().await.map_err(StorageError::internal)?;
    tokio::fs::write(&tmp, &file)
        .await
        .map_err(|e| StorageError::internal(format!("cannot store the file: {e}")))?;
    state.finish_upload(&upload, tmp, etag, size).await?;
    encode(&FileStored {
        hash: etag,
        key: Some(key.filter(|k| !k.is_empty()).unwrap_or(upload.save_key)),
    })
}

/// `POST /wcs/_baseline`, not a storage API: the raw request body, of any size, hashed
/// and written to a temporary file as it arrives, then removed; answers `{"hash",
/// "size"}`. The work of a form upload without the form and its size limit, for
/// `cargo xtask bench` to compare the block upload with `curl --data-binary @FILE`.
async fn baseline(state: &Arc<SixpanState>, req: Request<Incoming>) -> Stored {
    use http_body_util::BodyExt as _;
    let store = |e: std::io::Error| StorageError::internal(format!("cannot store the body: {e}"));
    let tmp = state.tmp_path().await.map_err(StorageError::internal)?;
    let mut hasher = Qetag::new();
    let written = async {
        let mut out = tokio::fs::File::create(&tmp).await.map_err(store)?;
        let mut body = req.into_body();
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| StorageError::bad(format!("cannot read the body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                hasher.update(&data);
                out.write_all(&data).await.map_err(store)?;
            }
        }
        out.flush().await.map_err(store)
    }
    .await;
    remove_quietly(&tmp).await;
    written?;
    let size = hasher.bytes_hashed();
    Ok(json!({"hash": hasher.finalize(), "size": size}))
}

/// The checks of every block call: a bare upload token in `Authorization`, an
/// `UploadBatch` UUID, and (for chunks) `Content-Type: application/octet-stream`.
fn block_auth(
    state: &SixpanState,
    headers: &HeaderMap,
    octet_stream: bool,
) -> Result<(String, PendingUpload, String), StorageError> {
    let value = header_text(headers, AUTHORIZATION.as_str())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            StorageError::unauthorized("missing header Authorization: <upload token>")
        })?;
    if value
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
    {
        return Err(StorageError::unauthorized(
            "Authorization must be the bare upload token, without `Bearer `",
        ));
    }
    let upload = state.upload_of(value)?;
    let batch = header_text(headers, "uploadbatch")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| StorageError::bad("missing header UploadBatch: <uuid>"))?;
    if !is_uuid(batch) {
        return Err(StorageError::bad(format!(
            "header UploadBatch must be a UUID, got {batch:?}"
        )));
    }
    let content_type = header_text(headers, CONTENT_TYPE.as_str()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if octet_stream {
        if !essence.eq_ignore_ascii_case("application/octet-stream") {
            return Err(StorageError::bad(format!(
                "Content-Type must be application/octet-stream, got {content_type:?}"
            )));
        }
    } else if !essence.is_empty() && !essence.eq_ignore_ascii_case("text/plain") {
        return Err(StorageError::bad(format!(
            "Content-Type must be text/plain;charset=UTF-8, got {content_type:?}"
        )));
    }
    Ok((value.to_owned(), upload, batch.to_ascii_lowercase()))
}

/// The description's checks of a block call, after the emulator's own: its path
/// parameters (`path` is the path below `/wcs`) and header parameters (`UploadBatch`).
fn conform_call(endpoint: EndpointId, path: &str, headers: &HeaderMap) -> Result<(), StorageError> {
    let method = endpoint.method();
    DESCRIPTION
        .check_path(&method, path)
        .map_err(StorageError::bad)?;
    DESCRIPTION
        .check_headers(&method, endpoint.path(), headers)
        .map_err(StorageError::bad)
}

fn parse_number(what: &str, text: &str) -> Result<u64, StorageError> {
    text.parse::<u64>().map_err(|_| {
        StorageError::bad(format!(
            "{what} must be a non-negative integer, got {text:?}"
        ))
    })
}

/// The checks of a chunk call (`mkblk`, `bput`) and its body: the upload batch and
/// the chunk, not empty.
async fn read_chunk(
    state: &SixpanState,
    req: Request<Incoming>,
    endpoint: EndpointId,
) -> Result<(String, Bytes), StorageError> {
    let (_, _, batch) = block_auth(state, req.headers(), true)?;
    conform_call(endpoint, &below_prefix(&req), req.headers())?;
    let chunk = read_body(req, CHUNK_LIMIT).await?;
    if chunk.is_empty() {
        return Err(StorageError::bad("the chunk is empty"));
    }
    Ok((batch, chunk))
}

/// `POST /wcs/mkblk/{blockSize}/{blockIndex}`: a new block with its first chunk.
async fn make_block(
    state: &Arc<SixpanState>,
    req: Request<Incoming>,
    size: &str,
    index: &str,
) -> Stored {
    let size = parse_number("blockSize", size)?;
    let index = parse_number("blockIndex", index)?;
    if size == 0 || size > BLOCK_SIZE as u64 {
        return Err(StorageError::bad(format!(
            "blockSize must be between 1 and {BLOCK_SIZE}, got {size}"
        )));
    }
    let (batch, chunk) = read_chunk(state, req, EndpointId::MakeBlock).await?;
    let len = chunk.len() as u64;
    if len > size {
        return Err(StorageError::bad(format!(
            "the chunk ({len} bytes) is larger than the block ({size} bytes)"
        )));
    }
    let dir = state.dir(BLOCKS);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| StorageError::internal(format!("cannot store the chunk: {e}")))?;
    let id = random_hex(16);
    let path = dir.join(&id);
    tokio::fs::write(&path, &chunk)
        .await
        .map_err(|e| StorageError::internal(format!("cannot store the chunk: {e}")))?;
    let ctx = new_ctx();
    {
        let mut store = lock(&state.store);
        store.ctxs.insert(ctx.clone(), id.clone());
        store.blocks.insert(
            id,
            Block {
                batch,
                index,
                size,
                written: len,
                ctx: ctx.clone(),
                path,
                busy: false,
            },
        );
    }
    state.uploaded_chunks.fetch_add(1, Ordering::Relaxed);
    encode(&ChunkStored { ctx, offset: len })
}

/// The request's path below [`PREFIX`] (`/mkblk/4/0` of `/wcs/mkblk/4/0`), as the
/// description names the storage calls.
fn below_prefix<B>(req: &Request<B>) -> String {
    let path = req.uri().path();
    path.strip_prefix(PREFIX).unwrap_or(path).to_owned()
}

/// A fresh opaque ctx (URL-safe, so it fits in a path segment).
fn new_ctx() -> String {
    format!("ctx-{}", random_hex(24))
}

/// `POST /wcs/bput/{ctx}/{offset}`: the next chunk of a block.
async fn put_chunk(
    state: &Arc<SixpanState>,
    req: Request<Incoming>,
    ctx: &str,
    offset: &str,
) -> Stored {
    let offset = parse_number("offset", offset)?;
    let (batch, chunk) = read_chunk(state, req, EndpointId::PutChunk).await?;
    let len = chunk.len() as u64;
    let (id, path) = {
        let mut store = lock(&state.store);
        let id = store
            .ctxs
            .get(ctx)
            .cloned()
            .ok_or_else(|| StorageError::bad("unknown or superseded ctx"))?;
        let block = store
            .blocks
            .get_mut(&id)
            .ok_or_else(|| StorageError::bad("unknown or superseded ctx"))?;
        if block.batch != batch {
            return Err(StorageError::bad("the ctx belongs to another UploadBatch"));
        }
        if block.busy {
            return Err(StorageError::bad(
                "another chunk of this block is being stored",
            ));
        }
        if offset != block.written {
            return Err(StorageError::bad(format!(
                "offset {offset} does not match the {} bytes the block holds",
                block.written
            )));
        }
        if block.written + len > block.size {
            return Err(StorageError::bad(format!(
                "the chunk ({len} bytes at offset {offset}) goes past the block size ({} bytes)",
                block.size
            )));
        }
        block.busy = true;
        (id, block.path.clone())
    };
    let written = append(&path, &chunk).await;
    let mut store = lock(&state.store);
    let Some(block) = store.blocks.get_mut(&id) else {
        return Err(StorageError::bad("the block was finished meanwhile"));
    };
    block.busy = false;
    written.map_err(|e| StorageError::internal(format!("cannot store the chunk: {e}")))?;
    block.written += len;
    let old = std::mem::replace(&mut block.ctx, new_ctx());
    let new = block.ctx.clone();
    let offset = block.written;
    store.ctxs.remove(&old);
    store.ctxs.insert(new.clone(), id);
    drop(store);
    state.uploaded_chunks.fetch_add(1, Ordering::Relaxed);
    encode(&ChunkStored { ctx: new, offset })
}

async fn append(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .await?;
    file.write_all(data).await?;
    file.flush().await
}

/// `POST /wcs/mkfile/{fileSize}`: assembles the blocks named by their last ctx.
async fn make_file(state: &Arc<SixpanState>, req: Request<Incoming>, size: &str) -> Stored {
    let size = parse_number("fileSize", size)?;
    let (_, upload, batch) = block_auth(state, req.headers(), false)?;
    let endpoint = EndpointId::MakeFile;
    conform_call(endpoint, &below_prefix(&req), req.headers())?;
    let content_type = header_text(req.headers(), CONTENT_TYPE.as_str())
        .filter(|c| !c.is_empty())
        .unwrap_or("text/plain")
        .to_owned();
    let body = read_body(req, MKFILE_LIMIT).await?;
    let text =
        std::str::from_utf8(&body).map_err(|_| StorageError::bad("the ctx list is not UTF-8"))?;
    DESCRIPTION
        .check_body_as(
            &endpoint.method(),
            endpoint.path(),
            &content_type,
            &Value::from(text),
        )
        .map_err(StorageError::bad)?;
    let ctxs: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if ctxs.is_empty() && size != 0 {
        return Err(StorageError::bad("the ctx list is empty"));
    }
    let ids = {
        let mut store = lock(&state.store);
        let mut ids = Vec::with_capacity(ctxs.len());
        let mut total: u64 = 0;
        for (i, ctx) in ctxs.iter().enumerate() {
            let id = store.ctxs.get(*ctx).cloned().ok_or_else(|| {
                StorageError::bad(format!("ctx #{i} is unknown or not the last of its block"))
            })?;
            let Some(block) = store.blocks.get(&id) else {
                return Err(StorageError::bad(format!("ctx #{i} is unknown")));
            };
            if block.batch != batch {
                return Err(StorageError::bad(format!(
                    "ctx #{i} belongs to another UploadBatch"
                )));
            }
            if block.busy {
                return Err(StorageError::bad(format!("block #{i} is busy")));
            }
            if block.index != i as u64 {
                return Err(StorageError::bad(format!(
                    "ctx #{i} is of block {}; list the blocks in order from 0",
                    block.index
                )));
            }
            if block.written != block.size {
                return Err(StorageError::bad(format!(
                    "block #{i} is incomplete: {} of {} bytes",
                    block.written, block.size
                )));
            }
            if i + 1 < ctxs.len() && block.size != BLOCK_SIZE as u64 {
                return Err(StorageError::bad(format!(
                    "block #{i} holds {} bytes; every block but the last must hold {BLOCK_SIZE}",
                    block.size
                )));
            }
            total += block.size;
            ids.push(id);
        }
        if total != size {
            return Err(StorageError::bad(format!(
                "the blocks hold {total} bytes, not fileSize {size}"
            )));
        }
        for id in &ids {
            if let Some(block) = store.blocks.get_mut(id) {
                block.busy = true;
            }
        }
        ids
    };
    let paths: Vec<PathBuf> = {
        let store = lock(&state.store);
        ids.iter()
            .filter_map(|id| store.blocks.get(id).map(|b| b.path.clone()))
            .collect()
    };
    let assembled = assemble(state, &paths).await;
    let (tmp, etag) = match assembled {
        Ok(done) => done,
        Err(e) => {
            let mut store = lock(&state.store);
            for id in &ids {
                if let Some(block) = store.blocks.get_mut(id) {
                    block.busy = false;
                }
            }
            return Err(StorageError::internal(e));
        }
    };
    {
        let mut store = lock(&state.store);
        for id in &ids {
            if let Some(block) = store.blocks.remove(id) {
                store.ctxs.remove(&block.ctx);
            }
        }
    }
    for path in &paths {
        remove_quietly(path).await;
    }
    state.finish_upload(&upload, tmp, etag, size).await?;
    encode(&FileStored {
        hash: etag,
        key: Some(upload.save_key),
    })
}

/// Concatenates the block files into a temporary file, hashing on the way.
async fn assemble(state: &SixpanState, blocks: &[PathBuf]) -> Result<(PathBuf, Etag), String> {
    let tmp = state.tmp_path().await?;
    let mut out = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| format!("cannot assemble the file: {e}"))?;
    let mut hasher = Qetag::new();
    for path in blocks {
        let data = tokio::fs::read(path)
            .await
            .map_err(|e| format!("cannot read a block: {e}"))?;
        hasher.update(&data);
        out.write_all(&data)
            .await
            .map_err(|e| format!("cannot assemble the file: {e}"))?;
    }
    out.flush()
        .await
        .map_err(|e| format!("cannot assemble the file: {e}"))?;
    Ok((tmp, hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_with_and_without_size_suffix() {
        let etag = qetag(b"abc");
        assert_eq!(parse_etag(etag.as_str()).unwrap(), etag);
        assert_eq!(parse_etag(&format!("{etag}2s")).unwrap(), etag);
        assert!(parse_etag("nope").is_err());
        assert!(parse_etag(&format!("{etag}X")).is_err());
    }
}
