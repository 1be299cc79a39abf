//! The registry of stable IDs: built-in reason slugs, top-up methods, usage units, audit
//! actions and evidence types, extended by config/registry.yml. Unknown IDs fail closed.
use crate::findings::{self, Finding};
use crate::schema::SchemaKind;
use crate::yaml::Doc;
use serde_json::Value;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::path::Path;

/// Built-in reason slugs and whether a step failing with them is refunded.
pub const BUILTIN_REASONS: &[(&str, bool)] = &[
    ("module_failed", true),
    ("timeout", true),
    ("outputs_missing", true),
    ("outputs_too_large", true),
    ("delivery_failed", true),
    ("package_too_large_for_email", true),
    ("superseded", true),
    ("usage_invalid", true),
    ("not_enough_credits", false),
    ("secrets_missing", false),
    ("not_entitled", false),
    ("input_invalid", false),
    ("upstream_failed", false),
    ("fail_fast", false),
];
pub const BUILTIN_TOPUP_METHODS: &[&str] = &["bank", "bank-wire", "card", "manual", "promo"];
pub const BUILTIN_USAGE_UNITS: &[&str] = &["credits", "step_run", "deliverable", "kib"];
/// Why an operator corrects a balance (`admin-adjust --reason-slug`).
pub const BUILTIN_ADJUST_REASONS: &[&str] = &["goodwill", "correction", "chargeback"];
/// Privileged actions, each guarded by the IAM scope of the same name.
pub const AUDIT_ACTIONS: &[&str] = &[
    "billing.topup",
    "billing.adjust",
    "orders.rerun",
    "artifacts.publish",
];
pub const EVIDENCE_TYPES: &[&str] = &[
    "rerun_requested",
    "run_started",
    "step_started",
    "step_outcome",
    "evidence_item",
    "delivery_receipt",
    "run_ended",
    "evidence_bundle",
    "publish",
];

pub const REGISTRY_FILE: &str = "config/registry.yml";

/// A reason slug: whether it is refunded, and the registry entry's own description.
#[derive(Debug, Clone)]
struct Reason {
    refundable: bool,
    description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Registry {
    reasons: BTreeMap<String, Reason>,
    topup_methods: Vec<String>,
    adjust_reasons: Vec<String>,
    /// The `description` of an adjust reason config/registry.yml adds (what `explain` shows).
    adjust_descriptions: BTreeMap<String, String>,
    usage_units: Vec<String>,
    /// The file's own errors: a check that reads the registry says it is invalid (pointing at
    /// them) instead of "not in the registry", and the orchestrator charges nothing.
    errors: Vec<Finding>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            reasons: BUILTIN_REASONS
                .iter()
                .map(|(s, r)| {
                    let reason = Reason {
                        refundable: *r,
                        description: None,
                    };
                    (s.to_string(), reason)
                })
                .collect(),
            topup_methods: BUILTIN_TOPUP_METHODS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            adjust_reasons: BUILTIN_ADJUST_REASONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            adjust_descriptions: BTreeMap::new(),
            usage_units: BUILTIN_USAGE_UNITS.iter().map(|s| s.to_string()).collect(),
            errors: Vec::new(),
        }
    }
}

impl Registry {
    /// Built-ins plus config/registry.yml when present; problems come back as findings, and
    /// stay on the registry ([`Registry::errors`]). A file that fails its schema adds nothing
    /// to the built-ins.
    pub fn load(root: &Path) -> (Registry, Vec<Finding>) {
        let (mut reg, findings) = Registry::read(root);
        reg.errors = findings.clone();
        (reg, findings)
    }

    /// [`Registry::load`], its findings not kept on it yet.
    fn read(root: &Path) -> (Registry, Vec<Finding>) {
        let mut reg = Registry::default();
        let doc = match super::load_checked(root, REGISTRY_FILE, SchemaKind::Registry, false) {
            Ok(None) => return (reg, Vec::new()),
            Ok(Some(doc)) => doc,
            Err(findings) => return (reg, findings),
        };
        let mut out = Vec::new();
        let list = |k: &str| {
            let items = doc.value.get(k).and_then(|v| v.as_array());
            items.map(Vec::as_slice).unwrap_or_default()
        };
        for (i, r) in list("reason_slugs").iter().enumerate() {
            reg.add_reason(&doc, i, r, &mut out);
        }
        // The plain id lists: an entry is an object with an `id`, or (usage units) the id.
        let id_lists = [
            (
                &mut reg.topup_methods,
                "topup_methods",
                Some("id"),
                "top-up method",
            ),
            (
                &mut reg.adjust_reasons,
                "adjust_reasons",
                Some("id"),
                "adjust reason",
            ),
            (&mut reg.usage_units, "usage_units", None, "usage unit"),
        ];
        for (ids, key, id_key, what) in id_lists {
            for (i, item) in list(key).iter().enumerate() {
                let (id, field) = match id_key {
                    Some(k) => (item.get(k), format!("{key}[{i}].{k}")),
                    None => (Some(item), format!("{key}[{i}]")),
                };
                let id = id.and_then(Value::as_str).unwrap_or_default();
                if key == "usage_units" && crate::records::billing::is_internal(id) {
                    // Until 2026-12-04 `__run__` was accepted: its usage charge took the run
                    // charge's key, and a resumed run ended without charging the usage.
                    let why = format!("usage unit '{id}': ids starting with '__' are reserved for the platform's own charges (the run charge is '__run__'); rename it");
                    out.push(doc.finding(&field, why));
                    continue;
                }
                define(ids, id, &doc, &field, what, &mut out);
            }
        }
        for item in list("adjust_reasons") {
            let text = |k: &str| item.get(k).and_then(Value::as_str);
            if let (Some(id), Some(description)) = (text("id"), text("description")) {
                let added = !BUILTIN_ADJUST_REASONS.contains(&id);
                if added && !reg.adjust_descriptions.contains_key(id) {
                    reg.adjust_descriptions
                        .insert(id.to_string(), description.to_string());
                }
            }
        }
        (reg, out)
    }

