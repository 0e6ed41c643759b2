//! The 123pan drive's folders and files, as the emulator keeps them: one tree for the
//! cloud drive and one for the image bed, and the calls that read and grow the drive's
//! (`GET /api/v2/file/list`, `POST /upload/v1/file/mkdir`, `GET /api/v1/file/detail`,
//! `POST /api/v1/file/infos`, `GET /api/v1/file/download_info`, `POST
//! /api/v1/file/trash`), plus the loopback download route the download URLs point at.
//!
//! The trash is a flag on the entry, as the service's `trashed`: a trashed entry stays
//! in the tree (the list and infos answer it with `trashed: 1`), is no longer in its
//! folder (names there are free again), and neither it nor anything under a trashed
//! folder gets a download URL or serves its bytes through one handed out before.
//!
//! IDs are handed out from one counter for files and folders of both trees (the first
//! is 500001); the root of each tree is 0. A page lists a folder's entries in ID order
//! (the service does not sort either); `lastFileId` is the last entry's ID while more
//! follow and `-1` on the last page. A finished download whose name is taken in its
//! folder is stored as `name(1).ext`, `name(2).ext`, ... .

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use offline_proto::pan123::{
    FileDetailData, FileEntry, FileId, FileListPage, FileTime, FileType, Flag, LAST_PAGE,
};
use rand::distr::Alphanumeric;
use rand::Rng;
use time::macros::{format_description, offset};
use time::OffsetDateTime;

/// How long a download URL works.
pub(crate) const DOWNLOAD_URL_LIFETIME: Duration = Duration::from_secs(3600);

/// Where download URLs point: `/_download/<token>/<name>`.
pub(crate) const DOWNLOAD_PREFIX: &str = "/_download/";

/// One file or folder.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) id: u64,
    pub(crate) parent: u64,
    pub(crate) name: String,
    pub(crate) folder: bool,
    pub(crate) size: u64,
    /// MD5 of the content, 32 lowercase hex digits; empty for a folder.
    pub(crate) etag: String,
    /// Where the bytes are, for a file.
    pub(crate) stored: Option<PathBuf>,
    pub(crate) trashed: bool,
    /// `2025-02-28 09:25:54`, UTC+8.
    pub(crate) created: String,
}

/// Why mkdir refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MkdirRefusal {
    /// The parent is not a folder of this tree.
    NoParent,
    /// A folder of that name is there already.
    Duplicate,
}

/// One tree of folders and files.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    nodes: BTreeMap<u64, Node>,
}

/// A time as the file calls write it: `2025-02-28 09:25:54` in UTC+8.
pub(crate) fn time_text(wall: SystemTime) -> String {
    OffsetDateTime::from(wall)
        .to_offset(offset!(+8))
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
}

impl Tree {
    /// Whether `id` is a folder of this tree (the root always is).
    pub(crate) fn is_folder(&self, id: u64) -> bool {
        id == 0 || self.nodes.get(&id).is_some_and(|n| n.folder && !n.trashed)
    }

    /// The folder named `name` in `parent`, if there is one (not trashed).
    pub(crate) fn folder_named(&self, parent: u64, name: &str) -> Option<u64> {
        self.nodes
            .values()
            .find(|n| n.parent == parent && n.folder && !n.trashed && n.name == name)
            .map(|n| n.id)
    }

    /// Creates folder `id` named `name` in `parent`.
    pub(crate) fn mkdir(
        &mut self,
        id: u64,
        parent: u64,
        name: &str,
        created: String,
    ) -> Result<u64, MkdirRefusal> {
        if !self.is_folder(parent) {
            return Err(MkdirRefusal::NoParent);
        }
        if self.folder_named(parent, name).is_some() {
            return Err(MkdirRefusal::Duplicate);
        }
        self.nodes.insert(
            id,
            Node {
                id,
                parent,
                name: name.to_owned(),
                folder: true,
                size: 0,
                etag: String::new(),
                stored: None,
                trashed: false,
                created,
            },
        );
        Ok(id)
    }

