//! Parsing links and torrents into identity blobs (`/v2/offline/parseUrl`,
//! `/v2/offline/parseTorrent`), and checking the blobs `add` hands back.
//!
//! A blob is `base64(JSON) + "$" + MAC`, where the MAC is the first 16 bytes of
//! HMAC-SHA256 over the base64 text, keyed by a secret random per emulator, in
//! lowercase hex: a client can read the JSON but cannot mint or alter a blob.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use offline_proto::sixpan::identity::{Identity, MAC_LEN};
use offline_proto::sixpan::{EndpointId, ErrorCode, ParseFile, ParseResult, ParseUrlRequest};
use offline_proto::torrent::{Metainfo, MAX_PATH_BYTES, MAX_TORRENT_BYTES};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::Sha256;
use url::Url;

use super::storage::parse_etag;
use super::{conform, md5_hex, parse_json, to_value, Answer, ApiError, SixpanState};
use crate::common::{constant_time_eq, hex};

/// Identity type of an http(s) link.
pub(super) const TYPE_HTTP: i64 = 5020;
/// Identity type of a torrent or magnet link.
pub(super) const TYPE_BT: i64 = 5030;
/// Identity type of an ed2k link (the emulator's choice; no source names one).
pub(super) const TYPE_ED2K: i64 = 5040;
/// The `url` scheme of a torrent in the drive: `qingzhen-internal://<etag>`.
pub(super) const INTERNAL_SCHEME: &str = "qingzhen-internal://";

/// `POST /v2/offline/parseTorrent` body (etags read leniently, see `parse_etag`).
#[derive(Debug, Deserialize)]
struct ParseTorrentBody {
    hash: Vec<String>,
}

/// The `pathIdentity` of a torrent's file: stable per info hash and file index.
pub(super) fn path_identity(info_hash: &str, index: usize) -> String {
    md5_hex(format!("path:{info_hash}:{index}").as_bytes())
}

fn download_identity(info_hash: &str, index: usize) -> String {
    md5_hex(format!("download:{info_hash}:{index}").as_bytes())
}

impl SixpanState {
    fn identity_mac(&self, encoded: &str) -> String {
        match Hmac::<Sha256>::new_from_slice(&self.keys.identity) {
            Ok(mut mac) => {
                mac.update(encoded.as_bytes());
                let digest = mac.finalize().into_bytes();
                hex(&digest[..MAC_LEN / 2])
            }
            // HMAC takes keys of any length; not reached.
            Err(_) => "0".repeat(MAC_LEN),
        }
    }

    /// Signs `json` into a blob.
    fn sign_identity(&self, json: &Value) -> Result<Identity, ApiError> {
        let encoded = STANDARD.encode(json.to_string());
        let mac = self.identity_mac(&encoded);
        Identity::parse(&format!("{encoded}${mac}"))
            .map_err(|e| ApiError::internal(format!("cannot make an identity: {e}")))
    }

