//! SPEC §9 operator corrections, on the real binary: `admin-adjust` (ADJUST records: idempotent by reference, conflicts named, never below zero, counted in every balance) and `rerun` (one pending request per last run, consumed by one new run; unknown ids exit 2; denials exit 3 and are audited).
use crate::support::check::assert_has;
use crate::support::fx::adjust_args;
use crate::support::orch::GEN_STEP;
use crate::support::pause::run_paused;
use crate::support::{Fx, Transcript};
use serde_json::Value;
use std::process::Output;

/// One step (gen: 5 credits a run), unscheduled.
fn once() -> String {
    format!("work_order_id: once\n{GEN_STEP}")
}

/// `admin-adjust` of t1 by `actor`: amount, reason, reference, then any extra flags.
fn adjust_as(
    fx: &Fx,
    actor: &str,
    amount: &str,
    reason: &str,
    reference: &str,
    extra: &[&str],
) -> Output {
    let mut args = adjust_args(amount, reason, reference);
    args.extend(
        ["--actor", actor]
            .iter()
            .chain(extra)
            .map(|s| s.to_string()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fx.run(&args)
}

fn adjust(fx: &Fx, amount: &str, reason: &str, reference: &str, extra: &[&str]) -> Output {
    adjust_as(fx, "tester", amount, reason, reference, extra)
}

fn rerun_as(fx: &Fx, actor: &str, tenant: &str, wo: &str, reason: &str) -> Output {
    fx.run(&[
        "rerun",
        "--tenant-id",
        tenant,
        "--work-order-id",
        wo,
        "--reason",
        reason,
        "--actor",
        actor,
        "--json",
    ])
}

fn adjusts(fx: &Fx) -> Vec<Value> {
    fx.of_type("billing.jsonl", "ADJUST")
}

#[test]
fn an_adjustment_credits_or_debits_once_per_reference_and_every_balance_counts_it() {
    let fx = Fx::new();
    fx.topup(10, "r1");
    let out = adjust(
        &fx,
        "5",
        "goodwill",
        "CASE-1",
        &["--note", "late delivery", "--json"],
    );
    let v = out.expect_ok().json();
    assert_eq!(
        (v["status"].as_str(), v["balance_credits"].as_i64()),
        (Some("appended"), Some(15))
    );
    // A debit parses as a negative number.
    adjust(&fx, "-3", "correction", "CASE-2", &[]).expect_ok();
    assert_eq!(fx.balance(), 12);
    // A replay (another actor's note, same amount and reason) writes nothing.
    let before = fx.ledger_bytes(".billing-state");
    let out = adjust(&fx, "5", "goodwill", " CASE-1", &["--note", "again"]);
    assert_has(
        &out.expect_ok().stdout_text(),
        "already recorded: reference CASE-1",
    );
    assert_eq!(fx.ledger_bytes(".billing-state"), before);
    let recorded = adjusts(&fx);
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0]["idempotency_key"], "adjust/t1/CASE-1");
    assert_eq!(recorded[0]["note"], "late delivery");
    assert_eq!(recorded[1]["amount_credits"], -3);
    assert_eq!(recorded[1]["note"], Value::Null);
    // Each has its audit record.
    let audits: Vec<Value> = fx.of_type("audit.jsonl", "audit");
    for r in ["CASE-1", "CASE-2"] {
        let key = format!("audit/billing.adjust/adjust/t1/{r}");
        assert!(
            audits.iter().any(|a| a["idempotency_key"] == key.as_str()),
            "{key}"
        );
    }
    // The statement shows each with its reason and note, and agrees with the balance.
    let st = fx
        .run(&["statement", "--tenant-id", "t1", "--json"])
        .expect_ok()
        .json();
    let rows = st["records"].as_array().unwrap();
    assert_eq!(rows[1]["type"], "ADJUST");
    assert_eq!(rows[1]["reason_slug"], "goodwill");
    assert_eq!(rows[1]["note"], "late delivery");
    assert_eq!(rows[2]["balance_after"], 12);
    assert_eq!(st["balance_credits"], fx.balance());
    let text = fx
        .run(&["statement", "--tenant-id", "t1"])
        .expect_ok()
        .stdout_text();
    assert_has(&text, "correction");
    fx.integrity().unwrap();
}

