//! The credits gate under concurrency (SPEC §8): a run's uncharged total is held against its tenant's balance while the run is in flight, so runs at the same time never promise the same credits twice.
use super::journal::{Charged, Journal};
use crate::error::Result;
use crate::records::Payload;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError, RwLock};

/// Credits held per tenant for the runs in flight.
#[derive(Default)]
pub struct Holds {
    /// Charges take it shared, a new hold alone: a hold never reads a balance that a charge
    /// has lowered while that charge's share is still held (counted twice).
    gate: RwLock<()>,
    held: Mutex<BTreeMap<String, i64>>,
}

/// One run's hold: what it may still charge. Released in full when the run ends, however
/// it ends.
pub struct Hold<'a> {
    holds: &'a Holds,
    tenant: String,
    left: i64,
}

impl Holds {
    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, i64>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hold `amount` for a run of `tenant`: Err(available) when the tenant's balance less
    /// what runs in flight hold does not cover it (nothing held then).
    pub fn hold<'a>(
        &'a self,
        journal: &Journal,
        tenant: &str,
        amount: i64,
    ) -> Result<std::result::Result<Hold<'a>, i64>> {
        let mut hold = Hold {
            holds: self,
            tenant: tenant.to_string(),
            left: 0,
        };
        if amount <= 0 {
            return Ok(Ok(hold));
        }
        let _alone = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        let balance = journal.balance(tenant)?;
        let mut held = self.held();
        let others = held.get(tenant).copied().unwrap_or(0);
        let available = balance.saturating_sub(others);
        if amount > available {
            return Ok(Err(available));
        }
        held.insert(tenant.to_string(), others.saturating_add(amount));
        hold.left = amount;
        Ok(Ok(hold))
    }
}

impl Hold<'_> {
    /// Post a step's SPEND batch worth `amount`; that share is no longer held either way.
    pub fn charge(
        &mut self,
        journal: &Journal,
        spends: Vec<Payload>,
        amount: i64,
    ) -> Result<Charged> {
        let _shared = self
            .holds
            .gate
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let charged = journal.charge(spends);
        // Posted: the balance carries it now. Refused or failed: it will not be charged.
        self.release(amount);
        charged
    }

    /// A step's share that will not be charged (skipped, refused before charging).
    pub fn release(&mut self, amount: i64) {
        let amount = amount.clamp(0, self.left);
        if amount == 0 {
            return;
        }
        self.left -= amount;
        let mut held = self.holds.held();
        if let Some(h) = held.get_mut(&self.tenant) {
            *h = h.saturating_sub(amount);
        }
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.release(self.left);
    }
}
