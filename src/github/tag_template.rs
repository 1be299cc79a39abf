//! The `release_tag` template: its placeholders, the tag of one run of one work order, and
//! whether any run could render a given tag (so the state release stays out of reach).
use crate::error::{Error, Result};
use std::collections::BTreeSet;

/// The placeholders a template may use (SPEC §2), as written.
pub const PLACEHOLDERS: [&str; 3] = ["{tenant_id}", "{work_order_id}", "{run}"];

/// IDs are `[A-Za-z0-9_-]`, 1–64 characters (SPEC §2).
const MAX_ID_LEN: usize = 64;
/// `u64::MAX` has 20 digits.
const MAX_RUN_DIGITS: usize = 20;

/// One run of one work order: what a release of artifacts belongs to. The only input to the
/// tag a delivery or the publisher writes to: nobody passes a tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReleaseOwner {
    pub tenant_id: String,
    pub work_order_id: String,
    pub run: u64,
}

impl ReleaseOwner {
    pub fn new(tenant_id: &str, work_order_id: &str, run: u64) -> Self {
        ReleaseOwner {
            tenant_id: tenant_id.to_string(),
            work_order_id: work_order_id.to_string(),
            run,
        }
    }

    /// `tenant/work_order/run`, as release bodies and messages name it.
    pub fn describe(&self) -> String {
        format!("{}/{}/{}", self.tenant_id, self.work_order_id, self.run)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    TenantId,
    WorkOrderId,
    Run,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Slot(Slot),
}

/// A parsed `release_tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTemplate {
    parts: Vec<Part>,
}

impl TagTemplate {
    /// Split a template into text and placeholders; an unknown `{name}` is an error naming it.
    pub fn parse(template: &str) -> Result<Self> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let Some(len) = rest[start..].find('}') else {
                // An unclosed brace is text; the tag alphabet check refuses it.
                parts.push(Part::Text(rest[start..].to_string()));
                rest = "";
                break;
            };
            let slot = match &rest[start..=start + len] {
                "{tenant_id}" => Slot::TenantId,
                "{work_order_id}" => Slot::WorkOrderId,
                "{run}" => Slot::Run,
                other => {
                    return Err(Error::input(format!(
                        "github.release_tag '{template}' uses unknown placeholder '{other}'; available: {}",
                        PLACEHOLDERS.join(" ")
                    )))
                }
            };
            parts.push(Part::Slot(slot));
            rest = &rest[start + len + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(TagTemplate { parts })
    }

    pub fn uses_tenant_id(&self) -> bool {
        self.parts.contains(&Part::Slot(Slot::TenantId))
    }

    /// The template with every placeholder replaced by `x`: what the tag alphabet check sees.
    pub fn probe(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
                Part::Slot(_) => "x",
            })
            .collect()
    }

    pub fn render(&self, owner: &ReleaseOwner) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Slot(Slot::TenantId) => out.push_str(&owner.tenant_id),
                Part::Slot(Slot::WorkOrderId) => out.push_str(&owner.work_order_id),
                Part::Slot(Slot::Run) => out.push_str(&owner.run.to_string()),
            }
        }
        out
    }

    /// Whether some valid tenant id, work order id and run would render `tag`, comparing
    /// ASCII case-insensitively (GitHub treats tags that differ only in case as one).
    /// Tracks every position the parts read so far can end at, so adjacent placeholders
    /// cost a table, not a search.
    pub fn could_render(&self, tag: &str) -> bool {
        let tag = tag.as_bytes();
        let mut ends: BTreeSet<usize> = BTreeSet::from([0]);
        for part in &self.parts {
            let mut next = BTreeSet::new();
            for &at in &ends {
                next.extend(part_ends(part, tag, at));
            }
            if next.is_empty() {
                return false;
            }
            ends = next;
        }
        ends.contains(&tag.len())
    }
}

/// Where `part` can end when it starts at `at` in `tag`.
fn part_ends(part: &Part, tag: &[u8], at: usize) -> Vec<usize> {
    let rest = &tag[at..];
    match part {
        Part::Text(t) => {
            let t = t.as_bytes();
            if rest.len() >= t.len() && rest[..t.len()].eq_ignore_ascii_case(t) {
                vec![at + t.len()]
            } else {
                Vec::new()
            }
        }
        Part::Slot(Slot::TenantId | Slot::WorkOrderId) => {
            let n = rest
                .iter()
                .take(MAX_ID_LEN)
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'-')
                .count();
            (1..=n).map(|k| at + k).collect()
        }
        Part::Slot(Slot::Run) => {
            // Runs start at 1 and are written without leading zeros.
            if !rest.first().is_some_and(|b| (b'1'..=b'9').contains(b)) {
                return Vec::new();
            }
            let n = rest
                .iter()
                .take(MAX_RUN_DIGITS)
                .take_while(|b| b.is_ascii_digit())
                .count();
            (1..=n).map(|k| at + k).collect()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(s: &str) -> TagTemplate {
        TagTemplate::parse(s).unwrap()
    }

    #[test]
    fn renders_every_placeholder() {
        let owner = ReleaseOwner::new("acme", "wo-7", 12);
        assert_eq!(
            t("artifacts-{tenant_id}-{work_order_id}-r{run}").render(&owner),
            "artifacts-acme-wo-7-r12"
        );
        assert_eq!(t("plain").render(&owner), "plain");
    }

    #[test]
    fn unknown_placeholders_are_named() {
        let err = TagTemplate::parse("a-{tenant}-{run}").unwrap_err();
        assert!(
            err.message.contains("unknown placeholder '{tenant}'"),
            "{err}"
        );
        assert!(err.message.starts_with("github.release_tag"), "{err}");
    }

    #[test]
    fn could_render_finds_every_way_a_run_can_hit_a_tag() {
        let default = t("artifacts-{tenant_id}-{work_order_id}-r{run}");
        assert!(default.could_render("artifacts-a-b-r1"));
        assert!(
            default.could_render("ARTIFACTS-a-b-c-r10"),
            "case and '-' inside ids"
        );
        assert!(!default.could_render("billing-state-v1"));
        assert!(!default.could_render("artifacts-a-b-r0"), "runs start at 1");
        assert!(!default.could_render("artifacts-a-b-r"));
        assert!(t("{tenant_id}").could_render("billing-state-v1"));
        assert!(t("billing-{tenant_id}").could_render("Billing-State-v1"));
        assert!(!t("{tenant_id}.{run}").could_render("billing-state-v1"));
        assert!(
            !t("{tenant_id}").could_render(&"a".repeat(65)),
            "ids are at most 64"
        );
        assert!(t("{tenant_id}{work_order_id}").could_render(&"a".repeat(128)));
        assert!(!t("{tenant_id}").could_render(""));
    }

    #[test]
    fn knows_whether_the_tenant_is_in_the_tag() {
        assert!(t("x-{tenant_id}").uses_tenant_id());
        assert!(!t("x-{work_order_id}-{run}").uses_tenant_id());
        assert_eq!(t("a-{tenant_id}-{run}").probe(), "a-x-x");
    }
}
