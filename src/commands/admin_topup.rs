//! `platform admin-topup`: IAM check (audited either way), then one idempotent TOPUP keyed by tenant and reference.
use super::balance::check_tenant_flag;
use super::Ctx;
use crate::cli::AdminTopupArgs;
use crate::config::iam::{resolve_actor, Iam};
use crate::config::registry::Registry;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, Stream};
use crate::output::Report;
use crate::records::{billing, Audit, Decision, Payload, Topup};
use serde_json::{json, Value};

const SCOPE: &str = "billing.topup";

pub fn run(ctx: &Ctx, args: &AdminTopupArgs) -> Result<Report> {
    let actor = resolve_actor(args.actor.as_deref())?;
    let iam = Iam::load_strict(ctx.repo())?;
    let dir = super::state_dir(ctx, args.state.billing_state_dir.as_deref())?;

    // Every denial is audited, whatever else is wrong with the request (the ledger keeps at
    // most 256 characters of each field the caller chose).
    if let Err(reason) = iam.check(&actor, SCOPE) {
        let denial = Audit {
            action: SCOPE.into(),
            scope: SCOPE.into(),
            actor: actor.clone(),
            decision: Decision::Denied,
            reason: Some(reason.clone()),
            tenant_id: Some(args.tenant_id.clone()),
            target: billing::topup_key(&args.tenant_id, args.reference.trim()),
            command: None,
        };
        let (mut ledger, mut repairs) = Ledger::open(&dir)?;
        let recorded = ledger.audit(denial);
        let mut err = Error::denied(format!("actor '{actor}' may not top up credits: {reason}"))
            .help("grant the actor a role with scope billing.topup in config/iam.yml");
        match recorded {
            Ok(out) => repairs.extend(out.repairs),
            Err(e) => err.message.push_str(&format!(
                " (and the denial could not be audited: {})",
                e.message
            )),
        }
        // A writer reports every repair it made, even on its way to a denial.
        for r in repairs {
            err.message.push_str(&format!("; {r}"));
        }
        return Err(err);
    }

    check_tenant_flag(&args.tenant_id)?;
    crate::repo::tenants::check_tenant(ctx.repo(), &args.tenant_id)?;
    if !(1..=billing::MAX_CREDITS).contains(&args.amount_credits) {
        return Err(Error::input(format!(
            "--amount-credits must be 1..={} credits, got {}",
            billing::MAX_CREDITS,
            args.amount_credits
        ))
        .help("split a larger payment into several top-ups, each with its own --reference"));
    }
    let reference = billing::check_reference(&args.reference).map_err(|why| {
        Error::input(format!("--reference {why}"))
            .help("use the payment's external reference (invoice or wire id), e.g. INV-2026-0042")
    })?;
    let key = billing::topup_key(&args.tenant_id, reference);
    if let Some(note) = &args.note {
        billing::check_note(note).map_err(|why| Error::input(format!("--note {why}")))?;
    }
    let registry = Registry::load_strict(ctx.repo())?;
    if !registry.is_topup_method(&args.topup_method_id) {
        return Err(Error::input(format!(
            "--topup-method-id: unknown top-up method '{}' (known: {})",
            args.topup_method_id,
            registry.topup_methods().join(", ")
        ))
        .help("use a built-in method or add it to config/registry.yml"));
    }

    let (mut ledger, mut repairs) = Ledger::open(&dir)?;
    let topup = Topup::new(
        &args.tenant_id,
        args.amount_credits,
        &args.topup_method_id,
        reference,
        args.note.as_deref(),
        &actor,
    );
    // The reference names the payment: a replay with the same amount and method is the same
    // top-up even when entered by another actor or with another note.
    let existing = ledger.get(Stream::Billing, &key)?;
    let (status, seq) = match existing {
        Some(rec) => {
            let differs = |field: &str, want: Value| rec.get(field) != Some(&want);
            for (field, want) in [
                ("amount_credits", json!(args.amount_credits)),
                ("topup_method_id", json!(args.topup_method_id)),
            ] {
                if differs(field, want.clone()) {
                    let seq = rec.get("seq").and_then(Value::as_u64).unwrap_or(0);
                    return Err(Error::failure(format!(
                        "conflict: reference '{}' of tenant {} is already recorded (seq {seq}) with {field} {}, not {want}; nothing was written",
                        reference,
                        args.tenant_id,
                        rec.get(field).cloned().unwrap_or(Value::Null),
                    ))
                    .at(format!("{}:{seq}", dir.join(Stream::Billing.file_name()).display()))
                    .help("a reference is one payment: use a new --reference for a new top-up"));
                }
            }
            (
                "already_recorded",
                rec.get("seq").and_then(Value::as_u64).unwrap_or(0),
            )
        }
        None => {
            // The ledger records the TOPUP's audit record with it (records::PRIVILEGED).
            let out = ledger.append(Stream::Billing, vec![Payload::new(topup)])?;
            repairs.extend(out.repairs.iter().cloned());
            let seq = out.records.first().map_or(0, |r| r.seq);
            (
                if out.appended() {
                    "appended"
                } else {
                    "already_recorded"
                },
                seq,
            )
        }
    };
    let balance = ledger.balance(&args.tenant_id);
    let text = if status == "appended" {
        format!(
            "topped up {} by {} credits (reference {}, billing.jsonl seq {seq}); balance {balance} credits",
            args.tenant_id, args.amount_credits, reference
        )
    } else {
        format!(
            "already recorded: reference {} of {} ({} credits, billing.jsonl seq {seq}); nothing written; balance {balance} credits",
            reference, args.tenant_id, args.amount_credits
        )
    };
    let mut report = Report::new(
        text,
        json!({
            "status": status,
            "tenant_id": args.tenant_id,
            "amount_credits": args.amount_credits,
            "topup_method_id": args.topup_method_id,
            "reference": reference,
            "idempotency_key": key,
            "seq": seq,
            "actor": actor,
            "balance_credits": balance,
        }),
    );
    for r in repairs {
        report = report.note(format!("note: {r}"));
    }
    Ok(report)
}
