//! SPEC §7 "Superseded runs", "Failure isolation" and "Exact arithmetic" in the planner: a run
//! that crashed after a charge and will not be resumed is closed and refunded; one work order's
//! problem never stops the pass; prices past the cap are refused before anything is posted.
use crate::support::check::{assert_has, find};
use crate::support::orch::{
    crash_after_first_charge, funded_order, pass_with_closing_held, run_of, step_of, CHAIN,
};
use crate::support::{Fx, Transcript};

/// A fixture whose CHAIN run crashed right after gen's charge (100 credits topped up).
fn crashed_chain() -> Fx {
    let fx = funded_order("chain", CHAIN, 100);
    crash_after_first_charge(&fx);
    fx
}

fn spend_keys_refunded(fx: &Fx) -> Vec<String> {
    fx.of_type("billing.jsonl", "REFUND")
        .iter()
        .map(|r| r["refunds"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_edited_work_order_closes_its_crashed_run_and_refunds_the_charge() {
    let fx = crashed_chain();
    assert_eq!(fx.balance(), 95, "gen's 2 + 3 credits were charged");
    // Any edit of the work order: the interrupted run will never be resumed.
    fx.workorder("chain", &CHAIN.replace("alpha beta", "alpha beta edited"));
    let text = fx.run(&["orchestrator", "--dry-run"]).stdout_text();
    assert_has(&text, "closes run 1 as superseded: refunds 5 credits");
    let (_, sum, _) = fx.orchestrate(&[]);
    let closed = find(&sum["runs"], "action", "close");
    assert_eq!(closed["run"], 1);
    assert_eq!(closed["status"], "FAILED");
    assert_eq!(closed["refunded_credits"], 5);
    let gen = step_of(closed, "gen");
    assert_eq!(gen["status"], "FAILED");
    assert_eq!(gen["reason_slug"], "superseded");
    // Every SPEND of run 1 is refunded, in full, once.
    let run1: Vec<String> = fx
        .of_type("billing.jsonl", "SPEND")
        .iter()
        .filter(|s| s["run"] == 1)
        .map(|s| s["idempotency_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(run1.len(), 2);
    let refunded = spend_keys_refunded(&fx);
    for k in &run1 {
        assert_eq!(refunded.iter().filter(|r| *r == k).count(), 1, "{k}");
    }
    // Run 1 ended before run 2 started, and run 2 completed normally.
    let ends = fx.of_type("evidence.jsonl", "run_ended");
    assert_eq!(ends[0]["run"], 1);
    assert_eq!(ends[0]["status"], "FAILED");
    let run2 = find(&sum["runs"], "run", 2);
    assert_eq!(run2["status"], "COMPLETED", "{sum}");
    assert_eq!(fx.balance(), 100 - 8, "only run 2's charges remain");
    fx.integrity().unwrap();
    // A second pass closes nothing again and charges nothing.
    let before = fx.bytes(".billing-state/billing.jsonl");
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}");
    assert_eq!(fx.bytes(".billing-state/billing.jsonl"), before);
}

#[test]
fn a_disabled_or_deleted_work_order_has_its_crashed_run_closed() {
    for how in ["disable", "delete"] {
        let fx = crashed_chain();
        let path = fx.path("tenants/t1/workorders/chain.yml");
        if how == "disable" {
            fx.workorder("chain", &format!("enabled: false\n{CHAIN}"));
        } else {
            std::fs::remove_file(&path).unwrap();
        }
        let (_, sum, stderr) = fx.orchestrate(&[]);
        let closed = run_of(&sum, "chain");
        assert_eq!(closed["action"], "close", "{how}: {sum}\n{stderr}");
        assert_eq!(closed["refunded_credits"], 5, "{how}");
        assert_eq!(fx.balance(), 100, "{how}: nothing stays charged");
        assert_eq!(fx.of_type("evidence.jsonl", "run_ended").len(), 1, "{how}");
        fx.integrity().unwrap_or_else(|e| panic!("{how}: {e}"));
        let runs = fx.runs();
        assert_eq!(runs[0]["status"], "FAILED", "{how}: {runs}");
    }
}

#[test]
fn a_crash_while_closing_is_finished_by_the_next_pass_without_double_refunds() {
    let fx = crashed_chain();
    fx.workorder("chain", &CHAIN.replace("alpha beta", "alpha beta edited"));
    // The closing's outcome is posted, then the pass dies before the refunds.
    let out = fx.run_env(
        &["orchestrator"],
        &[("PLATFORM_FAILPOINT", "before_refund")],
    );
    assert!(!out.status.success(), "{}", out.text());
    assert_eq!(fx.of_type("billing.jsonl", "REFUND").len(), 0);
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "the closed run ended FAILED: {sum}");
    let refunded = spend_keys_refunded(&fx);
    let mut unique = refunded.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), refunded.len(), "a refund was posted twice");
    assert_eq!(fx.balance(), 92);
    fx.integrity().unwrap();
}

#[test]
fn a_price_past_the_cap_is_a_validation_error_and_the_other_work_orders_run() {
    let fx = Fx::new();
    let module = fx.path("modules/gen/module.yml");
    let yaml = std::fs::read_to_string(&module).unwrap();
    std::fs::create_dir_all(fx.path("modules/pricey")).unwrap();
    std::fs::write(
        fx.path("modules/pricey/module.yml"),
        yaml.replace("module_id: gen", "module_id: pricey")
            .replace("run_credits: 2", "run_credits: 9223372036854775807"),
    )
    .unwrap();
    std::fs::copy(
        fx.path("modules/gen/run.py"),
        fx.path("modules/pricey/run.py"),
    )
    .unwrap();
    fx.workorder(
        "a-pricey",
        "work_order_id: a-pricey\nsteps:\n  - {step_id: s, module_id: pricey, kind: transform, inputs: {text: x}}\n",
    );
    fx.workorder("chain", CHAIN);
    fx.topup(100, "r1");
    let doc = fx
        .run(&["consistency-validate", "--format", "json"])
        .expect_code(1)
        .json();
    assert!(
        doc["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["file"] == "modules/pricey/module.yml"
                && e["field"].as_str().unwrap().contains("run_credits")),
        "{doc}"
    );
    let dry = fx.run(&["orchestrator", "--dry-run"]);
    assert!(
        !dry.stdout_text().contains("new charges: -"),
        "a sum wrapped"
    );
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "the invalid work order makes the pass exit 1");
    assert_eq!(sum["invalid"][0]["work_order_id"], "a-pricey", "{sum}");
    assert_eq!(run_of(&sum, "chain")["status"], "COMPLETED", "{sum}");
    assert_eq!(fx.balance(), 92);
    assert!(fx
        .of_type("evidence.jsonl", "run_started")
        .iter()
        .all(|r| r["work_order_id"] == "chain"));
}

