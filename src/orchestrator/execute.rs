//! Executes one planned run: per step, in SPEC §4's order — SPEND batch, step-started record,
//! the module, outcome records, REFUND batch — then the run's end and evidence bundle.
use super::builtins;
use super::journal::Journal;
use super::plan::{Action, Disposition, StepPlan, WorkOrderPlan};
use crate::beneath::Beneath;
use crate::config::profile::RuntimeProfile;
use crate::contract::ModuleContract;
use crate::error::Result;
use crate::records::{
    DeliveryReceipt, EvidenceBundle, EvidenceItem, FileDigest, OutputRecord, Payload, Refund,
    RunEnded, RunStarted, RunStatus, Spend, StepOutcome, StepStarted, StepStatus, StepSummary,
};
use crate::repo::Repo;
use crate::runner::redact::Redactor;
use crate::runner::{command, Status, StepResult};
use crate::runs::history::RunHistory;
use crate::runs::step_beneath;
use crate::workorder::assets;
use crate::workorder::bindings::{self, Produced};
use crate::workorder::model::{BoundOutput, Mode, Step, WorkOrder};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

/// What the executor needs besides the plan.
pub struct ExecEnv<'a> {
    pub repo: &'a Repo,
    pub journal: &'a mut Journal,
    pub runtime_dir: &'a Path,
    pub profile: &'a RuntimeProfile,
    /// Declared secret values by NAME (from PLATFORM_SECRET_NAME).
    pub secrets: &'a BTreeMap<String, String>,
    pub redactor: &'a Redactor,
    pub progress: &'a mut dyn FnMut(&str),
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step_id: String,
    pub module_id: String,
    pub status: StepStatus,
    pub reason_slug: Option<String>,
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether this pass ran it (false: kept from an earlier attempt).
    pub ran: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub tenant_id: String,
    pub work_order_id: String,
    pub run: u64,
    pub run_id: String,
    pub action: Action,
    pub status: RunStatus,
    pub steps: Vec<StepReport>,
    /// Credits charged and refunded by this pass.
    pub charged_credits: i64,
    pub refunded_credits: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Why the pass stopped working on this work order (a ledger refusal, an I/O error):
    /// its run stays open and the next pass resumes or closes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A run refused before anything was charged: every step FAILED with the refusal's slug.
pub fn refused_report(wp: &WorkOrderPlan) -> RunReport {
    let slug = wp
        .refused
        .as_ref()
        .map(|r| r.slug())
        .unwrap_or("not_enough_credits");
    RunReport {
        tenant_id: wp.tenant_id.clone(),
        work_order_id: wp.work_order_id.clone(),
        run: wp.run,
        run_id: wp.run_id.clone(),
        action: wp.action,
        status: RunStatus::Failed,
        steps: wp
            .steps
            .iter()
            .map(|s| StepReport {
                step_id: s.step_id.clone(),
                module_id: s.module_id.clone(),
                status: StepStatus::Failed,
                reason_slug: Some(slug.to_string()),
                attempt: match s.disposition {
                    Disposition::Run { attempt }
                    | Disposition::Keep { attempt, .. }
                    | Disposition::Refund { attempt } => attempt,
                },
                message: None,
                ran: false,
            })
            .collect(),
        charged_credits: 0,
        refunded_credits: 0,
        refused: wp.refused.as_ref().map(|r| r.message()),
        error: None,
    }
}

/// A work order the pass stopped on: FAILED, with the error; the steps it reached are in
/// the ledger, and the run stays open for the next pass.
pub fn errored_report(wp: &WorkOrderPlan, e: &crate::error::Error) -> RunReport {
    RunReport {
        tenant_id: wp.tenant_id.clone(),
        work_order_id: wp.work_order_id.clone(),
        run: wp.run,
        run_id: wp.run_id.clone(),
        action: wp.action,
        status: RunStatus::Failed,
        steps: Vec::new(),
        charged_credits: 0,
        refunded_credits: 0,
        refused: None,
        error: Some(e.message.clone()),
    }
}