    /// Entry `i` of `reason_slugs`, unless its slug is already defined.
    fn add_reason(&mut self, doc: &Doc, i: usize, r: &Value, out: &mut Vec<Finding>) {
        let text = |k: &str| r.get(k).and_then(|v| v.as_str());
        let slug = text("slug").unwrap_or_default().to_string();
        match self.reasons.entry(slug) {
            Entry::Occupied(e) => out.push(doc.finding(
                &format!("reason_slugs[{i}].slug"),
                format!(
                    "reason slug '{}' is already defined (built-in or earlier); remove the duplicate",
                    e.key()
                ),
            )),
            Entry::Vacant(e) => {
                e.insert(Reason {
                    refundable: r.get("refundable").and_then(|v| v.as_bool()).unwrap_or(false),
                    description: text("description").map(String::from),
                });
            }
        }
    }

    /// As `load`, but any problem is an input error (commands that act on money fail closed).
    pub fn load_strict(root: &Path) -> crate::Result<Registry> {
        let help = "fix config/registry.yml (see `platform schema registry`)";
        findings::fail_closed(Registry::load(root), help)
    }

    /// The errors of config/registry.yml (none when it is valid or absent).
    pub fn errors(&self) -> &[Finding] {
        &self.errors
    }

    /// "config/registry.yml is invalid (...)" while it has errors: what a check that found an
    /// ID missing from it says instead of blaming the ID.
    pub fn invalid(&self) -> Option<String> {
        super::invalid_note(REGISTRY_FILE, &self.errors)
    }

    /// Whether a failure with this slug is refunded; None for an unknown slug.
    pub fn refundable(&self, slug: &str) -> Option<bool> {
        self.reasons.get(slug).map(|r| r.refundable)
    }
    /// Every reason slug: `(slug, refundable, description from config/registry.yml)`.
    pub fn reasons(&self) -> impl Iterator<Item = (&str, bool, Option<&str>)> {
        self.reasons
            .iter()
            .map(|(s, r)| (s.as_str(), r.refundable, r.description.as_deref()))
    }
    pub fn is_known_reason(&self, slug: &str) -> bool {
        self.reasons.contains_key(slug)
    }
    pub fn is_topup_method(&self, id: &str) -> bool {
        self.topup_methods.iter().any(|m| m == id)
    }
    pub fn topup_methods(&self) -> &[String] {
        &self.topup_methods
    }
    pub fn is_adjust_reason(&self, id: &str) -> bool {
        self.adjust_reasons.iter().any(|r| r == id)
    }
    /// The description config/registry.yml gives an adjust reason it adds, if any.
    pub fn adjust_description(&self, id: &str) -> Option<&str> {
        self.adjust_descriptions.get(id).map(String::as_str)
    }
    pub fn adjust_reasons(&self) -> &[String] {
        &self.adjust_reasons
    }
    pub fn is_usage_unit(&self, id: &str) -> bool {
        self.usage_units.iter().any(|u| u == id)
    }
}

/// Add `id` to `list`, or a finding at `field` when it is already defined (built in or earlier).
fn define(
    list: &mut Vec<String>,
    id: &str,
    doc: &Doc,
    field: &str,
    what: &str,
    out: &mut Vec<Finding>,
) {
    if list.iter().any(|x| x == id) {
        out.push(doc.finding(field, format!("{what} '{id}' is already defined")));
    } else {
        list.push(id.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins() {
        let r = Registry::default();
        assert_eq!(r.refundable("timeout"), Some(true));
        assert_eq!(r.refundable("fail_fast"), Some(false));
        assert_eq!(r.refundable("nope"), None);
        assert!(r.is_topup_method("bank-wire"));
        assert!(!r.is_topup_method("crypto"));
    }
}
