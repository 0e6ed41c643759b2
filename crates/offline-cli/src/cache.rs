//! The per-user token cache: the 123pan access token and the 6pan token, kept between
//! runs so that a script calling `offline` a thousand times fetches one token, not a
//! thousand (123pan refuses new tokens past a limit).
//!
//! Where: `$OFFLINE_CACHE_DIR`, else `$XDG_CACHE_HOME/offline`, else
//! `~/.cache/offline`. One file per provider, base URL and client ID or account,
//! named by a SHA-256 of those (never of the secret), mode 0600 in a 0700 directory.
//! Concurrent processes share it under an exclusive lock on a `.lock` file beside
//! each entry, held from reading a token to saving a fetched one. `offline logout`
//! deletes it.
//!
//! A 123pan entry may also hold an OAuth refresh token (`offline login --oauth`):
//! single use and rotating, so each new one is written (atomically, under the lock)
//! the moment it arrives, before the access token that came with it is used
//! ([`TokenStore`]); an entry with one makes later commands with that client ID use
//! OAuth.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::cli::Provider;
use offline_proto::Secret;

use crate::client::Conn;

/// A cached token is used until this long before it expires.
const MARGIN: Duration = Duration::from_secs(5 * 60);

/// The cache directory.
pub(crate) fn dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = env("OFFLINE_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = env("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("offline"));
    }
    env("HOME").map(|h| PathBuf::from(h).join(".cache").join("offline"))
}

/// One cache entry: a provider, a base URL and a client ID or account.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    path: PathBuf,
}

/// An entry under its exclusive lock (released when dropped).
#[derive(Debug)]
pub(crate) struct Locked {
    path: PathBuf,
    _lock: File,
}

impl Entry {
    /// The entry of a connection, when there is a cache directory and an identity
    /// (client ID or account) to key it by.
    pub(crate) fn for_conn(conn: &Conn) -> Option<Self> {
        let (provider, who) = match conn.provider {
            Provider::Pan123 => ("123pan", conn.client_id.as_deref()?),
            Provider::Pan6 => ("6pan", conn.account.as_deref()?),
        };
        let mut h = Sha256::new();
        h.update(provider.as_bytes());
        h.update([0]);
        h.update(conn.effective_base_url().trim_end_matches('/').as_bytes());
        h.update([0]);
        h.update(who.as_bytes());
        let digest = h.finalize();
        let name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        Some(Self {
            path: dir()?.join(format!("{provider}-{name}.json")),
        })
    }

    /// Takes the entry's lock, waiting for another process that holds it.
    pub(crate) fn lock(&self) -> std::io::Result<Locked> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let lock = open_private(&self.path.with_extension("lock"), false)?;
        lock.lock()?;
        Ok(Locked {
            path: self.path.clone(),
            _lock: lock,
        })
    }

    /// Deletes the entry; whether there was one.
    pub(crate) fn remove(&self) -> std::io::Result<bool> {
        let locked = self.lock()?;
        let existed = match std::fs::remove_file(&locked.path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        drop(locked);
        let _ = std::fs::remove_file(self.path.with_extension("lock"));
        Ok(existed)
    }
}

