//! The typed model of one description: everything the Rust emitters need, read from
//! the YAML once, checked and resolved (names, types, derives, docs), so that emitting
//! cannot fail.
//!
//! - [`ty`]: the Rust type a schema maps to, and which traits it allows;
//! - [`items`]: one [`TypeDef`] per component schema, and the `x-rust-query` structs;
//! - [`routes`]: the endpoint table, authentication schemes and servers.

mod items;
mod routes;
mod ty;

use serde_norway::Value;

use crate::openapi::{str_of, Document, Provider};
use crate::Result;

/// One description, as the Rust emitters see it.
#[derive(Debug)]
pub(crate) struct Model {
    /// The provider it describes (file names, module docs).
    pub(crate) provider: Provider,
    /// The wire types: one per component schema without `x-rust-type`, in document
    /// order, then the query structs.
    pub(crate) types: Vec<TypeDef>,
    /// The operations (webhooks aside), in document order.
    pub(crate) endpoints: Vec<Endpoint>,
    /// The `securitySchemes`, in document order.
    pub(crate) schemes: Vec<Named>,
    /// The servers calls go to, in order of first use; empty when all go to one.
    pub(crate) hosts: Vec<Named>,
}

impl Model {
    /// Reads the model from a parsed description.
    pub(crate) fn build(doc: &Document) -> Result<Self> {
        let reader = Reader { doc };
        let routes = reader.routes()?;
        Ok(Self {
            provider: doc.provider,
            types: reader.types()?,
            endpoints: routes.endpoints,
            schemes: routes.schemes,
            hosts: routes.hosts,
        })
    }
}

/// A generated type.
#[derive(Debug)]
pub(crate) struct TypeDef {
    /// The Rust name.
    pub(crate) name: String,
    /// The doc comment: the schema's description (a query struct's is generated).
    pub(crate) doc: String,
    /// What it is.
    pub(crate) kind: Kind,
}

/// The kinds of generated types.
#[derive(Debug)]
pub(crate) enum Kind {
    /// A struct for an object with `properties`, or for a query.
    Struct(Struct),
    /// An open enum for an `enum` with `x-enum-varnames`.
    Enum(OpenEnum),
    /// An untagged enum for a `oneOf`, one variant per branch, tried in order.
    Untagged {
        /// The derivable traits.
        derives: Derives,
        /// The branches, in order.
        branches: Vec<Named<Ty>>,
    },
    /// A `#[serde(transparent)]` newtype for a named primitive.
    Newtype {
        /// The derivable traits.
        derives: Derives,
        /// The wrapped type.
        inner: Ty,
    },
    /// A type alias of a JSON map, for an object without `properties`.
    Map,
}

/// What a generated type derives besides `Debug, Clone, PartialEq` and serde.
#[derive(Debug)]
pub(crate) struct Derives {
    /// `Copy`.
    pub(crate) copy: bool,
    /// `Eq`.
    pub(crate) eq: bool,
    /// Others, in order (`Default`, `x-rust-derive`).
    pub(crate) extra: Vec<String>,
}

/// A struct.
#[derive(Debug)]
pub(crate) struct Struct {
    /// The derivable traits.
    pub(crate) derives: Derives,
    /// Generic over the type of one field (`x-envelope`).
    pub(crate) generic: bool,
    /// The fields, in document order.
    pub(crate) fields: Vec<Field>,
}

/// An open enum: the known values, and `Unknown` for the rest.
#[derive(Debug)]
pub(crate) struct OpenEnum {
    /// Integer values (`i64`) rather than strings.
    pub(crate) integer: bool,
    /// The known values, in order.
    pub(crate) variants: Vec<Named<String>>,
}

/// The Rust type of a value, with what derives it allows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ty {
    /// The type as written in a field, e.g. `Vec<ParseFile>`.
    pub(crate) rust: String,
    /// Whether it is `Copy`.
    pub(crate) copy: bool,
    /// Whether it is `Eq` (no floats inside).
    pub(crate) eq: bool,
    /// The serde `with` module it needs (date-times).
    pub(crate) with: Option<&'static str>,
    /// The path the file must `use` for it, e.g. `crate::Secret`.
    pub(crate) import: Option<String>,
}

