//! `merge`: fold shard billing-state directories into one; the target's bytes stay a prefix, new records are re-chained, all or nothing.
use super::billing::{BillingKind, BillingOp, BillingProblem, BillingRule, Spent};
use super::check::{differing_fields, Recorded};
use super::file::{chain, open_existing, sync_dir, FileState};
use super::install::REPLACE_ORDER;
use super::key::{key_id, KeyId};
use super::line;
use super::lines::Lines;
use super::lock::{DirLock, DEFAULT_LEDGER_LOCK_TIMEOUT, LEDGER_LOCK};
use super::open::load_locked_for_merge;
use super::read::TornTail;
use super::scan::{self, Committed, Head, Mode, Scan};
use super::{damaged, Repair, RepairKind, SinkError, Stream};
use crate::error::{Error, Result};
use crate::records::template::{Template, CHAIN_FIELDS};
use crate::records::RecordType;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Records added to, and found already in, one file of the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeFile {
    pub stream: Stream,
    pub added: u64,
    pub already_present: u64,
}

/// What `merge` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeReport {
    pub into: PathBuf,
    /// In the order they were merged (sorted).
    pub segments: Vec<PathBuf>,
    pub files: Vec<MergeFile>,
    /// Torn tails removed from the target before merging.
    pub repairs: Vec<Repair>,
    /// Interrupted writes at the end of segment files (a shard that crashed mid-write):
    /// not merged, and left in the segment as they are, in the order they were met.
    pub skipped: Vec<TornTail>,
    /// The note on temp files an interrupted merge left in `into`, removed first.
    pub leftovers: Option<String>,
}

struct Line {
    line: u64,
    bytes: Vec<u8>,
    key: KeyId,
    key_text: String,
    digest: [u8; 32],
    billing: Option<BillingOp>,
}

/// Merge `segments` into `into` (SPEC §3 `ledger merge`). Per file, the target's records stay
/// byte-identical; records of the segments (sorted by path) whose keys the target lacks are
/// appended in segment order then seq, re-chained and keeping `recorded_at` and batch fields.
/// A segment file's torn tail (an incomplete last batch or an unterminated last line: all a
/// crash leaves, SPEC §4) is skipped as a reader skips it, and reported in `skipped`; the
/// segment is never modified. A segment that fails verification otherwise (`verify`,
/// cross-file rules included, a privileged record without its audit record too), a key with
/// another payload, a batch partly present or a billing rule broken by the merged order
/// fails the whole merge and writes nothing. Files are replaced by rename after all three
/// are written and flushed (in [`REPLACE_ORDER`]), so the same inputs give the same bytes.
pub fn merge(into: &Path, segments: &[PathBuf]) -> Result<MergeReport> {
    for seg in segments {
        check_segment(into, seg)?;
    }
    crate::folder::create(into, "--into")?;
    let lock = DirLock::acquire(into, LEDGER_LOCK, DEFAULT_LEDGER_LOCK_TIMEOUT, |_| {})?;
    // A merge killed before its renames left its temp files; only a merge makes them, under
    // this lock, so none is in use.
    let leftovers = crate::leftovers::remove(into, &[MERGE_TEMP], "platform ledger merge");
    // Runs billing.jsonl holds less of than their run_ended states are what this merge
    // interrupted between its renames leaves: its result must add up (checked below).
    let (mut files, repairs, shortfalls) = load_locked_for_merge(into)?;
    let mut sorted = segments.to_vec();
    sorted.sort();
    let mut outputs = Vec::new();
    let mut report_files = Vec::new();
    let mut skipped = Vec::new();
    // Billing first: its conflicts (an amount) say the most about a wrong shard.
    for stream in Stream::ALL {
        let f = &mut files[stream.index()];
        let mut out = Output {
            head: f.scan.head,
            bytes: Vec::new(),
            added: 0,
            present: 0,
            base_seq: f.scan.head.seq,
            origins: Vec::new(),
        };
        for seg in &sorted {
            skipped.extend(merge_segment(f, &seg.join(stream.file_name()), &mut out)?);
        }
        report_files.push(MergeFile {
            stream,
            added: out.added,
            already_present: out.present,
        });
        if !out.bytes.is_empty() {
            outputs.push((
                stream,
                f.path.clone(),
                write_temp(into, &f.path, &out.bytes)?,
            ));
        }
    }
    if !shortfalls.is_empty() {
        check_result(&files, &outputs)?;
    }
    outputs.sort_by_key(|(s, _, _)| REPLACE_ORDER.iter().position(|r| r == s));
    for (_, path, temp) in outputs {
        temp.persist(&path)
            .map_err(|e| Error::io(&path, &e.error))?;
    }
    sync_dir(into)?;
    drop(lock);
    Ok(MergeReport {
        into: into.to_path_buf(),
        segments: sorted,
        files: report_files,
        repairs,
        skipped,
        leftovers,
    })
}

