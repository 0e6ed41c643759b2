//! A request's `arguments` (the bespoke protocol) or `params` (JSON-RPC 2.0): read
//! lazily from the body text, bounded, each value checked for its type when a method
//! takes it.
//!
//! Names: a JSON-RPC 2.0 request names its arguments in snake_case, as Transmission 4.1
//! requires (it converts nothing on that path); a bespoke request may use the old
//! kebab-case and camelCase names or the snake_case ones, as 4.1's `api-compat.cc`
//! converts either (4.0.6 knew only the old ones). Each argument is looked up by its
//! snake_case name; error messages name it as the client sent it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::envelope::Failure;
use super::json::Style;
use super::MAX_LIST_LEN;

/// The most members an `arguments`/`params` object may have (Transmission's longest
/// method, `session-set`, has about sixty).
pub(super) const MAX_ARGS: usize = 256;

/// The old names of arguments (Transmission 4.0.6's rpc-spec.md, sections 3 and 4)
/// with their snake_case names (4.1's rpc-spec.md; `api-compat.cc`'s key table).
/// Names that are the same in both (`ids`, `labels`, `sequential_download`, …) are not
/// listed; the session's names are in [`super::session::KEYS`].
const TORRENT_ARG_NAMES: &[(&str, &str)] = &[
    ("bandwidthPriority", "bandwidth_priority"),
    ("delete-local-data", "delete_local_data"),
    ("download-dir", "download_dir"),
    ("downloadLimit", "download_limit"),
    ("downloadLimited", "download_limited"),
    ("files-unwanted", "files_unwanted"),
    ("files-wanted", "files_wanted"),
    ("honorsSessionLimits", "honors_session_limits"),
    ("peer-limit", "peer_limit"),
    ("priority-high", "priority_high"),
    ("priority-low", "priority_low"),
    ("priority-normal", "priority_normal"),
    ("queuePosition", "queue_position"),
    ("seedIdleLimit", "seed_idle_limit"),
    ("seedIdleMode", "seed_idle_mode"),
    ("seedRatioLimit", "seed_ratio_limit"),
    ("seedRatioMode", "seed_ratio_mode"),
    ("trackerAdd", "tracker_add"),
    ("trackerList", "tracker_list"),
    ("trackerRemove", "tracker_remove"),
    ("trackerReplace", "tracker_replace"),
    ("uploadLimit", "upload_limit"),
    ("uploadLimited", "upload_limited"),
];

/// The snake_case name of argument `sent` of a bespoke request.
fn canonical(sent: &str) -> Cow<'_, str> {
    let known = TORRENT_ARG_NAMES
        .iter()
        .chain(super::session::KEYS.iter().map(|k| &k.names))
        .find(|(legacy, _)| *legacy == sent);
    match known {
        Some((_, snake)) => Cow::Borrowed(snake),
        None => Cow::Borrowed(sent),
    }
}

/// The arguments of one call.
pub(super) struct Args<'a> {
    /// (name as sent, snake_case name, value), in the order sent; taken ones removed.
    entries: Vec<(String, String, &'a RawValue)>,
    style: Style,
}

impl<'a> Args<'a> {
    /// Reads `raw` (absent or `null`: no arguments).
    ///
    /// # Errors
    ///
    /// Not an object, more than [`MAX_ARGS`] members, or one argument given twice
    /// (under its old and its new name, or twice under one).
    pub(super) fn parse(raw: Option<&'a RawValue>, style: Style) -> Result<Self, Failure> {
        let what = style.pick("arguments", "params");
        let mut args = Self {
            entries: Vec::new(),
            style,
        };
        let Some(raw) = raw else {
            return Ok(args);
        };
        match kind(raw) {
            Kind::Null => return Ok(args),
            Kind::Object => {}
            _ => return Err(Failure::params(format!("{what} must be an object"))),
        }
        let entries = serde_json::from_str::<Entries<'a>>(raw.get())
            .map_err(|_| Failure::params(format!("{what} has more than {MAX_ARGS} members")))?
            .0;
        for (sent, value) in entries {
            let snake = match style {
                Style::Legacy => canonical(&sent).into_owned(),
                Style::JsonRpc => sent.clone(),
            };
            if let Some((first, _, _)) = args.entries.iter().find(|e| e.1 == snake) {
                return Err(Failure::params(format!(
                    "argument given twice: {}, {}",
                    shown(first),
                    shown(&sent)
                )));
            }
            args.entries.push((sent, snake, value));
        }
        Ok(args)
    }

