//! The task store as the torrent-client interfaces see it: [`Catalog`] over the
//! store and the drive (the rules are [`offline_proto::catalog`]'s).
//!
//! - An add is checked by the drive ([`Drive::accept`]) and refused as a duplicate
//!   when a task with its hash is listed; a torrent's unwanted files must be files of
//!   it. Categories, tags and the hold are kept in the row's options, so a restart
//!   keeps them.
//! - A held task stays in the waiting queue, never submitted until released.
//! - A delete: a task never sent to the drive goes at once; any other is marked
//!   deleted (the row's outcome `{"status": "deleted", "files": bool}`, so a restart
//!   finishes it) and left for the work loop to delete its drive task (6pan) and,
//!   when asked, trash its stored file (123pan), then forget. With `deleteFiles` on a
//!   drive that cannot delete files, the delete is refused and nothing changes.
//! - Categories and tags made are kept in the store's settings.

use std::collections::BTreeMap;

use offline_proto::aria2::{Gid, StoreError, TaskState, TaskView};
use offline_proto::catalog::{
    check_unwanted, is_hash, task_hash, unique_tags, valid_category_name, AddError, Catalog,
    Category, CategoryError, Hold, NewTask,
};
use offline_proto::torrent::magnet_info_hash;
use offline_store::State as Row;
use serde_json::{json, Value};

use crate::store::{unix_now, Extras, Store, WithDrive};
use crate::Drive;

impl Store {
    /// Sets one key of a task's options (`None` removes it), in the row too.
    pub(crate) fn set_option(
        &mut self,
        gid: Gid,
        key: &str,
        value: Option<Value>,
    ) -> Result<(), StoreError> {
        let Some(task) = self.tasks.get_mut(&gid) else {
            return Err(StoreError(format!("GID#{gid} is not found")));
        };
        let mut options: Value = task
            .entry
            .options
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or_else(|| json!({}));
        match (value, options.as_object_mut()) {
            (Some(v), Some(map)) => {
                map.insert(key.to_owned(), v);
            }
            (None, Some(map)) => {
                map.remove(key);
            }
            _ => {}
        }
        let text = options.to_string();
        self.journal
            .set_options(&task.entry, &text)
            .map_err(|e| StoreError(format!("the task store could not record it: {e}")))?;
        task.entry.options = Some(text);
        Ok(())
    }

    fn listed_gid(&self, gid: Gid) -> Option<&TaskView> {
        self.tasks
            .get(&gid)
            .map(|t| &t.view)
            .filter(|v| v.state != TaskState::Removed)
    }
}