    /// Stores file `node` in its folder, renamed `name(1).ext`, ... when its name is
    /// taken there; the name it got.
    pub(crate) fn add_file(&mut self, mut node: Node) -> String {
        let taken = |tree: &Self, name: &str| {
            tree.nodes
                .values()
                .any(|n| n.parent == node.parent && !n.trashed && n.name == name)
        };
        if taken(self, &node.name) {
            let (stem, ext) = match node.name.rsplit_once('.') {
                Some((stem, ext)) if !stem.is_empty() => (stem.to_owned(), format!(".{ext}")),
                _ => (node.name.clone(), String::new()),
            };
            let free = (1u64..)
                .map(|i| format!("{stem}({i}){ext}"))
                .find(|candidate| !taken(self, candidate))
                .unwrap_or_default();
            node.name = free;
        }
        let name = node.name.clone();
        self.nodes.insert(node.id, node);
        name
    }

    /// Moves `id` to the trash; `false` when there is no such entry.
    pub(crate) fn trash(&mut self, id: u64) -> bool {
        self.nodes.get_mut(&id).map(|n| n.trashed = true).is_some()
    }

    /// Moves every one of `ids` to the trash (those already there stay), or none of
    /// them: `Err` with the first ID that is no entry of this tree.
    pub(crate) fn trash_all(&mut self, ids: &[u64]) -> Result<(), u64> {
        if let Some(unknown) = ids.iter().find(|id| !self.nodes.contains_key(id)) {
            return Err(*unknown);
        }
        for id in ids {
            self.trash(*id);
        }
        Ok(())
    }

    /// Whether `id` is in the trash, itself or through a trashed folder above it.
    pub(crate) fn in_trash(&self, id: u64) -> bool {
        let mut at = id;
        for _ in 0..=1024 {
            match self.nodes.get(&at) {
                Some(n) if n.trashed => return true,
                Some(n) => at = n.parent,
                None => return false,
            }
        }
        false
    }

    pub(crate) fn node(&self, id: u64) -> Option<&Node> {
        self.nodes.get(&id)
    }

    /// The total size of a folder's contents, or a file's size.
    fn size_of(&self, id: u64) -> u64 {
        match self.nodes.get(&id) {
            Some(n) if !n.folder => n.size,
            _ => self
                .nodes
                .values()
                .filter(|n| n.parent == id && !n.trashed)
                .map(|n| self.size_of(n.id))
                .sum(),
        }
    }

    /// The path of `id` from the root, `/a/b`.
    pub(crate) fn path_of(&self, id: u64) -> String {
        let mut names = Vec::new();
        let mut at = id;
        while let Some(n) = self.nodes.get(&at) {
            names.push(n.name.clone());
            at = n.parent;
            if names.len() > 1024 {
                break;
            }
        }
        names.reverse();
        format!("/{}", names.join("/"))
    }

    /// The entry of `id` as the list and infos calls answer it.
    pub(crate) fn entry(&self, id: u64) -> Option<FileEntry> {
        let n = self.nodes.get(&id)?;
        Some(FileEntry {
            file_id: FileId(n.id),
            filename: n.name.clone(),
            kind: kind_of(n),
            size: n.size,
            etag: n.etag.clone(),
            status: 0,
            parent_file_id: FileId(n.parent),
            category: 0,
            trashed: Flag(n.trashed),
            punish_flag: Some(0),
            s3_key_flag: Some(String::new()),
            storage_node: Some("emu".to_owned()),
            create_at: Some(FileTime::Text(n.created.clone())),
            update_at: Some(FileTime::Text(n.created.clone())),
        })
    }

    /// The detail call's answer for `id`.
    pub(crate) fn detail(&self, id: u64) -> Option<FileDetailData> {
        let n = self.nodes.get(&id)?;
        Some(FileDetailData {
            file_id: FileId(n.id),
            filename: n.name.clone(),
            kind: kind_of(n),
            size: self.size_of(id),
            etag: n.etag.clone(),
            status: 0,
            parent_file_id: FileId(n.parent),
            create_at: Some(FileTime::Text(n.created.clone())),
            trashed: Flag(n.trashed),
        })
    }

