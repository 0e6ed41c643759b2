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

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::cli::Provider;
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
    /// The cached token and its expiry, when one is cached and not about to expire.
    pub(crate) fn load_fresh(&self) -> Option<(String, Option<SystemTime>)> {
        let mut text = String::new();
        File::open(&self.path)
            .ok()?
            .read_to_string(&mut text)
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let token = v["token"].as_str()?.to_owned();
        let expires = v["expires_at"]
            .as_u64()
            .map(|s| UNIX_EPOCH + Duration::from_secs(s));
        if let Some(exp) = expires {
            if exp.checked_sub(MARGIN)? <= SystemTime::now() {
                return None;
            }
        }
        Some((token, expires))
    }

    /// Saves a token (written to a temporary file, then renamed over the entry).
    pub(crate) fn save(&self, token: &str, expires_at: Option<SystemTime>) -> std::io::Result<()> {
        let exp = expires_at
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        let body = serde_json::json!({"token": token, "expires_at": exp}).to_string();
        let tmp = self.path.with_extension("tmp");
        let mut f = open_private(&tmp, true)?;
        f.write_all(body.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
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
        drop(l);
        assert!(entry.remove().unwrap());
        assert!(!entry.remove().unwrap());
    }
}
