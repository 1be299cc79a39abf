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
    /// the others keep their last run, which found them up to date.
    pub fn widen(&mut self, state_dir: &Path, wanted: &dyn Fn(&str, &str) -> bool) -> Result<()> {
        let (mut history, totals, balances) =
            crate::runs::load_only(state_dir, wanted).map_err(refusal)?;
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
        Ok(())
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
