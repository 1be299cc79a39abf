//! `admin-topup` as a library: IAM (denials audited), the request's checks, then one idempotent TOPUP keyed by tenant and reference (SPEC §3, §7).
use super::check_tenant_id;
use crate::audit::Subject;
use crate::config::iam::Scope;
use crate::config::registry::Registry;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, Repair, Stream};
use crate::privileged;
use crate::records::{billing, Payload, Topup};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::path::Path;

/// A top-up as the command line asks for it.
#[derive(Debug, Clone, Copy)]
pub struct TopupRequest<'a> {
    pub tenant_id: &'a str,
    pub amount_credits: i64,
    pub topup_method_id: &'a str,
    /// As given: trimmed and checked here.
    pub reference: &'a str,
    pub note: Option<&'a str>,
    /// `--actor`, else `$GITHUB_ACTOR`.
    pub actor: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TopupStatus {
    Appended,
    /// The reference was already recorded with this amount and method: nothing written.
    AlreadyRecorded,
}

/// What the top-up did (the `--json` document).
#[derive(Debug, Clone, Serialize)]
pub struct TopupOutcome {
    pub status: TopupStatus,
    pub tenant_id: String,
    pub amount_credits: i64,
    pub topup_method_id: String,
    pub reference: String,
    pub idempotency_key: String,
    /// billing.jsonl seq of the TOPUP (the earlier one when already recorded).
    pub seq: u64,
    pub actor: String,
    pub balance_credits: i64,
    /// What the ledger repaired on the way (reported as notes).
    #[serde(skip)]
    pub repairs: Vec<Repair>,
}

/// Authorise, check and post one top-up to the billing-state directory `dir`.
pub fn topup(repo: &Path, dir: &Path, req: &TopupRequest<'_>) -> Result<TopupOutcome> {
    let subject = Subject {
        tenant_id: Some(req.tenant_id.to_string()),
        target: billing::topup_key(req.tenant_id, req.reference.trim()),
    };
    let who = privileged::authorize(repo, dir, req.actor, Scope::BillingTopup, &subject)?;
    let reference = check(repo, req)?;
    let (mut ledger, mut repairs) = Ledger::open(dir)?;
    let topup = Topup::new(
        req.tenant_id,
        req.amount_credits,
        req.topup_method_id,
        reference,
        req.note,
        &who.actor,
    );
    let key = topup.key();
    let (status, seq) = post(&mut ledger, topup, &mut repairs)?;
    Ok(TopupOutcome {
        status,
        tenant_id: req.tenant_id.to_string(),
        amount_credits: req.amount_credits,
        topup_method_id: req.topup_method_id.to_string(),
        reference: reference.to_string(),
        idempotency_key: key,
        seq,
        actor: who.actor,
        balance_credits: ledger.balance(req.tenant_id),
        repairs,
    })
}

/// Every check of the request once IAM allowed it; returns the trimmed reference.
fn check<'a>(repo: &Path, req: &TopupRequest<'a>) -> Result<&'a str> {
    check_tenant_id(req.tenant_id)?;
    crate::repo::tenants::check_tenant(repo, req.tenant_id)?;
    if !(1..=billing::MAX_CREDITS).contains(&req.amount_credits) {
        return Err(Error::input(format!(
            "--amount-credits must be 1..={} credits, got {}",
            billing::MAX_CREDITS,
            req.amount_credits
        ))
        .help("split a larger payment into several top-ups, each with its own --reference"));
    }
    let reference = billing::check_reference(req.reference).map_err(|why| {
        Error::input(format!("--reference {why}"))
            .help("use the payment's external reference (invoice or wire id), e.g. INV-2026-0042")
    })?;
    if let Some(note) = req.note {
        billing::check_note(note).map_err(|why| Error::input(format!("--note {why}")))?;
    }
    let registry = Registry::load_strict(repo)?;
    if !registry.is_topup_method(req.topup_method_id) {
        return Err(Error::input(format!(
            "--topup-method-id: unknown top-up method '{}' (known: {})",
            req.topup_method_id,
            registry.topup_methods().join(", ")
        ))
        .help(
            match crate::suggest::did_you_mean(
                req.topup_method_id,
                registry.topup_methods().iter().map(String::as_str),
            ) {
                Some(close) => format!("{close} Or add the method to config/registry.yml"),
                None => "use a built-in method or add it to config/registry.yml".to_string(),
            },
        ));
    }
    Ok(reference)
}

/// Append the TOPUP (the ledger records its audit record with it, `records::PRIVILEGED`),
/// or find it already there. The reference names the payment: a replay with the same amount
/// and method is the same top-up even when entered by another actor or with another note.
fn post(
    ledger: &mut Ledger,
    topup: Topup,
    repairs: &mut Vec<Repair>,
) -> Result<(TopupStatus, u64)> {
    if let Some(rec) = ledger.get(Stream::Billing, &topup.key())? {
        let seq = rec.get("seq").and_then(Value::as_u64).unwrap_or(0);
        for (field, want) in [
            ("amount_credits", json!(topup.amount_credits)),
            ("topup_method_id", json!(topup.topup_method_id)),
        ] {
            if rec.get(field) != Some(&want) {
                return Err(conflict(ledger.dir(), &topup, &rec, seq, field, &want));
            }
        }
        return Ok((TopupStatus::AlreadyRecorded, seq));
    }
    let out = ledger.append(Stream::Billing, vec![Payload::new(topup)])?;
    repairs.extend(out.repairs.iter().cloned());
    let seq = out.records.first().map_or(0, |r| r.seq);
    let status = if out.appended() {
        TopupStatus::Appended
    } else {
        TopupStatus::AlreadyRecorded
    };
    Ok((status, seq))
}

fn conflict(
    dir: &Path,
    topup: &Topup,
    rec: &Map<String, Value>,
    seq: u64,
    field: &str,
    want: &Value,
) -> Error {
    Error::failure(format!(
        "conflict: reference '{}' of tenant {} is already recorded (seq {seq}) with {field} {}, not {want}; nothing was written",
        topup.reference,
        topup.tenant_id,
        rec.get(field).cloned().unwrap_or(Value::Null),
    )).topic(crate::error::Topic::LedgerConflict)
    .at(format!("{}:{seq}", dir.join(Stream::Billing.file_name()).display()))
    .help("a reference is one payment: use a new --reference for a new top-up")
}
