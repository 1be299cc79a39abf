//! Metered usage (SPEC §10), against the real binary: a module reports what it used, the
//! credits gate reserves the most it can cost, a completed step is charged once.
use crate::support::fx::{Fx, Transcript};
use crate::support::orch::{run_of, step_of};
use serde_json::Value;

/// The orch fixture with the metered module (2 credits a page, at most 10, 1 to run), the
/// registry's `pages`, and one work order reporting `report`, funded with `credits`.
fn metered(report: &str, credits: i64) -> Fx {
    let fx = Fx::new().overlay("usage", "");
    fx.workorder(
        "m",
        &format!(
            "work_order_id: m\nsteps:\n  - step_id: count\n    module_id: metered\n    kind: transform\n    inputs: {{report: '{report}'}}\n"
        ),
    );
    fx.topup(credits, "r1");
    fx
}

fn spends(fx: &Fx) -> Vec<Value> {
    fx.of_type("billing.jsonl", "SPEND")
}

/// The usage SPENDs: those with a quantity.
fn usage_spends(fx: &Fx) -> Vec<Value> {
    spends(fx)
        .into_iter()
        .filter(|s| s["quantity"].is_u64())
        .collect()
}

#[test]
fn seven_pages_at_two_credits_are_charged_fourteen_once() {
    let fx = metered(r#"{"pages": 7}"#, 50);
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{summary}");
    let run = run_of(&summary, "m");
    assert_eq!(run["status"], "COMPLETED");
    assert_eq!(run["charged_credits"], 15);
    assert_eq!(step_of(run, "count")["usage"]["pages"], 7);
    let usage = usage_spends(&fx);
    assert_eq!(usage.len(), 1, "{usage:?}");
    let u = &usage[0];
    assert_eq!(u["amount_credits"], -14);
    assert_eq!(u["usage_unit"], "pages");
    assert_eq!(u["quantity"], 7);
    assert!(
        u["idempotency_key"]
            .as_str()
            .unwrap()
            .ends_with("/count/a1/pages"),
        "{u}"
    );
    assert_eq!(fx.balance(), 35);
    let outcome = &fx.of_type("evidence.jsonl", "step_outcome")[0];
    assert_eq!(outcome["usage"]["pages"]["quantity"], 7);
    assert_eq!(outcome["usage"]["pages"]["credits"], 2);
    fx.integrity().unwrap();

    // Up to date: nothing more is charged.
    let (code, _, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0);
    assert_eq!(fx.balance(), 35);
    // runs --json and the statement show the quantity.
    let runs = fx.runs();
    assert_eq!(runs[0]["steps"][0]["usage"]["pages"], 7, "{runs}");
    let out = fx.run(&["statement", "--tenant-id", "t1", "--json"]);
    let rows = out.json()["records"].clone();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["quantity"] == 7)
        .unwrap_or_else(|| panic!("no usage row: {rows}"));
    assert_eq!(row["usage_unit"], "pages");
    assert_eq!(row["amount_credits"], -14);
    let csv = fx.run(&["statement", "--tenant-id", "t1", "--csv"]).text();
    let header = csv.lines().find(|l| l.starts_with("seq,")).unwrap_or("");
    assert!(
        header.ends_with(",usage_unit,quantity,run,run_id,attempt"),
        "{csv}"
    );
    let run_id = runs[0]["run_id"].as_str().unwrap();
    assert!(csv.contains(&format!(",pages,7,1,{run_id},1\n")), "{csv}");
}

