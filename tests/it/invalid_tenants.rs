//! Tenants whose tenant.yml is missing, not YAML, against its schema or naming another tenant (SPEC §2, §3): their work orders are reported invalid and not run, the other tenants run, and no command bills or re-runs them.
use crate::support::check::{find, strs};
use crate::support::orch::{run_of, GEN_STEP};
use crate::support::{Fx, Transcript};
use serde_json::Value;
use std::sync::OnceLock;

/// Each way a tenant.yml can make its tenant invalid: (case, contents or None to remove it,
/// what the finding at tenants/t2/tenant.yml says).
const CASES: &[(&str, Option<&str>, &str)] = &[
    ("missing", None, "has no tenant.yml"),
    (
        "not YAML",
        Some("tenant_id: t2\nbogus: [1\n"),
        "YAML syntax error",
    ),
    (
        "schema error",
        Some("tenant_id: t2\nunknown_field: 1\n"),
        "unknown key 'unknown_field'",
    ),
    (
        "another tenant_id",
        Some("tenant_id: t1\n"),
        "tenant_id 't1' must equal its folder name 't2'",
    ),
];

const T2_YML: &str = "tenants/t2/tenant.yml";

/// t1 with work order `one`, t2 with work order `two` (gen, 5 credits each), both funded
/// while t2's tenant.yml was still valid.
fn two_funded_tenants() -> Fx {
    static ONCE: OnceLock<Fx> = OnceLock::new();
    Fx::prepared(&ONCE, || {
        let fx = Fx::new();
        fx.add_tenant("t2");
        fx.workorder_for("t1", "one", &format!("work_order_id: one\n{GEN_STEP}"));
        fx.workorder_for("t2", "two", &format!("work_order_id: two\n{GEN_STEP}"));
        fx.fund("t1", 100, "r1");
        fx.fund("t2", 100, "r2");
        fx
    })
}

/// The fixture with t2's tenant.yml replaced (or removed).
fn broken(contents: Option<&str>) -> Fx {
    let fx = two_funded_tenants();
    match contents {
        Some(text) => fx.write(T2_YML, text),
        None => std::fs::remove_file(fx.path(T2_YML)).unwrap(),
    }
    fx
}

/// The summary lists t2/two invalid, with a finding at tenants/t2/tenant.yml saying `expect`.
fn assert_two_invalid(case: &str, summary: &Value, expect: &str) {
    let inv = find(&summary["invalid"], "work_order_id", "two");
    assert_eq!(inv["tenant_id"], "t2", "{case}: {summary}");
    let findings = inv["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["file"] == T2_YML && f["message"].as_str().unwrap().contains(expect)),
        "{case}: want '{expect}' at {T2_YML} in {findings:?}"
    );
}

