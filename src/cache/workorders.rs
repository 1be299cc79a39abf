//! The work-order cache (`<runtime-dir>/.cache/workorders.json`): per work-order file, the digest of the bytes last validated and the verdict (valid, or a draft), under the context key of the modules and config it was reached with; a pass parses only files whose bytes changed.
use crate::findings::Finding;
use crate::repo::{Known, Repo, Verdict};
use crate::workorder::model::InputValue;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const FILE: &str = "workorders.json";

/// The verdicts of the last pass, if the cache is there and readable (else none: every work
/// order is parsed, and the cache is written anew).
pub fn load(runtime_dir: &Path) -> Option<Known> {
    serde_json::from_slice(&super::read(runtime_dir, FILE)?).ok()
}

/// Keep the verdict of every work order that is valid (`errors`: validation of the enabled
/// ones) or a draft; a vouched one keeps the verdict `previous` gave it.
pub fn save(
    runtime_dir: &Path,
    repo: &Repo,
    errors: &BTreeMap<(String, String), Vec<Finding>>,
    previous: Option<&Known>,
) {
    let mut files = HashMap::new();
    for lw in repo.work_orders() {
        let Some(doc) = &lw.doc else { continue };
        let verdict = if lw.vouched {
            previous.and_then(|k| k.files.get(&lw.rel)).cloned()
        } else {
            judged(lw, doc.sha256.clone(), errors)
        };
        if let Some(v) = verdict {
            files.insert(lw.rel.clone(), v);
        }
    }
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

/// The verdict on a parsed work order: a draft, or enabled and without errors (an invalid
/// one is parsed again every pass, to report its findings).
fn judged(
    lw: &crate::repo::LoadedWorkOrder,
    sha256: String,
    errors: &BTreeMap<(String, String), Vec<Finding>>,
) -> Option<Verdict> {
    let wo = lw.work_order.as_ref()?;
    if lw.enabled {
        let key = (lw.tenant_id.clone(), lw.stem.clone());
        errors.get(&key).filter(|e| e.is_empty())?;
    }
    let assets = wo
        .steps
        .iter()
        .flat_map(|s| s.inputs.values())
        .filter_map(|v| match v {
            InputValue::Asset(rel) => Some(rel.clone()),
            _ => None,
        })
        .collect();
    Some(Verdict {
        sha256,
        enabled: lw.enabled,
        assets,
    })
}
