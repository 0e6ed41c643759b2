//! Folders and files around offline download: the list (`GET /api/v2/file/list`),
//! mkdir (`POST /upload/v1/file/mkdir`), one entry's details (`GET /api/v1/file/detail`),
//! several entries' (`POST /api/v1/file/infos`), a download URL
//! (`GET /api/v1/file/download_info`) and the move to the trash
//! (`POST /api/v1/file/trash`), plus the rules a client walking folder paths
//! needs: how paths split into names ([`DrivePath`]), which entry of a page is the
//! folder sought ([`find_folder`]), when paging ends ([`Pages`]) and which refusal
//! means "that folder already exists" ([`is_duplicate_name`]).
//!
//! Facts: p123client (`fs_list`, `fs_mkdir`, `fs_info`, `download_info`, `fs_trash`),
//! OpenList's `drivers/123_open` (`types.go`, `util.go`), Qialas/123pan-go-sdk,
//! Cloxl/aio123pan (`delete_file`) and the vendor's pages they cite;
//! `docs/wire-notes.md` (123pan, files) says which gave what.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    DownloadInfoData, DownloadInfoRequest, Endpoint, EndpointId, FileDetailData, FileDetailRequest,
    FileEntry, FileInfosData, FileInfosRequest, FileListPage, FileListRequest, FileTrashRequest,
    FileType, MkdirData, MkdirRequest,
};
use crate::{ApiError, Code, HttpResponse, ValidationError};

/// The most entries one list page holds (`limit` ≤ 100).
pub const LIST_LIMIT_MAX: u32 = 100;

/// The most IDs one `infos` call takes.
pub const INFOS_MAX_IDS: usize = 100;

/// The most IDs one trash call takes: the vendor's 删除文件至回收站 page
/// (`一次性最大不能超过 100 个文件`), p123client's `fs_trash` (`最多 100 个`).
pub const TRASH_MAX_IDS: usize = 100;

/// The `lastFileId` of the last page.
pub const LAST_PAGE: i64 = -1;

/// The most pages [`Pages`] follows in one folder (100 entries each: a million
/// entries) before it gives up, against a server that never says "last page".
pub const MAX_PAGES: usize = 10_000;

/// The folder offline downloads land in when the create names none, created at the
/// root on first use (seed 002: `默认会下载到 "/来自:离线下载" 目录中`, p123client's
/// docstring).
pub const OFFLINE_FOLDER: &str = "来自:离线下载";

/// The envelope code of a refused mkdir whose name is taken (with a message containing
/// [`DUPLICATE_NAME_TEXT`]).
pub const CODE_DUPLICATE_NAME: i64 = 1;

/// What the message of a refused mkdir says when a folder of that name exists there
/// (`该目录下已经有同名文件夹,无法进行创建`; an rclone 123pan backend matches this text).
pub const DUPLICATE_NAME_TEXT: &str = "同名";

/// A file or folder ID; the root folder is [`FileId::ROOT`] (0).
///
/// Read from a JSON number or a string of digits (OpenList's `123_open` driver sends
/// mkdir's `parentID` as a string and production accepts it); written as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileId(pub u64);

impl FileId {
    /// The root folder.
    pub const ROOT: Self = Self(0);

    /// Whether this is the root folder.
    pub fn is_root(self) -> bool {
        self == Self::ROOT
    }

    /// A `PATH|ID` argument read as an ID: `Some` when `text` is all digits (a folder
    /// or file ID, as `--dir 14749926` or aria2's `dir` option may give it), `None`
    /// when it is a drive path to resolve ([`DrivePath`]).
    pub fn from_arg(text: &str) -> Option<Self> {
        let t = text.trim();
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for FileId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(Self)
    }
}

impl From<u64> for FileId {
    fn from(id: u64) -> Self {
        Self(id)
    }
}

