//! The writer's open files and the group commit: batches of any number of callers checked one after the other under one lock (catch-up, idempotency, conflicts, billing and cross-file rules, as for a batch alone), then one write and one flush per file, each caller answered on its own.
use super::billing::BillingRule;
use super::check::{
    already_recorded, check_billing, conflict, partly_recorded, AppendOutcome, AppendStatus,
    Recorded,
};
use super::cross::audited_record;
use super::file::{stage_batch, write_durably, FileState, Posted};
use super::key::{key_id, KeyId};
use super::lines::Lines;
use super::open::{load_file, load_locked, remove_torn_tail, scan_to_end};
use super::prepare::{prepare_one, Prepared};
use super::{Repair, RepairKind};
use crate::error::{Error, Result};
use crate::records::{Audit, Payload, Stream};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Why a batch was not written. Only the batch's own caller hears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A SPEND would take its tenant below zero (e.g. a debit posted meanwhile).
    NotEnoughCredits(Error),
    /// Any other reason: a conflict, another broken rule, a failed write.
    Other(Error),
}

impl Refusal {
    pub fn into_error(self) -> Error {
        match self {
            Refusal::NotEnoughCredits(e) | Refusal::Other(e) => e,
        }
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Other(e)
    }
}

/// One caller's batch, checked before the lock is taken.
pub(crate) struct Pending {
    pub stream: Stream,
    pub batch: Vec<Prepared>,
}

/// What a group came to: one answer per batch, in order, and the repairs made on the way
/// (torn tails of other processes, audit records a crash cut off).
pub(crate) struct Committed {
    pub answers: Vec<Result<AppendOutcome, Refusal>>,
    pub repairs: Vec<Repair>,
}

/// A writer's three open files, indexed.
pub(crate) struct Files {
    pub dir: PathBuf,
    pub files: Vec<FileState>,
    /// Set when a write or flush failed: the next group re-reads the files from the start.
    pub poisoned: bool,
    /// Set once the files hold records this writer did not write (another process's caught
    /// up, a file re-read after a replace or a failed write): what it appended is then not
    /// all that was appended since it opened.
    pub foreign: bool,
}

/// The files written after their dependencies: a record of a run after its `run_started`
/// (evidence.jsonl), an audit record after the privileged record it audits.
const WRITE_ORDER: [Stream; 3] = [Stream::Evidence, Stream::Billing, Stream::Audit];

/// A group being staged: per file, whether it was caught up, its length before, and the
/// lines staged for it.
#[derive(Default)]
struct Staging {
    caught: [bool; 3],
    before: [u64; 3],
    bufs: [Vec<u8>; 3],
    repairs: Vec<Repair>,
}

impl Files {
    /// Check and stage every batch in order, then write each file once (dependencies
    /// first); the caller holds the directory lock. A batch refused is answered alone; a
    /// failed write answers every batch that staged lines in a file not written (and the
    /// files are re-read before the next group).
    pub(crate) fn commit(&mut self, group: &[Pending]) -> Result<Committed> {
        let mut st = Staging::default();
        // A pull that stopped while moving files in since this writer opened: re-read them
        // once the move is finished (`load_locked` finishes it).
        if super::install::pending(&self.dir) {
            self.poisoned = true;
        }
        if self.poisoned {
            let (files, r) = load_locked(&self.dir)?;
            self.files = files;
            self.poisoned = false;
            self.foreign = true;
            st.repairs.extend(r);
        }
        let mut answers = Vec::with_capacity(group.len());
        let mut touched = Vec::with_capacity(group.len());
        for p in group {
            let before = st.bufs.each_ref().map(Vec::len);
            answers.push(self.stage(p, &mut st));
            let after = st.bufs.each_ref().map(Vec::len);
            touched.push([0, 1, 2].map(|i| after[i] != before[i]));
        }
        let written = self.write_staged(&st);
        // What this writer's own writes left (a failed one poisons the files: re-read).
        for (f, buf) in self.files.iter_mut().zip(&st.bufs) {
            if !buf.is_empty() {
                f.note_written();
            }
        }
        if let Err((failed, e)) = written {
            self.poisoned = true;
            for (answer, t) in answers.iter_mut().zip(&touched) {
                let unwritten = t.iter().zip(failed).any(|(t, f)| *t && f);
                if unwritten && answer.is_ok() {
                    *answer = Err(Refusal::Other(e.clone()));
                }
            }
        }
        Ok(Committed {
            answers,
            repairs: st.repairs,
        })
    }