/// The status a run has when its steps have these statuses (SPEC §3).
pub fn run_status(statuses: &[StepStatus], mode: Mode) -> RunStatus {
    let completed = statuses
        .iter()
        .filter(|s| **s == StepStatus::Completed)
        .count();
    if completed == statuses.len() {
        RunStatus::Completed
    } else if completed == 0 || (mode == Mode::FailFast && statuses.contains(&StepStatus::Failed)) {
        RunStatus::Failed
    } else {
        RunStatus::Partial
    }
}

/// The steps a step reads from: its bindings and package_std's bound_outputs.
fn upstream_of(step: &Step) -> BTreeSet<String> {
    let mut deps: BTreeSet<String> = step
        .inputs
        .values()
        .filter_map(|v| v.from_step().map(String::from))
        .collect();
    for b in bound_outputs(step) {
        deps.insert(b.from_step);
    }
    deps
}

/// package_std's `bound_outputs` entries (invalid ones are validation findings, skipped here).
pub fn bound_outputs(step: &Step) -> Vec<BoundOutput> {
    step.raw_inputs
        .get("bound_outputs")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| serde_json::from_value(x.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Canonical ledger encoding holds integers only: fractional numbers become strings.
fn integral(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => serde_json::Value::String(n.to_string()),
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(integral).collect()),
        serde_json::Value::Object(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), integral(v))).collect())
        }
        other => other.clone(),
    }
}

struct RunCtx<'a> {
    wp: &'a WorkOrderPlan,
}

