//! `platform rerun` as a library (SPEC §9): IAM (denials audited), the request's checks, then one `rerun_requested` record keyed by the work order's last run, so a second request before the next pass is the same request.
use crate::audit::Subject;
use crate::config::iam::Scope;
use crate::error::{Error, Result};
use crate::findings::Finding;
use crate::ledger::{Ledger, Repair, Stream};
use crate::orchestrator::plan::run_id;
use crate::privileged;
use crate::records::evidence::{rerun_key, run_started_key};
use crate::records::{billing, Payload, RerunRequested};
use serde::Serialize;
use std::path::Path;

/// A rerun as the command line asks for it.
#[derive(Debug, Clone, Copy)]
pub struct RerunRequest<'a> {
    pub tenant_id: &'a str,
    pub work_order_id: &'a str,
    pub reason: &'a str,
    /// `--actor`, else `$GITHUB_ACTOR`.
    pub actor: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RerunStatus {
    Requested,
    /// A request after the same run is waiting for the next pass: nothing written.
    AlreadyRequested,
}

/// What the request did (the `--json` document).
#[derive(Debug, Clone, Serialize)]
pub struct RerunOutcome {
    pub status: RerunStatus,
    pub tenant_id: String,
    pub work_order_id: String,
    /// The work order's last run number (0 if none): the next pass starts the one after it.
    pub after_run: u64,
    pub idempotency_key: String,
    pub actor: String,
    /// The work order's `enabled`: a disabled one starts the run on the first pass after
    /// it is enabled again. Null when its file does not load (not YAML): nothing it says
    /// is known.
    pub enabled: Option<bool>,
    /// Whether the orchestrator would run it now: false when it has validation errors
    /// (`findings`), which keep the requested run waiting until they are fixed.
    pub valid: bool,
    /// The errors that keep it from running, as the orchestrator reports them (`invalid`).
    pub findings: Vec<Finding>,
    /// What the ledger repaired on the way (reported as notes).
    #[serde(skip)]
    pub repairs: Vec<Repair>,
}

/// Authorise, check and record one rerun request in the billing-state directory `dir`.
pub fn request(repo: &Path, dir: &Path, req: &RerunRequest<'_>) -> Result<RerunOutcome> {
    let subject = Subject {
        tenant_id: Some(req.tenant_id.to_string()),
        target: format!("rerun/{}/{}", req.tenant_id, req.work_order_id),
    };
    let who = privileged::authorize(repo, dir, req.actor, Scope::OrdersRerun, &subject)?;
    crate::account::check_tenant_id(req.tenant_id)?;
    crate::repo::tenants::check_tenant(repo, req.tenant_id)?;
    let file = crate::repo::tenants::check_work_order(repo, req.tenant_id, req.work_order_id)?;
    check_reason(req.reason)?;
    let enabled = enabled(repo, &file);
    let findings = match enabled {
        // A draft's errors are warnings: it runs nothing until it is enabled anyway.
        Some(false) => Vec::new(),
        _ => errors_before_run(repo, req.tenant_id, req.work_order_id),
    };
    let (mut ledger, mut repairs) = Ledger::open(dir)?;
    let after_run = last_run(&ledger, req.tenant_id, req.work_order_id);
    let record = RerunRequested {
        tenant_id: req.tenant_id.to_string(),
        work_order_id: req.work_order_id.to_string(),
        after_run,
        reason: req.reason.trim().to_string(),
        actor: who.actor.clone(),
    };
    let status = record_once(&mut ledger, record, &mut repairs)
        .map_err(|e| Repair::reported_in(e, &repairs))?;
    Ok(RerunOutcome {
        status,
        tenant_id: req.tenant_id.to_string(),
        work_order_id: req.work_order_id.to_string(),
        after_run,
        idempotency_key: rerun_key(req.tenant_id, req.work_order_id, after_run),
        actor: who.actor,
        enabled,
        valid: findings.is_empty(),
        findings,
        repairs,
    })
}

