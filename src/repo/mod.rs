//! Loads a platform repository (modules/, tenants/, config/) into typed values; every file
//! problem becomes a finding with file and line, so one pass reports them all.
pub mod locate;
pub mod tenants;
pub mod yaml;

use crate::config::registry::Registry;
use crate::contract::{Builtin, Kind, ModuleContract};
use crate::findings::{self, Finding};
use crate::schema::{self, SchemaKind};
use crate::workorder::model::{InputValue, Mode, Step, WorkOrder};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use yaml::Doc;

/// A module folder and its contract.
#[derive(Debug, Clone)]
pub struct LoadedModule {
    pub dir: PathBuf,
    pub doc: Doc,
    pub contract: ModuleContract,
}

/// A work-order file; `work_order` is None when it could not be parsed.
#[derive(Debug, Clone)]
pub struct LoadedWorkOrder {
    pub tenant_id: String,
    /// File stem: the work order's ID as far as the file system says.
    pub stem: String,
    /// The file's text and digest; its `value` is `Null` once `work_order` is parsed (the
    /// model holds the values).
    pub doc: Option<Doc>,
    pub rel: String,
    pub work_order: Option<WorkOrder>,
    /// Drafts (`enabled: false`) only warn; read from the raw value even when parsing failed.
    pub enabled: bool,
    /// Findings of loading (syntax, schema, bindings syntax).
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone)]
pub struct LoadedTenant {
    pub tenant_id: String,
    pub dir: PathBuf,
    pub doc: Option<Doc>,
    pub name: Option<String>,
    pub work_orders: Vec<LoadedWorkOrder>,
}

/// The whole repository as loaded.
#[derive(Debug, Clone)]
pub struct Repo {
    pub root: PathBuf,
    pub modules: BTreeMap<String, LoadedModule>,
    pub tenants: BTreeMap<String, LoadedTenant>,
    pub registry: Registry,
    /// Folders under tenants/ that are not tenants (a link, a bad name, a linked tenant.yml or
    /// workorders/): nothing of them is loaded; the orchestrator reports them invalid.
    pub rejected_tenants: Vec<tenants::RejectedTenant>,
    /// Problems with modules, tenants and config (work-order findings live on each work order).
    pub findings: Vec<Finding>,
}

impl Repo {
    /// Load everything under `root`. Only a missing root is an error; the rest are findings.
    pub fn load(root: &Path) -> crate::Result<Repo> {
        if !root.is_dir() {
            return Err(crate::Error::input(format!(
                "repository {} is not a directory",
                root.display()
            ))
            .help(
                "pass --repo DIR pointing at a platform repository (modules/, tenants/, config/)",
            ));
        }
        // Absolute, so module folders and assets stay valid for a child process that runs in
        // a working directory of its own (a relative `--repo .` would point elsewhere there).
        let absolute = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let root = absolute.as_path();
        let (registry, mut findings) = Registry::load(root);
        let (_, iam_findings) = crate::config::iam::Iam::load(root);
        findings.extend(iam_findings);
        findings.extend(crate::config::ledger::LedgerConfig::load(root).1);
        let modules = load_modules(root, &mut findings);
        let (tenants, rejected_tenants) = tenants::load(root, &mut findings);
        Ok(Repo {
            root: root.to_path_buf(),
            modules,
            tenants,
            rejected_tenants,
            registry,
            findings,
        })
    }

    pub fn module(&self, id: &str) -> Option<&ModuleContract> {
        self.modules.get(id).map(|m| &m.contract)
    }

    /// Every work order, in order of tenant id, then work order id.
    pub fn work_orders(&self) -> impl Iterator<Item = &LoadedWorkOrder> {
        self.tenants.values().flat_map(|t| t.work_orders.iter())
    }
}

