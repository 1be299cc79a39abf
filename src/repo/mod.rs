//! Loads a platform repository (modules/, tenants/, config/) into typed values; every file
//! problem becomes a finding with file and line, so one pass reports them all.
mod known;
mod modules;
pub mod root;
pub mod tenants;
mod workorders;

pub use known::{Known, Verdict};
pub use workorders::{from_raw, load_work_order};

use crate::config::catalog::Catalog;
use crate::config::registry::Registry;
use crate::contract::ModuleContract;
use crate::findings::Finding;
use crate::workorder::model::WorkOrder;
use crate::yaml::Doc;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    /// Its model is not in memory (it has no steps): a cache vouched for its bytes (see
    /// `Known`), or it was judged and lightened (`cache::workorders::load_light`). `Repo::model` parses it
    /// again; its `findings` are its validation errors.
    pub vouched: bool,
    /// Judged and validated like a lightened one (its `findings` are its validation errors),
    /// but its model stayed in memory (within `load_light`'s budget): `Repo::model` lends it
    /// instead of parsing the file again.
    pub kept: bool,
    /// Its verdict, when valid or a draft (what the work-order cache keeps).
    pub verdict: Option<Verdict>,
}

#[derive(Debug, Clone)]
pub struct LoadedTenant {
    pub tenant_id: String,
    pub dir: PathBuf,
    pub work_orders: Vec<LoadedWorkOrder>,
    /// Its tenant.yml, when it could be read.
    pub doc: Option<Doc>,
    /// What its tenant.yml says (read from `doc` when it has no error).
    pub settings: TenantSettings,
    /// The errors of its tenant.yml (`tenants::read_tenant_yml`): with any, the tenant is
    /// invalid and none of its work orders runs.
    pub errors: Vec<Finding>,
}

/// What a tenant.yml without errors says beyond its id (nothing otherwise).
#[derive(Debug, Clone, Default)]
pub struct TenantSettings {
    pub name: Option<String>,
    /// The catalog plan it is on.
    pub plan: Option<String>,
    /// Listed after a pass when its balance is below this.
    pub low_balance_credits: Option<i64>,
}

impl TenantSettings {
    pub fn read(doc: &Doc) -> TenantSettings {
        let text = |key: &str| {
            doc.value
                .get(key)
                .and_then(|x| x.as_str())
                .map(String::from)
        };
        TenantSettings {
            name: text("name"),
            plan: text("plan"),
            low_balance_credits: doc
                .value
                .get("low_balance_credits")
                .and_then(|x| x.as_i64()),
        }
    }
}

/// The whole repository as loaded.
#[derive(Debug, Clone)]
pub struct Repo {
    pub root: PathBuf,
    pub modules: BTreeMap<String, LoadedModule>,
    pub tenants: BTreeMap<String, LoadedTenant>,
    pub registry: Registry,
    /// config/catalog.yml; None when there is none (every module allowed).
    pub catalog: Option<Catalog>,
    /// Folders under tenants/ that are not tenants (a link, a bad name, a linked tenant.yml or
    /// workorders/): nothing of them is loaded; the orchestrator reports them invalid.
    pub rejected_tenants: Vec<tenants::RejectedTenant>,
    /// Problems with modules, tenants and config (work-order findings live on each work order).
    pub findings: Vec<Finding>,
    /// Digest of what work-order validation reads besides the work order ([`known::context`]).
    pub context: String,
    /// Work-order files parsed by `cache::workorders::load_light`, and those a cache vouched for (not parsed).
    pub parsed: u64,
    pub cached: u64,
    /// Modules whose module.yml has errors, found once per repository (every work order's
    /// validation asks; the contract checks resolve paths on disk).
    pub broken_modules: std::sync::OnceLock<std::collections::BTreeSet<String>>,
    /// The `github:` blocks of config/'s profiles (`validate::profiles::github_blocks`), read
    /// once: every work order's validation renders its release tag with each.
    pub github_blocks: std::sync::OnceLock<Vec<(String, crate::github::settings::GithubSettings)>>,
    /// Findings of purchases whose asset names another file's purchases share, by work-order
    /// file (`validate::shared_names`), found once.
    pub shared_names: std::sync::OnceLock<BTreeMap<String, Vec<Finding>>>,
    /// The root opened once (None if it could not be): each work order is read beneath this
    /// fd ([`Repo::beneath`]), not beneath the root opened again by its path.
    root_opened: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
}

impl Repo {
    /// Load everything under `root`. Only a missing root is an error; the rest are findings.
    pub fn load(root: &Path) -> crate::Result<Repo> {
        Repo::load_with(root, false)
    }

    /// [`Repo::load`] with every work-order file listed, not read: each is a placeholder
    /// (`LoadedWorkOrder::deferred`) until [`Repo::set_work_order`] replaces it.
    pub fn load_deferred(root: &Path) -> crate::Result<Repo> {
        Repo::load_with(root, true)
    }

    fn load_with(root: &Path, deferred: bool) -> crate::Result<Repo> {
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
        let (catalog, catalog_findings) = Catalog::load(root);
        findings.extend(catalog_findings);
        let modules = modules::load(root, &mut findings);
        let context = known::context(root, &modules, &findings);
        let (tenants, rejected_tenants) = tenants::load(root, &mut findings, deferred);
        Ok(Repo {
            root: root.to_path_buf(),
            modules,
            tenants,
            rejected_tenants,
            registry,
            catalog,
            findings,
            context,
            parsed: 0,
            cached: 0,
            broken_modules: std::sync::OnceLock::new(),
            github_blocks: std::sync::OnceLock::new(),
            shared_names: std::sync::OnceLock::new(),
            root_opened: crate::beneath::open_base(root)
                .ok()
                .map(std::sync::Arc::new),
        })
    }

