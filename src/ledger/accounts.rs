//! Naming what does not add up in a run's account (cross.rs keeps sums, not lines): the lines, ids and credits read back from billing.jsonl and evidence.jsonl, on the rare path only.
//!
//! billing.jsonl is read again from its path, as it is now: a reader takes no lock, and a
//! writer may have appended a run's REFUNDs and then its `run_ended` while evidence.jsonl was
//! read after billing.jsonl. Sums that add up once those lines are counted are no problem.
use super::key::{key_id, ShortId};
use super::keyset::KeySet;
use super::line::{self, Facts};
use super::lines::{each_line, line_number, Lines};
use crate::records::evidence::{run_ended_key, run_started_key};
use crate::records::{Record, RecordType, StepStatus, Stream};
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

/// The id a run's account is filed under: its run id, tenant, work order and number (each
/// string length-prefixed), 8 bytes of their digest.
pub(crate) fn run_ident(run_id: &str, tenant: &str, work_order: &str, run: u64) -> ShortId {
    let id = key_id(&format!(
        "run/{}:{run_id}/{}:{tenant}/{}:{work_order}/{run}",
        run_id.len(),
        tenant.len(),
        work_order.len()
    ));
    let mut short = [0u8; 8];
    short.copy_from_slice(&id[..8]);
    short
}

/// The run a record named last, and its account key: most lines of a run are adjacent, so
/// its key is hashed once.
#[derive(Debug, Clone, Default)]
pub(crate) struct LastIdent {
    run_id: String,
    tenant: String,
    work_order: String,
    run: u64,
    key: Option<ShortId>,
}

impl LastIdent {
    pub fn key(&mut self, run_id: &str, tenant: &str, work_order: &str, run: u64) -> ShortId {
        let same = self.run_id == run_id
            && self.tenant == tenant
            && self.work_order == work_order
            && self.run == run;
        if let (true, Some(key)) = (same, self.key) {
            return key;
        }
        let key = run_ident(run_id, tenant, work_order, run);
        self.run_id.clear();
        self.run_id.push_str(run_id);
        self.tenant.clear();
        self.tenant.push_str(tenant);
        self.work_order.clear();
        self.work_order.push_str(work_order);
        self.run = run;
        self.key = Some(key);
        key
    }
}

/// What evidence.jsonl says of one run: started, and its highest `run_ended` (attempt 0: not
/// ended). Packed: 20 bytes a run.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, packed(4))]
pub(crate) struct Ended {
    pub charged: i64,
    pub refunded: i64,
    pub attempt: u32,
}

/// A problem no writer repairs, at a line of a file: a record of a run whose `run_started` is
/// missing (a lost or truncated evidence.jsonl, or a forged record), or a run's account that
/// does not add up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    pub stream: Stream,
    pub line: u64,
    pub message: String,
    /// A file holds less than another states, and no more: billing.jsonl less of an ended
    /// run than its `run_ended`, or a record an allowed audit record names is missing. What a
    /// `ledger merge` interrupted between its renames leaves (the same merge completes it),
    /// as well as what deleting a record leaves.
    pub shortfall: bool,
}

/// One file as a check reads it back: its index (key id → offset of its line), where its
/// lines are, the open file and its path.
#[derive(Clone, Copy)]
pub(crate) struct Source<'a> {
    pub stream: Stream,
    pub index: &'a KeySet<u64>,
    pub lines: Lines<'a>,
    pub file: Option<&'a File>,
    pub path: &'a Path,
}

/// What an orphan record is, and what to do.
pub(crate) fn orphan_text(record: &str, run_id: &str) -> String {
    format!(
        "{record} names run {run_id}, whose run_started is not in evidence.jsonl (it was lost, truncated or edited, or this record is forged): restore evidence.jsonl from a good copy (platform state pull); the orchestrator refuses to charge anything until then"
    )
}

/// What evidence.jsonl says of a run whose account needs a closer look.
#[derive(Clone, Copy)]
pub(crate) enum Claimed {
    /// SPENDs or REFUNDs name it, and no `run_started` opened it under their tenant, work
    /// order and number.
    Unstarted,
    /// Its highest `run_ended`, which billing.jsonl does not match.
    Ended(Ended),
    /// A `run_ended` no `run_started` opened under its tenant, work order and number.
    StrayEnd,
}

