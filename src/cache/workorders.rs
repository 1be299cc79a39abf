//! Work orders as a pass reads them, and the work-order cache (`<runtime-dir>/.cache/workorders.json`): each file judged one at a time (parsed, validated, reduced to digest and verdict) unless the cache holds a verdict on its bytes under the same modules and config.
use crate::findings::Finding;
use crate::repo::{Known, LoadedWorkOrder, Repo, Verdict};
use crate::workorder::model::InputValue;
use crate::yaml::Doc;
use std::collections::HashMap;
use std::path::Path;

/// The repository as a pass needs it, in memory that does not grow with the work orders'
/// contents: each work-order file is read, validated and reduced to its digest and verdict one
/// at a time (not parsed at all when `known` vouches for its bytes under this repository's
/// modules and config). `Repo::model` parses one again when it runs.
pub fn load_light(root: &Path, known: Option<&Known>) -> crate::Result<Repo> {
    let mut repo = Repo::load_deferred(root)?;
    let known = known.filter(|k| k.context == repo.context);
    for (t, i) in repo.deferred() {
        let Some(slot) = repo.work_order_at(&t, i) else {
            continue;
        };
        let (lw, cached) = judged(&repo, slot, known);
        if cached {
            repo.cached += 1;
        } else {
            repo.parsed += 1;
        }
        repo.set_work_order(&t, i, lw);
    }
    Ok(repo)
}

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

/// The placeholder `slot` read: vouched for by `known` (not parsed; `true`), or parsed,
/// validated against `repo` and lightened. One that does not parse keeps its findings as
/// loaded.
fn judged(repo: &Repo, slot: &LoadedWorkOrder, known: Option<&Known>) -> (LoadedWorkOrder, bool) {
    let rel = Path::new(&slot.rel);
    let raw = match crate::yaml::read_beneath(&repo.root, rel) {
        Ok(raw) => raw,
        Err(_) => {
            return (
                crate::repo::load_work_order(&repo.root, rel, &slot.tenant_id),
                false,
            )
        }
    };
    if let Some(v) = known.and_then(|k| k.hit(&raw, &repo.root, &slot.tenant_id)) {
        let mut lw = LoadedWorkOrder::deferred(&repo.root, rel, &slot.tenant_id);
        lw.enabled = v.enabled;
        lw.verdict = Some(v.clone());
        lw.doc = Some(Doc {
            rel: raw.rel,
            abs: raw.abs,
            text: String::new(),
            value: serde_json::Value::Null,
            sha256: raw.sha256.clone(),
        });
        return (lw.lightened(raw.sha256, Vec::new()), true);
    }
    let mut lw = crate::repo::from_raw(&repo.root, rel, &slot.tenant_id, raw);
    let (Some(doc), Some(_)) = (&lw.doc, &lw.work_order) else {
        return (lw, false);
    };
    let sha256 = doc.sha256.clone();
    let errors = crate::validate::work_order(repo, &lw);
    lw.verdict = verdict(&lw, &sha256, &errors);
    (lw.lightened(sha256, errors), false)
}

/// The verdict on a parsed work order: a draft, or enabled and without errors (an invalid
/// one is judged again every pass, to report its findings).
fn verdict(lw: &LoadedWorkOrder, sha256: &str, errors: &[Finding]) -> Option<Verdict> {
    let wo = lw.work_order.as_ref()?;
    if lw.enabled && !errors.is_empty() {
        return None;
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
        sha256: sha256.to_string(),
        enabled: lw.enabled,
        assets,
        schedule: wo.schedule,
    })
}