#[test]
fn a_crash_after_the_module_or_after_the_outcome_still_charges_usage_once() {
    for point in ["after_module", "after_step_outcome", "before_usage"] {
        let fx = metered(r#"{"pages": 7}"#, 50);
        let out = fx.run_env(&["orchestrator"], &[("PLATFORM_FAILPOINT", point)]);
        assert!(out.status.code().is_none(), "{point}: {}", out.text());
        let (code, summary, _) = fx.orchestrate(&[]);
        assert_eq!(code, 0, "{point}: {summary}");
        assert_eq!(run_of(&summary, "m")["status"], "COMPLETED", "{point}");
        let usage = usage_spends(&fx);
        assert_eq!(usage.len(), 1, "{point}: {usage:?}");
        assert_eq!(usage[0]["amount_credits"], -14, "{point}");
        assert_eq!(fx.balance(), 35, "{point}: 1 to run, 14 for the pages");
        fx.integrity().unwrap();
    }
}

#[test]
fn a_bad_usage_report_fails_usage_invalid_refunded_with_no_usage_charged() {
    for (report, says) in [
        (r#"{"pages": 11}"#, "above max_units 10"),
        (r#"{"lines": 1}"#, "'lines' is not priced"),
        (r#"{"pages": 1.5}"#, "whole number"),
        (r#"{"pages": -3}"#, "whole number"),
    ] {
        let fx = metered(report, 50);
        let (code, summary, _) = fx.orchestrate(&[]);
        assert_eq!(code, 1, "{report}");
        let step = step_of(run_of(&summary, "m"), "count");
        assert_eq!(step["status"], "FAILED", "{report}");
        assert_eq!(step["reason_slug"], "usage_invalid", "{report}");
        let message = step["message"].as_str().unwrap_or("");
        assert!(message.contains(says), "{report}: {message}");
        assert!(usage_spends(&fx).is_empty(), "{report}");
        assert_eq!(fx.of_type("billing.jsonl", "REFUND").len(), 1, "{report}");
        assert_eq!(fx.balance(), 50, "{report}: the run charge is refunded");
    }
}

#[test]
fn a_balance_that_cannot_cover_the_reservation_is_refused_before_charging() {
    // 1 to run + 2 x 10 reserved = 21; 20 is not enough even though 7 pages would cost 15.
    let fx = metered(r#"{"pages": 7}"#, 20);
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1);
    let run = run_of(&summary, "m");
    assert_eq!(step_of(run, "count")["reason_slug"], "not_enough_credits");
    assert!(run["refused"].as_str().unwrap().contains("21"), "{run}");
    assert!(spends(&fx).is_empty());
    assert_eq!(fx.balance(), 20);
    let (_, plan, _) = fx.orchestrate(&["--dry-run"]);
    assert_eq!(plan["plan"]["work_orders"][0]["usage_reserve"], 20);

    fx.topup(1, "r2");
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(fx.balance(), 6, "21 - 1 - 14");
}

#[test]
fn units_are_checked_against_the_registry_and_the_deliverables() {
    let fx = Fx::new().overlay("usage", "");
    fx.write("config/registry.yml", "usage_units: []\n");
    let out = fx.run(&["consistency-validate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.text()
            .contains("usage unit 'pages' is not in the registry"),
        "{}",
        out.text()
    );
    fx.write(
        "modules/metered/module.yml",
        "module_id: metered\nversion: \"1\"\nkind: transform\nrunner: {command: [\"./run.py\"]}\noutputs:\n  - {id: done, type: file, path: done.txt}\ndeliverables:\n  - {deliverable_id: step_run, outputs: [done]}\npricing:\n  usage:\n    step_run: {credits: 1, max_units: 2}\n",
    );
    let out = fx.run(&["consistency-validate"]);
    assert!(
        out.text()
            .contains("'step_run' is charged by the platform itself"),
        "{}",
        out.text()
    );
}

/// A usage unit named like the platform's own charges (`__run__`) is refused in the registry
/// and in the module: its usage SPEND would share the run charge's key. Until 2026-12-04 it
/// was accepted; the first pass stopped on a key conflict and the resumed run ended
/// COMPLETED without charging the usage (8 credits never charged).
#[test]
fn a_usage_unit_named_like_the_run_charge_is_refused_and_nothing_is_charged() {
    let fx = metered(r#"{"usage": {"__run__": 2}}"#, 100);
    fx.write(
        "config/registry.yml",
        "usage_units:\n  - pages\n  - __run__\n",
    );
    let module = fx.read_text("modules/metered/module.yml").replace(
        "    pages: {credits: 2, max_units: 10}",
        "    pages: {credits: 2, max_units: 10}\n    __run__: {credits: 4, max_units: 5}",
    );
    fx.write("modules/metered/module.yml", module);
    let out = fx.run(&["consistency-validate"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    for (file, why) in [
        ("config/registry.yml", "usage_units[1]"),
        (
            "config/registry.yml",
            "usage unit '__run__': ids starting with '__' are reserved",
        ),
        ("modules/metered/module.yml", "pricing.usage.__run__"),
        (
            "modules/metered/module.yml",
            "usage unit '__run__': ids starting with '__' are reserved",
        ),
    ] {
        assert!(
            out.text().contains(file) && out.text().contains(why),
            "{file} {why}: {}",
            out.text()
        );
    }
    for _ in 0..2 {
        let (code, sum, stderr) = fx.orchestrate(&[]);
        assert_eq!(code, 1, "{stderr}");
        assert!(sum["runs"].as_array().is_some_and(Vec::is_empty), "{sum}");
    }
    assert!(spends(&fx).is_empty(), "nothing is charged");
    assert_eq!(fx.balance(), 100);
}

#[test]
fn the_dry_run_text_and_job_summary_show_the_usage_reserve_they_subtract() {
    // 1 to run + 2 x 10 reserved: 50 leaves 29.
    let fx = metered(r#"{"pages": 7}"#, 50);
    let summary = fx.path("summary.md");
    let out = fx.run_env(
        &["orchestrator", "--dry-run"],
        &[("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())],
    );
    let text = out.stdout_text();
    assert!(text.contains("    new charges: 1 credits\n"), "{text}");
    assert!(
        text.contains("    usage reserve: 20 credits (metered usage at its most"),
        "{text}"
    );
    let t1 = text.lines().find(|l| l.starts_with("t1 ")).unwrap_or("");
    assert_eq!(
        t1.split_whitespace().collect::<Vec<_>>(),
        ["t1", "50", "29"],
        "{text}"
    );
    let md = fx.read_text("summary.md");
    assert!(
        md.contains("| work order | action | run | new charges | usage reserve | refused |"),
        "{md}"
    );
    assert!(md.contains("| t1/m | start | 1 | 1 | 20 |  |"), "{md}");
}

/// A unit priced `credits: 0` (the schema allows it) is free: the outcome records the
/// quantity, nothing is posted for it, and the run ends. Until 2026-12-03 the orchestrator
/// posted a SPEND of 0, which the ledger refuses: the run stayed open and every pass exited 1,
/// also after a crash between the outcome and its usage batch (the resume posted it again).
#[test]
fn a_unit_priced_zero_credits_is_recorded_charged_nothing_and_the_run_ends() {
    for crash in [None, Some("after_step_outcome")] {
        let fx = metered(r#"{"pages": 4}"#, 50);
        let module = fx.path("modules/metered/module.yml");
        let yaml = std::fs::read_to_string(&module).unwrap();
        assert!(yaml.contains("credits: 2"), "{yaml}");
        std::fs::write(&module, yaml.replace("credits: 2", "credits: 0")).unwrap();
        if let Some(point) = crash {
            let out = fx.run_env(&["orchestrator"], &[("PLATFORM_FAILPOINT", point)]);
            assert!(out.status.code().is_none(), "{point}: {}", out.text());
        }
        let (code, summary, stderr) = fx.orchestrate(&[]);
        assert_eq!(code, 0, "{crash:?}: {summary}\n{stderr}");
        assert_eq!(run_of(&summary, "m")["status"], "COMPLETED", "{crash:?}");
        assert!(usage_spends(&fx).is_empty(), "{crash:?}");
        let outcome = &fx.of_type("evidence.jsonl", "step_outcome")[0];
        assert_eq!(outcome["usage"]["pages"]["quantity"], 4, "{crash:?}");
        assert_eq!(fx.balance(), 49, "{crash:?}: the run charge only");
        assert_eq!(fx.runs()[0]["status"], "COMPLETED", "{crash:?}");
        let (code, _, _) = fx.orchestrate(&[]);
        assert_eq!(code, 0, "{crash:?}: up to date");
        fx.integrity().unwrap();
    }
}
