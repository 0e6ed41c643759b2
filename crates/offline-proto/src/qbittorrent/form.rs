//! A request's parameters: the query of a `GET`, the body's fields and files of a
//! `POST`, and how qBittorrent reads their values.
//!
//! qBittorrent reads a `GET`'s parameters from its query string and a `POST`'s from
//! its body only (source, `src/webui/webapplication.cpp`, `processRequest`: "if
//! (m_request.method == Http::METHOD_GET) … m_params = query … else m_params =
//! m_request.posts"); a parameter given twice counts once, the last one (a map).
//! The value readers follow `src/base/utils/string.cpp` (`parseBool`, `parseInt`) and
//! Qt's `QString::toInt` (used for `limit`, `offset` and `rid`): see [`Form::flag`],
//! [`Form::int_or_zero`].

use std::borrow::Cow;

/// The most fields (and, separately, files) a form keeps: a legitimate client sends
/// a few dozen; more are hostile. [`Form::from_urlencoded`] keeps the first ones and
/// drops the rest; [`Form::push_part`] refuses parts past it.
pub const MAX_FORM_FIELDS: usize = 1024;

/// A request's parameters: the decoded fields, in the order sent, and the uploaded
/// files (multipart parts with a `filename`).
///
/// The daemon makes it: [`Form::from_urlencoded`] for an
/// `application/x-www-form-urlencoded` body, its own `multipart/form-data` decoder
/// (RFC 7578: a part with a `filename` is a [`FormFile`], any other a field, UTF-8
/// lossy, as qBittorrent's `RequestParser::parseFormData` reads them) for a multipart
/// one. Its `Debug` shows the values of fields named `password` as `***`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Form {
    /// `(name, value)` pairs, in the order sent.
    pub fields: Vec<(String, String)>,
    /// The uploaded files, in the order sent.
    pub files: Vec<FormFile>,
}

/// One uploaded file of a `multipart/form-data` body. `Debug` shows its length, not
/// its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct FormFile {
    /// The part's `name` (`torrents` for `torrents/add`).
    pub field: String,
    /// The part's `filename`, when it has one.
    pub filename: Option<String>,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Fields<'a>(&'a [(String, String)]);
        impl std::fmt::Debug for Fields<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|(name, value)| {
                        let shown = if name.eq_ignore_ascii_case("password") {
                            "***"
                        } else {
                            value.as_str()
                        };
                        (name.as_str(), shown)
                    }))
                    .finish()
            }
        }
        f.debug_struct("Form")
            .field("fields", &Fields(&self.fields))
            .field("files", &self.files)
            .finish()
    }
}

impl std::fmt::Debug for FormFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormFile")
            .field("field", &self.field)
            .field("filename", &self.filename)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Form {
    /// Decodes an `application/x-www-form-urlencoded` body or a query string (WHATWG
    /// URL Standard, 5.1: `+` is a space, percent escapes are UTF-8 decoded, bytes
    /// that are not UTF-8 become U+FFFD). Keeps the first [`MAX_FORM_FIELDS`] pairs.
    pub fn from_urlencoded(body: &[u8]) -> Form {
        let fields = form_urlencoded::parse(body)
            .take(MAX_FORM_FIELDS)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        Form {
            fields,
            files: Vec::new(),
        }
    }

    /// Adds one part of a `multipart/form-data` body (RFC 7578) as qBittorrent's
    /// `RequestParser::parseFormData` reads it: a part with a `filename` is a
    /// [`FormFile`], any other a field (its bytes UTF-8, lossily). Returns `false`,
    /// adding nothing, once the form holds [`MAX_FORM_FIELDS`] parts: the daemon stops
    /// reading there.
    pub fn push_part(&mut self, name: String, filename: Option<String>, bytes: Vec<u8>) -> bool {
        if self.fields.len() + self.files.len() >= MAX_FORM_FIELDS {
            return false;
        }
        if filename.is_some() {
            self.files.push(FormFile {
                field: name,
                filename,
                bytes,
            });
        } else {
            let value = String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            self.fields.push((name, value));
        }
        true
    }

    /// The value of field `name`: the last one when it was sent more than once (as
    /// qBittorrent keeps them in a map).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether field `name` was sent (even empty).
    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|(n, _)| n == name)
    }

    /// Field `name` read as qBittorrent's `Utils::String::parseBool`: `true` or
    /// `false` in any case; anything else (or absent) is `None`.
    pub fn flag(&self, name: &str) -> Option<bool> {
        let value = self.get(name)?.trim();
        if value.eq_ignore_ascii_case("true") {
            Some(true)
        } else if value.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            None
        }
    }

    /// Field `name` read as qBittorrent's `Utils::String::parseInt`: a 32-bit decimal
    /// integer, or `None` (absent, not a number, out of range).
    pub fn int(&self, name: &str) -> Option<i32> {
        self.get(name)?.trim().parse().ok()
    }

    /// Field `name` read as Qt's `QString::toInt()`: a 32-bit decimal integer, `0` when
    /// absent, not a number or out of range (`limit=99999999999` reads as `0`).
    pub fn int_or_zero(&self, name: &str) -> i32 {
        self.int(name).unwrap_or(0)
    }

    /// Field `name` read as `Utils::String::parseDouble`: `None` unless a number.
    pub fn double(&self, name: &str) -> Option<f64> {
        self.get(name)?.trim().parse().ok()
    }
}

