//! Cross-file rules (SPEC §7 "Across files"): every record of a run names a run whose `run_started` is in evidence.jsonl; every privileged record has its audit record.
//!
//! Each scan collects, for the lines it commits, what they need from the other files (the
//! `run_started` key of each run they name, the audit key of each privileged record); `check`
//! then looks those keys up in the other scans' key sets. The check is order-independent, so
//! a merge that replaced audit.jsonl and evidence.jsonl but crashed before billing.jsonl
//! still passes. Cost: one key hash per *run* (records of a run are adjacent, so a cache of
//! the last run id skips the rest) and one per privileged record; memory: 32 bytes per run
//! (its key id and where it is first named: the message of an orphan reads that line back).
use super::key::{key_id, KeyId};
use super::keyset::KeySet;
use super::line::{self, Facts};
use super::lines::Lines;
use crate::records::audit::allowed_key;
use crate::records::evidence::run_started_key;
use crate::records::{Privileged, RecordType, Stream};

/// What one line needs from the other files, found when it is read.
#[derive(Debug, Default)]
pub(crate) struct Needs {
    run: Option<(KeyId, RunAt)>,
    audit: Option<PrivilegedRef>,
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

/// A privileged record and the audit record it needs.
#[derive(Debug, Clone)]
pub(crate) struct PrivilegedRef {
    pub audit_key: KeyId,
    pub line: u64,
    /// Byte offset of the record's line (a writer reads it back to build the audit record).
    pub offset: u64,
    pub key: Box<str>,
    pub rule: &'static Privileged,
}

/// The references of one file's committed lines.
#[derive(Debug, Default)]
pub(crate) struct Refs {
    /// The `run_started` key of each run named, and where it is first named.
    runs: KeySet<RunAt>,
    privileged: Vec<PrivilegedRef>,
    /// The run id of the previous line that named one: most lines of a run are adjacent.
    last_run: String,
}

impl Refs {
    /// What the line `f` (of type `record`) at `line`/`offset` needs; an error when a record
    /// of a run names none.
    pub fn needs(
        &mut self,
        f: &Facts<'_>,
        record: RecordType,
        line: u64,
        offset: u64,
    ) -> Result<Needs, String> {
        let mut needs = Needs::default();
        if record.names_a_run() {
            let run_id = f
                .run_id
                .as_deref()
                .ok_or_else(|| format!("a {} record needs a run_id", record.name()))?;
            if run_id != self.last_run {
                self.last_run.clear();
                self.last_run.push_str(run_id);
                needs.run = Some((key_id(&run_started_key(run_id)), RunAt { line, offset }));
            }
        }
        let rule = record
            .privileged()
            .filter(|rule| f.has_actor || !rule.legacy_without_actor);
        if let Some(rule) = rule {
            needs.audit = Some(PrivilegedRef {
                audit_key: key_id(&allowed_key(rule.action, &f.key)),
                line,
                offset,
                key: f.key.as_ref().into(),
                rule,
            });
        }
        Ok(needs)
    }

    /// Keep what a committed line needs.
    pub fn commit(&mut self, needs: Needs) {
        if let Some((key, at)) = needs.run {
            self.runs.insert_new(key, at);
        }
        if let Some(p) = needs.audit {
            self.privileged.push(p);
        }
    }

    /// Lines were taken back (a torn tail): the cache may name a run no committed line names.
    pub fn forget_cache(&mut self) {
        self.last_run.clear();
    }

    /// Forget what lines after `lines` needed (they were a torn tail).
    pub fn rewind(&mut self, lines: u64) {
        self.runs.retain(|_, r| r.line <= lines);
        self.privileged.retain(|p| p.line <= lines);
        self.forget_cache();
    }
}

/// A record of a run whose `run_started` is missing: damage (a lost or truncated
/// evidence.jsonl, or a forged record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Orphan {
    pub stream: Stream,
    pub line: u64,
    pub message: String,
}

/// What `check` found.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub orphans: Vec<Orphan>,
    /// Privileged records without their audit record: a crash between the two writes (the
    /// next writer adds the audit record), or a forgery.
    pub unaudited: Vec<PrivilegedRef>,
}

/// Check the references of each file (`(stream, refs, its lines)`, refs None when not
/// collected) against the keys recorded in evidence.jsonl and audit.jsonl.
pub(crate) fn check(
    files: [(Stream, Option<&Refs>, Lines<'_>); 3],
    in_evidence: impl Fn(&KeyId) -> bool,
    in_audit: impl Fn(&KeyId) -> bool,
) -> Findings {
    let mut found = Findings::default();
    for (stream, refs, lines) in files {
        let Some(refs) = refs else { continue };
        for (key, run) in refs.runs.iter() {
            if !in_evidence(key) {
                found.orphans.push(Orphan {
                    stream,
                    line: run.line,
                    message: orphan_message(lines, run.offset),
                });
            }
        }
        for p in &refs.privileged {
            if !in_audit(&p.audit_key) {
                found.unaudited.push(p.clone());
            }
        }
    }
    found.orphans.sort_by_key(|o| (o.stream.index(), o.line));
    found
}

/// The message of an orphan, from its line read back (orphans are damage: rare).
fn orphan_message(lines: Lines<'_>, offset: u64) -> String {
    let bytes = lines.line(offset).unwrap_or_default();
    let (record, run_id) = match line::parse(&bytes, false) {
        Ok(f) => (
            f.record.map_or("a", RecordType::name).to_string(),
            f.run_id.as_deref().unwrap_or("?").to_string(),
        ),
        Err(_) => ("a record".to_string(), "?".to_string()),
    };
    format!(
        "{record} names run {run_id}, whose run_started is not in evidence.jsonl (it was lost, truncated or edited, or this record is forged): restore evidence.jsonl from a good copy (platform state pull); the orchestrator refuses to charge anything until then"
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