#[test]
fn a_conflicting_adjustment_names_every_differing_field_and_writes_nothing() {
    let fx = Fx::new();
    fx.topup(10, "r1");
    adjust(&fx, "5", "goodwill", "CASE-1", &[]).expect_ok();
    let before = fx.ledger_bytes(".billing-state");
    let out = adjust(&fx, "-5", "chargeback", "CASE-1", &[]);
    out.expect_code(1);
    let text = out.text();
    assert_has(&text, "amount_credits 5, not -5");
    assert_has(&text, "reason_slug \"goodwill\", not \"chargeback\"");
    assert_eq!(fx.ledger_bytes(".billing-state"), before);
}

#[test]
fn a_debit_below_zero_is_refused_with_nothing_written() {
    let fx = Fx::new();
    fx.topup(10, "r1");
    let before = fx.ledger_bytes(".billing-state");
    let out = adjust(&fx, "-11", "chargeback", "DISPUTE-9", &[]);
    out.expect_code(1);
    assert_has(&out.text(), "not enough credits");
    // A top-up does not help a chargeback: the help says how much a debit can take. Until
    // 2026-12-03 it said "top the tenant up first"; until 2026-12-04 it pointed the wrong way
    // ("-10 or less" includes the refused -11).
    assert_has(
        &out.text(),
        "help: a debit can take at most the balance, 10 credits: adjust by -10 or more (-1 to -10)",
    );
    assert_eq!(
        fx.ledger_bytes(".billing-state"),
        before,
        "no ADJUST, no audit record"
    );
    // The whole balance may go.
    adjust(&fx, "-10", "chargeback", "DISPUTE-9", &[]).expect_ok();
    assert_eq!(fx.balance(), 0);
    let out = adjust(&fx, "-1", "chargeback", "DISPUTE-10", &[]);
    out.expect_code(1);
    assert_has(
        &out.text(),
        "help: the balance is 0 credits: there is nothing left to debit",
    );
    fx.integrity().unwrap();
}

#[test]
fn bad_adjustments_exit_2_and_registry_reasons_are_accepted() {
    let fx = Fx::new();
    fx.topup(10, "r1");
    for (amount, reason, reference) in [
        ("0", "goodwill", "A-1"),
        ("1000000000001", "goodwill", "A-1"),
        ("-1000000000001", "goodwill", "A-1"),
        ("5", "bribe", "A-1"),
        ("5", "goodwill", "A 1"),
    ] {
        let out = adjust(&fx, amount, reason, reference, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{amount} {reason} {reference}: {}",
            out.text()
        );
    }
    assert_has(
        &adjust(&fx, "5", "bribe", "A-1", &[]).text(),
        "unknown adjust reason 'bribe'",
    );
    // 0 changes nothing: the help says what to give (it said to split a larger correction).
    let zero = adjust(&fx, "0", "goodwill", "A-1", &[]).text();
    assert_has(&zero, "an adjustment of 0 changes nothing");
    assert!(!zero.contains("split a larger"), "{zero}");
    assert!(adjusts(&fx).is_empty());
    fx.write(
        "config/registry.yml",
        "adjust_reasons:\n  - {id: sla_credit, description: SLA breach}\n",
    );
    adjust(&fx, "7", "sla_credit", "SLA-2026-12", &[]).expect_ok();
    assert_eq!(fx.balance(), 17);
}

#[test]
fn a_denied_adjustment_exits_3_and_is_audited() {
    let fx = Fx::new();
    fx.topup(10, "r1");
    let out = adjust_as(&fx, "intruder", "1000", "goodwill", "FREE-MONEY", &[]);
    out.expect_code(3);
    assert!(adjusts(&fx).is_empty());
    let denials: Vec<Value> = fx
        .of_type("audit.jsonl", "audit")
        .into_iter()
        .filter(|a| a["decision"] == "denied")
        .collect();
    assert_eq!(denials.len(), 1);
    assert_eq!(denials[0]["scope"], "billing.adjust");
    assert_eq!(denials[0]["target"], "adjust/t1/FREE-MONEY");
}