impl Locked {
    /// The entry's JSON object, when there is one.
    fn read(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        let mut text = String::new();
        File::open(&self.path)
            .ok()?
            .read_to_string(&mut text)
            .ok()?;
        match serde_json::from_str(&text).ok()? {
            serde_json::Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The cached token and its expiry, when one is cached and not about to expire.
    pub(crate) fn load_fresh(&self) -> Option<(String, Option<SystemTime>)> {
        let v = self.read()?;
        let token = v.get("token")?.as_str()?.to_owned();
        let expires = v
            .get("expires_at")
            .and_then(serde_json::Value::as_u64)
            .map(|s| UNIX_EPOCH + Duration::from_secs(s));
        if let Some(exp) = expires {
            if exp.checked_sub(MARGIN)? <= SystemTime::now() {
                return None;
            }
        }
        Some((token, expires))
    }

    /// The cached OAuth refresh token (123pan), when there is one.
    pub(crate) fn refresh_token(&self) -> Option<Secret> {
        let v = self.read()?;
        let token = v.get("refresh_token")?.as_str()?;
        (!token.is_empty()).then(|| Secret::new(token))
    }

    /// Saves a token, keeping the entry's refresh token.
    pub(crate) fn save(&self, token: &str, expires_at: Option<SystemTime>) -> std::io::Result<()> {
        let refresh = self.refresh_token();
        self.write(Some((token, expires_at)), refresh.as_ref())
    }

    /// Saves a new refresh token and the access token that came with it (none: the
    /// one cached ended with the refresh and is dropped).
    pub(crate) fn save_oauth(
        &self,
        refresh_token: &Secret,
        access: Option<(&str, Option<SystemTime>)>,
    ) -> std::io::Result<()> {
        self.write(access, Some(refresh_token))
    }

    /// Writes the entry to a temporary file, then renames it over the entry.
    fn write(
        &self,
        access: Option<(&str, Option<SystemTime>)>,
        refresh_token: Option<&Secret>,
    ) -> std::io::Result<()> {
        let mut body = serde_json::Map::new();
        if let Some((token, expires_at)) = access {
            let exp = expires_at
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs());
            body.insert("token".into(), token.into());
            body.insert("expires_at".into(), exp.into());
        }
        if let Some(refresh) = refresh_token {
            body.insert("refresh_token".into(), refresh.expose().into());
        }
        let body = serde_json::Value::Object(body).to_string();
        let tmp = self.path.with_extension("tmp");
        let mut f = open_private(&tmp, true)?;
        f.write_all(body.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// Where a 123pan client's tokens go: the entry, written under its lock, the one this
/// process holds already when it has it ([`hold`](Self::hold): from reading the cached
/// token to saving a fetched one), else one taken for the write. Its
/// [`hook`](Self::hook) is an OAuth client's `on_refresh`.
#[derive(Debug)]
pub(crate) struct TokenStore {
    entry: Entry,
    held: std::sync::Mutex<Option<Locked>>,
}

impl TokenStore {
    /// The store of `entry`.
    pub(crate) fn new(entry: Entry) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            entry,
            held: std::sync::Mutex::new(None),
        })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<Locked>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `lock` (the entry's) until [`release`](Self::release): writes use it.
    pub(crate) fn hold(&self, lock: Locked) {
        *self.held() = Some(lock);
    }

    /// Runs `f` with the entry's lock: the held one, else one taken for it.
    pub(crate) fn with_lock<T>(
        &self,
        f: impl FnOnce(&Locked) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        let held = self.held();
        match held.as_ref() {
            Some(lock) => f(lock),
            None => {
                drop(held);
                f(&self.entry.lock()?)
            }
        }
    }

    /// Releases the held lock, if any.
    pub(crate) fn release(&self) {
        self.held().take();
    }

    /// The `on_refresh` hook: writes each new refresh token at once (the access token
    /// it replaced is dropped: the refresh ended it). A failed write is reported on
    /// stderr: the next run will need `offline login --oauth` again.
    pub(crate) fn hook(self: &std::sync::Arc<Self>) -> offline_proto::pan123::RefreshHook {
        let store = std::sync::Arc::clone(self);
        std::sync::Arc::new(move |refresh: &Secret, _expires_at| {
            if let Err(e) = store.with_lock(|l| l.save_oauth(refresh, None)) {
                errln!(
                    "warning: cannot save the new OAuth refresh token in the token cache ({e}); the next run will need `offline login --oauth`"
                );
            }
        })
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

fn open_private(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_token_is_read_back_until_it_is_about_to_expire() {
        let dir = tempfile::tempdir().unwrap();
        let entry = Entry {
            path: dir.path().join("x.json"),
        };
        let l = entry.lock().unwrap();
        assert!(l.load_fresh().is_none());
        let later = SystemTime::now() + Duration::from_secs(3600);
        l.save("tok", Some(later)).unwrap();
        assert_eq!(l.load_fresh().unwrap().0, "tok");
        l.save("old", Some(SystemTime::now() + Duration::from_secs(60)))
            .unwrap();
        assert!(l.load_fresh().is_none(), "within the margin");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&entry.path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A refresh token is kept when a token is saved, and is removed with the entry.
        l.save_oauth(&Secret::new("rt-1"), Some(("acc", Some(later))))
            .unwrap();
        assert_eq!(l.refresh_token().unwrap().expose(), "rt-1");
        assert_eq!(l.load_fresh().unwrap().0, "acc");
        l.save("acc2", Some(later)).unwrap();
        assert_eq!(l.refresh_token().unwrap().expose(), "rt-1");
        l.save_oauth(&Secret::new("rt-2"), None).unwrap();
        assert!(
            l.load_fresh().is_none(),
            "the replaced access token is dropped"
        );
        assert_eq!(l.refresh_token().unwrap().expose(), "rt-2");
        drop(l);
        // Written through the store without a held lock, then with one.
        let store = TokenStore::new(entry.clone());
        (store.hook())(&Secret::new("rt-3"), SystemTime::now());
        store.hold(entry.lock().unwrap());
        (store.hook())(&Secret::new("rt-4"), SystemTime::now());
        store.release();
        let l = entry.lock().unwrap();
        assert_eq!(l.refresh_token().unwrap().expose(), "rt-4");
        drop(l);
        assert!(entry.remove().unwrap());
        assert!(!entry.remove().unwrap());
    }
}