/// One run's account to look at, by its key ([`run_ident`]).
pub(crate) struct Claim {
    pub key: ShortId,
    pub claimed: Claimed,
}

/// A run as a record names it.
#[derive(Default, Clone)]
struct Named {
    run_id: String,
    tenant: String,
    work_order: String,
    run: u64,
}

impl Named {
    fn of(f: &Facts<'_>) -> Named {
        Named {
            run_id: f.run_id.as_deref().unwrap_or("?").to_string(),
            tenant: f.tenant_id.as_deref().unwrap_or("?").to_string(),
            work_order: f.work_order_id.as_deref().unwrap_or("?").to_string(),
            run: f.run.unwrap_or(0),
        }
    }

    fn describe(&self) -> String {
        format!(
            "tenant {}, work order {}, run {}",
            self.tenant, self.work_order, self.run
        )
    }
}

/// What billing.jsonl holds of one run, line by line.
#[derive(Default)]
struct Held {
    /// Its first line and that line's type.
    first: Option<(u64, String)>,
    last: u64,
    named: Named,
    /// Positive totals of the SPENDs and REFUNDs of the attempts up to the run's end (wide
    /// enough that no sum of i64 amounts overflows).
    upto: (i128, i128),
    /// The first line of an attempt past the one after the run's end, and its attempt.
    late: Option<(u64, u64, String)>,
    /// SPENDs of the attempt after the run's end: line, step.
    retried: Vec<(u64, String)>,
}

/// The problems of the claimed accounts, each at the line to look at.
pub(crate) fn resolve(
    claims: Vec<Claim>,
    billing: &Source<'_>,
    evidence: &Source<'_>,
) -> Vec<Damage> {
    let mut held: HashMap<ShortId, (Claimed, Held)> = HashMap::new();
    for c in claims {
        // A run both charged and ended under an identity nobody started: its charges say it.
        held.entry(c.key).or_insert((c.claimed, Held::default()));
    }
    read_billing(billing, &mut held);
    let mut ends: HashMap<ShortId, (u64, Named)> = HashMap::new();
    let unnamed = held.iter().any(|(_, (c, h))| match c {
        Claimed::StrayEnd => true,
        Claimed::Ended(_) => h.first.is_none(),
        Claimed::Unstarted => false,
    });
    if unnamed {
        ends = read_ends(evidence, &held);
    }
    let mut damage = Vec::new();
    for (key, (claimed, h)) in &held {
        match claimed {
            Claimed::Unstarted => damage.extend(unstarted(h, evidence)),
            Claimed::Ended(end) => {
                let named = match &h.first {
                    Some(_) => Some(h.named.clone()),
                    None => ends.get(key).map(|(_, n)| n.clone()),
                };
                if let Some(named) = named {
                    damage.extend(ended(end, &named, h, billing, evidence));
                }
            }
            Claimed::StrayEnd => {
                if let Some((line, named)) = ends.get(key) {
                    damage.extend(stray_end(*line, named, evidence));
                }
            }
        }
    }
    damage
}

/// Read billing.jsonl as it is now (from its path; the scanned file when it cannot be
/// opened): the SPENDs and REFUNDs of the claimed runs.
fn read_billing(billing: &Source<'_>, held: &mut HashMap<ShortId, (Claimed, Held)>) {
    // Opened as every reader opens a ledger file: never blocking, a regular file only.
    let reopened = crate::beneath::open_trusted(billing.path).ok();
    let Some(file) = reopened.as_ref().or(billing.file) else {
        return;
    };
    let mut last = LastIdent::default();
    let _ = each_line(file, u64::MAX, &mut |n, _, bytes| {
        let Ok(f) = line::parse(bytes, false) else {
            return;
        };
        let billed = matches!(f.record, Some(RecordType::Spend | RecordType::Refund));
        if !billed || !f.hash_ok {
            return;
        }
        let Some((run_id, tenant, wo, run)) = run_fields(&f) else {
            return;
        };
        let key = last.key(run_id, tenant, wo, run);
        let Some((claimed, h)) = held.get_mut(&key) else {
            return;
        };
        if h.first.is_none() {
            h.first = Some((n, f.type_name.to_string()));
            h.named = Named::of(&f);
        }
        h.last = n;
        let end = match claimed {
            Claimed::Ended(e) => u64::from(e.attempt),
            _ => u64::MAX,
        };
        let attempt = f.attempt.unwrap_or(0);
        let amount = i128::from(f.amount.unwrap_or(0));
        let spend = f.record == Some(RecordType::Spend);
        if attempt <= end {
            let (c, r) = h.upto;
            h.upto = match spend {
                true => (c - amount, r),
                false => (c, r + amount),
            };
        } else if end.checked_add(1) == Some(attempt) {
            if spend {
                let step = f.step_id.as_deref().unwrap_or("?").to_string();
                h.retried.push((n, step));
            }
        } else if h.late.is_none() {
            h.late = Some((n, attempt, f.type_name.to_string()));
        }
    });
}

