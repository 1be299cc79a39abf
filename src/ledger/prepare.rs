//! A batch made ready to append: each record's key, canonical payload digest, billing operation and the run it names, checked before the lock is taken.
use super::billing::BillingOp;
use super::key::{key_id, KeyId};
use crate::error::{Error, Result};
use crate::records::canonical_ser::Members;
use crate::records::evidence::run_started_key;
use crate::records::template::{Template, CHAIN_FIELDS};
use crate::records::{Payload, RecordType, Stream};
use serde_json::{Map, Value};

/// A record ready to be checked and written.
pub(crate) struct Prepared {
    pub key: KeyId,
    pub key_text: String,
    pub record: RecordType,
    /// The record encoded once, outside the writer's lock, its chain fields left to fill
    /// in. Its fields as an object are read back only when needed ([`Prepared::object`]):
    /// freeing a map per record was the group's largest cost after its flushes.
    pub template: Template,
    pub digest: [u8; 32],
    pub billing: Option<BillingOp>,
    /// The run a record of a run names, and the key of its `run_started`.
    pub run: Option<(String, KeyId)>,
}

impl Prepared {
    /// The record's fields (its chain fields aside), read back from its encoding: for the
    /// rare caller that needs them (a conflict's message, a privileged record's audit).
    pub fn object(&self) -> Map<String, Value> {
        self.template.object_without_holes()
    }
}

/// One record, alone (no batch fields), ready to be written.
pub(crate) fn prepare_one(stream: Stream, record: &Payload) -> Result<Prepared> {
    let mut out = prepare(stream, None, std::slice::from_ref(record))?;
    out.pop()
        .ok_or_else(|| Error::input("nothing to append: the batch is empty"))
}

pub(crate) fn prepare(
    stream: Stream,
    batch: Option<String>,
    records: &[Payload],
) -> Result<Vec<Prepared>> {
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
        let members = r
            .members(batch.as_deref().map(|id| (id, len)))
            .map_err(|e| Error::input(format!("record {}: {e}", r.idempotency_key)))?;
        let template = Template::of_members(&members, &CHAIN_FIELDS);
        let digest = template.digest_without_holes();
        let billing = BillingOp::of_record(&r.record, &r.idempotency_key).map_err(Error::input)?;
        let record = r.record.record_type();
        out.push(Prepared {
            key,
            key_text: r.idempotency_key.clone(),
            record,
            run: run_of(record, &members, &r.idempotency_key)?,
            template,
            digest,
            billing,
        });
    }
    Ok(out)
}

/// The run a record of a run names (SPEC §7); a privileged record must carry its actor, so
/// its audit record can always be rebuilt from it.
fn run_of(record: RecordType, members: &Members, key: &str) -> Result<Option<(String, KeyId)>> {
    let text = |k: &str| members.get_str(k).filter(|s| !s.is_empty());
    if record.privileged().is_some() && text("actor").is_none() {
        return Err(Error::input(format!(
            "the {} record {key} needs an actor: its audit record is built from it",
            record.name()
        )));
    }
    if !record.names_a_run() {
        return Ok(None);
    }
    let run_id = text("run_id").ok_or_else(|| {
        Error::input(format!(
            "the {} record {key} needs a run_id: every record of a run names it",
            record.name()
        ))
    })?;
    let started = key_id(&run_started_key(&run_id));
    Ok(Some((run_id, started)))
}