    /// Write each file's staged lines, dependencies first; on a failure, the files from
    /// the failed one on are not written.
    fn write_staged(&self, st: &Staging) -> Result<(), ([bool; 3], Error)> {
        for (n, s) in WRITE_ORDER.iter().enumerate() {
            let i = s.index();
            if st.bufs[i].is_empty() {
                continue;
            }
            if let Err(e) = write_durably(&self.files[i], &st.bufs[i], st.before[i]) {
                let mut failed = [false; 3];
                for later in &WRITE_ORDER[n..] {
                    failed[later.index()] = !st.bufs[later.index()].is_empty();
                }
                return Err((failed, e));
            }
        }
        Ok(())
    }

    /// One batch: its file caught up, its runs checked, its records checked and staged,
    /// then the audit records of its privileged records.
    fn stage(&mut self, p: &Pending, st: &mut Staging) -> Result<AppendOutcome, Refusal> {
        self.touch(p.stream, st)?;
        self.check_runs(p.stream, &p.batch, st)?;
        self.check_audited(p.stream, &p.batch, st)?;
        let outcome = self.stage_checked(p.stream, &p.batch, st)?;
        let audits = self.audit_privileged(&p.batch, outcome.appended(), st)?;
        let mut outcome = outcome;
        outcome.repairs.extend(audits);
        Ok(outcome)
    }

    /// Catch a file up with other processes the first time the group touches it (never
    /// after: its staged lines are not on disk yet).
    fn touch(&mut self, stream: Stream, st: &mut Staging) -> Result<()> {
        let i = stream.index();
        if !st.caught[i] {
            st.repairs.extend(self.catch_up(stream)?);
            st.caught[i] = true;
            st.before[i] = self.files[i].scan.head.offset;
        }
        Ok(())
    }

    /// SPEC §7: a record of a run names a run whose `run_started` is in evidence.jsonl (or
    /// earlier in this very batch, or staged earlier in the group).
    fn check_runs(&mut self, stream: Stream, batch: &[Prepared], st: &mut Staging) -> Result<()> {
        for p in batch {
            let Some((run_id, run_key)) = &p.run else {
                continue;
            };
            let in_batch = stream == Stream::Evidence && batch.iter().any(|q| q.key == *run_key);
            if in_batch || self.has(Stream::Evidence, run_key) {
                continue;
            }
            if !st.caught[Stream::Evidence.index()] {
                self.touch(Stream::Evidence, st)?;
                if self.has(Stream::Evidence, run_key) {
                    continue;
                }
            }
            return Err(Error::failure(format!(
                "{} {} names run {run_id}, whose run_started is not in evidence.jsonl; nothing was written",
                p.record.name(),
                p.key_text
            ))
            .at(self.files[stream.index()].path.display().to_string())
            .help("post the run's run_started record before any record of the run"));
        }
        Ok(())
    }

    /// SPEC §7: an allowed audit record of a privileged record names a record already
    /// recorded (or staged earlier in the group): the writer never makes the damage a
    /// reader would refuse (`cross::audited_record`).
    fn check_audited(
        &mut self,
        stream: Stream,
        batch: &[Prepared],
        st: &mut Staging,
    ) -> Result<()> {
        if stream != Stream::Audit {
            return Ok(());
        }
        for p in batch {
            let Some((rule, target)) = audited_record(&p.key_text) else {
                continue;
            };
            let home = rule.record.stream();
            self.touch(home, st)?;
            if self.has(home, &key_id(target)) {
                continue;
            }
            return Err(Error::failure(format!(
                "audit record {} names {} {target}, which is not in {}; nothing was written",
                p.key_text,
                rule.record.name(),
                home.file_name()
            ))
            .at(self.files[stream.index()].path.display().to_string())
            .help("a privileged record's audit record is written by the ledger after the record itself; post the record instead"));
        }
        Ok(())
    }

