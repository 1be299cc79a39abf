//! Text rendering of an orchestrator pass and of a dry-run plan (JSON is the serde form).
use super::plan::{Action, Disposition, Plan, StepPlan, TenantBalance, WorkOrderPlan};
use super::report::RunReport;
use super::{Invalid, Summary};
use crate::findings::Finding;
use crate::output::untrusted;
use std::fmt::Write;

/// The priced plan of `--dry-run`: per step the charges, per tenant the balance.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    for wp in &plan.work_orders {
        out.push_str(&work_order_plan(wp));
    }
    out.push_str(&balances(&plan.tenants));
    out
}

/// `tenant/work-order`, escaped: the work order's id is its file's name, which the tenant
/// chose, and an invalid one (say with a newline) is still listed.
fn named(tenant_id: &str, work_order_id: &str) -> String {
    untrusted(&format!("{tenant_id}/{work_order_id}")).into_owned()
}

/// A work order's line (action, run, closings, refusal), its findings, and the steps it runs.
fn work_order_plan(wp: &WorkOrderPlan) -> String {
    let mut out = format!(
        "{}  {}",
        named(&wp.tenant_id, &wp.work_order_id),
        wp.action.as_str()
    );
    if wp.run > 0 {
        let _ = write!(out, " run {}", wp.run);
    }
    if let Some(period) = &wp.period {
        let _ = write!(out, " period {period}");
    }
    if wp.rerun.is_some() {
        out.push_str(" (rerun requested)");
    }
    for c in &wp.close {
        let _ = write!(
            out,
            "\n    closes run {} as superseded: refunds {} credits",
            c.run, c.refund_credits
        );
        if c.usage_credits > 0 {
            let _ = write!(out, ", charges {} credits of owed usage", c.usage_credits);
        }
    }
    if let Some(r) = &wp.refused {
        let _ = write!(out, "  REFUSED {}: {}", r.reason(), untrusted(&r.message()));
    }
    out.push('\n');
    for f in &wp.findings {
        let (message, at, field) = shown(f);
        // A finding on the whole file (a YAML syntax error) has no field to name.
        if field.is_empty() {
            let _ = writeln!(out, "    error: {message} ({at})");
        } else {
            let _ = writeln!(out, "    error: {message} ({at}: {field})");
        }
    }
    if matches!(wp.action, Action::Start | Action::Resume | Action::Retry) {
        for s in &wp.steps {
            out.push_str(&step_plan(s));
        }
        let _ = writeln!(out, "    new charges: {} credits", wp.new_charges);
        // Held against the balance as well, so "balance after" is lower by it.
        if wp.usage_reserve != 0 {
            let _ = writeln!(
                out,
                "    usage reserve: {} credits (metered usage at its most; charged by what the steps use)",
                wp.usage_reserve
            );
        }
    }
    if let Some(then) = &wp.then {
        out.push_str("  then ");
        out.push_str(&work_order_plan(then));
    }
    out
}

/// One planned step: what happens to it and what it is charged.
fn step_plan(s: &StepPlan) -> String {
    let what = match &s.disposition {
        Disposition::Run { attempt } => format!("run attempt {attempt}"),
        Disposition::Keep { status, attempt } => {
            format!("keep {} (attempt {attempt})", status.as_str())
        }
        Disposition::Refund { attempt } => format!("post missing refunds (attempt {attempt})"),
    };
    let charges: Vec<String> = s
        .charges
        .iter()
        .map(|c| {
            let charged = if c.already_charged { " (charged)" } else { "" };
            format!("{} {}{charged}", c.deliverable_id, c.amount_credits)
        })
        .collect();
    let charges = if charges.is_empty() {
        "-".to_string()
    } else {
        charges.join(", ")
    };
    format!(
        "    {:<20} {:<20} {:<24} {}\n",
        s.step_id, s.module_id, what, charges
    )
}

/// Per tenant the balance before and after the plan's charges.
fn balances(tenants: &[TenantBalance]) -> String {
    let head = format!(
        "\n{:<24} {:>14} {:>14}",
        "tenant", "balance before", "balance after"
    );
    table(tenants, &head, |out, t| {
        let _ = writeln!(
            out,
            "{:<24} {:>14} {:>14}",
            t.tenant_id, t.balance_before, t.balance_after
        );
    })
}

/// A table: its `head` line, then what `row` writes for each row; nothing without rows.
fn table<T>(rows: &[T], head: &str, row: impl Fn(&mut String, &T)) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    let _ = writeln!(out, "{head}");
    for r in rows {
        row(&mut out, r);
    }
    out
}

