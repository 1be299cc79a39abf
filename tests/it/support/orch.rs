//! Readers of the orchestrator's `--json` summary and the work orders several suites run.
use super::check::find;
use super::fx::Fx;
use serde_json::Value;

/// The single run of a summary, by work order id.
pub fn run_of<'a>(summary: &'a Value, wo: &str) -> &'a Value {
    find(&summary["runs"], "work_order_id", wo)
}

/// A step of a run, by step id.
pub fn step_of<'a>(run: &'a Value, step: &str) -> &'a Value {
    find(&run["steps"], "step_id", step)
}

/// The steps of a one-step work order: gen, 2 credits to run + 3 for its deliverable.
pub const GEN_STEP: &str = "steps:
  - step_id: gen
    module_id: gen
    kind: transform
    inputs: {text: \"alpha beta\"}
    deliverables: [data]
";

/// A 4-step chain with every selector: gen → echo → pack → deliver.
pub const CHAIN: &str = include_str!("../../fixtures/workorders/chain.yml");

/// The orch fixture with one work order of t1 and `credits` topped up (reference r1).
pub fn funded_order(id: &str, yaml: &str, credits: i64) -> Fx {
    let fx = Fx::new();
    fx.workorder(id, yaml);
    fx.topup(credits, "r1");
    fx
}

/// The folder of a step of a run (a run of the summary), relative to the fixture's root.
pub fn step_dir(run: &Value, step: &str) -> String {
    let field = |k: &str| run[k].as_str().unwrap_or_else(|| panic!("no {k} in {run}"));
    format!(
        "runtime/runs/{}/{}/{}/{step}",
        field("tenant_id"),
        field("work_order_id"),
        field("run_id")
    )
}

/// Crash the first pass right after gen's charge and step-started record (the fixture runs
/// CHAIN, funded).
pub fn crash_after_first_charge(fx: &Fx) {
    let out = fx.run_env(
        &["orchestrator"],
        &[("PLATFORM_FAILPOINT", "after_step_started")],
    );
    assert!(!out.status.success(), "the failpoint aborts the process");
    assert_eq!(
        fx.of_type("billing.jsonl", "SPEND").len(),
        2,
        "gen was charged before the crash"
    );
}

/// `platform <args>` (an orchestrator pass) paused before its first closing of a superseded
/// run (`pause:before_closing`) until `work_order`'s run has started, or for 3 s when it does
/// not start meanwhile: what runs beside a closing must not change what the pass leaves
/// (SPEC §8).
pub fn pass_with_closing_held(fx: &Fx, args: &[&str], work_order: &str) -> std::process::Output {
    super::pause::run_paused(fx, args, "before_closing", || {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_secs(3)
            && !fx
                .records("evidence.jsonl")
                .iter()
                .any(|r| r["type"] == "run_started" && r["work_order_id"] == work_order)
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    })
}
