//! The JSON form of a description, which the emulator embeds and serves.

use serde_norway::{Mapping, Value};

use crate::openapi::Document;
use crate::Result;

/// The same document as pretty JSON, with a first key `x-generated` saying where it
/// comes from (JSON has no comments).
pub(super) fn render(doc: &Document) -> Result<String> {
    let yaml = doc.provider.yaml;
    let mut map = Mapping::new();
    map.insert(
        Value::from("x-generated"),
        Value::from(format!(
            "by `cargo xtask codegen` from {yaml}. Do not edit by hand."
        )),
    );
    if let Some(entries) = doc.root.as_mapping() {
        for (k, v) in entries {
            map.insert(k.clone(), v.clone());
        }
    }
    let mut json = serde_json::to_string_pretty(&Value::Mapping(map))
        .map_err(|e| format!("{yaml}: cannot convert to JSON: {e}"))?;
    json.push('\n');
    Ok(json)
}
