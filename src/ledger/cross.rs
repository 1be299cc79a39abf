//! Cross-file rules (SPEC §7 "Across files"): every record of a run names a run whose `run_started` is in evidence.jsonl (a SPEND or REFUND with that run's tenant, work order and number), every privileged record has its audit record and every allowed audit record of one its record, and billing.jsonl holds the credits each `run_ended` states.
//!
//! Each scan collects, for the lines it commits, what they need from the other files; `check`
//! then looks them up in the other scans. The check is order-independent, so a merge that
//! replaced audit.jsonl and evidence.jsonl but crashed before billing.jsonl still passes the
//! rules of SPEC §7 (the run accounts below name it, and the same merge run again completes
//! it).
//!
//! **Runs named by evidence records** (step records, `run_ended`, bundles): the `run_started`
//! key of each run they name, unless its `run_started` came first (the usual order: nothing
//! kept), and where it is first named (32 bytes a run).
//!
//! **Run accounts** (SPEND and REFUND against `run_started` and `run_ended`). A run is filed
//! under one 8-byte id of its run id, tenant, work order and number (`accounts::run_ident`): a
//! `run_started` opens it, and its highest `run_ended` states what it was charged and refunded
//! up to that attempt; each SPEND and REFUND adds to the account of the run its own fields
//! name. So a charge moved to another tenant or work order names a run nobody started, and a
//! charge added or removed after the run ended leaves sums that differ from what its end
//! states. Memory: 28 bytes per run in each of billing.jsonl's and evidence.jsonl's scans
//! (an 8-byte digest of the run and the sums); one hash per run (the records of a run are
//! adjacent, so a one-entry cache skips the rest). What a problem needs to be named (lines,
//! ids, a `run_ended`'s steps) is read back from the files by `accounts.rs`, on the rare
//! paths only.
use super::accounts::{self, orphan_text, Claim, Claimed, Damage, Ended, LastIdent, Source};
use super::key::{key_id, KeyId, ShortId};
use super::keyset::KeySet;
use super::line::{self, Facts};
use super::lines::Lines;
use crate::records::audit::allowed_key;
use crate::records::evidence::run_started_key;
use crate::records::{Privileged, RecordType, Stream, PRIVILEGED};

/// What one line adds to a run's account.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// A SPEND or REFUND: credits (positive) charged or refunded in `attempt`.
    Billed {
        run: ShortId,
        attempt: u32,
        charged: i64,
        refunded: i64,
    },
    /// A `run_started`: the run's account opens.
    Started { run: ShortId },
    /// A `run_ended`: what the run was charged and refunded up to `attempt`.
    Ended {
        run: ShortId,
        attempt: u32,
        charged: i64,
        refunded: i64,
    },
}

/// What one line needs from the other files, found when it is read.
#[derive(Debug, Default)]
pub(crate) struct Needs {
    run: Option<(KeyId, RunAt)>,
    entry: Option<Entry>,
    audit: Option<PrivilegedRef>,
    audited: Option<AuditedRef>,
}

impl Needs {
    /// Forget the run this line names when `present` says its `run_started` is recorded.
    pub fn drop_run_if(&mut self, present: impl Fn(&KeyId) -> bool) {
        if self.run.as_ref().is_some_and(|(key, _)| present(key)) {
            self.run = None;
        }
    }
}

/// The first line of a file that names a run.
#[derive(Debug, Clone, Copy, Default)]
struct RunAt {
    line: u64,
    offset: u64,
}

/// What billing.jsonl holds of one run: its SPENDs and REFUNDs (positive totals over every
/// attempt) and the highest attempt they name. Packed: 20 bytes a run.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, packed(4))]
pub(crate) struct Billed {
    pub charged: i64,
    pub refunded: i64,
    pub hi: u32,
}

/// A privileged record and the audit record it needs.
#[derive(Debug, Clone)]
pub(crate) struct PrivilegedRef {
    pub audit_key: KeyId,
    /// The file the record was read from (its type's home: a record in another file is
    /// damage, and needs no audit record of its own).
    pub stream: Stream,
    pub line: u64,
    /// Byte offset of the record's line (a writer reads it back to build the audit record).
    pub offset: u64,
    pub key: Box<str>,
    pub rule: &'static Privileged,
}

/// An allowed audit record of a privileged action, and the record it was written for (in
/// that record type's file). The writer writes the record first and the audit record after
/// it, so a crash never leaves this without its record: a record missing here was removed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuditedRef {
    pub record_key: KeyId,
    pub rule: &'static Privileged,
    pub line: u64,
    pub offset: u64,
}

