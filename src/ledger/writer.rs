//! The one append path: catch up, idempotency, billing and cross-file rules, one write and one flush per batch, then the audit record of a privileged one.
use super::billing::BillingOp;
use super::file::{read_object, write_batch, FileState, Posted};
use super::key::{key_id, KeyId};
use super::lock::{DirLock, DEFAULT_LEDGER_LOCK_TIMEOUT, LEDGER_LOCK};
use super::open::{load_file, load_locked, remove_torn_tail, scan_to_end};
use super::prepare::{prepare, prepare_one, Prepared};
use super::scan::IndexEntry;
use super::{Repair, RepairKind};
use crate::error::{Error, Result};
use crate::records::{Audit, Payload, Stream, NON_PAYLOAD_FIELDS};
use serde_json::{Map, Value};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whether `append` wrote the batch or found it already recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendStatus {
    Appended,
    AlreadyRecorded,
}

/// What `append` did. Reported only after the bytes were flushed to disk.
#[derive(Debug, Clone)]
pub struct AppendOutcome {
    pub status: AppendStatus,
    pub records: Vec<Posted>,
    /// Torn tails (left by a crashed writer) removed before appending.
    pub repairs: Vec<Repair>,
}

impl AppendOutcome {
    pub fn appended(&self) -> bool {
        self.status == AppendStatus::Appended
    }
}

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
    dir: PathBuf,
    lock_timeout: Duration,
    files: Vec<FileState>,
    /// Set when a write or flush failed: the next append re-reads the files from the start.
    poisoned: bool,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("dir", &self.dir).finish()
    }
}

