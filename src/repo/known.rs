//! Work-order files a cache vouches for by path and digest (enabled and valid when last validated): loading skips parsing them, and the context key says which modules and config the verdicts were reached under.
use super::{LoadedModule, LoadedWorkOrder};
use crate::findings::Finding;
use crate::workorder::model::{Mode, WorkOrder};
use crate::yaml::Raw;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// What was found about one work-order file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub sha256: String,
    /// Always true in a verdict written now (a draft has none); a cache saying false is
    /// forged, and not believed.
    pub enabled: bool,
    /// Its `{asset: path}` inputs, opened again on every load (an asset removed since makes
    /// the file parse and validate again).
    pub assets: Vec<String>,
    /// Its `schedule.every`: the planner decides "up to date" by period without its steps.
    #[serde(default)]
    pub schedule: Option<crate::workorder::schedule::Every>,
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
            // A draft's verdict is never written (see `cache::workorders::verdict`): one
            // found here is forged, and believing it would skip a due work order.
            .filter(|v| v.sha256 == raw.sha256 && v.enabled)?;
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
    pub fn lightened(self, sha256: String, errors: Vec<Finding>) -> LoadedWorkOrder {
        let mut lw = self.without_text(sha256, errors);
        let schedule = match (&lw.work_order, &lw.verdict) {
            (Some(wo), _) => wo.schedule,
            (None, Some(v)) => v.schedule,
            (None, None) => None,
        };
        lw.work_order = Some(WorkOrder {
            work_order_id: lw.stem.clone(),
            enabled: lw.enabled,
            artifacts_requested: false,
            mode: Mode::PartialAllowed,
            metadata: serde_json::Map::new(),
            schedule,
            steps: Vec::new(),
        });
        lw
    }

    /// Judged as [`LoadedWorkOrder::lightened`] (digest, verdict, validation errors; no
    /// text), but keeping its model for `Repo::model` to lend when it runs.
    pub fn kept(self, sha256: String, errors: Vec<Finding>) -> LoadedWorkOrder {
        let mut lw = self.without_text(sha256, errors);
        lw.kept = lw.work_order.is_some();
        lw
    }

    /// Judged: its digest and validation errors set, its text and raw values dropped.
    fn without_text(mut self, sha256: String, errors: Vec<Finding>) -> LoadedWorkOrder {
        if let Some(doc) = &mut self.doc {
            doc.text = String::new();
            doc.value = serde_json::Value::Null;
            doc.sha256 = sha256;
        }
        self.findings = errors;
        self.vouched = true;
        self
    }
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
    h.update(crate::build::id().as_bytes());
    let mut config: Vec<_> = std::fs::read_dir(root.join("config"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    config.sort();
    for p in config {
        h.update(p.to_string_lossy().as_bytes());
        digest_config_entry(&mut h, &p);
        h.update([0]);
    }
    for (id, m) in modules {
        h.update(format!("{id}\0{}\0{}\0", m.dir.display(), m.doc.sha256).as_bytes());
    }
    h.update(format!("{findings:?}").as_bytes());
    crate::digest::hex(&h.finalize())
}

/// One entry of config/ into the context digest, whatever it is (a stray file included: a
/// config file's loader decides what it means). Only a regular file (links followed, as its
/// loader does) is read, and only its length and first `MAX_FILE_BYTES + 1` bytes (a longer
/// file is refused by its loader whatever it holds past them), so neither
/// a FIFO (which would block) nor a link to a device (`/dev/zero`: endless) nor a huge file
/// can hang or balloon a load. Such an entry counts by its name and its refusal instead: it
/// appearing, or becoming a file, still changes the digest, and its loader reports it.
fn digest_config_entry(h: &mut Sha256, p: &Path) {
    use std::io::Read;
    let file = match crate::beneath::open_trusted(p) {
        Ok(f) => f,
        Err(r) => {
            h.update(r.reason.to_string().as_bytes());
            return;
        }
    };
    let len = file.metadata().map_or(0, |m| m.len());
    h.update(len.to_le_bytes());
    let mut head = file.take(crate::yaml::MAX_FILE_BYTES + 1);
    // Digested in chunks, never whole in memory.
    let mut digest = crate::digest::HashingWriter::new(std::io::sink());
    let _ = std::io::copy(&mut head, &mut digest);
    h.update(digest.finish().1.as_bytes());
}
