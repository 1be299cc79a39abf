//! The planner's credits gate (SPEC §4): every tenant's closings first, then each run against what the runs before it leave, and the balance each tenant is left with.
use super::model::{Action, CloseRun, PlanInput, Refusal, TenantBalance, WorkOrderPlan};
use std::collections::BTreeMap;

impl CloseRun {
    /// The balance this closing leaves from `balance`, posted as close.rs posts it, step by
    /// step: Err when a step's owed usage is more than the balance then, where the closing
    /// stops (what it posted before that stays).
    pub(super) fn settle(&self, balance: i64) -> Result<i64, i64> {
        let mut b = balance;
        for &(usage, refund) in &self.steps {
            if usage > b {
                return Err(b);
            }
            b = b.saturating_sub(usage).saturating_add(refund);
        }
        Ok(b)
    }
}

/// The credits gate (SPEC §4) over the whole plan, tenant by tenant in plan order, and the
/// balance each tenant is left with. A pass closes every superseded run before any run
/// starts (`workers::close_all`), so each tenant's balance is first what its closings leave
/// (their refunds, less the owed usage they charge); each run is then gated against what
/// the runs before it leave, counted as charged in full with usage at its reserve and none
/// refunded. Until 2026-12-04 only a work order's own closings counted, for its own gate:
/// "balance after", the gates of the tenant's other work orders and the low-balance notice
/// of `--dry-run` left them out.
pub(super) fn gate(input: &PlanInput, plans: &mut [WorkOrderPlan]) -> Vec<TenantBalance> {
    let mut running: BTreeMap<String, i64> = BTreeMap::new();
    for wp in plans.iter() {
        let b = running
            .entry(wp.tenant_id.clone())
            .or_insert_with(|| input.balances.get(&wp.tenant_id).copied().unwrap_or(0));
        for c in &wp.close {
            match c.settle(*b) {
                Ok(after) => *b = after,
                // The closing stops there, and nothing more of its work order is closed.
                Err(after) => {
                    *b = after;
                    break;
                }
            }
        }
    }
    for wp in plans.iter_mut() {
        if let Some(b) = running.get_mut(&wp.tenant_id) {
            gate_run(wp, b);
        }
    }
    running
        .into_iter()
        .map(|(t, after)| TenantBalance {
            balance_before: input.balances.get(&t).copied().unwrap_or(0),
            tenant_id: t,
            balance_after: after,
        })
        .collect()
}

/// Gate one planned run, and the run that follows it, against `balance`, which is left less
/// what they will newly charge unless refused (this keeps it ≥ 0). A refused run is not
/// followed by another.
fn gate_run(wp: &mut WorkOrderPlan, balance: &mut i64) {
    if !matches!(wp.action, Action::Start | Action::Resume | Action::Retry) || wp.refused.is_some()
    {
        return;
    }
    let needed = wp.new_charges.saturating_add(wp.usage_reserve);
    if needed > *balance {
        wp.refused = Some(Refusal::NotEnoughCredits {
            balance: *balance,
            needed,
        });
        wp.then = None;
        return;
    }
    *balance = balance.saturating_sub(needed);
    if let Some(then) = wp.then.as_deref_mut() {
        gate_run(then, balance);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closing_is_counted_step_by_step_up_to_where_it_stops() {
        let close = CloseRun {
            run: 1,
            run_id: "r".into(),
            refund_credits: 8,
            usage_credits: 20,
            steps: vec![(0, 5), (20, 0), (0, 3)],
        };
        // The refund of the first step comes before the usage of the second.
        assert_eq!(close.settle(15), Ok(3));
        // 10 + 5 does not cover 20: the closing stops after the first step's refund.
        assert_eq!(close.settle(10), Err(15));
    }
}