#[test]
fn the_credits_gate_and_ledger_merge_count_adjustments() {
    let fx = Fx::new();
    fx.workorder("once", &once());
    fx.topup(1, "r1");
    let (code, _, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "1 credit does not cover 5");
    adjust(&fx, "4", "goodwill", "CASE-7", &[]).expect_ok();
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}");
    assert_eq!(fx.balance(), 0);
    // A segment holding the ADJUST merges into a copy of the state before it.
    let seg = fx.fork();
    let base = Fx::new();
    base.topup(1, "r1");
    std::fs::create_dir_all(base.path("segment")).unwrap();
    for f in crate::support::fx::LEDGER_FILES {
        std::fs::copy(seg.state_file(f), base.path(&format!("segment/{f}"))).unwrap();
    }
    base.run(&["ledger", "merge", "--into", ".billing-state", "segment"])
        .expect_ok();
    assert_eq!(base.balance(), 0);
    assert_eq!(adjusts(&base).len(), 1);
    base.integrity().unwrap();
}

#[test]
fn two_rerun_requests_then_one_pass_give_one_run() {
    let fx = Fx::new();
    fx.workorder("once", &once());
    fx.topup(100, "r1");
    fx.orchestrate(&[]);
    let v = rerun_as(&fx, "tester", "t1", "once", "upstream data fixed")
        .expect_ok()
        .json();
    assert_eq!(
        (v["status"].as_str(), v["after_run"].as_u64()),
        (Some("requested"), Some(1))
    );
    let before = fx.ledger_bytes(".billing-state");
    let v = rerun_as(&fx, "tester", "t1", "once", "another reason")
        .expect_ok()
        .json();
    assert_eq!(v["status"], "already_requested");
    assert_eq!(
        fx.ledger_bytes(".billing-state"),
        before,
        "a second request writes nothing"
    );
    let dry = fx.run(&["orchestrator", "--dry-run"]).stdout_text();
    assert_has(&dry, "t1/once  start run 2 (rerun requested)");
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(
        (code, sum["runs"].as_array().map(Vec::len)),
        (0, Some(1)),
        "{sum}"
    );
    let starts = fx.of_type("evidence.jsonl", "run_started");
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[1]["rerun"], "rerun/t1/once/after-r1");
    let request = &fx.of_type("evidence.jsonl", "rerun_requested")[0];
    assert_eq!(
        (request["reason"].as_str(), request["actor"].as_str()),
        (Some("upstream data fixed"), Some("tester"))
    );
    // Consumed: the next pass finds the work order up to date.
    let (_, sum, _) = fx.orchestrate(&[]);
    assert_eq!(sum["up_to_date"][0], "t1/once", "{sum}");
    assert_eq!(fx.balance(), 90, "two runs of 5 credits");
    // A new request after run 2 is a new request.
    let v = rerun_as(&fx, "tester", "t1", "once", "once more")
        .expect_ok()
        .json();
    assert_eq!(v["idempotency_key"], "rerun/t1/once/after-r2");
    fx.integrity().unwrap();
}

/// SPEC §9: the run a rerun request asks for names it. A request recorded while a pass runs,
/// after the pass planned the work order's run and before that run started, is answered by
/// that run. Until 2026-12-04 the run started without naming it (planned before it) and the
/// next pass found the work order up to date: no run ever named the request.
#[test]
fn a_rerun_request_recorded_while_the_pass_runs_is_named_by_the_run_that_starts_after_it() {
    let fx = Fx::new();
    fx.workorder("once", &once());
    fx.topup(100, "r1");
    let args = ["orchestrator", "--json", "--jobs", "1"];
    let out = run_paused(&fx, &args, "before_run_started", || {
        let v = rerun_as(&fx, "tester", "t1", "once", "upstream data fixed")
            .expect_ok()
            .json();
        assert_eq!(v["idempotency_key"], "rerun/t1/once/after-r0");
    });
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    let starts = fx.of_type("evidence.jsonl", "run_started");
    assert_eq!(starts.len(), 1);
    assert_eq!(
        starts[0]["rerun"], "rerun/t1/once/after-r0",
        "{}",
        starts[0]
    );
    // Answered: the next pass finds the work order up to date.
    let (_, sum, _) = fx.orchestrate(&[]);
    assert_eq!(sum["up_to_date"][0], "t1/once", "{sum}");
    assert_eq!(fx.balance(), 95, "one run of 5 credits");
    fx.integrity().unwrap();
}

