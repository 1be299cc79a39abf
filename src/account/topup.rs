//! `admin-topup` as a library: IAM (denials audited), the request's checks, then one idempotent TOPUP keyed by tenant and reference (SPEC §3, §7).
use super::check_tenant_id;
use super::post::{book, check_reference_and_note, Ask, Booked, Once, Posted};
use crate::config::iam::Scope;
use crate::config::registry::Registry;
use crate::error::{Error, Result};
use crate::records::{billing, Payload, Topup};
use serde::Serialize;
use serde_json::json;
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

/// Appended, or already recorded with this amount and method (nothing written).
pub type TopupStatus = Posted;

/// What the top-up did (the `--json` document).
#[derive(Debug, Clone, Serialize)]
pub struct TopupOutcome {
    #[serde(flatten)]
    pub booked: Booked,
    pub topup_method_id: String,
}

/// Authorise, check and post one top-up to the billing-state directory `dir`.
pub fn topup(repo: &Path, dir: &Path, req: &TopupRequest<'_>) -> Result<TopupOutcome> {
    let ask = Ask {
        scope: Scope::BillingTopup,
        tenant_id: req.tenant_id,
        target: billing::topup_key(req.tenant_id, req.reference.trim()),
        actor: req.actor,
    };
    let record = |reference, actor: &str| {
        let topup = Topup::new(
            req.tenant_id,
            req.amount_credits,
            req.topup_method_id,
            reference,
            req.note,
            actor,
        );
        Once {
            identity: vec![
                ("amount_credits", json!(topup.amount_credits)),
                ("topup_method_id", json!(topup.topup_method_id)),
            ],
            payload: Payload::new(topup),
            help: "a reference is one payment: use a new --reference for a new top-up",
        }
    };
    let booked = book(repo, dir, ask, || check(repo, req), record)?;
    Ok(TopupOutcome {
        booked,
        topup_method_id: req.topup_method_id.to_string(),
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
    let reference = check_reference_and_note(
        req.reference,
        req.note,
        "use the payment's external reference (invoice or wire id), e.g. INV-2026-0042",
    )?;
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