    /// `rel` beneath the root, read through the root's fd when it was opened: an `open` and
    /// a `close` less per file (a pass reads every work order, a no-op pass too).
    pub fn beneath(&self, rel: impl Into<PathBuf>) -> crate::beneath::Beneath {
        crate::beneath::Beneath::new(&self.root, rel).opened_by(self.root_opened.clone())
    }

    /// Each placeholder left by [`Repo::load_deferred`]: (tenant, index among its work orders).
    pub fn deferred(&self) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        for (t, tenant) in &self.tenants {
            for (i, lw) in tenant.work_orders.iter().enumerate() {
                if lw.vouched && lw.doc.is_none() {
                    out.push((t.clone(), i));
                }
            }
        }
        out
    }

    /// The work order at (tenant, index), if any.
    pub fn work_order_at(&self, tenant: &str, i: usize) -> Option<&LoadedWorkOrder> {
        self.tenants.get(tenant).and_then(|t| t.work_orders.get(i))
    }

    /// Replace the work order at (tenant, index).
    pub fn set_work_order(&mut self, tenant: &str, i: usize, lw: LoadedWorkOrder) {
        if let Some(slot) = self
            .tenants
            .get_mut(tenant)
            .and_then(|t| t.work_orders.get_mut(i))
        {
            *slot = lw;
        }
    }

    /// The model of a work order; one not in memory is parsed again, and it is an error when
    /// its file is no longer the one judged (or no longer parses).
    pub fn model<'a>(
        &self,
        lw: &'a LoadedWorkOrder,
    ) -> std::result::Result<std::borrow::Cow<'a, WorkOrder>, String> {
        self.model_checked(lw, |_| Ok(()))
    }

    /// [`Repo::model`], with `check` run on a work order parsed again (one a cache vouched
    /// for): its error refuses the model.
    pub fn model_checked<'a>(
        &self,
        lw: &'a LoadedWorkOrder,
        check: impl FnOnce(&LoadedWorkOrder) -> std::result::Result<(), String>,
    ) -> std::result::Result<std::borrow::Cow<'a, WorkOrder>, String> {
        if !lw.vouched || lw.kept {
            return lw
                .work_order
                .as_ref()
                .map(std::borrow::Cow::Borrowed)
                .ok_or_else(|| format!("{} did not parse", lw.rel));
        }
        let planned = lw.doc.as_ref().map(|d| d.sha256.as_str());
        let again = load_work_order(&self.root, Path::new(&lw.rel), &lw.tenant_id);
        let same = again.doc.as_ref().map(|d| d.sha256.as_str()) == planned;
        if !same || again.work_order.is_none() || !again.findings.is_empty() {
            return Err(format!(
                "{} changed while the pass ran; it runs in the next pass",
                lw.rel
            ));
        }
        check(&again)?;
        again
            .work_order
            .map(std::borrow::Cow::Owned)
            .ok_or_else(|| format!("{} did not parse", lw.rel))
    }

    /// Whether modules/<id> is a folder, whether or not its module.yml loaded (one that did
    /// not is reported for that file; other checks then say "could not be loaded", not
    /// "does not exist").
    pub fn has_module_folder(&self, id: &str) -> bool {
        self.modules.contains_key(id)
            || (crate::ids::is_valid(id) && self.root.join("modules").join(id).is_dir())
    }

    pub fn module(&self, id: &str) -> Option<&ModuleContract> {
        self.modules.get(id).map(|m| &m.contract)
    }

    /// The errors of the config a pass charges and refunds by: config/registry.yml (reason
    /// slugs, usage units) and config/catalog.yml (plans). With any, the orchestrator runs and
    /// charges nothing (every work order of the pass is invalid). A pass reads neither
    /// config/iam.yml nor config/ledger.yml: the commands that do fail closed on their errors
    /// (`load_strict`).
    pub fn config_errors(&self) -> Vec<Finding> {
        let catalog = self
            .catalog
            .as_ref()
            .map(|c| c.errors())
            .unwrap_or_default();
        self.registry
            .errors()
            .iter()
            .chain(catalog)
            .cloned()
            .collect()
    }

    /// Whether any module runs as a command (a pass of built-ins alone starts no process).
    pub fn has_command_modules(&self) -> bool {
        self.modules
            .values()
            .any(|m| m.contract.runner.command().is_some())
    }

    /// Whether `tenant_id` may run `module_id` under the catalog (SPEC §10): always without
    /// a catalog, and for built-in modules; else only modules of the tenant's plan.
    pub fn entitled(
        &self,
        tenant_id: &str,
        module_id: &str,
    ) -> Result<(), crate::config::catalog::NotEntitled> {
        let Some(catalog) = &self.catalog else {
            return Ok(());
        };
        let plan = self
            .tenants
            .get(tenant_id)
            .and_then(|t| t.settings.plan.as_deref());
        let builtin = self
            .module(module_id)
            .is_some_and(|m| m.runner.builtin().is_some());
        catalog.check(plan, module_id, builtin)
    }

    /// Every work order, in order of tenant id, then work order id.
    pub fn work_orders(&self) -> impl Iterator<Item = &LoadedWorkOrder> {
        self.tenants.values().flat_map(|t| t.work_orders.iter())
    }
}

/// Sorted subdirectories of `dir` (missing dir: none).
pub(crate) fn subdirs(dir: &Path) -> Vec<PathBuf> {
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

pub(crate) fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
