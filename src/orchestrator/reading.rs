//! What a pass plans from: the ledger's history, run totals and balances, from the derived ledger cache when it vouches for them (only records appended since are verified) or from a whole read.
use super::journal::refusal;
use crate::cache::ledger::{Renewal, Seed};
use crate::cache::LedgerUse;
use crate::error::Result;
use crate::runs::{Balances, History, RunTotals};
use std::path::Path;

pub struct LedgerView {
    pub history: History,
    pub totals: RunTotals,
    pub balances: Balances,
    /// The history holds each work order's last run alone (from the cache): good for finding
    /// work orders up to date, nothing else.
    pub compact: bool,
    pub used: LedgerUse,
    renewal: Renewal,
    /// What the cache holds (found, or written by this read), for the pass's writer to renew
    /// it from.
    pub seed: Option<Seed>,
}

impl LedgerView {
    /// From the cache when it can be used, else from a whole read (which writes the cache
    /// anew unless `dry_run`).
    pub fn read(runtime_dir: &Path, state_dir: &Path, dry_run: bool) -> Result<LedgerView> {
        if !state_dir.exists() {
            return Ok(LedgerView::empty());
        }
        match crate::cache::ledger::quick(runtime_dir, state_dir) {
            Ok(q) => Ok(LedgerView {
                history: q.history,
                totals: RunTotals::new(),
                balances: q.balances,
                compact: true,
                used: q.used,
                renewal: q.renewal,
                seed: q.seed,
            }),
            Err(reason) => LedgerView::whole(runtime_dir, state_dir, !dry_run, reason),
        }
    }

    /// Every record read, as `integrity-validate` checks them: each work order's last run
    /// (compact) when no run is open, else every history.
    pub fn whole(
        runtime_dir: &Path,
        state_dir: &Path,
        save: bool,
        reason: String,
    ) -> Result<LedgerView> {
        let (compact, balances) =
            crate::cache::ledger::load_and_save(runtime_dir, state_dir, save).map_err(refusal)?;
        let used = LedgerUse::Full { reason };
        let Some((history, seed)) = compact else {
            let (history, totals, balances) = crate::runs::load(state_dir).map_err(refusal)?;
            return Ok(LedgerView {
                history,
                totals,
                balances,
                compact: false,
                used,
                renewal: Renewal::default(),
                seed: None,
            });
        };
        Ok(LedgerView {
            history,
            totals: RunTotals::new(),
            balances,
            compact: true,
            used,
            renewal: Renewal::default(),
            seed,
        })
    }

    /// The whole histories (and run totals) of the work orders `wanted` picks, read again;
    /// the others keep their last run, which found them up to date. Whether what the planner
    /// reads of the wanted ones may have changed: false when none of them has a run either
    /// way (new work orders: a first pass), their rerun requests and the balances are the
    /// same, so the plan made from the compact view stands.
    pub fn widen(&mut self, state_dir: &Path, wanted: &dyn Fn(&str, &str) -> bool) -> Result<bool> {
        let (mut history, totals, balances) =
            crate::runs::load_only(state_dir, wanted).map_err(refusal)?;
        let picked = |(k, _): &(&(String, String), _)| wanted(&k.0, &k.1);
        let same_reruns =
            (history.reruns.iter().filter(picked)).eq(self.history.reruns.iter().filter(picked));
        let runs_now = history.work_orders.values().any(|r| !r.is_empty());
        let runs_before =
            (self.history.work_orders.iter()).any(|(k, r)| wanted(&k.0, &k.1) && !r.is_empty());
        let changed = balances != self.balances || !same_reruns || runs_now || runs_before;
        for ((tenant, wo), runs) in std::mem::take(&mut self.history.work_orders) {
            if !wanted(&tenant, &wo) {
                history.work_orders.insert((tenant, wo), runs);
            }
        }
        *self = LedgerView {
            history,
            totals,
            balances,
            compact: false,
            used: std::mem::take(&mut self.used),
            renewal: std::mem::take(&mut self.renewal),
            seed: self.seed.take(),
        };
        Ok(changed)
    }

    fn empty() -> LedgerView {
        LedgerView {
            history: History::default(),
            totals: RunTotals::new(),
            balances: Balances::new(),
            compact: false,
            used: LedgerUse::None,
            renewal: Renewal::default(),
            seed: None,
        }
    }

    /// Keep in the cache what this read verified beyond it (records appended since).
    pub fn save(&mut self, runtime_dir: &Path) {
        std::mem::take(&mut self.renewal).save(runtime_dir);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ledger::{Ledger, Stream};
    use crate::records::evidence::RunStarted;
    use crate::records::{Payload, Topup};

    fn started(wo: &str) -> Payload {
        Payload::new(RunStarted {
            tenant_id: "t".into(),
            work_order_id: wo.into(),
            run: 1,
            run_id: format!("run-{wo}"),
            work_order_sha256: "0".repeat(64),
            correlation_id: format!("run-{wo}"),
            period: None,
            rerun: None,
        })
    }

    #[test]
    fn widening_says_whether_the_plan_made_from_the_compact_view_may_have_changed() {
        let state = tempfile::tempdir().unwrap();
        let runtime = tempfile::tempdir().unwrap();
        let (mut ledger, _) = Ledger::open(state.path()).unwrap();
        let topup = Topup::new("t", 9, "manual", "r1", None, "tester");
        ledger
            .append(Stream::Billing, vec![Payload::new(topup)])
            .unwrap();
        ledger
            .append(Stream::Evidence, vec![started("ran")])
            .unwrap();
        drop(ledger);
        let view = || LedgerView::whole(runtime.path(), state.path(), false, "test".into());
        // New work orders: no run either way, the same balances.
        let mut v = view().unwrap();
        assert!(!v.widen(state.path(), &|_, w| w == "new").unwrap());
        assert_eq!(v.balances.get("t"), Some(&9));
        // One with a run: its whole history may say more than its last run did.
        let mut v = view().unwrap();
        assert!(v.widen(state.path(), &|_, w| w == "ran").unwrap());
        // The balances changed since the view was read (another process topped up).
        let mut v = view().unwrap();
        let (mut ledger, _) = Ledger::open(state.path()).unwrap();
        let more = Topup::new("t", 1, "manual", "r2", None, "tester");
        ledger
            .append(Stream::Billing, vec![Payload::new(more)])
            .unwrap();
        drop(ledger);
        assert!(v.widen(state.path(), &|_, w| w == "new").unwrap());
        assert_eq!(v.balances.get("t"), Some(&10));
    }
}