/// The run a line names: run id, tenant, work order and run number (None if one is absent).
fn run_fields<'a>(f: &'a line::Facts<'_>) -> Option<(&'a str, &'a str, &'a str, u64)> {
    Some((
        f.run_id.as_deref()?,
        f.tenant_id.as_deref()?,
        f.work_order_id.as_deref()?,
        f.run?,
    ))
}

/// Read evidence.jsonl for the `run_ended` of each claimed run that billing.jsonl does not
/// name (its highest, for an ended run), with the run as that record names it.
fn read_ends(
    evidence: &Source<'_>,
    held: &HashMap<ShortId, (Claimed, Held)>,
) -> HashMap<ShortId, (u64, Named)> {
    let mut ends = HashMap::new();
    let Some(file) = evidence.file else {
        return ends;
    };
    let _ = each_line(file, u64::MAX, &mut |n, _, bytes| {
        if !memfind(bytes, b"\"type\":\"run_ended\"") {
            return;
        }
        let Ok(f) = line::parse(bytes, false) else {
            return;
        };
        let Some((run_id, tenant, wo, run)) = run_fields(&f) else {
            return;
        };
        let key = run_ident(run_id, tenant, wo, run);
        let wanted = match held.get(&key) {
            Some((Claimed::Ended(e), _)) => f.attempt == Some(u64::from(e.attempt)),
            Some((Claimed::StrayEnd, _)) => !ends.contains_key(&key),
            _ => false,
        };
        if wanted {
            ends.insert(key, (n, Named::of(&f)));
        }
    });
    ends
}

/// Whether `needle` occurs in `hay` (a filter before a line is parsed, on the rare path).
fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The line of a key in a file, and the line read back (None when it is not recorded).
fn recorded(side: &Source<'_>, key: &str) -> Option<(u64, Vec<u8>)> {
    let offset = side.index.get(&key_id(key))?;
    let bytes = side.lines.line(offset).ok()?;
    let n = side
        .file
        .and_then(|f| line_number(f, offset).ok())
        .unwrap_or(0);
    Some((n, bytes))
}

/// SPENDs or REFUNDs of a run no `run_started` opened as they name it: the run is not in
/// evidence.jsonl at all (an orphan), or it is, with another tenant, work order or number.
fn unstarted(h: &Held, evidence: &Source<'_>) -> Option<Damage> {
    let (line, record) = h.first.as_ref()?;
    let n = &h.named;
    let message = match recorded(evidence, &run_started_key(&n.run_id)) {
        None => orphan_text(record, &n.run_id),
        Some((at, bytes)) => {
            let started = line::parse(&bytes, false)
                .map(|f| Named::of(&f).describe())
                .unwrap_or_else(|_| "unreadable".into());
            format!(
                "{record} names run {} as {}, but its run_started ({}:{at}) is {started}: a charge or refund moved to another tenant or work order (forged or edited): restore billing.jsonl from a good copy (platform state pull); the orchestrator refuses to charge anything until then",
                n.run_id,
                n.describe(),
                Stream::Evidence.file_name(),
            )
        }
    };
    Some(Damage {
        stream: Stream::Billing,
        line: *line,
        message,
        shortfall: false,
    })
}

const RESTORE: &str = "restore billing.jsonl from a good copy (platform state pull); the orchestrator refuses to charge anything until then";