/// The merged files (the target's, or the temp file replacing it) must verify, rules across
/// files included, when the target did not add up before the merge: the records it lacked
/// must come from the segments, or nothing is merged.
fn check_result(
    files: &[FileState],
    outputs: &[(Stream, PathBuf, tempfile::NamedTempFile)],
) -> Result<()> {
    let path = |s: Stream| {
        outputs
            .iter()
            .find(|(o, _, _)| *o == s)
            .map_or(files[s.index()].path.as_path(), |(_, _, t)| t.path())
    };
    let paths = Stream::ALL.map(path);
    let report = super::verify::verify_paths(paths)?;
    let damage = report.problems.iter().find(|p| p.repair.is_none());
    let Some(p) = damage else {
        return Ok(());
    };
    // Named as the target's file (the temp file is gone when this is read).
    let target = report
        .files
        .iter()
        .position(|f| f.file == p.file)
        .map_or(p.file.clone(), |i| files[i].path.display().to_string());
    Err(Error::failure(format!(
        "the merged ledger would not add up: {target}:{}: {}; nothing was merged",
        p.line, p.message
    ))
    .topic(crate::error::Topic::LedgerDamaged)
    .at(format!("{target}:{}", p.line))
    .help("the target holds less of an ended run than its run_ended states, and no segment brings the rest: a `ledger merge` interrupted between its renames is completed by the same merge with the same segments; otherwise restore the target from a good copy (platform state pull)"))
}

struct Output {
    head: Head,
    bytes: Vec<u8>,
    added: u64,
    present: u64,
    /// The target's last seq before this merge: records above it are staged here.
    base_seq: u64,
    /// Where each staged record came from (segment file, line), in seq order: a conflict
    /// with one of them names that line, not one the target does not have yet.
    origins: Vec<(PathBuf, u64)>,
}

impl Output {
    /// `file line N` of the record at `seq` of the merged file: the target's own line, or
    /// the segment line it was staged from.
    fn where_is(&self, target: &Path, seq: u64) -> String {
        let staged = seq
            .checked_sub(self.base_seq + 1)
            .and_then(|i| self.origins.get(usize::try_from(i).ok()?));
        match staged {
            Some((seg, line)) => format!(
                "{} line {line} (merged before it, not yet in {})",
                seg.display(),
                target.display()
            ),
            None => format!("{} line {seq}", target.display()),
        }
    }
}

/// A segment must be a directory that `integrity-validate` accepts, but for torn tails, which
/// the merge skips. A privileged record without its audit record is refused rather than
/// repaired in D: no shard writes one (only admin-topup, admin-adjust, rerun and publish do, and any
/// writer on the segment adds the missing record), and a merge must not vouch for a record
/// a reader would refuse to count (`Reading::refuse_unaudited`). `into` is only named in the
/// help.
fn check_segment(into: &Path, seg: &Path) -> Result<()> {
    if !seg.is_dir() {
        return Err(Error::input(format!(
            "segment {} is not a billing-state directory",
            seg.display()
        ))
        .at(seg.display().to_string()));
    }
    let report = super::verify(seg)?;
    let damage: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.repair.is_none())
        .collect();
    if let Some(p) = damage.first() {
        return Err(Error::failure(format!(
            "segment {} fails verification ({} problem(s)); nothing was merged: {p}",
            seg.display(),
            damage.len()
        )).topic(crate::error::Topic::LedgerDamaged)
        .at(format!("{}:{}", p.file, p.line))
        .help(format!(
            "a complete line that fails its checks is damage, not an interrupted write (only an interrupted last write is skipped); `platform integrity-validate --billing-state-dir {seg}` lists every problem. Running its shard again cannot rebuild it (the orchestrator workflow never re-runs a shard). Put back a good copy of {seg} if you have one; otherwise merge the other segments without it (`platform ledger merge --into {into} <the other segments>`): what it recorded stays unmerged, and the next orchestrator pass runs its work orders again (docs/operations.md §5)",
            seg = seg.display(),
            into = into.display(),
        )));
    }
    let unaudited = report
        .problems
        .iter()
        .find(|p| p.repair == Some(RepairKind::AuditAdded));
    if let Some(p) = unaudited {
        return Err(Error::failure(format!(
            "segment {}: {p}; nothing was merged",
            seg.display()
        )).topic(crate::error::Topic::LedgerDamaged)
        .at(format!("{}:{}", p.file, p.line))
        .help(format!(
            "`ledger merge` does not add a missing audit record: if a crash cut the two writes apart, let a writer add it in the segment (replay the same admin-topup/admin-adjust/rerun/publish with --billing-state-dir {}) and merge again; if nobody posted that record, it is forged: rebuild the segment from a good copy",
            seg.display()
        )));
    }
    Ok(())
}

