//! A config/registry.yml or config/catalog.yml with errors (SPEC §6 "fail closed"): the orchestrator runs, charges and refunds nothing, naming the file's findings everywhere it reports; the findings that depend on the file say it is invalid instead of blaming what it could not read.
use crate::support::check::{assert_has, find};
use crate::support::orch::{crash_after_first_charge, funded_order, run_of, step_of, CHAIN};
use crate::support::{Fx, Transcript};
use serde_json::Value;

/// Custom slug `vendor_down` declared twice, not refundable then refundable: which one a run
/// would use is not the operator's decision.
const TWICE: &str = "reason_slugs:\n  - {slug: vendor_down, refundable: false}\n  - {slug: vendor_down, refundable: true}\n";

/// A step of module `fail` (4 credits to run) that fails with `vendor_down`.
const VENDOR_DOWN: &str = "work_order_id: down\nsteps:\n  - step_id: call\n    module_id: fail\n    kind: transform\n    inputs: {slug: vendor_down}\n";

/// A finding of `findings` at `file`, with `field` and `line`.
fn at<'a>(findings: &'a Value, file: &str, field: &str, line: u64) -> &'a Value {
    let f = find(findings, "field", field);
    assert_eq!(f["file"], file, "{findings}");
    assert_eq!(f["line"], line, "{findings}");
    f
}

/// Every message of `findings` (an array of findings).
fn messages(findings: &Value) -> Vec<String> {
    let all = findings.as_array().cloned().unwrap_or_default();
    all.iter()
        .map(|f| format!("{}: {}", f["file"], f["message"]))
        .collect()
}

/// `consistency-validate --format json`: exit code and report.
fn validate(fx: &Fx) -> (i32, Value) {
    let out = fx.run(&["consistency-validate", "--format", "json"]);
    (out.status.code().unwrap_or(-1), out.json())
}