impl Serialize for FileId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for FileId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Self(n)),
            Raw::Text(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
                .parse()
                .map(Self)
                .map_err(|_| serde::de::Error::custom(format!("ID {s:?} is too large"))),
            Raw::Text(s) => Err(serde::de::Error::custom(format!(
                "expected an ID (a number or a string of digits), got {s:?}"
            ))),
        }
    }
}

/// A yes/no the service writes as `0`/`1`; `true`/`false` are read too (p123client
/// documents `trashed` as a bool, OpenList reads an `int`). Written as `0`/`1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flag(pub bool);

impl Serialize for Flag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(u8::from(self.0))
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Number(i64),
        }
        Ok(Self(match Raw::deserialize(d)? {
            Raw::Bool(b) => b,
            Raw::Number(n) => n != 0,
        }))
    }
}

/// A time as the file calls give it, kept as sent: text such as `2025-02-28 09:25:54`
/// (UTC+8, no offset: the vendor pages; OpenList parses it so) or milliseconds since
/// the Unix epoch (Qialas/123pan-go-sdk types `updateAt` as `int64`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FileTime {
    /// `2025-02-28 09:25:54`, UTC+8.
    Text(String),
    /// Milliseconds since the Unix epoch.
    Millis(i64),
}

impl fmt::Display for FileTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(t) => f.write_str(t),
            Self::Millis(ms) => write!(f, "{ms} ms"),
        }
    }
}

impl FileListRequest {
    /// The first page of `folder`, [`LIST_LIMIT_MAX`] entries.
    pub fn folder(folder: FileId) -> Self {
        Self {
            parent_file_id: folder,
            limit: LIST_LIMIT_MAX,
            last_file_id: None,
            search_data: None,
            search_mode: None,
            trashed: None,
        }
    }

    /// The page that starts after `last_file_id` (the previous page's `lastFileId`).
    #[must_use]
    pub fn after(mut self, last_file_id: i64) -> Self {
        self.last_file_id = Some(last_file_id);
        self
    }
}

impl Endpoint for FileListRequest {
    type Output = FileListPage;
    const ID: EndpointId = EndpointId::FileList;

    /// `limit` 1 to [`LIST_LIMIT_MAX`]; `searchMode` 0 or 1.
    fn validate(&self) -> Result<(), ValidationError> {
        if !(1..=LIST_LIMIT_MAX).contains(&self.limit) {
            return Err(ValidationError::InvalidValue {
                field: "limit",
                reason: format!("must be 1 to {LIST_LIMIT_MAX}, got {}", self.limit),
            });
        }
        if let Some(mode) = self.search_mode.filter(|m| !(0..=1).contains(m)) {
            return Err(ValidationError::InvalidValue {
                field: "searchMode",
                reason: format!("must be 0 or 1, got {mode}"),
            });
        }
        Ok(())
    }
}

impl MkdirRequest {
    /// Create `name` in `parent`.
    pub fn new(parent: FileId, name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            parent_id: parent,
        }
    }
}

impl Endpoint for MkdirRequest {
    type Output = MkdirData;
    const ID: EndpointId = EndpointId::Mkdir;

    /// `name` a valid file name ([`super::validate_file_name`]).
    fn validate(&self) -> Result<(), ValidationError> {
        super::validate_file_name(&self.name)
    }
}

impl FileDetailRequest {
    /// The details of `file`.
    pub fn new(file: FileId) -> Self {
        Self { file_id: file }
    }
}

impl Endpoint for FileDetailRequest {
    type Output = FileDetailData;
    const ID: EndpointId = EndpointId::FileDetail;
}

impl FileInfosRequest {
    /// The details of `files`.
    pub fn new(files: impl IntoIterator<Item = FileId>) -> Self {
        Self {
            file_ids: files.into_iter().collect(),
        }
    }
}

impl Endpoint for FileInfosRequest {
    type Output = FileInfosData;
    const ID: EndpointId = EndpointId::FileInfos;

