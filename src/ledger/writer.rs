//! The one append path: open (repair a torn tail, index), catch up, idempotency, billing rules, one write and one flush per batch.
use super::lock::{DirLock, DEFAULT_LEDGER_LOCK_TIMEOUT, LEDGER_LOCK};
use super::scan::{self, key_id, BillingOp, Head, IndexEntry, Mode, Scan};
use super::Repair;
use crate::error::{Error, Result};
use crate::records::canonical::{encode_object, seal};
use crate::records::{Payload, Stream, NON_PAYLOAD_FIELDS};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whether `append` wrote the batch or found it already recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendStatus {
    Appended,
    AlreadyRecorded,
}

/// One record as it stands in the file after `append`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub seq: u64,
    pub idempotency_key: String,
    pub recorded_at: String,
    pub hash: String,
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

pub(crate) struct FileState {
    pub path: PathBuf,
    pub file: File,
    pub id: (u64, u64),
    pub scan: Scan,
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
    /// Open (creating the directory and files) for writing: takes the lock briefly, removes
    /// torn tails (reported as repairs), builds the indexes. Damage before the last batch is
    /// an error: no writer may continue on a damaged ledger.
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
        let outcome = self.append_locked(stream, &prepared)?;
        drop(lock);
        Ok(AppendOutcome { repairs, ..outcome })
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
            let mut records = Vec::new();
            for (p, e) in &present {
                let obj = read_object(f, e.offset)?;
                let text = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                records.push(Posted {
                    seq: e.seq,
                    idempotency_key: p.key_text.clone(),
                    recorded_at: text("recorded_at"),
                    hash: text("hash"),
                });
            }
            return Ok(AppendOutcome {
                status: AppendStatus::AlreadyRecorded,
                records,
                repairs: Vec::new(),
            });
        }
        if !present.is_empty() {
            let have: Vec<&str> = present.iter().map(|(p, _)| p.key_text.as_str()).collect();
            let lack: Vec<&str> = absent.iter().map(|p| p.key_text.as_str()).collect();
            return Err(Error::failure(format!(
                "conflict: this batch is partly recorded in {}: {} present, {} absent; nothing was written",
                stream.file_name(),
                have.join(", "),
                lack.join(", ")
            ))
            .at(f.path.display().to_string())
            .help("post a batch exactly as it was first posted, or under new keys"));
        }
        if let Some(billing) = f.scan.billing.as_mut() {
            let mut applied: Vec<&BillingOp> = Vec::new();
            for p in batch {
                let Some(op) = &p.billing else { continue };
                if let Err(message) = billing.apply(op, true) {
                    for done in applied.iter().rev() {
                        billing.undo(done);
                    }
                    return Err(Error::failure(format!("{message}; nothing was written"))
                        .at(f.path.display().to_string())
                        .help(help_for_billing(&message)));
                }
                applied.push(op);
            }
            // Undone here and applied again below once the bytes are durable: a failed write
            // must leave the balances as they were.
            for done in applied.iter().rev() {
                billing.undo(done);
            }
        }
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        let mut head = f.scan.head;
        let mut buf = Vec::new();
        let mut posted = Vec::new();
        let mut entries = Vec::new();
        for p in batch {
            let at = now.clone();
            let mut obj = p.object.clone();
            let seq = head.seq + 1;
            obj.insert("seq".into(), Value::from(seq));
            obj.insert("recorded_at".into(), Value::String(at.clone()));
            obj.insert("prev_hash".into(), Value::String(head.hash_hex()));
            let canonical = encode_object(&obj).map_err(Error::input)?;
            let (line, hash) = seal(&canonical).map_err(Error::input)?;
            entries.push((
                p.key,
                IndexEntry {
                    seq,
                    offset: head.offset,
                    payload: p.digest,
                },
            ));
            buf.extend_from_slice(&line);
            let mut h = [0u8; 64];
            h.copy_from_slice(hash.as_bytes());
            head = Head {
                offset: head.offset + line.len() as u64,
                lines: head.lines + 1,
                seq,
                hash: h,
            };
            posted.push(Posted {
                seq,
                idempotency_key: p.key_text.clone(),
                recorded_at: at,
                hash,
            });
        }
        let before = f.scan.head.offset;
        crate::failpoint::hit("ledger_before_write");
        if crate::failpoint::armed("ledger_torn_write") {
            // A crash in the middle of the write: half the batch reaches the disk.
            let _ = (&f.file).write_all(&buf[..buf.len() / 2]);
            let _ = f.file.sync_data();
            crate::failpoint::abort("ledger_torn_write");
        }
        let written = (&f.file).write_all(&buf).and_then(|()| f.file.sync_data());
        if let Err(e) = written {
            // Best effort: take back a partial write so the next writer finds a clean tail.
            let _ = f.file.set_len(before);
            let _ = f.file.sync_all();
            self.poisoned = true;
            return Err(Error::failure(format!(
                "could not write {}: {e}; nothing was recorded",
                f.path.display()
            ))
            .at(f.path.display().to_string()));
        }
        crate::failpoint::hit("ledger_after_write");
        for (k, e) in entries {
            f.scan.index.insert(k, e);
        }
        if let Some(billing) = f.scan.billing.as_mut() {
            for p in batch {
                if let Some(op) = &p.billing {
                    let _ = billing.apply(op, false);
                }
            }
        }
        f.scan.resync(head);
        Ok(AppendOutcome {
            status: AppendStatus::Appended,
            records: posted,
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
        Ok(scan_to_end(f, start)?.into_iter().collect())
    }
}