#[test]
fn a_ledger_error_in_one_work_order_ends_that_work_order_only() {
    let fx = Fx::new();
    fx.workorder(
        "a-first",
        "work_order_id: a-first\nsteps:\n  - {step_id: s, module_id: gen, kind: transform, inputs: {text: x}}\n",
    );
    fx.workorder("chain", CHAIN);
    fx.topup(100, "r1");
    // The first SPEND of the pass (a-first's) fails as a refused ledger write would. One
    // work order at a time, so the first SPEND is a-first's.
    let out = fx.run_env(
        &["orchestrator", "--json", "--jobs", "1"],
        &[("PLATFORM_FAILPOINT", "error:before_spend@1")],
    );
    let sum = out.expect_code(1).json();
    let first = run_of(&sum, "a-first");
    assert_eq!(first["status"], "FAILED");
    assert!(
        first["error"].as_str().unwrap().contains("injected"),
        "{sum}"
    );
    assert_eq!(run_of(&sum, "chain")["status"], "COMPLETED", "{sum}");
    // The next pass resumes a-first's open run; nothing is charged twice.
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}");
    assert_eq!(run_of(&sum, "a-first")["action"], "resume");
    assert_eq!(run_of(&sum, "a-first")["status"], "COMPLETED");
    assert_eq!(fx.balance(), 100 - 8 - 2);
    fx.integrity().unwrap();
}

#[test]
fn a_refusal_after_a_closing_quotes_the_balance_the_closing_left() {
    // 8 credits; the crash leaves gen's 5 charged (balance 3); the edited work order's run 2
    // has one more step and needs 10. Its gate counts run 1's closing refunds: refused
    // against 8, and it says 8.
    let fx = funded_order("chain", CHAIN, 8);
    crash_after_first_charge(&fx);
    let more =
        "  - step_id: gen2\n    module_id: gen\n    kind: transform\n    inputs: {text: more}\n";
    fx.workorder("chain", &format!("{CHAIN}{more}"));
    let text = fx.run(&["orchestrator", "--dry-run"]).stdout_text();
    assert_has(&text, "balance 8 credits does not cover 10 credits");
    let (_, sum, _) = fx.orchestrate(&[]);
    let refused = find(&sum["runs"], "run", 2);
    assert_has(
        refused["refused"].as_str().unwrap_or_default(),
        "balance 8 credits does not cover 10 credits",
    );
    assert_eq!(fx.balance(), 8, "run 1 is refunded, run 2 charged nothing");
}

