//! The orchestrator's side of the ledger: plans only from a ledger that passes every check (`reading::LedgerView`, or a refusal that says nothing was charged), posts batches from any worker (group commit), keeps per-run credit totals current, folds the run records it posts for the ledger cache (`Journal::finish`), and collects every repair for the pass's notes.
use crate::cache::ledger::Seed;
use crate::error::Result;
use crate::ledger::{Ledger, Refusal, SharedLedger, Ticket};
use crate::records::{Payload, Record, Stream};
use crate::runs::last::{LastRuns, Touch};
use crate::runs::load::Balances;
use crate::runs::{add_to_run, RunTotals};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How old a read of other processes' records may be when a credits gate asks a balance.
/// The gate only holds credits for a run; the ledger checks each SPEND itself, under its
/// lock, after catching billing.jsonl up (which every group that writes it does). Reading
/// the three files again for each work order held the gate, and so every charge, for a lock
/// cycle and three `stat`s.
const REFRESH_EVERY: Duration = Duration::from_millis(50);

pub struct Journal {
    ledger: SharedLedger,
    totals: Mutex<RunTotals>,
    /// Repairs made while the pass runs (a torn tail or a missing audit record left by
    /// another process), as notes for the summary.
    notes: Mutex<Vec<String>>,
    /// When [`Journal::reserve`] last caught up with other processes.
    refreshed: Mutex<Option<Instant>>,
    /// Each work order's runs as the ledger cache held them when the writer opened, with
    /// every run record posted since folded in once durable: the cache at the end of the
    /// pass is written from it and the writer's indexes (`Journal::finish`). None when the
    /// writer opened on other heads than the cache's.
    written: Option<Mutex<LastRuns>>,
    /// Batches queued ahead and not settled yet (one dropped unsettled leaves the fold
    /// unsure, and the cache is then renewed by a whole read).
    unsettled: AtomicUsize,
}

/// A batch queued by [`Journal::post_ahead`], to [`Journal::settle`].
#[derive(Debug)]
pub struct Ahead {
    ticket: Ticket,
    touches: Vec<Touch<String>>,
}

/// How a step's SPEND batch was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charged {
    /// Durable (or recorded already).
    Posted,
    /// The ledger refused it: the tenant's balance does not cover it (another process
    /// debited the tenant meanwhile). Nothing was written.
    NotEnoughCredits(String),
}

/// A ledger the orchestrator will not plan on (`reading::LedgerView`): the error, saying
/// nothing was charged.
pub fn refusal(e: crate::Error) -> crate::Error {
    e.help("the orchestrator plans only on a ledger that `platform integrity-validate` accepts, so nothing was charged: restore the damaged file from a good copy (platform state pull), then run again")
}