/// The errors the orchestrator would refuse to run the work order for (every file of its
/// id), from the repository as it is now: the requested run waits until they are fixed.
fn errors_before_run(repo: &Path, tenant_id: &str, work_order_id: &str) -> Vec<Finding> {
    // A repository that does not load at all is the next pass's error to report.
    let Ok(loaded) = crate::repo::Repo::load(repo) else {
        return Vec::new();
    };
    loaded
        .work_orders()
        .filter(|lw| lw.tenant_id == tenant_id && lw.stem == work_order_id)
        .flat_map(|lw| crate::validate::before_run(&loaded, lw))
        .collect()
}

/// Whether the work order's file says `enabled` (the default) or `enabled: false`: a
/// disabled one keeps the request until it is enabled. None when the file does not load.
fn enabled(repo: &Path, file: &Path) -> Option<bool> {
    let doc = crate::yaml::load_beneath(repo, file).ok()?;
    Some(
        doc.value
            .get("enabled")
            .and_then(|v| v.as_bool())
            .unwrap_or(true),
    )
}

/// Append the request unless one after the same run is recorded. The first request after a
/// run is the request, whatever a later one says: one key per run, and a second posting
/// with another reason must not be a conflict.
fn record_once(
    ledger: &mut Ledger,
    record: RerunRequested,
    repairs: &mut Vec<Repair>,
) -> Result<RerunStatus> {
    let key = record.key();
    if ledger.contains(Stream::Evidence, &key) {
        return Ok(RerunStatus::AlreadyRequested);
    }
    match ledger.append(Stream::Evidence, vec![Payload::new(record)]) {
        Ok(out) => {
            repairs.extend(out.repairs.iter().cloned());
            Ok(RerunStatus::Requested)
        }
        // Another request with another reason won the race for the lock: the same request,
        // which the writer caught up with before it refused this one.
        Err(_) if ledger.contains(Stream::Evidence, &key) => Ok(RerunStatus::AlreadyRequested),
        Err(e) => Err(e),
    }
}

/// `--reason`: one line of text, like a note, and not empty.
fn check_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(Error::input("--reason must not be empty")
            .help("say why the work order must run again, e.g. --reason \"upstream data fixed\""));
    }
    billing::check_note(reason)
        .map_err(|why| Error::input(format!("--reason {why}")).help(billing::note_help("--reason")))
}

/// The work order's last run number, 0 if none: run ids derive from the number, so the
/// runs recorded are `run_started` keys 1, 2, ... without a gap.
fn last_run(ledger: &Ledger, tenant_id: &str, work_order_id: &str) -> u64 {
    let started = |n: u64| {
        let key = run_started_key(&run_id(tenant_id, work_order_id, n));
        ledger.contains(Stream::Evidence, &key)
    };
    (1..).take_while(|n| started(*n)).last().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(reason: &str) -> RerunRequested {
        RerunRequested {
            tenant_id: "acme".into(),
            work_order_id: "w".into(),
            after_run: 0,
            reason: reason.into(),
            actor: "ops".into(),
        }
    }

    #[test]
    fn two_racing_requests_with_other_reasons_are_one_request() {
        let dir = tempfile::tempdir().unwrap();
        // Both opened before either writes: each sees no request yet.
        let (mut a, _) = Ledger::open(dir.path()).unwrap();
        let (mut b, _) = Ledger::open(dir.path()).unwrap();
        let mut repairs = Vec::new();
        let first = record_once(&mut a, request("data fixed"), &mut repairs).unwrap();
        let second = record_once(&mut b, request("asked again"), &mut repairs).unwrap();
        assert_eq!(
            (first, second),
            (RerunStatus::Requested, RerunStatus::AlreadyRequested)
        );
        let text = std::fs::read_to_string(dir.path().join("evidence.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("data fixed"));
        assert_eq!(last_run(&b, "acme", "w"), 0);
    }
}