#[test]
fn a_rerun_of_an_unknown_tenant_or_work_order_exits_2() {
    let fx = Fx::new();
    fx.workorder("once", &once());
    for (tenant, wo, needle) in [
        ("t1", "missing", "has no work order 'missing'"),
        ("t1", "onse", "did you mean 'once'?"),
        ("t9", "once", "unknown tenant 't9'"),
        ("t1", "../t2/x", "--work-order-id"),
    ] {
        let out = rerun_as(&fx, "tester", tenant, wo, "why");
        assert_eq!(out.status.code(), Some(2), "{tenant}/{wo}: {}", out.text());
        assert_has(&out.text(), needle);
    }
    assert!(fx.of_type("evidence.jsonl", "rerun_requested").is_empty());
}

/// Until 2026-12-03 the privileged commands said only "name an existing tenant"; where a
/// typo matters most they now name the closest tenant, as balance and runs do.
#[test]
fn a_mistyped_tenant_of_a_privileged_command_gets_the_closest_one() {
    let fx = Fx::new();
    fx.workorder("once", &once());
    let mut adjust = adjust_args("-1", "goodwill", "CASE-9");
    adjust[2] = "T1".into();
    adjust.extend(["--actor", "tester"].map(String::from));
    let adjust: Vec<&str> = adjust.iter().map(String::as_str).collect();
    let outs = [
        fx.topup_as("T1", 5, "p5", "tester"),
        fx.run(&adjust),
        rerun_as(&fx, "tester", "t2", "once", "why"),
    ];
    for out in outs {
        assert_eq!(out.status.code(), Some(2), "{}", out.text());
        assert_has(&out.text(), "did you mean 't1'? (known tenants: t1)");
        assert_has(&out.text(), "name an existing tenant");
    }
    assert!(!fx.path(".billing-state/billing.jsonl").exists());
    assert!(fx.of_type("evidence.jsonl", "rerun_requested").is_empty());
}

/// Until 2026-12-03 a tenant folder without tenant.yml got "did you mean 't11'?" for `t11`:
/// the name typed, offered back. The help now says what is missing, and never names the input.
#[test]
fn a_tenant_folder_without_tenant_yml_is_not_suggested_back() {
    let fx = Fx::new();
    fx.workorder("once", &once());
    std::fs::create_dir_all(fx.path("tenants/t11/workorders")).unwrap();
    let mut adjust = adjust_args("-1", "goodwill", "CASE-9");
    adjust[2] = "t11".into();
    adjust.extend(["--actor", "tester"].map(String::from));
    let adjust: Vec<&str> = adjust.iter().map(String::as_str).collect();
    let outs = [
        fx.topup_as("t11", 5, "p5", "tester"),
        fx.run(&adjust),
        rerun_as(&fx, "tester", "t11", "once", "why"),
    ];
    for out in outs {
        let text = out.text();
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert_has(&text, "unknown tenant 't11' (no tenants/t11/tenant.yml)");
        assert_has(
            &text,
            "the folder tenants/t11/ has no tenant.yml: add tenants/t11/tenant.yml",
        );
        assert!(!text.contains("did you mean 't11'"), "{text}");
        assert_has(&text, "(known tenants: t1)");
    }
    assert!(!fx.path(".billing-state/billing.jsonl").exists());
    assert!(fx.of_type("evidence.jsonl", "rerun_requested").is_empty());
}

#[test]
fn a_denied_rerun_exits_3_and_is_audited() {
    let fx = Fx::new();
    fx.workorder("once", &once());
    let out = rerun_as(&fx, "intruder", "t1", "once", "let me in");
    out.expect_code(3);
    assert!(fx.of_type("evidence.jsonl", "rerun_requested").is_empty());
    let audit = fx.of_type("audit.jsonl", "audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0]["decision"].as_str(), audit[0]["scope"].as_str()),
        (Some("denied"), Some("orders.rerun"))
    );
    assert_eq!(audit[0]["target"], "rerun/t1/once");
}