fn repair_note(r: &crate::ledger::Repair) -> String {
    format!("repaired: {r}")
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Journal {
    /// Open the ledger for writing (repairing a torn tail or a missing audit record, each
    /// reported).
    /// `seed`: what the pass read of the ledger cache (kept when the writer opens on the
    /// same heads).
    pub fn open(
        dir: &Path,
        totals: RunTotals,
        seed: Option<Seed>,
    ) -> Result<(Journal, Vec<String>)> {
        let (ledger, repairs) = Ledger::open(dir)?;
        let notes = repairs.iter().map(repair_note).collect();
        let heads = Stream::ALL.map(|s| ledger.head(s));
        let written = seed
            .filter(|s| repairs.is_empty() && s.is_at(&heads))
            .map(|s| Mutex::new(LastRuns::seeded(&s.last_runs)));
        let journal = Journal {
            ledger: SharedLedger::new(ledger),
            totals: Mutex::new(totals),
            notes: Mutex::new(Vec::new()),
            refreshed: Mutex::new(None),
            written,
            unsettled: AtomicUsize::new(0),
        };
        Ok((journal, notes))
    }

    /// What the run records of `batch` tell the fold (nothing when there is none).
    fn touches(&self, batch: &[Payload]) -> Vec<Touch<String>> {
        if self.written.is_none() {
            return Vec::new();
        }
        batch
            .iter()
            .filter_map(|p| Touch::of(&p.record))
            .map(|t| t.owned())
            .collect()
    }

    /// Fold in the run records of a batch now in the ledger.
    fn fold(&self, touches: &[Touch<String>]) {
        if let (Some(w), false) = (&self.written, touches.is_empty()) {
            let mut last = locked(w);
            for t in touches {
                last.apply(t);
            }
        }
    }

    /// Once every worker is done: write the ledger cache from the writer's indexes and the
    /// fold, when the writer appended everything since the cache's read and every batch was
    /// answered; the balances it holds then (the ledger's, no other process having written
    /// since). None when it could not (the caller renews the cache by a whole read).
    pub fn finish(self, runtime_dir: &Path, state_dir: &Path) -> Option<Balances> {
        let written = self.written?;
        if self.unsettled.load(Ordering::SeqCst) != 0 {
            return None;
        }
        let last = written.into_inner().unwrap_or_else(PoisonError::into_inner);
        let Ok(Some((marks, balances))) = self.ledger.with(|l| l.close_to_marks()) else {
            return None;
        };
        crate::cache::ledger::save_written(runtime_dir, state_dir, marks, balances.clone(), &last);
        Some(balances)
    }

    /// The repairs made since the journal was opened (appends and refreshes catch up with
    /// other processes, and remove what a crashed one left), once each.
    pub fn take_notes(&self) -> Vec<String> {
        let mut notes = std::mem::take(&mut *locked(&self.notes));
        notes.extend(self.ledger.take_repairs().iter().map(repair_note));
        notes
    }

    /// `workers` threads will post (each says [`Journal::worker_done`] when it ends).
    pub fn expect_workers(&self, workers: usize) {
        self.ledger.expect_workers(workers);
    }

    /// Commit the workers' batches from this thread until [`Journal::stop_serving`].
    pub fn serve(&self) {
        self.ledger.serve();
    }

    /// A worker thread that posts nothing more.
    pub fn worker_done(&self) {
        self.ledger.worker_done();
    }

    /// End [`Journal::serve`] once what is queued is committed.
    pub fn stop_serving(&self) {
        self.ledger.stop_serving();
    }

    /// Post one batch (all records of one stream), durably, idempotently.
    pub fn post(&self, batch: Vec<Payload>) -> Result<()> {
        self.submit(batch).map_err(Refusal::into_error)
    }

    /// Queue a batch of records that hold no credits (a run's `run_started`, a step's
    /// outcome) without waiting for it: the run's next records, posted after it, are written
    /// in the same group or a later one, so it is durable first either way, and the worker
    /// does not wait for a flush of its own. [`Journal::settle`] collects the answer.
    pub fn post_ahead(&self, batch: Vec<Payload>) -> Result<Option<Ahead>> {
        let Some(first) = batch.first() else {
            return Ok(None);
        };
        // Credits are counted in the run's totals when their batch is answered (`submit`).
        if batch
            .iter()
            .any(|p| matches!(p.record, Record::Spend(_) | Record::Refund(_)))
        {
            return Err(crate::Error::failure(
                "SPEND and REFUND batches are posted and waited for, never queued ahead",
            ));
        }
        let stream = first.record.stream();
        let touches = self.touches(&batch);
        let ticket = self
            .ledger
            .enqueue(stream, None, batch)
            .map_err(Refusal::into_error)?;
        self.unsettled.fetch_add(1, Ordering::SeqCst);
        Ok(Some(Ahead { ticket, touches }))
    }

    /// The answer to a batch queued by [`Journal::post_ahead`] (waiting for it if need be).
    pub fn settle(&self, ahead: Ahead) -> Result<()> {
        let answer = self.ledger.wait(ahead.ticket);
        self.unsettled.fetch_sub(1, Ordering::SeqCst);
        let outcome = answer.map_err(Refusal::into_error)?;
        self.fold(&ahead.touches);
        locked(&self.notes).extend(outcome.repairs.iter().map(repair_note));
        Ok(())
    }

    /// Post a step's SPEND batch and, once it is durable and accepted, `then` (its
    /// step_started; nothing when refused): a refusal for credits is an answer, not an
    /// error.
    pub fn charge(&self, spends: Vec<Payload>, then: Vec<Payload>) -> Result<Charged> {
        match self.submit_then(spends, then) {
            Ok(()) => Ok(Charged::Posted),
            Err(Refusal::NotEnoughCredits(e)) => Ok(Charged::NotEnoughCredits(e.message)),
            Err(other) => Err(other.into_error()),
        }
    }

    fn submit(&self, batch: Vec<Payload>) -> Result<(), Refusal> {
        self.submit_then(batch, Vec::new())
    }

    /// Post one batch through the shared writer (its write and flush shared with batches
    /// other workers post meanwhile), then count its credits in the run's totals; and
    /// `then` right after it if it was accepted (its refusal is never one for credits).
    fn submit_then(&self, batch: Vec<Payload>, then: Vec<Payload>) -> Result<(), Refusal> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let stream = first.record.stream();
        let mut delta: Vec<(String, i128, i128)> = Vec::new();
        for p in &batch {
            match &p.record {
                Record::Spend(s) => {
                    delta.push((s.charge.run_id.clone(), -i128::from(s.amount_credits), 0))
                }
                Record::Refund(r) => {
                    delta.push((r.charge.run_id.clone(), 0, r.amount_credits.into()))
                }
                _ => {}
            }
        }
        // One step's charges (or refunds) carry the documented batch id of that step attempt.
        let batch_id = match &first.record {
            Record::Spend(s) => Some(s.batch_id()),
            Record::Refund(r) => Some(r.batch_id()),
            _ => None,
        };
        let touches = self.touches(&batch);
        let then_touches = self.touches(&then);
        let (outcome, followed) = self
            .ledger
            .append_then(stream, batch_id.as_deref(), batch, then);
        let outcome = outcome?;
        self.fold(&touches);
        locked(&self.notes).extend(outcome.repairs.iter().map(repair_note));
        if outcome.appended() {
            let mut totals = locked(&self.totals);
            for (run, c, r) in delta {
                add_to_run(&mut totals, &run, c, r)?;
            }
        }
        if let Some(followed) = followed {
            let followed = followed.map_err(|r| Refusal::Other(r.into_error()))?;
            self.fold(&then_touches);
            locked(&self.notes).extend(followed.repairs.iter().map(repair_note));
        }
        Ok(())
    }

    /// `decide` with the tenant's balance now (including top-ups other processes posted up
    /// to [`REFRESH_EVERY`] ago) and whether a SPEND key is recorded, both read while no
    /// group is being written: a SPEND is either in the balance or not recorded yet.
    pub fn reserve<T>(
        &self,
        tenant: &str,
        decide: impl FnOnce(i64, &dyn Fn(&str) -> bool) -> T,
    ) -> Result<T> {
        self.caught_up(false, |l| {
            let recorded = |key: &str| l.contains(Stream::Billing, key);
            decide(l.balance(tenant), &recorded)
        })
    }

    /// Whether a key is recorded in a file now, other processes' records included (read
    /// again now: once per run start, a rerun request recorded while the pass runs).
    pub fn recorded(&self, stream: Stream, key: &str) -> Result<bool> {
        self.caught_up(true, |l| l.contains(stream, key))
    }

    /// `f` on the writer alone, after catching up with other processes' appends when `now`
    /// or when the last catch-up is [`REFRESH_EVERY`] old.
    fn caught_up<T>(&self, now: bool, f: impl FnOnce(&Ledger) -> T) -> Result<T> {
        let due = {
            let mut last = locked(&self.refreshed);
            let due = now || last.is_none_or(|t| t.elapsed() >= REFRESH_EVERY);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        let (repairs, out) = self.ledger.with(|l| {
            let repairs = if due { l.refresh()? } else { Vec::new() };
            Ok::<_, crate::Error>((repairs, f(l)))
        })??;
        locked(&self.notes).extend(repairs.iter().map(repair_note));
        Ok(out)
    }

    /// Credits charged and refunded in a run so far.
    pub fn run_totals(&self, _tenant: &str, run_id: &str) -> Result<(i64, i64)> {
        Ok(locked(&self.totals).get(run_id).copied().unwrap_or((0, 0)))
    }
}