/// An ended run whose SPENDs and REFUNDs do not match its highest `run_ended`.
fn ended(
    end: &Ended,
    n: &Named,
    h: &Held,
    billing: &Source<'_>,
    evidence: &Source<'_>,
) -> Vec<Damage> {
    let mut damage = Vec::new();
    let (attempt, charged, refunded) = (end.attempt, end.charged, end.refunded);
    let ended_at = recorded(evidence, &run_ended_key(&n.run_id, attempt));
    let at = |line: &Option<(u64, Vec<u8>)>| {
        line.as_ref().map_or(String::new(), |(l, _)| {
            format!(" ({}:{l})", Stream::Evidence.file_name())
        })
    };
    if let Some((line, late, record)) = &h.late {
        damage.push(Damage {
            stream: billing.stream,
            line: *line,
            message: format!(
                "{record} of run {} ({}) is attempt {late}, after the run ended as attempt {attempt}{}: an ended run is charged again only by --retry-failed, as attempt {}, so this record was added after the run ended (forged or edited): {RESTORE}",
                n.run_id,
                n.describe(),
                at(&ended_at),
                u64::from(attempt) + 1
            ),
            shortfall: false,
        });
    }
    if !h.retried.is_empty() {
        let completed = ended_at
            .as_ref()
            .and_then(|(_, bytes)| completed_steps(bytes))
            .unwrap_or_default();
        for (line, step) in &h.retried {
            if completed.contains(step) {
                damage.push(Damage {
                    stream: billing.stream,
                    line: *line,
                    message: format!(
                        "SPEND of run {} ({}), step {step}, attempt {}, after the run ended as attempt {attempt}{}, which reports step {step} COMPLETED: --retry-failed charges again only steps that failed or were skipped, so this SPEND was added after the run ended (forged or edited): {RESTORE}",
                        n.run_id,
                        n.describe(),
                        u64::from(attempt) + 1,
                        at(&ended_at),
                    ),
                    shortfall: false,
                });
            }
        }
    }
    let (held_c, held_r) = h.upto;
    if (held_c, held_r) != (i128::from(charged), i128::from(refunded)) {
        let lines = match &h.first {
            Some((first, _)) if *first == h.last => format!("line {first}"),
            Some((first, _)) => format!("lines {first}..{}", h.last),
            None => "no line".into(),
        };
        let shortfall = held_c <= i128::from(charged) && held_r <= i128::from(refunded);
        let (line, stream) = match &ended_at {
            Some((l, _)) => (*l, Stream::Evidence),
            None => (h.first.as_ref().map_or(0, |(l, _)| *l), billing.stream),
        };
        damage.push(Damage {
            stream,
            line,
            message: format!(
                "run_ended of run {} ({}, attempt {attempt}) states {charged} credits charged and {refunded} refunded, but billing.jsonl holds SPENDs of {held_c} and REFUNDs of {held_r} credits for its attempts up to {attempt} (the run's records in billing.jsonl: {lines}): a charge or refund was removed, added or changed after the run ended (forged or edited){}: {RESTORE}",
                n.run_id,
                n.describe(),
                if shortfall {
                    ", or a `platform ledger merge` into this directory stopped between replacing evidence.jsonl and billing.jsonl (then run the same merge again), or a `platform state pull` stopped while moving files into place (then the next writer, or the same pull, finishes it)"
                } else {
                    ""
                }
            ),
            shortfall,
        });
    }
    damage
}

/// The steps a `run_ended` line reports COMPLETED.
fn completed_steps(bytes: &[u8]) -> Option<Vec<String>> {
    match Record::from_json(RecordType::RunEnded, bytes).ok()? {
        Record::RunEnded(e) => Some(
            e.steps
                .into_iter()
                .filter(|s| s.status == StepStatus::Completed)
                .map(|s| s.step_id)
                .collect(),
        ),
        _ => None,
    }
}

