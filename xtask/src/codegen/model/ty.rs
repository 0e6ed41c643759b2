//! The Rust type a schema maps to, and whether the type generated for a component
//! schema may derive `Copy` and `Eq`.

use serde_norway::Value;

use super::{Reader, Ty};
use crate::openapi::{str_of, Document};
use crate::Result;

impl Reader<'_> {
    /// The Rust name of a component schema.
    pub(super) fn type_name(self, name: &str) -> Result<String> {
        let schema = self.doc.schema(name)?;
        Ok(str_of(schema, "x-rust-name").map_or_else(|| name.to_owned(), str::to_owned))
    }

    /// The type a schema (a property, an item, a parameter's) maps to, and whether it
    /// may be `null`.
    pub(super) fn ty(self, schema: &Value, context: &str) -> Result<(Ty, bool)> {
        if let Some(path) = str_of(schema, "x-rust-type") {
            let copy = matches!(path, "f64" | "u64" | "i64" | "u32" | "i32" | "bool");
            return Ok((external(path, copy, path != "f64"), false));
        }
        if let Some(name) = Document::ref_name(schema) {
            return Ok((self.component_ty(name)?, false));
        }
        let (kind, nullable) = kind(schema);
        let ty = match kind {
            Some("integer") => {
                let unsigned = schema
                    .get("minimum")
                    .and_then(Value::as_f64)
                    .is_some_and(|m| m >= 0.0);
                let rust = match (str_of(schema, "format"), unsigned) {
                    (Some("int32"), true) => "u32",
                    (Some("int32"), false) => "i32",
                    (_, true) => "u64",
                    (_, false) => "i64",
                };
                Ty::new(rust, true, true)
            }
            Some("number") => Ty::new("f64", true, false),
            Some("boolean") => Ty::new("bool", true, true),
            Some("null") => Ty::new("()", true, true),
            Some("string") if str_of(schema, "format") == Some("date-time") => Ty {
                with: Some("time::serde::rfc3339"),
                import: Some("time::OffsetDateTime".to_owned()),
                ..Ty::new("OffsetDateTime", true, true)
            },
            Some("string") => Ty::new("String", false, true),
            Some("array") => {
                let items = schema
                    .get("items")
                    .ok_or_else(|| self.error(format_args!("{context}: an array without items")))?;
                let (item, _) = self.ty(items, context)?;
                Ty {
                    import: item.import,
                    ..Ty::new(format!("Vec<{}>", item.rust), false, item.eq)
                }
            }
            Some("object") if schema.get("properties").is_none() => {
                Ty::new("serde_json::Map<String, serde_json::Value>", false, true)
            }
            Some("object") => {
                return Err(self.error(format_args!(
                    "{context}: an inline object with properties; name it under components/schemas"
                )))
            }
            // No type (or several): any JSON value. The description says why.
            _ => Ty::new("serde_json::Value", false, true),
        };
        Ok((ty, nullable))
    }

    /// The type of a schema that stands for a type of its own (a component, a
    /// `oneOf` branch), without its docs and names.
    pub(super) fn bare_ty(self, schema: &Value, context: &str) -> Result<Ty> {
        let mut bare = schema.clone();
        if let Some(map) = bare.as_mapping_mut() {
            for key in ["description", "title", "x-rust-derive", "x-rust-name"] {
                map.remove(key);
            }
        }
        Ok(self.ty(&bare, context)?.0)
    }

    /// The type of a `$ref` to component `name`, with its derivable traits.
    fn component_ty(self, name: &str) -> Result<Ty> {
        let schema = self.doc.schema(name)?;
        if let Some(path) = str_of(schema, "x-rust-type") {
            return Ok(external(path, false, true));
        }
        let (copy, eq) = self.traits(name, 0)?;
        Ok(Ty::new(self.type_name(name)?, copy, eq))
    }

    /// Whether the type generated for component `name` is `Copy` and `Eq`.
    pub(super) fn traits(self, name: &str, depth: usize) -> Result<(bool, bool)> {
        if depth > 32 {
            return Err(self.error(format_args!("schema {name} is recursive")));
        }
        let schema = self.doc.schema(name)?;
        if schema.get("x-enum-varnames").is_some() {
            return Ok((str_of(schema, "type") == Some("integer"), true));
        }
        if schema.get("x-envelope").is_some() {
            return Ok((false, false));
        }
        let mut members: Vec<&Value> = Vec::new();
        if let Some(props) = schema.get("properties").and_then(Value::as_mapping) {
            members.extend(props.values());
        } else if let Some(branches) = schema.get("oneOf").and_then(Value::as_sequence) {
            members.extend(branches);
        } else {
            members.push(schema);
        }
        let (mut copy, mut eq) = (true, true);
        for member in members {
            let (c, e) = match Document::ref_name(member) {
                Some(inner) if self.doc.schema(inner)?.get("x-rust-type").is_none() => {
                    self.traits(inner, depth + 1)?
                }
                _ if std::ptr::eq(member, schema) => {
                    let ty = self.bare_ty(schema, name)?;
                    (ty.copy, ty.eq)
                }
                _ => {
                    let (ty, _) = self.ty(member, name)?;
                    (ty.copy, ty.eq)
                }
            };
            copy &= c;
            eq &= e;
        }
        Ok((copy, eq))
    }
}

/// The JSON type of a schema (`type`, or the one besides `null` in a list), and
/// whether it may be `null`.
fn kind(schema: &Value) -> (Option<&str>, bool) {
    match schema.get("type") {
        Some(Value::String(t)) => (Some(t.as_str()), false),
        Some(Value::Sequence(list)) => {
            let kinds: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            let nullable = kinds.contains(&"null");
            let rest: Vec<&str> = kinds.into_iter().filter(|k| *k != "null").collect();
            match rest.as_slice() {
                [one] => (Some(*one), nullable),
                [] => (Some("null"), false),
                _ => (None, nullable),
            }
        }
        _ => (None, false),
    }
}

/// A type from `x-rust-type`: `crate::a::B` is imported and written `B`.
fn external(path: &str, copy: bool, eq: bool) -> Ty {
    if path.starts_with("crate::") && !path.contains('<') {
        let short = path.rsplit("::").next().unwrap_or(path);
        Ty {
            import: Some(path.to_owned()),
            ..Ty::new(short, copy, eq)
        }
    } else {
        Ty::new(path, copy, eq)
    }
}