/// The references of one file's committed lines.
#[derive(Debug, Default, Clone)]
pub(crate) struct Refs {
    /// Evidence records: the `run_started` key of each run named before its `run_started`,
    /// and where it is first named.
    runs: KeySet<RunAt>,
    privileged: Vec<PrivilegedRef>,
    /// audit.jsonl: the allowed audit records of privileged records.
    audited: Vec<AuditedRef>,
    /// billing.jsonl: each run's SPENDs and REFUNDs, by account id (`accounts::run_ident`); the
    /// run of the last one is in `current` (its entry here is stale meanwhile).
    billed: KeySet<Billed, ShortId>,
    current: Option<(ShortId, Billed)>,
    /// evidence.jsonl: each started run and its highest end, by account key.
    started: KeySet<Ended, ShortId>,
    /// evidence.jsonl: account keys of `run_ended` records no `run_started` opened.
    stray_ends: Vec<ShortId>,
    /// The run id of the previous line that named one: most lines of a run are adjacent.
    last_run: String,
    last_ident: LastIdent,
}

/// A field a rule needs, or the error naming it.
fn need<T>(v: Option<T>, record: RecordType, field: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("a {} record needs {field}", record.name()))
}

impl Refs {
    /// What the line `f` (of type `record`, read from `stream`) at `line`/`offset` needs; an
    /// error names a field a record of a run lacks.
    pub fn needs(
        &mut self,
        f: &Facts<'_>,
        record: RecordType,
        stream: Stream,
        line: u64,
        offset: u64,
    ) -> Result<Needs, String> {
        let mut needs = Needs::default();
        let home = record.stream() == stream;
        if record.names_a_run() && !is_billed(record) {
            let run_id = need(f.run_id.as_deref(), record, "a run_id")?;
            if run_id != self.last_run {
                self.last_run.clear();
                self.last_run.push_str(run_id);
                needs.run = Some((key_id(&run_started_key(run_id)), RunAt { line, offset }));
            }
        }
        if home {
            needs.entry = self.entry(f, record)?;
        }
        let rule = record
            .privileged()
            .filter(|rule| home && (f.has_actor || !rule.legacy_without_actor));
        if home && record == RecordType::Audit {
            needs.audited = audited_record(&f.key).map(|(rule, target)| AuditedRef {
                record_key: key_id(target),
                rule,
                line,
                offset,
            });
        }
        if let Some(rule) = rule {
            needs.audit = Some(PrivilegedRef {
                audit_key: key_id(&allowed_key(rule.action, &f.key)),
                stream,
                line,
                offset,
                key: f.key.as_ref().into(),
                rule,
            });
        }
        Ok(needs)
    }

    /// What a SPEND, REFUND, `run_started` or `run_ended` adds to its run's account.
    fn entry(&mut self, f: &Facts<'_>, record: RecordType) -> Result<Option<Entry>, String> {
        if !matches!(
            record,
            RecordType::Spend | RecordType::Refund | RecordType::RunStarted | RecordType::RunEnded
        ) {
            return Ok(None);
        }
        let run_id = need(f.run_id.as_deref(), record, "a run_id")?;
        let tenant = need(f.tenant_id.as_deref(), record, "a tenant_id")?;
        let wo = need(f.work_order_id.as_deref(), record, "a work_order_id")?;
        let number = need(f.run, record, "a run number (run)")?;
        let run = self.last_ident.key(run_id, tenant, wo, number);
        let attempt = || -> Result<u32, String> {
            let a = need(f.attempt, record, "an attempt")?;
            u32::try_from(a).map_err(|_| format!("attempt {a} is out of range"))
        };
        Ok(Some(match record {
            RecordType::RunStarted => Entry::Started { run },
            RecordType::RunEnded => Entry::Ended {
                run,
                attempt: attempt().and_then(|a| match a {
                    0 => Err("a run_ended's attempt is at least 1".to_string()),
                    a => Ok(a),
                })?,
                charged: need(f.charged, record, "charged_credits")?,
                refunded: need(f.refunded, record, "refunded_credits")?,
            },
            _ => {
                let amount = need(f.amount, record, "an integer amount_credits")?;
                let (charged, refunded) = match record {
                    // A SPEND's sign is a billing rule of its own (billing.rs).
                    RecordType::Spend => (amount.checked_neg().unwrap_or(i64::MAX), 0),
                    _ => (0, amount),
                };
                Entry::Billed {
                    run,
                    attempt: attempt()?,
                    charged,
                    refunded,
                }
            }
        }))
    }