    /// 1 to [`INFOS_MAX_IDS`] IDs.
    fn validate(&self) -> Result<(), ValidationError> {
        id_batch("fileIds", self.file_ids.len(), INFOS_MAX_IDS)
    }
}

/// A batch of `len` IDs in field `field` of a call that takes 1 to `max`:
/// [`ValidationError::Empty`] for none, [`ValidationError::InvalidValue`] for more.
fn id_batch(field: &'static str, len: usize, max: usize) -> Result<(), ValidationError> {
    if len == 0 {
        return Err(ValidationError::Empty(field));
    }
    if len > max {
        return Err(ValidationError::InvalidValue {
            field,
            reason: format!("at most {max} per call, got {len}"),
        });
    }
    Ok(())
}

impl FileTrashRequest {
    /// Moves `files` (files or folders) to the trash: 1 to [`TRASH_MAX_IDS`] of them,
    /// checked when the request is built ([`Endpoint::to_http`]); split a longer list
    /// into calls of [`TRASH_MAX_IDS`].
    pub fn new(files: impl IntoIterator<Item = FileId>) -> Self {
        Self {
            file_ids: files.into_iter().collect(),
        }
    }
}

/// `POST /api/v1/file/trash` with `{"fileIDs": [...]}`; the answer's `data` is `null`,
/// so the output is `()`.
///
/// Trashed entries stay recoverable: the list and `infos` keep answering them, with
/// `trashed: 1` ([`FileEntry::is_trashed`]). The service documents no answer for an
/// unknown ID or for an entry already in the trash (the emulator answers the first
/// with 5066, [`ApiError::NotFound`], and the second with success).
///
/// Facts: the vendor's 删除文件至回收站 page (body, the 100 limit, the `data: null`
/// answer); p123client `fs_trash`, OpenList `123_open` `trash` and Cloxl/aio123pan
/// `delete_file`, which send the same body.
impl Endpoint for FileTrashRequest {
    type Output = ();
    const ID: EndpointId = EndpointId::FileTrash;

    /// 1 to [`TRASH_MAX_IDS`] IDs ([`ValidationError::Empty`] for none,
    /// [`ValidationError::InvalidValue`] for more).
    fn validate(&self) -> Result<(), ValidationError> {
        id_batch("fileIDs", self.file_ids.len(), TRASH_MAX_IDS)
    }

    /// Decodes the answer: `Ok(())` for a success envelope whatever its `data` (the
    /// service sends `null`).
    ///
    /// # Errors
    ///
    /// As [`decode_empty_envelope`](super::decode_empty_envelope).
    fn decode(response: &HttpResponse) -> Result<(), ApiError> {
        super::decode_empty_envelope(response)
    }
}

impl DownloadInfoRequest {
    /// A download URL for `file`.
    pub fn new(file: FileId) -> Self {
        Self { file_id: file }
    }
}

impl Endpoint for DownloadInfoRequest {
    type Output = DownloadInfoData;
    const ID: EndpointId = EndpointId::DownloadInfo;
}

impl FileEntry {
    /// Whether the entry is a folder.
    pub fn is_folder(&self) -> bool {
        self.kind == FileType::Folder
    }

    /// Whether the entry is in the trash: the list answers such entries too, and they
    /// are no longer in the folder.
    pub fn is_trashed(&self) -> bool {
        self.trashed.0
    }
}

impl FileDetailData {
    /// Whether the entry is a folder.
    pub fn is_folder(&self) -> bool {
        self.kind == FileType::Folder
    }
}

impl FileListPage {
    /// The entries that are in the folder: those not in the trash.
    pub fn entries(&self) -> impl Iterator<Item = &FileEntry> {
        self.file_list.iter().filter(|e| !e.is_trashed())
    }
}

