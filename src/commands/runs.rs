//! `platform runs`: every run recorded in evidence.jsonl, oldest first, from a ledger that
//! passes every check (the runtime dir is not needed: runs survive its loss).
use super::Ctx;
use crate::cli::RunsArgs;
use crate::error::Result;
use crate::output::{untrusted, Report};
use crate::runs::history::{current_status, History};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct StepRow {
    pub step_id: String,
    pub status: String,
    pub reason_slug: Option<String>,
    pub attempt: u32,
}

#[derive(Debug, Serialize)]
pub struct RunRow {
    pub tenant_id: String,
    pub work_order_id: String,
    pub run_id: String,
    pub run: u64,
    /// COMPLETED, PARTIAL or FAILED once ended; RUNNING while started and not ended.
    pub status: String,
    pub steps: Vec<StepRow>,
}

/// The runs of a history, oldest first, optionally filtered.
pub fn rows(history: &History, tenant: Option<&str>, wo: Option<&str>) -> Vec<RunRow> {
    let mut out = Vec::new();
    for (t, w, run) in &history.order {
        if tenant.is_some_and(|x| x != t) || wo.is_some_and(|x| x != w) {
            continue;
        }
        let Some(r) = history.runs(t, w).and_then(|m| m.get(run)) else {
            continue;
        };
        let status = if r.is_open() {
            "RUNNING".to_string()
        } else {
            r.last_end()
                .map(|e| e.status.as_str().to_string())
                .unwrap_or_else(|| "RUNNING".into())
        };
        let steps = r
            .step_order
            .iter()
            .filter_map(|id| r.steps.get(id).map(|s| (id, s)))
            .map(|(id, s)| {
                let latest = s.latest_outcome();
                StepRow {
                    step_id: id.clone(),
                    status: current_status(Some(s))
                        .map(|x| x.as_str().to_string())
                        .unwrap_or_else(|| "STARTED".into()),
                    reason_slug: latest.and_then(|o| o.reason_slug.clone()),
                    attempt: latest
                        .map(|o| o.attempt)
                        .or_else(|| s.latest().map(|(a, _)| a))
                        .unwrap_or(1),
                }
            })
            .collect();
        out.push(RunRow {
            tenant_id: t.clone(),
            work_order_id: w.clone(),
            run_id: r.run_id.clone(),
            run: *run,
            status,
            steps,
        });
    }
    out
}

pub fn run(ctx: &Ctx, args: &RunsArgs) -> Result<Report> {
    let dir = super::state_dir(ctx, args.state.billing_state_dir.as_deref())?;
    let (history, _, _) = crate::runs::load(&dir)?;
    let rows = rows(
        &history,
        args.tenant_id.as_deref(),
        args.work_order_id.as_deref(),
    );
    let mut text = format!(
        "{:<40} {:>4} {:<26} {:<10} steps\n",
        "work order", "run", "run_id", "status"
    );
    for r in &rows {
        let steps: Vec<String> = r
            .steps
            .iter()
            .map(|s| {
                format!(
                    "{}={}{}",
                    s.step_id,
                    s.status,
                    s.reason_slug
                        .as_ref()
                        .map(|x| format!("({x})"))
                        .unwrap_or_default()
                )
            })
            .collect();
        // Ids are validated, slugs come from the registry; escaped all the same, so no field
        // of a (forged) ledger can make a row of its own.
        text.push_str(&format!(
            "{:<40} {:>4} {:<26} {:<10} {}\n",
            untrusted(&format!("{}/{}", r.tenant_id, r.work_order_id)),
            r.run,
            untrusted(&r.run_id),
            r.status,
            untrusted(&steps.join(" "))
        ));
    }
    if rows.is_empty() {
        text = format!("no runs recorded in {}\n", dir.display());
    }
    let json = serde_json::to_value(&rows).unwrap_or(serde_json::Value::Array(vec![]));
    Ok(Report::new(text, json))
}