/// A record ready to be checked and written.
pub(crate) struct Prepared {
    pub key: scan::KeyId,
    pub key_text: String,
    pub object: Map<String, Value>,
    pub digest: [u8; 32],
    pub billing: Option<BillingOp>,
}

fn prepare(stream: Stream, batch: Option<String>, records: &[Payload]) -> Result<Vec<Prepared>> {
    if records.is_empty() {
        return Err(Error::input("nothing to append: the batch is empty"));
    }
    let batch = match batch {
        Some(id) => Some(id),
        None if records.len() > 1 => Some(records[0].idempotency_key.clone()),
        None => None,
    };
    let len = records.len() as u64;
    let mut out: Vec<Prepared> = Vec::with_capacity(records.len());
    for r in records {
        if r.record.stream() != stream {
            return Err(Error::input(format!(
                "a {} record belongs in {}, not {}",
                r.record.type_name(),
                r.record.stream().file_name(),
                stream.file_name()
            )));
        }
        if r.idempotency_key.is_empty() {
            return Err(Error::input(format!(
                "a {} record needs an idempotency key (a denied audit record: use Payload::audit_denied)",
                r.record.type_name()
            )));
        }
        let key = key_id(&r.idempotency_key);
        if out.iter().any(|p| p.key == key) {
            return Err(Error::input(format!(
                "the batch holds the key {} twice",
                r.idempotency_key
            )));
        }
        let object = r
            .to_object(batch.as_deref().map(|id| (id, len)))
            .map_err(Error::input)?;
        let canonical = encode_object(&object)
            .map_err(|e| Error::input(format!("record {}: {e}", r.idempotency_key)))?;
        let digest: [u8; 32] = Sha256::digest(&canonical).into();
        let billing = billing_op(&object, &r.idempotency_key);
        out.push(Prepared {
            key,
            key_text: r.idempotency_key.clone(),
            object,
            digest,
            billing,
        });
    }
    Ok(out)
}