    /// The request's style.
    pub(super) fn style(&self) -> Style {
        self.style
    }

    /// Takes the argument named `snake` (its snake_case name), if sent.
    pub(super) fn take(&mut self, snake: &str) -> Option<Arg<'a>> {
        let at = self.entries.iter().position(|e| e.1 == snake)?;
        let (sent, _, raw) = self.entries.remove(at);
        Some(Arg { name: sent, raw })
    }

    /// Takes the argument named `snake` unless its value is `null`.
    pub(super) fn take_some(&mut self, snake: &str) -> Option<Arg<'a>> {
        self.take(snake).filter(|a| kind(a.raw) != Kind::Null)
    }

    /// Whether an argument named `snake` was sent (and not yet taken).
    pub(super) fn has(&self, snake: &str) -> bool {
        self.entries.iter().any(|e| e.1 == snake)
    }

    /// The names (as sent) of the arguments not taken.
    pub(super) fn rest(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.0.as_str()).collect()
    }

    /// Refuses the call if any argument was not taken: no argument is ignored without
    /// a word.
    ///
    /// # Errors
    ///
    /// `unknown arguments: …`, naming them.
    pub(super) fn refuse_rest(&self) -> Result<(), Failure> {
        let rest = self.rest();
        if rest.is_empty() {
            return Ok(());
        }
        Err(Failure::params(format!(
            "unknown arguments: {}",
            names_list(rest.iter().copied())
        )))
    }
}

/// A list of names for a message: at most 8, each at most 64 characters.
pub(super) fn names_list<'n>(names: impl IntoIterator<Item = &'n str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    let mut text: Vec<String> = names.iter().take(8).map(|n| shown(n)).collect();
    if names.len() > 8 {
        text.push(format!("and {} more", names.len() - 8));
    }
    text.join(", ")
}

/// A client-sent name as a message shows it (at most 64 characters).
fn shown(name: &str) -> String {
    let mut s: String = name.chars().take(64).collect();
    if name.chars().count() > 64 {
        s.push('…');
    }
    s
}

/// One argument.
pub(super) struct Arg<'a> {
    /// Its name as sent.
    pub(super) name: String,
    raw: &'a RawValue,
}

impl<'a> Arg<'a> {
    fn wrong(&self, expected: &str) -> Failure {
        Failure::params(format!(
            "wrong type for {}: expected {expected}",
            shown(&self.name)
        ))
    }

    /// A boolean. As Transmission 4.0.6's `tr_variantGetBool`, `0`/`1` and
    /// `"true"`/`"false"` are booleans too.
    pub(super) fn boolean(&self) -> Result<bool, Failure> {
        match self.raw.get() {
            "true" | "1" | "\"true\"" => Ok(true),
            "false" | "0" | "\"false\"" => Ok(false),
            _ => Err(self.wrong("a boolean")),
        }
    }

    /// A string.
    pub(super) fn string(&self) -> Result<String, Failure> {
        if kind(self.raw) != Kind::String {
            return Err(self.wrong("a string"));
        }
        serde_json::from_str(self.raw.get()).map_err(|_| self.wrong("a string"))
    }

    /// An integer.
    pub(super) fn integer(&self) -> Result<i64, Failure> {
        serde_json::from_str(self.raw.get()).map_err(|_| self.wrong("an integer"))
    }

    /// A number.
    pub(super) fn number(&self) -> Result<f64, Failure> {
        if kind(self.raw) != Kind::Number {
            return Err(self.wrong("a number"));
        }
        serde_json::from_str(self.raw.get()).map_err(|_| self.wrong("a number"))
    }

    /// An array of at most [`MAX_LIST_LEN`] elements.
    pub(super) fn array(&self) -> Result<Vec<&'a RawValue>, Failure> {
        if kind(self.raw) != Kind::Array {
            return Err(self.wrong("an array"));
        }
        bounded_array(self.raw).ok_or_else(|| {
            Failure::params(format!(
                "{} has more than {MAX_LIST_LEN} elements",
                shown(&self.name)
            ))
        })
    }

    /// An array of strings.
    pub(super) fn strings(&self) -> Result<Vec<String>, Failure> {
        self.array()?
            .into_iter()
            .map(|item| {
                if kind(item) != Kind::String {
                    return Err(self.wrong("an array of strings"));
                }
                serde_json::from_str(item.get()).map_err(|_| self.wrong("an array of strings"))
            })
            .collect()
    }

    /// An array of file indices (integers from 0).
    pub(super) fn indices(&self) -> Result<Vec<u64>, Failure> {
        self.array()?
            .into_iter()
            .map(|item| {
                serde_json::from_str::<u64>(item.get())
                    .map_err(|_| self.wrong("an array of file indices (integers from 0)"))
            })
            .collect()
    }

    /// The value as sent.
    pub(super) fn raw(&self) -> &'a RawValue {
        self.raw
    }
}

