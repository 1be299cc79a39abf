//! After a pass, the tenants to top up (SPEC §10): below their `low_balance_credits`, or with a run refused for credits.
use super::plan::Filter;
use super::report::RunReport;
use crate::contract::Failure;
use crate::repo::Repo;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Why a tenant is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LowReason {
    BelowThreshold,
    /// A run of this pass was refused (or a step failed) `not_enough_credits`, or the ledger
    /// refused a run's metered usage for credits (the pass stopped on it); it wins over
    /// `below_threshold` when both hold, as the more urgent of the two.
    RefusedForCredits,
}

impl LowReason {
    /// Its wire name (as in `--json`).
    pub fn as_str(self) -> &'static str {
        match self {
            LowReason::BelowThreshold => "below_threshold",
            LowReason::RefusedForCredits => "refused_for_credits",
        }
    }
}

/// A tenant listed under `low_balance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LowBalance {
    pub tenant_id: String,
    /// Its balance after the pass, as the ledger holds it.
    pub balance_credits: i64,
    /// Its `low_balance_credits`; None when it sets none.
    pub threshold: Option<i64>,
    pub reason: LowReason,
}

/// The balances a pass leaves — `now`, the ledger's after the pass, when it was read; else
/// `before` it, less what its runs charged, plus what they refunded (which misses what other
/// processes posted meanwhile) — and the tenants with a run refused, a step failed, or a run
/// stopped (its metered usage refused) for credits.
pub fn after_pass(
    now: Option<BTreeMap<String, i64>>,
    before: &BTreeMap<String, i64>,
    runs: &[RunReport],
) -> (BTreeMap<String, i64>, BTreeSet<String>) {
    let known = now.is_some();
    let mut after = now.unwrap_or_else(|| before.clone());
    let mut refused = BTreeSet::new();
    for r in runs {
        if !known {
            let b = after.entry(r.tenant_id.clone()).or_insert(0);
            *b = b
                .saturating_sub(r.charged_credits)
                .saturating_add(r.refunded_credits);
        }
        let for_credits = r.stopped_for_credits
            || r.steps
                .iter()
                .any(|s| s.reason_slug.as_deref() == Some(Failure::NotEnoughCredits.slug()));
        if for_credits {
            refused.insert(r.tenant_id.clone());
        }
    }
    (after, refused)
}

/// The tenants of the pass's scope to list, in tenant order: one entry per tenant.
pub fn low_balance(
    repo: &Repo,
    filter: &Filter,
    balances: &BTreeMap<String, i64>,
    refused: &BTreeSet<String>,
) -> Vec<LowBalance> {
    repo.tenants
        .values()
        .filter(|t| filter.covers_tenant(&t.tenant_id))
        .filter_map(|t| {
            let id = t.tenant_id.as_str();
            let balance = balances.get(id).copied().unwrap_or(0);
            let threshold = t.settings.low_balance_credits;
            let reason = if refused.contains(id) {
                LowReason::RefusedForCredits
            } else if threshold.is_some_and(|th| balance < th) {
                LowReason::BelowThreshold
            } else {
                return None;
            };
            Some(LowBalance {
                tenant_id: id.to_string(),
                balance_credits: balance,
                threshold,
                reason,
            })
        })
        .collect()
}

/// The text summary's lines: one per tenant listed.
pub fn text(list: &[LowBalance]) -> String {
    list.iter()
        .map(|l| {
            let why = match (l.reason, l.threshold) {
                (LowReason::RefusedForCredits, _) => "a run was refused for credits".to_string(),
                (LowReason::BelowThreshold, Some(th)) => format!("below its threshold of {th}"),
                (LowReason::BelowThreshold, None) => "below its threshold".to_string(),
            };
            format!(
                "low balance: {} has {} credits ({why}); top up with platform admin-topup\n",
                l.tenant_id, l.balance_credits
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_print_as_their_wire_names() {
        for r in [LowReason::BelowThreshold, LowReason::RefusedForCredits] {
            assert_eq!(
                serde_json::to_value(r).ok(),
                Some(serde_json::json!(r.as_str()))
            );
        }
    }
}
