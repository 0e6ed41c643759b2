//! The 6pan storage upload: the request encoders and answer decoders of
//! `sixpan::storage`, and the `sixpan::upload::UploadPlan` state machine driven to the
//! end against a fake storage service written here in plain Rust (no network).
//!
//! The fake keeps one byte buffer per block it was asked to make and a table from
//! every `ctx` it handed out to (buffer, length), so an old ctx can be used again (a
//! chunk re-sent after a lost answer); `mkfile` concatenates the blocks named by the
//! ctxs and answers their etag, computed with `offline_proto::qetag`. Most tests go
//! through the real encoders and decoders: the driver builds each step's
//! `http::Request` with `Step::storage_request`, the fake parses it (path, headers,
//! multipart body) and answers an `http::Response` with a JSON body, and the driver
//! decodes it with `decode_chunk_stored` / `decode_file_stored`.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http::{header, StatusCode};
use offline_proto::qetag::{qetag, Etag, Qetag, BLOCK_SIZE};
use offline_proto::retry::Attempt;
use offline_proto::sixpan::storage::{
    self, decode_chunk_stored, decode_file_stored, make_block_request, make_file_request,
    new_batch_id, put_chunk_request, upload_request, upload_request_with_boundary, UPLOAD_BATCH,
    UPLOAD_BATCH_HEADER,
};
use offline_proto::sixpan::upload::{
    GiveUp, Output, Step, StepId, Ticket, UploadConfig, UploadError, UploadPlan, UploadPolicy,
};
use offline_proto::sixpan::{
    ChunkStored, EndpointId, FileStored, StoreTokenRequest, StoreTokenResult, StoredFile,
    UploadInfo,
};
use offline_proto::{ApiError, Code, DecodeErrorKind, EncodeError, HttpRequest, HttpResponse};
use offline_proto::{Secret, TransportError, TransportErrorKind, ValidationError};
use proptest::prelude::*;

mod common;
use common::proptest_config::persisted;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
const BLOCK: u64 = BLOCK_SIZE as u64;
/// An upload URL with a proxy prefix and the form path, as seed 001 shows it.
const UPLOAD_URL: &str = "http://127.0.0.1:9/wcs/file/upload";

fn policy_token(policy: &str) -> String {
    let encoded = base64::engine::general_purpose::URL_SAFE.encode(policy);
    format!("ak:c2lnbg==:{encoded}")
}

fn token() -> String {
    policy_token(r#"{"scope":"other-storage"}"#)
}

fn batch() -> String {
    new_batch_id(42)
}

/// Deterministic pseudo-random bytes.
fn data_of(size: u64, seed: u64) -> Bytes {
    let mut state = seed ^ 0x5DEE_CE66_D1CE_4E5B;
    let mut out = Vec::with_capacity(size as usize + 8);
    while (out.len() as u64) < size {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(size as usize);
    Bytes::from(out)
}

fn upload_info(token: &str, url: &str) -> StoreTokenResult {
    StoreTokenResult::Upload(UploadInfo {
        token: Secret::new(token),
        upload_url: url.into(),
        upload_type: Some(0),
        version: Some(1),
        name: None,
        parent: None,
        user_id: None,
    })
}

fn stored_file(etag: Etag, name: &str, size: u64) -> StoredFile {
    StoredFile {
        uuid: "0233a0a43b594fab8890b2f8359595bd".into(),
        store_id: etag,
        user_id: Some(5),
        path_id: None,
        lft: None,
        rgt: None,
        path: Some(":torrent".into()),
        name: name.into(),
        ext: None,
        size,
        parent: None,
        file_type: Some(0),
        atime: None,
        ctime: None,
        mtime: None,
        version: None,
        locking: Some(false),
    }
}

fn plan_for(data: &[u8], config: UploadConfig) -> UploadPlan {
    UploadPlan::new(
        "file.bin".into(),
        Some(":torrent".into()),
        None,
        data.len() as u64,
        qetag(data),
        config,
    )
}

fn config(chunk_size: u64, in_flight: usize) -> UploadConfig {
    UploadConfig {
        chunk_size: chunk_size as u32,
        max_blocks_in_flight: in_flight,
        ..UploadConfig::default()
    }
}

// ---------------------------------------------------------------------------------
// The fake storage service
// ---------------------------------------------------------------------------------

/// An error answer of the fake: HTTP status and `{code, message}`.
type Refusal = (u16, String);

#[derive(Default)]
struct FakeStorage {
    /// The upload token it accepts.
    token: String,
    /// Etags of the files it holds (for instant uploads).
    held: HashSet<Etag>,
    /// One buffer per `mkblk` (and per branch from an old ctx).
    buffers: Vec<Vec<u8>>,
    /// ctx → (buffer, bytes of the buffer it stands for, block size).
    ctxs: HashMap<String, (usize, u64, u64)>,
    /// Answer a wrong hash to `mkfile` and the form upload.
    wrong_hash: bool,
    /// Add this to every chunk answer's offset.
    offset_skew: u64,
    /// Refuse an older ctx of a block once a newer one was handed out, as the real
    /// service (and the emulator) does; by default an old ctx branches off a copy.
    supersede: bool,
    /// Forget every ctx at the next this many `mkfile` calls (refusing them).
    forget_at_mkfile: u32,
    /// Every call, in order, for assertions.
    calls: Vec<String>,
    /// Batch IDs seen on block calls.
    batches: HashSet<String>,
}

impl FakeStorage {
    fn new(token: &str) -> Self {
        Self {
            token: token.into(),
            ..Self::default()
        }
    }

    fn mint_ctx(&mut self, buffer: usize, len: u64, block_size: u64) -> ChunkStored {
        // Characters that need care in a URL path: `/`, `+`, `=`.
        let ctx = format!("ctx/{buffer}+{len}==");
        self.ctxs.insert(ctx.clone(), (buffer, len, block_size));
        ChunkStored {
            ctx,
            offset: len + self.offset_skew,
        }
    }

    fn make_block(
        &mut self,
        block_size: u64,
        index: u64,
        data: &[u8],
    ) -> Result<ChunkStored, Refusal> {
        self.calls
            .push(format!("mkblk {block_size} {index} {}", data.len()));
        if data.is_empty() || data.len() as u64 > block_size || block_size > BLOCK {
            return Err((
                400,
                format!("bad block: size {block_size}, chunk {}", data.len()),
            ));
        }
        self.buffers.push(data.to_vec());
        let buffer = self.buffers.len() - 1;
        Ok(self.mint_ctx(buffer, data.len() as u64, block_size))
    }

    fn put_chunk(&mut self, ctx: &str, offset: u64, data: &[u8]) -> Result<ChunkStored, Refusal> {
        self.calls
            .push(format!("bput {ctx} {offset} {}", data.len()));
        let Some(&(mut buffer, len, block_size)) = self.ctxs.get(ctx) else {
            return Err((400, format!("unknown ctx {ctx}")));
        };
        if offset != len {
            return Err((400, format!("offset {offset}, but ctx holds {len} bytes")));
        }
        if len + data.len() as u64 > block_size {
            return Err((400, "chunk runs past the block".into()));
        }
        if self.buffers[buffer].len() as u64 != len {
            if self.supersede {
                return Err((400, format!("superseded ctx {ctx}")));
            }
            // An older ctx used again: branch off a copy of its prefix.
            let prefix = self.buffers[buffer][..len as usize].to_vec();
            self.buffers.push(prefix);
            buffer = self.buffers.len() - 1;
        }
        self.buffers[buffer].extend_from_slice(data);
        Ok(self.mint_ctx(buffer, len + data.len() as u64, block_size))
    }

    fn make_file(&mut self, size: u64, ctxs: &[&str]) -> Result<FileStored, Refusal> {
        self.calls.push(format!("mkfile {size} {}", ctxs.len()));
        if self.forget_at_mkfile > 0 {
            self.forget_at_mkfile -= 1;
            self.ctxs.clear();
        }
        let mut hasher = Qetag::new();
        for (i, ctx) in ctxs.iter().enumerate() {
            let Some(&(buffer, len, block_size)) = self.ctxs.get(*ctx) else {
                return Err((400, format!("unknown ctx {ctx}")));
            };
            if len != block_size {
                return Err((400, format!("block {i} incomplete: {len} of {block_size}")));
            }
            hasher.update(&self.buffers[buffer][..len as usize]);
        }
        if hasher.bytes_hashed() != size {
            return Err((
                400,
                format!("{} bytes, file size {size}", hasher.bytes_hashed()),
            ));
        }
        Ok(self.file_stored(hasher.finalize()))
    }

    fn upload(&mut self, token: &str, data: &[u8]) -> Result<FileStored, Refusal> {
        self.calls.push(format!("upload {}", data.len()));
        if token != self.token {
            return Err((401, "token invalid".into()));
        }
        Ok(self.file_stored(qetag(data)))
    }

    fn file_stored(&mut self, etag: Etag) -> FileStored {
        self.held.insert(etag);
        let hash = if self.wrong_hash {
            qetag(b"not the file")
        } else {
            etag
        };
        FileStored {
            hash,
            key: Some(format!("user-upload/{etag}")),
        }
    }

    /// The same calls over `http` values: checks the request, answers JSON.
    fn serve(&mut self, request: &HttpRequest) -> HttpResponse {
        match self.route(request) {
            Ok(body) => http::Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Bytes::from(body))
                .unwrap(),
            Err((status, message)) => http::Response::builder()
                .status(status)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Bytes::from(
                    serde_json::json!({"code": status, "message": message}).to_string(),
                ))
                .unwrap(),
        }
    }

    fn route(&mut self, request: &HttpRequest) -> Result<Vec<u8>, Refusal> {
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri().host(), Some("127.0.0.1"));
        let path = request.uri().path();
        let path = path
            .strip_prefix("/wcs/")
            .expect("the proxy prefix is kept");
        let segments: Vec<&str> = path.split('/').collect();
        let headers = request.headers();
        let content_type = headers[header::CONTENT_TYPE].to_str().unwrap();
        let body = request.body();
        if segments == ["file", "upload"] {
            assert!(headers.get(header::AUTHORIZATION).is_none());
            let form = parse_form(content_type, body);
            let names: Vec<&str> = form.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names.first(), Some(&"token"));
            assert_eq!(names.last(), Some(&"file"), "the file part is last");
            let token = String::from_utf8(form[0].value.clone()).unwrap();
            let file = form.last().unwrap();
            assert!(file.filename.is_some());
            let stored = self.upload(&token, &file.value)?;
            return Ok(serde_json::to_vec(&stored).unwrap());
        }
        let authorization = &headers[header::AUTHORIZATION];
        assert!(authorization.is_sensitive());
        assert!(!authorization.to_str().unwrap().starts_with("Bearer"));
        if authorization != self.token.as_str() {
            return Err((401, "token invalid".into()));
        }
        let batch = headers[UPLOAD_BATCH].to_str().unwrap();
        self.batches.insert(batch.to_owned());
        let number = |s: &str| s.parse::<u64>().expect("a number in the path");
        let answer = match segments[..] {
            ["mkblk", size, index] => {
                assert_eq!(content_type, "application/octet-stream");
                serde_json::to_vec(&self.make_block(number(size), number(index), body)?)
            }
            ["bput", ctx, offset] => {
                assert_eq!(content_type, "application/octet-stream");
                let ctx = percent_decode(ctx);
                serde_json::to_vec(&self.put_chunk(&ctx, number(offset), body)?)
            }
            ["mkfile", size] => {
                assert_eq!(content_type, "text/plain;charset=UTF-8");
                let text = std::str::from_utf8(body).unwrap();
                let ctxs: Vec<&str> = text.split(',').collect();
                serde_json::to_vec(&self.make_file(number(size), &ctxs)?)
            }
            _ => return Err((404, format!("no route {path}"))),
        };
        Ok(answer.unwrap())
    }
}

