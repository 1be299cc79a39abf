//! `platform admin-topup`: IAM check (audited either way), then one idempotent TOPUP keyed by tenant and reference.
use super::balance::check_tenant_flag;
use super::Ctx;
use crate::cli::AdminTopupArgs;
use crate::config::iam::{resolve_actor, Iam};
use crate::config::registry::Registry;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, Stream};
use crate::output::Report;
use crate::records::{audit, billing, Audit, Decision, Payload, Topup};
use serde_json::{json, Value};

const SCOPE: &str = "billing.topup";

pub fn run(ctx: &Ctx, args: &AdminTopupArgs) -> Result<Report> {
    let actor = resolve_actor(args.actor.as_deref())?;
    let iam = Iam::load_strict(ctx.repo())?;
    let dir = super::state_dir(ctx, args.state.billing_state_dir.as_deref())?;
    let key = billing::topup_key(&args.tenant_id, &args.reference);
    let audit = |decision: Decision, reason: Option<String>| Audit {
        action: SCOPE.into(),
        scope: SCOPE.into(),
        actor: actor.clone(),
        decision,
        reason,
        tenant_id: Some(args.tenant_id.clone()),
        target: key.clone(),
        command: None,
    };

    // Every denial is audited, whatever else is wrong with the request.
    if let Err(reason) = iam.check(&actor, SCOPE) {
        let (mut ledger, _) = Ledger::open(&dir)?;
        let recorded = ledger.audit(audit(Decision::Denied, Some(reason.clone())));
        let mut err = Error::denied(format!("actor '{actor}' may not top up credits: {reason}"))
            .help("grant the actor a role with scope billing.topup in config/iam.yml");
        if let Err(e) = recorded {
            err.message.push_str(&format!(
                " (and the denial could not be audited: {})",
                e.message
            ));
        }
        return Err(err);
    }

    check_tenant_flag(&args.tenant_id)?;
    crate::repo::tenants::check_tenant(ctx.repo(), &args.tenant_id)?;
    if args.amount_credits <= 0 {
        return Err(Error::input(format!(
            "--amount-credits must be a positive number of credits, got {}",
            args.amount_credits
        )));
    }
    if args.reference.trim().is_empty() {
        return Err(Error::input("--reference must not be empty")
            .help("use the external reference of the payment (invoice or wire id)"));
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

    let (mut ledger, repairs) = Ledger::open(&dir)?;
    let topup = Topup::new(
        &args.tenant_id,
        args.amount_credits,
        &args.topup_method_id,
        &args.reference,
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
                        args.reference,
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
            let out = ledger.append(Stream::Billing, vec![Payload::new(topup)])?;
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
    // Audit the mutation once; a replay of an audited top-up adds nothing.
    if !ledger.contains(Stream::Audit, &audit::allowed_key(SCOPE, &key)) {
        ledger.audit(audit(Decision::Allowed, None))?;
    }
    let balance = ledger.balance(&args.tenant_id);
    let text = if status == "appended" {
        format!(
            "topped up {} by {} credits (reference {}, billing.jsonl seq {seq}); balance {balance} credits",
            args.tenant_id, args.amount_credits, args.reference
        )
    } else {
        format!(
            "already recorded: reference {} of {} ({} credits, billing.jsonl seq {seq}); nothing written; balance {balance} credits",
            args.reference, args.tenant_id, args.amount_credits
        )
    };
    let mut report = Report::new(
        text,
        json!({
            "status": status,
            "tenant_id": args.tenant_id,
            "amount_credits": args.amount_credits,
            "topup_method_id": args.topup_method_id,
            "reference": args.reference,
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
