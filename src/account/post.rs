//! Posting a privileged record once, keyed by an operator's reference (a top-up, an adjustment): a replay with the same identifying fields is a no-op, any difference in them a conflict naming every differing field.
use crate::error::{Error, Result};
use crate::ledger::{Ledger, Repair};
use crate::records::{billing, Payload};
use serde::Serialize;
use serde_json::{Map, Value};

/// What posting did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Posted {
    Appended,
    /// The reference was already recorded with the same identifying fields: nothing written.
    AlreadyRecorded,
}

/// One record to post under an operator's reference.
pub(crate) struct Once<'a> {
    pub payload: Payload,
    pub tenant_id: &'a str,
    pub reference: &'a str,
    /// The fields that make two postings of the reference the same one (an amount, a
    /// method, a reason); the others (actor, note) may differ in a replay.
    pub identity: Vec<(&'static str, Value)>,
    /// What to do about a conflict.
    pub help: &'static str,
}

/// Append the record (the ledger records its audit record with it, `records::PRIVILEGED`), or
/// find it already there; returns what happened and the record's seq.
pub(crate) fn post_once(
    ledger: &mut Ledger,
    once: Once<'_>,
    repairs: &mut Vec<Repair>,
) -> Result<(Posted, u64)> {
    let stream = once.payload.record.stream();
    if let Some(rec) = ledger.get(stream, &once.payload.idempotency_key)? {
        let seq = rec.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let differs = differing(&rec, &once.identity);
        if differs.is_empty() {
            return Ok((Posted::AlreadyRecorded, seq));
        }
        let file = ledger.dir().join(stream.file_name());
        return Err(Error::failure(format!(
            "conflict: reference '{}' of tenant {} is already recorded (seq {seq}) with {}; nothing was written",
            once.reference,
            once.tenant_id,
            differs.join("; ")
        ))
        .at(format!("{}:{seq}", file.display()))
        .help(once.help));
    }
    let out = ledger.append(stream, vec![once.payload])?;
    repairs.extend(out.repairs.iter().cloned());
    let seq = out.records.first().map_or(0, |r| r.seq);
    let status = if out.appended() {
        Posted::Appended
    } else {
        Posted::AlreadyRecorded
    };
    Ok((status, seq))
}

/// `field recorded, not wanted` for each identifying field the recorded one differs in.
fn differing(rec: &Map<String, Value>, identity: &[(&'static str, Value)]) -> Vec<String> {
    identity
        .iter()
        .filter(|(field, want)| rec.get(*field) != Some(want))
        .map(|(field, want)| {
            let had = rec.get(*field).cloned().unwrap_or(Value::Null);
            format!("{field} {had}, not {want}")
        })
        .collect()
}

/// `--reference` trimmed and checked, and `--note` checked (SPEC §7); `help` says what a
/// reference of this command is.
pub(crate) fn check_reference_and_note<'a>(
    reference: &'a str,
    note: Option<&str>,
    help: &'static str,
) -> Result<&'a str> {
    let reference = billing::check_reference(reference)
        .map_err(|why| Error::input(format!("--reference {why}")).help(help))?;
    if let Some(note) = note {
        billing::check_note(note).map_err(|why| Error::input(format!("--note {why}")))?;
    }
    Ok(reference)
}