    /// The JSON of a blob this emulator signed; why not otherwise.
    pub(super) fn verify_identity(&self, blob: &str) -> Result<Map<String, Value>, String> {
        let (encoded, mac) = blob
            .rsplit_once('$')
            .ok_or("no `$` between the JSON and the MAC")?;
        if !super::is_lower_hex(mac, MAC_LEN) {
            return Err(format!("the MAC must be {MAC_LEN} lowercase hex digits"));
        }
        let expected = self.identity_mac(encoded);
        if !constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
            return Err(
                "the MAC does not verify (altered, or not issued by this server)".to_owned(),
            );
        }
        let json = STANDARD
            .decode(encoded)
            .map_err(|e| format!("the JSON part is not base64: {e}"))?;
        match serde_json::from_slice(&json) {
            Ok(Value::Object(object)) => Ok(object),
            _ => Err("the JSON part is not a JSON object".to_owned()),
        }
    }

    /// The torrent stored under `etag`: `FILE_NOT_FOUND` when none is,
    /// `UNSUPPORTED_FILE` when it is not a usable torrent.
    pub(super) async fn load_torrent(&self, etag: &str) -> Result<Metainfo, ApiError> {
        let blob = self.blob(etag).ok_or_else(|| {
            ApiError::bad(
                ErrorCode::FileNotFound.as_str(),
                format!("no stored file has hash {etag}"),
            )
        })?;
        let unsupported = |why: String| ApiError::bad(ErrorCode::UnsupportedFile.as_str(), why);
        if blob.size > MAX_TORRENT_BYTES as u64 {
            return Err(unsupported(format!(
                "file {etag} is not a torrent: {} bytes, more than {MAX_TORRENT_BYTES}",
                blob.size
            )));
        }
        let bytes = tokio::fs::read(&blob.path)
            .await
            .map_err(|e| ApiError::internal(format!("cannot read stored file {etag}: {e}")))?;
        Metainfo::from_bytes(&bytes)
            .map_err(|e| unsupported(format!("file {etag} is not a usable torrent: {e}")))
    }

    /// `POST /v2/offline/parseTorrent`: one result per etag.
    pub(super) async fn parse_torrent(&self, body: &[u8]) -> Answer {
        let (request, json): (ParseTorrentBody, _) = parse_json(body)?;
        if request.hash.is_empty() {
            return Err(ApiError::parameter("hash must list at least one etag"));
        }
        let etags = request
            .hash
            .iter()
            .map(|hash| parse_etag(hash))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::parameter)?;
        conform(EndpointId::ParseTorrent, &json)?;
        let mut results = Vec::with_capacity(etags.len());
        // Each torrent's paths are bounded by the parser (MAX_PATH_BYTES); so is the
        // answer, which may list one torrent many times.
        let mut path_bytes = 0usize;
        for etag in etags {
            let meta = self.load_torrent(etag.as_str()).await?;
            path_bytes = path_bytes.saturating_add(meta.path_bytes());
            if path_bytes > MAX_PATH_BYTES {
                return Err(ApiError::parameter(format!(
                    "the torrents' file paths come to more than {MAX_PATH_BYTES} bytes: ask about fewer at once"
                )));
            }
            let info_hash = meta.info_hash.to_string();
            let identity = self.sign_identity(&json!({
                "identity": info_hash,
                "success": true,
                "type": TYPE_BT,
                "infoHash": info_hash,
                "name": meta.name,
                "url": format!("{INTERNAL_SCHEME}{etag}"),
            }))?;
            let created = self.env.now_ms();
            let files = meta
                .files
                .iter()
                .filter(|f| !f.padding)
                .map(|f| ParseFile {
                    download_identity: Some(download_identity(&info_hash, f.index)),
                    path_identity: path_identity(&info_hash, f.index),
                    create_time: Some(created),
                    name: f.path.last().cloned().unwrap_or_default(),
                    path: Some(f.joined_path()),
                    hash: None,
                    size: Some(i64::try_from(f.length).unwrap_or(i64::MAX)),
                    download_size: Some(0),
                    status: Some(0),
                    flag: Some(0),
                    file_index: Some(i32::try_from(f.index).unwrap_or(i32::MAX)),
                    finish: Some(false),
                })
                .collect();
            results.push(ParseResult {
                name: meta.name.clone(),
                identity,
                size: meta.total_length,
                files,
            });
        }
        to_value(&results)
    }

    /// `POST /v2/offline/parseUrl`: one result per link (links joined by `\n`).
    pub(super) fn parse_url(&self, body: &[u8]) -> Answer {
        let (request, json): (ParseUrlRequest, _) = parse_json(body)?;
        let links: Vec<&str> = request
            .url
            .split('\n')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if links.is_empty() {
            return Err(ApiError::parameter("url must hold at least one link"));
        }
        conform(EndpointId::ParseUrl, &json)?;
        let mut results = Vec::with_capacity(links.len());
        for link in links {
            results.push(self.parse_link(link)?);
        }
        to_value(&results)
    }

    /// The result of parsing a link: `json` signed into its identity.
    fn link_result(&self, name: String, size: u64, json: &Value) -> Result<ParseResult, ApiError> {
        Ok(ParseResult {
            name,
            identity: self.sign_identity(json)?,
            size,
            files: Vec::new(),
        })
    }

    fn parse_link(&self, link: &str) -> Result<ParseResult, ApiError> {
        let scheme = link
            .split_once(':')
            .map(|(s, _)| s.to_ascii_lowercase())
            .unwrap_or_default();
        match scheme.as_str() {
            "http" | "https" => {
                let url = Url::parse(link)
                    .ok()
                    .filter(|u| u.host_str().is_some_and(|h| !h.is_empty()))
                    .ok_or_else(|| ApiError::parameter(format!("invalid URL {}", preview(link))))?;
                let digest = md5_hex(url.as_str().as_bytes());
                let name = url
                    .path_segments()
                    .and_then(|mut s| s.next_back().map(str::to_owned))
                    .map(|s| percent_decode(&s))
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or_else(|| digest.clone());
                let json = json!({
                    "success": true,
                    "type": TYPE_HTTP,
                    "identity": digest,
                    "url": link,
                    "name": name,
                });
                self.link_result(name, 0, &json)
            }
            "magnet" => {
                let (info_hash, name) = parse_magnet(link)?;
                let name = name.unwrap_or_else(|| info_hash.clone());
                let json = json!({
                    "identity": info_hash,
                    "success": true,
                    "type": TYPE_BT,
                    "infoHash": info_hash,
                    "name": name,
                    "url": link,
                });
                self.link_result(name, 0, &json)
            }
            "ed2k" => {
                let (name, size, hash) = parse_ed2k(link)?;
                let json = json!({
                    "identity": hash,
                    "success": true,
                    "type": TYPE_ED2K,
                    "name": name,
                    "size": size,
                    "url": link,
                });
                self.link_result(name, size, &json)
            }
            _ => Err(ApiError::bad(
                ErrorCode::UnsupportedProtocol.as_str(),
                format!("unsupported protocol: {}", preview(link)),
            )),
        }
    }
}

