//! `cargo xtask codegen`: Rust wire types and endpoint tables from the descriptions,
//! and the descriptions' JSON form.
//!
//! Each description is parsed once into a typed [`model::Model`] (every name, type,
//! derive and doc resolved and checked there); the emitters in [`rust`] only write
//! it out, as plain text formatted with rustfmt; [`json`] converts the document
//! itself. What each schema becomes (the `x-` extensions are documented in
//! `fixtures/openapi/README.md`):
//!
//! | schema | Rust |
//! |---|---|
//! | object with `properties` | a struct, serde names = wire names, `Option` for optional fields |
//! | object with `x-envelope: <field>` | a struct generic over that field's type |
//! | `enum` with `x-enum-varnames` | an `open_enum!` call: an enum with an `Unknown(..)` variant, serde from the macro |
//! | `oneOf` of titled branches | an untagged enum, one variant per branch |
//! | integer, number or string | a `#[serde(transparent)]` newtype |
//! | object without `properties` | a type alias of a JSON map |
//! | anything with `x-rust-type` | nothing: that type is used |
//!
//! Every type and field needs a `description`: it becomes the doc comment.

mod json;
mod model;
mod names;
mod rust;

use std::path::Path;

#[cfg(feature = "fixtures")]
pub(crate) use names::snake_case;

use crate::openapi::{Document, PROVIDERS};
use crate::output::{rustfmt, Outputs};
use crate::{Mode, Result};

/// Runs the task for every provider.
pub(crate) fn run(root: &Path, mode: Mode) -> Result<()> {
    let mut outputs = Outputs::default();
    for provider in PROVIDERS {
        let doc = Document::load(root, provider)?;
        outputs.add(provider.json, json::render(&doc)?);
        let model = model::Model::build(&doc)?;
        outputs.add(provider.wire, rustfmt(&rust::wire(&model))?);
        outputs.add(provider.endpoints, rustfmt(&rust::endpoints(&model))?);
    }
    outputs.finish(root, mode, "cargo xtask codegen")
}