#[test]
fn an_invalid_tenant_yml_makes_each_work_order_of_the_tenant_invalid_and_the_others_run() {
    for (case, contents, expect) in CASES {
        let fx = broken(*contents);

        let (code, plan, stderr) = fx.orchestrate(&["--dry-run"]);
        assert_eq!(code, 1, "{case}: dry run: {plan}\n{stderr}");
        assert_two_invalid(case, &plan, expect);
        let planned = find(&plan["plan"]["work_orders"], "work_order_id", "two");
        assert_eq!(planned["action"], "invalid", "{case}: {plan}");
        assert_eq!(
            find(&plan["plan"]["work_orders"], "work_order_id", "one")["action"],
            "start",
            "{case}: {plan}"
        );

        let (code, summary, stderr) = fx.orchestrate(&[]);
        assert_eq!(code, 1, "{case}: {summary}\n{stderr}");
        assert_two_invalid(case, &summary, expect);
        assert_eq!(
            strs(&summary["runs"], "tenant_id"),
            ["t1"],
            "{case}: {summary}"
        );
        assert_eq!(run_of(&summary, "one")["status"], "COMPLETED", "{case}");
        assert_eq!(summary["charged_credits"], 5, "{case}: {summary}");

        let t2 = |file: &str| -> Vec<String> {
            fx.records(file)
                .iter()
                .filter(|r| r["tenant_id"] == "t2")
                .map(|r| r["type"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        assert_eq!(t2("billing.jsonl"), ["TOPUP"], "{case}: t2 was billed");
        assert!(
            !t2("evidence.jsonl").iter().any(|t| t == "run_started"),
            "{case}: a run of t2 started"
        );
        assert!(!fx.path("runtime/runs/t2").exists(), "{case}: t2 ran");
        assert_eq!(
            fx.of_type("evidence.jsonl", "run_started").len(),
            1,
            "{case}: only t1's run"
        );

        // The text summary names the file and the problem too.
        let text = fx.run(&["orchestrator"]);
        text.expect_code(1);
        let out = text.stdout_text();
        assert!(out.contains("invalid, not run: t2/two"), "{case}: {out}");
        assert!(out.contains(T2_YML), "{case}: {out}");
    }
}

/// admin-topup, admin-adjust and rerun refuse an invalid tenant (exit 2) naming its
/// tenant.yml, and write nothing: not a record, not an audit line.
#[test]
fn billing_and_rerun_commands_refuse_an_invalid_tenant_and_write_nothing() {
    let adjust = [
        "admin-adjust",
        "--tenant-id",
        "t2",
        "--amount-credits",
        "5",
        "--reason-slug",
        "goodwill",
        "--reference",
        "adj-1",
        "--actor",
        "tester",
    ];
    let topup = [
        "admin-topup",
        "--tenant-id",
        "t2",
        "--amount-credits",
        "10",
        "--topup-method-id",
        "manual",
        "--reference",
        "top-2",
        "--actor",
        "tester",
    ];
    let rerun = [
        "rerun",
        "--tenant-id",
        "t2",
        "--work-order-id",
        "two",
        "--reason",
        "again",
        "--actor",
        "tester",
    ];
    for (case, contents, _) in CASES {
        let fx = broken(*contents);
        let before = fx.ledger_bytes(".billing-state");
        for argv in [&topup[..], &adjust[..], &rerun[..]] {
            let out = fx.run(argv);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{case}: {argv:?}: {}",
                out.text()
            );
            let err = out.stderr_text();
            assert!(err.contains(T2_YML), "{case}: {argv:?}: {err}");
            assert_eq!(
                fx.ledger_bytes(".billing-state"),
                before,
                "{case}: {argv:?} wrote"
            );
        }
        // A valid tenant is still served.
        fx.run(&topup.map(|a| if a == "t2" { "t1" } else { a }))
            .expect_ok();
    }
}

/// The work-order cache vouches for a work order's file, not for its tenant: a work order
/// that ran and is cached is reported invalid once its tenant.yml breaks, and is up to date
/// again once it is fixed.
#[test]
fn a_cached_work_order_of_a_tenant_that_became_invalid_is_reported_invalid() {
    let fx = two_funded_tenants();
    let (code, first, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{first}");
    assert_eq!(strs(&first["runs"], "tenant_id"), ["t1", "t2"], "{first}");
    let valid = fx.read_text(T2_YML);

    fx.write(T2_YML, "tenant_id: t2\nunknown_field: 1\n");
    let (code, second, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "{second}");
    assert_eq!(second["cache"]["work_orders_cached"], 2, "{second}");
    assert_two_invalid("cached", &second, "unknown key 'unknown_field'");
    assert_eq!(
        second["up_to_date"],
        serde_json::json!(["t1/one"]),
        "{second}"
    );

    fx.write(T2_YML, valid);
    let (code, third, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{third}");
    assert_eq!(third["invalid"], serde_json::json!([]), "{third}");
    assert_eq!(
        third["up_to_date"],
        serde_json::json!(["t1/one", "t2/two"]),
        "{third}"
    );
    assert_eq!(fx.of_type("evidence.jsonl", "run_started").len(), 2);
}

/// A tenant folder rejected as a whole (its tenant.yml is a folder) has no work order in the
/// plan: the text dry run still names it and why. Until 2026-12-03 it exited 1 without a word
/// about the tenant (only `--json` and the real pass listed it).
#[test]
fn a_dry_run_names_a_rejected_tenant_folder() {
    let fx = broken(None);
    std::fs::create_dir(fx.path(T2_YML)).unwrap();
    let out = fx.run(&["orchestrator", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let text = out.stdout_text();
    assert!(text.contains("t1/one  start run 1"), "{text}");
    assert!(text.contains("invalid, not run: t2/"), "{text}");
    assert!(text.contains(T2_YML), "{text}");
}
