//! `cargo xtask codegen`: Rust wire types and endpoint tables from the descriptions.
//!
//! The Rust is written as plain text with [`Code`] and formatted with rustfmt. What each
//! schema becomes (the `x-` extensions are documented in `fixtures/openapi/README.md`):
//!
//! | schema | Rust |
//! |---|---|
//! | object with `properties` | a struct, serde names = wire names, `Option` for optional fields |
//! | object with `x-envelope: <field>` | a struct generic over that field's type |
//! | `enum` with `x-enum-varnames` | an enum with an `Unknown(..)` variant and manual serde |
//! | `oneOf` of titled branches | an untagged enum, one variant per branch |
//! | integer, number or string | a `#[serde(transparent)]` newtype |
//! | object without `properties` | a type alias of a JSON map |
//! | anything with `x-rust-type` | nothing: that type is used |
//!
//! Every type and field needs a `description`: it becomes the doc comment.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde_norway::Value;

use crate::openapi::{str_of, strings_of, Document, Operation, PROVIDERS};
use crate::output::{rustfmt, Outputs};
use crate::{Mode, Result};

/// Runs the task for every provider.
pub(crate) fn run(root: &Path, mode: Mode) -> Result<()> {
    let mut outputs = Outputs::default();
    for provider in PROVIDERS {
        let doc = Document::load(root, provider)?;
        outputs.add(provider.json, doc.to_json()?);
        let wire = Gen::new(&doc).wire()?;
        outputs.add(provider.wire, rustfmt(&wire)?);
        let endpoints = Gen::new(&doc).endpoints()?;
        outputs.add(provider.endpoints, rustfmt(&endpoints)?);
    }
    outputs.finish(root, mode, "cargo xtask codegen")
}

/// Rust source under construction.
#[derive(Debug, Default)]
struct Code(String);

impl Code {
    /// Appends a line.
    fn line(&mut self, line: impl AsRef<str>) {
        self.0.push_str(line.as_ref());
        self.0.push('\n');
    }

    /// Appends generated prose as a `///` doc comment, wrapped at [`WIDTH`] columns
    /// (a `- ` list item's further lines indented under it).
    fn prose(&mut self, text: &str) {
        self.doc(&wrap(text));
    }

    /// Appends `text` as a `///` doc comment, line by line; a line longer than
    /// [`WIDTH`] is wrapped, unless it is part of a table or a code block.
    fn doc(&mut self, text: &str) {
        let mut fenced = false;
        for line in text.trim_end().lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            }
            if line.trim().is_empty() {
                self.line("///");
            } else if fenced || line.starts_with('|') || line.chars().count() <= WIDTH {
                self.line(format!("/// {}", line.trim_end()));
            } else {
                for part in wrap(line).lines() {
                    self.line(format!("/// {part}"));
                }
            }
        }
    }
}

/// The width generated prose is wrapped at (descriptions keep their own lines).
const WIDTH: usize = 88;

/// Wraps each paragraph and `- ` list item of `text` at [`WIDTH`] columns.
fn wrap(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let (first_indent, indent, words) = match line.strip_prefix("- ") {
            Some(rest) => ("- ", "  ", rest),
            None => ("", "", line),
        };
        if words.trim().is_empty() {
            out.push('\n');
            continue;
        }
        let mut current = first_indent.to_owned();
        let mut empty = true;
        for word in words.split_whitespace() {
            if !empty && current.chars().count() + 1 + word.chars().count() > WIDTH {
                out.push_str(&current);
                out.push('\n');
                current = indent.to_owned();
                empty = true;
            }
            if !empty {
                current.push(' ');
            }
            current.push_str(word);
            empty = false;
        }
        out.push_str(&current);
        out.push('\n');
    }
    out
}

/// The Rust type of a value, with what derives it allows.
#[derive(Debug, Clone)]
struct Ty {
    /// The type as written in a field, e.g. `Vec<ParseFile>`.
    rust: String,
    /// Whether it is `Copy`.
    copy: bool,
    /// Whether it is `Eq` (no floats inside).
    eq: bool,
    /// The serde `with` module it needs (date-times).
    with: Option<&'static str>,
}

impl Ty {
    fn new(rust: impl Into<String>, copy: bool, eq: bool) -> Self {
        Self {
            rust: rust.into(),
            copy,
            eq,
            with: None,
        }
    }
}

/// One field of a generated struct.
#[derive(Debug)]
struct Field {
    /// The name on the wire.
    wire: String,
    /// The Rust field name.
    name: String,
    /// The doc comment.
    doc: String,
    /// The type (without the `Option` of an optional field).
    ty: Ty,
    /// Present in every value (or `null` when `nullable`).
    required: bool,
    /// May be `null` on the wire.
    nullable: bool,
    /// `x-rust-default`: a plain type that defaults when absent.
    default: bool,
    /// Other wire names accepted when reading (`x-aliases`), in order of precedence.
    aliases: Vec<String>,
    /// Holds the struct's type parameter (`x-envelope`).
    generic: bool,
    /// `x-rust-const`: a constant generated for the field's `const` value.
    constant: Option<(String, String)>,
}

impl Field {
    /// Whether the Rust type is wrapped in `Option`.
    fn optional(&self) -> bool {
        (!self.required || self.nullable) && !self.default
    }