/// Sorted subdirectories of `dir` (missing dir: none).
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn load_modules(root: &Path, findings: &mut Vec<Finding>) -> BTreeMap<String, LoadedModule> {
    let mut out = BTreeMap::new();
    for dir in subdirs(&root.join("modules")) {
        let folder = name_of(&dir);
        let file = dir.join("module.yml");
        let rel = yaml::rel_string(root, &file);
        if !file.is_file() {
            findings.push(Finding::error(
                rel,
                "",
                "module folder has no module.yml; add one or remove the folder",
            ));
            continue;
        }
        let doc = match yaml::load(root, &file) {
            Ok(d) => d,
            Err(f) => {
                findings.push(f);
                continue;
            }
        };
        let violations =
            findings::from_violations(&doc, schema::validate(SchemaKind::Module, &doc.value));
        if !violations.is_empty() {
            findings.extend(violations);
            continue;
        }
        let contract: ModuleContract = match serde_json::from_value(doc.value.clone()) {
            Ok(c) => c,
            Err(e) => {
                findings.push(doc.finding("", format!("invalid module contract: {e}")));
                continue;
            }
        };
        let mut bad = contract_findings(&doc, &contract, &folder);
        let fatal = bad.iter().any(|f| f.field == "module_id");
        findings.append(&mut bad);
        if !fatal {
            out.insert(folder, LoadedModule { dir, doc, contract });
        }
    }
    out
}

