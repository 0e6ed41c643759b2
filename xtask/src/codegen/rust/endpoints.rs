//! The endpoint module: `EndpointId` and its table, `AuthScheme`, and `Host` where
//! calls go to several servers.

use std::fmt::Write as _;

use super::{header, variants, Code};
use crate::codegen::model::{Endpoint, Model, Named};

/// The endpoint module's source.
pub(in crate::codegen) fn endpoints(model: &Model) -> String {
    let rows = &model.endpoints;
    let templated = rows.iter().any(|r| r.path.contains('{'));
    let mut code = header(model, model.provider.endpoints_doc);
    code.line("");
    code.line("use http::Method;");
    code.line("");
    code.doc("The calls, for per-endpoint rate limits and logs.");
    code.line("#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]");
    code.line("pub enum EndpointId {");
    for r in rows {
        code.prose(&format!("`{} {}`: {}", r.method, r.path, r.summary));
        code.line(format!("{},", r.variant));
    }
    code.line("}");
    unit_enum(
        &mut code,
        "How a call proves who it is (the description's `securitySchemes`).",
        "AuthScheme",
        &model.schemes,
    );
    if !model.hosts.is_empty() {
        unit_enum(
            &mut code,
            "Which server a call goes to (the description's `servers`).",
            "Host",
            &model.hosts,
        );
    }

    code.line("");
    code.line("impl EndpointId {");
    code.doc("Every endpoint, in table order.");
    code.line(format!("pub const ALL: [Self; {}] = [", rows.len()));
    for r in rows {
        code.line(format!("Self::{},", r.variant));
    }
    code.line("];");
    code.line("");
    code.doc("The `operationId` in the description, e.g. `offlineDownload`.");
    method(
        &mut code,
        "operation_id(self) -> &'static str",
        rows,
        false,
        |r| format!("{:?}", r.id),
    );
    if templated {
        code.prose("The path, e.g. `/v2/offline/add`; a template such as `/mkblk/{blockSize}/{blockIndex}` for calls with path parameters.");
    } else {
        let example = rows.iter().find(|r| r.method == "POST");
        code.prose(&format!(
            "The path, e.g. `{}`.",
            example.map_or("/", |r| r.path.as_str())
        ));
    }
    method(&mut code, "path(self) -> &'static str", rows, false, |r| {
        format!("{:?}", r.path)
    });
    code.doc("The method.");
    method(&mut code, "method(self) -> Method", rows, true, |r| {
        format!("Method::{}", r.method)
    });
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
    method(
        &mut code,
        "auth(self) -> Option<AuthScheme>",
        rows,
        true,
        |r| {
            r.auth
                .as_ref()
                .map_or_else(|| "None".to_owned(), |a| format!("Some(AuthScheme::{a})"))
        },
    );
    if !model.hosts.is_empty() {
        code.doc("The server the call goes to.");
        method(&mut code, "host(self) -> Host", rows, true, |r| {
            format!("Host::{}", r.host.as_deref().unwrap_or_default())
        });
    }
    code.prose("Whether a successful call creates something (a task), so that sending it twice could create two (`x-creates`).");
    code.line("pub fn creates(self) -> bool {");
    let creators = rows
        .iter()
        .filter(|r| r.creates)
        .map(|r| r.variant.as_str());
    if rows.iter().any(|r| r.creates) {
        code.line(format!("matches!(self, {})", variants(creators)));
    } else {
        code.line("let _ = self;");
        code.line("false");
    }
    code.line("}");
    code.line("");
    code.prose(&rate_doc(rows));
    method(
        &mut code,
        "default_rate_per_second(self) -> f64",
        rows,
        true,
        |r| format!("{:?}", r.rate),
    );
    code.line("}");
    if templated {
        route_matches(&mut code);
    }
    code.text
}

/// A fieldless enum, one variant per entry.
fn unit_enum(code: &mut Code, doc: &str, name: &str, entries: &[Named]) {
    code.line("");
    code.doc(doc);
    code.line("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]");
    code.line(format!("pub enum {name} {{"));
    for entry in entries {
        code.doc(&entry.doc);
        code.line(format!("{},", entry.name));
    }
    code.line("}");
}

/// `pub fn <signature> { match self { ... } }` (after its docs), with an arm per row
/// giving `value(row)`, or with `grouped` an arm per distinct value, first seen first,
/// matching every row that has it.
fn method(
    code: &mut Code,
    signature: &str,
    rows: &[Endpoint],
    grouped: bool,
    value: impl Fn(&Endpoint) -> String,
) {
    let mut arms: Vec<(String, Vec<&str>)> = Vec::new();
    for r in rows {
        let v = value(r);
        match arms.iter_mut().find(|(seen, _)| grouped && *seen == v) {
            Some((_, names)) => names.push(&r.variant),
            None => arms.push((v, vec![&r.variant])),
        }
    }
    code.line(format!("pub fn {signature} {{"));
    code.match_arms(
        "self",
        arms.into_iter()
            .map(|(v, names)| format!("{} => {v},", variants(names))),
    );
    code.line("}");
    code.line("");
}

/// The doc of `default_rate_per_second`: each endpoint's limit and where it comes from.
fn rate_doc(rows: &[Endpoint]) -> String {
    let mut doc = String::from(
        "The default rate limit, requests per second (`x-rate-limit`); configurable \
         wherever it is used.\n\n",
    );
    for r in rows {
        if r.rate_note.is_empty() {
            let _ = writeln!(doc, "- `{}`: {}/s.", r.id, r.rate);
        } else {
            let _ = writeln!(doc, "- `{}`: {}/s. {}", r.id, r.rate, r.rate_note);
        }
    }
    doc
}

/// The private `route_matches` that `from_route` matches path templates with.
fn route_matches(code: &mut Code) {
    code.line("");
    code.prose("Whether `path` fits `template`, where a `{name}` segment matches any one non-empty segment.");
    code.line("fn route_matches(template: &str, path: &str) -> bool {");
    code.line("let mut want = template.split('/');");
    code.line("let mut have = path.split('/');");
    code.line("loop {");
    code.match_arms(
        "(want.next(), have.next())",
        [
            "(None, None) => return true,",
            "(Some(w), Some(h)) if w.starts_with('{') && w.ends_with('}') && !h.is_empty() => {}",
            "(Some(w), Some(h)) if w == h => {}",
            "_ => return false,",
        ]
        .map(str::to_owned),
    );
    code.line("}");
    code.line("}");
}
