//! What a pass plans from: the ledger's history, run totals and balances, from the derived ledger cache when it vouches for them (only records appended since are verified) or from a whole read.
use crate::cache::ledger::Renewal;
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
            }),
            Err(reason) => LedgerView::whole(runtime_dir, state_dir, !dry_run, reason),
        }
    }

    /// Every record read, as `integrity-validate` checks them.
    pub fn whole(
        runtime_dir: &Path,
        state_dir: &Path,
        save: bool,
        reason: String,
    ) -> Result<LedgerView> {
        if !state_dir.exists() {
            return Ok(LedgerView::empty());
        }
        let (history, totals, balances) =
            crate::cache::ledger::load_and_save(runtime_dir, state_dir, save)
                .map_err(super::journal::refusal)?;
        Ok(LedgerView {
            history,
            totals,
            balances,
            compact: false,
            used: LedgerUse::Full { reason },
            renewal: Renewal::default(),
        })
    }

    fn empty() -> LedgerView {
        LedgerView {
            history: History::default(),
            totals: RunTotals::new(),
            balances: Balances::new(),
            compact: false,
            used: LedgerUse::None,
            renewal: Renewal::default(),
        }
    }

    /// Keep in the cache what this read verified beyond it (records appended since).
    pub fn save(&mut self, runtime_dir: &Path) {
        std::mem::take(&mut self.renewal).save(runtime_dir);
    }
}