impl<D: Drive> Catalog for WithDrive<'_, D> {
    fn default_dir(&self) -> String {
        self.store.default_dir().to_owned()
    }

    fn add(&mut self, task: NewTask) -> Result<Gid, AddError> {
        let NewTask {
            request,
            category,
            tags,
            held,
            unwanted,
        } = task;
        if let Some(name) = &category {
            if !self.store.categories.contains_key(name) {
                return Err(AddError::Refused(format!(
                    "category {name:?} does not exist"
                )));
            }
        }
        check_unwanted(&request.source, &unwanted).map_err(AddError::Refused)?;
        let accepted = self
            .drive
            .accept(&request)
            .map_err(|e| AddError::Refused(e.0))?;
        let info_hash = magnet_info_hash(&accepted.source);
        let hash = task_hash(info_hash, &accepted.source, 0);
        if let Some(existing) = self.by_hash(&hash) {
            return Err(AddError::Duplicate(existing.gid));
        }
        let extras = Extras {
            category,
            tags: unique_tags(&tags),
            held,
            unwanted,
        };
        self.store
            .add_with(request, accepted, None, &extras)
            .map_err(|e| AddError::Refused(e.0))
    }

    fn listed(&self) -> Vec<&TaskView> {
        self.store
            .in_order()
            .filter(|v| v.state != TaskState::Removed)
            .collect()
    }

    fn by_hash(&self, hash: &str) -> Option<&TaskView> {
        if !is_hash(hash) {
            return None;
        }
        let gid = *self.store.gid_by_hash(&hash.to_ascii_lowercase())?;
        self.store.listed_gid(gid)
    }

    fn by_id(&self, id: u64) -> Option<&TaskView> {
        let gid = *self.store.gid_by_id(id)?;
        self.store.listed_gid(gid)
    }

    fn delete(&mut self, gid: Gid, delete_files: bool) -> Result<(), StoreError> {
        if delete_files && !self.drive.deletes_files() {
            return Err(StoreError(format!(
                "{} files cannot be deleted through this daemon (no file call for it); delete without deleting files, then delete them in the drive",
                self.drive.provider()
            )));
        }
        let Some(task) = self.store.tasks.get(&gid) else {
            return Err(StoreError(format!("GID#{gid} is not found")));
        };
        let reached_drive = !matches!(task.entry.state, Row::Pending)
            && (task.entry.task.is_some() || task.file_id.is_some());
        if !reached_drive && task.entry.state != Row::Submitting {
            return self.store.remove_now(gid);
        }
        let file = task.file_id.clone();
        self.store.set_state(gid, TaskState::Removed);
        let outcome = json!({
            "status": "deleted", "files": delete_files, "at": unix_now(), "file": file,
        });
        self.store
            .set_deleting(gid, &outcome.to_string(), delete_files);
        Ok(())
    }

    fn hold(&mut self, gid: Gid, held: bool) -> Hold {
        let Some(task) = self.store.tasks.get(&gid) else {
            return Hold::NotPossible;
        };
        let queued = task.view.state == TaskState::Queued;
        if held && !queued {
            return Hold::NotPossible;
        }
        if queued && task.view.held != held {
            let value = held.then_some(Value::Bool(true));
            if self.store.set_option(gid, "held", value).is_err() {
                return Hold::NotPossible;
            }
            if let Some(t) = self.store.tasks.get_mut(&gid) {
                t.view.held = held;
            }
        }
        Hold::Done
    }

    fn set_category(&mut self, gid: Gid, category: Option<&str>) -> Result<(), CategoryError> {
        if let Some(name) = category {
            if !self.store.categories.contains_key(name) {
                return Err(CategoryError::Missing(name.to_owned()));
            }
        }
        self.store
            .set_option(gid, "category", category.map(|c| json!(c)))
            .map_err(|e| CategoryError::Store(e.0))?;
        if let Some(t) = self.store.tasks.get_mut(&gid) {
            t.view.category = category.map(str::to_owned);
        }
        Ok(())
    }

    fn set_tags(&mut self, gid: Gid, tags: &[String]) -> Result<(), StoreError> {
        let unique = unique_tags(tags);
        let value = (!unique.is_empty()).then(|| json!(unique));
        self.store.set_option(gid, "tags", value)?;
        if let Some(t) = self.store.tasks.get_mut(&gid) {
            t.view.tags = unique;
        }
        Ok(())
    }

    fn categories(&self) -> BTreeMap<String, Category> {
        self.store.categories.clone()
    }

    fn put_category(
        &mut self,
        name: &str,
        category: Category,
        create: bool,
    ) -> Result<(), CategoryError> {
        if !valid_category_name(name) {
            return Err(CategoryError::InvalidName(name.to_owned()));
        }
        let exists = self.store.categories.contains_key(name);
        if create && exists {
            return Err(CategoryError::Exists(name.to_owned()));
        }
        if !create && !exists {
            return Err(CategoryError::Missing(name.to_owned()));
        }
        let path = category.save_path.trim();
        if !path.is_empty() && !path.starts_with('/') {
            return Err(CategoryError::BadPath(format!(
                "a category's save path is a drive path such as /Media/TV, not {path:?}"
            )));
        }
        let category = Category {
            save_path: path.to_owned(),
        };
        let before = self.store.categories.insert(name.to_owned(), category);
        if let Err(e) = self.store.save_settings() {
            match before {
                Some(b) => self.store.categories.insert(name.to_owned(), b),
                None => self.store.categories.remove(name),
            };
            return Err(CategoryError::Store(e.to_string()));
        }
        Ok(())
    }

    fn remove_categories(&mut self, names: &[String]) {
        let mut changed = false;
        for name in names {
            changed |= self.store.categories.remove(name).is_some();
        }
        if !changed {
            return;
        }
        let in_them: Vec<Gid> = self
            .store
            .tasks
            .values()
            .filter(|t| t.view.category.as_ref().is_some_and(|c| names.contains(c)))
            .map(|t| t.view.gid)
            .collect();
        for gid in in_them {
            let _ = self.set_category(gid, None);
        }
        if let Err(e) = self.store.save_settings() {
            tracing::warn!(error = %e, "cannot record the categories in the task store");
        }
    }

    fn tags(&self) -> Vec<String> {
        let mut all = self.store.tags.clone();
        for task in self.store.tasks.values() {
            all.extend(task.view.tags.iter().cloned());
        }
        all.into_iter().collect()
    }

    fn create_tags(&mut self, tags: &[String]) {
        let before = self.store.tags.len();
        self.store
            .tags
            .extend(tags.iter().filter(|t| !t.trim().is_empty()).cloned());
        if self.store.tags.len() != before {
            if let Err(e) = self.store.save_settings() {
                tracing::warn!(error = %e, "cannot record the tags in the task store");
            }
        }
    }

    fn delete_tags(&mut self, tags: &[String]) {
        for tag in tags {
            self.store.tags.remove(tag);
        }
        let carrying: Vec<(Gid, Vec<String>)> = self
            .store
            .tasks
            .values()
            .filter(|t| t.view.tags.iter().any(|x| tags.contains(x)))
            .map(|t| {
                let kept = t.view.tags.iter().filter(|x| !tags.contains(x)).cloned();
                (t.view.gid, kept.collect())
            })
            .collect();
        for (gid, kept) in carrying {
            let _ = self.set_tags(gid, &kept);
        }
        if let Err(e) = self.store.save_settings() {
            tracing::warn!(error = %e, "cannot record the tags in the task store");
        }
    }
}