/// Merge one segment file into `out`; its torn tail, if any, is left out and returned.
fn merge_segment(f: &mut FileState, seg_path: &Path, out: &mut Output) -> Result<Option<TornTail>> {
    let Some(file) = open_existing(seg_path)? else {
        return Ok(None);
    };
    let mut scan = Scan::new(f.scan.stream, Mode::Read);
    let mut group: Vec<Line> = Vec::new();
    let mut sink = |c: Committed<'_>| -> std::result::Result<(), SinkError> {
        let (ln, bytes) = (c.line, c.bytes);
        let facts = line::parse(bytes, true).map_err(|u| damaged(seg_path, ln, &u.message))?;
        let key = key_id(&facts.key);
        let billing = BillingOp::of_line(&facts, key).map_err(|m| damaged(seg_path, ln, &m))?;
        let done = match (&facts.batch, facts.batch_len) {
            (Some(_), Some(len)) => group.len() as u64 + 1 >= len,
            _ => true,
        };
        group.push(Line {
            line: ln,
            bytes: bytes.to_vec(),
            key,
            key_text: facts.key.to_string(),
            digest: facts.payload_digest.unwrap_or([0; 32]),
            billing,
        });
        if done {
            let batch = std::mem::take(&mut group);
            add_batch(f, seg_path, batch, out)?;
        }
        Ok(())
    };
    scan::feed_file(&file, (0, u64::MAX), &mut scan, &mut sink)
        .map_err(|e| e.into_error(seg_path))?;
    let torn = scan.finish();
    if let Some(p) = scan.problems.first() {
        return Err(damaged(seg_path, p.line, &p.message).help(
            "a segment must verify before it is merged: run `platform integrity-validate --billing-state-dir` on it",
        ));
    }
    // The scan handed over whole batches only: the torn lines never reached `out`.
    Ok(torn.map(|t| TornTail::of(seg_path, t)))
}

/// Add one whole batch of a segment: all of it is new, or all of it is recorded already with
/// the same payloads (then nothing is added); anything else is a conflict.
fn add_batch(f: &mut FileState, seg_path: &Path, batch: Vec<Line>, out: &mut Output) -> Result<()> {
    let present = recorded_already(f, seg_path, &batch, out)?;
    if present == batch.len() {
        out.present += present as u64;
        return Ok(());
    }
    if present > 0 {
        let first = batch.first().map_or(0, |l| l.line);
        return Err(Error::failure(format!(
            "merge conflict: the batch at {} line {first} is partly recorded in {}; nothing was merged",
            seg_path.display(),
            f.path.display()
        )).topic(crate::error::Topic::LedgerConflict)
        .at(format!("{}:{first}", seg_path.display())));
    }
    for l in batch {
        append_line(f, seg_path, l, out)?;
    }
    Ok(())
}

/// What to do about a key recorded with another payload. The usual cause is an input cut from
/// an older snapshot than the target: a later pass recorded the same run number (in another
/// period, or with another file digest) meanwhile, so it cannot be merged at all.
const CONFLICT_HELP: &str = "the same key must carry the same payload in every input. Usually the input was cut from an older snapshot than the ledger it goes into, and a later pass has recorded that run since (e.g. in another period): in the orchestrator workflow, a shard job re-run after another run had merged (until 2026-12-03 the workflow allowed it). Such an input cannot be merged: merge the others without it; what it ran is not recorded, and its work orders run on the next pass if still due. Otherwise the inputs ran different versions of a module or config: find which one is wrong before merging";

