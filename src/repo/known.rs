//! Work-order files a cache vouches for by path and digest (valid when last validated, or drafts): loading skips parsing them, and the context key says which modules and config the verdicts were reached under.
use super::{LoadedModule, LoadedWorkOrder, Repo};
use crate::findings::Finding;
use crate::workorder::model::{InputValue, Mode, WorkOrder};
use crate::yaml::{Doc, Raw};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// What was found about one work-order file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub sha256: String,
    /// A draft (`enabled: false`): only warned about, never planned.
    pub enabled: bool,
    /// Its `{asset: path}` inputs, opened again on every load (an asset removed since makes
    /// the file parse and validate again).
    pub assets: Vec<String>,
}

/// Verdicts by file (`rel`), reached under `context`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Known {
    pub context: String,
    pub files: HashMap<String, Verdict>,
}

impl Known {
    /// The verdict on `raw`, when its bytes are the ones judged and its assets still open.
    pub fn hit(&self, raw: &Raw, root: &Path, tenant_id: &str) -> Option<&Verdict> {
        let v = self
            .files
            .get(&raw.rel)
            .filter(|v| v.sha256 == raw.sha256)?;
        let assets_open = v
            .assets
            .iter()
            .all(|a| crate::workorder::assets::open_asset(root, tenant_id, a).is_ok());
        assets_open.then_some(v)
    }
}

impl LoadedWorkOrder {
    /// Its digest, enabled flag, verdict and validation errors, without text or steps: good
    /// for planning it up to date or invalid; `Repo::model` parses it again for anything else.
    fn lightened(mut self, sha256: String, errors: Vec<Finding>) -> LoadedWorkOrder {
        if let Some(doc) = &mut self.doc {
            doc.text = String::new();
            doc.value = serde_json::Value::Null;
            doc.sha256 = sha256;
        }
        self.work_order = Some(WorkOrder {
            work_order_id: self.stem.clone(),
            enabled: self.enabled,
            artifacts_requested: false,
            mode: Mode::PartialAllowed,
            metadata: serde_json::Map::new(),
            steps: Vec::new(),
        });
        self.findings = errors;
        self.vouched = true;
        self
    }
}

/// The placeholder `slot` read: vouched for by `known` (not parsed; `true`), or parsed,
/// validated against `repo` and lightened. One that does not parse keeps its findings as
/// loaded.
pub(super) fn judged(
    repo: &Repo,
    slot: &LoadedWorkOrder,
    known: Option<&Known>,
) -> (LoadedWorkOrder, bool) {
    let rel = Path::new(&slot.rel);
    let raw = match crate::yaml::read_beneath(&repo.root, rel) {
        Ok(raw) => raw,
        Err(_) => {
            return (
                super::load_work_order(&repo.root, rel, &slot.tenant_id),
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
    let mut lw = super::workorders::from_raw(&repo.root, rel, &slot.tenant_id, raw);
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
    })
}

/// The digest of everything a work order's validation reads besides its own file and its
/// assets: this build, the files of config/, every module's contract and what loading them
/// found. A change to any makes every work order validate again.
pub fn context(
    root: &Path,
    modules: &BTreeMap<String, LoadedModule>,
    findings: &[Finding],
) -> String {
    let mut h = Sha256::new();
    h.update(crate::cache::build_id().as_bytes());
    let mut config: Vec<_> = std::fs::read_dir(root.join("config"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    config.sort();
    for p in config {
        h.update(p.to_string_lossy().as_bytes());
        h.update(std::fs::read(&p).unwrap_or_default());
        h.update([0]);
    }
    for (id, m) in modules {
        h.update(format!("{id}\0{}\0{}\0", m.dir.display(), m.doc.sha256).as_bytes());
    }
    h.update(format!("{findings:?}").as_bytes());
    crate::digest::hex(&h.finalize())
}