    /// Keep what a committed line needs; an error when a run's sums leave 64 bits.
    pub fn commit(&mut self, needs: Needs) -> Result<(), String> {
        if let Some((key, at)) = needs.run {
            self.runs.insert_new(key, at);
        }
        if let Some(p) = needs.audit {
            self.privileged.push(p);
        }
        if let Some(a) = needs.audited {
            self.audited.push(a);
        }
        match needs.entry {
            None => Ok(()),
            Some(Entry::Started { run }) => {
                self.started.insert_new(run, Ended::default());
                Ok(())
            }
            Some(Entry::Ended {
                run,
                attempt,
                charged,
                refunded,
            }) => {
                match self.started.get(&run) {
                    Some(e) if e.attempt > attempt => {}
                    Some(_) => self.started.insert(
                        run,
                        Ended {
                            charged,
                            refunded,
                            attempt,
                        },
                    ),
                    None if self.stray_ends.contains(&run) => {}
                    None => self.stray_ends.push(run),
                }
                Ok(())
            }
            Some(Entry::Billed {
                run,
                attempt,
                charged,
                refunded,
            }) => self.bill(run, attempt, charged, refunded),
        }
    }

    /// Add a SPEND's or REFUND's credits to its run's account.
    fn bill(
        &mut self,
        run: ShortId,
        attempt: u32,
        charged: i64,
        refunded: i64,
    ) -> Result<(), String> {
        if self.current.is_none_or(|(k, _)| k != run) {
            if let Some((k, b)) = self.current.take() {
                self.billed.insert(k, b);
            }
            self.current = Some((run, self.billed.get(&run).unwrap_or_default()));
        }
        let Some((_, b)) = &mut self.current else {
            return Ok(());
        };
        let (c, r, hi) = (b.charged, b.refunded, b.hi);
        match (c.checked_add(charged), r.checked_add(refunded)) {
            (Some(c), Some(r)) => {
                *b = Billed {
                    charged: c,
                    refunded: r,
                    hi: hi.max(attempt),
                };
                Ok(())
            }
            _ => Err("the credits of this record's run overflow 64 bits".into()),
        }
    }

    /// Room for the accounts of `runs` runs of a file of `stream`, so they never move while
    /// they grow (`KeySet::reserve`).
    pub fn reserve(&mut self, stream: Stream, runs: usize) {
        match stream {
            Stream::Billing => self.billed.reserve(runs),
            Stream::Evidence => self.started.reserve(runs),
            Stream::Audit => {}
        }
    }

    /// Lines were taken back (a torn tail): the caches may name a run no committed line names.
    pub fn forget_cache(&mut self) {
        self.last_run.clear();
    }

    /// Forget what lines after `lines` needed (they were a torn tail). The run accounts come
    /// back from `accounts_at`, what they were at that boundary.
    pub fn rewind(&mut self, lines: u64, accounts_at: Option<Refs>) {
        self.runs.retain(|_, r| r.line <= lines);
        self.privileged.retain(|p| p.line <= lines);
        self.audited.retain(|a| a.line <= lines);
        if let Some(at) = accounts_at {
            self.billed = at.billed;
            self.current = at.current;
            self.started = at.started;
            self.stray_ends = at.stray_ends;
        }
        self.forget_cache();
    }

    /// Whether any committed line touched a run's account (a SPEND, REFUND, `run_started` or
    /// `run_ended`): the accounts are checked over a whole history only.
    pub fn has_accounts(&self) -> bool {
        self.current.is_some()
            || !self.billed.is_empty()
            || !self.started.is_empty()
            || !self.stray_ends.is_empty()
    }

    /// Each run's billed sums (the current one included).
    fn billed_runs(&self) -> impl Iterator<Item = (ShortId, Billed)> + '_ {
        let current = self.current.map(|(k, _)| k);
        let stored = self
            .billed
            .iter()
            .filter(move |(k, _)| Some(**k) != current)
            .map(|(k, b)| (*k, b));
        stored.chain(self.current)
    }

    fn billed_of(&self, key: &ShortId) -> Option<Billed> {
        match self.current {
            Some((k, b)) if k == *key => Some(b),
            _ => self.billed.get(key),
        }
    }
}

/// The privileged rule and the record key an audit record's key names, when it is the allowed
/// audit record of a privileged record (`audit/{action}/{the record's key}`). Not a denial,
/// nor the `publish-set/…` record that audited a whole publish until 2026-12-03 (it names no
/// record: `Privileged::key_prefix`).
pub(crate) fn audited_record(audit_key: &str) -> Option<(&'static Privileged, &str)> {
    let rest = audit_key.strip_prefix("audit/")?;
    PRIVILEGED.iter().find_map(|rule| {
        let target = rest.strip_prefix(rule.action)?.strip_prefix('/')?;
        target
            .starts_with(rule.key_prefix)
            .then_some((rule, target))
    })
}

fn is_billed(record: RecordType) -> bool {
    matches!(record, RecordType::Spend | RecordType::Refund)
}

/// What `check` found.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub damage: Vec<Damage>,
    /// Privileged records without their audit record: a crash between the two writes (the
    /// next writer adds the audit record), or a forgery.
    pub unaudited: Vec<PrivilegedRef>,
}