    /// One page: the entries of `parent` (or, with `search`, of the whole tree whose
    /// name contains it, or equals it when `exact`) with IDs above `after`, at most
    /// `limit` of them. Trashed entries are included, as the service includes them.
    pub(crate) fn page(
        &self,
        parent: u64,
        after: i64,
        limit: usize,
        search: Option<(&str, bool)>,
    ) -> FileListPage {
        let start = u64::try_from(after).unwrap_or(0);
        let mut matching = self
            .nodes
            .range(start.saturating_add(1)..)
            .map(|(_, n)| n)
            .filter(|n| match search {
                Some((term, true)) => n.name == term,
                Some((term, false)) => n.name.contains(term),
                None => n.parent == parent,
            });
        let entries: Vec<FileEntry> = matching
            .by_ref()
            .take(limit)
            .filter_map(|n| self.entry(n.id))
            .collect();
        let more = matching.next().is_some();
        let last_file_id = match entries.last() {
            Some(e) if more => i64::try_from(e.file_id.0).unwrap_or(LAST_PAGE),
            _ => LAST_PAGE,
        };
        FileListPage {
            last_file_id,
            file_list: entries,
        }
    }
}

fn kind_of(n: &Node) -> FileType {
    if n.folder {
        FileType::Folder
    } else {
        FileType::File
    }
}

/// The download URLs handed out: token → (file, valid until).
#[derive(Debug, Default)]
pub(crate) struct Links {
    links: HashMap<String, (u64, Instant)>,
}

impl Links {
    /// A new token for `file`, valid for [`DOWNLOAD_URL_LIFETIME`] from `now`.
    pub(crate) fn issue(&mut self, file: u64, now: Instant) -> String {
        self.links.retain(|_, (_, until)| *until > now);
        let token: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        self.links
            .insert(token.clone(), (file, now + DOWNLOAD_URL_LIFETIME));
        token
    }

    /// The file a token stands for, while it is valid.
    pub(crate) fn file(&self, token: &str, now: Instant) -> Option<u64> {
        self.links
            .get(token)
            .filter(|(_, until)| *until > now)
            .map(|(file, _)| *file)
    }
}

/// A `Range: bytes=...` header read against a file of `len` bytes: the inclusive
/// byte range to send, `Ok(None)` for the whole file (no header, or one this does not
/// read: several ranges, another unit), or `Err(())` when it cannot be satisfied.
pub(crate) fn range_of(headers: &HeaderMap, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = headers
        .get(http::header::RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (first, last) = spec.split_once('-').ok_or(())?;
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.is_empty(), last.is_empty()) {
        (true, true) => return Err(()),
        (true, false) => {
            let n: u64 = last.parse().map_err(|_| ())?;
            if n == 0 || len == 0 {
                return Err(());
            }
            (len.saturating_sub(n), len - 1)
        }
        (false, _) => {
            let a: u64 = first.parse().map_err(|_| ())?;
            let b: u64 = if last.is_empty() {
                len.saturating_sub(1)
            } else {
                last.parse::<u64>()
                    .map_err(|_| ())?
                    .min(len.saturating_sub(1))
            };
            if a >= len || b < a {
                return Err(());
            }
            (a, b)
        }
    };
    Ok(Some(range))
}