#[test]
fn each_superseded_note_names_its_tenant_and_work_order() {
    let fx = Fx::new();
    for wo in ["a", "b"] {
        fx.workorder(
            wo,
            &CHAIN.replace("work_order_id: chain", &format!("work_order_id: {wo}")),
        );
    }
    fx.topup(100, "r1");
    for wo in ["a", "b"] {
        let out = fx.run_env(
            &["orchestrator", "--work-order-id", wo],
            &[("PLATFORM_FAILPOINT", "after_step_started")],
        );
        assert!(!out.status.success(), "{wo}: the failpoint aborts the pass");
    }
    for wo in ["a", "b"] {
        let yaml = CHAIN
            .replace("work_order_id: chain", &format!("work_order_id: {wo}"))
            .replace("alpha beta", "alpha beta edited");
        fx.workorder(wo, &yaml);
    }
    let summary_md = fx.path("summary.md");
    let out = fx.run_env(
        &["orchestrator", "--json"],
        &[("GITHUB_STEP_SUMMARY", summary_md.to_str().unwrap())],
    );
    let sum = out.json();
    let notes: Vec<&str> = sum["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    let md = fx.read_text("summary.md");
    for wo in ["a", "b"] {
        let note = format!("run 1 of t1/{wo} was interrupted and the work order changed since");
        assert!(notes.iter().any(|n| n.contains(&note)), "{note}: {notes:?}");
        assert!(md.contains(&note), "{note}: {md}");
    }
}

/// Two files of one work order id (w.yml and w.yaml, a rename that left a copy): the pass
/// runs neither and lists each file invalid with its own finding, as consistency-validate
/// does. Until 2026-12-04 both entries carried w.yml's finding (validation errors were keyed
/// by work order id), and w.yaml's was missing.
#[test]
fn two_files_of_one_work_order_id_are_each_listed_with_their_own_finding() {
    let fx = funded_order(
        "w",
        &format!("work_order_id: w\n{}", crate::support::orch::GEN_STEP),
        100,
    );
    fx.write(
        "tenants/t1/workorders/w.yaml",
        fx.read_text("tenants/t1/workorders/w.yml"),
    );
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!((code, &sum["runs"]), (1, &serde_json::json!([])), "{sum}");
    let invalid = sum["invalid"].as_array().cloned().unwrap_or_default();
    assert_eq!(invalid.len(), 2, "{sum}");
    for (file, other) in [("w.yml", "w.yaml"), ("w.yaml", "w.yml")] {
        let file = format!("tenants/t1/workorders/{file}");
        let entry = find(&sum["invalid"], "file", file.as_str());
        assert_eq!(entry["findings"][0]["file"], file.as_str(), "{entry}");
        let message = entry["findings"][0]["message"].as_str().unwrap_or_default();
        assert_has(
            message,
            &format!("also defined by tenants/t1/workorders/{other}"),
        );
    }
    assert_eq!(fx.balance(), 100);
}

/// The refunds of a closing count for the tenant's other work orders too: the pass closes
/// every superseded run before any run starts. t1 has 10 credits; the crash leaves gen's 5
/// charged (balance 5); `chain` is disabled and `x` needs 10 (two gen steps). The dry run
/// says x runs and leaves 0, and the pass, with any `--jobs`, does just that. Until
/// 2026-12-04 the dry run said x was refused (balance 5), "balance after 5", and listed t1
/// under low balance, while the pass ran x (refused by the plan, decided again at the end).
#[test]
fn the_dry_run_counts_a_closing_of_another_work_order_for_the_gates_and_balance_after() {
    let fx = funded_order("chain", CHAIN, 10);
    crash_after_first_charge(&fx);
    assert_eq!(fx.balance(), 5);
    fx.workorder("chain", &format!("enabled: false\n{CHAIN}"));
    fx.workorder(
        "x",
        "work_order_id: x\nsteps:\n  - {step_id: a, module_id: gen, kind: transform, inputs: {text: a}, deliverables: [data]}\n  - {step_id: b, module_id: gen, kind: transform, inputs: {text: b}, deliverables: [data]}\n",
    );
    let (code, dry, _) = fx.orchestrate(&["--dry-run"]);
    assert_eq!(code, 0, "{dry}");
    let x = find(&dry["plan"]["work_orders"], "work_order_id", "x");
    assert!(x.get("refused").is_none(), "{dry}");
    assert_eq!(dry["plan"]["tenants"][0]["balance_after"], 0, "{dry}");
    assert_eq!(dry["low_balance"], serde_json::json!([]), "{dry}");
    let text = fx.run(&["orchestrator", "--dry-run"]).stdout_text();
    assert_has(&text, "closes run 1 as superseded: refunds 5 credits");
    assert!(!text.contains("REFUSED"), "{text}");
    // With --jobs 4, x is free to start while the closing waits; it must still wait for
    // the credits the closing gives back.
    for jobs in ["1", "4"] {
        let fx = fx.fork();
        let args = ["orchestrator", "--json", "--jobs", jobs];
        let out = pass_with_closing_held(&fx, &args, "x");
        let sum = out.json();
        assert_eq!(
            out.status.code(),
            Some(1),
            "--jobs {jobs}: the closed run ended FAILED: {sum}"
        );
        assert_eq!(run_of(&sum, "chain")["refunded_credits"], 5, "{sum}");
        let x = run_of(&sum, "x");
        assert_eq!(x["status"], "COMPLETED", "--jobs {jobs}: {sum}");
        assert_eq!(x["charged_credits"], 10, "{sum}");
        assert_eq!(sum["low_balance"], serde_json::json!([]), "{sum}");
        assert_eq!(fx.balance(), 0, "--jobs {jobs}: as the dry run said");
        fx.integrity().unwrap();
    }
}
