//! An in-memory [`Catalog`] for the torrent-client layers' tests
//! (`tests/qbittorrent.rs`, `tests/transmission.rs`), which include it with
//! `#[path]`. Each uses part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use offline_proto::aria2::{FileView, Gid, Source, StoreError, TaskState, TaskView, TorrentInfo};
use offline_proto::catalog::{
    task_hash, AddError, Catalog, Category, CategoryError, Hold, NewTask,
};
use offline_proto::torrent::{InfoHash, Metainfo};

/// Tasks in a vector, in the order added; hold honoured only for `Queued`; a
/// duplicate is a task with the same hash.
#[derive(Default)]
pub(crate) struct Fake {
    pub(crate) tasks: Vec<TaskView>,
    pub(crate) categories: BTreeMap<String, Category>,
    pub(crate) created_tags: BTreeSet<String>,
    pub(crate) added: Vec<NewTask>,
    pub(crate) deleted: Vec<(Gid, bool)>,
    pub(crate) refuse: Option<String>,
    pub(crate) refuse_deletes: bool,
    pub(crate) next: u64,
}

impl Fake {
    pub(crate) fn with_categories() -> Self {
        let mut fake = Self::default();
        fake.categories.insert(
            "tv".into(),
            Category {
                save_path: "/Media/TV".into(),
            },
        );
        fake.categories.insert("movies".into(), Category::default());
        fake
    }

    pub(crate) fn with(tasks: Vec<TaskView>) -> Self {
        let mut fake = Self::with_categories();
        fake.tasks = tasks;
        fake
    }

    pub(crate) fn task_with_hash(&self, hash: &str) -> &TaskView {
        self.tasks.iter().find(|t| t.hash == hash).unwrap()
    }

    pub(crate) fn task(&self, gid: Gid) -> &TaskView {
        self.tasks.iter().find(|t| t.gid == gid).unwrap()
    }

    pub(crate) fn task_mut(&mut self, gid: Gid) -> Option<&mut TaskView> {
        self.tasks.iter_mut().find(|t| t.gid == gid)
    }
}

pub(crate) fn magnet_infohash(link: &str) -> Option<InfoHash> {
    offline_proto::torrent::magnet_info_hash(link)
}

impl Catalog for Fake {
    fn default_dir(&self) -> String {
        "/Downloads".into()
    }

    fn add(&mut self, task: NewTask) -> Result<Gid, AddError> {
        if let Some(reason) = &self.refuse {
            return Err(AddError::Refused(reason.clone()));
        }
        let (hash, uris, meta) = match &task.request.source {
            Source::Uris(uris) if uris[0].starts_with("ftp:") => {
                return Err(AddError::Refused("the drive cannot fetch ftp links".into()));
            }
            Source::Uris(uris) => {
                let hash = task_hash(magnet_infohash(&uris[0]), &uris[0], 0);
                (hash, uris.clone(), None)
            }
            Source::Torrent { bytes, .. } => {
                let meta = Metainfo::from_bytes(bytes)
                    .map_err(|e| AddError::Refused(format!("bad torrent: {e}")))?;
                (meta.info_hash.to_string(), Vec::new(), Some(meta))
            }
        };
        if let Some(existing) = self.by_hash(&hash) {
            return Err(AddError::Duplicate(existing.gid));
        }
        self.next += 1;
        let gid = Gid::new(0x1000 + self.next);
        let dir = task
            .request
            .dir
            .clone()
            .unwrap_or_else(|| self.default_dir());
        let mut view = TaskView::new(gid, TaskState::Queued, dir);
        view.id = self.next;
        view.hash = hash;
        view.uris = uris;
        view.name.clone_from(&task.request.out);
        view.category.clone_from(&task.category);
        view.tags.clone_from(&task.tags);
        view.held = task.held;
        view.added_on = 1_700_000_000 + self.next as i64;
        if let Some(meta) = meta {
            view.name.get_or_insert(meta.name.clone());
            view.total_length = Some(meta.total_length);
            if meta.multi_file {
                view.files = meta
                    .files
                    .iter()
                    .map(|f| FileView {
                        path: f.joined_path(),
                        length: f.length,
                        selected: !task.unwanted.contains(&f.index),
                    })
                    .collect();
            }
            view.torrent = Some(TorrentInfo {
                info_hash: Some(meta.info_hash),
                name: Some(meta.name.clone()),
                multi_file: meta.multi_file,
                announce_list: meta
                    .trackers()
                    .iter()
                    .map(|t| vec![(*t).to_owned()])
                    .collect(),
                comment: meta.comment.clone(),
                creation_date: meta.creation_date,
                piece_length: Some(meta.piece_length),
            });
        }
        self.tasks.push(view);
        self.added.push(task);
        Ok(gid)
    }

