//! Torrent downloads through web seeds (BEP 19 `url-list`): where each file is, and
//! checking the pieces' SHA-1 as the bytes go by.

use offline_proto::torrent::{Metainfo, TorrentFile};
use sha1::{Digest as _, Sha1};
use url::Url;

use crate::common::fetch::is_loopback;

/// The first web seed on a loopback host (`127.0.0.0/8`, `::1`, `localhost`), over
/// http(s): the only ones this emulator downloads from.
pub(super) fn loopback_seed(meta: &Metainfo) -> Option<Url> {
    meta.web_seeds
        .iter()
        .filter_map(|s| Url::parse(s).ok())
        .find(|u| matches!(u.scheme(), "http" | "https") && is_loopback(u))
}

/// The URL of `file` on web seed `seed` (BEP 19): for a single-file torrent the seed
/// itself, or the seed + the name when the seed ends with `/`; for a multi-file one the
/// seed + `/` + the name + `/` + the path components, each percent-encoded.
pub(super) fn file_url(seed: &Url, meta: &Metainfo, file: &TorrentFile) -> String {
    let base = seed.as_str();
    if !meta.multi_file {
        return if base.ends_with('/') {
            format!("{base}{}", encode(&meta.name))
        } else {
            base.to_owned()
        };
    }
    let mut url = base.to_owned();
    if !url.ends_with('/') {
        url.push('/');
    }
    let parts: Vec<String> = file.path.iter().map(|c| encode(c)).collect();
    url.push_str(&parts.join("/"));
    url
}

/// Everything but RFC 3986 unreserved characters percent-encoded.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Checks pieces as the torrent's bytes are fed in order. Bytes that are skipped (files
/// not selected, failed downloads) make the pieces they touch unverifiable: those are
/// not checked, every piece seen whole is.
#[derive(Debug)]
pub(super) struct PieceVerifier<'a> {
    piece_length: u64,
    pieces: &'a [[u8; 20]],
    total: u64,
    /// The torrent offset of the next byte.
    pos: u64,
    hasher: Sha1,
    /// Whether every byte of the current piece so far was fed.
    intact: bool,
}

impl<'a> PieceVerifier<'a> {
    pub(super) fn new(meta: &'a Metainfo) -> Self {
        Self {
            piece_length: meta.piece_length,
            pieces: &meta.pieces,
            total: meta.total_length,
            pos: 0,
            hasher: Sha1::new(),
            intact: true,
        }
    }

    /// Moves to torrent offset `to` without seeing the bytes in between.
    pub(super) fn skip_to(&mut self, to: u64) {
        if to <= self.pos || self.piece_length == 0 {
            return;
        }
        self.pos = to;
        self.hasher = Sha1::new();
        self.intact = to.is_multiple_of(self.piece_length);
    }

    /// The next bytes; an error when they complete a piece whose SHA-1 is wrong.
    pub(super) fn feed(&mut self, mut data: &[u8]) -> Result<(), String> {
        if self.piece_length == 0 {
            return Ok(());
        }
        while !data.is_empty() {
            let room = self.piece_length - self.pos % self.piece_length;
            let take = usize::try_from(room).unwrap_or(usize::MAX).min(data.len());
            let (now, later) = data.split_at(take);
            if self.intact {
                self.hasher.update(now);
            }
            self.pos += take as u64;
            data = later;
            if self.pos.is_multiple_of(self.piece_length) {
                self.check(self.pos / self.piece_length - 1)?;
            }
        }
        Ok(())
    }

    /// `n` zero bytes (a BEP 47 padding file).
    pub(super) fn feed_zeros(&mut self, mut n: u64) -> Result<(), String> {
        const ZEROS: [u8; 4096] = [0; 4096];
        while n > 0 {
            let take = usize::try_from(n).unwrap_or(ZEROS.len()).min(ZEROS.len());
            self.feed(&ZEROS[..take])?;
            n -= take as u64;
        }
        Ok(())
    }

    /// Checks the last, shorter piece once the whole torrent was fed.
    pub(super) fn finish(&mut self) -> Result<(), String> {
        if self.piece_length == 0
            || self.pos != self.total
            || self.pos.is_multiple_of(self.piece_length)
        {
            return Ok(());
        }
        self.check(self.pos / self.piece_length)
    }