/// Checks of one contract beyond its schema.
fn contract_findings(doc: &Doc, c: &ModuleContract, folder: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    if c.module_id != folder {
        out.push(doc.finding(
            "module_id",
            format!(
                "module_id '{}' must equal its folder name '{folder}'",
                c.module_id
            ),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, inp) in c.inputs.iter().enumerate() {
        if !seen.insert(&inp.id) {
            out.push(doc.finding(
                &format!("inputs[{i}].id"),
                format!("input id '{}' is declared twice", inp.id),
            ));
        }
        if let Some(d) = &inp.default {
            if !inp.ty.is_path() && !inp.ty.accepts(d) {
                out.push(doc.finding(
                    &format!("inputs[{i}].default"),
                    format!(
                        "default of input '{}' is not of type {}",
                        inp.id,
                        inp.ty.as_str()
                    ),
                ));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, o) in c.outputs.iter().enumerate() {
        if !seen.insert(&o.id) {
            out.push(doc.finding(
                &format!("outputs[{i}].id"),
                format!("output id '{}' is declared twice", o.id),
            ));
        }
        if let Some(p) = &o.path {
            if let Some(why) = crate::workorder::paths::check_relative(p) {
                out.push(doc.finding(&format!("outputs[{i}].path"), why));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, d) in c.deliverables.iter().enumerate() {
        if !seen.insert(&d.deliverable_id) {
            out.push(doc.finding(
                &format!("deliverables[{i}].deliverable_id"),
                format!("deliverable '{}' is declared twice", d.deliverable_id),
            ));
        }
        if d.deliverable_id.starts_with("__") {
            out.push(doc.finding(
                &format!("deliverables[{i}].deliverable_id"),
                "deliverable ids starting with '__' are reserved for the platform",
            ));
        }
        for (j, o) in d.outputs.iter().enumerate() {
            if c.output(o).is_none() {
                out.push(doc.finding(
                    &format!("deliverables[{i}].outputs[{j}]"),
                    format!(
                        "deliverable '{}' names output '{o}', which the module does not declare",
                        d.deliverable_id
                    ),
                ));
            }
        }
    }
    for id in c.pricing.deliverables.keys() {
        if c.deliverable(id).is_none() {
            out.push(doc.finding(
                &format!("pricing.deliverables.{id}"),
                format!("price for deliverable '{id}', which the module does not declare"),
            ));
        }
    }
    // A module named after a built-in is that built-in: it cannot run another one.
    if let (Some(b), Some(own)) = (c.runner.builtin(), Builtin::from_name(&c.module_id)) {
        if b != own {
            out.push(doc.finding(
                "runner.builtin",
                format!("module '{}' must run builtin '{own}'", c.module_id),
            ));
        }
    }
    out
}

impl LoadedWorkOrder {
    /// A work order of file `rel` (beneath `root`) with nothing parsed yet.
    fn empty(root: &Path, rel: &Path, tenant_id: &str) -> LoadedWorkOrder {
        LoadedWorkOrder {
            tenant_id: tenant_id.to_string(),
            stem: rel
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            doc: None,
            rel: yaml::rel_string(root, &root.join(rel)),
            work_order: None,
            enabled: true,
            findings: Vec::new(),
        }
    }

    /// A work-order file that is not read at all, for `why`.
    pub fn refused(root: &Path, rel: &Path, tenant_id: &str, why: &str) -> LoadedWorkOrder {
        let mut lw = LoadedWorkOrder::empty(root, rel, tenant_id);
        lw.findings.push(Finding::error(&lw.rel, "", why));
        lw
    }
}

/// Load one work-order file, `rel` beneath `root`, read through no link; problems are
/// recorded on it, never fatal.
pub fn load_work_order(root: &Path, rel: &Path, tenant_id: &str) -> LoadedWorkOrder {
    let mut lw = LoadedWorkOrder::empty(root, rel, tenant_id);
    let stem = lw.stem.clone();
    let mut doc = match yaml::load_beneath(root, rel) {
        Ok(d) => d,
        Err(f) => {
            lw.findings.push(f);
            return lw;
        }
    };
    lw.enabled = doc
        .value
        .get("enabled")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    if let Some(why) = crate::ids::check(&stem) {
        lw.findings
            .push(doc.finding("work_order_id", format!("file name: {why}")));
    }
    let violations =
        findings::from_violations(&doc, schema::validate(SchemaKind::Workorder, &doc.value));
    if !violations.is_empty() {
        lw.findings.extend(violations);
        lw.doc = Some(doc);
        return lw;
    }
    // The model takes the parsed values over: a `serde_json::Value` per file (a B-tree node
    // of ~640 bytes per mapping) was most of a large repository's memory, and nothing reads a
    // parsed work order's `doc.value` again.
    let mut value = std::mem::take(&mut doc.value);
    let metadata = match value.get_mut("metadata") {
        Some(serde_json::Value::Object(m)) => std::mem::take(m),
        _ => serde_json::Map::new(),
    };
    let mut raw_steps = match value.get_mut("steps") {
        Some(serde_json::Value::Array(a)) => std::mem::take(a),
        _ => Vec::new(),
    };
    let v = &value;
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let mode = match v.get("mode").and_then(|x| x.as_str()) {
        Some("FAIL_FAST") => Mode::FailFast,
        _ => Mode::PartialAllowed,
    };
    let mut steps = Vec::new();
    for (i, st) in raw_steps.iter_mut().enumerate() {
        let inputs_given = st.get("inputs").is_some();
        let raw_inputs = match st.get_mut("inputs") {
            Some(serde_json::Value::Object(m)) => std::mem::take(m),
            _ => serde_json::Map::new(),
        };
        let mut inputs = BTreeMap::new();
        for (k, val) in &raw_inputs {
            match InputValue::parse(val) {
                Ok(iv) => {
                    inputs.insert(k.clone(), iv);
                }
                Err(why) => lw
                    .findings
                    .push(doc.finding(&format!("steps[{i}].inputs.{k}"), why)),
            }
        }
        let kind: Kind = match st.get("kind").cloned().map(serde_json::from_value) {
            Some(Ok(k)) => k,
            _ => Kind::Other,
        };
        steps.push(Step {
            step_id: st
                .get("step_id")
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string(),
            module_id: st
                .get("module_id")
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string(),
            kind,
            inputs,
            raw_inputs,
            inputs_given,
            deliverables: st
                .get("deliverables")
                .and_then(|x| x.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|d| d.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    lw.work_order = Some(WorkOrder {
        work_order_id: s("work_order_id"),
        enabled: lw.enabled,
        artifacts_requested: v
            .get("artifacts_requested")
            .and_then(|x| x.as_bool())
            .unwrap_or(false),
        mode,
        metadata,
        steps,
    });
    lw.doc = Some(doc);
    lw
}
