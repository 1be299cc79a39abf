//! The ledger's writer: opening, appending (a batch alone is a group of one in commit.rs), refreshing, and answering from what it indexed (balances, spends, keys, heads, and the marks a derived cache keeps).
use super::billing::Spent;
use super::check::AppendOutcome;
use super::commit::{Committed, Files, Pending, Refusal};
use super::file::read_object;
use super::key::key_id;
use super::lines::Lines;
use super::lock::{LockFile, DEFAULT_LEDGER_LOCK_TIMEOUT, LEDGER_LOCK};
use super::mark::{FileId, Mark};
use super::open::load_locked;
use super::prepare::prepare;
use super::Repair;
use crate::error::{Error, Result};
use crate::records::{Payload, Stream};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// A SPEND and what has been refunded of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendInfo {
    pub tenant_id: String,
    /// Negative, as recorded.
    pub amount_credits: i64,
    /// Positive total of its REFUNDs.
    pub refunded_credits: i64,
}

/// The last record of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadInfo {
    pub seq: u64,
    pub hash: String,
    pub bytes: u64,
}

/// A writer on one billing-state directory. Holds indexes (not records) of the three files;
/// takes the directory lock only for the duration of one check-then-append.
pub struct Ledger {
    state: Files,
    /// The directory's lock file, open as long as the writer is.
    lock: LockFile,
    lock_timeout: Duration,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("dir", &self.state.dir)
            .finish()
    }
}

