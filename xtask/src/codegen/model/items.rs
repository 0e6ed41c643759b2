//! The generated types: one per component schema, then one per `x-rust-query` name.

use std::collections::BTreeSet;

use serde_norway::{Mapping, Value};

use super::{Constant, Derives, Field, Kind, Named, OpenEnum, Reader, Struct, Ty, TypeDef};
use crate::codegen::names::{snake_case, KEYWORDS};
use crate::openapi::{str_of, strings_of};
use crate::Result;

impl Reader<'_> {
    /// Every generated type, in file order.
    pub(super) fn types(self) -> Result<Vec<TypeDef>> {
        let mut types = Vec::new();
        for (name, schema) in self.doc.schemas() {
            if schema.get("x-rust-type").is_some() {
                continue;
            }
            types.push(TypeDef {
                name: self.type_name(name)?,
                doc: self.description(schema, &format!("schema {name}"))?,
                kind: self.kind(name, schema)?,
            });
        }
        types.extend(self.queries()?);
        Ok(types)
    }

    /// What component schema `name` becomes.
    fn kind(self, name: &str, schema: &Value) -> Result<Kind> {
        if schema.get("x-enum-varnames").is_some() {
            return self.open_enum(name, schema).map(Kind::Enum);
        }
        if schema.get("oneOf").is_some() {
            return self.untagged(name, schema);
        }
        match str_of(schema, "type") {
            Some("object") if schema.get("properties").is_some() => {
                self.structure(name, schema).map(Kind::Struct)
            }
            Some("object") => Ok(Kind::Map),
            Some("integer" | "number" | "string" | "boolean") => {
                let inner = self.bare_ty(schema, name)?;
                Ok(Kind::Newtype {
                    derives: Derives {
                        copy: inner.copy,
                        eq: inner.eq,
                        extra: owned(strings_of(schema, "x-rust-derive")),
                    },
                    inner,
                })
            }
            other => Err(self.error(format_args!(
                "schema {name}: cannot generate a type for type {other:?}"
            ))),
        }
    }

    /// The struct for an object schema.
    fn structure(self, name: &str, schema: &Value) -> Result<Struct> {
        let generic = str_of(schema, "x-envelope");
        let fields = self.fields(name, schema, generic)?;
        let (copy, eq) = match generic {
            Some(_) => (false, false),
            None => self.traits(name, 0)?,
        };
        let mut extra = owned(strings_of(schema, "x-rust-derive"));
        if generic.is_none() && fields.iter().all(|f| f.optional() || f.default) {
            extra.insert(0, "Default".to_owned());
        }
        Ok(Struct {
            derives: Derives { copy, eq, extra },
            generic: generic.is_some(),
            fields,
        })
    }

    /// The fields of an object schema, in document order; `generic` names the field
    /// that holds the type parameter.
    fn fields(self, owner: &str, schema: &Value, generic: Option<&str>) -> Result<Vec<Field>> {
        let props = schema
            .get("properties")
            .and_then(Value::as_mapping)
            .ok_or_else(|| self.error(format_args!("{owner} has no properties")))?;
        let required = strings_of(schema, "required");
        let aliased: BTreeSet<&str> = props
            .values()
            .flat_map(|p| strings_of(p, "x-aliases"))
            .collect();
        let mut fields = Vec::new();
        for (wire, prop) in props {
            let wire = wire.as_str().ok_or_else(|| {
                self.error(format_args!("{owner}: a property name is not a string"))
            })?;
            if aliased.contains(wire) {
                continue;
            }
            let context = format!("{owner}.{wire}");
            let name = str_of(prop, "x-rust-name").map_or_else(|| snake_case(wire), str::to_owned);
            if KEYWORDS.contains(&name.as_str()) {
                return Err(self.error(format_args!(
                    "{context}: `{name}` is a Rust keyword; give the property an x-rust-name"
                )));
            }
            let is_generic = generic == Some(wire);
            let (ty, nullable) = if is_generic {
                (Ty::new("T", false, false), true)
            } else {
                self.ty(prop, &context)?
            };
            let aliases = owned(strings_of(prop, "x-aliases"));
            let required = required.contains(&wire);
            let default = prop.get("x-rust-default").and_then(Value::as_bool) == Some(true);
            if !aliases.is_empty() && required && !default {
                return Err(self.error(format_args!(
                    "{context}: x-aliases needs an optional or x-rust-default property"
                )));
            }
            fields.push(Field {
                doc: self.description(prop, &format!("property {context}"))?,
                constant: self.constant(prop, &ty, &context)?,
                wire: wire.to_owned(),
                name,
                ty,
                required,
                nullable,
                default,
                aliases,
                generic: is_generic,
            });
        }
        Ok(fields)
    }

    /// The constant `x-rust-const` asks for, of a property of type `ty`.
    fn constant(self, prop: &Value, ty: &Ty, context: &str) -> Result<Option<Constant>> {
        let Some(name) = str_of(prop, "x-rust-const") else {
            return Ok(None);
        };
        let literal = match prop.get("const") {
            Some(Value::String(s)) => format!("{s:?}"),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(_) => return Err(self.error(format_args!("{context}: unsupported const"))),
            None => return Err(self.error(format_args!("{context}: x-rust-const without const"))),
        };
        let ty = if ty.rust == "String" {
            "&str"
        } else {
            &ty.rust
        };
        Ok(Some(Constant {
            name: name.to_owned(),
            ty: ty.to_owned(),
            literal,
        }))
    }

    /// The open enum for an `enum` schema with `x-enum-varnames`.
    fn open_enum(self, name: &str, schema: &Value) -> Result<OpenEnum> {
        let values = schema
            .get("enum")
            .and_then(Value::as_sequence)
            .ok_or_else(|| self.error(format_args!("{name}: x-enum-varnames without enum")))?;
        let names = strings_of(schema, "x-enum-varnames");
        let docs = strings_of(schema, "x-enum-descriptions");
        if names.len() != values.len() || docs.len() != values.len() {
            return Err(self.error(format_args!(
                "{name}: enum, x-enum-varnames and x-enum-descriptions differ in length"
            )));
        }
        let integer = str_of(schema, "type") == Some("integer");
        let variants = values
            .iter()
            .zip(names.into_iter().zip(docs))
            .map(|(value, (variant, doc))| {
                let literal = match value {
                    Value::Number(n) if integer => n.to_string(),
                    Value::String(s) if !integer => format!("{s:?}"),
                    _ => {
                        return Err(self.error(format_args!(
                            "{name}: enum value {value:?} of the wrong type"
                        )))
                    }
                };
                Ok(Named {
                    name: variant.to_owned(),
                    doc: doc.to_owned(),
                    value: literal,
                })
            })
            .collect::<Result<_>>()?;
        Ok(OpenEnum { integer, variants })
    }

    /// The untagged enum for a `oneOf` schema: one variant per branch, named by its
    /// `title`.
    fn untagged(self, name: &str, schema: &Value) -> Result<Kind> {
        let list = schema
            .get("oneOf")
            .and_then(Value::as_sequence)
            .ok_or_else(|| self.error(format_args!("{name}: oneOf is not a list")))?;
        let mut derives = Derives {
            copy: true,
            eq: true,
            extra: Vec::new(),
        };
        let mut branches = Vec::new();
        for branch in list {
            let title = str_of(branch, "title")
                .ok_or_else(|| self.error(format_args!("{name}: a oneOf branch has no title")))?;
            let ty = self.bare_ty(branch, name)?;
            derives.copy &= ty.copy;
            derives.eq &= ty.eq;
            branches.push(Named {
                name: title.to_owned(),
                doc: self.description(branch, &format!("{name} branch {title}"))?,
                value: ty,
            });
        }
        Ok(Kind::Untagged { derives, branches })
    }

    /// The structs named by operations' `x-rust-query`: one field per query parameter.
    /// Operations naming the same struct must have the same parameters.
    fn queries(self) -> Result<Vec<TypeDef>> {
        let mut seen: Vec<(String, Vec<String>, Vec<Field>)> = Vec::new();
        for op in self.doc.operations() {
            let Some(name) = str_of(op.op, "x-rust-query") else {
                continue;
            };
            let route = format!("`{} {}`", op.method.to_uppercase(), op.path);
            let mut props = Mapping::new();
            let mut required = Vec::new();
            for param in self.doc.parameters(&op)? {
                if str_of(param, "in") != Some("query") {
                    continue;
                }
                let wire = str_of(param, "name").ok_or("a parameter has no name")?;
                if param.get("required").and_then(Value::as_bool) == Some(true) {
                    required.push(Value::from(wire));
                }
                props.insert(Value::from(wire), self.param_schema(param)?);
            }
            let mut schema = Mapping::new();
            schema.insert(Value::from("required"), Value::Sequence(required));
            schema.insert(Value::from("properties"), Value::Mapping(props));
            let fields = self.fields(name, &Value::Mapping(schema), None)?;
            match seen.iter_mut().find(|(n, _, _)| n == name) {
                Some((_, routes, first)) if *first == fields => routes.push(route),
                Some(_) => {
                    return Err(self.error(format_args!(
                        "x-rust-query {name} names different parameter lists"
                    )))
                }
                None => seen.push((name.to_owned(), vec![route], fields)),
            }
        }
        Ok(seen
            .into_iter()
            .map(|(name, routes, fields)| {
                let wire: Vec<String> = fields.iter().map(|f| format!("`{}`", f.wire)).collect();
                let derives = Derives {
                    copy: fields.iter().all(|f| f.ty.copy),
                    eq: fields.iter().all(|f| f.ty.eq),
                    extra: Vec::new(),
                };
                TypeDef {
                    doc: format!("Query of {}: {}.", routes.join(" and "), wire.join(", ")),
                    name,
                    kind: Kind::Struct(Struct {
                        derives,
                        generic: false,
                        fields,
                    }),
                }
            })
            .collect())
    }

    /// A query parameter's schema as a property: `$ref`s resolved (but a `$ref` to a
    /// component kept, so that the field's type is that component), with the
    /// parameter's description.
    fn param_schema(self, param: &Value) -> Result<Value> {
        let declared = param.get("schema").ok_or("no schema")?;
        let mut schema = self.doc.resolve(declared)?.clone();
        if let Some(map) = schema.as_mapping_mut() {
            if let Some(reference) = declared.get("$ref") {
                map.clear();
                map.insert(Value::from("$ref"), reference.clone());
            }
            map.insert(
                Value::from("description"),
                param.get("description").cloned().unwrap_or(Value::Null),
            );
        }
        Ok(schema)
    }
}

/// Owned copies of strings.
fn owned(strings: Vec<&str>) -> Vec<String> {
    strings.into_iter().map(str::to_owned).collect()
}
