//! Booking a privileged billing record once, keyed by an operator's reference (a top-up, an adjustment): IAM first (denials audited), then the request's checks, then one posting; a replay with the same identifying fields is a no-op, any difference in them a conflict naming every differing field.
use crate::audit::Subject;
use crate::config::iam::Scope;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, Repair};
use crate::privileged;
use crate::records::{billing, Payload};
use serde::Serialize;
use serde_json::{Map, Value};
use std::path::Path;

/// What posting did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Posted {
    Appended,
    /// The reference was already recorded with the same identifying fields: nothing written.
    AlreadyRecorded,
}

/// Who asks to book what: the scope it needs and the key its audit record names.
pub(crate) struct Ask<'a> {
    pub scope: Scope,
    pub tenant_id: &'a str,
    /// The record's key, for the audit record of a denial.
    pub target: String,
    /// `--actor`, else `$GITHUB_ACTOR`.
    pub actor: Option<&'a str>,
}

/// One record to post under an operator's reference.
pub(crate) struct Once {
    pub payload: Payload,
    /// The fields that make two postings of the reference the same one (an amount, a
    /// method, a reason); the others (actor, note) may differ in a replay.
    pub identity: Vec<(&'static str, Value)>,
    /// What to do about a conflict.
    pub help: &'static str,
}

/// What a booking did: the fields every `--json` outcome of one shares.
#[derive(Debug, Clone, Serialize)]
pub struct Booked {
    pub status: Posted,
    pub tenant_id: String,
    pub amount_credits: i64,
    pub reference: String,
    pub idempotency_key: String,
    /// billing.jsonl seq of the record (the earlier one when already recorded).
    pub seq: u64,
    pub actor: String,
    pub balance_credits: i64,
    /// What the ledger repaired on the way (reported as notes).
    #[serde(skip)]
    pub repairs: Vec<Repair>,
}

impl Booked {
    /// The ledger's repairs, as the notes a command prints after its outcome.
    pub fn notes(&self) -> Vec<String> {
        self.repairs.iter().map(|r| format!("note: {r}")).collect()
    }
}

/// Authorise `ask`, run `check` (which returns the trimmed reference), then post the record
/// `record` builds from the reference and the actor.
pub(crate) fn book<'a>(
    repo: &Path,
    dir: &Path,
    ask: Ask<'a>,
    check: impl FnOnce() -> Result<&'a str>,
    record: impl FnOnce(&'a str, &str) -> Once,
) -> Result<Booked> {
    let subject = Subject {
        tenant_id: Some(ask.tenant_id.to_string()),
        target: ask.target,
    };
    let who = privileged::authorize(repo, dir, ask.actor, ask.scope, &subject)?;
    let reference = check()?;
    let (mut ledger, mut repairs) = Ledger::open(dir)?;
    let once = record(reference, &who.actor);
    let key = once.payload.idempotency_key.clone();
    let amount = once.payload.record.amount_credits().unwrap_or(0);
    let (status, seq) = post_once(&mut ledger, once, (ask.tenant_id, reference), &mut repairs)
        .map_err(|e| Repair::reported_in(e, &repairs))?;
    Ok(Booked {
        status,
        tenant_id: ask.tenant_id.to_string(),
        amount_credits: amount,
        reference: reference.to_string(),
        idempotency_key: key,
        seq,
        actor: who.actor,
        balance_credits: ledger.balance(ask.tenant_id),
        repairs,
    })
}

/// Append the record (the ledger records its audit record with it, `records::PRIVILEGED`), or
/// find it already there; returns what happened and the record's seq.
fn post_once(
    ledger: &mut Ledger,
    once: Once,
    (tenant_id, reference): (&str, &str),
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
            "conflict: reference '{reference}' of tenant {tenant_id} is already recorded (seq {seq}) with {}; nothing was written",
            differs.join("; ")
        )).topic(crate::error::Topic::LedgerConflict)
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
        billing::check_note(note).map_err(|why| {
            Error::input(format!("--note {why}")).help(billing::note_help("--note"))
        })?;
    }
    Ok(reference)
}