/// What a JSON value is, from its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

/// The kind of `raw` (whose text is one valid JSON value).
pub(super) fn kind(raw: &RawValue) -> Kind {
    match raw.get().as_bytes().first() {
        Some(b'n') => Kind::Null,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'"') => Kind::String,
        Some(b'[') => Kind::Array,
        Some(b'{') => Kind::Object,
        _ => Kind::Number,
    }
}

/// The elements of the array `raw`, unless it has more than [`MAX_LIST_LEN`].
pub(super) fn bounded_array(raw: &RawValue) -> Option<Vec<&RawValue>> {
    bounded_elements(raw, MAX_LIST_LEN)
}

/// The elements of the array `raw`, unless it has more than `max`.
pub(super) fn bounded_elements(raw: &RawValue, max: usize) -> Option<Vec<&RawValue>> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    de.deserialize_seq(SeqVisitor { max }).ok()
}

struct SeqVisitor {
    max: usize,
}

impl<'de> Visitor<'de> for SeqVisitor {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of at most {} elements", self.max)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if items.len() == self.max {
                return Err(de::Error::custom("too many elements"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

/// The members of an object, at most [`MAX_ARGS`].
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de> de::Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = Entries<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an object of at most {MAX_ARGS} members")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if entries.len() == MAX_ARGS {
                        return Err(de::Error::custom("too many members"));
                    }
                    let value: &'de RawValue = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn old_and_new_names_are_one_argument() {
        let body = raw(r#"{"download-dir":"/a","paused":1,"files-unwanted":[0,2]}"#);
        let mut args = Args::parse(Some(body), Style::Legacy).unwrap();
        assert_eq!(args.take("download_dir").unwrap().string().unwrap(), "/a");
        assert!(args.take("paused").unwrap().boolean().unwrap());
        assert_eq!(
            args.take("files_unwanted").unwrap().indices().unwrap(),
            [0, 2]
        );
        assert!(args.refuse_rest().is_ok());

        let twice = raw(r#"{"download-dir":"/a","download_dir":"/b"}"#);
        assert!(Args::parse(Some(twice), Style::Legacy).is_err());
        // JSON-RPC 2.0 converts nothing: the old name is just another name.
        let mut args = Args::parse(Some(twice), Style::JsonRpc).unwrap();
        assert_eq!(args.take("download_dir").unwrap().string().unwrap(), "/b");
        assert_eq!(args.rest(), ["download-dir"]);
        assert!(args.refuse_rest().is_err());
    }

    #[test]
    fn types_are_checked() {
        let body = raw(r#"{"paused":"yes","ids":{"a":1},"labels":["a",1],"n":1.5}"#);
        let mut args = Args::parse(Some(body), Style::JsonRpc).unwrap();
        assert!(args.take("paused").unwrap().boolean().is_err());
        assert!(args.take("ids").unwrap().array().is_err());
        assert!(args.take("labels").unwrap().strings().is_err());
        let n = args.take("n").unwrap();
        assert!(n.integer().is_err());
        assert_eq!(n.number().unwrap(), 1.5);
        assert!(Args::parse(Some(raw("[1]")), Style::JsonRpc).is_err());
        assert!(Args::parse(Some(raw("null")), Style::JsonRpc).is_ok());
    }

    #[test]
    fn arrays_are_bounded() {
        let long = format!("[{}0]", "0,".repeat(MAX_LIST_LEN));
        assert!(bounded_array(raw(&long)).is_none());
        let ok = format!("[{}0]", "0,".repeat(MAX_LIST_LEN - 1));
        assert_eq!(bounded_array(raw(&ok)).unwrap().len(), MAX_LIST_LEN);
        let many: Vec<String> = (0..=MAX_ARGS).map(|i| format!("\"k{i}\":0")).collect();
        let many = format!("{{{}}}", many.join(","));
        assert!(Args::parse(Some(raw(&many)), Style::JsonRpc).is_err());
    }
}
