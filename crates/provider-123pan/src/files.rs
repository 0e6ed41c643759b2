//! Folders and files: mkdir, the paged list, details, download URLs, the move to the
//! trash, and folder paths resolved to IDs (the rules are [`offline_proto::pan123`]'s:
//! [`DrivePath`], [`find_folder`], [`Pages`], [`is_duplicate_name`]).

use std::collections::HashMap;

use futures_util::stream::{self, BoxStream, StreamExt};
use offline_proto::pan123::{
    find_folder, is_duplicate_name, DownloadInfoRequest, DrivePath, Endpoint, FileDetailData,
    FileDetailRequest, FileEntry, FileId, FileInfosRequest, FileListPage, FileTrashRequest,
    MkdirRequest, Pages, INFOS_MAX_IDS, TRASH_MAX_IDS,
};
use offline_proto::{EncodeError, HttpClient};

use crate::{Error, Pan123};

/// A folder path resolved by [`Pan123::resolve_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolvedDir {
    /// The folder's ID ([`FileId::ROOT`] for `/`).
    pub id: FileId,
    /// The path, normalized (`/Movies/2026`).
    pub path: DrivePath,
    /// The folders this call created, from the top down (empty when all existed).
    pub created: Vec<DrivePath>,
}

/// Folder paths already resolved by this client (shared by its clones).
#[derive(Debug, Default)]
pub(crate) struct DirCache {
    ids: HashMap<DrivePath, FileId>,
}

impl<C: HttpClient> Pan123<C> {
    /// Creates folder `name` in `parent` (`POST /upload/v1/file/mkdir`) and returns
    /// its ID.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a name the service refuses (nothing sent);
    /// [`Error::Api`] for the provider's refusal: a name already taken there is code 1
    /// ([`offline_proto::pan123::is_duplicate_name`] tells it), an unknown parent
    /// 5066; [`Error::Transport`].
    pub async fn mkdir(&self, parent: FileId, name: &str) -> Result<FileId, Error> {
        Ok(self.call(MkdirRequest::new(parent, name)).await?.dir_id)
    }