/// At most 80 characters of a link, for messages.
fn preview(text: &str) -> String {
    let mut out: String = text.chars().take(80).collect();
    if text.chars().nth(80).is_some() {
        out.push('…');
    }
    format!("{out:?}")
}

/// The info hash (40 lowercase hex) and display name of a magnet link.
fn parse_magnet(link: &str) -> Result<(String, Option<String>), ApiError> {
    let invalid = |why: &str| {
        ApiError::bad(
            ErrorCode::MagnetUrlInvalid.as_str(),
            format!("magnet url invalid: {why}: {}", preview(link)),
        )
    };
    let query = link
        .get("magnet:".len()..)
        .and_then(|rest| rest.strip_prefix('?'))
        .ok_or_else(|| invalid("no `?` after `magnet:`"))?;
    let mut hash = None;
    let mut name = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "xt" if hash.is_none() => {
                if let Some(digits) = value
                    .get(..9)
                    .filter(|p| p.eq_ignore_ascii_case("urn:btih:"))
                    .and_then(|_| value.get(9..))
                {
                    hash = Some(btih_hex(digits).ok_or_else(|| {
                        invalid("the btih hash must be 40 hex or 32 base32 digits")
                    })?);
                }
            }
            "dn" if name.is_none() && !value.trim().is_empty() => name = Some(value.into_owned()),
            _ => {}
        }
    }
    let hash = hash.ok_or_else(|| invalid("no `xt=urn:btih:` parameter"))?;
    Ok((hash, name))
}

