//! Writing JSON as Transmission writes it.
//!
//! Both Transmission 4.0.6 (`libtransmission/variant-json.cc`, `tr_variantToStrJson`
//! walks with `sort_dicts = true`) and 4.1 (`sorted_entries` in the same file) write
//! every object with its keys **sorted** (byte order), so this writer does too. Real
//! numbers differ between the two:
//!
//! - 4.0.6 (`jsonRealFunc`): a value within 0.00001 of an integer is written with no
//!   decimals (`1`, `-1`), any other with four (`0.4200`);
//! - 4.1 (rapidjson's `Writer::Double`): the shortest text that reads back as the same
//!   number, integers with `.0` (`1.0`, `0.42`).
//!
//! So the style of the request ([`Style`]) picks the number format as well as the
//! names. The writer appends to a byte buffer; `torrent-get` writes its torrents
//! straight from the task views through it.

use serde_json::Value;

/// Which protocol a request spoke, and so which one its answer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    /// The bespoke protocol of Transmission 4.0.6 and before: kebab-case and camelCase
    /// names, `arguments`, `result`, `tag`.
    Legacy,
    /// JSON-RPC 2.0, as Transmission 4.1 speaks it: snake_case names, `params`,
    /// `result`/`error`, `id`.
    JsonRpc,
}

impl Style {
    /// `legacy` in the bespoke protocol, `snake` in JSON-RPC 2.0.
    pub(super) fn pick(self, legacy: &'static str, snake: &'static str) -> &'static str {
        match self {
            Style::Legacy => legacy,
            Style::JsonRpc => snake,
        }
    }

    /// `legacy` in the bespoke protocol, `snake` in JSON-RPC 2.0.
    pub(super) fn pick_n(self, legacy: i64, snake: i64) -> i64 {
        match self {
            Style::Legacy => legacy,
            Style::JsonRpc => snake,
        }
    }
}

/// A JSON text being written.
pub(super) struct Out {
    pub(super) buf: Vec<u8>,
    pub(super) style: Style,
}

impl Out {
    pub(super) fn new(style: Style) -> Self {
        Self {
            buf: Vec::with_capacity(256),
            style,
        }
    }

    /// The text written (always UTF-8: only `&str` and ASCII go in).
    pub(super) fn into_string(self) -> String {
        String::from_utf8(self.buf).expect("the writer only appends UTF-8")
    }

    pub(super) fn raw(&mut self, text: &str) {
        self.buf.extend_from_slice(text.as_bytes());
    }

    pub(super) fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }

    pub(super) fn uint(&mut self, n: u64) {
        self.raw(&n.to_string());
    }

    pub(super) fn int(&mut self, n: i64) {
        self.raw(&n.to_string());
    }

    pub(super) fn boolean(&mut self, b: bool) {
        self.raw(if b { "true" } else { "false" });
    }

    /// A real number, in the request style's format (see the module's docs).
    pub(super) fn real(&mut self, x: f64) {
        let x = if x.is_finite() { x } else { 0.0 };
        match self.style {
            Style::Legacy => {
                if (x - x.trunc()).abs() < 0.00001 {
                    self.raw(&format!("{:.0}", x.trunc()));
                } else {
                    self.raw(&format!("{x:.4}"));
                }
            }
            Style::JsonRpc => {
                let number = serde_json::Number::from_f64(x).expect("a finite number");
                self.raw(&number.to_string());
            }
        }
    }

    /// A string, escaped (`"`, `\` and control characters; the rest as UTF-8).
    pub(super) fn string(&mut self, s: &str) {
        self.buf.reserve(s.len() + 2);
        self.buf.push(b'"');
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape: Option<&[u8]> = match b {
                b'"' => Some(b"\\\""),
                b'\\' => Some(b"\\\\"),
                b'\n' => Some(b"\\n"),
                b'\r' => Some(b"\\r"),
                b'\t' => Some(b"\\t"),
                0x08 => Some(b"\\b"),
                0x0c => Some(b"\\f"),
                0x00..=0x1f => None,
                _ => continue,
            };
            self.buf.extend_from_slice(&bytes[start..i]);
            match escape {
                Some(e) => self.buf.extend_from_slice(e),
                None => self.raw(&format!("\\u{b:04x}")),
            }
            start = i + 1;
        }
        self.buf.extend_from_slice(&bytes[start..]);
        self.buf.push(b'"');
    }

    /// An array of strings.
    pub(super) fn strings<'s>(&mut self, items: impl IntoIterator<Item = &'s str>) {
        self.byte(b'[');
        for (i, s) in items.into_iter().enumerate() {
            if i > 0 {
                self.byte(b',');
            }
            self.string(s);
        }
        self.byte(b']');
    }

    /// `"key":` after a `,` unless `first`.
    pub(super) fn key(&mut self, first: &mut bool, key: &str) {
        if !*first {
            self.byte(b',');
        }
        *first = false;
        self.string(key);
        self.byte(b':');
    }

    /// A JSON value with its object keys sorted and its reals in this style.
    pub(super) fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.raw("null"),
            Value::Bool(b) => self.boolean(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => self.uint(u),
                (None, Some(i), _) => self.int(i),
                (None, None, Some(x)) => self.real(x),
                _ => self.raw("0"),
            },
            Value::String(s) => self.string(s),
            Value::Array(items) => {
                self.byte(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.byte(b',');
                    }
                    self.value(item);
                }
                self.byte(b']');
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let mut first = true;
                self.byte(b'{');
                for (k, v) in entries {
                    self.key(&mut first, k);
                    self.value(v);
                }
                self.byte(b'}');
            }
        }
    }
}

/// `value` written in `style` (sorted keys, the style's reals).
pub(super) fn to_text(value: &Value, style: Style) -> String {
    let mut out = Out::new(style);
    out.value(value);
    out.into_string()
}

/// A real number that JSON can hold (`f64` that is finite), for `json!` values: reals
/// are kept as `f64` so [`Out::real`] formats them, even when integral.
pub(super) fn real(x: f64) -> Value {
    serde_json::Number::from_f64(if x.is_finite() { x } else { 0.0 })
        .map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reals_as_each_version_writes_them() {
        let legacy = |x| {
            let mut o = Out::new(Style::Legacy);
            o.real(x);
            o.into_string()
        };
        let rpc = |x| {
            let mut o = Out::new(Style::JsonRpc);
            o.real(x);
            o.into_string()
        };
        assert_eq!(legacy(1.0), "1");
        assert_eq!(legacy(-1.0), "-1");
        assert_eq!(legacy(0.42), "0.4200");
        assert_eq!(legacy(2.0), "2");
        assert_eq!(legacy(0.000_001), "0");
        assert_eq!(legacy(0.999_9), "0.9999");
        assert_eq!(rpc(1.0), "1.0");
        assert_eq!(rpc(0.42), "0.42");
        assert_eq!(rpc(-1.0), "-1.0");
    }

    #[test]
    fn strings_are_escaped_and_keys_sorted() {
        let v = json!({"b": "x\"y\\z\n\u{1}é", "a": [real(0.5), 1, -2, true, null]});
        assert_eq!(
            to_text(&v, Style::Legacy),
            r#"{"a":[0.5000,1,-2,true,null],"b":"x\"y\\z\n\u0001é"}"#
        );
    }
}