/// An edit an attacker makes to one record.
type Edit = Box<dyn Fn(&mut serde_json::Map<String, Value>)>;

/// An ADJUST forged into billing.jsonl by someone who knows the format (re-chained, so each
/// line's own checks pass): one without its audit record, one past the amount cap, one that
/// overdraws. integrity-validate names each, and readers print no figure from them.
#[test]
fn forged_adjustments_are_refused_by_integrity_validate_and_readers() {
    use crate::support::ledger_fixtures::forge;
    let fx = Fx::new();
    fx.topup(10, "r1");
    adjust(&fx, "-4", "correction", "CASE-1", &[]).expect_ok();
    fx.integrity().unwrap();
    let billing = fx.state_file("billing.jsonl");
    let pristine = std::fs::read(&billing).unwrap();
    let cases: [(&str, Edit); 3] = [
        // Another reference: its audit record (keyed by the reference) does not exist.
        (
            "has no audit record",
            Box::new(|r| {
                r.insert("reference".into(), "FORGED".into());
                r.insert("idempotency_key".into(), "adjust/t1/FORGED".into());
                r.insert("amount_credits".into(), 1_000_000.into());
            }),
        ),
        (
            "ADJUST amount_credits must be ±(1..=1000000000000), got -10000000000000",
            Box::new(|r| {
                r.insert("amount_credits".into(), (-10_000_000_000_000i64).into());
            }),
        ),
        (
            "not enough credits",
            Box::new(|r| {
                r.insert("amount_credits".into(), (-11).into());
            }),
        ),
    ];
    for (what, edit) in cases {
        std::fs::write(&billing, &pristine).unwrap();
        forge(&billing, |records| edit(&mut records[1]));
        let text = fx.run(&["integrity-validate"]).expect_code(1).stdout_text();
        assert!(
            text.lines()
                .any(|l| l.contains("billing.jsonl:2:") && l.contains(what)),
            "{what}:\n{text}"
        );
        let o = fx.run(&["balance", "--tenant-id", "t1"]);
        o.expect_code(1);
        assert!(o.stdout.is_empty(), "{what}: {}", o.text());
    }
}