impl Ledger {
    /// Open (creating the directory and files) for writing: takes the lock briefly, checks
    /// the three files and the rules between them, removes torn tails and adds missing audit
    /// records (each reported as a repair), builds the indexes. Damage anywhere (a complete
    /// line that fails its checks, a record of a run whose `run_started` is missing) is an
    /// error: no writer continues on a damaged ledger.
    pub fn open(dir: &Path) -> Result<(Ledger, Vec<Repair>)> {
        crate::folder::create(dir, "billing-state directory")?;
        let lock = LockFile::open(dir, LEDGER_LOCK)?;
        let held = lock.hold(DEFAULT_LEDGER_LOCK_TIMEOUT, |_| {})?;
        let (files, repairs) = load_locked(dir)?;
        drop(held);
        Ok((
            Ledger {
                state: Files {
                    dir: dir.to_path_buf(),
                    files,
                    poisoned: false,
                    foreign: false,
                },
                lock,
                lock_timeout: DEFAULT_LEDGER_LOCK_TIMEOUT,
            },
            repairs,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.state.dir
    }

    /// How long an append waits for other writers (default 120 s).
    pub fn set_lock_timeout(&mut self, timeout: Duration) {
        self.lock_timeout = timeout;
    }

    /// Append one batch (all or nothing). More than one record get a batch id: the first
    /// record's key. See [`Ledger::append_batch`].
    pub fn append(&mut self, stream: Stream, records: Vec<Payload>) -> Result<AppendOutcome> {
        self.append_inner(stream, None, records)
    }

    /// Append one batch under an explicit batch id (e.g. `billing::spend_batch_id(..)`),
    /// written as one write and one flush. Same key and payload: a no-op; same key and another
    /// payload: a conflict naming the fields; a batch partly recorded: a conflict.
    pub fn append_batch(
        &mut self,
        stream: Stream,
        batch_id: &str,
        records: Vec<Payload>,
    ) -> Result<AppendOutcome> {
        if batch_id.is_empty() {
            return Err(Error::input("a batch id must not be empty"));
        }
        self.append_inner(stream, Some(batch_id.to_string()), records)
    }

    /// Read what other processes appended since (and repair a torn tail they left).
    pub fn refresh(&mut self) -> Result<Vec<Repair>> {
        let held = self.lock.hold(self.lock_timeout, |_| {})?;
        let mut repairs = Vec::new();
        for s in Stream::ALL {
            repairs.extend(self.state.catch_up(s)?);
        }
        drop(held);
        Ok(repairs)
    }

    /// A tenant's balance as of the last open, append or refresh.
    pub fn balance(&self, tenant_id: &str) -> i64 {
        self.state.files[Stream::Billing.index()]
            .scan
            .billing
            .as_ref()
            .map_or(0, |b| b.balance(tenant_id))
    }

    /// Every tenant's balance as of the last open, append or refresh.
    pub fn balances(&self) -> std::collections::BTreeMap<String, i64> {
        let mut out = std::collections::BTreeMap::new();
        if let Some(b) = &self.state.files[Stream::Billing.index()].scan.billing {
            for (name, bal) in b.tenants.iter().zip(&b.balances) {
                out.insert(name.clone(), *bal);
            }
        }
        out
    }

    /// A recorded SPEND by key, with its refunded total (its line is read back; None when
    /// it cannot be).
    pub fn spend(&self, key: &str) -> Option<SpendInfo> {
        let f = &self.state.files[Stream::Billing.index()];
        let b = f.scan.billing.as_ref()?;
        let id = key_id(key);
        let s = Spent::recorded(&f.scan.index, Lines::on_disk(Some(&f.file)), &id).ok()??;
        Some(SpendInfo {
            tenant_id: s.tenant,
            amount_credits: s.amount,
            refunded_credits: b.refunded_of(&id),
        })
    }

    /// Whether a key is recorded in a file (as of the last open, append or refresh).
    pub fn contains(&self, stream: Stream, key: &str) -> bool {
        self.state.files[stream.index()]
            .scan
            .index
            .contains_key(&key_id(key))
    }

    /// The recorded line of a key, parsed.
    pub fn get(&self, stream: Stream, key: &str) -> Result<Option<Map<String, Value>>> {
        let f = &self.state.files[stream.index()];
        let Some(offset) = f.scan.index.get(&key_id(key)) else {
            return Ok(None);
        };
        read_object(f, offset).map(Some)
    }

    /// The last record of a file.
    pub fn head(&self, stream: Stream) -> HeadInfo {
        let h = &self.state.files[stream.index()].scan.head;
        HeadInfo {
            seq: h.seq,
            hash: h.hash_hex(),
            bytes: h.offset,
        }
    }

    /// Commit a group of batches under the directory lock (commit.rs).
    pub(super) fn commit(&mut self, group: &[Pending]) -> Result<Committed> {
        let held = self.lock.hold(self.lock_timeout, |_| {})?;
        let committed = self.state.commit(group);
        drop(held);
        committed
    }

    /// Where each file's records end, with every key, and the balances: what a whole
    /// verified read of the directory would find now, from this writer's indexes, when every
    /// record since it opened is one it wrote (else None). The indexes' keys move out: the
    /// writer appends nothing after this.
    pub(crate) fn close_to_marks(&mut self) -> Option<([Mark; 3], BTreeMap<String, i64>)> {
        if self.state.foreign || self.state.poisoned {
            return None;
        }
        let mut ids = Vec::with_capacity(3);
        for f in &self.state.files {
            let id = FileId::of(Some(&f.file)).ok()?;
            // Changed since this writer's last read or write of it: not all its own.
            if f.changed != Some(id.ctime_ns) {
                return None;
            }
            ids.push(id);
        }
        let balances = self.balances();
        let marks: Vec<Mark> = (self.state.files.iter_mut().zip(ids))
            .map(|(f, id)| Mark::take(&mut f.scan, id))
            .collect();
        self.state.poisoned = true;
        Some((marks.try_into().ok()?, balances))
    }

    /// Re-read every file before the next group (a holder of the writer stopped midway).
    pub(super) fn poison(&mut self) {
        self.state.poisoned = true;
    }

    fn append_inner(
        &mut self,
        stream: Stream,
        batch: Option<String>,
        records: Vec<Payload>,
    ) -> Result<AppendOutcome> {
        let batch = prepare(stream, batch, &records)?;
        let committed = self.commit(&[Pending { stream, batch }])?;
        let outcome = committed
            .answers
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(Error::failure("the ledger answered no batch").into()))
            .map_err(Refusal::into_error)?;
        let mut repairs = committed.repairs;
        repairs.extend(outcome.repairs);
        Ok(AppendOutcome { repairs, ..outcome })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::records::Topup;

    fn topup(reference: &str) -> Vec<Payload> {
        vec![Payload::new(Topup::new(
            "acme", 5, "m", reference, None, "ops",
        ))]
    }

    /// The marks a writer closes to are a whole verified read's: each file's head, keys and
    /// identity, and the balances.
    #[test]
    fn a_writer_closes_to_the_marks_a_whole_read_finds() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ledger, _) = Ledger::open(dir.path()).unwrap();
        for r in ["r1", "r2", "r3"] {
            ledger.append(Stream::Billing, topup(r)).unwrap();
        }
        let (marks, balances) = ledger.close_to_marks().unwrap();
        fn skip(_: crate::ledger::LedgerLine<'_>) -> Result<()> {
            Ok(())
        }
        let sinks: [crate::ledger::read::LineSink<'_>; 3] = [&mut skip, &mut skip, &mut skip];
        let (reading, read) = crate::ledger::read_marked(dir.path(), &[], sinks).unwrap();
        assert_eq!(marks, read);
        assert_eq!(balances, reading.balances);
        assert_eq!(balances.get("acme"), Some(&15));
    }

    /// Another process changed a record in place (same length, after this writer's last
    /// write): the change time says so, and the writer has no marks to close to.
    #[test]
    fn a_writer_whose_file_was_changed_in_place_has_no_marks() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ledger, _) = Ledger::open(dir.path()).unwrap();
        ledger.append(Stream::Billing, topup("r1")).unwrap();
        ledger.append(Stream::Billing, topup("r2")).unwrap();
        let path = dir.path().join(Stream::Billing.file_name());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"r1\""), "{text}");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, text.replacen("\"r1\"", "\"r9\"", 1)).unwrap();
        assert!(ledger.close_to_marks().is_none());
    }

    /// Another process appended while this writer was open: what it wrote is not all there
    /// is since it opened, so it has no marks to close to (the caller reads the directory).
    #[test]
    fn a_writer_that_caught_up_with_another_process_has_no_marks() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ledger, _) = Ledger::open(dir.path()).unwrap();
        ledger.append(Stream::Billing, topup("r1")).unwrap();
        let (mut other, _) = Ledger::open(dir.path()).unwrap();
        other.append(Stream::Billing, topup("r2")).unwrap();
        ledger.append(Stream::Billing, topup("r3")).unwrap();
        assert_eq!(ledger.balance("acme"), 15, "caught up");
        assert!(ledger.close_to_marks().is_none());
        let (mut alone, _) = Ledger::open(dir.path()).unwrap();
        alone.refresh().unwrap();
        assert!(alone.close_to_marks().is_some(), "nothing new to catch up");
    }
}