/// One file as `check` sees it: its references (None when not collected) and where its keys
/// and lines are.
#[derive(Clone, Copy)]
pub(crate) struct Side<'a> {
    pub refs: Option<&'a Refs>,
    pub source: Source<'a>,
}

/// Check the references of each file (by `Stream::index`) against the keys recorded in
/// evidence.jsonl and audit.jsonl, and each run's account.
pub(crate) fn check(sides: [Side<'_>; 3]) -> Findings {
    let [billing, evidence, audit] = sides;
    let mut found = Findings::default();
    for side in sides {
        let Some(refs) = side.refs else { continue };
        for (key, run) in refs.runs.iter() {
            if !evidence.source.index.contains_key(key) {
                found.damage.push(Damage {
                    stream: side.source.stream,
                    line: run.line,
                    message: orphan_message(side.source.lines, run.offset),
                    shortfall: false,
                });
            }
        }
        for p in &refs.privileged {
            if !audit.source.index.contains_key(&p.audit_key) {
                found.unaudited.push(p.clone());
            }
        }
        for a in &refs.audited {
            let home = sides[a.rule.record.stream().index()].source;
            if !home.index.contains_key(&a.record_key) {
                found.damage.push(Damage {
                    stream: side.source.stream,
                    line: a.line,
                    message: unmatched_audit_message(side.source.lines, a),
                    // As a shortfall: a merge interrupted between its renames leaves it too
                    // (audit.jsonl is replaced first), and the same merge completes it.
                    shortfall: true,
                });
            }
        }
    }
    if let (Some(b), Some(e)) = (billing.refs, evidence.refs) {
        let claims = claims(b, e);
        if !claims.is_empty() {
            found
                .damage
                .extend(accounts::resolve(claims, &billing.source, &evidence.source));
        }
    }
    found.damage.sort_by_key(|o| (o.stream.index(), o.line));
    found.damage.dedup();
    found
}

/// The runs whose accounts need a closer look: every other run adds up.
fn claims(b: &Refs, e: &Refs) -> Vec<Claim> {
    let mut claims = Vec::new();
    for (key, billed) in b.billed_runs() {
        let claimed = match e.started.get(&key) {
            None => Claimed::Unstarted,
            Some(end) if end.attempt == 0 => continue,
            Some(end) => {
                let (attempt, hi) = (u64::from(end.attempt), u64::from(billed.hi));
                let same = (billed.charged, billed.refunded) == (end.charged, end.refunded);
                if hi <= attempt && same {
                    continue;
                }
                Claimed::Ended(end)
            }
        };
        claims.push(Claim { key, claimed });
    }
    for (key, end) in e.started.iter() {
        let owed = (end.charged, end.refunded) != (0, 0);
        if end.attempt > 0 && owed && b.billed_of(key).is_none() {
            claims.push(Claim {
                key: *key,
                claimed: Claimed::Ended(end),
            });
        }
    }
    claims.extend(e.stray_ends.iter().map(|key| Claim {
        key: *key,
        claimed: Claimed::StrayEnd,
    }));
    claims
}

/// The message of an orphan, from its line read back (orphans are damage: rare).
pub(crate) fn orphan_message(lines: Lines<'_>, offset: u64) -> String {
    let bytes = lines.line(offset).unwrap_or_default();
    let (record, run_id) = match line::parse(&bytes, false) {
        Ok(f) => (
            f.record.map_or("a", RecordType::name).to_string(),
            f.run_id.as_deref().unwrap_or("?").to_string(),
        ),
        Err(_) => ("a record".to_string(), "?".to_string()),
    };
    orphan_text(&record, &run_id)
}

/// The message of an allowed audit record whose record is missing, from its line read back.
fn unmatched_audit_message(lines: Lines<'_>, a: &AuditedRef) -> String {
    let bytes = lines.line(a.offset).unwrap_or_default();
    let key = match line::parse(&bytes, false) {
        Ok(f) => f.key.into_owned(),
        Err(_) => "?".to_string(),
    };
    let target = audited_record(&key).map_or("?", |(_, t)| t);
    format!(
        "audit record {key} says {} {target} was recorded, but {} holds no such record: it was removed (a forgery, or a copy cut back), or a `ledger merge` was interrupted between its renames (run the same merge again); otherwise restore the directory from a good copy (platform state pull)",
        a.rule.record.name(),
        a.rule.record.stream().file_name()
    )
}

impl PrivilegedRef {
    /// The problem as `verify` reports it.
    pub fn message(&self) -> String {
        format!(
            "{} {} has no audit record ({}) in audit.jsonl: a crash between the two writes, which the next writer repairs by adding it, or a forged record (then restore the directory from a good copy before any writer runs)",
            self.rule.record.name(),
            self.key,
            allowed_key(self.rule.action, &self.key)
        )
    }
}
