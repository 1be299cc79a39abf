//! One batch checked against one file's index: already recorded in full (a no-op), a conflict (same key, another payload, or a batch partly recorded), or billing rules broken; and what `append` reports.
use super::billing::{BillingKind, BillingOp, BillingRule, Spent};
use super::file::{object_at, FileState, Posted};
use super::key::{key_id, KeyId};
use super::line;
use super::lines::Lines;
use super::prepare::Prepared;
use super::Repair;
use crate::error::{Error, Result};
use crate::records::{Stream, NON_PAYLOAD_FIELDS, NULL_AS_ABSENT};
use serde_json::{Map, Value};

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

/// A key's recorded line, read back when the key is posted again (a replay or a conflict).
pub(crate) struct Recorded {
    pub seq: u64,
    /// SHA-256 of the canonical payload.
    pub payload: [u8; 32],
    pub object: Map<String, Value>,
}

impl Recorded {
    /// The line of the file at `path` starting at `offset` (in `lines`), recorded under `key`.
    pub fn read(
        path: &std::path::Path,
        lines: Lines<'_>,
        offset: u64,
        key: &KeyId,
    ) -> Result<Recorded> {
        let object = object_at(path, lines, offset)?;
        let bytes = lines.line(offset).map_err(|e| Error::io(path, &e))?;
        let facts = line::parse(&bytes, true).map_err(|u| {
            Error::failure(format!(
                "{}: cannot read the record at byte {offset}: {}",
                path.display(),
                u.message
            ))
        })?;
        if !facts.hash_ok || key_id(&facts.key) != *key {
            return Err(Error::failure(format!(
                "{}: the record at byte {offset} changed after it was read",
                path.display()
            ))
            .topic(crate::error::Topic::LedgerDamaged));
        }
        Ok(Recorded {
            seq: facts.seq,
            payload: facts.payload_digest.unwrap_or([0; 32]),
            object,
        })
    }
}

/// The outcome of a batch found recorded in full: its records as they stand.
pub(super) fn already_recorded(present: &[(&Prepared, Recorded)]) -> AppendOutcome {
    let mut records = Vec::new();
    for (p, r) in present {
        let text = |k: &str| {
            r.object
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        records.push(Posted {
            seq: r.seq,
            idempotency_key: p.key_text.clone(),
            recorded_at: text("recorded_at"),
            hash: text("hash"),
        });
    }
    AppendOutcome {
        status: AppendStatus::AlreadyRecorded,
        records,
        repairs: Vec::new(),
    }
}

/// The batch's billing operations break no rule, applied in order; the balances are left as
/// they were either way (staging the batch applies them). `staged` are the lines staged for
/// the file before this batch (a REFUND may name a SPEND among them).
pub(super) fn check_billing(
    f: &mut FileState,
    batch: &[Prepared],
    staged: &[u8],
) -> Result<(), (BillingRule, Error)> {
    let Some(billing) = f.scan.billing.as_mut() else {
        return Ok(());
    };
    let lines = Lines::staged_before(&f.file, staged, f.scan.head.offset);
    let index = &f.scan.index;
    let mut applied: Vec<&BillingOp> = Vec::new();
    let mut broken = None;
    for op in batch.iter().filter_map(|p| p.billing.as_ref()) {
        // A SPEND earlier in this batch, else one recorded or staged.
        let find = |k: &KeyId| match applied.iter().rev().find(|o| o.key == *k) {
            Some(o) if o.kind == BillingKind::Spend => Ok(Spent::of(o)),
            Some(_) => Ok(None),
            None => Spent::recorded(index, lines, k),
        };
        match billing.apply(op, true, &find) {
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
        Some(b) => Err((
            b.rule,
            Error::failure(format!("{b}; nothing was written"))
                .topic(crate::error::Topic::BillingRule)
                .at(f.path.display().to_string())
                .help(b.help()),
        )),
    }
}

/// Describe a same-key-different-payload conflict by its differing fields.
pub(super) fn conflict(f: &FileState, stream: Stream, p: &Prepared, r: &Recorded) -> Error {
    let diff = differing_fields(&r.object, &p.object());
    Error::failure(format!(
        "conflict: {} already records idempotency key {} (seq {}) with a different payload: {diff}; nothing was written",
        stream.file_name(),
        p.key_text,
        r.seq
    ))
    .topic(crate::error::Topic::LedgerConflict)
    .at(format!("{}:{}", f.path.display(), r.seq))
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
        .filter(|n| {
            let (r, p) = (recorded.get(*n), posted.get(*n));
            // A null the payload leaves out is the field absent (records::NULL_AS_ABSENT).
            let absent = |v: Option<&Value>| v.is_none_or(Value::is_null);
            r != p && !(NULL_AS_ABSENT.contains(&n.as_str()) && absent(r) && absent(p))
        })
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

/// A batch some of whose keys are recorded and some not: never split.
pub(super) fn partly_recorded(
    f: &FileState,
    stream: Stream,
    present: &[(&Prepared, Recorded)],
    absent: &[&Prepared],
) -> Error {
    let have: Vec<&str> = present.iter().map(|(p, _)| p.key_text.as_str()).collect();
    let lack: Vec<&str> = absent.iter().map(|p| p.key_text.as_str()).collect();
    Error::failure(format!(
        "conflict: this batch is partly recorded in {}: {} present, {} absent; nothing was written",
        stream.file_name(),
        have.join(", "),
        lack.join(", ")
    ))
    .topic(crate::error::Topic::LedgerConflict)
    .at(f.path.display().to_string())
    .help("post a batch exactly as it was first posted, or under new keys")
}
