//! The workspace's `rust-version` is the true minimum: the highest `rust_version` any
//! package of the dependency tree declares (`cargo metadata`). `rustup` cannot install
//! that toolchain on the build machines, so CI checks it this way (`.ci/run`).

use std::process::Command;

fn parse(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

#[test]
fn rust_version_is_the_dependency_trees_maximum() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    // Only packages in the resolved tree (not every version the index knows).
    let resolved: Vec<&str> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    let mut max: Option<(Vec<u64>, String)> = None;
    let mut ours = None;
    for p in meta["packages"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap_or("");
        let Some(v) = p["rust_version"].as_str() else {
            continue;
        };
        if members.contains(&id) {
            ours = Some(v.to_owned());
            continue;
        }
        if !resolved.contains(&id) {
            continue;
        }
        let parsed = parse(v);
        if max.as_ref().is_none_or(|(m, _)| parsed > *m) {
            max = Some((parsed, format!("{} {} needs {v}", p["name"], p["version"])));
        }
    }
    let ours = ours.expect("the workspace declares rust-version");
    let (max, who) = max.expect("some dependency declares rust_version");
    let mut ours_p = parse(&ours);
    ours_p.resize(max.len().max(ours_p.len()), 0);
    let mut max_p = max.clone();
    max_p.resize(ours_p.len(), 0);
    assert_eq!(
        ours_p, max_p,
        "workspace rust-version {ours}, but the dependency tree's maximum is {who}"
    );
}