/// The folder named `name` among `entries`: a folder (not a file), not in the trash,
/// named exactly `name` (the service's names are case-sensitive).
pub fn find_folder<'a>(
    entries: impl IntoIterator<Item = &'a FileEntry>,
    name: &str,
) -> Option<&'a FileEntry> {
    entries
        .into_iter()
        .find(|e| e.is_folder() && !e.is_trashed() && e.filename == name)
}

/// The name a cloud-drive download of `url` is stored under when the create gives no
/// `fileName`: the URL's last path segment, percent-decoded, or `download` when it has
/// none (the service documents no rule; this is the emulator's, and what
/// [`stored_file`] looks for).
pub fn url_stored_name(url: &str) -> String {
    let name = url::Url::parse(url)
        .map(|u| super::url_file_name(&u))
        .unwrap_or_default();
    if name.trim().is_empty() {
        "download".to_owned()
    } else {
        name
    }
}

/// The file a finished download stored as `name` among a folder's `entries`: a file
/// (not in the trash, not among `claimed`) named `name`, or renamed as a taken name is
/// (`a(1).bin` for `a.bin`); the newest (highest ID) when several match. The progress
/// call does not say which file a task made, so a client finds it so; give the IDs
/// already matched to other tasks of the same name as `claimed`.
pub fn stored_file<'a>(
    entries: &'a [FileEntry],
    name: &str,
    claimed: &[FileId],
) -> Option<&'a FileEntry> {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, Some(ext)),
        _ => (name, None),
    };
    let renamed = |candidate: &str| {
        let rest = match ext {
            Some(ext) => candidate
                .strip_suffix(ext)
                .and_then(|c| c.strip_suffix('.')),
            None => Some(candidate),
        };
        rest.and_then(|r| r.strip_prefix(stem))
            .and_then(|r| r.strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    entries
        .iter()
        .filter(|e| !e.is_folder() && !e.is_trashed() && !claimed.contains(&e.file_id))
        .filter(|e| e.filename == name || renamed(&e.filename))
        .max_by_key(|e| e.file_id)
}

/// Whether `error` is mkdir's refusal of a name already taken in that folder (code
/// [`CODE_DUPLICATE_NAME`] with [`DUPLICATE_NAME_TEXT`] in the message): the folder
/// exists, so a client that wanted it looks it up instead (another process may have
/// created it a moment ago).
pub fn is_duplicate_name(error: &ApiError) -> bool {
    error.provider_error().is_some_and(|e| {
        e.code == Code::Int(CODE_DUPLICATE_NAME) && e.message.contains(DUPLICATE_NAME_TEXT)
    })
}

/// Where paging through one folder stands: the next request, or the end.
///
/// Ends on `lastFileId` [`LAST_PAGE`], and also (so that a server that never says "last
/// page" cannot make a client page forever) on a `lastFileId` seen before, an empty
/// page, or after [`MAX_PAGES`] pages ([`PageError`]).
#[derive(Debug, Clone)]
pub struct Pages {
    request: FileListRequest,
    seen: HashSet<i64>,
    pages: usize,
    done: bool,
}

/// Why [`Pages`] stopped before the server said "last page".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PageError {
    /// The server answered a `lastFileId` it had already answered: it would loop.
    #[error("the file list repeated lastFileId {0}: stopped paging")]
    Repeated(i64),
    /// More than [`MAX_PAGES`] pages in one folder.
    #[error("the file list went on past {MAX_PAGES} pages: stopped paging")]
    TooManyPages,
}

impl Pages {
    /// Paging through `folder` from its first page.
    pub fn new(folder: FileId) -> Self {
        Self::from_request(FileListRequest::folder(folder))
    }

    /// Paging from `request` (a search, another page size).
    pub fn from_request(request: FileListRequest) -> Self {
        Self {
            request,
            seen: HashSet::new(),
            pages: 0,
            done: false,
        }
    }

    /// The request for the next page, or `None` when paging has ended.
    pub fn next_request(&self) -> Option<FileListRequest> {
        (!self.done).then(|| self.request.clone())
    }

