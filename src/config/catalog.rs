//! config/catalog.yml: plans and the modules each one allows (SPEC §10). No catalog: every module is allowed.
use crate::findings::Finding;
use crate::schema::SchemaKind;
use crate::yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub const CATALOG_FILE: &str = "config/catalog.yml";

/// The plans of config/catalog.yml, each with the module IDs it allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub plans: BTreeMap<String, BTreeSet<String>>,
    /// Where each plan is written (file and line), for findings that name it.
    lines: BTreeMap<String, usize>,
    /// The file's own errors: it is then read as having no plans, and says so
    /// ([`NotEntitled::Invalid`]) rather than that a tenant's plan is missing from it.
    errors: Vec<Finding>,
}

/// Why a tenant may not run a module under a catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotEntitled {
    /// The tenant names no plan.
    NoPlan,
    /// The tenant names a plan the catalog does not have.
    UnknownPlan(String),
    /// The plan exists and does not list the module.
    NotInPlan(String),
    /// The catalog has errors (what [`Catalog::invalid`] says): no plan of it is read.
    Invalid(String),
}

impl NotEntitled {
    /// What to tell the operator, naming the plan and the module.
    pub fn message(&self, module_id: &str) -> String {
        match self {
            NotEntitled::NoPlan => format!(
                "module '{module_id}' is not allowed: the tenant names no plan and {CATALOG_FILE} exists"
            ),
            NotEntitled::UnknownPlan(p) => format!(
                "module '{module_id}' is not allowed: the tenant's plan '{p}' is not in {CATALOG_FILE}"
            ),
            NotEntitled::NotInPlan(p) => {
                format!("module '{module_id}' is not in plan '{p}' of {CATALOG_FILE}")
            }
            NotEntitled::Invalid(note) => format!("module '{module_id}' is not allowed: {note}"),
        }
    }

    /// What to do about it, when [`NotEntitled::message`] does not say already.
    pub fn fix(&self) -> Option<&'static str> {
        match self {
            NotEntitled::Invalid(_) => None,
            _ => Some("add it to the plan in config/catalog.yml or change the tenant's plan"),
        }
    }
}

impl Catalog {
    /// Whether a tenant on `plan` may run `module_id` (built-in modules always may).
    pub fn check(
        &self,
        plan: Option<&str>,
        module_id: &str,
        builtin: bool,
    ) -> Result<(), NotEntitled> {
        if builtin {
            return Ok(());
        }
        if let Some(note) = self.invalid() {
            return Err(NotEntitled::Invalid(note));
        }
        let Some(plan) = plan else {
            return Err(NotEntitled::NoPlan);
        };
        match self.plans.get(plan) {
            None => Err(NotEntitled::UnknownPlan(plan.to_string())),
            Some(modules) if modules.contains(module_id) => Ok(()),
            Some(_) => Err(NotEntitled::NotInPlan(plan.to_string())),
        }
    }

    /// "config/catalog.yml is invalid (...)" while it has errors.
    pub fn invalid(&self) -> Option<String> {
        super::invalid_note(CATALOG_FILE, &self.errors)
    }

    /// The errors of config/catalog.yml (none when it is valid).
    pub fn errors(&self) -> &[Finding] {
        &self.errors
    }

    /// The line of `plans.<plan>` in the catalog file, when known.
    pub fn line_of(&self, plan: &str) -> Option<usize> {
        self.lines.get(plan).copied()
    }

    /// Parse and check config/catalog.yml. None when the file does not exist; a catalog that
    /// fails its schema is returned without plans and with its errors (every module but the
    /// built-ins refused, [`NotEntitled::Invalid`]), so a broken catalog never opens every
    /// module to every tenant.
    pub fn load(root: &Path) -> (Option<Catalog>, Vec<Finding>) {
        let doc = match super::load_checked(root, CATALOG_FILE, SchemaKind::Catalog, false) {
            Ok(None) => return (None, Vec::new()),
            Ok(Some(doc)) => doc,
            Err(findings) => {
                let broken = Catalog {
                    errors: findings.clone(),
                    ..Catalog::default()
                };
                return (Some(broken), findings);
            }
        };
        let mut catalog = Catalog::default();
        let plans = doc.value.get("plans").cloned().unwrap_or_default();
        for plan in plans.as_object().into_iter().flat_map(|m| m.keys()) {
            let field = format!("plans.{plan}");
            let listed = yaml::strings(&plans, plan);
            catalog
                .plans
                .insert(plan.clone(), listed.into_iter().collect());
            if let Some(line) = doc.line_of(&field) {
                catalog.lines.insert(plan.clone(), line);
            }
        }
        (Some(catalog), Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        c.plans
            .insert("basic".into(), ["text_stats".to_string()].into());
        c
    }

    #[test]
    fn a_plan_allows_its_modules_and_built_ins_only() {
        let c = catalog();
        assert_eq!(c.check(Some("basic"), "text_stats", false), Ok(()));
        assert_eq!(c.check(Some("basic"), "package", true), Ok(()));
        assert_eq!(c.check(None, "package", true), Ok(()));
        assert_eq!(
            c.check(Some("basic"), "ocr", false),
            Err(NotEntitled::NotInPlan("basic".into()))
        );
        assert_eq!(
            c.check(Some("gold"), "text_stats", false),
            Err(NotEntitled::UnknownPlan("gold".into()))
        );
        assert_eq!(c.check(None, "text_stats", false), Err(NotEntitled::NoPlan));
        let m = NotEntitled::NotInPlan("basic".into()).message("ocr");
        assert!(m.contains("'ocr'") && m.contains("'basic'"), "{m}");
    }

    #[test]
    fn an_invalid_catalog_refuses_all_but_built_ins_and_says_it_is_invalid() {
        let broken = Catalog {
            errors: vec![Finding::error(CATALOG_FILE, "plans.basic", "duplicate").line(Some(3))],
            ..catalog()
        };
        assert_eq!(broken.check(Some("basic"), "package", true), Ok(()));
        let Err(e) = broken.check(Some("basic"), "text_stats", false) else {
            panic!("an invalid catalog allowed a module");
        };
        let m = e.message("text_stats");
        assert!(
            m.contains("config/catalog.yml is invalid") && m.contains("config/catalog.yml:3"),
            "{m}"
        );
        assert_eq!(e.fix(), None);
    }
}