    /// After a privileged record is recorded, stage its audit record (unless it already is).
    /// When the record was recorded earlier (a replay) and its audit record is missing, a
    /// crash cut the two writes apart: adding it is a repair, and reported as one.
    fn audit_privileged(
        &mut self,
        batch: &[Prepared],
        appended: bool,
        st: &mut Staging,
    ) -> Result<Vec<Repair>> {
        let mut repairs = Vec::new();
        for p in batch {
            let Some(rule) = p.record.privileged() else {
                continue;
            };
            let audit_key = crate::records::audit::allowed_key(rule.action, &p.key_text);
            self.touch(Stream::Audit, st)?;
            if self.has(Stream::Audit, &key_id(&audit_key)) {
                continue;
            }
            let object = p.object();
            let text = |k: &str| object.get(k).and_then(serde_json::Value::as_str);
            let audit = Audit::for_privileged(
                rule,
                text("actor").unwrap_or_default(),
                text("tenant_id"),
                &p.key_text,
            );
            let audit = prepare_one(Stream::Audit, &Payload::new(audit))?;
            let out = self
                .stage_checked(Stream::Audit, &[audit], st)
                .map_err(Refusal::into_error)?;
            if !appended && out.appended() {
                repairs.push(Repair {
                    kind: RepairKind::AuditAdded,
                    file: self.files[Stream::Audit.index()].path.display().to_string(),
                    stream: Stream::Audit,
                    from_line: out.records.first().map_or(0, |r| r.seq),
                    lines_removed: 0,
                    bytes_removed: 0,
                    reason: format!(
                        "{} {} (a crash between the two writes)",
                        p.record.name(),
                        p.key_text
                    ),
                });
            }
        }
        Ok(repairs)
    }

    /// Check a prepared batch (idempotency, conflicts, billing) and stage it; the caller
    /// holds the lock and has caught the file up.
    fn stage_checked(
        &mut self,
        stream: Stream,
        batch: &[Prepared],
        st: &mut Staging,
    ) -> Result<AppendOutcome, Refusal> {
        let i = stream.index();
        let f = &mut self.files[i];
        let mut present = Vec::new();
        let mut absent = Vec::new();
        for p in batch {
            let Some(offset) = f.scan.index.get(&p.key) else {
                absent.push(p);
                continue;
            };
            // A key posted again: its line is read back (on disk, or staged in this group).
            let lines = Lines::staged_before(&f.file, &st.bufs[i], f.scan.head.offset);
            let r = Recorded::read(&f.path, lines, offset, &p.key)?;
            if r.payload != p.digest {
                return Err(conflict(f, stream, p, &r).into());
            }
            present.push((p, r));
        }
        if absent.is_empty() {
            return Ok(already_recorded(&present));
        }
        if !present.is_empty() {
            return Err(partly_recorded(f, stream, &present, &absent).into());
        }
        if let Err((rule, e)) = check_billing(f, batch, &st.bufs[i]) {
            return Err(match rule {
                BillingRule::NotEnoughCredits => Refusal::NotEnoughCredits(e),
                _ => Refusal::Other(e),
            });
        }
        let records: Vec<Posted> = stage_batch(f, batch, &mut st.bufs[stream.index()])?;
        Ok(AppendOutcome {
            status: AppendStatus::Appended,
            records,
            repairs: Vec::new(),
        })
    }

    /// Read lines appended by others since our head (the caller holds the lock).
    pub(super) fn catch_up(&mut self, stream: Stream) -> Result<Vec<Repair>> {
        let f = &mut self.files[stream.index()];
        let meta = std::fs::metadata(&f.path).map_err(|e| {
            Error::failure(format!("{} disappeared: {e}", f.path.display()))
                .at(f.path.display().to_string())
        })?;
        if (meta.dev(), meta.ino()) != f.id {
            // Replaced by a merge (rename): the old inode is no longer the ledger.
            let (fresh, repairs) = load_file(&self.dir, stream)?;
            *f = fresh;
            self.foreign = true;
            return Ok(repairs.into_iter().collect());
        }
        if f.changed != Some(crate::ledger::mark::ctime_ns(&meta)) {
            // Written by another process since this writer last read or wrote it.
            self.foreign = true;
        }
        let len = meta.len();
        if len < f.scan.head.offset {
            return Err(Error::failure(format!(
                "{} shrank from {} to {len} bytes while open: a record was removed",
                f.path.display(),
                f.scan.head.offset
            ))
            .at(f.path.display().to_string())
            .help("run `platform integrity-validate` and restore the file from a good copy"));
        }
        if len == f.scan.head.offset {
            return Ok(Vec::new());
        }
        let start = f.scan.offset();
        self.foreign = true;
        match scan_to_end(&f.file, &f.path, &mut f.scan, start)? {
            Some(t) => Ok(vec![remove_torn_tail(f, t)?]),
            None => Ok(Vec::new()),
        }
    }

