//! The provider descriptions (`fixtures/openapi/*.yaml`, OpenAPI 3.1) as parsed YAML,
//! with the few look-ups the generators need: `$ref`s, operations, parameters.

use std::path::Path;

use serde_norway::{Mapping, Value};

use crate::Result;

/// One provider: its description and where its generated files go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Provider {
    /// The provider's name in paths: `123pan`, `6pan`.
    #[cfg_attr(not(feature = "fixtures"), allow(dead_code, reason = "fixtures only"))]
    pub(crate) name: &'static str,
    /// The description, relative to the workspace root.
    pub(crate) yaml: &'static str,
    /// Its generated JSON form, which the emulator embeds.
    pub(crate) json: &'static str,
    /// The generated wire types.
    pub(crate) wire: &'static str,
    /// The generated endpoint table.
    pub(crate) endpoints: &'static str,
    /// The first paragraph of the wire module's docs.
    pub(crate) wire_doc: &'static str,
    /// The first paragraph of the endpoint module's docs.
    pub(crate) endpoints_doc: &'static str,
    /// Where the hand-written code on top of the generated types lives, for the docs.
    pub(crate) hand_written: &'static str,
}

/// Both providers, in the order their files are generated.
pub(crate) const PROVIDERS: [Provider; 2] = [
    Provider {
        name: "123pan",
        yaml: "fixtures/openapi/123pan.yaml",
        json: "fixtures/openapi/123pan.json",
        wire: "crates/offline-proto/src/pan123/wire.rs",
        endpoints: "crates/offline-proto/src/pan123/endpoints.rs",
        wire_doc: "123pan open platform wire types, with the provider's own field names.",
        endpoints_doc: "The 123pan endpoint table: method, path, authentication, rate limit.",
        hand_written: "`mod.rs` (encoding, decoding, constructors), `wire_ext.rs` (impls on these \
                       types) and `validate.rs` (local checks)",
    },
    Provider {
        name: "6pan",
        yaml: "fixtures/openapi/6pan.yaml",
        json: "fixtures/openapi/6pan.json",
        wire: "crates/offline-proto/src/sixpan/wire.rs",
        endpoints: "crates/offline-proto/src/sixpan/endpoints.rs",
        wire_doc: "6pan wire types (v1/v2 generation), with the provider's own field names.",
        endpoints_doc: "The 6pan endpoint table: host, method, path, authentication, rate limit.",
        hand_written: "`identity.rs` (identity blobs), `upload_token.rs` (upload tokens) and \
                       `crate::qetag` (etags)",
    },
];

/// A parsed description.
#[derive(Debug)]
pub(crate) struct Document {
    /// The provider it describes.
    pub(crate) provider: Provider,
    /// The whole YAML document, key order kept.
    pub(crate) root: Value,
}

/// One operation: a method on a path, or a webhook.
#[derive(Debug, Clone)]
pub(crate) struct Operation<'a> {
    /// `get`, `post`, ... as in the document.
    pub(crate) method: String,
    /// The path (a template such as `/mkblk/{blockSize}/{blockIndex}`), or the webhook's
    /// name.
    pub(crate) path: String,
    /// Whether this is a webhook (sent by the provider, not called).
    pub(crate) webhook: bool,
    /// The operation object.
    pub(crate) op: &'a Value,
}

impl Operation<'_> {
    /// The `operationId`.
    pub(crate) fn id(&self) -> Result<&str> {
        self.op
            .get("operationId")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{} {} has no operationId", self.method, self.path))
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

impl Document {
    /// Reads and parses `provider.yaml` below `root`.
    pub(crate) fn load(root: &Path, provider: Provider) -> Result<Self> {
        let path = root.join(provider.yaml);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let root: Value = serde_norway::from_str(&text)
            .map_err(|e| format!("{} is not valid YAML: {e}", provider.yaml))?;
        if root.get("openapi").and_then(Value::as_str) != Some("3.1.0") {
            return Err(format!("{}: expected `openapi: 3.1.0`", provider.yaml));
        }
        Ok(Self { provider, root })
    }

    /// Follows `value`'s `$ref` (a local JSON pointer), if it has one, transitively.
    pub(crate) fn resolve<'a>(&'a self, value: &'a Value) -> Result<&'a Value> {
        let mut current = value;
        for _ in 0..16 {
            let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
                return Ok(current);
            };
            current = self.pointer(reference)?;
        }
        Err("`$ref` chain too long".to_owned())
    }

    /// The value at a local reference `#/a/b/c`.
    pub(crate) fn pointer(&self, reference: &str) -> Result<&Value> {
        let pointer = reference
            .strip_prefix("#/")
            .ok_or_else(|| format!("only local references are supported: {reference}"))?;
        let mut current = &self.root;
        for part in pointer.split('/') {
            let part = part.replace("~1", "/").replace("~0", "~");
            current = current
                .get(part.as_str())
                .ok_or_else(|| format!("dangling reference {reference}"))?;
        }
        Ok(current)
    }

    /// The name a `$ref` to a component schema points to (`#/components/schemas/X` → `X`).
    pub(crate) fn ref_name(value: &Value) -> Option<&str> {
        value
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
    }

    /// A section of `components` (`schemas`, `securitySchemes`), in document order.
    pub(crate) fn components(&self, section: &str) -> Option<&Mapping> {
        self.root
            .get("components")
            .and_then(|c| c.get(section))
            .and_then(Value::as_mapping)
    }

    /// The component schemas, in document order.
    pub(crate) fn schemas(&self) -> Vec<(&str, &Value)> {
        self.components("schemas")
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?, v)))
            .collect()
    }

    /// A component schema by name.
    pub(crate) fn schema(&self, name: &str) -> Result<&Value> {
        self.components("schemas")
            .and_then(|s| s.get(name))
            .ok_or_else(|| format!("no schema {name:?} in components/schemas"))
    }

    /// Every operation under `paths`, then every webhook, in document order.
    pub(crate) fn operations(&self) -> Vec<Operation<'_>> {
        let mut out = Vec::new();
        for (section, webhook) in [("paths", false), ("webhooks", true)] {
            let Some(items) = self.root.get(section).and_then(Value::as_mapping) else {
                continue;
            };
            for (path, item) in items {
                let (Some(path), Some(item)) = (path.as_str(), item.as_mapping()) else {
                    continue;
                };
                for (method, op) in item {
                    let Some(method) = method.as_str().filter(|m| METHODS.contains(m)) else {
                        continue;
                    };
                    out.push(Operation {
                        method: method.to_owned(),
                        path: path.to_owned(),
                        webhook,
                        op,
                    });
                }
            }
        }
        out
    }

    /// The parameters of an operation, `$ref`s resolved.
    pub(crate) fn parameters<'a>(&'a self, op: &Operation<'a>) -> Result<Vec<&'a Value>> {
        let Some(list) = op.op.get("parameters").and_then(Value::as_sequence) else {
            return Ok(Vec::new());
        };
        list.iter().map(|p| self.resolve(p)).collect()
    }
}

/// `value[key]` as a string.
pub(crate) fn str_of<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// `value[key]` as a list of strings (empty when absent).
pub(crate) fn strings_of<'a>(value: &'a Value, key: &str) -> Vec<&'a str> {
    value
        .get(key)
        .and_then(Value::as_sequence)
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