impl RunCtx<'_> {
    fn outcome(
        &self,
        step: &Step,
        attempt: u32,
        status: StepStatus,
        res: Option<&StepResult>,
        slug: Option<&str>,
        msg: Option<String>,
    ) -> StepOutcome {
        StepOutcome {
            tenant_id: self.wp.tenant_id.clone(),
            work_order_id: self.wp.work_order_id.clone(),
            run: self.wp.run,
            run_id: self.wp.run_id.clone(),
            step_id: step.step_id.clone(),
            attempt,
            module_id: step.module_id.clone(),
            status,
            reason_slug: slug.map(String::from),
            message: msg,
            outputs: res
                .map(|r| {
                    r.outputs
                        .iter()
                        .map(|f| OutputRecord {
                            output_id: f.id.clone(),
                            path: f.path.clone(),
                            bytes: f.bytes,
                            sha256: f.sha256.clone(),
                            files: f.files,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            values: res
                .map(|r| {
                    r.values
                        .iter()
                        .map(|(k, v)| (k.clone(), integral(v)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// Execute one planned run (Start, Resume or Retry). Ledger errors abort; step failures don't.
pub fn execute(
    env: &mut ExecEnv,
    wp: &WorkOrderPlan,
    wo: &WorkOrder,
    hist: Option<&RunHistory>,
) -> Result<RunReport> {
    let rc = RunCtx { wp };
    let tenant = &wp.tenant_id;
    if wp.action == Action::Start {
        env.journal.post(vec![Payload::new(RunStarted {
            tenant_id: tenant.clone(),
            work_order_id: wp.work_order_id.clone(),
            run: wp.run,
            run_id: wp.run_id.clone(),
            work_order_sha256: wp.work_order_sha256.clone(),
            correlation_id: wp.run_id.clone(),
        })])?;
        crate::failpoint::hit("after_run_started");
    }
    let mut produced: BTreeMap<String, Produced> = BTreeMap::new();
    let mut statuses: BTreeMap<String, (StepStatus, Option<String>, u32)> = BTreeMap::new();
    let mut reports = Vec::new();
    let mut charged = 0i64;
    let mut refunded = 0i64;
    let mut items: Vec<String> = Vec::new();
    let mut any_failed = false;
    for (step, sp) in wo.steps.iter().zip(wp.steps.iter()) {
        let Some(contract) = env.repo.module(&step.module_id) else {
            continue;
        };
        let sfiles = step_beneath(
            env.runtime_dir,
            tenant,
            &wp.work_order_id,
            &wp.run_id,
            &step.step_id,
        );
        let sdir = sfiles.path();
        let prior = hist.and_then(|h| h.step(&step.step_id));
        let (status, slug, attempt, message, values, ran) = match &sp.disposition {
            Disposition::Keep { status, attempt } => {
                let o = prior
                    .and_then(|p| p.attempts.get(attempt))
                    .and_then(|a| a.outcome.clone());
                let values = o
                    .as_ref()
                    .map(|o| o.values.clone().into_iter().collect())
                    .unwrap_or_default();
                (
                    *status,
                    o.as_ref().and_then(|o| o.reason_slug.clone()),
                    *attempt,
                    None,
                    values,
                    false,
                )
            }
            Disposition::Refund { attempt } => {
                let att = prior.and_then(|p| p.attempts.get(attempt));
                let o = att.and_then(|a| a.outcome.clone());
                let slug = o
                    .as_ref()
                    .and_then(|o| o.reason_slug.clone())
                    .unwrap_or_else(|| "module_failed".into());
                if let Some(a) = att {
                    let owed: Vec<&Spend> = a
                        .spends
                        .iter()
                        .filter(|s| !a.refunded.contains(&s.key()))
                        .collect();
                    refunded += post_refunds(env.journal, &owed, &slug)?;
                }
                (
                    StepStatus::Failed,
                    Some(slug),
                    *attempt,
                    None,
                    serde_json::Map::new(),
                    false,
                )
            }
            Disposition::Run { attempt } => {
                let attempt = *attempt;
                let t0 = Instant::now();
                let deps = upstream_of(step);
                let fail_fast = wo.mode == Mode::FailFast && any_failed;
                let upstream_bad = deps
                    .iter()
                    .find(|d| statuses.get(*d).map(|s| s.0) != Some(StepStatus::Completed));
                let (res, charged_now): (StepResult, Vec<Spend>) = if fail_fast {
                    (
                        skip(
                            "fail_fast",
                            "an earlier step failed and the work order is FAIL_FAST",
                        ),
                        Vec::new(),
                    )
                } else if let Some(d) = upstream_bad {
                    (
                        skip("upstream_failed", &format!("step '{d}' did not complete")),
                        Vec::new(),
                    )
                } else {
                    match prepare(env, tenant, step, contract, &produced, &sdir) {
                        Err(why) => (StepResult::failed("input_invalid", why), Vec::new()),
                        Ok(inputs) => {
                            // A resumed attempt re-posts exactly what it was charged (a no-op), even if
                            // a price changed since: the charge of an attempt never changes.
                            let recorded = prior
                                .and_then(|p| p.attempts.get(&attempt))
                                .map(|a| a.spends.clone())
                                .unwrap_or_default();
                            let spends = if recorded.is_empty() {
                                spends_for(wp, step, sp, attempt)
                            } else {
                                recorded
                            };
                            // The planner summed every charge of the run with checks.
                            let new =
                                super::plan::new_charges(sp.charges.iter()).unwrap_or(i64::MAX);
                            let balance = env.journal.balance(tenant)?;
                            if new > balance {
                                (
                                    StepResult::failed(
                                        "not_enough_credits",
                                        format!("balance {balance} does not cover {new}"),
                                    ),
                                    Vec::new(),
                                )
                            } else {
                                if !spends.is_empty() {
                                    crate::failpoint::check("before_spend")?;
                                    env.journal
                                        .post(spends.iter().cloned().map(Payload::new).collect())?;
                                    charged += new;
                                    crate::failpoint::hit("after_spend");
                                }
                                env.journal.post(vec![Payload::new(StepStarted {
                                    tenant_id: tenant.clone(),
                                    work_order_id: wp.work_order_id.clone(),
                                    run: wp.run,
                                    run_id: wp.run_id.clone(),
                                    step_id: step.step_id.clone(),
                                    attempt,
                                    module_id: step.module_id.clone(),
                                })])?;
                                crate::failpoint::hit("after_step_started");
                                let r = run_module(
                                    env, rc.wp, step, contract, &inputs, &produced, &sfiles,
                                );
                                crate::failpoint::hit("after_module");
                                (r, spends)
                            }
                        }
                    }
                };
                let status = match (res.status, res.reason_slug.as_deref()) {
                    (Status::Completed, _) => StepStatus::Completed,
                    (Status::Failed, Some("upstream_failed" | "fail_fast")) => StepStatus::Skipped,
                    _ => StepStatus::Failed,
                };
                let slug = res.reason_slug.clone();
                let msg = res.message.as_ref().map(|m| env.redactor.redact(m));
                let outcome = rc.outcome(
                    step,
                    attempt,
                    status,
                    Some(&res),
                    slug.as_deref(),
                    msg.clone(),
                );
                let item = EvidenceItem {
                    run_id: wp.run_id.clone(),
                    step_id: step.step_id.clone(),
                    attempt,
                    status,
                    subjects: res
                        .outputs
                        .iter()
                        .map(|f| FileDigest {
                            name: f.path.clone(),
                            sha256: f.sha256.clone(),
                            bytes: f.bytes,
                            files: f.files,
                        })
                        .collect(),
                    logs: res
                        .logs
                        .iter()
                        .map(|f| FileDigest {
                            name: f.path.clone(),
                            sha256: f.sha256.clone(),
                            bytes: f.bytes,
                            files: f.files,
                        })
                        .collect(),
                };
                let mut batch = vec![Payload::new(outcome), Payload::new(item)];
                if let Some(r) = receipt_record(wp, step, attempt, res.receipt.as_ref()) {
                    batch.push(Payload::new(r));
                }
                env.journal.post(batch)?;
                crate::failpoint::hit("after_step_outcome");
                if status == StepStatus::Failed
                    && slug
                        .as_deref()
                        .and_then(|s| env.repo.registry.refundable(s))
                        .unwrap_or(false)
                {
                    let owed: Vec<&Spend> = charged_now.iter().collect();
                    refunded += post_refunds(
                        env.journal,
                        &owed,
                        slug.as_deref().unwrap_or("module_failed"),
                    )?;
                }
                (env.progress)(&format!(
                    "[{}/{} r{}] {} ({}) {}{} attempt {} {:.2}s",
                    tenant,
                    wp.work_order_id,
                    wp.run,
                    step.step_id,
                    step.module_id,
                    status.as_str(),
                    slug.as_ref().map(|s| format!(" {s}")).unwrap_or_default(),
                    attempt,
                    t0.elapsed().as_secs_f64()
                ));
                (status, slug, attempt, msg, res.values.clone(), true)
            }
        };
        if status == StepStatus::Failed {
            any_failed = true;
        }
        items.push(crate::records::evidence::evidence_item_key(
            &wp.run_id,
            &step.step_id,
            attempt,
        ));
        let has_receipt = if ran {
            contract.kind == crate::contract::Kind::Delivery && status == StepStatus::Completed
        } else {
            prior
                .and_then(|p| p.attempts.get(&attempt))
                .is_some_and(|a| a.receipt)
        };
        if has_receipt {
            items.push(crate::records::evidence::delivery_receipt_key(
                &wp.run_id,
                &step.step_id,
                attempt,
            ));
        }
        produced.insert(
            step.step_id.clone(),
            Produced {
                contract,
                outputs: sfiles.join("outputs"),
                values,
                completed: status == StepStatus::Completed,
            },
        );
        statuses.insert(step.step_id.clone(), (status, slug.clone(), attempt));
        reports.push(StepReport {
            step_id: step.step_id.clone(),
            module_id: step.module_id.clone(),
            status,
            reason_slug: slug,
            attempt,
            message,
            ran,
        });
    }
    let all: Vec<StepStatus> = reports.iter().map(|r| r.status).collect();
    let status = run_status(&all, wo.mode);
    let max_attempt = reports.iter().map(|r| r.attempt).max().unwrap_or(1);
    let (run_charged, run_refunded) = env.journal.run_totals(tenant, &wp.run_id)?;
    let ended = RunEnded {
        tenant_id: tenant.clone(),
        work_order_id: wp.work_order_id.clone(),
        run: wp.run,
        run_id: wp.run_id.clone(),
        attempt: max_attempt,
        status,
        steps: reports
            .iter()
            .map(|r| StepSummary {
                step_id: r.step_id.clone(),
                status: r.status,
                reason_slug: r.reason_slug.clone(),
                attempt: r.attempt,
            })
            .collect(),
        charged_credits: run_charged,
        refunded_credits: run_refunded,
    };
    let bundle = EvidenceBundle::new(tenant, &wp.work_order_id, &wp.run_id, max_attempt, items);
    crate::failpoint::hit("before_run_ended");
    env.journal
        .post(vec![Payload::new(ended), Payload::new(bundle)])?;
    crate::failpoint::hit("after_run_ended");
    Ok(RunReport {
        tenant_id: tenant.clone(),
        work_order_id: wp.work_order_id.clone(),
        run: wp.run,
        run_id: wp.run_id.clone(),
        action: wp.action,
        status,
        steps: reports,
        charged_credits: charged,
        refunded_credits: refunded,
        refused: None,
        error: None,
    })
}

fn skip(slug: &str, message: &str) -> StepResult {
    StepResult::failed(slug, message)
}

/// The SPEND records of a step attempt, as planned.
fn spends_for(wp: &WorkOrderPlan, step: &Step, sp: &StepPlan, attempt: u32) -> Vec<Spend> {
    let correlation = format!("{}/{}/a{}", wp.run_id, step.step_id, attempt);
    sp.charges
        .iter()
        .map(|c| {
            Spend::new(
                &wp.tenant_id,
                &wp.work_order_id,
                wp.run,
                &wp.run_id,
                &step.step_id,
                attempt,
                &step.module_id,
                &c.deliverable_id,
                c.amount_credits,
                &correlation,
            )
        })
        .collect()
}

/// One full REFUND per SPEND, in one batch; returns the credits refunded.
pub(super) fn post_refunds(journal: &mut Journal, spends: &[&Spend], slug: &str) -> Result<i64> {
    if spends.is_empty() {
        return Ok(0);
    }
    let refunds: Vec<Refund> = spends.iter().map(|s| Refund::reversing(s, slug)).collect();
    let total = refunds.iter().map(|r| r.amount_credits).sum();
    crate::failpoint::hit("before_refund");
    journal.post(refunds.into_iter().map(Payload::new).collect())?;
    crate::failpoint::hit("after_refund");
    Ok(total)
}

fn receipt_record(
    wp: &WorkOrderPlan,
    step: &Step,
    attempt: u32,
    receipt: Option<&serde_json::Value>,
) -> Option<DeliveryReceipt> {
    let r = receipt?;
    let s = |k: &str| r.get(k).and_then(|v| v.as_str()).map(String::from);
    Some(DeliveryReceipt {
        tenant_id: wp.tenant_id.clone(),
        work_order_id: wp.work_order_id.clone(),
        run_id: wp.run_id.clone(),
        step_id: step.step_id.clone(),
        attempt,
        provider: s("provider").unwrap_or_default(),
        remote_path: s("remote_path").unwrap_or_default(),
        object_id: s("object_id"),
        bytes: r.get("bytes").and_then(|v| v.as_u64()).unwrap_or(0),
        sha256: s("sha256").unwrap_or_default(),
        verification_status: s("verification_status").unwrap_or_default(),
    })
}

/// Resolve inputs before anything is charged: a bad binding fails `input_invalid`, free.
/// Assets are copied into `<sdir>/inputs/` here, from files opened beneath the tenant.
fn prepare(
    env: &ExecEnv,
    tenant: &str,
    step: &Step,
    contract: &ModuleContract,
    produced: &BTreeMap<String, Produced>,
    sdir: &Path,
) -> std::result::Result<serde_json::Map<String, serde_json::Value>, String> {
    if contract.runner.builtin.as_deref() == Some("package_std") {
        // bound_outputs is resolved by the built-in itself; check the sources exist now.
        builtins::package_sources(step, produced)?;
        return Ok(serde_json::Map::new());
    }
    let root = &env.repo.root;
    let inputs_dir = sdir.join("inputs");
    assets::clear_inputs(&inputs_dir)?;
    let copy = |name: &str, rel: &str| assets::copy_asset(root, tenant, rel, &inputs_dir, name);
    let inputs = bindings::resolve(step, contract, produced, &copy)?;
    if contract.runner.builtin.as_deref() == Some("deliver_email") {
        // The send's own input checks, run now: a bad address or SMTP setting is an input
        // error found before charging, never a charged failure without a refund.
        use crate::builtin::deliver_email::{credentials_from_secrets, precheck, SmtpSettings};
        let settings = SmtpSettings::from_profile(env.profile.smtp.as_ref())?;
        let to = inputs
            .get("recipient_email")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        precheck(&settings, credentials_from_secrets().is_some(), to).map_err(|f| f.message)?;
    }
    Ok(inputs)
}

fn run_module(
    env: &mut ExecEnv,
    wp: &WorkOrderPlan,
    step: &Step,
    contract: &ModuleContract,
    inputs: &serde_json::Map<String, serde_json::Value>,
    produced: &BTreeMap<String, Produced>,
    sfiles: &Beneath,
) -> StepResult {
    let sdir = &sfiles.path();
    if let Err(e) = std::fs::create_dir_all(sdir) {
        return StepResult::failed(
            "module_failed",
            format!("cannot create {}: {e}", sdir.display()),
        );
    }
    if let Some(name) = contract.runner.builtin.as_deref() {
        let ctx = builtins::BuiltinCtx {
            name,
            step,
            contract,
            inputs,
            produced,
            step_dir: sdir,
            step_files: sfiles,
            runtime_dir: env.runtime_dir,
            tenant_id: &wp.tenant_id,
            work_order_id: &wp.work_order_id,
            run: wp.run,
            profile: env.profile,
            redactor: env.redactor,
        };
        return builtins::run(&ctx);
    }
    let Some(module) = env.repo.modules.get(&step.module_id) else {
        return StepResult::failed(
            "module_failed",
            format!("module '{}' not found", step.module_id),
        );
    };
    let mut vars = vec![
        ("PLATFORM_TENANT_ID".to_string(), wp.tenant_id.clone()),
        (
            "PLATFORM_WORK_ORDER_ID".to_string(),
            wp.work_order_id.clone(),
        ),
        ("PLATFORM_STEP_ID".to_string(), step.step_id.clone()),
    ];
    for name in &contract.secrets {
        if let Some(v) = env.secrets.get(name) {
            vars.push((name.clone(), v.clone()));
        }
    }
    let registry = &env.repo.registry;
    let known = |s: &str| registry.is_known_reason(s);
    let spec = command::CommandSpec {
        module_dir: &module.dir,
        contract,
        inputs: &serde_json::Value::Object(inputs.clone()),
        step_dir: sdir,
        env: vars,
        redactor: env.redactor,
        known_reason: &known,
    };
    command::run(&spec)
}
