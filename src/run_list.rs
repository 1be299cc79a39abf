//! The runs `platform runs` lists: every run recorded in evidence.jsonl, oldest first, from a ledger that passes every check (runs survive the loss of the runtime directory).
use crate::error::Result;
use crate::runs::history::{current_status, History, RunHistory, StepHistory};
use crate::runs::RunTotals;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRow {
    pub step_id: String,
    pub status: String,
    pub reason_slug: Option<String>,
    pub attempt: u32,
    /// Metered usage of its latest outcome, by unit: quantities (SPEC §10); omitted when none.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub usage: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRow {
    pub tenant_id: String,
    pub work_order_id: String,
    pub run_id: String,
    pub run: u64,
    /// The UTC calendar period of a scheduled work order's run; null when unscheduled.
    pub period: Option<String>,
    /// COMPLETED, PARTIAL or FAILED once ended; RUNNING while started and not ended.
    pub status: String,
    pub steps: Vec<StepRow>,
    /// When its `run_started` was recorded (UTC, milliseconds); null when unknown.
    pub started_at: Option<String>,
    /// The key of the `rerun_requested` record that started it; null when none did.
    pub rerun: Option<String>,
    /// Credits its SPENDs charged and its REFUNDs gave back, every attempt (positive sums):
    /// what the statement's rows of this `run_id` add up to.
    pub charged_credits: i64,
    pub refunded_credits: i64,
}

/// The runs of a billing-state directory (the `--json` document is the array of runs).
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct RunList {
    pub runs: Vec<RunRow>,
    /// Where they were read from.
    #[serde(skip)]
    pub dir: PathBuf,
    /// The filters asked for (`--tenant-id`, `--work-order-id`), named when nothing matched.
    #[serde(skip)]
    pub tenant: Option<String>,
    #[serde(skip)]
    pub work_order: Option<String>,
}

/// The runs recorded in `dir`, oldest first, of one tenant and work order when given; a
/// missing `dir`, or a tenant neither in `repo` nor in the runs, is an input error, not an
/// empty list.
pub fn list(
    repo: &Path,
    dir: &Path,
    tenant: Option<&str>,
    work_order: Option<&str>,
) -> Result<RunList> {
    // A mistyped --billing-state-dir (or the wrong folder) must not read as "no runs".
    crate::dirs::existing(dir)?;
    let (history, totals, _) = crate::runs::load(dir)?;
    if let Some(t) = tenant {
        let recorded = history.order.iter().map(|(t, _, _)| t.as_str());
        crate::known_ids::require_known(repo, t, recorded)?;
    }
    if let Some(wo) = work_order {
        // A typo must not read as "no runs": it names a work-order file or a work order
        // with runs (of the tenant, when given), like the orchestrator's --work-order-id.
        let files = crate::known_ids::work_order_file_ids(repo, tenant);
        let ran = crate::known_ids::with_runs(&history, tenant);
        crate::known_ids::require_known_work_order(
            wo,
            tenant,
            files.iter().map(String::as_str).chain(ran),
        )?;
    }
    Ok(RunList {
        runs: rows(&history, &totals, tenant, work_order),
        dir: dir.to_path_buf(),
        tenant: tenant.map(str::to_string),
        work_order: work_order.map(str::to_string),
    })
}

/// The runs of a history, oldest first (by when each `run_started` was recorded, then in
/// file order: a merged ledger holds its shards' runs shard after shard), optionally filtered.
fn rows(
    history: &History,
    totals: &RunTotals,
    tenant: Option<&str>,
    wo: Option<&str>,
) -> Vec<RunRow> {
    let mut out = Vec::new();
    for (t, w, run) in &history.order {
        if tenant.is_some_and(|x| x != t) || wo.is_some_and(|x| x != w) {
            continue;
        }
        if let Some(r) = history.runs(t, w).and_then(|m| m.get(run)) {
            let credits = totals.get(&r.run_id).copied().unwrap_or_default();
            out.push((r.started_at_ns, run_row(t, w, *run, r, credits)));
        }
    }
    // Stable: runs recorded in the same instant keep their file order.
    out.sort_by_key(|(at, _)| *at);
    out.into_iter().map(|(_, row)| row).collect()
}

fn run_row(tenant: &str, wo: &str, run: u64, r: &RunHistory, credits: (i64, i64)) -> RunRow {
    let status = match r.last_end() {
        Some(end) if !r.is_open() => end.status.as_str().to_string(),
        _ => "RUNNING".to_string(),
    };
    let steps = r
        .step_order
        .iter()
        .filter_map(|id| r.steps.get(id).map(|s| step_row(id, s)))
        .collect();
    RunRow {
        tenant_id: tenant.to_string(),
        work_order_id: wo.to_string(),
        run_id: r.run_id.clone(),
        run,
        period: r.period.clone(),
        status,
        steps,
        // Kept as a number (no string per run in every history the orchestrator builds).
        started_at: r
            .started_at_ns
            .map(|ns| crate::ledger::recorded_at_text(chrono::DateTime::from_timestamp_nanos(ns))),
        rerun: r.rerun.clone(),
        charged_credits: credits.0,
        refunded_credits: credits.1,
    }
}

fn step_row(id: &str, s: &StepHistory) -> StepRow {
    // An attempt started (charged) after the last outcome, with none of its own yet (a pass
    // stopped mid-step, or running now): that attempt is the step's state, not the outcome
    // of an earlier one, which a charge of the statement would match to no step.
    if let Some((attempt, _)) = s.latest().filter(|(_, a)| a.outcome.is_none()) {
        return StepRow {
            step_id: id.to_string(),
            status: "STARTED".into(),
            reason_slug: None,
            attempt,
            usage: Default::default(),
        };
    }
    let latest = s.latest_outcome();
    StepRow {
        step_id: id.to_string(),
        status: current_status(Some(s))
            .map(|x| x.as_str().to_string())
            .unwrap_or_else(|| "STARTED".into()),
        reason_slug: latest.and_then(|o| o.reason_slug.clone()),
        attempt: latest
            .map(|o| o.attempt)
            .or_else(|| s.latest().map(|(a, _)| a))
            .unwrap_or(1),
        usage: latest
            .map(|o| {
                o.usage
                    .iter()
                    .map(|(u, c)| (u.clone(), c.quantity))
                    .collect()
            })
            .unwrap_or_default(),
    }
}
