//! The wire module: one item per [`TypeDef`].

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{derive_line, header, Code};
use crate::codegen::model::{Derives, Field, Kind, Model, Named, OpenEnum, Struct, Ty, TypeDef};
use crate::codegen::names::snake_case;

/// The wire module's source.
pub(in crate::codegen) fn wire(model: &Model) -> String {
    let mut body = Code::default();
    for def in &model.types {
        body.line("");
        match &def.kind {
            Kind::Struct(s) => structure(&mut body, def, s),
            Kind::Enum(e) => open_enum(&mut body, def, e),
            Kind::Untagged { derives, branches } => untagged(&mut body, def, derives, branches),
            Kind::Newtype { derives, inner } => {
                body.doc(&def.doc);
                body.line(derive_line(derives));
                body.line("#[serde(transparent)]");
                body.line(format!("pub struct {}(pub {});", def.name, inner.rust));
            }
            Kind::Map => {
                body.doc(&def.doc);
                body.line(format!(
                    "pub type {} = serde_json::Map<String, serde_json::Value>;",
                    def.name
                ));
            }
        }
    }
    let mut code = header(model, model.provider.wire_doc);
    code.line("");
    for import in imports(model) {
        code.line(format!("use {import};"));
    }
    code.line("");
    code.text.push_str(&body.text);
    code.text
}

/// What the wire module uses: the types its fields name, `serde`'s derives, and
/// `open_enum!`.
fn imports(model: &Model) -> BTreeSet<String> {
    let mut imports = BTreeSet::new();
    let mut serde = false;
    for def in &model.types {
        let types: Vec<&Ty> = match &def.kind {
            Kind::Struct(s) => s.fields.iter().map(|f| &f.ty).collect(),
            Kind::Untagged { branches, .. } => branches.iter().map(|b| &b.value).collect(),
            Kind::Newtype { inner, .. } => vec![inner],
            Kind::Enum(_) => {
                imports.insert("crate::open_enum::open_enum".to_owned());
                continue;
            }
            Kind::Map => continue,
        };
        serde = true;
        imports.extend(types.into_iter().filter_map(|ty| ty.import.clone()));
    }
    if serde {
        imports.insert("serde::{Deserialize, Serialize}".to_owned());
    }
    imports
}

/// A struct, after the constants of its `x-rust-const` fields; read through a
/// private `Raw` struct when a field has `x-aliases`.
fn structure(code: &mut Code, def: &TypeDef, s: &Struct) {
    let rust = &def.name;
    for field in &s.fields {
        if let Some(constant) = &field.constant {
            code.prose(&format!(
                "The only value of `{}` in [`{rust}`] (the field [`{rust}::{}`]).",
                field.wire, field.name
            ));
            code.line(format!(
                "pub const {}: {} = {};",
                constant.name, constant.ty, constant.literal
            ));
            code.line("");
        }
    }
    code.doc(&def.doc);
    code.line(derive_line(&s.derives));
    let aliased = s.fields.iter().any(|f| !f.aliases.is_empty());
    if aliased {
        code.line(format!("#[serde(from = \"Raw{rust}\")]"));
    }
    let params = if s.generic { "<T>" } else { "" };
    code.line(format!("pub struct {rust}{params} {{"));
    for field in &s.fields {
        code.doc(&field.doc);
        code.serde(&serde_args(field, false));
        code.line(format!("pub {}: {},", field.name, declared(field)));
    }
    code.line("}");
    if aliased {
        raw_struct(code, rust, &s.fields);
    }
}

/// The private struct a type with `x-aliases` is read through: every spelling of a
/// field is read, the first present one (in `[name, aliases...]` order) wins.
fn raw_struct(code: &mut Code, rust: &str, fields: &[Field]) {
    let raw = format!("Raw{rust}");
    code.line("");
    code.prose(&format!(
        "[`{rust}`] as read from the wire, with every accepted spelling of its fields."
    ));
    code.line("#[derive(Deserialize)]");
    code.line(format!("struct {raw} {{"));
    for field in fields {
        if field.aliases.is_empty() {
            code.serde(&serde_args(field, true));
            code.line(format!("{}: {},", field.name, declared(field)));
            continue;
        }
        let spellings = std::iter::once((field.wire.clone(), field.name.clone())).chain(
            field
                .aliases
                .iter()
                .map(|alias| (alias.clone(), snake_case(alias))),
        );
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
        let mut expr = format!("raw.{}", field.name);
        for alias in &field.aliases {
            let _ = write!(expr, ".or(raw.{})", snake_case(alias));
        }
        if field.default && !field.aliases.is_empty() {
            expr.push_str(".unwrap_or_default()");
        }
        code.line(format!("{}: {expr},", field.name));
    }
    code.line("}");
    code.line("}");
    code.line("}");
}

/// The Rust type of a field as declared.
fn declared(field: &Field) -> String {
    if field.optional() {
        format!("Option<{}>", field.ty.rust)
    } else {
        field.ty.rust.clone()
    }
}

/// A field's `#[serde(...)]` arguments, for writing and reading or (`reading_only`)
/// for reading.
fn serde_args(field: &Field, reading_only: bool) -> Vec<String> {
    let optional = field.optional();
    let mut args = Vec::new();
    if field.wire != field.name {
        args.push(format!("rename = {:?}", field.wire));
    }
    // An `Option` defaults to `None` even where it is required-but-nullable, so that
    // reading is as lenient for a missing key as for `null` (also from a sequence).
    // On the type parameter, the plain `default` would make serde require
    // `T: Default`.
    if field.generic && optional {
        args.push("default = \"Option::default\"".to_owned());
    } else if field.default || optional {
        args.push("default".to_owned());
    }
    if optional && !field.required && !reading_only {
        args.push("skip_serializing_if = \"Option::is_none\"".to_owned());
    }
    if let Some(with) = field.ty.with {
        if optional {
            args.push(format!("with = \"{with}::option\""));
        } else {
            args.push(format!("with = \"{with}\""));
        }
    }
    args
}

/// An open enum: an `open_enum!` call, which writes the enum, its `Unknown` variant,
/// its wire-value methods and serde. rustfmt leaves a macro call's insides alone, so
/// they are indented here.
fn open_enum(code: &mut Code, def: &TypeDef, e: &OpenEnum) {
    code.open("open_enum! {");
    code.doc(&def.doc);
    let repr = if e.integer { "i64" } else { "String" };
    code.open(format!("pub enum {}: {repr} {{", def.name));
    for variant in &e.variants {
        code.doc(&variant.doc);
        code.line(format!("{} = {},", variant.name, variant.value));
    }
    code.close("}");
    code.close("}");
}

/// An untagged enum for a `oneOf`: one variant per branch, tried in order.
fn untagged(code: &mut Code, def: &TypeDef, derives: &Derives, branches: &[Named<Ty>]) {
    code.doc(&def.doc);
    code.line(derive_line(derives));
    code.line("#[serde(untagged)]");
    code.line(format!("pub enum {} {{", def.name));
    for branch in branches {
        code.doc(&branch.doc);
        code.line(format!("{}({}),", branch.name, branch.value.rust));
    }
    code.line("}");
}