impl Ty {
    /// A type that needs no import and no `with`.
    fn new(rust: impl Into<String>, copy: bool, eq: bool) -> Self {
        Self {
            rust: rust.into(),
            copy,
            eq,
            with: None,
            import: None,
        }
    }
}

/// One field of a generated struct.
#[derive(Debug, PartialEq)]
pub(crate) struct Field {
    /// The name on the wire.
    pub(crate) wire: String,
    /// The Rust field name.
    pub(crate) name: String,
    /// The doc comment.
    pub(crate) doc: String,
    /// The type (without the `Option` of an optional field).
    pub(crate) ty: Ty,
    /// Present in every value (or `null` when `nullable`).
    pub(crate) required: bool,
    /// May be `null` on the wire.
    pub(crate) nullable: bool,
    /// `x-rust-default`: a plain type that defaults when absent.
    pub(crate) default: bool,
    /// Other wire names accepted when reading (`x-aliases`), in order of precedence.
    pub(crate) aliases: Vec<String>,
    /// Holds the struct's type parameter (`x-envelope`).
    pub(crate) generic: bool,
    /// `x-rust-const`: a constant generated for the field's `const` value.
    pub(crate) constant: Option<Constant>,
}

impl Field {
    /// Whether the Rust type is wrapped in `Option`.
    pub(crate) fn optional(&self) -> bool {
        (!self.required || self.nullable) && !self.default
    }
}

/// A constant for the only value of a field (`x-rust-const`).
#[derive(Debug, PartialEq)]
pub(crate) struct Constant {
    /// Its name, e.g. `OSS_BUSINESS_TYPE`.
    pub(crate) name: String,
    /// Its type (`&str` for a string).
    pub(crate) ty: String,
    /// The value as a Rust literal.
    pub(crate) literal: String,
}

/// One operation of the endpoint table.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// The `EndpointId` variant.
    pub(crate) variant: String,
    /// The `operationId`.
    pub(crate) id: String,
    /// The method, uppercase.
    pub(crate) method: String,
    /// The path (a template for calls with path parameters).
    pub(crate) path: String,
    /// The `summary`.
    pub(crate) summary: String,
    /// The `AuthScheme` variant of its security requirement, if it has one.
    pub(crate) auth: Option<String>,
    /// `x-creates`.
    pub(crate) creates: bool,
    /// `x-rate-limit`'s `per-second`.
    pub(crate) rate: f64,
    /// `x-rate-limit`'s `description` (may be empty).
    pub(crate) rate_note: String,
    /// The `Host` variant of its server (the first of its own `servers`, else the
    /// document's), if it has one.
    pub(crate) host: Option<String>,
}

/// A documented variant of a generated enum (or of `AuthScheme`, `Host`), with what
/// goes with it.
#[derive(Debug)]
pub(crate) struct Named<T = ()> {
    /// The variant name.
    pub(crate) name: String,
    /// Its doc comment.
    pub(crate) doc: String,
    /// An open enum's wire value as a Rust literal (`3`, `"OK"`), an untagged enum's
    /// payload, nothing for a security scheme or a server.
    pub(crate) value: T,
}

/// Reads the model out of a description; every error names the description's file.
#[derive(Debug, Clone, Copy)]
struct Reader<'a> {
    doc: &'a Document,
}

impl Reader<'_> {
    /// An error about the description.
    fn error(self, message: impl std::fmt::Display) -> String {
        format!("{}: {message}", self.doc.provider.yaml)
    }

    /// The description of `value`, which every generated item needs.
    fn description(self, value: &Value, what: &str) -> Result<String> {
        str_of(value, "description")
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())
            .ok_or_else(|| self.error(format_args!("{what} has no description")))
    }
}