    /// The Rust type as declared.
    fn declared(&self) -> String {
        if self.optional() {
            format!("Option<{}>", self.ty.rust)
        } else {
            self.ty.rust.clone()
        }
    }

    /// The `#[serde(...)]` arguments.
    fn serde_args(&self, reading_only: bool) -> Vec<String> {
        let mut args = Vec::new();
        if self.wire != self.name {
            args.push(format!("rename = {:?}", self.wire));
        }
        // An `Option` defaults to `None` even where it is required-but-nullable, so that
        // reading is as lenient for a missing key as for `null` (also from a sequence).
        // On the type parameter, the plain `default` would make serde require
        // `T: Default`.
        if self.generic && self.optional() {
            args.push("default = \"Option::default\"".to_owned());
        } else if self.default || self.optional() {
            args.push("default".to_owned());
        }
        if self.optional() && !self.required && !reading_only {
            args.push("skip_serializing_if = \"Option::is_none\"".to_owned());
        }
        if let Some(with) = self.ty.with {
            if self.optional() {
                args.push(format!("with = \"{with}::option\""));
            } else {
                args.push(format!("with = \"{with}\""));
            }
        }
        args
    }
}

const KEYWORDS: [&str; 12] = [
    "type", "ref", "match", "mod", "move", "fn", "impl", "self", "struct", "enum", "use", "where",
];