/// The end-of-pass table: work orders, statuses, credits charged and refunded.
pub fn text(s: &Summary) -> String {
    if let Some(plan) = &s.plan {
        // A rejected tenant folder (tenant.yml a folder, a link...) has no work order in the
        // plan: listed here, or a dry run exited 1 without a word why (until 2026-12-03).
        let unplanned: Vec<Invalid> = s
            .invalid
            .iter()
            .filter(|i| {
                !plan
                    .work_orders
                    .iter()
                    .any(|w| w.tenant_id == i.tenant_id && w.work_order_id == i.work_order_id)
            })
            .cloned()
            .collect();
        let mut notes = String::new();
        for n in &s.notes {
            let _ = writeln!(notes, "note: {}", untrusted(n));
        }
        return format!(
            "dry run: nothing was written\n\n{}{}{}{}{}",
            config_errors(&s.config_errors),
            plan_text(plan),
            invalid(&unplanned),
            notes,
            super::notices::text(&s.low_balance)
        );
    }
    let mut out = config_errors(&s.config_errors);
    out.push_str(&runs(&s.runs));
    out.push_str(&invalid(&s.invalid));
    if !s.up_to_date.is_empty() {
        let names: Vec<_> = s.up_to_date.iter().map(|n| untrusted(n)).collect();
        let _ = writeln!(out, "up to date: {}", names.join(", "));
    }
    for n in &s.notes {
        let _ = writeln!(out, "note: {}", untrusted(n));
    }
    out.push_str(&super::notices::text(&s.low_balance));
    let _ = writeln!(out, "{}", s.counts(""));
    out
}

/// A row per run (see [`run_rows`]).
fn runs(runs: &[RunReport]) -> String {
    let head = format!(
        "{:<40} {:>4} {:<7} {:<10} {:>8} {:>9}  period",
        "work order", "run", "action", "status", "charged", "refunded"
    );
    table(runs, &head, run_rows)
}

/// A run's row, and under it the refusal, why the pass stopped on it, or the steps with a
/// reason.
fn run_rows(out: &mut String, r: &RunReport) {
    let _ = writeln!(
        out,
        "{:<40} {:>4} {:<7} {:<10} {:>8} {:>9}  {}",
        named(&r.tenant_id, &r.work_order_id),
        r.run,
        r.action.as_str(),
        r.status.as_str(),
        r.charged_credits,
        r.refunded_credits,
        untrusted(r.period.as_deref().unwrap_or("-"))
    );
    if let Some(why) = &r.refused {
        let _ = writeln!(out, "    refused: {}", untrusted(why));
    }
    if let Some(why) = &r.error {
        let _ = writeln!(out, "    stopped: {}", untrusted(why));
    }
    for st in &r.steps {
        if !st.usage.is_empty() {
            let _ = writeln!(out, "    {} used {}", st.step_id, usage_text(&st.usage));
        }
        let Some(slug) = &st.reason_slug else {
            continue;
        };
        let message = st.message.as_ref().map(|m| format!(": {}", untrusted(m)));
        let _ = writeln!(
            out,
            "    {} {} {slug}{}",
            st.step_id,
            st.status.as_str(),
            message.unwrap_or_default()
        );
    }
}

/// Metered usage as `7 lines, 2 kib`.
pub fn usage_text(usage: &std::collections::BTreeMap<String, u64>) -> String {
    usage
        .iter()
        .map(|(u, q)| format!("{q} {u}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The invalid work orders with every finding.
fn invalid(invalid: &[Invalid]) -> String {
    let mut out = String::new();
    for inv in invalid {
        let _ = writeln!(
            out,
            "invalid, not run: {} ({})",
            named(&inv.tenant_id, &inv.work_order_id),
            untrusted(&inv.file)
        );
        errors(&mut out, &inv.findings);
    }
    out
}

/// The config's errors, once, before anything else: why every work order is invalid.
fn config_errors(config: &[Finding]) -> String {
    let mut out = String::new();
    if !config.is_empty() {
        out.push_str(
            "config has errors: nothing is run, charged or refunded until they are fixed\n",
        );
        errors(&mut out, config);
    }
    out
}

/// Each finding as an error: its message, then its location and field.
fn errors(out: &mut String, findings: &[Finding]) {
    for f in findings {
        let (message, at, field) = shown(f);
        if field.is_empty() {
            let _ = writeln!(out, "    error: {message}\n      --> {at}");
        } else {
            let _ = writeln!(out, "    error: {message}\n      --> {at}  field: {field}");
        }
    }
}

/// A finding's message, location and field, each made safe to print (a tenant wrote them).
fn shown(f: &Finding) -> (String, String, String) {
    (
        untrusted(&f.message).into_owned(),
        untrusted(&f.location()).into_owned(),
        untrusted(&f.field).into_owned(),
    )
}