    fn check(&mut self, index: u64) -> Result<(), String> {
        let hasher = std::mem::take(&mut self.hasher);
        let intact = std::mem::replace(&mut self.intact, true);
        let expected = usize::try_from(index).ok().and_then(|i| self.pieces.get(i));
        match expected {
            Some(expected) if intact => {
                let digest: [u8; 20] = hasher.finalize().into();
                if &digest == expected {
                    Ok(())
                } else {
                    Err(format!("piece {index} failed its SHA-1 check"))
                }
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A torrent of `files` (name, bytes) with piece length 4, as bencode.
    fn torrent(multi: bool, files: &[(&str, &[u8])], seed: &str) -> Vec<u8> {
        let content: Vec<u8> = files.iter().flat_map(|(_, b)| b.iter().copied()).collect();
        let mut pieces = Vec::new();
        for chunk in content.chunks(4) {
            pieces.extend_from_slice(&Sha1::digest(chunk));
        }
        let mut info = Vec::new();
        info.extend_from_slice(b"d");
        if multi {
            info.extend_from_slice(b"5:filesl");
            for (name, bytes) in files {
                info.extend_from_slice(
                    format!("d6:lengthi{}e4:pathl{}:{name}ee", bytes.len(), name.len()).as_bytes(),
                );
            }
            info.extend_from_slice(b"e4:name3:dir");
        } else {
            info.extend_from_slice(
                format!(
                    "6:lengthi{}e4:name{}:{}",
                    content.len(),
                    files[0].0.len(),
                    files[0].0
                )
                .as_bytes(),
            );
        }
        info.extend_from_slice(b"12:piece lengthi4e6:pieces");
        info.extend_from_slice(format!("{}:", pieces.len()).as_bytes());
        info.extend_from_slice(&pieces);
        info.extend_from_slice(b"e");
        let mut out = b"d4:info".to_vec();
        out.extend_from_slice(&info);
        out.extend_from_slice(format!("8:url-list{}:{seed}e", seed.len()).as_bytes());
        out
    }

    #[test]
    fn urls_of_files() {
        let single = Metainfo::from_bytes(&torrent(
            false,
            &[("a b.txt", b"hello")],
            "http://127.0.0.1:9/x/",
        ))
        .unwrap();
        let seed = loopback_seed(&single).unwrap();
        assert_eq!(
            file_url(&seed, &single, &single.files[0]),
            "http://127.0.0.1:9/x/a%20b.txt"
        );
        let direct = Url::parse("http://127.0.0.1:9/x/file.bin").unwrap();
        assert_eq!(
            file_url(&direct, &single, &single.files[0]),
            "http://127.0.0.1:9/x/file.bin"
        );
        let multi = Metainfo::from_bytes(&torrent(
            true,
            &[("1.txt", b"1"), ("2.txt", b"22")],
            "http://localhost:9/m",
        ))
        .unwrap();
        let seed = loopback_seed(&multi).unwrap();
        assert_eq!(
            file_url(&seed, &multi, &multi.files[1]),
            "http://localhost:9/m/dir/2.txt"
        );
        let remote =
            Metainfo::from_bytes(&torrent(false, &[("a", b"a")], "http://example.com/a")).unwrap();
        assert!(loopback_seed(&remote).is_none());
    }

    #[test]
    fn pieces_are_checked() {
        let bytes = torrent(
            true,
            &[("1.txt", b"abcdef"), ("2.txt", b"ghij")],
            "http://127.0.0.1/",
        );
        let meta = Metainfo::from_bytes(&bytes).unwrap();
        let mut v = PieceVerifier::new(&meta);
        v.feed(b"abc").unwrap();
        v.feed(b"defghij").unwrap();
        v.finish().unwrap();

        let mut v = PieceVerifier::new(&meta);
        assert!(v.feed(b"abcx").unwrap_err().contains("piece 0"));

        // Skipping the first file: piece 1 ("efgh") is not whole, piece 2 ("ij") is.
        let mut v = PieceVerifier::new(&meta);
        v.skip_to(6);
        v.feed(b"XXij").unwrap();
        v.finish().unwrap();
        let mut v = PieceVerifier::new(&meta);
        v.skip_to(6);
        v.feed(b"ghIJ").unwrap();
        assert!(v.finish().unwrap_err().contains("piece 2"));
    }
}
