//! The credits gate under concurrency (SPEC §8): a run's uncharged total is held against its tenant's balance while the run is in flight, so runs at the same time never promise the same credits twice, and charges never wait for a hold.
use super::journal::{Charged, Journal};
use crate::error::Result;
use crate::records::Payload;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// Credits held per tenant for the runs in flight.
#[derive(Default)]
pub struct Holds {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Promised to runs in flight and not posted yet.
    held: BTreeMap<String, i64>,
    /// SPEND batches being posted: tenant, the key of the batch's first SPEND (a batch is
    /// recorded whole or not at all), credits. A hold counts one until the ledger records
    /// its key, and from then on finds it in the balance instead: never both, never neither.
    posting: Vec<(String, String, i64)>,
}

impl State {
    /// What a new run of `tenant` may hold: the balance less what runs in flight hold and
    /// the SPENDs being posted that the ledger has not recorded yet (`recorded` says which
    /// it has: those are in `balance` already).
    fn available(&self, tenant: &str, balance: i64, recorded: &dyn Fn(&str) -> bool) -> i64 {
        let posting = self
            .posting
            .iter()
            .filter(|(t, key, _)| t == tenant && !recorded(key))
            .fold(0i64, |sum, (_, _, credits)| sum.saturating_add(*credits));
        let held = self.held.get(tenant).copied().unwrap_or(0);
        balance.saturating_sub(held.saturating_add(posting))
    }
}

/// One run's hold: what it may still charge. Released in full when the run ends, however
/// it ends.
pub struct Hold<'a> {
    holds: &'a Holds,
    tenant: String,
    left: i64,
}

impl Holds {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hold `amount` for a run of `tenant`: Err(available) when the tenant's balance less
    /// what runs in flight hold or are posting does not cover it (nothing held then).
    /// Charges in flight go on meanwhile: the balance and the SPEND keys are read while no
    /// group is being written, so each charge is counted exactly once.
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
        let decided = journal.reserve(tenant, |balance, recorded| {
            let mut st = self.state();
            let available = st.available(tenant, balance, recorded);
            if amount > available {
                return Err(available);
            }
            let held = st.held.entry(tenant.to_string()).or_default();
            *held = held.saturating_add(amount);
            Ok(())
        })?;
        Ok(decided.map(|()| {
            hold.left = amount;
            hold
        }))
    }
}

impl Hold<'_> {
    /// Post a step's SPEND batch worth `amount` (and `then` once it is accepted:
    /// [`Journal::charge`]); that share is no longer held either way.
    pub fn charge(
        &mut self,
        journal: &Journal,
        spends: Vec<Payload>,
        then: Vec<Payload>,
        amount: i64,
    ) -> Result<Charged> {
        let key = spends
            .first()
            .map(|p| p.idempotency_key.clone())
            .unwrap_or_default();
        let share = amount.clamp(0, self.left);
        {
            // From held to posting at once: a hold meanwhile counts it once.
            let mut st = self.holds.state();
            self.left -= share;
            if let Some(h) = st.held.get_mut(&self.tenant) {
                *h = h.saturating_sub(share);
            }
            st.posting
                .push((self.tenant.clone(), key.clone(), amount.max(0)));
        }
        let charged = journal.charge(spends, then);
        // Answered: recorded (the balance carries it), refused or failed (never charged).
        let mut st = self.holds.state();
        if let Some(i) = st
            .posting
            .iter()
            .position(|(t, k, _)| *t == self.tenant && *k == key)
        {
            st.posting.swap_remove(i);
        }
        drop(st);
        charged
    }

    /// A step's share that will not be charged (skipped, refused before charging).
    pub fn release(&mut self, amount: i64) {
        let amount = amount.clamp(0, self.left);
        if amount == 0 {
            return;
        }
        self.left -= amount;
        let mut st = self.holds.state();
        if let Some(h) = st.held.get_mut(&self.tenant) {
            *h = h.saturating_sub(amount);
        }
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.release(self.left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_being_posted_counts_once_before_and_after_the_ledger_records_it() {
        let mut st = State::default();
        st.held.insert("t1".into(), 4);
        st.posting.push(("t1".into(), "spend/a".into(), 3));
        st.posting.push(("t2".into(), "spend/b".into(), 100));
        // Not recorded yet: the balance does not carry it, the posting list does.
        assert_eq!(st.available("t1", 20, &|_| false), 20 - 4 - 3);
        // Recorded: the balance (3 lower) carries it, the posting list no longer counts it.
        assert_eq!(st.available("t1", 17, &|k| k == "spend/a"), 17 - 4);
        // Another tenant's charges and holds never count.
        assert_eq!(st.available("t3", 5, &|_| false), 5);
    }
}