struct FormPart {
    name: String,
    filename: Option<String>,
    value: Vec<u8>,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A strict reader of the multipart bodies the encoder writes.
fn parse_form(content_type: &str, body: &[u8]) -> Vec<FormPart> {
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .expect("a multipart content type")
        .trim_matches('"');
    let delimiter = format!("\r\n--{boundary}");
    let first = format!("--{boundary}");
    let mut rest = body
        .strip_prefix(first.as_bytes())
        .expect("starts with the boundary");
    let mut parts = Vec::new();
    loop {
        if rest == b"--\r\n" {
            return parts;
        }
        rest = rest.strip_prefix(b"\r\n").expect("CRLF after a delimiter");
        let head_end = find(rest, b"\r\n\r\n").expect("part headers end");
        let head = std::str::from_utf8(&rest[..head_end]).unwrap();
        let disposition = head.lines().next().unwrap();
        let disposition = disposition
            .strip_prefix("Content-Disposition: form-data; name=\"")
            .expect("a form-data part");
        let (name, tail) = disposition.split_once('"').unwrap();
        let filename = tail
            .strip_prefix("; filename=\"")
            .map(|f| f.strip_suffix('"').unwrap().to_owned());
        rest = &rest[head_end + 4..];
        let end = find(rest, delimiter.as_bytes()).expect("a closing delimiter");
        parts.push(FormPart {
            name: name.to_owned(),
            filename,
            value: rest[..end].to_vec(),
        });
        rest = &rest[end + delimiter.len()..];
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

// ---------------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------------

/// One storage step as executed: which call, which block, which bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    Small(Range<u64>),
    MakeBlock {
        block: u64,
        block_size: u64,
        range: Range<u64>,
    },
    PutChunk {
        block: u64,
        offset: u64,
        range: Range<u64>,
    },
    MakeFile {
        file_size: u64,
        ctxs: usize,
    },
}

/// A step as the plan hands it out, with the ticket its answer goes back with.
type Out = (Ticket, Step);

struct Driver {
    data: Bytes,
    fake: FakeStorage,
    /// Through `http` requests and responses (true) or the fake's typed calls.
    over_http: bool,
    /// Synthetic time: the wall clock, and the monotonic clock moving with it.
    now: SystemTime,
    mono: Instant,
    token: String,
    upload_url: String,
    sent: Vec<Sent>,
    store_tokens: usize,
    /// Whether a refusal of the fake goes to the plan (true) or fails the test.
    refusals_expected: bool,
}

impl Driver {
    fn new(data: Bytes) -> Self {
        let token = token();
        Self {
            data,
            fake: FakeStorage::new(&token),
            over_http: true,
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            mono: Instant::now(),
            token,
            upload_url: UPLOAD_URL.into(),
            sent: Vec::new(),
            store_tokens: 0,
            refusals_expected: false,
        }
    }

    /// Moves synthetic time forward.
    fn advance(&mut self, by: Duration) {
        self.mono += by;
        self.now += by;
    }

    /// The next step to send, waiting (in synthetic time) when the plan says so;
    /// `None` when the plan waits for an answer or is finished.
    fn next(&mut self, plan: &mut UploadPlan) -> Option<Out> {
        loop {
            match plan.poll(self.mono, self.now) {
                Output::Send(ticket, step) => return Some((ticket, step)),
                Output::WaitUntil(at) => self.advance(at - self.mono),
                _ => return None,
            }
        }
    }

    /// Every step the plan hands out now (waiting first when it has none to give).
    fn poll_all(&mut self, plan: &mut UploadPlan) -> Vec<Out> {
        let mut steps = Vec::new();
        loop {
            match plan.poll(self.mono, self.now) {
                Output::Send(ticket, step) => steps.push((ticket, step)),
                Output::WaitUntil(at) if steps.is_empty() => self.advance(at - self.mono),
                _ => return steps,
            }
        }
    }

    /// Reports that `ticket`'s step failed in transport with `kind`.
    fn fail(&self, plan: &mut UploadPlan, ticket: Ticket, kind: TransportErrorKind) {
        let error = TransportError::new(kind, "connection reset");
        plan.handle_failure(ticket, Attempt::Transport(error), self.mono, self.now);
    }

    /// Reports that `ticket`'s step was refused with `status`.
    fn refuse(&self, plan: &mut UploadPlan, ticket: Ticket, status: u16) {
        plan.handle_failure(ticket, Attempt::Api(refused(status)), self.mono, self.now);
    }

    fn answer_store_token(&mut self, request: &StoreTokenRequest) -> StoreTokenResult {
        self.store_tokens += 1;
        let hash = request.hash.expect("the plan always sends the etag");
        if self.fake.held.contains(&hash) {
            StoreTokenResult::Instant(stored_file(hash, &request.name, self.data.len() as u64))
        } else {
            upload_info(&self.token, &self.upload_url)
        }
    }

    fn record(&mut self, step: &Step) {
        let sent = match step {
            Step::StoreToken(_) => return,
            Step::UploadSmall { range, .. } => Sent::Small(range.clone()),
            Step::MakeBlock {
                block,
                block_size,
                range,
                ..
            } => Sent::MakeBlock {
                block: *block,
                block_size: *block_size,
                range: range.clone(),
            },
            Step::PutChunk {
                block,
                offset,
                range,
                ..
            } => Sent::PutChunk {
                block: *block,
                offset: *offset,
                range: range.clone(),
            },
            Step::MakeFile {
                file_size, ctxs, ..
            } => Sent::MakeFile {
                file_size: *file_size,
                ctxs: ctxs.len(),
            },
        };
        self.sent.push(sent);
    }

    fn bytes(&self, step: &Step) -> Bytes {
        step.range().map_or_else(Bytes::new, |r| {
            self.data.slice(r.start as usize..r.end as usize)
        })
    }

    /// Sends a storage step to the fake over `http` and returns its response.
    fn serve(&mut self, step: &Step) -> HttpResponse {
        let request = step
            .storage_request(&batch(), self.bytes(step))
            .expect("a storage step")
            .expect("the request encodes");
        self.fake.serve(&request)
    }

    /// Sends a storage step to the fake and returns the raw answer.
    fn call(&mut self, step: &Step) -> Result<Answer, ApiError> {
        if self.over_http {
            let response = self.serve(step);
            return match step {
                Step::MakeBlock { .. } | Step::PutChunk { .. } => {
                    decode_chunk_stored(&response).map(Answer::Chunk)
                }
                _ => decode_file_stored(&response).map(Answer::File),
            };
        }
        let data = self.bytes(step);
        let refused = |(status, message): Refusal| ApiError::Http {
            status: StatusCode::from_u16(status).unwrap(),
            body: Bytes::from(message),
        };
        match step {
            Step::UploadSmall { token, .. } => {
                let token = token.expose().to_owned();
                self.fake.upload(&token, &data).map(Answer::File)
            }
            Step::MakeBlock {
                block, block_size, ..
            } => self
                .fake
                .make_block(*block_size, *block, &data)
                .map(Answer::Chunk),
            Step::PutChunk { ctx, offset, .. } => {
                self.fake.put_chunk(ctx, *offset, &data).map(Answer::Chunk)
            }
            Step::MakeFile {
                file_size, ctxs, ..
            } => {
                let ctxs: Vec<&str> = ctxs.iter().map(String::as_str).collect();
                self.fake.make_file(*file_size, &ctxs).map(Answer::File)
            }
            Step::StoreToken(_) => unreachable!(),
        }
        .map_err(refused)
    }

    /// Runs one step and reports its answer to the plan: over `http`, the response
    /// goes to `handle_response` (the plan decodes it); typed, to `handle_chunk` and
    /// `handle_file_stored`. A refusal of the fake fails the test unless
    /// `refusals_expected`.
    fn run_step(&mut self, plan: &mut UploadPlan, (ticket, step): Out) -> Result<(), UploadError> {
        if let Step::StoreToken(request) = &step {
            let answer = self.answer_store_token(request);
            return plan.handle_store_token(ticket, answer, self.mono, self.now);
        }
        self.record(&step);
        if self.over_http {
            let response = self.serve(&step);
            assert!(
                self.refusals_expected || response.status().is_success(),
                "the fake refused {step:?}: {}",
                String::from_utf8_lossy(response.body())
            );
            return plan.handle_response(ticket, Ok(response), self.mono, self.now);
        }
        match self.call(&step) {
            Ok(answer) => self.report(plan, ticket, answer),
            Err(e) if self.refusals_expected => {
                plan.handle_failure(ticket, Attempt::Api(e), self.mono, self.now);
                Ok(())
            }
            Err(e) => panic!("the fake refused {step:?}: {e}"),
        }
    }

    fn report(
        &self,
        plan: &mut UploadPlan,
        ticket: Ticket,
        answer: Answer,
    ) -> Result<(), UploadError> {
        match answer {
            Answer::Chunk(chunk) => plan.handle_chunk(ticket, chunk),
            Answer::File(file) => plan.handle_file_stored(ticket, file),
        }
    }

    /// Runs the next step; panics when there is none.
    fn step(&mut self, plan: &mut UploadPlan) {
        let out = self.next(plan).expect("a step to send");
        self.run_step(plan, out).unwrap();
    }

    /// Polls every available step, runs them in an order chosen by `order_seed` (0:
    /// as handed out), and again until the plan is finished or waits forever.
    fn run(&mut self, plan: &mut UploadPlan, order_seed: u64) -> Result<(), UploadError> {
        let mut state = order_seed;
        loop {
            let mut steps = self.poll_all(plan);
            if steps.is_empty() {
                assert!(plan.is_finished(), "the plan waits with nothing under way");
                return Ok(());
            }
            if order_seed != 0 {
                // Fisher-Yates with a tiny LCG.
                for i in (1..steps.len()).rev() {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    steps.swap(i, (state >> 33) as usize % (i + 1));
                }
            }
            for step in steps {
                self.run_step(plan, step)?;
            }
        }
    }

    /// The `storeToken` step that renews the token, which must come next; nothing
    /// else is handed out before its answer.
    fn renewal(&mut self, plan: &mut UploadPlan) -> (Ticket, StoreTokenRequest) {
        let Some((ticket, Step::StoreToken(request))) = self.next(plan) else {
            panic!("a new token first")
        };
        assert_eq!(self.next(plan), None, "no storage step without a token");
        (ticket, request)
    }

    /// Runs the plan to its end and checks that it stored the file's etag.
    fn finish(&mut self, plan: &mut UploadPlan) {
        self.run(plan, 0).unwrap();
        assert_eq!(plan.outcome().unwrap().etag, qetag(&self.data));
    }

    /// How many calls to the fake start with `prefix` (`mkblk`, `bput`, `mkfile`).
    fn calls(&self, prefix: &str) -> usize {
        self.fake
            .calls
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }
}

#[derive(Debug)]
enum Answer {
    Chunk(ChunkStored),
    File(FileStored),
}

/// A refusal with a `{code, message}` body, as the storage decoders read one.
fn refused(status: u16) -> ApiError {
    let message = format!(r#"{{"code":{status},"message":"refused"}}"#);
    let response = http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(message))
        .unwrap();
    decode_chunk_stored(&response).unwrap_err()
}

/// Checks that the executed steps cover every byte of a `size`-byte file exactly
/// once, each block's chunks in order and at the right offsets, with one `mkfile` of
/// one ctx per block at the end (or one form upload).
fn assert_covers_once(sent: &[Sent], size: u64, config: UploadConfig) {
    let form = size == 0 || size <= config.small_file_limit.min(BLOCK);
    if form {
        assert_eq!(sent, [Sent::Small(0..size)]);
        return;
    }
    let blocks = size.div_ceil(BLOCK);
    let chunk = u64::from(config.chunk_size.clamp(1, BLOCK_SIZE as u32));
    let mut next = vec![0u64; blocks as usize];
    let mut covered = 0;
    for (i, step) in sent.iter().enumerate() {
        match step {
            Sent::MakeBlock {
                block,
                block_size,
                range,
            } => {
                let start = block * BLOCK;
                assert_eq!(next[*block as usize], 0, "block {block} made twice");
                assert_eq!(*block_size, BLOCK.min(size - start));
                assert_eq!(range.start, start);
                assert_eq!(range.end - range.start, chunk.min(*block_size));
                next[*block as usize] = range.end - start;
                covered += range.end - range.start;
            }
            Sent::PutChunk {
                block,
                offset,
                range,
            } => {
                let start = block * BLOCK;
                let block_size = BLOCK.min(size - start);
                assert_eq!(*offset, next[*block as usize], "block {block} out of order");
                assert_eq!(range.start, start + offset);
                assert_eq!(range.end - range.start, chunk.min(block_size - offset));
                next[*block as usize] = offset + range.end - range.start;
                covered += range.end - range.start;
            }
            Sent::MakeFile { file_size, ctxs } => {
                assert_eq!(i, sent.len() - 1, "mkfile comes last");
                assert_eq!(*file_size, size);
                assert_eq!(*ctxs as u64, blocks);
            }
            Sent::Small(_) => panic!("a form upload in a block upload"),
        }
    }
    assert_eq!(covered, size);
    for (block, done) in next.iter().enumerate() {
        assert_eq!(
            *done,
            BLOCK.min(size - block as u64 * BLOCK),
            "block {block}"
        );
    }
    assert!(matches!(sent.last(), Some(Sent::MakeFile { .. })));
}

/// Reports a made-up chunk answer (`offset`) to `ticket`, whose step is not under way,
/// and checks that the plan refuses it and goes on.
fn assert_refused_without_harm(plan: &mut UploadPlan, ticket: Ticket, offset: u64) {
    let answer = ChunkStored {
        ctx: "stale".into(),
        offset,
    };
    assert!(matches!(
        plan.handle_chunk(ticket, answer),
        Err(UploadError::UnexpectedAnswer(_))
    ));
    assert!(!plan.is_finished());
}

/// `size` bytes of data from `seed`, a driver for them and a plan with `config`.
fn setup(size: u64, seed: u64, config: UploadConfig) -> (Bytes, Driver, UploadPlan) {
    let data = data_of(size, seed);
    let plan = plan_for(&data, config);
    (data.clone(), Driver::new(data), plan)
}

/// Runs the plan for `data` with `config` to its end and checks the etag; returns the
/// driver for more checks.
fn upload(data: &Bytes, config: UploadConfig, order_seed: u64) -> (Driver, UploadPlan) {
    let mut driver = Driver::new(data.clone());
    let mut plan = plan_for(data, config);
    driver.run(&mut plan, order_seed).unwrap();
    assert_eq!(plan.outcome().unwrap().etag, qetag(data));
    (driver, plan)
}

// ---------------------------------------------------------------------------------
// The plan against the fake
// ---------------------------------------------------------------------------------

#[test]
fn instant_upload_sends_no_bytes() {
    let data = data_of(5 * MIB, 1);
    let mut driver = Driver::new(data.clone());
    driver.fake.held.insert(qetag(&data));
    let mut plan = plan_for(&data, UploadConfig::default());
    let Some((ticket, Step::StoreToken(request))) = driver.next(&mut plan) else {
        panic!("the first step asks for a token")
    };
    assert_eq!(request.name, "file.bin");
    assert_eq!(request.hash, Some(qetag(&data)));
    assert_eq!(request.path.as_deref(), Some(":torrent"));
    assert_eq!(request.parent, None);
    assert_eq!(
        driver.next(&mut plan),
        None,
        "nothing else before the answer"
    );
    let answer = driver.answer_store_token(&request);
    plan.handle_store_token(ticket, answer, driver.mono, driver.now)
        .unwrap();
    assert_eq!(driver.next(&mut plan), None);
    let outcome = plan.outcome().unwrap();
    assert!(outcome.instant);
    assert_eq!(outcome.etag, qetag(&data));
    assert_eq!(outcome.file.as_ref().unwrap().store_id, qetag(&data));
    assert_eq!(outcome.key, None);
    assert_eq!(plan.bytes_acknowledged(), 5 * MIB);
    assert!(driver.fake.calls.is_empty());
}

#[test]
fn instant_file_with_another_hash_is_a_mismatch() {
    let (data, mut driver, mut plan) = setup(100, 2, UploadConfig::default());
    let (ticket, _) = driver.next(&mut plan).unwrap();
    let other = qetag(b"other");
    let err = plan
        .handle_store_token(
            ticket,
            StoreTokenResult::Instant(stored_file(other, "file.bin", 100)),
            driver.mono,
            SystemTime::UNIX_EPOCH,
        )
        .unwrap_err();
    assert_eq!(
        err,
        UploadError::EtagMismatch {
            local: qetag(&data),
            remote: other
        }
    );
    assert_eq!(plan.error(), Some(&err));
}

#[test]
fn second_upload_of_the_same_file_is_instant() {
    let data = data_of(3 * KIB, 3);
    let (mut driver, first) = upload(&data, UploadConfig::default(), 0);
    assert!(!first.outcome().unwrap().instant);
    let mut second = plan_for(&data, UploadConfig::default());
    let calls = driver.fake.calls.len();
    driver.run(&mut second, 0).unwrap();
    assert!(second.outcome().unwrap().instant);
    assert_eq!(driver.fake.calls.len(), calls);
}

#[test]
fn small_file_is_one_form_upload_of_the_whole_range() {
    let data = data_of(1000, 4);
    assert!(plan_for(&data, UploadConfig::default()).is_form_upload());
    let (driver, plan) = upload(&data, UploadConfig::default(), 0);
    assert_eq!(driver.sent, [Sent::Small(0..1000)]);
    assert_eq!(driver.fake.calls, ["upload 1000"]);
    let outcome = plan.outcome().unwrap();
    assert!(!outcome.instant);
    assert_eq!(outcome.etag, qetag(&data));
    assert_eq!(outcome.file, None);
    assert_eq!(
        outcome.key.as_deref(),
        Some(format!("user-upload/{}", qetag(&data)).as_str())
    );
    assert_eq!(plan.bytes_acknowledged(), 1000);
}

#[test]
fn empty_file_is_an_empty_form_upload() {
    let data = Bytes::new();
    for small_file_limit in [BLOCK, 0] {
        let config = UploadConfig {
            small_file_limit,
            ..UploadConfig::default()
        };
        assert!(plan_for(&data, config).is_form_upload());
        let (driver, plan) = upload(&data, config, 0);
        assert_eq!(driver.sent, [Sent::Small(0..0)]);
        assert_eq!(
            plan.outcome().unwrap().etag.as_str(),
            "Fto5o-5ea0sNMlW_75VgGJCv2AcJ"
        );
    }
}

#[test]
fn exactly_one_block_is_a_form_upload() {
    let data = data_of(BLOCK, 5);
    let (driver, _) = upload(&data, UploadConfig::default(), 0);
    assert_eq!(driver.sent, [Sent::Small(0..BLOCK)]);
}

#[test]
fn one_byte_over_a_block_is_two_blocks() {
    let data = data_of(BLOCK + 1, 6);
    let config = UploadConfig::default();
    assert_eq!(plan_for(&data, config).block_count(), 2);
    let (driver, _) = upload(&data, config, 0);
    assert_covers_once(&driver.sent, BLOCK + 1, config);
    assert_eq!(
        driver.sent[4..],
        [
            Sent::MakeBlock {
                block: 1,
                block_size: 1,
                range: BLOCK..BLOCK + 1
            },
            Sent::MakeFile {
                file_size: BLOCK + 1,
                ctxs: 2
            },
        ]
    );
}

#[test]
fn one_block_file_can_go_in_blocks() {
    let data = data_of(2 * MIB + 3, 7);
    let config = UploadConfig {
        small_file_limit: 0,
        ..UploadConfig::default()
    };
    let (driver, _) = upload(&data, config, 0);
    assert_covers_once(&driver.sent, data.len() as u64, config);
    assert_eq!(driver.sent.len(), 4, "mkblk, 2 bput, mkfile");
}

#[test]
fn nine_mib_in_one_mib_chunks_is_three_blocks() {
    let data = data_of(9 * MIB, 8);
    let mut driver = Driver::new(data.clone());
    let config = UploadConfig::default();
    let mut plan = plan_for(&data, config);
    assert_eq!(plan.block_count(), 3);
    let mut progress = vec![plan.bytes_acknowledged()];
    while let Some(step) = driver.next(&mut plan) {
        driver.run_step(&mut plan, step).unwrap();
        progress.push(plan.bytes_acknowledged());
    }
    assert_covers_once(&driver.sent, 9 * MIB, config);
    let mut expected = Vec::new();
    for block in 0..2 {
        let start = block * BLOCK;
        expected.push(Sent::MakeBlock {
            block,
            block_size: BLOCK,
            range: start..start + MIB,
        });
        for i in 1..4 {
            expected.push(Sent::PutChunk {
                block,
                offset: i * MIB,
                range: start + i * MIB..start + (i + 1) * MIB,
            });
        }
    }
    expected.push(Sent::MakeBlock {
        block: 2,
        block_size: MIB,
        range: 8 * MIB..9 * MIB,
    });
    expected.push(Sent::MakeFile {
        file_size: 9 * MIB,
        ctxs: 3,
    });
    assert_eq!(driver.sent, expected);
    assert_eq!(plan.outcome().unwrap().etag, qetag(&data));
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(progress.last(), Some(&(9 * MIB)));
    assert_eq!(driver.fake.batches, HashSet::from([batch()]));
}

#[test]
fn wrong_hash_is_an_etag_mismatch_naming_both() {
    for size in [10, 5 * MIB] {
        let data = data_of(size, 9);
        let mut driver = Driver::new(data.clone());
        driver.fake.wrong_hash = true;
        let mut plan = plan_for(&data, UploadConfig::default());
        let err = driver.run(&mut plan, 0).unwrap_err();
        let local = qetag(&data);
        let remote = qetag(b"not the file");
        assert_eq!(err, UploadError::EtagMismatch { local, remote });
        let message = err.to_string();
        assert!(message.contains(local.as_str()), "{message}");
        assert!(message.contains(remote.as_str()), "{message}");
        assert!(err.ends_upload());
        assert_eq!(plan.error(), Some(&err));
        assert_eq!(plan.outcome(), None);
        assert_eq!(driver.next(&mut plan), None);
    }
}

#[test]
fn wrong_offset_is_an_error() {
    let data = data_of(5 * MIB, 10);
    let mut driver = Driver::new(data.clone());
    driver.fake.offset_skew = 1;
    let mut plan = plan_for(&data, UploadConfig::default());
    let err = driver.run(&mut plan, 0).unwrap_err();
    assert_eq!(
        err,
        UploadError::UnexpectedOffset {
            block: 0,
            expected: MIB,
            got: MIB + 1
        }
    );
    assert!(err.to_string().contains("offset"), "{err}");
    assert!(plan.is_finished());
    assert_eq!(driver.next(&mut plan), None);
}

#[test]
fn dropped_chunk_is_asked_again() {
    let (_, mut driver, mut plan) = setup(6 * MIB, 11, UploadConfig::default());
    driver.step(&mut plan);
    driver.step(&mut plan);

    // The second chunk never reaches the service.
    let second = driver.next(&mut plan).unwrap();
    assert!(matches!(second.1, Step::PutChunk { offset, .. } if offset == MIB));
    assert_eq!(driver.next(&mut plan), None, "one step per block at a time");
    driver.fail(&mut plan, second.0, TransportErrorKind::Connect);
    assert_eq!(
        driver.next(&mut plan).as_ref(),
        Some(&second),
        "the same chunk again"
    );

    // It reaches the service but the answer is lost: sent again with the same ctx.
    driver.call(&second.1).unwrap();
    driver.fail(&mut plan, second.0, TransportErrorKind::Closed);
    let again = driver.next(&mut plan).unwrap();
    assert_eq!(again, second);
    driver.run_step(&mut plan, again).unwrap();

    // A stale answer to the step that was failed is refused and changes nothing.
    assert_refused_without_harm(&mut plan, second.0, 2 * MIB);

    driver.finish(&mut plan);
}

#[test]
fn failed_token_and_make_file_are_asked_again() {
    let (data, mut driver, mut plan) = setup(5 * MIB, 12, config(4 * MIB, 1));
    let token = driver.next(&mut plan).unwrap();
    driver.fail(&mut plan, token.0, TransportErrorKind::Connect);
    let again = driver.next(&mut plan).unwrap();
    assert_eq!(again.1, token.1);
    driver.run_step(&mut plan, again).unwrap();
    for _ in 0..2 {
        driver.step(&mut plan);
    }
    let make_file = driver.next(&mut plan).unwrap();
    assert_eq!(make_file.1.id(), StepId::MakeFile);
    assert_eq!(driver.next(&mut plan), None);
    driver.fail(&mut plan, make_file.0, TransportErrorKind::Timeout);
    let again = driver.next(&mut plan).unwrap();
    assert_eq!(again, make_file);
    driver.run_step(&mut plan, again).unwrap();
    assert_eq!(driver.next(&mut plan), None);
    assert_eq!(plan.outcome().unwrap().etag, qetag(&data));
}

#[test]
fn restart_block_redoes_it_from_mkblk() {
    let (_, mut driver, mut plan) = setup(9 * MIB, 13, UploadConfig::default());
    // Through block 0 and two chunks of block 1.
    for _ in 0..7 {
        driver.step(&mut plan);
    }
    assert_eq!(plan.bytes_acknowledged(), 6 * MIB);
    // The third chunk of block 1 is refused: its ctx is no longer known.
    let (lost, step) = driver.next(&mut plan).unwrap();
    assert!(matches!(step, Step::PutChunk { block: 1, offset, .. } if offset == 2 * MIB));
    driver.refuse(&mut plan, lost, 400);
    assert_eq!(plan.bytes_acknowledged(), 4 * MIB);
    let Some((
        ticket,
        Step::MakeBlock {
            block: 1,
            block_size,
            range,
            ..
        },
    )) = driver.next(&mut plan)
    else {
        panic!("block 1 starts over")
    };
    assert_eq!(block_size, BLOCK);
    assert_eq!(range, BLOCK..BLOCK + MIB);
    driver.fail(&mut plan, ticket, TransportErrorKind::Connect);
    driver.finish(&mut plan);
    assert_eq!(driver.calls("mkblk"), 4, "blocks 0, 1, 1 again, 2");
}

#[test]
fn restart_after_make_file_refusal_redoes_every_block() {
    let (data, mut driver, mut plan) = setup(5 * MIB, 14, config(4 * MIB, 2));
    let make_file = loop {
        let out = driver.next(&mut plan).unwrap();
        if out.1.id() == StepId::MakeFile {
            break out.0;
        }
        driver.run_step(&mut plan, out).unwrap();
    };
    // The service forgot the ctxs: refused, so every block is redone.
    driver.refuse(&mut plan, make_file, 400);
    assert_eq!(plan.bytes_acknowledged(), 0);
    driver.sent.clear();
    driver.run(&mut plan, 0).unwrap();
    assert_covers_once(&driver.sent, 5 * MIB, config(4 * MIB, 2));
    assert_eq!(plan.outcome().unwrap().etag, qetag(&data));
}

#[test]
fn three_blocks_in_flight_before_any_answer() {
    let data = data_of(13 * MIB, 15);
    let mut driver = Driver::new(data.clone());
    let config = config(MIB, 3);
    let mut plan = plan_for(&data, config);
    driver.step(&mut plan);
    let first = driver.poll_all(&mut plan);
    let blocks: Vec<(u64, Range<u64>)> = first
        .iter()
        .map(|(_, s)| match s {
            Step::MakeBlock { block, range, .. } => (*block, range.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        blocks,
        [
            (0, 0..MIB),
            (1, BLOCK..BLOCK + MIB),
            (2, 2 * BLOCK..2 * BLOCK + MIB)
        ]
    );
    // Answered in reverse order.
    for step in first.into_iter().rev() {
        driver.run_step(&mut plan, step).unwrap();
    }
    let next = driver.poll_all(&mut plan);
    let ids: Vec<StepId> = next.iter().map(|(t, _)| t.id()).collect();
    assert_eq!(ids, [StepId::Block(0), StepId::Block(1), StepId::Block(2)]);
    for (ticket, _) in next {
        driver.fail(&mut plan, ticket, TransportErrorKind::Connect);
    }
    driver.run(&mut plan, 7).unwrap();
    assert_covers_once(&driver.sent, 13 * MIB, config);
    assert_eq!(plan.outcome().unwrap().etag, qetag(&data));
}

#[test]
fn token_deadline_from_the_put_policy() {
    let deadline_ms: u64 = 1_700_000_600_000;
    let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let token = policy_token(&format!(
        r#"{{"scope":"other-storage","deadline":"{deadline_ms}","overwrite":1}}"#
    ));
    let data = data_of(5 * MIB, 16);
    let mut driver = Driver::new(data.clone());
    driver.token.clone_from(&token);
    driver.fake.token.clone_from(&token);
    driver.now = deadline - Duration::from_secs(600);
    let mut plan = plan_for(&data, UploadConfig::default());
    let minute = Duration::from_secs(60);
    assert!(!plan.token_expired(driver.now, minute), "no token yet");
    driver.step(&mut plan);
    assert_eq!(plan.token_deadline(), Some(deadline));
    assert!(!plan.token_expired(driver.now, minute));
    assert!(plan.token_expired(deadline - minute, minute));
    assert!(plan.token_expired(deadline, Duration::ZERO));

    // Half-way, the token is about to expire: it is renewed and the upload goes on
    // where it was.
    driver.step(&mut plan);
    driver.advance(Duration::from_secs(600 - 30));
    let (ticket, _) = driver.renewal(&mut plan);
    let later = deadline_ms + 3_600_000;
    let renewed = policy_token(&format!(r#"{{"deadline":{later}}}"#));
    plan.handle_store_token(
        ticket,
        upload_info(&renewed, UPLOAD_URL),
        driver.mono,
        driver.now,
    )
    .unwrap();
    driver.fake.token.clone_from(&renewed);
    assert_eq!(
        plan.token_deadline(),
        Some(SystemTime::UNIX_EPOCH + Duration::from_millis(later))
    );
    let Some((ticket, Step::PutChunk { offset, token, .. })) = driver.next(&mut plan) else {
        panic!("progress is kept")
    };
    assert_eq!(offset, MIB);
    assert_eq!(token.expose(), renewed);
    driver.fail(&mut plan, ticket, TransportErrorKind::Connect);
    driver.finish(&mut plan);
    assert_eq!(driver.store_tokens, 1, "the renewal was answered by hand");
}

#[test]
fn token_expired_on_arrival_ends_the_plan() {
    let (data, mut driver, mut plan) = setup(10, 17, UploadConfig::default());
    let (ticket, _) = driver.next(&mut plan).unwrap();
    // {"deadline": 1517373343891}: January 2018.
    let token = policy_token(r#"{"deadline":1517373343891}"#);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let err = plan
        .handle_store_token(ticket, upload_info(&token, UPLOAD_URL), driver.mono, now)
        .unwrap_err();
    assert_eq!(
        err,
        UploadError::TokenExpired {
            deadline: SystemTime::UNIX_EPOCH + Duration::from_millis(1_517_373_343_891)
        }
    );
    assert_eq!(driver.next(&mut plan), None);
    // A token that is not Qiniu-shaped has no local deadline: the service judges.
    let mut plan = plan_for(&data, UploadConfig::default());
    let (ticket, _) = driver.next(&mut plan).unwrap();
    plan.handle_store_token(ticket, upload_info("opaque", UPLOAD_URL), driver.mono, now)
        .unwrap();
    assert!(!plan.token_expired(now, Duration::from_secs(3600)));
    assert_eq!(plan.token_deadline(), None);
}

#[test]
fn typed_calls_without_http_agree() {
    let data = data_of(9 * MIB + 7, 18);
    let mut driver = Driver::new(data.clone());
    driver.over_http = false;
    let config = config(1536 * KIB, 2);
    let mut plan = plan_for(&data, config);
    driver.run(&mut plan, 3).unwrap();
    assert_covers_once(&driver.sent, data.len() as u64, config);
    assert_eq!(plan.outcome().unwrap().etag, qetag(&data));
}

// ---------------------------------------------------------------------------------
// The failure policy, in synthetic time
// ---------------------------------------------------------------------------------

/// A driver whose fake refuses an older ctx of a block, as the real service does.
fn superseding(data: &Bytes) -> Driver {
    let mut driver = Driver::new(data.clone());
    driver.fake.supersede = true;
    driver.refusals_expected = true;
    driver
}

#[test]
fn a_lost_make_block_answer_redoes_the_block() {
    let data = data_of(6 * MIB, 20);
    let mut driver = superseding(&data);
    let mut plan = plan_for(&data, UploadConfig::default());
    driver.step(&mut plan);
    // mkblk reaches the service, its answer is lost: no ctx is known, so the block
    // is made again from its first chunk.
    let (ticket, step) = driver.next(&mut plan).unwrap();
    assert!(matches!(step, Step::MakeBlock { block: 0, .. }));
    driver.call(&step).unwrap();
    driver.fail(&mut plan, ticket, TransportErrorKind::Closed);
    let t0 = driver.mono;
    let again = driver.next(&mut plan).unwrap();
    assert_eq!(again.1, step);
    assert!(driver.mono > t0, "sent again after a backoff wait");
    driver.run_step(&mut plan, again).unwrap();
    driver.finish(&mut plan);
    assert_eq!(driver.calls("mkblk"), 3, "block 0 twice, block 1");
}

#[test]
fn a_ctx_refused_after_a_lost_answer_restarts_the_block() {
    let data = data_of(2 * BLOCK + 12_345, 21);
    let mut driver = superseding(&data);
    let mut plan = plan_for(&data, UploadConfig::default());
    for _ in 0..3 {
        driver.step(&mut plan);
    }
    // The third chunk is stored, its answer lost: the same chunk is sent again with
    // the old ctx, which the service refuses, so block 0 is redone from mkblk.
    let lost = driver.next(&mut plan).unwrap();
    assert!(matches!(lost.1, Step::PutChunk { block: 0, offset, .. } if offset == 2 * MIB));
    driver.call(&lost.1).unwrap();
    driver.fail(&mut plan, lost.0, TransportErrorKind::Closed);
    let resent = driver.next(&mut plan).unwrap();
    assert_eq!(resent, lost, "the same chunk, the same ctx");
    driver.run_step(&mut plan, resent).unwrap();
    assert_eq!(plan.bytes_acknowledged(), 0, "block 0 starts over");
    let Some((redo, Step::MakeBlock { block: 0, .. })) = driver.next(&mut plan) else {
        panic!("block 0 is made again")
    };
    assert_ne!(redo.epoch(), lost.0.epoch(), "in a new epoch");
    // A late answer from before the restart is ignored by the plan.
    assert_refused_without_harm(&mut plan, lost.0, 3 * MIB);
    driver.fail(&mut plan, redo, TransportErrorKind::Connect);
    driver.finish(&mut plan);
    // As against the emulator: 3 stored + 1 refused, then 4 + 4 + 1.
    assert_eq!(driver.calls("mkblk") + driver.calls("bput"), 3 + 1 + 9);
}

#[test]
fn make_file_refused_restarts_everything_within_the_budget() {
    let data = data_of(5 * MIB, 22);
    let config = config(4 * MIB, 2);
    // Once: every block is redone and the upload ends well.
    let mut driver = Driver::new(data.clone());
    driver.refusals_expected = true;
    driver.fake.forget_at_mkfile = 1;
    let mut plan = plan_for(&data, config);
    driver.finish(&mut plan);
    assert_eq!(driver.calls("mkfile"), 2);
    assert_eq!(driver.calls("mkblk"), 4, "both blocks twice");
    // Twice: the budget (one full restart) is spent.
    let mut driver = Driver::new(data.clone());
    driver.refusals_expected = true;
    driver.fake.forget_at_mkfile = 2;
    let mut plan = plan_for(&data, config);
    driver.run(&mut plan, 0).unwrap();
    let error = plan.error().unwrap().clone();
    assert!(
        matches!(
            &error,
            UploadError::GaveUp {
                step: StepId::MakeFile,
                endpoint: EndpointId::MakeFile,
                reason: GiveUp::FullRestarts { budget: 1 },
                last,
            } if last.contains("unknown ctx")
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("every block was redone 1 times"),
        "{error}"
    );
    assert!(matches!(plan.poll(driver.mono, driver.now), Output::Failed(e) if e == error));
    assert!(matches!(plan.take_cause(), Some(Attempt::Api(_))));
}

/// A token whose put policy's deadline is `wall + lifetime`.
fn token_for(wall: SystemTime, lifetime: Duration) -> String {
    let deadline = (wall + lifetime)
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    policy_token(&format!(r#"{{"deadline":{deadline}}}"#))
}

/// Gives `driver` (and its fake) a token that lasts `lifetime` from now.
fn fresh_token(driver: &mut Driver, lifetime: Duration) {
    driver.token = token_for(driver.now, lifetime);
    driver.fake.token.clone_from(&driver.token);
}

#[test]
fn a_token_near_its_deadline_is_renewed_before_the_next_step() {
    let (_, mut driver, mut plan) = setup(5 * MIB, 23, UploadConfig::default());
    fresh_token(&mut driver, Duration::from_secs(120));
    driver.step(&mut plan);
    driver.step(&mut plan);
    // 59 s later the deadline is 61 s away: not yet within the 60 s margin.
    driver.advance(Duration::from_secs(59));
    let out = driver.next(&mut plan).unwrap();
    assert!(matches!(out.1, Step::PutChunk { .. }), "{out:?}");
    driver.run_step(&mut plan, out).unwrap();
    // One second more: within the margin.
    driver.advance(Duration::from_secs(1));
    let (ticket, request) = driver.renewal(&mut plan);
    fresh_token(&mut driver, Duration::from_secs(3600));
    let answer = driver.answer_store_token(&request);
    plan.handle_store_token(ticket, answer, driver.mono, driver.now)
        .unwrap();
    let Some(out @ (_, Step::PutChunk { .. })) = driver.next(&mut plan) else {
        panic!("progress is kept")
    };
    let Step::PutChunk { offset, token, .. } = &out.1 else {
        unreachable!()
    };
    assert_eq!((*offset, token.expose()), (2 * MIB, driver.token.as_str()));
    assert_eq!(driver.store_tokens, 2);
    driver.run_step(&mut plan, out).unwrap();
    driver.finish(&mut plan);
}

#[test]
fn a_short_lived_token_is_not_renewed_in_a_loop() {
    let (_, mut driver, mut plan) = setup(5 * MIB, 24, UploadConfig::default());
    // Every token the service hands out is within the margin at once.
    fresh_token(&mut driver, Duration::from_secs(30));
    driver.step(&mut plan);
    let out = driver.next(&mut plan).unwrap();
    assert!(matches!(out.1, Step::MakeBlock { .. }), "used at once");
    driver.run_step(&mut plan, out).unwrap();
    driver.advance(UploadPolicy::default().min_token_use);
    assert!(matches!(
        driver.next(&mut plan),
        Some((_, Step::StoreToken(_)))
    ));
}

/// A `429` answer asking to wait `seconds`.
fn limited(seconds: u64) -> HttpResponse {
    http::Response::builder()
        .status(429)
        .header(header::RETRY_AFTER, seconds.to_string())
        .body(Bytes::from_static(b"busy"))
        .unwrap()
}

/// Answers the token, then `429` with `Retry-After: 7` to the first storage step, and
/// checks that the plan waits exactly that long.
fn answer_429_to_the_first_storage_step(driver: &mut Driver, plan: &mut UploadPlan) {
    driver.step(plan);
    let (ticket, _) = driver.next(plan).unwrap();
    plan.handle_response(ticket, Ok(limited(7)), driver.mono, driver.now)
        .unwrap();
    assert_eq!(
        plan.poll(driver.mono, driver.now),
        Output::WaitUntil(driver.mono + Duration::from_secs(7))
    );
}

#[test]
fn a_refused_token_is_renewed() {
    let data = data_of(5 * MIB, 25);
    let mut driver = Driver::new(data.clone());
    driver.refusals_expected = true;
    let mut plan = plan_for(&data, UploadConfig::default());
    driver.step(&mut plan);
    driver.step(&mut plan);
    // The service no longer takes the token (a 401): renewed, then the chunk again.
    driver.fake.token = "another".into();
    driver.step(&mut plan);
    assert_eq!(driver.store_tokens, 1);
    driver.token = "another".into();
    let Some(out @ (_, Step::StoreToken(_))) = driver.next(&mut plan) else {
        panic!("the refused token is renewed")
    };
    driver.run_step(&mut plan, out).unwrap();
    let Some((_, Step::PutChunk { offset, token, .. })) = driver.next(&mut plan) else {
        panic!("the chunk again")
    };
    assert_eq!((offset, token.expose()), (MIB, "another"));
}

#[test]
fn a_retry_that_would_pass_the_deadline_renews_the_token() {
    let data = data_of(10, 26);
    let mut driver = Driver::new(data.clone());
    fresh_token(&mut driver, Duration::from_secs(120));
    // No margin: only the retry rule can renew the token here.
    let policy = UploadPolicy {
        token_margin: Duration::ZERO,
        ..UploadPolicy::default()
    };
    let mut plan = plan_for(&data, UploadConfig::default()).with_policy(policy);
    driver.step(&mut plan);
    let (ticket, _) = driver.next(&mut plan).unwrap();
    driver.advance(Duration::from_secs(115));
    // Waiting 7 s ends past the deadline, 5 s away.
    plan.handle_response(ticket, Ok(limited(7)), driver.mono, driver.now)
        .unwrap();
    assert!(
        matches!(
            plan.poll(driver.mono, driver.now),
            Output::Send(_, Step::StoreToken(_))
        ),
        "a new token first"
    );
    // A wait that ends before the deadline keeps the token.
    let mut plan = plan_for(&data, UploadConfig::default()).with_policy(policy);
    fresh_token(&mut driver, Duration::from_secs(120));
    answer_429_to_the_first_storage_step(&mut driver, &mut plan);
}

#[test]
fn a_renewal_to_another_storage_host_redoes_the_blocks() {
    let data = data_of(9 * MIB, 27);
    let mut driver = Driver::new(data.clone());
    driver.refusals_expected = true;
    let mut plan = plan_for(&data, config(MIB, 2));
    driver.step(&mut plan);
    let first = driver.poll_all(&mut plan);
    assert_eq!(first.len(), 2, "blocks 0 and 1 at once");
    let mut first = first.into_iter();
    driver.run_step(&mut plan, first.next().unwrap()).unwrap();
    // Block 1's mkblk is stored; its answer arrives after the move.
    let (late, step) = first.next().unwrap();
    let answer = driver.call(&step).unwrap();
    // The token is refused; the new one names another storage host (another port).
    driver.fake.token = "moved".into();
    driver.step(&mut plan);
    driver.token = "moved".into();
    driver.upload_url = "http://127.0.0.1:10/wcs/file/upload".into();
    let Some(out @ (_, Step::StoreToken(_))) = driver.next(&mut plan) else {
        panic!("renewed")
    };
    driver.run_step(&mut plan, out).unwrap();
    assert_eq!(
        plan.bytes_acknowledged(),
        0,
        "the ctxs belong to the old host"
    );
    // The answer of the old host is ignored.
    assert!(matches!(
        driver.report(&mut plan, late, answer),
        Err(UploadError::UnexpectedAnswer(_))
    ));
    assert_eq!(plan.bytes_acknowledged(), 0);
    driver.sent.clear();
    driver.run(&mut plan, 0).unwrap();
    assert_covers_once(&driver.sent, 9 * MIB, config(MIB, 2));
    assert_eq!(plan.outcome().unwrap().etag, qetag(&data));
}

#[test]
fn resends_run_out_into_a_clear_error() {
    let (_, mut driver, mut plan) = setup(5 * MIB, 27, UploadConfig::default());
    driver.step(&mut plan);
    let start = driver.mono;
    let policy = UploadPolicy::default();
    for _ in 0..=policy.max_step_retries {
        let (ticket, step) = driver.next(&mut plan).unwrap();
        assert!(matches!(step, Step::MakeBlock { block: 0, .. }));
        driver.fail(&mut plan, ticket, TransportErrorKind::Timeout);
    }
    let waited = driver.mono - start;
    assert!(
        waited <= policy.max_retry_wait * policy.max_step_retries,
        "{waited:?}"
    );
    let error = plan.error().unwrap();
    assert!(matches!(
        error,
        UploadError::GaveUp {
            step: StepId::Block(0),
            endpoint: EndpointId::MakeBlock,
            reason: GiveUp::Retries { retries: 10 },
            ..
        }
    ));
    let message = error.to_string();
    assert!(message.contains("makeBlock"), "{message}");
    assert!(message.contains("10 times in a row"), "{message}");
    assert!(message.contains("connection reset"), "{message}");
    assert_eq!(driver.next(&mut plan), None);
    let Some(Attempt::Transport(cause)) = plan.take_cause() else {
        panic!("the failure itself")
    };
    assert_eq!(cause.kind(), TransportErrorKind::Timeout);
}

#[test]
fn block_restarts_run_out_into_a_clear_error() {
    let data = data_of(5 * MIB, 28);
    let mut driver = Driver::new(data.clone());
    let policy = UploadPolicy {
        extra_block_restarts: 1,
        ..UploadPolicy::default()
    };
    let mut plan = plan_for(&data, UploadConfig::default()).with_policy(policy);
    driver.step(&mut plan);
    // Budget: one restart per block (2) plus one.
    for _ in 0..4 {
        driver.step(&mut plan);
        let (ticket, step) = driver.next(&mut plan).unwrap();
        assert!(matches!(step, Step::PutChunk { block: 0, .. }));
        driver.refuse(&mut plan, ticket, 400);
    }
    assert_eq!(
        plan.error().map(ToString::to_string),
        Some(format!(
            "gave up on putChunk (Block(0)): blocks were redone 3 times already, the budget \
             of this upload; the last failure: {}",
            refused(400)
        ))
    );
}

#[test]
fn retry_after_is_waited_for() {
    let (_, mut driver, mut plan) = setup(10, 29, UploadConfig::default());
    answer_429_to_the_first_storage_step(&mut driver, &mut plan);
    driver.finish(&mut plan);
}

// ---------------------------------------------------------------------------------
// Encoders
// ---------------------------------------------------------------------------------

fn header<'a>(request: &'a HttpRequest, name: &str) -> &'a str {
    request.headers()[name].to_str().unwrap()
}

#[test]
fn form_upload_bytes_for_a_tiny_file() {
    let request = upload_request_with_boundary(
        "http://up.example/file/upload",
        &Secret::new("ak:sign:policy"),
        Some("user-upload/a.txt"),
        "a \"quoted\"\r\nname.txt",
        Some("text/plain"),
        Bytes::from_static(b"hi\r\n"),
        "XyZ",
    )
    .unwrap();
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(request.uri(), "http://up.example/file/upload");
    assert_eq!(request.headers().len(), 1);
    assert_eq!(
        header(&request, "content-type"),
        "multipart/form-data; boundary=XyZ"
    );
    let expected: &[u8] = b"--XyZ\r\n\
Content-Disposition: form-data; name=\"token\"\r\n\
\r\n\
ak:sign:policy\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"key\"\r\n\
\r\n\
user-upload/a.txt\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"mimeType\"\r\n\
\r\n\
text/plain\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"a %22quoted%22%0D%0Aname.txt\"\r\n\
Content-Type: text/plain\r\n\
\r\n\
hi\r\n\
\r\n\
--XyZ--\r\n";
    assert_eq!(
        request.body().as_ref(),
        expected,
        "{}",
        String::from_utf8_lossy(request.body())
    );
}

#[test]
fn form_upload_without_optional_fields() {
    let request = upload_request_with_boundary(
        "http://up.example",
        &Secret::new("t"),
        None,
        "幸运星.torrent",
        None,
        Bytes::new(),
        "b",
    )
    .unwrap();
    assert_eq!(request.uri(), "http://up.example/file/upload");
    let expected = "--b\r\n\
Content-Disposition: form-data; name=\"token\"\r\n\r\nt\r\n\
--b\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"幸运星.torrent\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\r\n\
--b--\r\n";
    assert_eq!(request.body().as_ref(), expected.as_bytes());
}

#[test]
fn form_upload_boundary_is_derived_from_the_data() {
    let token = Secret::new("t");
    let make = |data: &'static [u8]| {
        upload_request(
            UPLOAD_URL,
            &token,
            None,
            "f",
            None,
            Bytes::from_static(data),
        )
        .unwrap()
    };
    let a = make(b"data one");
    let b = make(b"data two");
    assert_eq!(a.body(), make(b"data one").body(), "deterministic");
    let boundary = |r: &HttpRequest| {
        header(r, "content-type")
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap()
            .to_owned()
    };
    assert_ne!(boundary(&a), boundary(&b));
    assert!(boundary(&a).len() <= 70);
    let form = parse_form(header(&a, "content-type"), a.body());
    assert_eq!(form.len(), 2);
    assert_eq!(form[1].value, b"data one");
    assert_eq!(a.uri(), "http://127.0.0.1:9/wcs/file/upload");
}

/// The form upload of `data` as file `f`, token `t`, with `boundary`.
fn form_with_boundary(data: &'static [u8], boundary: &str) -> Result<HttpRequest, EncodeError> {
    upload_request_with_boundary(
        UPLOAD_URL,
        &Secret::new("t"),
        None,
        "f",
        None,
        Bytes::from_static(data),
        boundary,
    )
}

#[test]
fn form_upload_quotes_a_boundary_a_header_token_cannot_hold() {
    let request = form_with_boundary(b"x", "a:b").unwrap();
    assert_eq!(
        request.headers()[header::CONTENT_TYPE],
        "multipart/form-data; boundary=\"a:b\""
    );
}

#[test]
fn form_upload_refuses_a_boundary_in_the_data() {
    let err = form_with_boundary(b"--abc--", "abc").unwrap_err();
    assert!(matches!(
        err,
        EncodeError::Invalid(ValidationError::InvalidValue {
            field: "boundary",
            ..
        })
    ));
}

#[test]
fn make_block_request_line_and_headers() {
    let token = Secret::new("ak:sign:policy");
    let request = make_block_request(
        "http://up.example/",
        &token,
        "3f0b6c7e-0d35-4c1b-9a7e-2b1f1b1e6a00",
        BLOCK,
        2,
        Bytes::from_static(b"chunk"),
    )
    .unwrap();
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(request.uri(), "http://up.example/mkblk/4194304/2");
    let authorization = &request.headers()[header::AUTHORIZATION];
    assert_eq!(authorization, "ak:sign:policy", "no Bearer");
    assert!(authorization.is_sensitive());
    assert_eq!(
        header(&request, "uploadbatch"),
        "3f0b6c7e-0d35-4c1b-9a7e-2b1f1b1e6a00"
    );
    assert_eq!(header(&request, "content-type"), "application/octet-stream");
    assert_eq!(request.headers().len(), 3);
    assert_eq!(request.body().as_ref(), b"chunk");
    assert_eq!(UPLOAD_BATCH_HEADER, "UploadBatch");
    assert_eq!(
        UPLOAD_BATCH.as_str(),
        UPLOAD_BATCH_HEADER.to_ascii_lowercase()
    );
    assert_eq!(storage::wire_header_name(&UPLOAD_BATCH), "UploadBatch");
    assert!(!format!("{request:?}").contains("ak:sign:policy"));
}

#[test]
fn put_chunk_encodes_the_ctx_as_one_segment() {
    let request = put_chunk_request(
        UPLOAD_URL,
        &Secret::new("t"),
        &batch(),
        "Ab/cd+ef==",
        1_048_576,
        Bytes::from_static(b"x"),
    )
    .unwrap();
    assert_eq!(
        request.uri(),
        "http://127.0.0.1:9/wcs/bput/Ab%2Fcd+ef==/1048576"
    );
    assert_eq!(header(&request, "authorization"), "t");
    assert_eq!(header(&request, "uploadbatch"), batch());
    assert_eq!(header(&request, "content-type"), "application/octet-stream");
}

#[test]
fn make_file_joins_the_ctxs() {
    let ctxs = vec!["c1".to_owned(), "c/2".to_owned(), "c3==".to_owned()];
    let request =
        make_file_request(UPLOAD_URL, &Secret::new("t"), &batch(), 9 * MIB, &ctxs).unwrap();
    assert_eq!(request.uri(), "http://127.0.0.1:9/wcs/mkfile/9437184");
    assert_eq!(request.body().as_ref(), b"c1,c/2,c3==");
    assert_eq!(header(&request, "content-type"), "text/plain;charset=UTF-8");
    assert_eq!(header(&request, "authorization"), "t");
    assert_eq!(header(&request, "uploadbatch"), batch());
}

#[test]
fn upload_url_with_or_without_the_form_path() {
    for (url, expected) in [
        ("http://u.example", "http://u.example/mkfile/1"),
        ("http://u.example/", "http://u.example/mkfile/1"),
        ("http://u.example/file/upload", "http://u.example/mkfile/1"),
        ("http://u.example/file/upload/", "http://u.example/mkfile/1"),
        (
            "https://u.example:8443/wcs",
            "https://u.example:8443/wcs/mkfile/1",
        ),
        (
            "http://127.0.0.1:1/wcs/file/upload",
            "http://127.0.0.1:1/wcs/mkfile/1",
        ),
        ("http://u.example/file", "http://u.example/file/mkfile/1"),
    ] {
        let request = make_file_request(url, &Secret::new("t"), "b", 1, &["c".to_owned()]).unwrap();
        assert_eq!(request.uri(), expected, "{url}");
    }
    assert!(matches!(
        storage::storage_base("ftp://u.example"),
        Err(EncodeError::Invalid(
            ValidationError::UnsupportedScheme { .. }
        ))
    ));
    assert!(matches!(
        storage::storage_base("not a url"),
        Err(EncodeError::Invalid(ValidationError::InvalidUrl { .. }))
    ));
}

#[test]
fn encoders_refuse_bad_input() {
    let t = Secret::new("t");
    let empty = Secret::new("");
    let x = || Bytes::from_static(b"x");
    let block = |token: &Secret, batch: &str, size: u64, data: Bytes| {
        make_block_request(UPLOAD_URL, token, batch, size, 0, data)
    };
    let refused: [(&str, Result<HttpRequest, EncodeError>); 12] = [
        ("an empty block", block(&t, "b", 0, x())),
        ("a block over 4 MiB", block(&t, "b", BLOCK + 1, x())),
        (
            "a chunk larger than its block",
            block(&t, "b", 1, Bytes::from_static(b"xy")),
        ),
        ("an empty chunk", block(&t, "b", 1, Bytes::new())),
        ("an empty token", block(&empty, "b", 1, x())),
        ("an empty batch", block(&t, "", 1, x())),
        (
            "an empty ctx",
            put_chunk_request(UPLOAD_URL, &t, "b", "", 0, x()),
        ),
        (
            "an offset at the block's end",
            put_chunk_request(UPLOAD_URL, &t, "b", "c", BLOCK, x()),
        ),
        (
            "more blocks than ctxs",
            make_file_request(UPLOAD_URL, &t, "b", BLOCK + 1, &["c".into()]),
        ),
        (
            "a ctx with a comma",
            make_file_request(UPLOAD_URL, &t, "b", 1, &["a,b".into()]),
        ),
        (
            "an empty file name",
            upload_request(UPLOAD_URL, &t, None, "", None, x()),
        ),
        (
            "an empty form token",
            upload_request(UPLOAD_URL, &empty, None, "f", None, x()),
        ),
    ];
    for (what, result) in refused {
        assert!(
            matches!(result, Err(EncodeError::Invalid(_))),
            "{what}: {result:?}"
        );
    }
    let chunk = x;
    assert_eq!(
        make_block_request(UPLOAD_URL, &Secret::new("a\nb"), "b", 1, 0, chunk()).unwrap_err(),
        EncodeError::Header("Authorization")
    );
    assert_eq!(
        make_block_request(UPLOAD_URL, &t, "a\nb", 1, 0, chunk()).unwrap_err(),
        EncodeError::Header("UploadBatch")
    );
    let err =
        make_block_request(UPLOAD_URL, &Secret::new("sec\nret"), "b", 1, 0, chunk()).unwrap_err();
    assert!(!err.to_string().contains("sec"), "{err}");
}

// ---------------------------------------------------------------------------------
// Decoders
// ---------------------------------------------------------------------------------

fn response(status: u16, body: &'static str) -> HttpResponse {
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Bytes::from_static(body.as_bytes()))
        .unwrap()
}

#[test]
fn decoders_read_answers() {
    let chunk = decode_chunk_stored(&response(
        200,
        r#"{"ctx":"abc/+=","offset":4194304,"checksum":"x"}"#,
    ))
    .unwrap();
    assert_eq!(
        chunk,
        ChunkStored {
            ctx: "abc/+=".into(),
            offset: 4_194_304
        }
    );
    let file = decode_file_stored(&response(
        200,
        r#"{"hash":"lgYD1AjrK5Daxq-Dt0qemSPKdNbh","key":"user-upload/20180130/11517286943892.torrent"}"#,
    ))
    .unwrap();
    assert_eq!(file.hash.as_str(), "lgYD1AjrK5Daxq-Dt0qemSPKdNbh");
    assert_eq!(
        file.key.as_deref(),
        Some("user-upload/20180130/11517286943892.torrent")
    );
}

#[test]
fn decoders_map_code_message_errors() {
    let provider = |e: &ApiError| e.provider_error().cloned().unwrap();

    let err = decode_chunk_stored(&response(
        401,
        r#"{"code":401,"message":"token is expired"}"#,
    ))
    .unwrap_err();
    assert!(matches!(err, ApiError::TokenInvalid(_)), "{err:?}");
    assert_eq!(provider(&err).code, Code::Int(401));
    assert_eq!(provider(&err).message, "token is expired");
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);

    let mut limited = response(429, r#"{"code":429,"message":"slow down"}"#);
    limited
        .headers_mut()
        .insert(header::RETRY_AFTER, "7".parse().unwrap());
    let err = decode_file_stored(&limited).unwrap_err();
    let ApiError::RateLimited { error, retry_after } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(error.message, "slow down");
    assert_eq!(*retry_after, Some(Duration::from_secs(7)));

    let err =
        decode_chunk_stored(&response(400, r#"{"code":400,"message":"ctx invalid"}"#)).unwrap_err();
    assert!(matches!(err, ApiError::Provider(_)), "{err:?}");
    assert_eq!(provider(&err).code, Code::Int(400));
    assert_eq!(provider(&err).message, "ctx invalid");
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);

    // A 2xx carrying a code is an error too; so is a code on a 5xx.
    let err =
        decode_file_stored(&response(200, r#"{"code":406,"message":"file exists"}"#)).unwrap_err();
    assert!(matches!(err, ApiError::Provider(_)), "{err:?}");
    assert_eq!(provider(&err).code, Code::Int(406));
    let err =
        decode_file_stored(&response(200, r#"{"code":401,"message":"bad token"}"#)).unwrap_err();
    assert!(matches!(err, ApiError::TokenInvalid(_)), "{err:?}");
    let err = decode_file_stored(&response(503, r#"{"code":503}"#)).unwrap_err();
    assert_eq!(provider(&err).message, "");
    assert!(err.to_string().contains("503"), "{err}");
}

#[test]
fn decoders_keep_raw_bodies() {
    let html = "<html>502 Bad Gateway</html>";
    let err = decode_chunk_stored(&response(502, html)).unwrap_err();
    let ApiError::Http { status, body } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*status, StatusCode::BAD_GATEWAY);
    assert_eq!(body.as_ref(), html.as_bytes());

    let err = decode_chunk_stored(&response(429, "busy")).unwrap_err();
    assert!(matches!(err, ApiError::RateLimited { .. }), "{err:?}");

    let err = decode_file_stored(&response(200, "not json")).unwrap_err();
    let ApiError::Decode(decode) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(decode.kind, DecodeErrorKind::NotJson);
    assert_eq!(decode.body.as_ref(), b"not json");

    let err = decode_chunk_stored(&response(200, r#"{"ctx":"a","offset":"many"}"#)).unwrap_err();
    let ApiError::Decode(decode) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(decode.kind, DecodeErrorKind::Shape);
    assert_eq!(decode.path.as_deref(), Some("offset"));
    assert_eq!(decode.body.as_ref(), br#"{"ctx":"a","offset":"many"}"#);

    let err = decode_file_stored(&response(200, r#"{"hash":"nope","key":"k"}"#)).unwrap_err();
    assert!(
        matches!(&err, ApiError::Decode(d) if d.path.as_deref() == Some("hash")),
        "{err:?}"
    );

    let err =
        decode_chunk_stored(&response(200, r#"{"ctx":"a","offset":1} trailing"#)).unwrap_err();
    assert!(matches!(err, ApiError::Decode(_)), "{err:?}");
    let err = decode_chunk_stored(&response(200, r#"{"ctx":"a","#)).unwrap_err();
    assert!(
        matches!(&err, ApiError::Decode(d) if d.kind == DecodeErrorKind::Truncated),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------

/// File sizes from 0 to 13 MiB, weighted to the block boundaries.
fn sizes() -> impl Strategy<Value = u64> {
    let boundary = prop::sample::select(vec![
        0,
        1,
        BLOCK - 1,
        BLOCK,
        BLOCK + 1,
        2 * BLOCK - 1,
        2 * BLOCK,
        2 * BLOCK + 1,
        3 * BLOCK,
        3 * BLOCK + 1,
        13 * MIB,
    ]);
    prop_oneof![
        3 => boundary,
        1 => 0..=64 * KIB,
        2 => 0..=13 * MIB,
    ]
}

/// Chunk sizes from 1 KiB to 4 MiB, weighted to the ends.
fn chunk_sizes() -> impl Strategy<Value = u64> {
    prop_oneof![
        1 => Just(KIB),
        1 => Just(BLOCK),
        1 => Just(MIB),
        3 => 256 * KIB..=BLOCK,
        1 => KIB..=64 * KIB,
    ]
}

proptest! {
    #![proptest_config(persisted(40, "proptest-regressions/sixpan_upload.txt"))]

    #[test]
    fn every_byte_once_and_the_right_etag(
        size in sizes(),
        chunk in chunk_sizes(),
        in_flight in 1usize..=4,
        blocks_only in any::<bool>(),
        order_seed in any::<u64>(),
        data_seed in any::<u64>(),
    ) {
        let data = data_of(size, data_seed);
        let config = UploadConfig {
            chunk_size: chunk as u32,
            max_blocks_in_flight: in_flight,
            small_file_limit: if blocks_only { 0 } else { BLOCK },
        };
        let mut driver = Driver::new(data.clone());
        let mut plan = plan_for(&data, config);
        driver.run(&mut plan, order_seed).unwrap();
        assert_covers_once(&driver.sent, size, config);
        let outcome = plan.outcome().unwrap();
        prop_assert!(!outcome.instant);
        prop_assert_eq!(outcome.etag, qetag(&data));
        prop_assert_eq!(plan.bytes_acknowledged(), size);
        let mkblks = driver
            .sent
            .iter()
            .filter(|s| matches!(s, Sent::MakeBlock { .. }))
            .count() as u64;
        let blocks = if plan.is_form_upload() { 0 } else { size.div_ceil(BLOCK) };
        prop_assert_eq!(mkblks, blocks);
    }

    #[test]
    fn failures_and_restarts_still_end_with_the_right_etag(
        size in prop_oneof![Just(BLOCK + 1), 1..=9 * MIB],
        chunk in 256 * KIB..=BLOCK,
        in_flight in 1usize..=3,
        faults in prop::collection::vec(0u8..10, 64),
        data_seed in any::<u64>(),
    ) {
        let data = data_of(size, data_seed);
        let config = UploadConfig {
            chunk_size: chunk as u32,
            max_blocks_in_flight: in_flight,
            small_file_limit: 0,
        };
        let mut driver = Driver::new(data.clone());
        // Budgets that the faults below cannot spend: this is about the bytes.
        let policy = UploadPolicy {
            max_step_retries: 1000,
            extra_block_restarts: 1000,
            ..UploadPolicy::default()
        };
        let mut plan = plan_for(&data, config).with_policy(policy);
        // Faults for the first steps, then none: endless restarts could livelock.
        let mut faults = faults.into_iter().chain(std::iter::repeat(9));
        let mut rounds = 0;
        while !plan.is_finished() {
            rounds += 1;
            prop_assert!(rounds < 10_000, "no progress");
            let steps = driver.poll_all(&mut plan);
            prop_assert!(!steps.is_empty(), "waiting with nothing under way");
            for (ticket, step) in steps {
                match (faults.next().unwrap(), &step) {
                    // Lost before reaching the service.
                    (0, _) => driver.fail(&mut plan, ticket, TransportErrorKind::Connect),
                    // Reached the service, answer lost.
                    (1, step) if !matches!(step, Step::StoreToken(_)) => {
                        driver.call(step).unwrap();
                        driver.fail(&mut plan, ticket, TransportErrorKind::Closed);
                    }
                    // The ctx is refused: the block starts over.
                    (2, Step::PutChunk { .. }) => driver.refuse(&mut plan, ticket, 400),
                    // The connection drops before mkblk's answer: it starts over too.
                    (2, Step::MakeBlock { .. }) => {
                        driver.fail(&mut plan, ticket, TransportErrorKind::Closed);
                    }
                    _ => driver.run_step(&mut plan, (ticket, step)).unwrap(),
                }
            }
        }
        prop_assert_eq!(plan.error(), None);
        prop_assert_eq!(plan.outcome().unwrap().etag, qetag(&data));
    }
}