pub(crate) fn billing_op(object: &Map<String, Value>, key: &str) -> Option<BillingOp> {
    let kind = match object.get("type").and_then(Value::as_str)? {
        "TOPUP" => scan::BillingKind::Topup,
        "SPEND" => scan::BillingKind::Spend,
        "REFUND" => scan::BillingKind::Refund,
        _ => return None,
    };
    Some(BillingOp {
        kind,
        tenant: object.get("tenant_id")?.as_str()?.to_string(),
        amount: object.get("amount_credits")?.as_i64()?,
        key: key_id(key),
        refunds: object
            .get("refunds")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

fn help_for_billing(message: &str) -> String {
    if message.starts_with("not enough credits") {
        "top the tenant up first (platform admin-topup)".into()
    } else if message.contains("refund") || message.contains("REFUND") {
        "a REFUND reverses one recorded SPEND of the same tenant, at most in full".into()
    } else {
        "TOPUP and REFUND amounts are positive, SPEND amounts negative".into()
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
    ))
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

/// The line starting at `offset`, parsed.
pub(crate) fn read_object(f: &FileState, offset: u64) -> Result<Map<String, Value>> {
    let mut line = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut pos = offset;
    loop {
        let n = f
            .file
            .read_at(&mut buf, pos)
            .map_err(|e| Error::io(&f.path, &e))?;
        if n == 0 {
            break;
        }
        if let Some(k) = scan::find_newline(&buf[..n]) {
            line.extend_from_slice(&buf[..k]);
            break;
        }
        line.extend_from_slice(&buf[..n]);
        pos += n as u64;
    }
    serde_json::from_slice(&line).map_err(|e| {
        Error::failure(format!(
            "{}: cannot read the record at byte {offset}: {e}",
            f.path.display()
        ))
    })
}

/// Open and index the three files; the caller holds the directory lock. Every file is
/// checked before any torn tail is removed, so a writer that stops on damage in one file
/// leaves the others untouched too (and no repair goes unreported).
pub(crate) fn load_locked(dir: &Path) -> Result<(Vec<FileState>, Vec<Repair>)> {
    let mut files = Vec::new();
    let mut torn = Vec::new();
    let mut created = false;
    for s in Stream::ALL {
        created |= !dir.join(s.file_name()).exists();
        let (f, t) = open_file(dir, s)?;
        files.push(f);
        torn.push(t);
    }
    let mut repairs = Vec::new();
    for (f, t) in files.iter_mut().zip(torn) {
        if let Some(t) = t {
            repairs.push(remove_torn_tail(f, t)?);
        }
    }
    if created {
        sync_dir(dir)?;
    }
    Ok((files, repairs))
}

fn load_file(dir: &Path, stream: Stream) -> Result<(FileState, Option<Repair>)> {
    let (mut f, torn) = open_file(dir, stream)?;
    let repair = match torn {
        Some(t) => Some(remove_torn_tail(&mut f, t)?),
        None => None,
    };
    Ok((f, repair))
}

/// Open and scan one file; its torn tail, if any, is returned, not yet removed.
fn open_file(dir: &Path, stream: Stream) -> Result<(FileState, Option<scan::Torn>)> {
    let path = dir.join(stream.file_name());
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| Error::io(&path, &e))?;
    let meta = file.metadata().map_err(|e| Error::io(&path, &e))?;
    let mut f = FileState {
        path,
        file,
        id: (meta.dev(), meta.ino()),
        scan: Scan::new(stream, Mode::Write),
    };
    let torn = scan_file(&mut f, 0)?;
    Ok((f, torn))
}

/// Feed the file from `start` to its end; truncate a torn tail; any other problem is an error.
fn scan_to_end(f: &mut FileState, start: u64) -> Result<Option<Repair>> {
    match scan_file(f, start)? {
        Some(t) => Ok(Some(remove_torn_tail(f, t)?)),
        None => Ok(None),
    }
}

/// Feed the file from `start` to its end: its torn tail, or an error for any other problem.
fn scan_file(f: &mut FileState, start: u64) -> Result<Option<scan::Torn>> {
    let path = f.path.clone();
    scan::feed_file::<std::io::Error>(&f.file, start, &mut f.scan, &mut |_, _| Ok(()))
        .map_err(|e| Error::io(&path, &e))?;
    let torn = f.scan.finish();
    if let Some(p) = f.scan.problems.first() {
        return Err(Error::failure(format!(
            "{} is damaged at line {}: {}",
            path.display(),
            p.line,
            p.message
        ))
        .at(format!("{}:{}", path.display(), p.line))
        .help("writers stop on damage before the last batch: run `platform integrity-validate` for every problem, then restore the file from a good copy (e.g. `platform state pull`)"));
    }
    Ok(torn)
}

fn remove_torn_tail(f: &mut FileState, t: scan::Torn) -> Result<Repair> {
    f.file
        .set_len(t.offset)
        .and_then(|()| f.file.sync_all())
        .map_err(|e| Error::io(&f.path, &e))?;
    Ok(Repair {
        file: f.path.display().to_string(),
        stream: f.scan.stream,
        from_line: t.from_line,
        lines_removed: t.lines,
        bytes_removed: t.bytes,
        reason: t.message,
    })
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, &e))
}
