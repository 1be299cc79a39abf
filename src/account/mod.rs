//! A tenant's credit account as commands see it: the balance and the statement (read from a ledger that passes every check) and the operator's privileged writes (top-up, adjustment).
pub mod adjust;
mod post;
pub mod statement;
pub mod topup;

pub use adjust::{adjust, AdjustOutcome, AdjustRequest};
pub use post::{Booked, Posted};
pub use statement::{statement, Row, Statement};
pub use topup::{topup, TopupOutcome, TopupRequest, TopupStatus};

use crate::error::Result;
use crate::ledger::{self, Reading};
use serde::Serialize;
use std::path::Path;

/// A tenant's balance (the `--json` document of `platform balance`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balance {
    pub tenant_id: String,
    pub balance_credits: i64,
    /// What a writer would repair (readers never do): shown as notes.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// The balance of `tenant_id` in the billing-state directory `dir`, from a ledger
/// that passes every check of integrity-validate (reads only, no lock).
/// A tenant id that is neither a folder of `repo`'s tenants/ nor in the ledger is an input
/// error ([`crate::known_ids::require_known`]).
pub fn balance(repo: &Path, dir: &Path, tenant_id: &str) -> Result<Balance> {
    check_tenant_id(tenant_id)?;
    let reading = verified(dir, &[], |_| Ok(()))?;
    crate::known_ids::require_known(repo, tenant_id, reading.balances.keys().map(String::as_str))?;
    Ok(Balance {
        tenant_id: tenant_id.to_string(),
        balance_credits: reading.balances.get(tenant_id).copied().unwrap_or(0),
        notes: reading.notes(),
    })
}

pub use crate::known_ids::check_tenant_id;

/// A whole-directory read of an existing `dir` (a missing one is an input error, not a
/// silent zero) that refuses a privileged record without its audit record: a reader that
/// prints credit figures shows none that might come from a forged top-up.
fn verified(
    dir: &Path,
    streams: &[ledger::Stream],
    f: impl FnMut(ledger::LedgerLine<'_>) -> Result<()>,
) -> Result<Reading> {
    crate::dirs::existing(dir)?;
    ledger::read(dir, streams, f)?.refuse_unaudited(dir)
}