/// A `run_ended` whose tenant, work order or number differs from its `run_started`'s (one
/// with no `run_started` at all is an orphan, reported as such).
fn stray_end(line: u64, n: &Named, evidence: &Source<'_>) -> Option<Damage> {
    let (at, bytes) = recorded(evidence, &run_started_key(&n.run_id))?;
    let started = line::parse(&bytes, false)
        .map(|f| Named::of(&f).describe())
        .unwrap_or_else(|_| "unreadable".into());
    Some(Damage {
        stream: Stream::Evidence,
        line,
        message: format!(
            "run_ended names run {} as {}, but its run_started (line {at}) is {started} (forged or edited): restore evidence.jsonl from a good copy (platform state pull)",
            n.run_id,
            n.describe(),
        ),
        shortfall: false,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use crate::ledger::{read, verify, Ledger, Stream};
    use crate::records::evidence::{RunEnded, RunStarted};
    use crate::records::{Payload, Refund, RunStatus, Spend, Topup};

    fn started(run: u64) -> Payload {
        Payload::new(RunStarted {
            tenant_id: "acme".into(),
            work_order_id: "wo".into(),
            run,
            run_id: format!("run-{run}"),
            work_order_sha256: "0".repeat(64),
            correlation_id: format!("run-{run}"),
            period: None,
            rerun: None,
        })
    }

    fn spend(run: u64, price: i64) -> Spend {
        let id = format!("run-{run}");
        Spend::new("acme", "wo", run, &id, "s", 1, "m", "__run__", price, &id)
    }

    fn ended(run: u64, charged: i64, refunded: i64) -> Payload {
        Payload::new(RunEnded {
            tenant_id: "acme".into(),
            work_order_id: "wo".into(),
            run,
            run_id: format!("run-{run}"),
            attempt: 1,
            status: RunStatus::Failed,
            steps: Vec::new(),
            charged_credits: charged,
            refunded_credits: refunded,
            period: None,
        })
    }

    /// A reader that could not take its cut (`ledger::cut`: here, no lock file) reads each
    /// file to its end: a writer may append a run's REFUND and then its `run_ended` after the
    /// reader read billing.jsonl and before it read evidence.jsonl. The run's account then
    /// seems short, and is read again from billing.jsonl as it is now.
    #[test]
    fn a_run_that_ends_while_a_reader_reads_adds_up() {
        let dir = tempfile::tempdir().unwrap();
        let (mut l, _) = Ledger::open(dir.path()).unwrap();
        let topup = Topup::new("acme", 10, "bank", "r1", None, "ops");
        l.append(Stream::Billing, vec![Payload::new(topup)])
            .unwrap();
        l.append(Stream::Evidence, vec![started(1)]).unwrap();
        l.append(Stream::Billing, vec![Payload::new(spend(1, 4))])
            .unwrap();
        let (mut ended_meanwhile, mut evidence_read) = (false, 0);
        // The writer keeps its lock file open: it still locks what it locked before.
        std::fs::remove_file(dir.path().join(super::super::lock::LEDGER_LOCK)).unwrap();
        let reading = read(dir.path(), &[Stream::Evidence], |_| {
            evidence_read += 1;
            if !ended_meanwhile {
                // billing.jsonl was read; evidence.jsonl is being read.
                let refund = Refund::reversing(&spend(1, 4), "module_failed");
                l.append(Stream::Billing, vec![Payload::new(refund)])
                    .unwrap();
                l.append(Stream::Evidence, vec![ended(1, 4, 4)]).unwrap();
                ended_meanwhile = true;
            }
            Ok(())
        })
        .unwrap();
        assert!(ended_meanwhile);
        assert_eq!(evidence_read, 2, "the reader read the run_ended");
        // The balances are those of billing.jsonl as it was read, before the REFUND.
        assert_eq!(reading.balances.get("acme"), Some(&6));
        assert!(verify(dir.path()).unwrap().ok());

        // A run_ended that states more than billing.jsonl holds, then or now, is damage.
        l.append(Stream::Evidence, vec![started(2)]).unwrap();
        l.append(Stream::Billing, vec![Payload::new(spend(2, 1))])
            .unwrap();
        l.append(Stream::Evidence, vec![ended(2, 3, 0)]).unwrap();
        let err = read(dir.path(), &[], |_| Ok(())).unwrap_err();
        assert!(
            err.message.contains("evidence.jsonl is damaged at line 4")
                && err.message.contains("states 3 credits charged")
                && err.message.contains("holds SPENDs of 1"),
            "{}",
            err.message
        );
    }
}