/// A query string as a form (GET parameters).
pub(super) fn query(query: &str) -> Cow<'static, Form> {
    Cow::Owned(Form::from_urlencoded(query.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_last_one_wins_and_is_lossy() {
        let form = Form::from_urlencoded(b"a=1&b=x+y&a=2&c=%FF&d");
        assert_eq!(form.get("a"), Some("2"));
        assert_eq!(form.get("b"), Some("x y"));
        assert_eq!(form.get("c"), Some("\u{FFFD}"));
        assert_eq!(form.get("d"), Some(""));
        assert!(form.has("d") && !form.has("e"));
    }

    #[test]
    fn readers_follow_qt() {
        let form = Form::from_urlencoded(b"t=TRUE&f=False&x=yes&n=-3&big=99999999999&bad=1x&d=1.5");
        assert_eq!(form.flag("t"), Some(true));
        assert_eq!(form.flag("f"), Some(false));
        assert_eq!(form.flag("x"), None);
        assert_eq!(form.flag("absent"), None);
        assert_eq!(form.int("n"), Some(-3));
        assert_eq!(form.int_or_zero("big"), 0);
        assert_eq!(form.int_or_zero("bad"), 0);
        assert_eq!(form.double("d"), Some(1.5));
    }

    #[test]
    fn parts_are_files_or_fields_and_bounded() {
        let mut form = Form::default();
        assert!(form.push_part("urls".into(), None, b"magnet:?x\xff".to_vec()));
        assert!(form.push_part("torrents".into(), Some("a.torrent".into()), vec![0xff]));
        assert_eq!(form.get("urls"), Some("magnet:?x\u{fffd}"));
        assert_eq!(form.files[0].bytes, [0xff]);
        while form.push_part("a".into(), None, Vec::new()) {}
        assert_eq!(form.fields.len() + form.files.len(), MAX_FORM_FIELDS);
    }

    #[test]
    fn urlencoded_is_bounded() {
        let body = "a=1&".repeat(MAX_FORM_FIELDS * 3);
        assert_eq!(
            Form::from_urlencoded(body.as_bytes()).fields.len(),
            MAX_FORM_FIELDS
        );
    }

    #[test]
    fn debug_hides_passwords_and_bytes() {
        let mut form = Form::from_urlencoded(b"username=admin&password=sentinel&Password=x2");
        form.files.push(FormFile {
            field: "torrents".into(),
            filename: Some("a.torrent".into()),
            bytes: b"sentinel-bytes".to_vec(),
        });
        let shown = format!("{form:?}");
        assert!(
            !shown.contains("sentinel") && !shown.contains("x2"),
            "{shown}"
        );
        assert!(
            shown.contains("admin") && shown.contains("len: 14"),
            "{shown}"
        );
    }
}
