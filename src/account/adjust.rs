//! `admin-adjust` as a library (SPEC §9): IAM (denials audited), the request's checks, then one idempotent ADJUST keyed by tenant and reference that never takes a balance below zero.
use super::check_tenant_id;
use super::post::{book, check_reference_and_note, Ask, Booked, Once};
use crate::config::iam::Scope;
use crate::config::registry::Registry;
use crate::error::{Error, Result};
use crate::records::billing::{self, Adjust, UNIT_CREDITS};
use crate::records::Payload;
use serde::Serialize;
use serde_json::json;
use std::path::Path;

/// An adjustment as the command line asks for it.
#[derive(Debug, Clone, Copy)]
pub struct AdjustRequest<'a> {
    pub tenant_id: &'a str,
    /// Signed: a credit (> 0) or a debit (< 0).
    pub amount_credits: i64,
    pub reason_slug: &'a str,
    /// As given: trimmed and checked here.
    pub reference: &'a str,
    pub note: Option<&'a str>,
    /// `--actor`, else `$GITHUB_ACTOR`.
    pub actor: Option<&'a str>,
}

/// What the adjustment did (the `--json` document).
#[derive(Debug, Clone, Serialize)]
pub struct AdjustOutcome {
    #[serde(flatten)]
    pub booked: Booked,
    pub reason_slug: String,
}

/// Authorise, check and post one adjustment to the billing-state directory `dir`. A debit
/// the balance does not cover is refused by the ledger under its lock (exit 1, nothing
/// written), so two concurrent debits can never both pass a stale check.
pub fn adjust(repo: &Path, dir: &Path, req: &AdjustRequest<'_>) -> Result<AdjustOutcome> {
    let ask = Ask {
        scope: Scope::BillingAdjust,
        tenant_id: req.tenant_id,
        target: billing::adjust_key(req.tenant_id, req.reference.trim()),
        actor: req.actor,
    };
    let record = |reference: &str, actor: &str| {
        let adjust = Adjust {
            tenant_id: req.tenant_id.to_string(),
            amount_credits: req.amount_credits,
            reason_slug: req.reason_slug.to_string(),
            reference: reference.to_string(),
            note: req.note.map(str::to_string),
            actor: actor.to_string(),
            usage_unit: UNIT_CREDITS.to_string(),
        };
        Once {
            identity: vec![
                ("amount_credits", json!(adjust.amount_credits)),
                ("reason_slug", json!(adjust.reason_slug)),
            ],
            payload: Payload::new(adjust),
            help: "a reference is one adjustment: use a new --reference for a new one",
        }
    };
    let booked = book(repo, dir, ask, || check(repo, req), record)?;
    Ok(AdjustOutcome {
        booked,
        reason_slug: req.reason_slug.to_string(),
    })
}

/// Every check of the request once IAM allowed it; returns the trimmed reference.
fn check<'a>(repo: &Path, req: &AdjustRequest<'a>) -> Result<&'a str> {
    check_tenant_id(req.tenant_id)?;
    crate::repo::tenants::check_tenant(repo, req.tenant_id)?;
    let max = billing::MAX_CREDITS;
    if !(1..=max.unsigned_abs()).contains(&req.amount_credits.unsigned_abs()) {
        return Err(Error::input(format!(
            "--amount-credits must be a credit of 1..={max} or a debit of -1..=-{max}, got {}",
            req.amount_credits
        ))
        .help(if req.amount_credits == 0 {
            "an adjustment of 0 changes nothing: give the credits to add (e.g. 25) or take back (e.g. -25)"
        } else {
            "split a larger correction into several adjustments, each with its own --reference"
        }));
    }
    let reference = check_reference_and_note(
        req.reference,
        req.note,
        "use the case's reference (ticket, credit note, dispute id), e.g. CASE-2026-0042",
    )?;
    let registry = Registry::load_strict(repo)?;
    if !registry.is_adjust_reason(req.reason_slug) {
        return Err(Error::input(format!(
            "--reason-slug: unknown adjust reason '{}' (known: {})",
            req.reason_slug,
            registry.adjust_reasons().join(", ")
        ))
        .help("use a built-in reason or add it to adjust_reasons in config/registry.yml"));
    }
    Ok(reference)
}