    /// Takes in the answer to [`next_request`](Self::next_request).
    ///
    /// # Errors
    ///
    /// A [`PageError`] when the server would make paging go on forever; paging has
    /// ended then.
    pub fn handle_page(&mut self, page: &FileListPage) -> Result<(), PageError> {
        self.pages += 1;
        let next = page.last_file_id;
        if next == LAST_PAGE || page.file_list.is_empty() {
            self.done = true;
            return Ok(());
        }
        if !self.seen.insert(next) || self.request.last_file_id == Some(next) {
            self.done = true;
            return Err(PageError::Repeated(next));
        }
        if self.pages >= MAX_PAGES {
            self.done = true;
            return Err(PageError::TooManyPages);
        }
        self.request.last_file_id = Some(next);
        Ok(())
    }
}

/// A folder path in the drive, `/Movies/2026`: its names from the root down.
///
/// Parsing splits on `/`, ignores empty parts (`//a/` is `/a`) and `.`, and refuses
/// `..`, control characters and names over
/// [`FILE_NAME_MAX_CHARS`](super::FILE_NAME_MAX_CHARS) characters. It does not refuse
/// what mkdir would ([`super::validate_file_name`]): existing folders may have such
/// names, the service's own `来自:离线下载` among them. The root is the path with no
/// names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DrivePath {
    names: Vec<String>,
}

impl DrivePath {
    /// Parses `path` (leading `/` optional).
    ///
    /// # Errors
    ///
    /// [`ValidationError::InvalidFileName`] for a name with a control character or
    /// too long, [`ValidationError::InvalidValue`] for `..`.
    pub fn parse(path: &str) -> Result<Self, ValidationError> {
        let mut names = Vec::new();
        for name in path.split('/') {
            match name {
                "" | "." => continue,
                ".." => {
                    return Err(ValidationError::InvalidValue {
                        field: "path",
                        reason: format!("{path:?}: `..` is not allowed"),
                    })
                }
                name => {
                    if name.chars().any(char::is_control)
                        || name.chars().count() > super::FILE_NAME_MAX_CHARS
                    {
                        return Err(ValidationError::InvalidFileName {
                            name: name.to_owned(),
                            reason: "a control character, or longer than 255 characters",
                        });
                    }
                    names.push(name.to_owned());
                }
            }
        }
        Ok(Self { names })
    }

    /// The names from the root down.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.names.is_empty()
    }

    /// The path of the first `n` names (`/a/b/c`, 2 → `/a/b`).
    #[must_use]
    pub fn prefix(&self, n: usize) -> Self {
        Self {
            names: self.names[..n.min(self.names.len())].to_vec(),
        }
    }

    /// The path of a name inside this one.
    #[must_use]
    pub fn join(&self, name: &str) -> Self {
        let mut names = self.names.clone();
        names.push(name.to_owned());
        Self { names }
    }
}