impl Ledger {
    /// Open (creating the directory and files) for writing: takes the lock briefly, checks
    /// the three files and the rules between them, removes torn tails and adds missing audit
    /// records (each reported as a repair), builds the indexes. Damage anywhere (a complete
    /// line that fails its checks, a record of a run whose `run_started` is missing) is an
    /// error: no writer continues on a damaged ledger.
    pub fn open(dir: &Path) -> Result<(Ledger, Vec<Repair>)> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, &e))?;
        let lock = DirLock::acquire(dir, LEDGER_LOCK, DEFAULT_LEDGER_LOCK_TIMEOUT, |_| {})?;
        let (files, repairs) = load_locked(dir)?;
        drop(lock);
        Ok((
            Ledger {
                dir: dir.to_path_buf(),
                lock_timeout: DEFAULT_LEDGER_LOCK_TIMEOUT,
                files,
                poisoned: false,
            },
            repairs,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
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
        let lock = self.lock()?;
        let mut repairs = Vec::new();
        for s in Stream::ALL {
            repairs.extend(self.catch_up(s)?);
        }
        drop(lock);
        Ok(repairs)
    }

    /// A tenant's balance as of the last open, append or refresh.
    pub fn balance(&self, tenant_id: &str) -> i64 {
        self.files[Stream::Billing.index()]
            .scan
            .billing
            .as_ref()
            .map_or(0, |b| b.balance(tenant_id))
    }

    /// Every tenant's balance as of the last open, append or refresh.
    pub fn balances(&self) -> std::collections::BTreeMap<String, i64> {
        let mut out = std::collections::BTreeMap::new();
        if let Some(b) = &self.files[Stream::Billing.index()].scan.billing {
            for (name, bal) in b.tenants.iter().zip(&b.balances) {
                out.insert(name.clone(), *bal);
            }
        }
        out
    }

    /// A recorded SPEND by key, with its refunded total.
    pub fn spend(&self, key: &str) -> Option<SpendInfo> {
        let b = self.files[Stream::Billing.index()].scan.billing.as_ref()?;
        let s = b.spends.get(&key_id(key))?;
        Some(SpendInfo {
            tenant_id: b.tenant_name(s.tenant).to_string(),
            amount_credits: s.amount,
            refunded_credits: s.refunded,
        })
    }

    /// Whether a key is recorded in a file (as of the last open, append or refresh).
    pub fn contains(&self, stream: Stream, key: &str) -> bool {
        self.files[stream.index()]
            .scan
            .index
            .contains_key(&key_id(key))
    }

    /// The recorded line of a key, parsed.
    pub fn get(&self, stream: Stream, key: &str) -> Result<Option<Map<String, Value>>> {
        let f = &self.files[stream.index()];
        let Some(entry) = f.scan.index.get(&key_id(key)) else {
            return Ok(None);
        };
        read_object(f, entry.offset).map(Some)
    }

    /// The last record of a file.
    pub fn head(&self, stream: Stream) -> HeadInfo {
        let h = &self.files[stream.index()].scan.head;
        HeadInfo {
            seq: h.seq,
            hash: h.hash_hex(),
            bytes: h.offset,
        }
    }

    fn lock(&self) -> Result<DirLock> {
        DirLock::acquire(&self.dir, LEDGER_LOCK, self.lock_timeout, |_| {})
    }

    fn append_inner(
        &mut self,
        stream: Stream,
        batch: Option<String>,
        records: Vec<Payload>,
    ) -> Result<AppendOutcome> {
        let prepared = prepare(stream, batch, &records)?;
        let lock = self.lock()?;
        let mut repairs = Vec::new();
        if self.poisoned {
            let (files, r) = load_locked(&self.dir)?;
            self.files = files;
            self.poisoned = false;
            repairs.extend(r);
        }
        repairs.extend(self.catch_up(stream)?);
        repairs.extend(self.check_runs(stream, &prepared)?);
        let outcome = self.append_locked(stream, &prepared)?;
        repairs.extend(self.audit_privileged(&prepared, outcome.appended())?);
        drop(lock);
        Ok(AppendOutcome { repairs, ..outcome })
    }

    /// SPEC §7: a record of a run names a run whose `run_started` is in evidence.jsonl (or
    /// earlier in this very batch). Returns repairs made while catching up evidence.jsonl.
    fn check_runs(&mut self, stream: Stream, batch: &[Prepared]) -> Result<Vec<Repair>> {
        let mut repairs = Vec::new();
        let mut caught_up = stream == Stream::Evidence;
        for p in batch {
            let Some((run_id, run_key)) = &p.run else {
                continue;
            };
            let in_batch = stream == Stream::Evidence && batch.iter().any(|q| q.key == *run_key);
            if in_batch || self.has(Stream::Evidence, run_key) {
                continue;
            }
            if !caught_up {
                repairs.extend(self.catch_up(Stream::Evidence)?);
                caught_up = true;
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
        Ok(repairs)
    }

    fn has(&self, stream: Stream, key: &KeyId) -> bool {
        self.files[stream.index()].scan.index.contains_key(key)
    }

    /// After a privileged record is recorded, record its audit record (unless it already is).
    /// When the record was recorded earlier (a replay) and its audit record is missing, a
    /// crash cut the two writes apart: adding it is a repair, and reported as one.
    fn audit_privileged(&mut self, batch: &[Prepared], appended: bool) -> Result<Vec<Repair>> {
        let mut repairs = Vec::new();
        for p in batch {
            let Some(rule) = p.record.privileged() else {
                continue;
            };
            let audit_key = crate::records::audit::allowed_key(rule.action, &p.key_text);
            if self.has(Stream::Audit, &key_id(&audit_key)) {
                continue;
            }
            let text = |k: &str| p.object.get(k).and_then(Value::as_str);
            let audit = Audit::for_privileged(
                rule,
                text("actor").unwrap_or_default(),
                text("tenant_id"),
                &p.key_text,
            );
            repairs.extend(self.catch_up(Stream::Audit)?);
            let audit = prepare_one(Stream::Audit, &Payload::new(audit))?;
            let out = self.append_locked(Stream::Audit, &[audit])?;
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

    /// Check and write a prepared batch; the caller holds the lock and has caught up.
    fn append_locked(&mut self, stream: Stream, batch: &[Prepared]) -> Result<AppendOutcome> {
        let f = &mut self.files[stream.index()];
        let mut present = Vec::new();
        let mut absent = Vec::new();
        for p in batch {
            match f.scan.index.get(&p.key) {
                Some(e) if e.payload == p.digest => present.push((p, *e)),
                Some(e) => return Err(conflict(f, stream, p, e)),
                None => absent.push(p),
            }
        }
        if absent.is_empty() {
            return already_recorded(f, &present);
        }
        if !present.is_empty() {
            let have: Vec<&str> = present.iter().map(|(p, _)| p.key_text.as_str()).collect();
            let lack: Vec<&str> = absent.iter().map(|p| p.key_text.as_str()).collect();
            return Err(Error::failure(format!(
                "conflict: this batch is partly recorded in {}: {} present, {} absent; nothing was written",
                stream.file_name(),
                have.join(", "),
                lack.join(", ")
            )).topic(crate::error::Topic::LedgerConflict)
            .at(f.path.display().to_string())
            .help("post a batch exactly as it was first posted, or under new keys"));
        }
        check_billing(f, batch)?;
        let written = write_batch(f, batch);
        self.poisoned |= written.is_err();
        Ok(AppendOutcome {
            status: AppendStatus::Appended,
            records: written?,
            repairs: Vec::new(),
        })
    }

    /// Read lines appended by others since our head (the caller holds the lock).
    fn catch_up(&mut self, stream: Stream) -> Result<Vec<Repair>> {
        let f = &mut self.files[stream.index()];
        let meta = std::fs::metadata(&f.path).map_err(|e| {
            Error::failure(format!("{} disappeared: {e}", f.path.display()))
                .at(f.path.display().to_string())
        })?;
        if (meta.dev(), meta.ino()) != f.id {
            // Replaced by a merge (rename): the old inode is no longer the ledger.
            let (fresh, repairs) = load_file(&self.dir, stream)?;
            *f = fresh;
            return Ok(repairs.into_iter().collect());
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
        match scan_to_end(&f.file, &f.path, &mut f.scan, start)? {
            Some(t) => Ok(vec![remove_torn_tail(f, t)?]),
            None => Ok(Vec::new()),
        }
    }
}

/// The outcome of a batch found recorded in full: its records as they stand.
fn already_recorded(f: &FileState, present: &[(&Prepared, IndexEntry)]) -> Result<AppendOutcome> {
    let mut records = Vec::new();
    for (p, e) in present {
        let obj = read_object(f, e.offset)?;
        let text = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        records.push(Posted {
            seq: e.seq,
            idempotency_key: p.key_text.clone(),
            recorded_at: text("recorded_at"),
            hash: text("hash"),
        });
    }
    Ok(AppendOutcome {
        status: AppendStatus::AlreadyRecorded,
        records,
        repairs: Vec::new(),
    })
}

/// The batch's billing operations break no rule, applied in order; the balances are left as
/// they were either way (they change only once the bytes are durable).
fn check_billing(f: &mut FileState, batch: &[Prepared]) -> Result<()> {
    let Some(billing) = f.scan.billing.as_mut() else {
        return Ok(());
    };
    let mut applied: Vec<&BillingOp> = Vec::new();
    let mut broken = None;
    for op in batch.iter().filter_map(|p| p.billing.as_ref()) {
        match billing.apply(op, true) {
            Ok(()) => applied.push(op),
            Err(b) => {
                broken = Some(b);
                break;
            }
        }
    }
    for done in applied.iter().rev() {
        billing.undo(done);
    }
    match broken {
        None => Ok(()),
        Some(b) => Err(Error::failure(format!("{b}; nothing was written"))
            .topic(crate::error::Topic::BillingRule)
            .at(f.path.display().to_string())
            .help(b.rule.help())),
    }
}

/// Describe a same-key-different-payload conflict by its differing fields.
fn conflict(f: &FileState, stream: Stream, p: &Prepared, e: &IndexEntry) -> Error {
    let diff = match read_object(f, e.offset) {
        Ok(recorded) => differing_fields(&recorded, &p.object),
        Err(_) => "the recorded line could not be read".into(),
    };
    Error::failure(format!(
        "conflict: {} already records idempotency key {} (seq {}) with a different payload: {diff}; nothing was written",
        stream.file_name(),
        p.key_text,
        e.seq
    )).topic(crate::error::Topic::LedgerConflict)
    .at(format!("{}:{}", f.path.display(), e.seq))
    .help("a key names one fact: post the new fact under a new key")
}

/// `field (recorded X, posted Y), ...` over the payload fields of two records.
pub(crate) fn differing_fields(
    recorded: &Map<String, Value>,
    posted: &Map<String, Value>,
) -> String {
    let mut names: Vec<&String> = recorded.keys().chain(posted.keys()).collect();
    names.sort();
    names.dedup();
    let show = |v: Option<&Value>| match v {
        None => "absent".to_string(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 80 {
                format!("{}…", s.chars().take(77).collect::<String>())
            } else {
                s
            }
        }
    };
    let parts: Vec<String> = names
        .into_iter()
        .filter(|n| !NON_PAYLOAD_FIELDS.contains(&n.as_str()))
        .filter(|n| recorded.get(*n) != posted.get(*n))
        .map(|n| {
            format!(
                "{n} (recorded {}, posted {})",
                show(recorded.get(n)),
                show(posted.get(n))
            )
        })
        .collect();
    if parts.is_empty() {
        "differing encodings".into()
    } else {
        parts.join(", ")
    }
}
