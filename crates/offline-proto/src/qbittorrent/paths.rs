//! Drive paths and the paths apps see ([`Config::report_prefix`](super::Config)).

/// The path an app sees for drive path `drive`: `prefix` joined with it (`/mnt/cloud`
/// and `/Media/TV` give `/mnt/cloud/Media/TV`), or `drive` as is without a prefix;
/// no trailing `/` but for the root itself (qBittorrent's `Path::toString`).
pub(super) fn report(prefix: Option<&str>, drive: &str) -> String {
    let joined = match prefix.map(|p| p.trim_end_matches('/')) {
        None => drive.to_owned(),
        Some(p) => {
            let rest = drive.trim_start_matches('/');
            if rest.is_empty() {
                p.to_owned()
            } else {
                format!("{p}/{rest}")
            }
        }
    };
    let trimmed = joined.trim_end_matches('/');
    if trimmed.is_empty() && joined.starts_with('/') {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

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

/// The drive path for a path an app sent (`savepath`, a category's `savePath`):
/// absolute paths lose the report prefix (and must be under it), relative ones are
/// joined to `base` (qBittorrent's rule: "a relative save path is relative to the
/// default one", `SessionImpl::initLoadTorrentParams`). Empty and `.` components
/// are dropped.
///
/// # Errors
///
/// The reason, for a path with a `..` component or an absolute path outside the
/// prefix.
pub(super) fn to_drive(prefix: Option<&str>, given: &str, base: &str) -> Result<String, String> {
    let given = given.trim();
    let mut parts = Vec::new();
    for part in given.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("the path {given:?} has a \"..\" component")),
            part => parts.push(part),
        }
    }
    let clean = parts.join("/");
    if !given.starts_with('/') {
        return Ok(join(base, &clean));
    }
    let prefix = prefix
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty());
    let Some(prefix) = prefix else {
        return Ok(format!("/{clean}"));
    };
    if clean == prefix {
        return Ok("/".to_owned());
    }
    match clean.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) {
        Some(rest) => Ok(format!("/{rest}")),
        None => Err(format!(
            "the path {given:?} is not under /{prefix}, where this daemon's cloud drive is seen"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_paths() {
        assert_eq!(report(None, "/Media/TV"), "/Media/TV");
        assert_eq!(report(None, "/"), "/");
        assert_eq!(
            report(Some("/mnt/cloud"), "/Media/TV"),
            "/mnt/cloud/Media/TV"
        );
        assert_eq!(report(Some("/mnt/cloud/"), "/"), "/mnt/cloud");
        assert_eq!(
            report(Some("/mnt/cloud"), "/Media/TV/"),
            "/mnt/cloud/Media/TV"
        );
    }

    #[test]
    fn sent_paths() {
        let p = Some("/mnt/cloud");
        assert_eq!(
            to_drive(p, "/mnt/cloud/Media/TV/", "/x").unwrap(),
            "/Media/TV"
        );
        assert_eq!(to_drive(p, "/mnt/cloud", "/x").unwrap(), "/");
        assert_eq!(to_drive(p, "TV//a/./b", "/Media").unwrap(), "/Media/TV/a/b");
        assert_eq!(to_drive(None, " /Media//TV ", "/x").unwrap(), "/Media/TV");
        assert!(to_drive(p, "/data/tv", "/x").is_err());
        assert!(to_drive(p, "/mnt/cloudy/tv", "/x").is_err());
        assert!(to_drive(p, "/mnt/cloud/../etc", "/x").is_err());
        assert!(to_drive(None, "a/../../b", "/x").is_err());
    }
}
