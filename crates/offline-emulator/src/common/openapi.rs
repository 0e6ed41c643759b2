//! Checking requests against a provider description (each provider embeds its own:
//! `/openapi.json` for 123pan, `/6pan/openapi.json` for 6pan).
//!
//! The descriptions are the JSON forms that `cargo xtask codegen` writes from
//! `fixtures/openapi/*.yaml`, embedded at build time. A request is read into the
//! generated wire types (which gives its shape), checked by the hand-written validation
//! of `offline-proto`, and finally checked here against the operation's schemas, so
//! that a constraint the description states (a minimum, a length, an enum) is enforced
//! even where no Rust code states it. Each refusal becomes the provider's error
//! envelope with code 400, never a 500.
//!
//! The checker knows the JSON Schema keywords the descriptions use (a test walks both
//! descriptions and fails on any other): `$ref`, `type`, `enum`, `const`, `properties`,
//! `required`, `additionalProperties`, `items`, `minItems`, `maxItems`, `minLength`,
//! `maxLength`, `pattern`, `format` (`uri`, `uuid`, `date-time` checked loosely),
//! `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `allOf`, `anyOf`,
//! `oneOf`, `not`, and annotations (`description`, `title`, `examples`, `default`,
//! `contentMediaType`, `x-*`).

use http::{HeaderMap, Method};
use serde_json::{Map, Value};

use super::is_uuid;

/// A parsed description.
#[derive(Debug)]
pub(crate) struct Description {
    root: Value,
}

impl Description {
    /// Parses a description. The embedded ones are generated and checked in CI; a
    /// broken one would be a build defect, so it yields an empty description (which
    /// checks nothing) rather than a panic.
    pub(crate) fn new(json: &str) -> Self {
        Self {
            root: serde_json::from_str(json).unwrap_or(Value::Null),
        }
    }

    /// The request body schema of `method` on `path` for `media_type` (compared by
    /// essence, case-insensitively), if the operation has one.
    fn body_schema(&self, method: &Method, path: &str, media_type: &str) -> Option<&Value> {
        let wanted = essence(media_type);
        self.operation(method, path)
            .and_then(|op| op.get("requestBody"))
            .map(|b| self.resolve(b))
            .and_then(|b| b.get("content")?.as_object())
            .and_then(|content| {
                content
                    .iter()
                    .find(|(media, _)| essence(media) == wanted)
                    .and_then(|(_, m)| m.get("schema"))
            })
    }

    /// The operation object of `method` on `path`: the path item of that literal path,
    /// else of the first template (`/mkblk/{blockSize}/{blockIndex}`) it matches.
    fn operation(&self, method: &Method, path: &str) -> Option<&Value> {
        self.path_item(path)
            .and_then(|(_, item)| item.get(method.as_str().to_ascii_lowercase()))
    }

