//! Paths inside a reported folder (the drive paths and the report prefix are
//! [`crate::catalog`]'s: [`crate::catalog::report_path`], [`crate::catalog::drive_path`]).

/// `dir` and a relative path, one `/` between them.
pub(super) fn join(dir: &str, path: &str) -> String {
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        return dir.to_owned();
    }
    match dir {
        "" => path.to_owned(),
        d if d.ends_with('/') => format!("{d}{path}"),
        d => format!("{d}/{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_with_one_slash() {
        assert_eq!(
            join("/mnt/cloud/TV", "pack/a.mkv"),
            "/mnt/cloud/TV/pack/a.mkv"
        );
        assert_eq!(join("/", "/a"), "/a");
        assert_eq!(join("/TV", ""), "/TV");
        assert_eq!(join("", "a"), "a");
    }
}
