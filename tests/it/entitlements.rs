//! Plans and entitlements (config/catalog.yml) and low-balance notices (SPEC §10), against the real binary.
use crate::support::check::{assert_has, find};
use crate::support::fx::{Fx, Transcript};
use crate::support::orch::{funded_order, run_of, step_of, CHAIN};
use serde_json::{json, Value};

/// The chain's modules: gen and echo_inputs are command modules, the other two built-ins.
const BOTH: &str = "plans:\n  basic: [gen]\n  full:\n    - gen\n    - echo_inputs\n";

fn on_plan(fx: &Fx, plan: &str) {
    fx.write(
        "tenants/t1/tenant.yml",
        format!("tenant_id: t1\nname: Test Tenant\nplan: {plan}\n"),
    );
}

/// `consistency-validate --format json`: exit code and its findings (errors, warnings).
fn validate(fx: &Fx) -> (i32, Value) {
    let out = fx.run(&["consistency-validate", "--format", "json"]);
    (out.status.code().unwrap_or(-1), out.json())
}

fn spends(fx: &Fx) -> usize {
    fx.billing().iter().filter(|r| r["type"] == "SPEND").count()
}

#[test]
fn without_a_catalog_every_module_is_allowed() {
    let fx = funded_order("chain", CHAIN, 50);
    let (code, _) = validate(&fx);
    assert_eq!(code, 0);
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(run_of(&summary, "chain")["status"], "COMPLETED");
    assert_eq!(fx.balance(), 42);
}

#[test]
fn a_step_outside_the_plan_is_a_finding_and_a_refusal_that_charges_nothing() {
    let fx = funded_order("chain", CHAIN, 50);
    fx.write("config/catalog.yml", BOTH);
    on_plan(&fx, "basic");
    let (code, report) = validate(&fx);
    assert_eq!(code, 1, "{report}");
    let f = find(&report["errors"], "field", "steps[1].module_id");
    let message = f["message"].as_str().unwrap();
    assert_has(message, "module 'echo_inputs' is not in plan 'basic'");
    assert_eq!(f["file"], "tenants/t1/workorders/chain.yml");
    assert_eq!(f["line"], 10, "{f}");
    let billing_before = fx.bytes(".billing-state/billing.jsonl");

    let (code, summary, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "a refusal fails the pass: {summary}");
    let run = run_of(&summary, "chain");
    assert_eq!(run["status"], "FAILED");
    assert_has(run["refused"].as_str().unwrap(), "'echo_inputs'");
    assert!(run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["reason_slug"] == "not_entitled"));
    assert_has(&stderr, "refused");
    assert_eq!(spends(&fx), 0);
    assert_eq!(fx.balance(), 50);
    assert_eq!(
        fx.bytes(".billing-state/billing.jsonl"),
        billing_before,
        "nothing is charged"
    );
    assert!(fx.of_type("evidence.jsonl", "run_started").is_empty());

    // Moved to a plan that has the module: the next pass runs it.
    on_plan(&fx, "full");
    assert_eq!(validate(&fx).0, 0);
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(run_of(&summary, "chain")["status"], "COMPLETED");
    assert_eq!(fx.balance(), 42);
}

/// Crash the first pass right after echo's charge (step 2 of CHAIN, on plan full), then
/// move the tenant to `plan` with `catalog`.
fn crash_after_echos_charge_then_move_to(fx: &Fx, catalog: &str, plan: &str) {
    fx.write("config/catalog.yml", catalog);
    on_plan(fx, "full");
    let failpoint = [("PLATFORM_FAILPOINT", "after_step_started@2")];
    assert!(!fx.run_env(&["orchestrator"], &failpoint).status.success());
    assert_eq!(echo_spends(fx), 1, "echo was charged before the crash");
    on_plan(fx, plan);
}

fn echo_spends(fx: &Fx) -> usize {
    fx.of_type("billing.jsonl", "SPEND")
        .iter()
        .filter(|s| s["step_id"] == "echo")
        .count()
}

#[test]
fn a_step_charged_before_a_plan_change_finishes_its_attempt_on_resume() {
    // Charged while the plan allowed it, interrupted, then the tenant moved to basic (no
    // echo_inputs): the resume finishes echo's attempt with no new charge, and the run ends.
    // Until 2026-12-03 every pass refused the resume, holding echo's charge for good.
    let fx = funded_order("chain", CHAIN, 50);
    crash_after_echos_charge_then_move_to(&fx, BOTH, "basic");
    assert_eq!(fx.balance(), 44, "gen 5 and echo 1 charged");
    let (_, plan, _) = fx.orchestrate(&["--dry-run"]);
    let wp = find(&plan["plan"]["work_orders"], "work_order_id", "chain");
    assert!(wp.get("refused").is_none(), "{wp}");
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{summary}");
    let run = run_of(&summary, "chain");
    assert_eq!(
        (run["action"].as_str(), run["status"].as_str()),
        (Some("resume"), Some("COMPLETED")),
        "{run}"
    );
    let echo = step_of(run, "echo");
    assert_eq!(
        (echo["status"].as_str(), echo["attempt"].as_u64()),
        (Some("COMPLETED"), Some(1)),
        "{echo}"
    );
    assert_eq!(echo_spends(&fx), 1, "not charged twice");
    assert_eq!(fx.balance(), 42, "pack and deliver only: {summary}");
    assert!(fx.of_type("billing.jsonl", "REFUND").is_empty());
    // Ended: the next pass is up to date.
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(
        (code, &summary["up_to_date"][0]),
        (0, &json!("t1/chain")),
        "{summary}"
    );
    fx.integrity().unwrap();
}