    /// The path item for a request path, with its template (`path` itself when the
    /// description lists it literally).
    fn path_item<'a>(&'a self, path: &str) -> Option<(&'a str, &'a Value)> {
        let paths = self.root.get("paths")?.as_object()?;
        if let Some((template, item)) = paths.get_key_value(path) {
            return Some((template.as_str(), item));
        }
        paths
            .iter()
            .find(|(template, _)| {
                template.contains('{') && template_values(template, path).is_some()
            })
            .map(|(template, item)| (template.as_str(), item))
    }

    /// The operation's parameters in `place` (`query`, `header`), `$ref`s followed.
    fn parameters<'a>(&'a self, op: &'a Value, place: &str) -> Vec<&'a Value> {
        op.get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| self.resolve(p))
            .filter(|p| p.get("in").and_then(Value::as_str) == Some(place))
            .collect()
    }

    /// The named parameters in `place` of `method` on `path`: each one's name, whether
    /// it is required, and its schema.
    fn named_parameters<'a>(
        &'a self,
        method: &Method,
        path: &str,
        place: &str,
    ) -> Vec<(&'a str, bool, Option<&'a Value>)> {
        let Some(op) = self.operation(method, path) else {
            return Vec::new();
        };
        self.parameters(op, place)
            .into_iter()
            .filter_map(|param| {
                let name = param.get("name").and_then(Value::as_str)?;
                let required = param.get("required").and_then(Value::as_bool) == Some(true);
                Some((name, required, param.get("schema")))
            })
            .collect()
    }

    /// Follows `value`'s `$ref`, if any (a few hops at most).
    fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        for _ in 0..8 {
            let Some(target) = value
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|pointer| self.root.pointer(pointer))
            else {
                break;
            };
            value = target;
        }
        value
    }

    /// The names the operation's JSON body and query are described with: the body
    /// schema's top-level properties (through `$ref` and `allOf`) and the query
    /// parameters. For reading requests whose keys arrive in another case.
    pub(crate) fn field_names(&self, method: &Method, path: &str) -> Vec<String> {
        fn collect<'a>(d: &'a Description, schema: &'a Value, out: &mut Vec<String>, depth: u8) {
            let schema = d.resolve(schema);
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                out.extend(props.keys().cloned());
            }
            if depth < 8 {
                for part in schema
                    .get("allOf")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    collect(d, part, out, depth + 1);
                }
            }
        }
        let mut names = Vec::new();
        if let Some(schema) = self.body_schema(method, path, "application/json") {
            collect(self, schema, &mut names, 0);
        }
        names.extend(
            self.named_parameters(method, path, "query")
                .into_iter()
                .map(|(name, _, _)| name.to_owned()),
        );
        names
    }

    /// Checks a JSON request body against the operation's `requestBody` schema.
    ///
    /// # Errors
    ///
    /// The message for the 400 answer: `invalid request body at `dirID`: ...`.
    pub(crate) fn check_body(
        &self,
        method: &Method,
        path: &str,
        body: &Value,
    ) -> Result<(), String> {
        self.check_body_as(method, path, "application/json", body)
    }

    /// Checks a request body, read as JSON (a form as an object of its fields, a text
    /// body as a string), against the operation's schema for `media_type`. The media
    /// type is compared without its parameters (`text/plain;charset=UTF-8` is
    /// `text/plain`), case-insensitively. An operation without a schema for it checks
    /// nothing.
    ///
    /// # Errors
    ///
    /// The message for the 400 answer: `invalid request body at `dirID`: ...`.
    pub(crate) fn check_body_as(
        &self,
        method: &Method,
        path: &str,
        media_type: &str,
        body: &Value,
    ) -> Result<(), String> {
        let Some(schema) = self.body_schema(method, path, media_type) else {
            return Ok(());
        };
        self.check(schema, body, "")
            .map_err(|(at, why)| located("invalid request body", &at, &why))
    }

    /// Checks a form (`multipart/form-data` or `application/x-www-form-urlencoded`:
    /// `name=value` pairs, a file part given as its name with an empty value) against
    /// the operation's schema for `media_type`, as an object of the fields. A value is
    /// checked as a number or a boolean where the field's schema wants one and it reads
    /// as one; a repeated field counts once (its first value).
    ///
    /// # Errors
    ///
    /// The message for the 400 answer: `invalid request body at `deadline`: ...`.
    pub(crate) fn check_form(
        &self,
        method: &Method,
        path: &str,
        media_type: &str,
        fields: &[(String, String)],
    ) -> Result<(), String> {
        let Some(schema) = self.body_schema(method, path, media_type) else {
            return Ok(());
        };
        let rules = self.resolve(schema);
        let mut object = Map::new();
        for (name, raw) in fields {
            if object.contains_key(name) {
                continue;
            }
            let field_schema = rules
                .get("properties")
                .and_then(|p| p.get(name))
                .or_else(|| rules.get("additionalProperties").filter(|a| a.is_object()));
            let value = match field_schema {
                Some(field_schema) => self.typed_for(field_schema, raw),
                None => Value::String(raw.clone()),
            };
            object.insert(name.clone(), value);
        }
        self.check(schema, &Value::Object(object), "")
            .map_err(|(at, why)| located("invalid request body", &at, &why))
    }

    /// A text value (query, path, form field) as JSON for `schema`: a string where the
    /// schema allows one, else a number or boolean when it reads as one.
    fn typed_for(&self, schema: &Value, raw: &str) -> Value {
        let wants_string = match self.resolve(schema).get("type") {
            Some(Value::String(kind)) => kind == "string",
            Some(Value::Array(kinds)) => kinds.iter().any(|k| k == "string"),
            _ => false,
        };
        if wants_string {
            Value::String(raw.to_owned())
        } else {
            typed(raw)
        }
    }

    /// Checks the path parameters (`blockSize` of `/mkblk/{blockSize}/{blockIndex}`)
    /// against their schemas (a value that reads as a number is checked as one).
    ///
    /// # Errors
    ///
    /// The message for the 400 answer.
    pub(crate) fn check_path(&self, method: &Method, path: &str) -> Result<(), String> {
        let Some((template, _)) = self.path_item(path) else {
            return Ok(());
        };
        let values = template_values(template, path).unwrap_or_default();
        for (name, _, schema) in self.named_parameters(method, path, "path") {
            let Some((_, raw)) = values.iter().find(|(k, _)| k == name) else {
                continue;
            };
            let Some(schema) = schema else {
                continue;
            };
            self.check(schema, &self.typed_for(schema, raw), name)
                .map_err(|(at, why)| located("invalid path", &at, &why))?;
        }
        Ok(())
    }

    /// Checks the query parameters (`name=value` pairs, decoded) against the
    /// operation's query parameters: required ones present, each value of its schema
    /// (a value that reads as a number or a boolean is checked as one).
    ///
    /// # Errors
    ///
    /// The message for the 400 answer.
    pub(crate) fn check_query(
        &self,
        method: &Method,
        path: &str,
        pairs: &[(String, String)],
    ) -> Result<(), String> {
        for (name, required, schema) in self.named_parameters(method, path, "query") {
            let Some((_, raw)) = pairs.iter().find(|(k, _)| k == name) else {
                if required {
                    return Err(format!("invalid query: {name} is required"));
                }
                continue;
            };
            let Some(schema) = schema else {
                continue;
            };
            let value = self.typed_for(schema, raw);
            self.check(schema, &value, name)
                .map_err(|(at, why)| located("invalid query", &at, &why))?;
        }
        Ok(())
    }

    /// Checks the header parameters (`Platform`, ...) of the operation.
    ///
    /// # Errors
    ///
    /// The message for the 400 answer.
    pub(crate) fn check_headers(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<(), String> {
        for (name, required, schema) in self.named_parameters(method, path, "header") {
            let Some(value) = headers.get(name) else {
                if required {
                    return Err(format!("missing header {name}"));
                }
                continue;
            };
            let value = Value::String(String::from_utf8_lossy(value.as_bytes()).trim().to_owned());
            if let Some(schema) = schema {
                self.check(schema, &value, name)
                    .map_err(|(_, why)| format!("invalid header {name}: {why}"))?;
            }
        }
        Ok(())
    }

    /// The description as served: the same document with the top-level `servers`
    /// replaced by one server at `api` and every path's or operation's own `servers`
    /// (6pan's storage service, `{uploadUrl}`) by one at `storage`, so that a tool
    /// reading it calls the emulator. Each server keeps its `description` and `x-`
    /// extensions; its `variables` go.
    pub(crate) fn with_servers(&self, api: &str, storage: &str) -> Value {
        fn rewrite(servers: &mut Value, url: &str) {
            let Some(list) = servers.as_array_mut() else {
                return;
            };
            let mut server = list
                .first()
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            server.remove("variables");
            server.insert("url".to_owned(), Value::from(url));
            *list = vec![Value::Object(server)];
        }
        let mut root = self.root.clone();
        if let Some(servers) = root.get_mut("servers") {
            rewrite(servers, api);
        }
        if let Some(paths) = root.get_mut("paths").and_then(Value::as_object_mut) {
            for item in paths.values_mut().filter_map(Value::as_object_mut) {
                for (key, value) in item.iter_mut() {
                    if key == "servers" {
                        rewrite(value, storage);
                    } else if let Some(servers) = value.get_mut("servers") {
                        rewrite(servers, storage);
                    }
                }
            }
        }
        root
    }

    /// Checks `value` (found at `at`, a dotted path) against `schema`: `Err((at, why))`
    /// at the first violation.
    fn check(&self, schema: &Value, value: &Value, at: &str) -> Result<(), (String, String)> {
        let fail = |why: String| Err((at.to_owned(), why));
        let schema = self.resolve(schema);
        let Some(rules) = schema.as_object() else {
            return Ok(()); // `true` or `{}`-like: anything goes
        };
        if let Some(kinds) = rules.get("type") {
            let kinds: Vec<&str> = match kinds {
                Value::String(k) => vec![k.as_str()],
                Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !kinds.iter().any(|k| is_type(value, k)) {
                return fail(format!(
                    "expected {}, got {}",
                    kinds.join(" or "),
                    describe(value)
                ));
            }
        }
        if let Some(allowed) = rules.get("enum").and_then(Value::as_array) {
            if !allowed.iter().any(|a| same(a, value)) {
                return fail(format!("must be one of {}", Value::Array(allowed.clone())));
            }
        }
        if let Some(expected) = rules.get("const") {
            if !same(expected, value) {
                return fail(format!("must be {expected}"));
            }
        }
        match value {
            Value::String(s) => self.check_string(rules, s).or_else(fail)?,
            Value::Number(_) => check_number(rules, value).or_else(fail)?,
            Value::Array(items) => self.check_array(rules, items, at)?,
            Value::Object(map) => self.check_object(rules, map, at)?,
            Value::Null | Value::Bool(_) => {}
        }
        if let Some(all) = rules.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.check(sub, value, at)?;
            }
        }
        if let Some(any) = rules.get("anyOf").and_then(Value::as_array) {
            let mut first = None;
            for sub in any {
                match self.check(sub, value, at) {
                    Ok(()) => {
                        first = None;
                        break;
                    }
                    Err(e) => {
                        first.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first {
                return Err(e);
            }
        }
        if let Some(one) = rules.get("oneOf").and_then(Value::as_array) {
            let passing = one
                .iter()
                .filter(|s| self.check(s, value, at).is_ok())
                .count();
            if passing != 1 {
                return fail(format!(
                    "must match exactly one of {} forms, matches {passing}",
                    one.len()
                ));
            }
        }
        if let Some(not) = rules.get("not") {
            if self.check(not, value, at).is_ok() {
                return fail("has a value that is not allowed here".to_owned());
            }
        }
        Ok(())
    }

    fn check_string(&self, rules: &Map<String, Value>, s: &str) -> Result<(), String> {
        let chars = s.chars().count();
        if let Some(min) = rules.get("minLength").and_then(Value::as_u64) {
            if (chars as u64) < min {
                return Err(format!("shorter than {min} characters"));
            }
        }
        if let Some(max) = rules.get("maxLength").and_then(Value::as_u64) {
            if chars as u64 > max {
                return Err(format!("longer than {max} characters"));
            }
        }
        if let Some(pattern) = rules.get("pattern").and_then(Value::as_str) {
            // A pattern that does not compile is a defect of the description; it then
            // checks nothing rather than refusing every request.
            if let Ok(re) = regex_lite::Regex::new(pattern) {
                if !re.is_match(s) {
                    return Err(format!("does not match {pattern}"));
                }
            }
        }
        match rules.get("format").and_then(Value::as_str) {
            Some("uri") if url::Url::parse(s).is_err() => Err("not a URI".to_owned()),
            Some("uuid") if !is_uuid(s) => Err("not a UUID".to_owned()),
            Some("date-time")
                if time::OffsetDateTime::parse(
                    s,
                    &time::format_description::well_known::Rfc3339,
                )
                .is_err() =>
            {
                Err("not an RFC 3339 date-time".to_owned())
            }
            _ => Ok(()),
        }
    }

    fn check_array(
        &self,
        rules: &Map<String, Value>,
        items: &[Value],
        at: &str,
    ) -> Result<(), (String, String)> {
        let fail = |why: String| Err((at.to_owned(), why));
        if let Some(min) = rules.get("minItems").and_then(Value::as_u64) {
            if (items.len() as u64) < min {
                return fail(format!("fewer than {min} items"));
            }
        }
        if let Some(max) = rules.get("maxItems").and_then(Value::as_u64) {
            if items.len() as u64 > max {
                return fail(format!("more than {max} items"));
            }
        }
        if let Some(item_schema) = rules.get("items") {
            for (i, item) in items.iter().enumerate() {
                self.check(item_schema, item, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }

    fn check_object(
        &self,
        rules: &Map<String, Value>,
        map: &Map<String, Value>,
        at: &str,
    ) -> Result<(), (String, String)> {
        let child = |key: &str| {
            if at.is_empty() {
                key.to_owned()
            } else {
                format!("{at}.{key}")
            }
        };
        for key in rules
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(key) = key.as_str() {
                if !map.contains_key(key) {
                    return Err((child(key), format!("{key} is required")));
                }
            }
        }
        let properties = rules.get("properties").and_then(Value::as_object);
        for (key, value) in map {
            match properties.and_then(|p| p.get(key)) {
                Some(schema) => self.check(schema, value, &child(key))?,
                None => match rules.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        return Err((child(key), format!("unknown field {key}")));
                    }
                    Some(schema @ Value::Object(_)) => self.check(schema, value, &child(key))?,
                    _ => {}
                },
            }
        }
        Ok(())
    }
}

fn check_number(rules: &Map<String, Value>, value: &Value) -> Result<(), String> {
    let n = value.as_f64().unwrap_or(0.0);
    let bound = |key: &str| rules.get(key).and_then(Value::as_f64);
    if let Some(min) = bound("minimum") {
        if n < min {
            return Err(format!("must be at least {}", rules["minimum"]));
        }
    }
    if let Some(max) = bound("maximum") {
        if n > max {
            return Err(format!("must be at most {}", rules["maximum"]));
        }
    }
    if let Some(min) = bound("exclusiveMinimum") {
        if n <= min {
            return Err(format!("must be more than {}", rules["exclusiveMinimum"]));
        }
    }
    if let Some(max) = bound("exclusiveMaximum") {
        if n >= max {
            return Err(format!("must be less than {}", rules["exclusiveMaximum"]));
        }
    }
    Ok(())
}

/// `at: why`, or `why` alone when `at` is the root.
fn located(what: &str, at: &str, why: &str) -> String {
    if at.is_empty() {
        format!("{what}: {why}")
    } else {
        format!("{what} at `{at}`: {why}")
    }
}

/// Whether `value` is of JSON Schema type `kind`.
fn is_type(value: &Value, kind: &str) -> bool {
    match kind {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64()
                || value.is_u64()
                || value
                    .as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
        }
        _ => true,
    }
}

/// JSON equality where `1` and `1.0` are the same number.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A few words for a value in a message.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A media type without its parameters, lowercase: `text/plain;charset=UTF-8` is
/// `text/plain`.
fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The values of a path's `{name}` segments if `path` matches `template` (segment by
/// segment; a template segment is a literal or a whole `{name}`), percent-decoded.
fn template_values(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let want: Vec<&str> = template.split('/').collect();
    let have: Vec<&str> = path.split('/').collect();
    if want.len() != have.len() {
        return None;
    }
    let mut values = Vec::new();
    for (w, h) in want.iter().zip(&have) {
        match w.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
            Some(_) if h.is_empty() => return None,
            Some(name) => values.push((name.to_owned(), percent_decode(h))),
            None if w == h => {}
            None => return None,
        }
    }
    Some(values)
}