    /// The pages of `folder`'s entries (`GET /api/v2/file/list`), 100 at a time,
    /// following `lastFileId` until `-1`. Pages include entries in the trash: use
    /// [`FileListPage::entries`] for those in the folder. Paging stops with an error
    /// when the server repeats a cursor or goes past
    /// [`MAX_PAGES`](offline_proto::pan123::MAX_PAGES).
    ///
    /// # Errors
    ///
    /// Each item: [`Error::Api`] (an unknown folder is 5066), [`Error::Transport`],
    /// [`Error::Paging`]; the stream ends after an error.
    pub fn list(&self, folder: FileId) -> BoxStream<'_, Result<FileListPage, Error>> {
        stream::unfold(Some(Pages::new(folder)), move |pages| async move {
            let mut pages = pages?;
            let request = pages.next_request()?;
            let page = match self.call(request).await {
                Ok(page) => page,
                Err(e) => return Some((Err(e), None)),
            };
            match pages.handle_page(&page) {
                Ok(()) => Some((Ok(page), Some(pages))),
                Err(e) => Some((Err(Error::Paging(e)), None)),
            }
        })
        .boxed()
    }

    /// Every entry of `folder` not in the trash, all pages read.
    ///
    /// # Errors
    ///
    /// As [`list`](Self::list).
    pub async fn list_all(&self, folder: FileId) -> Result<Vec<FileEntry>, Error> {
        let mut out = Vec::new();
        let mut pages = self.list(folder);
        while let Some(page) = pages.next().await {
            out.extend(page?.entries().cloned());
        }
        Ok(out)
    }

    /// One file's or folder's details (`GET /api/v1/file/detail`); a folder's size is
    /// the total of its contents.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] (an unknown ID is 5066, `ApiError::NotFound`),
    /// [`Error::Transport`].
    pub async fn file(&self, id: FileId) -> Result<FileDetailData, Error> {
        self.call(FileDetailRequest::new(id)).await
    }

    /// Several entries' details (`POST /api/v1/file/infos`, 100 IDs per call); IDs the
    /// drive does not know are left out.
    ///
    /// # Errors
    ///
    /// [`Error::Api`], [`Error::Transport`].
    pub async fn files(&self, ids: &[FileId]) -> Result<Vec<FileEntry>, Error> {
        let mut out = Vec::new();
        for chunk in ids.chunks(INFOS_MAX_IDS) {
            let data = self
                .call(FileInfosRequest::new(chunk.iter().copied()))
                .await?;
            out.extend(data.file_list);
        }
        Ok(out)
    }

    /// A short-lived URL serving the file's bytes (`GET /api/v1/file/download_info`);
    /// it counts against the account's download traffic.
    ///
    /// # Errors
    ///
    /// [`Error::Api`]: 5066 unknown file (`ApiError::NotFound`), 5113 traffic used up
    /// (`ApiError::QuotaExceeded`); [`Error::Transport`].
    pub async fn download_url(&self, id: FileId) -> Result<String, Error> {
        Ok(self.call(DownloadInfoRequest::new(id)).await?.download_url)
    }

    /// Moves files and folders to the trash (`POST /api/v1/file/trash`), in calls of
    /// [`TRASH_MAX_IDS`] (100) IDs sent one after another: 101 IDs are two calls. The
    /// entries stay recoverable: [`list`](Self::list) and [`files`](Self::files) still
    /// answer them, with `trashed: 1` ([`FileEntry::is_trashed`]).
    ///
    /// It creates nothing, so, like a read, a call whose answer was lost is sent
    /// again. The emulator answers success for an entry already in the trash and
    /// gives a trashed file no [`download_url`](Self::download_url); the service
    /// documents neither.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for no IDs at all (nothing sent); [`Error::Api`] for the
    /// provider's refusal (an unknown ID: 5066, `ApiError::NotFound`, from the
    /// emulator, which then trashes none of that call's IDs; the service documents no
    /// answer for it); [`Error::Transport`]. The first failing call ends it: the calls
    /// before it were carried out, the ones after it not sent.
    pub async fn trash(&self, ids: &[FileId]) -> Result<(), Error> {
        if ids.is_empty() {
            let none = FileTrashRequest::new([]);
            return none
                .validate()
                .map_err(|e| Error::Invalid(EncodeError::from(e)));
        }
        for chunk in ids.chunks(TRASH_MAX_IDS) {
            self.call(FileTrashRequest::new(chunk.iter().copied()))
                .await?;
        }
        Ok(())
    }

    /// The ID of the folder at `path` (`/Movies/2026`), walking from the root one
    /// list per level; with `create`, missing folders are made (a name another
    /// process created a moment ago is looked up again, not an error). Results are
    /// cached for this client and its clones, and concurrent calls resolve one after
    /// another, so a batch of a thousand URLs into one folder lists it once.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a path that does not parse; [`Error::NoSuchFolder`]
    /// when a folder is missing and `create` is false; as [`list`](Self::list) and
    /// [`mkdir`](Self::mkdir) otherwise.
    pub async fn resolve_dir(&self, path: &str, create: bool) -> Result<ResolvedDir, Error> {
        let path = DrivePath::parse(path).map_err(|e| Error::Invalid(e.into()))?;
        let mut cache = self.dir_cache().lock().await;
        let mut created = Vec::new();
        let mut at = FileId::ROOT;
        for depth in 0..path.names().len() {
            let here = path.prefix(depth + 1);
            if let Some(id) = cache.ids.get(&here) {
                at = *id;
                continue;
            }
            let name = &path.names()[depth];
            let found = match self.find_child_folder(at, name).await? {
                Some(id) => id,
                None if !create => {
                    return Err(Error::NoSuchFolder {
                        path: path.to_string(),
                        missing: here.to_string(),
                    })
                }
                None => match self.mkdir(at, name).await {
                    Ok(id) => {
                        created.push(here.clone());
                        id
                    }
                    Err(Error::Api(e)) if is_duplicate_name(&e) => self
                        .find_child_folder(at, name)
                        .await?
                        .ok_or_else(|| Error::NoSuchFolder {
                            path: path.to_string(),
                            missing: here.to_string(),
                        })?,
                    Err(e) => return Err(e),
                },
            };
            cache.ids.insert(here, found);
            at = found;
        }
        Ok(ResolvedDir {
            id: at,
            path,
            created,
        })
    }

    /// The folder named `name` directly in `parent`, reading its pages until found.
    async fn find_child_folder(&self, parent: FileId, name: &str) -> Result<Option<FileId>, Error> {
        let mut pages = self.list(parent);
        while let Some(page) = pages.next().await {
            if let Some(entry) = find_folder(page?.entries(), name) {
                return Ok(Some(entry.file_id));
            }
        }
        Ok(None)
    }
}