#[test]
fn a_resume_refused_for_a_step_still_to_run_reports_kept_steps_and_held_charges() {
    // gen → echo → again (gen): echo charged, then a plan without gen. echo may finish its
    // attempt, but `again` would be newly charged with a module outside the plan: refused.
    let chain = CHAIN.replace(
        "  - step_id: pack",
        "  - step_id: again\n    module_id: gen\n    kind: transform\n    inputs: {text: \"x\"}\n  - step_id: pack",
    );
    let fx = funded_order("chain", &chain, 50);
    let catalog = format!("{BOTH}  echo_only: [echo_inputs]\n");
    crash_after_echos_charge_then_move_to(&fx, &catalog, "echo_only");
    let billing_before = fx.bytes(".billing-state/billing.jsonl");
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "{summary}");
    let run = run_of(&summary, "chain");
    assert_eq!(
        (run["action"].as_str(), run["status"].as_str()),
        (Some("resume"), Some("FAILED")),
        "{run}"
    );
    let refused = run["refused"].as_str().unwrap();
    assert_has(refused, "module 'gen' is not in plan 'echo_only'");
    assert_has(
        refused,
        "holds the 1 credits already charged to its interrupted steps",
    );
    // gen completed before the crash: not reported FAILED (until 2026-12-03 it was).
    let gen = step_of(run, "gen");
    assert_eq!(
        (gen["status"].as_str(), gen["reason_slug"].as_str()),
        (Some("COMPLETED"), None),
        "{run}"
    );
    for step in ["echo", "again", "pack", "deliver"] {
        assert_eq!(step_of(run, step)["reason_slug"], "not_entitled", "{run}");
    }
    assert_eq!(
        fx.bytes(".billing-state/billing.jsonl"),
        billing_before,
        "nothing charged"
    );
    // Back on a plan with gen: the resume finishes, echo charged once.
    on_plan(&fx, "full");
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(
        run_of(&summary, "chain")["status"],
        "COMPLETED",
        "{summary}"
    );
    assert_eq!(echo_spends(&fx), 1);
    fx.integrity().unwrap();
}

#[test]
fn a_tenant_without_a_plan_may_run_built_ins_only_and_is_a_finding() {
    let fx = funded_order("chain", CHAIN, 50);
    fx.write("config/catalog.yml", BOTH);
    let (code, report) = validate(&fx);
    assert_eq!(code, 1);
    let f = find(&report["errors"], "field", "plan");
    assert_eq!(f["file"], "tenants/t1/tenant.yml");
    assert_has(f["message"].as_str().unwrap(), "names no plan");
    assert_has(f["message"].as_str().unwrap(), "basic, full");

    // The plan names the modules refused: the two command modules, not the built-ins.
    let (_, plan, _) = fx.orchestrate(&["--dry-run"]);
    let wp = find(&plan["plan"]["work_orders"], "work_order_id", "chain");
    assert_eq!(
        wp["refused"]["not_entitled"]["modules"],
        json!(["gen", "echo_inputs"]),
        "{wp}"
    );
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1);
    assert_eq!(
        run_of(&summary, "chain")["steps"][0]["reason_slug"],
        "not_entitled"
    );
    assert_eq!(spends(&fx), 0);
}

#[test]
fn an_unknown_plan_and_a_plan_naming_a_missing_module_are_findings() {
    let fx = Fx::new();
    fx.write(
        "config/catalog.yml",
        "plans:\n  basic: [gen]\n  gold:\n    - gen\n    - ocr\n",
    );
    on_plan(&fx, "silver");
    let (code, report) = validate(&fx);
    assert_eq!(code, 1);
    let plan = find(&report["errors"], "field", "plan");
    assert_has(
        plan["message"].as_str().unwrap(),
        "plan 'silver' is not in config/catalog.yml",
    );
    let missing = find(&report["errors"], "field", "plans.gold");
    assert_eq!(missing["file"], "config/catalog.yml");
    assert_eq!(missing["line"], 3);
    assert_has(
        missing["message"].as_str().unwrap(),
        "plan 'gold' lists module 'ocr'",
    );

    fx.write("config/catalog.yml", "plans:\n  basic: gen\n");
    let (code, report) = validate(&fx);
    assert_eq!(code, 1);
    assert_eq!(
        report["errors"][0]["file"], "config/catalog.yml",
        "{report}"
    );
}