#[test]
fn a_registry_with_errors_makes_every_work_order_invalid_and_charges_nothing() {
    let fx = funded_order("down", VENDOR_DOWN, 50);
    fx.write("config/registry.yml", TWICE);
    let billing = fx.bytes(".billing-state/billing.jsonl");

    let (code, plan, _) = fx.orchestrate(&["--dry-run"]);
    assert_eq!(code, 1, "{plan}");
    let wp = find(&plan["plan"]["work_orders"], "work_order_id", "down");
    assert_eq!(wp["action"], "invalid", "{wp}");
    at(
        &wp["findings"],
        "config/registry.yml",
        "reason_slugs[1].slug",
        3,
    );

    let summary_md = fx.path("summary.md");
    let out = fx.run_env(
        &["orchestrator", "--json"],
        &[("GITHUB_STEP_SUMMARY", summary_md.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let summary = out.json();
    let config = at(
        &summary["config_errors"],
        "config/registry.yml",
        "reason_slugs[1].slug",
        3,
    );
    assert_has(
        config["message"].as_str().unwrap(),
        "'vendor_down' is already defined",
    );
    let invalid = find(&summary["invalid"], "work_order_id", "down");
    at(
        &invalid["findings"],
        "config/registry.yml",
        "reason_slugs[1].slug",
        3,
    );
    assert_eq!(summary["runs"], serde_json::json!([]), "{summary}");
    assert_eq!(summary["charged_credits"], 0);
    let md = fx.read_text("summary.md");
    assert_has(
        &md,
        "Config has errors: nothing was run, charged or refunded",
    );
    assert_has(&md, "`config/registry.yml:3`");

    let text = fx.run(&["orchestrator"]);
    assert_eq!(text.status.code(), Some(1));
    let text = text.stdout_text();
    assert_has(
        &text,
        "config has errors: nothing is run, charged or refunded",
    );
    assert_has(
        &text,
        "--> config/registry.yml:3  field: reason_slugs[1].slug",
    );
    assert_has(&text, "invalid, not run: t1/down");

    assert_eq!(
        fx.bytes(".billing-state/billing.jsonl"),
        billing,
        "three passes wrote nothing to billing.jsonl"
    );
    assert!(fx.of_type("evidence.jsonl", "run_started").is_empty());
    assert_eq!(fx.balance(), 50);

    // Fixed (declared once, refundable): the step fails `vendor_down` and is refunded.
    fx.write(
        "config/registry.yml",
        "reason_slugs:\n  - {slug: vendor_down, refundable: true}\n",
    );
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "the step fails: {summary}");
    assert_eq!(summary["config_errors"], serde_json::json!([]));
    let run = run_of(&summary, "down");
    assert_eq!(step_of(run, "call")["reason_slug"], "vendor_down", "{run}");
    assert_eq!(run["charged_credits"], 4);
    assert_eq!(run["refunded_credits"], 4);
    assert_eq!(fx.balance(), 50);
}

#[test]
fn an_open_run_of_a_disabled_work_order_is_not_closed_while_the_registry_has_errors() {
    let fx = funded_order("chain", CHAIN, 100);
    crash_after_first_charge(&fx);
    fx.workorder("chain", &format!("enabled: false\n{CHAIN}"));
    fx.write("config/registry.yml", TWICE);
    let billing = fx.bytes(".billing-state/billing.jsonl");

    let (code, summary, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "{summary}\n{stderr}");
    let invalid = find(&summary["invalid"], "work_order_id", "chain");
    at(
        &invalid["findings"],
        "config/registry.yml",
        "reason_slugs[1].slug",
        3,
    );
    assert_eq!(summary["runs"], serde_json::json!([]), "{summary}");
    assert_eq!(
        fx.bytes(".billing-state/billing.jsonl"),
        billing,
        "no refund, no close"
    );
    assert!(fx.of_type("evidence.jsonl", "run_ended").is_empty());

    std::fs::remove_file(fx.path("config/registry.yml")).unwrap();
    let (_, summary, _) = fx.orchestrate(&[]);
    let closed = run_of(&summary, "chain");
    assert_eq!(closed["action"], "close", "{summary}");
    assert_eq!(closed["refunded_credits"], 5);
    assert_eq!(fx.balance(), 100);
}

#[test]
fn a_registry_failing_its_schema_is_blamed_not_the_module_metering_a_listed_unit() {
    let fx = Fx::new().overlay("usage", "");
    fx.workorder(
        "m",
        "work_order_id: m\nsteps:\n  - step_id: count\n    module_id: metered\n    kind: transform\n    inputs: {report: '{\"pages\": 1}'}\n",
    );
    fx.topup(50, "r1");
    // `pages` is listed; one slug with a space fails the schema, so nothing of the file is read.
    fx.write(
        "config/registry.yml",
        "reason_slugs:\n  - {slug: \"vendor down\", refundable: false}\nusage_units: [pages]\n",
    );

    let (code, report) = validate(&fx);
    assert_eq!(code, 1, "{report}");
    at(
        &report["errors"],
        "config/registry.yml",
        "reason_slugs[0].slug",
        2,
    );
    for m in messages(&report["errors"]) {
        assert!(
            !m.contains("not in the registry") && !m.contains("module.yml"),
            "an error blames what the registry could not say: {m}"
        );
    }
    let unit = at(
        &report["warnings"],
        "modules/metered/module.yml",
        "pricing.usage.pages",
        12,
    );
    let said = unit["message"].as_str().unwrap();
    assert_has(said, "usage unit 'pages' could not be checked");
    assert_has(
        said,
        "config/registry.yml is invalid (its error at config/registry.yml:2)",
    );

    let billing = fx.bytes(".billing-state/billing.jsonl");
    let (code, plan, _) = fx.orchestrate(&["--dry-run"]);
    assert_eq!(code, 1, "{plan}");
    let invalid = find(&plan["invalid"], "work_order_id", "m");
    assert_eq!(
        messages(&invalid["findings"]).len(),
        1,
        "the registry's error alone: {invalid}"
    );
    at(
        &invalid["findings"],
        "config/registry.yml",
        "reason_slugs[0].slug",
        2,
    );
    let (code, _, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1);
    assert_eq!(fx.bytes(".billing-state/billing.jsonl"), billing);
}

#[test]
fn a_catalog_with_errors_is_blamed_not_the_tenants_plans_and_nothing_runs() {
    let fx = funded_order("chain", CHAIN, 50);
    fx.write(
        "tenants/t1/tenant.yml",
        "tenant_id: t1\nname: Test Tenant\nplan: full\n",
    );
    // `full` exists; a module listed twice fails the schema, so no plan of the file is read.
    fx.write(
        "config/catalog.yml",
        "plans:\n  full:\n    - gen\n    - echo_inputs\n    - gen\n",
    );

    let (code, report) = validate(&fx);
    assert_eq!(code, 1, "{report}");
    at(&report["errors"], "config/catalog.yml", "plans.full", 2);
    let errors = messages(&report["errors"]);
    assert_eq!(errors.len(), 1, "the catalog's error alone: {errors:?}");

    let billing = fx.bytes(".billing-state/billing.jsonl");
    let (code, plan, _) = fx.orchestrate(&["--dry-run"]);
    assert_eq!(code, 1, "{plan}");
    let wp = find(&plan["plan"]["work_orders"], "work_order_id", "chain");
    assert_eq!(wp["action"], "invalid", "not a refusal: {wp}");
    assert!(wp["refused"].is_null(), "{wp}");
    assert_eq!(wp["findings"][0]["file"], "config/catalog.yml", "{wp}");
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "{summary}");
    assert_eq!(summary["config_errors"][0]["file"], "config/catalog.yml");
    assert_eq!(summary["runs"], serde_json::json!([]), "{summary}");
    assert_eq!(fx.bytes(".billing-state/billing.jsonl"), billing);

    // Fixed: the tenant's plan allows both modules and the chain runs.
    fx.write(
        "config/catalog.yml",
        "plans:\n  full:\n    - gen\n    - echo_inputs\n",
    );
    assert_eq!(validate(&fx).0, 0);
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(run_of(&summary, "chain")["status"], "COMPLETED");
}