    fn listed(&self) -> Vec<&TaskView> {
        self.tasks
            .iter()
            .filter(|t| t.state != TaskState::Removed)
            .collect()
    }

    fn by_hash(&self, hash: &str) -> Option<&TaskView> {
        self.listed()
            .into_iter()
            .find(|t| t.hash.eq_ignore_ascii_case(hash))
    }

    fn by_id(&self, id: u64) -> Option<&TaskView> {
        self.listed().into_iter().find(|t| t.id == id)
    }

    fn delete(&mut self, gid: Gid, delete_files: bool) -> Result<(), StoreError> {
        if self.refuse_deletes && delete_files {
            return Err(StoreError("this drive cannot delete files".into()));
        }
        self.tasks.retain(|t| t.gid != gid);
        self.deleted.push((gid, delete_files));
        Ok(())
    }

    fn hold(&mut self, gid: Gid, held: bool) -> Hold {
        match self.task_mut(gid) {
            Some(t) if t.state == TaskState::Queued => {
                t.held = held;
                Hold::Done
            }
            _ => Hold::NotPossible,
        }
    }

    fn set_category(&mut self, gid: Gid, category: Option<&str>) -> Result<(), CategoryError> {
        if let Some(c) = category {
            if !self.categories.contains_key(c) {
                return Err(CategoryError::Missing(c.into()));
            }
        }
        if let Some(t) = self.task_mut(gid) {
            t.category = category.map(str::to_owned);
        }
        Ok(())
    }

    fn set_tags(&mut self, gid: Gid, tags: &[String]) -> Result<(), StoreError> {
        if let Some(t) = self.task_mut(gid) {
            t.tags = tags.to_vec();
        }
        Ok(())
    }

    fn categories(&self) -> BTreeMap<String, Category> {
        self.categories.clone()
    }

    fn put_category(
        &mut self,
        name: &str,
        category: Category,
        create: bool,
    ) -> Result<(), CategoryError> {
        if name.contains('\\') {
            return Err(CategoryError::InvalidName(name.into()));
        }
        match (self.categories.contains_key(name), create) {
            (true, true) => Err(CategoryError::Exists(name.into())),
            (false, false) => Err(CategoryError::Missing(name.into())),
            _ => {
                self.categories.insert(name.into(), category);
                Ok(())
            }
        }
    }

    fn remove_categories(&mut self, names: &[String]) {
        for n in names {
            self.categories.remove(n);
        }
    }

    fn tags(&self) -> Vec<String> {
        let mut all = self.created_tags.clone();
        for t in &self.tasks {
            all.extend(t.tags.iter().cloned());
        }
        all.into_iter().collect()
    }

    fn create_tags(&mut self, tags: &[String]) {
        self.created_tags.extend(tags.iter().cloned());
    }

    fn delete_tags(&mut self, tags: &[String]) {
        for t in tags {
            self.created_tags.remove(t);
        }
        for task in &mut self.tasks {
            task.tags.retain(|x| !tags.contains(x));
        }
    }
}