/// `fileName` → `file_name`, `taskID` → `task_id`, `x-traceID` → `x_trace_id`.
pub(crate) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '-' || c == ' ' || c == '.' {
            out.push('_');
        } else if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1);
            let boundary = prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit())
                || (prev.is_some_and(char::is_uppercase) && next.is_some_and(|n| n.is_lowercase()));
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `accessToken` → `AccessToken`, `parse_url` → `ParseUrl`.
fn pascal_case(name: &str) -> String {
    let mut out = String::new();
    let mut upper = true;
    for c in name.chars() {
        if c == '_' || c == '-' || c == ' ' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The generator for one description.
struct Gen<'a> {
    doc: &'a Document,
    /// `use` lines the code needs.
    imports: BTreeSet<String>,
    /// Names the code uses from `serde`.
    serde: BTreeSet<&'static str>,
}

impl<'a> Gen<'a> {
    fn new(doc: &'a Document) -> Self {
        Self {
            doc,
            imports: BTreeSet::new(),
            serde: BTreeSet::new(),
        }
    }

    fn file(&self) -> &'static str {
        self.doc.provider.yaml
    }

    /// The file's first lines: the generated marker and the module docs.
    fn header(&self, first: &str) -> Code {
        let mut code = Code::default();
        code.line(format!(
            "// @generated by `cargo xtask codegen` from {}. Do not edit by hand.",
            self.file()
        ));
        let text = format!(
            "{first}\n\nGenerated from `{}`, the description of the API and the source of truth \
             (its `x-` extensions are explained in `fixtures/openapi/README.md`). To change \
             something here, edit the description and run `cargo xtask codegen`. Hand-written \
             code on top: {}.",
            self.file(),
            self.doc.provider.hand_written
        );
        for line in wrap(&text).lines() {
            if line.is_empty() {
                code.line("//!");
            } else {
                code.line(format!("//! {line}"));
            }
        }
        code
    }

    /// The description of `value`, which every generated item needs.
    fn description(&self, value: &Value, what: &str) -> Result<String> {
        str_of(value, "description")
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())
            .ok_or_else(|| format!("{}: {what} has no description", self.file()))
    }

    /// The Rust name of a component schema.
    fn type_name(&self, name: &str) -> Result<String> {
        let schema = self.doc.schema(name)?;
        Ok(str_of(schema, "x-rust-name").map_or_else(|| name.to_owned(), str::to_owned))
    }

    /// A Rust path from `x-rust-type`: `crate::a::B` is imported and written `B`.
    fn external(&mut self, path: &str) -> String {
        if path.starts_with("crate::") && !path.contains('<') {
            self.imports.insert(format!("use {path};"));
            path.rsplit("::").next().unwrap_or(path).to_owned()
        } else {
            path.to_owned()
        }
    }

    /// The type a schema (a property, an item, a parameter's) maps to, and whether it
    /// may be `null`.
    fn ty(&mut self, schema: &Value, context: &str) -> Result<(Ty, bool)> {
        if let Some(path) = str_of(schema, "x-rust-type") {
            let copy = matches!(path, "f64" | "u64" | "i64" | "u32" | "i32" | "bool");
            let rust = self.external(path);
            return Ok((Ty::new(rust, copy, path != "f64"), false));
        }
        if let Some(name) = Document::ref_name(schema) {
            return Ok((self.component_ty(name)?, false));
        }
        let (kind, nullable) = match schema.get("type") {
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
        };
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
            Some("string") if str_of(schema, "format") == Some("date-time") => {
                self.imports.insert("use time::OffsetDateTime;".to_owned());
                Ty {
                    with: Some("time::serde::rfc3339"),
                    ..Ty::new("OffsetDateTime", true, true)
                }
            }
            Some("string") => Ty::new("String", false, true),
            Some("array") => {
                let items = schema
                    .get("items")
                    .ok_or_else(|| format!("{}: {context}: an array without items", self.file()))?;
                let (item, _) = self.ty(items, context)?;
                Ty::new(format!("Vec<{}>", item.rust), false, item.eq)
            }
            Some("object") if schema.get("properties").is_none() => {
                Ty::new("serde_json::Map<String, serde_json::Value>", false, true)
            }
            Some("object") => {
                return Err(format!(
                "{}: {context}: an inline object with properties; name it under components/schemas",
                self.file()
            ))
            }
            // No type (or several): any JSON value. The description says why.
            _ => Ty::new("serde_json::Value", false, true),
        };
        Ok((ty, nullable))
    }

    /// The type of a `$ref` to component `name`, with its derivable traits.
    fn component_ty(&mut self, name: &str) -> Result<Ty> {
        let schema = self.doc.schema(name)?;
        if let Some(path) = str_of(schema, "x-rust-type") {
            let rust = self.external(path);
            return Ok(Ty::new(rust, false, true));
        }
        let rust = self.type_name(name)?;
        let (copy, eq) = self.traits(name, 0)?;
        Ok(Ty::new(rust, copy, eq))
    }

    /// Whether the type generated for component `name` is `Copy` and `Eq`.
    fn traits(&mut self, name: &str, depth: usize) -> Result<(bool, bool)> {
        if depth > 32 {
            return Err(format!("{}: schema {name} is recursive", self.file()));
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
                    let stripped = strip_description(schema);
                    let (ty, _) = self.ty(&stripped, name)?;
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

    /// The derive list for a type with these traits.
    fn derives(copy: bool, eq: bool, extra: &[&str], serde: bool) -> String {
        let mut list = vec!["Debug", "Clone"];
        if copy {
            list.push("Copy");
        }
        list.push("PartialEq");
        if eq {
            list.push("Eq");
        }
        list.extend(extra);
        if serde {
            list.extend(["Serialize", "Deserialize"]);
        }
        format!("#[derive({})]", list.join(", "))
    }

    // -----------------------------------------------------------------------------
    // Wire types
    // -----------------------------------------------------------------------------

    /// The wire module.
    fn wire(mut self) -> Result<String> {
        let mut body = Code::default();
        let schemas = self.doc.schemas();
        for (name, schema) in &schemas {
            self.schema_item(&mut body, name, schema)?;
        }
        self.query_structs(&mut body)?;
        let mut code = self.header(self.doc.provider.wire_doc);
        code.line("");
        for import in &self.imports {
            code.line(import);
        }
        if !self.serde.is_empty() {
            let names: Vec<&str> = self.serde.iter().copied().collect();
            code.line(format!("use serde::{{{}}};", names.join(", ")));
        }
        code.line("");
        code.0.push_str(&body.0);
        Ok(code.0)
    }

    /// The item for one component schema.
    fn schema_item(&mut self, code: &mut Code, name: &str, schema: &Value) -> Result<()> {
        if schema.get("x-rust-type").is_some() {
            return Ok(());
        }
        let rust = self.type_name(name)?;
        let doc = self.description(schema, &format!("schema {name}"))?;
        if schema.get("x-enum-varnames").is_some() {
            return self.enum_item(code, &rust, &doc, schema);
        }
        if schema.get("oneOf").is_some() {
            return self.untagged_item(code, &rust, &doc, schema);
        }
        match str_of(schema, "type") {
            Some("object") if schema.get("properties").is_some() => {
                self.struct_item(code, name, &rust, &doc, schema)
            }
            Some("object") => {
                code.line("");
                code.doc(&doc);
                code.line(format!(
                    "pub type {rust} = serde_json::Map<String, serde_json::Value>;"
                ));
                Ok(())
            }
            Some("integer" | "number" | "string" | "boolean") => {
                let stripped = strip_description(schema);
                let (inner, _) = self.ty(&stripped, name)?;
                let extra = strings_of(schema, "x-rust-derive");
                self.serde.extend(["Deserialize", "Serialize"]);
                code.line("");
                code.doc(&doc);
                code.line(Self::derives(inner.copy, inner.eq, &extra, true));
                code.line("#[serde(transparent)]");
                code.line(format!("pub struct {rust}(pub {});", inner.rust));
                Ok(())
            }
            other => Err(format!(
                "{}: schema {name}: cannot generate a type for type {other:?}",
                self.file()
            )),
        }
    }

    /// The fields of an object schema, in document order.
    fn fields(&mut self, owner: &str, schema: &Value, generic: Option<&str>) -> Result<Vec<Field>> {
        let props = schema
            .get("properties")
            .and_then(Value::as_mapping)
            .ok_or_else(|| format!("{}: {owner} has no properties", self.file()))?;
        let required = strings_of(schema, "required");
        let aliased: BTreeSet<&str> = props
            .values()
            .flat_map(|p| strings_of(p, "x-aliases"))
            .collect();
        let mut fields = Vec::new();
        for (wire, prop) in props {
            let wire = wire.as_str().ok_or_else(|| {
                format!("{}: {owner}: a property name is not a string", self.file())
            })?;
            if aliased.contains(wire) {
                continue;
            }
            let context = format!("{owner}.{wire}");
            let name = str_of(prop, "x-rust-name").map_or_else(|| snake_case(wire), str::to_owned);
            if KEYWORDS.contains(&name.as_str()) {
                return Err(format!(
                    "{}: {context}: `{name}` is a Rust keyword; give the property an x-rust-name",
                    self.file()
                ));
            }
            let is_generic = generic == Some(wire);
            let (ty, nullable) = if is_generic {
                (Ty::new("T", false, false), true)
            } else {
                self.ty(prop, &context)?
            };
            let constant = match str_of(prop, "x-rust-const") {
                Some(c) => {
                    let value = prop.get("const").ok_or_else(|| {
                        format!("{}: {context}: x-rust-const without const", self.file())
                    })?;
                    let literal = match value {
                        Value::String(s) => format!("{s:?}"),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return Err(format!("{}: {context}: unsupported const", self.file())),
                    };
                    let rust_ty = if ty.rust == "String" {
                        "&str".to_owned()
                    } else {
                        ty.rust.clone()
                    };
                    Some((c.to_owned(), format!("{rust_ty} = {literal}")))
                }
                None => None,
            };
            let aliases: Vec<String> = strings_of(prop, "x-aliases")
                .into_iter()
                .map(str::to_owned)
                .collect();
            let required = required.contains(&wire);
            let default = prop.get("x-rust-default").and_then(Value::as_bool) == Some(true);
            if !aliases.is_empty() && required && !default {
                return Err(format!(
                    "{}: {context}: x-aliases needs an optional or x-rust-default property",
                    self.file()
                ));
            }
            fields.push(Field {
                doc: self.description(prop, &format!("property {context}"))?,
                wire: wire.to_owned(),
                name,
                ty,
                required,
                nullable,
                default,
                aliases,
                generic: is_generic,
                constant,
            });
        }
        Ok(fields)
    }

    /// A struct for an object schema.
    fn struct_item(
        &mut self,
        code: &mut Code,
        name: &str,
        rust: &str,
        doc: &str,
        schema: &Value,
    ) -> Result<()> {
        let generic = str_of(schema, "x-envelope");
        let fields = self.fields(name, schema, generic)?;
        let (copy, eq) = if generic.is_some() {
            (false, false)
        } else {
            self.traits(name, 0)?
        };
        let mut extra: Vec<&str> = strings_of(schema, "x-rust-derive");
        if generic.is_none() && fields.iter().all(|f| f.optional() || f.default) {
            extra.insert(0, "Default");
        }
        let has_aliases = fields.iter().any(|f| !f.aliases.is_empty());
        self.serde.extend(["Deserialize", "Serialize"]);
        for field in fields
            .iter()
            .filter_map(|f| f.constant.as_ref().map(|c| (f, c)))
        {
            let (field, (constant, value)) = field;
            code.line("");
            code.prose(&format!(
                "The only value of `{}` in [`{rust}`] (the field [`{rust}::{}`]).",
                field.wire, field.name
            ));
            code.line(format!("pub const {constant}: {value};"));
        }
        code.line("");
        code.doc(doc);
        code.line(Self::derives(copy, eq, &extra, true));
        let raw = format!("Raw{rust}");
        if has_aliases {
            code.line(format!("#[serde(from = \"{raw}\")]"));
        }
        let params = if generic.is_some() { "<T>" } else { "" };
        code.line(format!("pub struct {rust}{params} {{"));
        for field in &fields {
            code.doc(&field.doc);
            let args = field.serde_args(false);
            if !args.is_empty() {
                code.line(format!("#[serde({})]", args.join(", ")));
            }
            code.line(format!("pub {}: {},", field.name, field.declared()));
        }
        code.line("}");
        if has_aliases {
            self.raw_struct(code, rust, &raw, &fields);
        }
        Ok(())
    }

    /// The private struct a type with `x-aliases` is read through: every spelling of a
    /// field is read, the first present one (in `[name, aliases...]` order) wins.
    fn raw_struct(&mut self, code: &mut Code, rust: &str, raw: &str, fields: &[Field]) {
        code.line("");
        code.prose(&format!(
            "[`{rust}`] as read from the wire, with every accepted spelling of its fields."
        ));
        code.line("#[derive(Deserialize)]");
        code.line(format!("struct {raw} {{"));
        for field in fields {
            let spellings = std::iter::once((field.wire.clone(), field.name.clone())).chain(
                field
                    .aliases
                    .iter()
                    .map(|alias| (alias.clone(), snake_case(alias))),
            );
            if field.aliases.is_empty() {
                let args = field.serde_args(true);
                if !args.is_empty() {
                    code.line(format!("#[serde({})]", args.join(", ")));
                }
                code.line(format!("{}: {},", field.name, field.declared()));
                continue;
            }
            for (wire, name) in spellings {
                code.line(format!("#[serde(rename = {wire:?}, default)]"));
                code.line(format!("{name}: Option<{}>,", field.ty.rust));
            }
        }
        code.line("}");
        code.line("");
        code.line(format!("impl From<{raw}> for {rust} {{"));
        code.line(format!("fn from(raw: {raw}) -> Self {{"));
        code.line("Self {");
        for field in fields {
            if field.aliases.is_empty() {
                code.line(format!("{0}: raw.{0},", field.name));
                continue;
            }
            let mut expr = format!("raw.{}", field.name);
            for alias in &field.aliases {
                let _ = write!(expr, ".or(raw.{})", snake_case(alias));
            }
            if field.default {
                expr.push_str(".unwrap_or_default()");
            }
            code.line(format!("{}: {expr},", field.name));
        }
        code.line("}");
        code.line("}");
        code.line("}");
    }

    /// An enum for an `enum` schema with `x-enum-varnames`: one variant per value, plus
    /// `Unknown` for any other, with hand-rolled serde so unknown values survive.
    fn enum_item(&mut self, code: &mut Code, rust: &str, doc: &str, schema: &Value) -> Result<()> {
        let values = schema
            .get("enum")
            .and_then(Value::as_sequence)
            .ok_or_else(|| format!("{}: {rust}: x-enum-varnames without enum", self.file()))?;
        let names = strings_of(schema, "x-enum-varnames");
        let docs = strings_of(schema, "x-enum-descriptions");
        if names.len() != values.len() || docs.len() != values.len() {
            return Err(format!(
                "{}: {rust}: enum, x-enum-varnames and x-enum-descriptions differ in length",
                self.file()
            ));
        }
        let integer = str_of(schema, "type") == Some("integer");
        let literals: Vec<String> = values
            .iter()
            .map(|v| match v {
                Value::Number(n) if integer => Ok(n.to_string()),
                Value::String(s) if !integer => Ok(format!("{s:?}")),
                _ => Err(format!(
                    "{}: {rust}: enum value {v:?} of the wrong type",
                    self.file()
                )),
            })
            .collect::<Result<_>>()?;
        self.serde
            .extend(["Deserialize", "Deserializer", "Serialize", "Serializer"]);
        code.line("");
        code.doc(doc);
        code.line(Self::derives(integer, true, &["Hash"], false));
        code.line(format!("pub enum {rust} {{"));
        for (name, doc) in names.iter().zip(&docs) {
            code.doc(doc);
            code.line(format!("{name},"));
        }
        if integer {
            code.line("/// Any other value: one this crate does not know (yet).");
            code.line("Unknown(i64),");
        } else {
            code.line("/// Any other value: one this crate does not know (yet).");
            code.line("Unknown(String),");
        }
        code.line("}");
        code.line("");
        code.line(format!("impl {rust} {{"));
        if integer {
            code.line("/// The wire value.");
            code.line("pub fn code(self) -> i64 {");
            code.line("match self {");
            for (name, lit) in names.iter().zip(&literals) {
                code.line(format!("Self::{name} => {lit},"));
            }
            code.line("Self::Unknown(c) => c,");
            code.line("}");
            code.line("}");
            code.line("");
            code.line("/// The variant for a wire value.");
            code.line("pub fn from_code(code: i64) -> Self {");
            code.line("match code {");
            for (name, lit) in names.iter().zip(&literals) {
                code.line(format!("{lit} => Self::{name},"));
            }
            code.line("c => Self::Unknown(c),");
            code.line("}");
            code.line("}");
        } else {
            code.line("/// The wire value.");
            code.line("pub fn as_str(&self) -> &str {");
            code.line("match self {");
            for (name, lit) in names.iter().zip(&literals) {
                code.line(format!("Self::{name} => {lit},"));
            }
            code.line("Self::Unknown(s) => s,");
            code.line("}");
            code.line("}");
        }
        code.line("}");
        if integer {
            code.line("");
            code.line(format!("impl Serialize for {rust} {{"));
            code.line(
                "fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {",
            );
            code.line("serializer.serialize_i64(self.code())");
            code.line("}");
            code.line("}");
            code.line("");
            code.line(format!("impl<'de> Deserialize<'de> for {rust} {{"));
            code.line(
                "fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {",
            );
            code.line("i64::deserialize(deserializer).map(Self::from_code)");
            code.line("}");
            code.line("}");
        } else {
            code.line("");
            code.line(format!("impl From<&str> for {rust} {{"));
            code.line("fn from(value: &str) -> Self {");
            code.line("match value {");
            for (name, lit) in names.iter().zip(&literals) {
                code.line(format!("{lit} => Self::{name},"));
            }
            code.line("other => Self::Unknown(other.to_owned()),");
            code.line("}");
            code.line("}");
            code.line("}");
            code.line("");
            code.line(format!("impl Serialize for {rust} {{"));
            code.line(
                "fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {",
            );
            code.line("serializer.serialize_str(self.as_str())");
            code.line("}");
            code.line("}");
            code.line("");
            code.line(format!("impl<'de> Deserialize<'de> for {rust} {{"));
            code.line(
                "fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {",
            );
            code.line("String::deserialize(deserializer).map(|s| Self::from(s.as_str()))");
            code.line("}");
            code.line("}");
        }
        Ok(())
    }

    /// An untagged enum for a `oneOf` schema: one variant per branch, named by its
    /// `title`, tried in order.
    fn untagged_item(
        &mut self,
        code: &mut Code,
        rust: &str,
        doc: &str,
        schema: &Value,
    ) -> Result<()> {
        let branches = schema
            .get("oneOf")
            .and_then(Value::as_sequence)
            .ok_or_else(|| format!("{}: {rust}: oneOf is not a list", self.file()))?;
        let mut variants = Vec::new();
        let (mut copy, mut eq) = (true, true);
        for branch in branches {
            let title = str_of(branch, "title")
                .ok_or_else(|| format!("{}: {rust}: a oneOf branch has no title", self.file()))?;
            let branch_doc = self.description(branch, &format!("{rust} branch {title}"))?;
            let stripped = strip_description(branch);
            let (ty, _) = self.ty(&stripped, rust)?;
            copy &= ty.copy;
            eq &= ty.eq;
            variants.push((title.to_owned(), branch_doc, ty.rust));
        }
        self.serde.extend(["Deserialize", "Serialize"]);
        code.line("");
        code.doc(doc);
        code.line(Self::derives(copy, eq, &[], true));
        code.line("#[serde(untagged)]");
        code.line(format!("pub enum {rust} {{"));
        for (title, doc, ty) in variants {
            code.doc(&doc);
            code.line(format!("{title}({ty}),"));
        }
        code.line("}");
        Ok(())
    }

    /// The structs named by operations' `x-rust-query`: one field per query parameter.
    fn query_structs(&mut self, code: &mut Code) -> Result<()> {
        let mut seen: Vec<(String, Vec<String>, String)> = Vec::new();
        for op in self.doc.operations() {
            let Some(name) = str_of(op.op, "x-rust-query") else {
                continue;
            };
            let route = format!("`{} {}`", op.method.to_uppercase(), op.path);
            let mut props = serde_norway::Mapping::new();
            let mut required = Vec::new();
            for param in self.doc.parameters(&op)? {
                if str_of(param, "in") != Some("query") {
                    continue;
                }
                let wire = str_of(param, "name").ok_or("a parameter has no name")?;
                let mut schema = self
                    .doc
                    .resolve(param.get("schema").ok_or("no schema")?)?
                    .clone();
                if let (Some(map), Some(s)) = (schema.as_mapping_mut(), param.get("schema")) {
                    // Keep a `$ref` so the field's type is the named component.
                    if let Some(r) = s.get("$ref") {
                        map.clear();
                        map.insert(Value::from("$ref"), r.clone());
                    }
                    map.insert(
                        Value::from("description"),
                        param.get("description").cloned().unwrap_or(Value::Null),
                    );
                }
                if param.get("required").and_then(Value::as_bool) == Some(true) {
                    required.push(Value::from(wire));
                }
                props.insert(Value::from(wire), schema);
            }
            let mut schema = serde_norway::Mapping::new();
            schema.insert(Value::from("type"), Value::from("object"));
            schema.insert(Value::from("required"), Value::Sequence(required));
            schema.insert(Value::from("properties"), Value::Mapping(props));
            let schema = Value::Mapping(schema);
            let text = serde_norway::to_string(&schema).map_err(|e| e.to_string())?;
            match seen.iter_mut().find(|(n, _, _)| n == name) {
                Some((_, routes, first)) if *first == text => routes.push(route),
                Some(_) => {
                    return Err(format!(
                        "{}: x-rust-query {name} names different parameter lists",
                        self.file()
                    ))
                }
                None => seen.push((name.to_owned(), vec![route], text)),
            }
        }
        for (name, routes, text) in seen {
            let schema: Value = serde_norway::from_str(&text).map_err(|e| e.to_string())?;
            let fields = self.fields(&name, &schema, None)?;
            let (mut copy, mut eq) = (true, true);
            for f in &fields {
                copy &= f.ty.copy;
                eq &= f.ty.eq;
            }
            let doc = format!(
                "Query of {}: {}.",
                routes.join(" and "),
                fields
                    .iter()
                    .map(|f| format!("`{}`", f.wire))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            self.serde.extend(["Deserialize", "Serialize"]);
            code.line("");
            code.prose(&doc);
            code.line(Self::derives(copy, eq, &[], true));
            code.line(format!("pub struct {name} {{"));
            for field in &fields {
                code.doc(&field.doc);
                let args = field.serde_args(false);
                if !args.is_empty() {
                    code.line(format!("#[serde({})]", args.join(", ")));
                }
                code.line(format!("pub {}: {},", field.name, field.declared()));
            }
            code.line("}");
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------
    // Endpoint table
    // -----------------------------------------------------------------------------

    /// The endpoint module.
    fn endpoints(self) -> Result<String> {
        let doc = self.doc;
        let file = self.file();
        let ops: Vec<Operation<'_>> = doc
            .operations()
            .into_iter()
            .filter(|o| !o.webhook)
            .collect();
        struct Row {
            variant: String,
            id: String,
            method: String,
            path: String,
            summary: String,
            auth: Option<String>,
            creates: bool,
            rate: f64,
            rate_note: String,
            host: Option<String>,
        }
        let schemes = doc
            .root
            .get("components")
            .and_then(|c| c.get("securitySchemes"))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let scheme_variant = |key: &str| -> Result<String> {
            let scheme = schemes
                .get(key)
                .ok_or_else(|| format!("{file}: unknown security scheme {key}"))?;
            Ok(str_of(scheme, "x-rust-name").map_or_else(|| pascal_case(key), str::to_owned))
        };
        let default_security = doc.root.get("security");
        let default_host = doc
            .root
            .get("servers")
            .and_then(Value::as_sequence)
            .and_then(|s| s.first())
            .and_then(|s| str_of(s, "x-rust-name"))
            .map(str::to_owned);
        let mut rows = Vec::new();
        for op in &ops {
            let id = op.id()?.to_owned();
            let variant =
                str_of(op.op, "x-rust-name").map_or_else(|| pascal_case(&id), str::to_owned);
            let security = op.op.get("security").or(default_security);
            let auth = match security
                .and_then(Value::as_sequence)
                .and_then(|s| s.first())
            {
                Some(req) => {
                    let key = req
                        .as_mapping()
                        .and_then(|m| m.keys().next())
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("{file}: {id}: bad security requirement"))?;
                    Some(scheme_variant(key)?)
                }
                None => None,
            };
            let rate = op
                .op
                .get("x-rate-limit")
                .ok_or_else(|| format!("{file}: {id} has no x-rate-limit"))?;
            let host = match op.op.get("servers").and_then(Value::as_sequence) {
                Some(servers) => Some(
                    servers
                        .first()
                        .and_then(|s| str_of(s, "x-rust-name"))
                        .ok_or_else(|| format!("{file}: {id}: servers need an x-rust-name"))?
                        .to_owned(),
                ),
                None => default_host.clone(),
            };
            rows.push(Row {
                summary: str_of(op.op, "summary")
                    .ok_or_else(|| format!("{file}: {id} has no summary"))?
                    .trim()
                    .to_owned(),
                variant,
                method: op.method.to_uppercase(),
                path: op.path.clone(),
                auth,
                creates: op.op.get("x-creates").and_then(Value::as_bool) == Some(true),
                rate: rate
                    .get("per-second")
                    .and_then(Value::as_f64)
                    .ok_or_else(|| format!("{file}: {id}: x-rate-limit needs per-second"))?,
                rate_note: str_of(rate, "description").unwrap_or("").trim().to_owned(),
                host,
                id,
            });
        }
        let templated = rows.iter().any(|r| r.path.contains('{'));
        let hosts: Vec<String> = {
            let mut v: Vec<String> = Vec::new();
            for r in &rows {
                if let Some(h) = &r.host {
                    if !v.contains(h) {
                        v.push(h.clone());
                    }
                }
            }
            v
        };
        let multi_host = hosts.len() > 1;

        let mut code = self.header(doc.provider.endpoints_doc);
        code.line("");
        code.line("use http::Method;");
        code.line("");
        code.doc("The calls, for per-endpoint rate limits and logs.");
        code.line("#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]");
        code.line("pub enum EndpointId {");
        for r in &rows {
            code.prose(&format!("`{} {}`: {}", r.method, r.path, r.summary));
            code.line(format!("{},", r.variant));
        }
        code.line("}");

        // Authentication schemes.
        code.line("");
        code.doc("How a call proves who it is (the description's `securitySchemes`).");
        code.line("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]");
        code.line("pub enum AuthScheme {");
        for (key, scheme) in &schemes {
            let key = key.as_str().unwrap_or_default();
            let d = str_of(scheme, "description")
                .ok_or_else(|| format!("{file}: security scheme {key} has no description"))?;
            code.doc(d);
            code.line(format!("{},", scheme_variant(key)?));
        }
        code.line("}");

        if multi_host {
            code.line("");
            code.doc("Which server a call goes to (the description's `servers`).");
            code.line("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]");
            code.line("pub enum Host {");
            let mut server_docs: Vec<(String, String)> = Vec::new();
            let mut collect = |servers: Option<&Value>| {
                for s in servers.and_then(Value::as_sequence).into_iter().flatten() {
                    if let (Some(name), Some(d)) =
                        (str_of(s, "x-rust-name"), str_of(s, "description"))
                    {
                        if !server_docs.iter().any(|(n, _)| n == name) {
                            server_docs.push((name.to_owned(), d.to_owned()));
                        }
                    }
                }
            };
            collect(doc.root.get("servers"));
            for op in &ops {
                collect(op.op.get("servers"));
            }
            for host in &hosts {
                let d = server_docs
                    .iter()
                    .find(|(n, _)| n == host)
                    .map(|(_, d)| d.clone())
                    .ok_or_else(|| format!("{file}: server {host} has no description"))?;
                code.doc(&d);
                code.line(format!("{host},"));
            }
            code.line("}");
        }

        code.line("");
        code.line("impl EndpointId {");
        code.doc("Every endpoint, in table order.");
        code.line(format!("pub const ALL: [Self; {}] = [", rows.len()));
        for r in &rows {
            code.line(format!("Self::{},", r.variant));
        }
        code.line("];");
        code.line("");
        code.doc("The `operationId` in the description, e.g. `offlineDownload`.");
        code.line("pub fn operation_id(self) -> &'static str {");
        code.line("match self {");
        for r in &rows {
            code.line(format!("Self::{} => {:?},", r.variant, r.id));
        }
        code.line("}");
        code.line("}");
        code.line("");
        if templated {
            code.prose("The path, e.g. `/v2/offline/add`; a template such as `/mkblk/{blockSize}/{blockIndex}` for calls with path parameters.");
        } else {
            code.prose(&format!(
                "The path, e.g. `{}`.",
                rows.iter()
                    .find(|r| r.method == "POST")
                    .map_or("/", |r| r.path.as_str())
            ));
        }
        code.line("pub fn path(self) -> &'static str {");
        code.line("match self {");
        for r in &rows {
            code.line(format!("Self::{} => {:?},", r.variant, r.path));
        }
        code.line("}");
        code.line("}");
        code.line("");
        code.doc("The method.");
        code.line("pub fn method(self) -> Method {");
        code.line("match self {");
        let mut methods: Vec<&str> = Vec::new();
        for r in &rows {
            if !methods.contains(&r.method.as_str()) {
                methods.push(&r.method);
            }
        }
        for m in methods {
            let variants: Vec<String> = rows
                .iter()
                .filter(|r| r.method == m)
                .map(|r| format!("Self::{}", r.variant))
                .collect();
            code.line(format!("{} => Method::{m},", variants.join(" | ")));
        }
        code.line("}");
        code.line("}");
        code.line("");
        code.doc("The endpoint of a method and path, if it is one of these.");
        code.line("pub fn from_route(method: &Method, path: &str) -> Option<Self> {");
        code.line("Self::ALL");
        code.line(".into_iter()");
        if templated {
            code.line(".find(|e| route_matches(e.path(), path) && e.method() == method)");
        } else {
            code.line(".find(|e| e.path() == path && e.method() == method)");
        }
        code.line("}");
        code.line("");
        let unauthenticated: Vec<String> = rows
            .iter()
            .filter(|r| r.auth.is_none())
            .map(|r| format!("`{}`", r.id))
            .collect();
        code.prose(&format!(
            "How the call authenticates; `None` for {}.",
            if unauthenticated.is_empty() {
                "none of them".to_owned()
            } else {
                unauthenticated.join(", ")
            }
        ));
        code.line("pub fn auth(self) -> Option<AuthScheme> {");
        code.line("match self {");
        let mut auths: Vec<Option<String>> = Vec::new();
        for r in &rows {
            if !auths.contains(&r.auth) {
                auths.push(r.auth.clone());
            }
        }
        for a in auths {
            let variants: Vec<String> = rows
                .iter()
                .filter(|r| r.auth == a)
                .map(|r| format!("Self::{}", r.variant))
                .collect();
            let value = a.map_or_else(|| "None".to_owned(), |a| format!("Some(AuthScheme::{a})"));
            code.line(format!("{} => {value},", variants.join(" | ")));
        }
        code.line("}");
        code.line("}");
        if multi_host {
            code.line("");
            code.doc("The server the call goes to.");
            code.line("pub fn host(self) -> Host {");
            code.line("match self {");
            for h in &hosts {
                let variants: Vec<String> = rows
                    .iter()
                    .filter(|r| r.host.as_deref() == Some(h))
                    .map(|r| format!("Self::{}", r.variant))
                    .collect();
                code.line(format!("{} => Host::{h},", variants.join(" | ")));
            }
            code.line("}");
            code.line("}");
        }
        code.line("");
        code.prose("Whether a successful call creates something (a task), so that sending it twice could create two (`x-creates`).");
        code.line("pub fn creates(self) -> bool {");
        let creators: Vec<String> = rows
            .iter()
            .filter(|r| r.creates)
            .map(|r| format!("Self::{}", r.variant))
            .collect();
        if creators.is_empty() {
            code.line("let _ = self;");
            code.line("false");
        } else {
            code.line(format!("matches!(self, {})", creators.join(" | ")));
        }
        code.line("}");
        code.line("");
        let mut rate_doc = String::from(
            "The default rate limit, requests per second (`x-rate-limit`); configurable \
             wherever it is used.\n\n",
        );
        for r in &rows {
            if r.rate_note.is_empty() {
                let _ = writeln!(rate_doc, "- `{}`: {}/s.", r.id, r.rate);
            } else {
                let _ = writeln!(rate_doc, "- `{}`: {}/s. {}", r.id, r.rate, r.rate_note);
            }
        }
        code.prose(&rate_doc);
        code.line("pub fn default_rate_per_second(self) -> f64 {");
        code.line("match self {");
        let mut rates: Vec<f64> = Vec::new();
        for r in &rows {
            if !rates.iter().any(|x| (x - r.rate).abs() < f64::EPSILON) {
                rates.push(r.rate);
            }
        }
        for rate in rates {
            let variants: Vec<String> = rows
                .iter()
                .filter(|r| (r.rate - rate).abs() < f64::EPSILON)
                .map(|r| format!("Self::{}", r.variant))
                .collect();
            code.line(format!("{} => {rate:?},", variants.join(" | ")));
        }
        code.line("}");
        code.line("}");
        code.line("}");
        if templated {
            code.line("");
            code.prose("Whether `path` fits `template`, where a `{name}` segment matches any one non-empty segment.");
            code.line("fn route_matches(template: &str, path: &str) -> bool {");
            code.line("let mut want = template.split('/');");
            code.line("let mut have = path.split('/');");
            code.line("loop {");
            code.line("match (want.next(), have.next()) {");
            code.line("(None, None) => return true,");
            code.line("(Some(w), Some(h)) if w.starts_with('{') && w.ends_with('}') && !h.is_empty() => {}");
            code.line("(Some(w), Some(h)) if w == h => {}");
            code.line("_ => return false,");
            code.line("}");
            code.line("}");
            code.line("}");
        }
        Ok(code.0)
    }
}

/// `schema` without its `description`, `title` and `x-rust-*` keys: the type alone.
fn strip_description(schema: &Value) -> Value {
    let mut copy = schema.clone();
    if let Some(map) = copy.as_mapping_mut() {
        for key in ["description", "title", "x-rust-derive", "x-rust-name"] {
            map.remove(key);
        }
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(snake_case("fileName"), "file_name");
        assert_eq!(snake_case("taskID"), "task_id");
        assert_eq!(snake_case("clientID"), "client_id");
        assert_eq!(snake_case("businessDirID"), "business_dir_id");
        assert_eq!(snake_case("x-traceID"), "x_trace_id");
        assert_eq!(snake_case("access_token"), "access_token");
        assert_eq!(pascal_case("accessToken"), "AccessToken");
        assert_eq!(pascal_case("parse_url"), "ParseUrl");
    }
}