/// How many lines of the batch the target records already, with the same payload; a key
/// recorded with another payload is a conflict naming the differing fields.
fn recorded_already(f: &FileState, seg_path: &Path, batch: &[Line], out: &Output) -> Result<usize> {
    let mut present = 0;
    for l in batch {
        let Some(offset) = f.scan.index.get(&l.key) else {
            continue;
        };
        let r = Recorded::read(&f.path, merged_lines(f, out), offset, &l.key)?;
        if r.payload == l.digest {
            present += 1;
            continue;
        }
        let recorded = r.object;
        let posted: Map<String, Value> = serde_json::from_slice(&l.bytes).unwrap_or_default();
        return Err(Error::failure(format!(
            "merge conflict: {} line {} records idempotency key {} with a different payload than {}: {}; nothing was merged",
            seg_path.display(),
            l.line,
            l.key_text,
            out.where_is(&f.path, r.seq),
            differing_fields(&recorded, &posted)
        )).topic(crate::error::Topic::LedgerConflict)
        .at(format!("{}:{}", seg_path.display(), l.line))
        .help(CONFLICT_HELP));
    }
    Ok(present)
}

/// Re-chain one new line onto the target (new seq and prev_hash, its own `recorded_at`),
/// checking its billing rules against the target's balances.
fn append_line(f: &mut FileState, seg_path: &Path, l: Line, out: &mut Output) -> Result<()> {
    let mut obj: Map<String, Value> = serde_json::from_slice(&l.bytes)
        .map_err(|e| damaged(seg_path, l.line, &format!("not a JSON object: {e}")))?;
    obj.remove("hash");
    if let (Some(billing), Some(op)) = (f.scan.billing.as_mut(), &l.billing) {
        // Disjoint fields of `f`: the billing state changes, the index and file are read.
        let lines = Lines::staged(&f.file, &out.bytes, f.scan.head.offset);
        let index = &f.scan.index;
        let find = |k: &KeyId| Spent::recorded(index, lines, k);
        billing
            .apply(op, true, &find)
            .map_err(|m| billing_refusal(&f.path, f.scan.head.offset, seg_path, l.line, op, &m))?;
    }
    // The line keeps its own `recorded_at`; seq and prev_hash are the target's.
    let recorded_at = obj
        .get("recorded_at")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| damaged(seg_path, l.line, "no recorded_at"))?;
    let template = Template::new(&obj, &CHAIN_FIELDS).map_err(|e| damaged(seg_path, l.line, &e))?;
    let c = chain(&template, out.head, &recorded_at)?;
    f.scan.index.insert(l.key, c.offset);
    out.head = c.head;
    out.bytes.extend_from_slice(&c.line);
    out.origins.push((seg_path.to_path_buf(), l.line));
    out.added += 1;
    Ok(())
}

