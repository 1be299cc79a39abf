//! The registry of stable IDs: built-in reason slugs, top-up methods, usage units, audit
//! actions and evidence types, extended by config/registry.yml. Unknown IDs fail closed.
use crate::findings::{self, Finding};
use crate::repo::yaml;
use crate::schema::{self, SchemaKind};
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
    ("not_enough_credits", false),
    ("secrets_missing", false),
    ("input_invalid", false),
    ("upstream_failed", false),
    ("fail_fast", false),
];
pub const BUILTIN_TOPUP_METHODS: &[&str] = &["bank", "bank-wire", "card", "manual", "promo"];
pub const BUILTIN_USAGE_UNITS: &[&str] = &["credits", "step_run", "deliverable"];
/// Privileged actions, each guarded by the IAM scope of the same name.
pub const AUDIT_ACTIONS: &[&str] = &["billing.topup", "artifacts.publish"];
pub const EVIDENCE_TYPES: &[&str] = &[
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
    usage_units: Vec<String>,
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
            usage_units: BUILTIN_USAGE_UNITS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Registry {
    /// Built-ins plus config/registry.yml when present; problems come back as findings.
    pub fn load(root: &Path) -> (Registry, Vec<Finding>) {
        let mut reg = Registry::default();
        let path = root.join(REGISTRY_FILE);
        if !path.exists() {
            return (reg, Vec::new());
        }
        let doc = match yaml::load(root, &path) {
            Ok(d) => d,
            Err(f) => return (reg, vec![f]),
        };
        let mut out =
            findings::from_violations(&doc, schema::validate(SchemaKind::Registry, &doc.value));
        if !out.is_empty() {
            return (reg, out);
        }
        let empty = Vec::new();
        let arr = |k: &str| {
            doc.value
                .get(k)
                .and_then(|v| v.as_array())
                .unwrap_or(&empty)
                .clone()
        };
        for (i, r) in arr("reason_slugs").iter().enumerate() {
            let slug = r
                .get("slug")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            let refundable = r
                .get("refundable")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            match reg.reasons.entry(slug) {
                std::collections::btree_map::Entry::Occupied(e) => out.push(doc.finding(
                    &format!("reason_slugs[{i}].slug"),
                    format!("reason slug '{}' is already defined (built-in or earlier); remove the duplicate", e.key()),
                )),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let description = r
                        .get("description")
                        .and_then(|v| v.as_str())
                        .map(String::from);
                    e.insert(Reason {
                        refundable,
                        description,
                    });
                }
            }
        }
        for (i, m) in arr("topup_methods").iter().enumerate() {
            let id = m
                .get("id")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            if reg.topup_methods.contains(&id) {
                out.push(doc.finding(
                    &format!("topup_methods[{i}].id"),
                    format!("top-up method '{id}' is already defined"),
                ));
            } else {
                reg.topup_methods.push(id);
            }
        }
        for (i, u) in arr("usage_units").iter().enumerate() {
            let id = u.as_str().unwrap_or_default().to_string();
            if reg.usage_units.contains(&id) {
                out.push(doc.finding(
                    &format!("usage_units[{i}]"),
                    format!("usage unit '{id}' is already defined"),
                ));
            } else {
                reg.usage_units.push(id);
            }
        }
        (reg, out)
    }

    /// As `load`, but any problem is an input error (commands that act on money fail closed).
    pub fn load_strict(root: &Path) -> crate::Result<Registry> {
        let (reg, findings) = Registry::load(root);
        match findings.into_iter().next() {
            Some(f) => Err(f
                .into_error()
                .help("fix config/registry.yml (see `platform schema registry`)")),
            None => Ok(reg),
        }
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
    pub fn is_usage_unit(&self, id: &str) -> bool {
        self.usage_units.iter().any(|u| u == id)
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