/// Decodes `%XX` escapes (an invalid one is kept as written; invalid UTF-8 is
/// replaced).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(byte) = escaped {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query value as JSON: a number or boolean when it reads as one, else a string.
fn typed(raw: &str) -> Value {
    match serde_json::from_str::<Value>(raw) {
        Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
        _ => Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;

    const PAN123_JSON: &str = include_str!("../../../../fixtures/openapi/123pan.json");
    const SIXPAN_JSON: &str = include_str!("../../../../fixtures/openapi/6pan.json");
    static PAN123: LazyLock<Description> = LazyLock::new(|| Description::new(PAN123_JSON));
    static SIXPAN: LazyLock<Description> = LazyLock::new(|| Description::new(SIXPAN_JSON));

    /// Every keyword of every schema in `value` (which is a schema).
    fn keywords(value: &Value, out: &mut std::collections::BTreeSet<String>) {
        let Some(map) = value.as_object() else {
            return;
        };
        for (key, sub) in map {
            out.insert(key.clone());
            match key.as_str() {
                "properties" => sub
                    .as_object()
                    .into_iter()
                    .flatten()
                    .for_each(|(_, s)| keywords(s, out)),
                "items" | "not" | "additionalProperties" => keywords(sub, out),
                "allOf" | "anyOf" | "oneOf" => sub
                    .as_array()
                    .into_iter()
                    .flatten()
                    .for_each(|s| keywords(s, out)),
                _ => {}
            }
        }
    }

    /// Every schema in a description: under `components/schemas` and every `schema` key.
    fn schemas<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
        match value {
            Value::Object(map) => {
                for (key, sub) in map {
                    if key == "schema" {
                        out.push(sub);
                    }
                    if key == "schemas" {
                        out.extend(sub.as_object().into_iter().flatten().map(|(_, s)| s));
                    }
                    schemas(sub, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| schemas(i, out)),
            _ => {}
        }
    }

    /// Every `pattern` string in a description.
    fn patterns(value: &Value) -> Vec<&str> {
        match value {
            Value::Object(map) => map
                .iter()
                .flat_map(|(k, v)| match (k.as_str(), v) {
                    ("pattern", Value::String(p)) => vec![p.as_str()],
                    _ => patterns(v),
                })
                .collect(),
            Value::Array(items) => items.iter().flat_map(patterns).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn the_checker_knows_every_keyword_the_descriptions_use() {
        const KNOWN: &[&str] = &[
            "$ref",
            "type",
            "enum",
            "const",
            "properties",
            "required",
            "additionalProperties",
            "items",
            "minItems",
            "maxItems",
            "minLength",
            "maxLength",
            "pattern",
            "format",
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "allOf",
            "anyOf",
            "oneOf",
            "not",
            "description",
            "title",
            "examples",
            "default",
            "contentMediaType",
        ];
        for json in [PAN123_JSON, SIXPAN_JSON] {
            let root: Value = serde_json::from_str(json).unwrap();
            let mut found = Vec::new();
            schemas(&root, &mut found);
            assert!(found.len() > 10);
            let mut used = std::collections::BTreeSet::new();
            for schema in found {
                keywords(schema, &mut used);
            }
            let unknown: Vec<&String> = used
                .iter()
                .filter(|k| !KNOWN.contains(&k.as_str()) && !k.starts_with("x-"))
                .collect();
            assert!(
                unknown.is_empty(),
                "keywords the checker does not know: {unknown:?}"
            );
            for pattern in patterns(&root) {
                assert!(
                    regex_lite::Regex::new(pattern).is_ok(),
                    "pattern {pattern:?} does not compile"
                );
            }
        }
    }

    #[test]
    fn bodies_are_checked_against_the_description() {
        let d = &*PAN123;
        let post = Method::POST;
        let path = "/api/v1/offline/download";
        let ok = serde_json::json!({"url": "https://example.com/a.zip", "dirID": 7});
        assert_eq!(d.check_body(&post, path, &ok), Ok(()));
        let as_text = serde_json::json!({"url": "https://e.com/a", "dirID": "7"});
        assert_eq!(d.check_body(&post, path, &as_text), Ok(()));
        let e = d
            .check_body(
                &post,
                path,
                &serde_json::json!({"url": "https://e.com/a", "dirID": "7a"}),
            )
            .unwrap_err();
        assert!(e.starts_with("invalid request body at `dirID`"), "{e}");
        let e = d
            .check_body(&post, path, &serde_json::json!({"dirID": 3}))
            .unwrap_err();
        assert!(e.contains("url is required"), "{e}");
        let e = d
            .check_body(
                &post,
                path,
                &serde_json::json!({"url": "x", "fileName": "a".repeat(256)}),
            )
            .unwrap_err();
        assert!(e.contains("fileName") && e.contains("255"), "{e}");
        let e = d
            .check_body(
                &post,
                "/api/v1/oss/offline/download",
                &serde_json::json!({"url": "https://e.com/a.png", "type": 2}),
            )
            .unwrap_err();
        assert_eq!(e, "invalid request body at `type`: must be 1");
    }

    #[test]
    fn templates_paths_and_forms() {
        let d = &*SIXPAN;
        let post = Method::POST;
        assert_eq!(
            template_values("/mkblk/{blockSize}/{blockIndex}", "/mkblk/4194304/0"),
            Some(vec![
                ("blockSize".to_owned(), "4194304".to_owned()),
                ("blockIndex".to_owned(), "0".to_owned())
            ])
        );
        assert_eq!(
            template_values("/bput/{ctx}/{offset}", "/bput/a%2Fb/3"),
            Some(vec![
                ("ctx".to_owned(), "a/b".to_owned()),
                ("offset".to_owned(), "3".to_owned())
            ])
        );
        assert_eq!(template_values("/mkfile/{fileSize}", "/mkfile/"), None);
        assert_eq!(template_values("/mkfile/{fileSize}", "/mkfile/1/2"), None);
        assert_eq!(d.check_path(&post, "/mkblk/4194304/0"), Ok(()));
        assert_eq!(
            d.check_path(&post, "/mkblk/4194305/0").unwrap_err(),
            "invalid path at `blockSize`: must be at most 4194304"
        );
        assert!(d.check_path(&post, "/mkfile/x").is_err());
        // A ctx that reads as a number is still a string.
        assert_eq!(d.check_path(&post, "/bput/12/0"), Ok(()));
        let mut headers = HeaderMap::new();
        assert_eq!(
            d.check_headers(&post, "/mkblk/{blockSize}/{blockIndex}", &headers),
            Err("missing header UploadBatch".to_owned())
        );
        headers.insert("uploadbatch", http::HeaderValue::from_static("x"));
        assert!(d
            .check_headers(&post, "/mkblk/{blockSize}/{blockIndex}", &headers)
            .unwrap_err()
            .contains("UUID"));

        let fields = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let form = "multipart/form-data; boundary=x";
        let ok = fields(&[
            ("token", "1"),
            ("deadline", "3"),
            ("x:n", "4"),
            ("file", ""),
        ]);
        assert_eq!(d.check_form(&post, "/file/upload", form, &ok), Ok(()));
        let e = d
            .check_form(&post, "/file/upload", form, &fields(&[("token", "t")]))
            .unwrap_err();
        assert_eq!(e, "invalid request body at `file`: file is required");
        let e = d
            .check_form(
                &post,
                "/file/upload",
                form,
                &fields(&[("token", "t"), ("deadline", "soon"), ("file", "")]),
            )
            .unwrap_err();
        assert_eq!(
            e,
            "invalid request body at `deadline`: expected integer, got a string"
        );
        // Text bodies, by the media type without its parameters.
        assert_eq!(
            d.check_body_as(
                &post,
                "/mkfile/{fileSize}",
                "TEXT/plain",
                &Value::from("a,b")
            ),
            Ok(())
        );
        assert!(d
            .check_body_as(&post, "/mkfile/{fileSize}", "text/plain", &Value::from(1))
            .is_err());
    }

    #[test]
    fn servers_are_rewritten_for_serving() {
        let served = SIXPAN.with_servers("http://h:1", "http://h:1/wcs");
        assert_eq!(served["servers"][0]["url"], "http://h:1");
        assert_eq!(served["servers"][0]["x-rust-name"], "Api");
        let paths = served["paths"].as_object().unwrap();
        let mut storage = 0;
        for item in paths.values() {
            for op in item.as_object().unwrap().values() {
                if let Some(servers) = op.get("servers") {
                    storage += 1;
                    assert_eq!(servers.as_array().unwrap().len(), 1);
                    assert_eq!(servers[0]["url"], "http://h:1/wcs");
                    assert!(servers[0].get("variables").is_none());
                    assert_eq!(servers[0]["x-rust-name"], "Upload");
                }
            }
        }
        assert_eq!(storage, 4);
        // Everything else is the generated document.
        let mut original: Value = serde_json::from_str(SIXPAN_JSON).unwrap();
        let mut rewritten = served.clone();
        for doc in [&mut original, &mut rewritten] {
            doc.as_object_mut().unwrap().remove("servers");
            for item in doc["paths"].as_object_mut().unwrap().values_mut() {
                for op in item.as_object_mut().unwrap().values_mut() {
                    op.as_object_mut().unwrap().remove("servers");
                }
            }
        }
        assert_eq!(original, rewritten);
    }

    #[test]
    fn queries_and_headers_are_checked() {
        let d = &*PAN123;
        let get = Method::GET;
        let path = "/api/v1/offline/download/process";
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(d.check_query(&get, path, &q(&[("taskID", "7")])), Ok(()));
        assert!(d
            .check_query(&get, path, &q(&[]))
            .unwrap_err()
            .contains("taskID is required"));
        assert!(d.check_query(&get, path, &q(&[("taskID", "-1")])).is_err());
        assert!(d.check_query(&get, path, &q(&[("taskID", "abc")])).is_err());
        let mut headers = HeaderMap::new();
        assert_eq!(
            d.check_headers(&get, path, &headers),
            Err("missing header Platform".to_owned())
        );
        headers.insert("platform", http::HeaderValue::from_static("open_platform"));
        assert_eq!(d.check_headers(&get, path, &headers), Ok(()));
    }
}