#[test]
fn the_catalog_schema_is_served() {
    let out = Fx::empty().run(&["schema", "catalog"]);
    out.expect_ok();
    let schema = out.json();
    assert_eq!(
        schema["$id"],
        "https://platform.invalid/schemas/v1/catalog.schema.json"
    );
    assert!(schema["properties"]["plans"].is_object());
}

/// Tenant t2 with a threshold and 25 credits, t1 funded for one chain run (8 credits) only.
fn two_tenants(threshold: i64) -> Fx {
    let fx = funded_order("chain", CHAIN, 15);
    fx.add_tenant("t2");
    fx.write(
        "tenants/t2/tenant.yml",
        format!("tenant_id: t2\nname: Two\nlow_balance_credits: {threshold}\n"),
    );
    fx.workorder_for("t2", "chain", CHAIN);
    fx.write(
        "tenants/t2/assets/note.txt",
        fx.bytes("tenants/t1/assets/note.txt"),
    );
    fx.workorder(
        "chain2",
        &CHAIN.replace("work_order_id: chain", "work_order_id: chain2"),
    );
    fx.fund("t2", 25, "r2");
    fx
}

#[test]
fn tenants_below_their_threshold_or_refused_for_credits_are_listed_everywhere() {
    let fx = two_tenants(20);
    let summary_file = fx.path("summary.md");
    let out = fx.run_env(
        &["orchestrator"],
        &[("GITHUB_STEP_SUMMARY", summary_file.to_str().unwrap())],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "t1's second run is refused: {}",
        out.text()
    );
    let text = out.text();
    assert_has(
        &text,
        "low balance: t1 has 7 credits (a run was refused for credits)",
    );
    assert_has(
        &text,
        "low balance: t2 has 17 credits (below its threshold of 20)",
    );
    let md = fx.read_text("summary.md");
    assert_has(&md, "**Low balance**");
    assert_has(&md, "| t1 | 7 | - | refused_for_credits |");
    assert_has(&md, "| t2 | 17 | 20 | below_threshold |");

    // The next pass runs nothing new: the balances are what they are, still listed.
    let (_, summary, _) = fx.orchestrate(&[]);
    assert_eq!(
        summary["low_balance"],
        json!([
            {"tenant_id": "t1", "balance_credits": 7, "threshold": null, "reason": "refused_for_credits"},
            {"tenant_id": "t2", "balance_credits": 17, "threshold": 20, "reason": "below_threshold"},
        ])
    );
}

#[test]
fn a_tenant_at_or_above_its_threshold_is_not_listed_and_dry_run_projects() {
    let fx = two_tenants(17);
    let (_, plan, _) = fx.orchestrate(&["--dry-run", "--tenant-id", "t2"]);
    assert_eq!(
        plan["low_balance"],
        json!([]),
        "25 - 8 = 17 is not below 17"
    );
    let fx = two_tenants(18);
    let (_, plan, _) = fx.orchestrate(&["--dry-run", "--tenant-id", "t2"]);
    assert_eq!(
        plan["low_balance"],
        json!([{"tenant_id": "t2", "balance_credits": 17, "threshold": 18, "reason": "below_threshold"}]),
        "the dry run lists what the pass would leave"
    );
    assert!(fx.billing().iter().all(|r| r["type"] != "SPEND"));
}

#[test]
fn the_notice_shows_the_ledgers_balance_after_the_pass_with_a_top_up_made_during_it() {
    // t1 is at 10 credits under a threshold of 50; while its 3-credit step sleeps, an
    // operator tops it up by 100. After the pass it has 107: not below its threshold.
    let fx = Fx::new();
    fx.write(
        "tenants/t1/tenant.yml",
        "tenant_id: t1\nname: Test Tenant\nlow_balance_credits: 50\n",
    );
    fx.workorder(
        "nap",
        "work_order_id: nap\nsteps:\n  - step_id: nap\n    module_id: slow\n    kind: transform\n    inputs: {text: zz, delay_ms: 2500}\n    deliverables: [result]\n",
    );
    fx.topup(10, "r1");
    let pass = fx
        .command()
        .args(["orchestrator", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !fx
        .lines("evidence.jsonl")
        .iter()
        .any(|r| r["type"] == "step_started")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the step never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    fx.topup(100, "during-the-pass");
    let out = pass.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run_of(&summary, "nap")["status"], "COMPLETED", "{summary}");
    assert_eq!(fx.balance(), 107);
    assert_eq!(summary["low_balance"], json!([]), "{summary}");
}