/// The error for a segment line the merged order refuses. A SPEND refused for credits is, in
/// the orchestrator workflow, a debit that reached the target after the shards' snapshot:
/// the shard charged against a balance without it, and its work has run. The error names
/// those debits and what brings the records in.
fn billing_refusal(
    target: &Path,
    target_len: u64,
    seg_path: &Path,
    line: u64,
    op: &BillingOp,
    problem: &BillingProblem,
) -> Error {
    let at = format!("{}:{line}", seg_path.display());
    let refused = format!(
        "merging {} line {line} would break a billing rule: {problem}; nothing was merged",
        seg_path.display()
    );
    let error = |message: String, help: String| {
        Error::failure(message)
            .topic(crate::error::Topic::BillingRule)
            .at(at.clone())
            .help(help)
    };
    let overdrawn = op.kind == BillingKind::Spend && problem.rule == BillingRule::NotEnoughCredits;
    if !overdrawn {
        return error(
            refused,
            "segments are merged in path order: a spend must come after the top-up that pays for it".into(),
        );
    }
    let tenant = &op.tenant;
    let debits = debits_after_snapshot(target, target_len, seg_path, tenant);
    if debits.is_empty() {
        return error(
            refused,
            format!(
                "the segment's SPENDs were checked against the balance of its snapshot: if tenant {tenant} was debited in {} since, credit the debit back (`platform admin-adjust` with a positive amount), merge again, then debit what the balance allows; otherwise a spend must come after the top-up that pays for it (segments are merged in path order)",
                target.display()
            ),
        );
    }
    let total = debits
        .iter()
        .fold(0u64, |sum, d| sum.saturating_add(d.amount.unsigned_abs()));
    let named: Vec<String> = debits
        .iter()
        .map(|d| {
            format!(
                "ADJUST {} ({} credits, {} line {})",
                d.key,
                d.amount,
                target.display(),
                d.line
            )
        })
        .collect();
    error(
        format!(
            "{refused}. Tenant {tenant} was debited after the snapshot this segment's shard started from, by {}: the shard charged (and ran) its work against the balance before that debit",
            named.join(", ")
        ),
        format!(
            "credit tenant {tenant} back {total} credits (`platform admin-adjust --tenant-id {tenant} --amount-credits {total} --reason-slug correction --reference <new reference>`, or admin-adjust.yml), run the same merge again (in orchestrator.yml: \"Re-run failed jobs\" while the run's artifacts last, the snapshot 1 day), then debit what {tenant}'s balance allows; admin-adjust.yml waits for orchestrator runs in flight so that this does not happen (docs/operations.md §5)"
        ),
    )
}

/// A debit ADJUST of the target.
struct Debit {
    key: String,
    amount: i64,
    line: u64,
}

/// The debit ADJUSTs of `tenant` among the target's first `target_len` bytes whose keys the
/// segment lacks: recorded after the snapshot the segment grew from. Best effort (an error
/// message is being built): what cannot be read is left out.
fn debits_after_snapshot(
    target: &Path,
    target_len: u64,
    seg_path: &Path,
    tenant: &str,
) -> Vec<Debit> {
    let mut debits = Vec::new();
    for_each_line(target, target_len, |n, facts| {
        let debit = facts.record == Some(RecordType::Adjust)
            && facts.tenant_id.as_deref() == Some(tenant)
            && facts.amount.is_some_and(|a| a < 0);
        if debit {
            debits.push(Debit {
                key: facts.key.to_string(),
                amount: facts.amount.unwrap_or_default(),
                line: n,
            });
        }
    });
    if debits.is_empty() {
        return debits;
    }
    let mut in_segment = std::collections::HashSet::new();
    for_each_line(seg_path, u64::MAX, |_, facts| {
        if debits.iter().any(|d| d.key == facts.key) {
            in_segment.insert(facts.key.to_string());
        }
    });
    debits.retain(|d| !in_segment.contains(&d.key));
    debits
}

/// Each readable line (numbered from 1) among the first `len` bytes of a ledger file.
fn for_each_line(path: &Path, len: u64, mut each: impl FnMut(u64, &line::Facts<'_>)) {
    let Ok(Some(file)) = open_existing(path) else {
        return;
    };
    let _ = super::lines::each_line(&file, len, &mut |n, _, bytes| {
        if let Ok(facts) = line::parse(bytes, false) {
            each(n, &facts);
        }
    });
}

/// The target's lines: on disk up to its head, then the ones this merge added.
fn merged_lines<'a>(f: &'a FileState, out: &'a Output) -> Lines<'a> {
    Lines::staged(&f.file, &out.bytes, f.scan.head.offset)
}

/// A merged file before its rename into place.
const MERGE_TEMP: crate::leftovers::Leftover<'static> =
    crate::leftovers::Leftover::file(".merge-", "");

/// The target's current bytes plus `extra`, flushed, in a temp file beside it.
fn write_temp(dir: &Path, path: &Path, extra: &[u8]) -> Result<tempfile::NamedTempFile> {
    let io = |e: std::io::Error| Error::io(path, &e);
    let mut temp = tempfile::Builder::new()
        .prefix(MERGE_TEMP.prefix)
        .tempfile_in(dir)
        .map_err(io)?;
    let mut src = std::fs::File::open(path).map_err(io)?;
    std::io::copy(&mut src, temp.as_file_mut()).map_err(io)?;
    temp.as_file_mut().write_all(extra).map_err(io)?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(temp.path(), meta.permissions()).map_err(io)?;
    }
    temp.as_file().sync_all().map_err(io)?;
    Ok(temp)
}
