//! Local checks that need no server: image extensions and sizes (URLs and file names
//! are checked by [`crate::common`], shared with 6pan).
//!
//! Facts: `docs/wire-notes.md` (123pan section) and seeds `002`, `003` (cloud drive: http and
//! https only) and `004` (image bed: the extension list and the 100 MB limit).

use crate::ValidationError;

/// The image extensions the image bed accepts (seed `004`), lowercase, without a dot.
pub const IMAGE_EXTENSIONS: [&str; 9] = [
    "png", "gif", "jpeg", "tiff", "webp", "jpg", "tif", "svg", "bmp",
];

/// The largest image the image bed accepts: 100 MB, taken as 100 × 1024 × 1024 bytes
/// (seed `004` says `100M`).
pub const IMAGE_MAX_BYTES: u64 = 100 * 1024 * 1024;

const IMAGE_EXTENSIONS_TEXT: &str = "png, gif, jpeg, tiff, webp, jpg, tif, svg, bmp";

pub use crate::common::{file_name, http_url, FILE_NAME_MAX_CHARS};

/// The extension of a name (after the last dot), lowercase, if any.
fn extension(name: &str) -> Option<String> {
    let (_, ext) = name.rsplit_once('.')?;
    Some(ext.to_ascii_lowercase())
}

/// Whether `name` ends in one of [`IMAGE_EXTENSIONS`] (case-insensitive).
pub fn has_image_extension(name: &str) -> bool {
    extension(name).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// The last path segment of `url`, percent-decoded (`/a/b%20c.png` → `b c.png`).
pub fn url_file_name(url: &url::Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    percent_decode(last)
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks an image-bed source: the file name when given, otherwise the URL's last path
/// segment, must end in an image extension.
///
/// # Errors
///
/// [`ValidationError::NotAnImage`].
pub fn image_source(url: &url::Url, file_name: Option<&str>) -> Result<(), ValidationError> {
    let name = match file_name {
        Some(n) => n.to_owned(),
        None => url_file_name(url),
    };
    if has_image_extension(&name) {
        Ok(())
    } else {
        Err(ValidationError::NotAnImage {
            name,
            allowed: IMAGE_EXTENSIONS_TEXT,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(http_url("url", "https://example.com/a.mp4").is_ok());
        assert!(http_url("url", "http://127.0.0.1:8080/x").is_ok());
        assert!(matches!(
            http_url("url", "ftp://example.com/a"),
            Err(ValidationError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            http_url("url", "magnet:?xt=urn:btih:abc"),
            Err(ValidationError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            http_url("url", ""),
            Err(ValidationError::Empty("url"))
        ));
        assert!(matches!(
            http_url("url", "example.com/a"),
            Err(ValidationError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn image_extensions() {
        let u = url::Url::parse("https://x.y/dir/Photo.JPEG?size=1").unwrap();
        assert!(image_source(&u, None).is_ok());
        let u = url::Url::parse("https://x.y/dir/movie.mp4").unwrap();
        assert!(matches!(
            image_source(&u, None),
            Err(ValidationError::NotAnImage { name, .. }) if name == "movie.mp4"
        ));
        assert!(image_source(&u, Some("still.webp")).is_ok());
        assert!(image_source(&u, Some("still.webp.txt")).is_err());
        let u = url::Url::parse("https://x.y/a%20b.png").unwrap();
        assert_eq!(url_file_name(&u), "a b.png");
        let u = url::Url::parse("https://x.y/").unwrap();
        assert!(image_source(&u, None).is_err());
        for e in IMAGE_EXTENSIONS {
            assert!(has_image_extension(&format!("x.{e}")));
        }
    }

    #[test]
    fn file_names() {
        let (too_long, longest) = ("a".repeat(256), "文".repeat(255));
        for (name, ok) in [
            ("测试https离线下载.mp4", true),
            ("", false),
            ("a/b", false),
            ("a\nb", false),
            ("..", false),
            (too_long.as_str(), false),
            (longest.as_str(), true),
        ] {
            assert_eq!(file_name(name).is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn percent_decoding_survives_bad_escapes() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%E6%B5%8B"), "测");
    }
}