/// Serves the bytes at `path` (of `len` bytes), honouring a single `Range`.
pub(crate) async fn serve_file(
    path: &std::path::Path,
    len: u64,
    headers: &HeaderMap,
) -> Response<Full<Bytes>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let plain = |status: StatusCode, text: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *r.status_mut() = status;
        r
    };
    let range = match range_of(headers, len) {
        Ok(r) => r,
        Err(()) => {
            let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
    let count = if len == 0 { 0 } else { end - start + 1 };
    let read = async {
        let mut file = tokio::fs::File::open(path).await?;
        file.seek(std::io::SeekFrom::Start(start)).await?;
        let mut buf = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        file.take(count).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let Ok(bytes) = read.await else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file");
    };
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&count.to_string()) {
        headers.insert(CONTENT_LENGTH, v);
    }
    if range.is_some() {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
            headers.insert(CONTENT_RANGE, v);
        }
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: u64, parent: u64, name: &str) -> Node {
        Node {
            id,
            parent,
            name: name.to_owned(),
            folder: false,
            size: id,
            etag: "e".to_owned(),
            stored: None,
            trashed: false,
            created: String::new(),
        }
    }

    #[test]
    fn folders_files_and_renames() {
        let mut t = Tree::default();
        assert_eq!(t.mkdir(1, 0, "a", String::new()), Ok(1));
        assert_eq!(
            t.mkdir(2, 0, "a", String::new()),
            Err(MkdirRefusal::Duplicate)
        );
        assert_eq!(
            t.mkdir(2, 9, "b", String::new()),
            Err(MkdirRefusal::NoParent)
        );
        assert_eq!(t.add_file(file(3, 1, "x.bin")), "x.bin");
        assert_eq!(t.add_file(file(4, 1, "x.bin")), "x(1).bin");
        assert_eq!(t.add_file(file(5, 1, "x.bin")), "x(2).bin");
        assert_eq!(t.add_file(file(6, 1, "noext")), "noext");
        assert_eq!(t.add_file(file(7, 1, "noext")), "noext(1)");
        assert_eq!(t.path_of(4), "/a/x(1).bin");
        assert_eq!(t.detail(1).unwrap().size, 3 + 4 + 5 + 6 + 7);
        assert!(t.trash(3));
        assert_eq!(t.detail(1).unwrap().size, 4 + 5 + 6 + 7);
    }

    #[test]
    fn trash_all_is_all_or_nothing_and_reaches_below_folders() {
        let mut t = Tree::default();
        t.mkdir(1, 0, "a", String::new()).unwrap();
        t.add_file(file(2, 1, "x.bin"));
        t.add_file(file(3, 0, "y.bin"));
        assert_eq!(t.trash_all(&[3, 99]), Err(99));
        assert!(!t.in_trash(3), "nothing trashed when an ID is unknown");
        assert_eq!(t.trash_all(&[3, 3]), Ok(()));
        assert_eq!(t.trash_all(&[3]), Ok(()), "already in the trash");
        assert!(t.in_trash(3));
        assert!(t.entry(3).unwrap().trashed.0);
        assert!(!t.in_trash(2));
        t.trash_all(&[1]).unwrap();
        assert!(t.in_trash(2), "under a trashed folder");
        assert!(!t.entry(2).unwrap().trashed.0, "its own flag is unchanged");
        assert_eq!(t.add_file(file(4, 0, "y.bin")), "y.bin", "the name is free");
    }

    #[test]
    fn pages_follow_ids_and_end_with_minus_one() {
        let mut t = Tree::default();
        t.mkdir(1, 0, "a", String::new()).unwrap();
        for id in 2..=6 {
            t.add_file(file(id, 1, &format!("f{id}")));
        }
        let first = t.page(1, 0, 2, None);
        assert_eq!(first.last_file_id, 3);
        assert_eq!(first.file_list.len(), 2);
        let second = t.page(1, first.last_file_id, 2, None);
        assert_eq!(second.last_file_id, 5);
        let last = t.page(1, second.last_file_id, 2, None);
        assert_eq!(last.last_file_id, -1);
        assert_eq!(last.file_list.len(), 1);
        let exact = t.page(0, 0, 100, Some(("f4", true)));
        assert_eq!(exact.file_list.len(), 1);
        assert_eq!(t.page(0, 0, 100, Some(("f", false))).file_list.len(), 5);
    }

    #[test]
    fn ranges() {
        let h = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(http::header::RANGE, HeaderValue::from_str(v).unwrap());
            h
        };
        assert_eq!(range_of(&HeaderMap::new(), 10), Ok(None));
        assert_eq!(range_of(&h("bytes=0-3"), 10), Ok(Some((0, 3))));
        assert_eq!(range_of(&h("bytes=5-"), 10), Ok(Some((5, 9))));
        assert_eq!(range_of(&h("bytes=-4"), 10), Ok(Some((6, 9))));
        assert_eq!(range_of(&h("bytes=8-100"), 10), Ok(Some((8, 9))));
        assert_eq!(range_of(&h("bytes=10-"), 10), Err(()));
        assert_eq!(range_of(&h("bytes=4-2"), 10), Err(()));
        assert_eq!(range_of(&h("bytes=0-1,4-5"), 10), Ok(None));
    }
}