/// A real abort between an ADJUST's write and its audit record's: readers refuse to show
/// figures, and the replayed command adds the audit record from the ADJUST and says so.
#[test]
fn a_crash_between_an_adjustment_and_its_audit_record_is_repaired_by_the_replay() {
    let fx = Fx::new();
    fx.topup(10, "r1");
    let audits = fx.lines("audit.jsonl").len();
    let mut c = fx.cmd();
    c.args(adjust_args("3", "goodwill", "CASE-9"))
        .args(["--actor", "tester"]);
    let out = c
        .env("PLATFORM_FAILPOINT", "ledger_after_write@1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", out.text());
    assert_eq!(adjusts(&fx).len(), 1);
    assert_eq!(fx.lines("audit.jsonl").len(), audits, "no audit record yet");
    let out = fx.run(&["balance", "--tenant-id", "t1", "--json"]);
    out.expect_code(1);
    // The topic a reader names for it says a writer adds the record. Until 2026-12-04 it
    // called this damage, said no command writes, and said to restore from a good copy.
    let topic = out.json()["error"]["topic"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(topic, "error:ledger_damaged");
    let text = fx.run(&["explain", "--json", &topic]).json();
    let text = format!("{} {}", text["meaning"], text["what_to_do"]);
    assert_has(&text, "any writer adds the audit record");
    assert_has(
        &text,
        "Restore from a good copy only if nobody posted that record",
    );
    assert!(
        !text.contains("no command writes on a damaged ledger"),
        "{text}"
    );
    let out = adjust(&fx, "3", "goodwill", "CASE-9", &[]);
    let err = out.expect_ok().stderr_text();
    assert_has(&err, "the audit record of ADJUST adjust/t1/CASE-9");
    let last = fx.lines("audit.jsonl").pop().unwrap();
    assert_eq!(
        last["idempotency_key"],
        "audit/billing.adjust/adjust/t1/CASE-9"
    );
    assert_eq!(fx.balance(), 13);
    fx.integrity().unwrap();
}

#[test]
fn a_rerun_of_a_disabled_work_order_says_it_waits_until_it_is_enabled() {
    let fx = Fx::new();
    fx.workorder("once", &once());
    fx.topup(100, "r1");
    fx.orchestrate(&[]);
    fx.workorder("once", &format!("enabled: false\n{}", once()));
    let v = rerun_as(&fx, "tester", "t1", "once", "later")
        .expect_ok()
        .json();
    assert_eq!(
        (v["status"].as_str(), v["enabled"].as_bool()),
        (Some("requested"), Some(false))
    );
    // The text of a request, for a work order `id` written `enabled` or not.
    let request = |id: &str, enabled: bool| {
        let yaml = once().replace("work_order_id: once", &format!("work_order_id: {id}"));
        let prefix = if enabled { "" } else { "enabled: false\n" };
        fx.workorder(id, &format!("{prefix}{yaml}"));
        let args = [
            "rerun",
            "--tenant-id",
            "t1",
            "--work-order-id",
            id,
            "--reason",
            "x",
        ];
        fx.run(&[&args[..], &["--actor", "tester"]].concat())
            .expect_ok()
            .stdout_text()
    };
    assert_has(
        &request("other", true),
        "the next orchestrator pass starts run 1",
    );
    assert_has(
        &request("third", false),
        "run 1 of t1/third starts on the first orchestrator pass after it is enabled",
    );
    // The disabled work order's request waits: the pass runs nothing of it.
    let (_, sum, _) = fx.orchestrate(&["--work-order-id", "once"]);
    assert_eq!(sum["runs"], serde_json::json!([]), "{sum}");
}

/// A rerun of a work order that does not validate is recorded, and says the run waits until
/// the work order is fixed, naming the error (`valid: false` and the findings in `--json`;
/// `enabled` null when the file is not YAML). Until 2026-12-04 it promised "the next
/// orchestrator pass starts run 2" with `enabled: true`, and that pass ran nothing of it.
#[test]
fn a_rerun_of_an_invalid_work_order_says_it_waits_until_it_is_fixed() {
    let fx = Fx::new();
    fx.workorder("once", &once());
    fx.topup(100, "r1");
    fx.orchestrate(&[]);
    fx.workorder("once", &format!("{}steps: [\n", once()));
    let v = rerun_as(&fx, "tester", "t1", "once", "later")
        .expect_ok()
        .json();
    assert_eq!(v["status"], "requested", "{v}");
    assert_eq!(
        (&v["enabled"], &v["valid"]),
        (&Value::Null, &false.into()),
        "{v}"
    );
    assert_eq!(
        v["findings"][0]["file"], "tenants/t1/workorders/once.yml",
        "{v}"
    );
    // Parsed, but naming a module that does not exist: enabled, and invalid all the same.
    let yaml =
        format!("work_order_id: other\n{GEN_STEP}").replace("module_id: gen", "module_id: nosuch");
    fx.workorder("other", &yaml);
    let args = [
        "rerun",
        "--tenant-id",
        "t1",
        "--work-order-id",
        "other",
        "--reason",
        "x",
    ];
    let text = fx
        .run(&[&args[..], &["--actor", "tester"]].concat())
        .expect_ok()
        .stdout_text();
    assert_has(&text, "run 1 of t1/other starts on the first orchestrator pass after its work order is fixed: it is invalid");
    assert_has(&text, "tenants/t1/workorders/other.yml");
    assert!(
        !text.contains("the next orchestrator pass starts"),
        "{text}"
    );
    // The pass does run nothing of either, as the command said.
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!((code, &sum["runs"]), (1, &serde_json::json!([])), "{sum}");
    // Fixed: the next pass starts the requested run.
    fx.workorder("once", &once());
    let (code, sum, _) = fx.orchestrate(&["--work-order-id", "once"]);
    assert_eq!(code, 0, "{sum}");
    assert_eq!(sum["runs"][0]["run"], 2, "{sum}");
}