impl fmt::Display for DrivePath {
    /// `/` for the root, else `/a/b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.names.is_empty() {
            return f.write_str("/");
        }
        for name in &self.names {
            write!(f, "/{name}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProviderError;

    fn entry(id: u64, name: &str, kind: FileType, trashed: bool) -> FileEntry {
        FileEntry {
            file_id: FileId(id),
            filename: name.to_owned(),
            kind,
            size: 0,
            etag: String::new(),
            status: 0,
            parent_file_id: FileId::ROOT,
            category: 0,
            trashed: Flag(trashed),
            punish_flag: None,
            s3_key_flag: None,
            storage_node: None,
            create_at: None,
            update_at: None,
        }
    }

    #[test]
    fn ids_read_numbers_and_digit_strings_and_write_numbers() {
        let id: FileId = serde_json::from_str("14749926").unwrap();
        assert_eq!(id, FileId(14749926));
        let id: FileId = serde_json::from_str("\"14749926\"").unwrap();
        assert_eq!(id, FileId(14749926));
        assert_eq!(serde_json::to_string(&id).unwrap(), "14749926");
        for bad in [
            "\"\"",
            "\"12a\"",
            "\"-1\"",
            "-1",
            "1.5",
            "\"99999999999999999999\"",
        ] {
            assert!(serde_json::from_str::<FileId>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_read_numbers_and_bools_and_write_numbers() {
        for (wire, value) in [("0", false), ("1", true), ("true", true), ("false", false)] {
            assert_eq!(serde_json::from_str::<Flag>(wire).unwrap(), Flag(value));
        }
        assert_eq!(serde_json::to_string(&Flag(true)).unwrap(), "1");
    }

    #[test]
    fn find_folder_skips_files_trashed_entries_and_other_names() {
        let entries = [
            entry(1, "Movies", FileType::File, false),
            entry(2, "Movies", FileType::Folder, true),
            entry(3, "movies", FileType::Folder, false),
            entry(4, "Movies", FileType::Folder, false),
        ];
        assert_eq!(find_folder(&entries, "Movies").unwrap().file_id, FileId(4));
        assert!(find_folder(&entries[..3], "Movies").is_none());
    }

    #[test]
    fn paths_parse_and_print() {
        let p = DrivePath::parse("//Movies/./2026/").unwrap();
        assert_eq!(p.names(), ["Movies", "2026"]);
        assert_eq!(p.to_string(), "/Movies/2026");
        assert_eq!(p.prefix(1).to_string(), "/Movies");
        assert_eq!(DrivePath::parse("/").unwrap().to_string(), "/");
        assert!(DrivePath::parse("/").unwrap().is_root());
        assert!(DrivePath::parse("/a/../b").is_err());
        assert!(DrivePath::parse("/a/b\u{1}c").is_err());
        assert_eq!(
            DrivePath::parse("/来自:离线下载").unwrap().names(),
            ["来自:离线下载"]
        );
    }

    fn page(last: i64, n: usize) -> FileListPage {
        FileListPage {
            last_file_id: last,
            file_list: (0..n)
                .map(|i| entry(i as u64 + 10, "x", FileType::File, false))
                .collect(),
        }
    }

    #[test]
    fn pages_end_on_last_page_and_on_a_repeated_cursor() {
        let mut pages = Pages::new(FileId(7));
        assert_eq!(pages.next_request().unwrap().last_file_id, None);
        pages.handle_page(&page(100, 100)).unwrap();
        assert_eq!(pages.next_request().unwrap().last_file_id, Some(100));
        pages.handle_page(&page(200, 100)).unwrap();
        pages.handle_page(&page(-1, 3)).unwrap();
        assert!(pages.next_request().is_none());

        let mut looping = Pages::new(FileId(7));
        looping.handle_page(&page(100, 100)).unwrap();
        assert_eq!(
            looping.handle_page(&page(100, 100)),
            Err(PageError::Repeated(100))
        );
        assert!(looping.next_request().is_none());

        let mut empty = Pages::new(FileId(7));
        empty.handle_page(&page(100, 0)).unwrap();
        assert!(empty.next_request().is_none());
    }

    #[test]
    fn pages_stop_after_the_maximum() {
        let mut pages = Pages::new(FileId(7));
        let mut result = Ok(());
        for i in 0..MAX_PAGES {
            result = pages.handle_page(&page(i as i64 + 1, 1));
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(PageError::TooManyPages));
        assert!(pages.next_request().is_none());
    }

    #[test]
    fn stored_files_are_found_by_name_or_renamed_name() {
        let mut entries = vec![
            entry(10, "a.bin", FileType::File, false),
            entry(11, "a(1).bin", FileType::File, false),
            entry(12, "a(x).bin", FileType::File, false),
            entry(13, "a.bin", FileType::Folder, false),
            entry(14, "a(2).bin", FileType::File, true),
            entry(15, "b", FileType::File, false),
            entry(16, "b(3)", FileType::File, false),
        ];
        entries[0].size = 1;
        assert_eq!(
            stored_file(&entries, "a.bin", &[]).unwrap().file_id,
            FileId(11)
        );
        let claimed = [FileId(11)];
        assert_eq!(
            stored_file(&entries, "a.bin", &claimed).unwrap().file_id,
            FileId(10)
        );
        assert!(stored_file(&entries, "a.bin", &[FileId(10), FileId(11)]).is_none());
        assert_eq!(stored_file(&entries, "b", &[]).unwrap().file_id, FileId(16));
        assert_eq!(url_stored_name("https://h/x/%E6%B5%8B.mp4?q=1"), "测.mp4");
        assert_eq!(url_stored_name("https://h/"), "download");
    }

    fn answer(body: &str) -> HttpResponse {
        http::Response::builder()
            .status(http::StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(bytes::Bytes::from(body.to_owned()))
            .unwrap()
    }

    #[test]
    fn trash_takes_one_to_a_hundred_ids_and_refuses_the_rest_before_encoding() {
        let base = crate::BaseUrl::parse(super::super::DEFAULT_BASE_URL).unwrap();
        let token = crate::Secret::new("t");
        let request = FileTrashRequest::new([FileId(14705301), FileId(14705306)])
            .to_http(&base, Some(&token))
            .unwrap();
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri().path(), "/api/v1/file/trash");
        assert_eq!(request.headers()["platform"], "open_platform");
        assert_eq!(request.headers()["authorization"], "Bearer t");
        assert_eq!(
            request.body().as_ref(),
            br#"{"fileIDs":[14705301,14705306]}"#
        );

        let full = FileTrashRequest::new((1..=TRASH_MAX_IDS as u64).map(FileId));
        assert!(full.to_http(&base, Some(&token)).is_ok());
        let over = FileTrashRequest::new((1..=TRASH_MAX_IDS as u64 + 1).map(FileId));
        assert!(matches!(
            over.validate(),
            Err(ValidationError::InvalidValue { field: "fileIDs", ref reason }) if reason.contains("101")
        ));
        assert!(matches!(
            over.to_http(&base, Some(&token)),
            Err(crate::EncodeError::Invalid(
                ValidationError::InvalidValue { .. }
            ))
        ));
        assert_eq!(
            FileTrashRequest::new([]).validate(),
            Err(ValidationError::Empty("fileIDs"))
        );
    }

    #[test]
    fn trash_answers_decode_with_data_null_absent_or_an_error() {
        let ok = r#"{"code":0,"message":"ok","data":null,"x-traceID":"566f23e5"}"#;
        assert!(FileTrashRequest::decode(&answer(ok)).is_ok());
        assert!(FileTrashRequest::decode(&answer(r#"{"code":0,"message":"ok"}"#)).is_ok());
        let missing = r#"{"code":5066,"message":"文件不存在","data":null,"x-traceID":"x"}"#;
        assert!(matches!(
            FileTrashRequest::decode(&answer(missing)),
            Err(ApiError::NotFound(_))
        ));
        assert!(FileTrashRequest::decode(&answer("<html>")).is_err());
        // The same answer read as a call that expects data is a decode error.
        assert!(FileInfosRequest::decode(&answer(ok)).is_err());
    }

    #[test]
    fn duplicate_names_are_told_from_other_refusals() {
        let refusal = |code, message: &str| {
            ApiError::Provider(ProviderError {
                code: Code::Int(code),
                message: message.to_owned(),
                trace_id: None,
                status: http::StatusCode::OK,
            })
        };
        assert!(is_duplicate_name(&refusal(
            1,
            "该目录下已经有同名文件夹,无法进行创建"
        )));
        assert!(!is_duplicate_name(&refusal(1, "internal error")));
        assert!(!is_duplicate_name(&refusal(5066, "同名")));
    }
}