/// A BitTorrent info hash as 40 lowercase hex digits, from 40 hex digits (any case) or
/// 32 base32 digits.
fn btih_hex(digits: &str) -> Option<String> {
    offline_proto::torrent::InfoHash::from_btih(digits).map(|h| h.to_string())
}

/// `(name, size, hash)` of `ed2k://|file|<name>|<size>|<32 hex>|/` (more `|`-fields
/// after the hash, such as `h=...`, are allowed).
fn parse_ed2k(link: &str) -> Result<(String, u64, String), ApiError> {
    let invalid = |why: &str| {
        ApiError::bad(
            ErrorCode::Ed2kUrlInvalid.as_str(),
            format!("ed2k url invalid: {why}: {}", preview(link)),
        )
    };
    const PREFIX: &str = "ed2k://|file|";
    let rest = link
        .get(..PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(PREFIX))
        .and_then(|_| link.get(PREFIX.len()..))
        .ok_or_else(|| invalid("it must start with ed2k://|file|"))?;
    let rest = rest
        .strip_suffix("|/")
        .ok_or_else(|| invalid("it must end with |/"))?;
    let parts: Vec<&str> = rest.split('|').collect();
    let [name, size, hash, ..] = parts.as_slice() else {
        return Err(invalid("it must hold a name, a size and a hash"));
    };
    let name = percent_decode(name);
    if name.trim().is_empty() {
        return Err(invalid("the name is empty"));
    }
    let size = size
        .parse::<u64>()
        .map_err(|_| invalid("the size is not a number"))?;
    if hash.len() != 32 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("the hash must be 32 hex digits"));
    }
    Ok((name, size, hash.to_ascii_lowercase()))
}

/// Decodes `%XX` escapes (invalid ones are kept as written); invalid UTF-8 is replaced.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let pair = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(value) = pair.and_then(|p| u8::from_str_radix(p, 16).ok()) {
                out.push(value);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnets() {
        let (hash, name) = parse_magnet(
            "magnet:?xt=urn:btih:89D97C2261A21B040CF11CAA661A3BA7233BB7E6&dn=numbers+x",
        )
        .unwrap();
        assert_eq!(hash, "89d97c2261a21b040cf11caa661a3ba7233bb7e6");
        assert_eq!(name.as_deref(), Some("numbers x"));
        // The same hash in base32.
        let (b32, _) =
            parse_magnet("magnet:?xt=urn:btih:RHMXYITBUINQIDHRDSVGMGR3U4RTXN7G").unwrap();
        assert_eq!(b32, "89d97c2261a21b040cf11caa661a3ba7233bb7e6");
        for bad in [
            "magnet:",
            "magnet:?dn=x",
            "magnet:?xt=urn:btih:1234",
            "magnet:?xt=urn:sha1:89d97c2261a21b040cf11caa661a3ba7233bb7e6",
        ] {
            let e = parse_magnet(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::MagnetUrlInvalid, "{bad}");
        }
    }

    #[test]
    fn ed2k_links() {
        let (name, size, hash) =
            parse_ed2k("ed2k://|file|a%20b.iso|1024|0123456789ABCDEF0123456789ABCDEF|/").unwrap();
        assert_eq!((name.as_str(), size), ("a b.iso", 1024));
        assert_eq!(hash, "0123456789abcdef0123456789abcdef");
        assert!(parse_ed2k("ed2k://|file|a|1|0123456789abcdef0123456789abcdef|h=X|/").is_ok());
        for bad in [
            "ed2k://|server|1.2.3.4|4661|/",
            "ed2k://|file|a|x|0123456789abcdef0123456789abcdef|/",
            "ed2k://|file|a|1|0123|/",
            "ed2k://|file|a|1|0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(
                parse_ed2k(bad).unwrap_err().code,
                ErrorCode::Ed2kUrlInvalid,
                "{bad}"
            );
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%E6%96%87"), "a b文");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
