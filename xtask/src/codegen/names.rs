//! Rust names from wire names: fields in snake case, types and variants in Pascal case.

/// Names that cannot be fields; a property with one of them needs an `x-rust-name`.
pub(super) const KEYWORDS: [&str; 12] = [
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
pub(super) fn pascal_case(name: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for (wire, snake) in [
            ("fileName", "file_name"),
            ("taskID", "task_id"),
            ("clientID", "client_id"),
            ("businessDirID", "business_dir_id"),
            ("x-traceID", "x_trace_id"),
            ("access_token", "access_token"),
        ] {
            assert_eq!(snake_case(wire), snake, "{wire}");
        }
        for (wire, pascal) in [("accessToken", "AccessToken"), ("parse_url", "ParseUrl")] {
            assert_eq!(pascal_case(wire), pascal, "{wire}");
        }
    }
}
