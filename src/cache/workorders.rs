//! The work-order cache (`<runtime-dir>/.cache/workorders.json`): per work-order file, the digest of the bytes last validated and the verdict (valid, or a draft), under the context key of the modules and config it was reached with; a pass parses only files whose bytes changed.
use crate::repo::{Known, Repo, Verdict};
use std::collections::HashMap;
use std::path::Path;

const FILE: &str = "workorders.json";

/// The verdicts of the last pass, if the cache is there and readable (else none: every work
/// order is parsed, and the cache is written anew).
pub fn load(runtime_dir: &Path) -> Option<Known> {
    serde_json::from_slice(&super::read(runtime_dir, FILE)?).ok()
}

/// Keep the verdict of every work order that has one (valid, or a draft).
pub fn save(runtime_dir: &Path, repo: &Repo) {
    let files: HashMap<String, Verdict> = repo
        .work_orders()
        .filter_map(|lw| lw.verdict.clone().map(|v| (lw.rel.clone(), v)))
        .collect();
    let known = Known {
        context: repo.context.clone(),
        files,
    };
    let written = serde_json::to_vec(&known)
        .ok()
        .is_some_and(|json| super::write(runtime_dir, FILE, &json).is_ok());
    if !written {
        let _ = std::fs::remove_file(super::dir(runtime_dir).join(FILE));
    }
}