    fn has(&self, stream: Stream, key: &KeyId) -> bool {
        self.files[stream.index()].scan.index.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::ledger::prepare::prepare;
    use crate::ledger::Ledger;
    use crate::records::{Refund, RunStarted, Spend, Topup};

    const RUN: &str = "run-00000000000000000001";

    fn pending(stream: Stream, records: Vec<Payload>) -> Pending {
        Pending {
            stream,
            batch: prepare(stream, None, &records).unwrap(),
        }
    }

    fn spend(price: i64) -> Spend {
        Spend::new("acme", "wo", 1, RUN, "s", 1, "m", "zip", price, RUN)
    }

    /// One group whose later batches need lines an earlier batch staged and nothing has
    /// written yet: a REFUND of a staged SPEND, the same SPEND posted again (a no-op answered
    /// from the staged line) and under its key another payload (a conflict naming the field).
    #[test]
    fn later_batches_of_a_group_read_staged_lines_back() {
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let (mut ledger, _) = Ledger::open(dir.path()).unwrap();
        let started = RunStarted {
            tenant_id: "acme".into(),
            work_order_id: "wo".into(),
            run: 1,
            run_id: RUN.into(),
            work_order_sha256: "0".repeat(64),
            correlation_id: RUN.into(),
            period: None,
            rerun: None,
        };
        let (s, mut over) = (spend(4), Refund::reversing(&spend(4), "timeout"));
        over.amount_credits = 5;
        let group = vec![
            pending(Stream::Evidence, vec![Payload::new(started)]),
            pending(
                Stream::Billing,
                vec![Payload::new(Topup::new("acme", 10, "m", "r1", None, "ops"))],
            ),
            pending(Stream::Billing, vec![Payload::new(s.clone())]),
            pending(Stream::Billing, vec![Payload::new(over)]),
            pending(
                Stream::Billing,
                vec![Payload::new(Refund::reversing(&s, "timeout"))],
            ),
            pending(Stream::Billing, vec![Payload::new(s.clone())]),
            pending(Stream::Billing, vec![Payload::new(spend(3))]),
        ];
        let answers = ledger.commit(&group).unwrap().answers;
        let status = |n: usize| answers[n].as_ref().map(|o| o.status);
        for n in [0, 1, 2, 4] {
            assert_eq!(status(n), Ok(AppendStatus::Appended), "batch {n}");
        }
        let message = |n: usize| match &answers[n] {
            Err(r) => r.clone().into_error().message,
            Ok(o) => panic!("batch {n} should be refused: {o:?}"),
        };
        assert!(message(3).contains("refund over spend"), "{}", message(3));
        let replay = answers[5].as_ref().unwrap();
        assert_eq!(replay.status, AppendStatus::AlreadyRecorded);
        assert_eq!(replay.records[0].seq, 2, "the SPEND's staged seq");
        assert!(
            message(6).contains("amount_credits (recorded -4, posted -3)"),
            "{}",
            message(6)
        );
        // What was written is what the answers said, and reads back the same after reopening.
        assert!(crate::ledger::verify(dir.path()).unwrap().ok());
        let (reopened, _) = Ledger::open(dir.path()).unwrap();
        let info = reopened.spend(&s.key()).unwrap();
        assert_eq!((info.amount_credits, info.refunded_credits), (-4, 4));
        assert_eq!(reopened.balance("acme"), 10);
    }
}
