//! Orchestrator transcripts on fixture repositories: chaining with every selector, packaging
//! and delivery, failures and refunds, skips, credits, secrets, timeouts, re-runs, dry runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::check::{assert_has, zip_entries};
use crate::support::orch::{
    crash_after_first_charge, funded_order, run_of, step_dir, step_of, CHAIN,
};
use crate::support::{Fx, Transcript};

#[test]
fn four_step_chain_completes_and_delivers_the_package() {
    let fx = funded_order("chain", CHAIN, 100);
    let (code, sum, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}\n{stderr}");
    let run = run_of(&sum, "chain");
    assert_eq!(run["status"], "COMPLETED");
    assert_eq!(run["run"], 1);
    // gen 2+3, echo 1, pack 1+0 (package not purchased), deliver 1
    assert_eq!(run["charged_credits"], 8);
    assert_eq!(fx.balance(), 92);
    // one progress line per step on stderr
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("[t1/chain r1]"))
            .count(),
        4,
        "{stderr}"
    );

    // Selectors and bindings as the module saw them.
    let run_id = run["run_id"].as_str().unwrap();
    let echoed: serde_json::Value = serde_json::from_slice(
        &fx.bytes(&format!("{}/outputs/echoed.json", step_dir(run, "echo"))),
    )
    .unwrap();
    assert_eq!(echoed["first_lines"], serde_json::json!(["alpha", "beta"]));
    assert_eq!(echoed["all_text"], "alpha\nbeta\ngamma\ndelta\n");
    assert_eq!(echoed["count_from_json"], 4);
    assert_eq!(
        echoed["first_row"],
        serde_json::json!({"i": 0, "w": "alpha"})
    );
    assert_eq!(echoed["count_value"], 4);
    assert_eq!(echoed["source_content"], "alpha\nbeta\ngamma\ndelta\n");
    assert_eq!(echoed["asset_content"], "asset text for t1\n");

    // The delivered ZIP is the package, byte for byte, with the bound outputs inside.
    let delivered = fx.bytes("runtime/deliveries/t1/chain/deliver/package.zip");
    let packaged = fx.bytes(&format!("{}/outputs/package.zip", step_dir(run, "pack")));
    assert!(!delivered.is_empty());
    assert_eq!(delivered, packaged);
    let entries = zip_entries(&delivered);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "bundle/a.txt",
            "bundle/sub/b.txt",
            "data.json",
            "echo/echoed.json"
        ]
    );
    assert_eq!(entries[0].1, b"A\n");
    assert!(fx
        .path("runtime/deliveries/t1/chain/deliver/manifest.json")
        .is_file());

    // Ledger: SPENDs in one batch per step, run records, a receipt, a bundle.
    let spends = fx.of_type("billing.jsonl", "SPEND");
    assert_eq!(spends.len(), 5);
    let gen: Vec<_> = spends.iter().filter(|s| s["step_id"] == "gen").collect();
    assert_eq!(gen.len(), 2);
    assert_eq!(gen[0]["batch"], gen[1]["batch"]);
    assert_eq!(gen[0]["batch_len"], 2);
    assert_eq!(gen[0]["batch"], "spend/t1/chain/r1/gen/a1");
    assert_eq!(fx.of_type("evidence.jsonl", "run_started").len(), 1);
    assert_eq!(fx.of_type("evidence.jsonl", "step_outcome").len(), 4);
    assert_eq!(fx.of_type("evidence.jsonl", "delivery_receipt").len(), 1);
    let bundle = &fx.of_type("evidence.jsonl", "evidence_bundle")[0];
    assert_eq!(bundle["items"].as_array().unwrap().len(), 5);
    let ended = &fx.of_type("evidence.jsonl", "run_ended")[0];
    assert_eq!(ended["status"], "COMPLETED");
    assert_eq!(ended["charged_credits"], 8);

    // `runs --json` reads the same from the ledger.
    let runs = fx.runs();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["status"], "COMPLETED");
    assert_eq!(runs[0]["run_id"], run_id);
    assert_eq!(runs[0]["steps"].as_array().unwrap().len(), 4);
    fx.integrity().unwrap();
}

#[test]
fn second_pass_appends_nothing_even_without_the_runtime_dir() {
    let fx = funded_order("chain", CHAIN, 100);
    assert_eq!(fx.orchestrate(&[]).0, 0);
    let billing = fx.bytes(".billing-state/billing.jsonl");
    let evidence = fx.bytes(".billing-state/evidence.jsonl");
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0);
    assert_eq!(sum["up_to_date"], serde_json::json!(["t1/chain"]));
    assert_eq!(sum["runs"].as_array().unwrap().len(), 0);
    assert_eq!(fx.bytes(".billing-state/billing.jsonl"), billing);
    assert_eq!(fx.bytes(".billing-state/evidence.jsonl"), evidence);
    std::fs::remove_dir_all(fx.path("runtime")).unwrap();
    let (code, _, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0);
    assert_eq!(fx.bytes(".billing-state/billing.jsonl"), billing);
    assert_eq!(fx.bytes(".billing-state/evidence.jsonl"), evidence);
    assert_eq!(fx.runs().as_array().unwrap().len(), 1);
}

#[test]
fn a_changed_work_order_starts_the_next_run() {
    let fx = funded_order("chain", CHAIN, 100);
    assert_eq!(fx.orchestrate(&[]).0, 0);
    fx.workorder("chain", &CHAIN.replace("alpha beta gamma delta", "one two"));
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0);
    let run = run_of(&sum, "chain");
    assert_eq!(run["run"], 2);
    assert_eq!(run["status"], "COMPLETED");
    assert_eq!(fx.balance(), 84);
    assert_eq!(fx.of_type("evidence.jsonl", "run_started").len(), 2);
}

#[test]
fn same_inputs_give_the_same_package_bytes() {
    let a = Fx::new();
    let b = Fx::new();
    for fx in [&a, &b] {
        fx.workorder("chain", CHAIN);
        fx.topup(100, "r1");
        assert_eq!(fx.orchestrate(&[]).0, 0);
    }
    let pa = a.bytes("runtime/deliveries/t1/chain/deliver/package.zip");
    let pb = b.bytes("runtime/deliveries/t1/chain/deliver/package.zip");
    assert!(!pa.is_empty());
    assert_eq!(pa, pb);
}

const FAILING: &str = r#"work_order_id: failing
steps:
  - step_id: gen
    module_id: gen
    kind: transform
    inputs: {text: "x y"}
  - step_id: bad
    module_id: fail
    kind: transform
  - step_id: after
    module_id: echo_inputs
    kind: transform
    inputs:
      source: {from_step: bad, output_id: never}
  - step_id: independent
    module_id: echo_inputs
    kind: transform
    inputs:
      all_text: {from_step: gen, from_file: lines.txt, selector: text}
"#;

/// SPEC §4: `input_invalid`, `not_enough_credits`, `secrets_missing` and `not_entitled` are
/// found before charging, so nothing is charged. A module that ran was charged: reporting one
/// of them fails closed as `module_failed`, refunded, and the reports never show a kept
/// charge as "nothing charged".
#[test]
fn a_module_reporting_a_before_charging_reason_is_module_failed_and_refunded() {
    let slugs = [
        "input_invalid",
        "not_enough_credits",
        "secrets_missing",
        "not_entitled",
    ];
    let steps: String = slugs
        .iter()
        .map(|s| {
            format!(
                "  - {{step_id: {s}, module_id: fail, kind: transform, inputs: {{slug: {s}}}}}\n"
            )
        })
        .collect();
    let fx = funded_order("liar", &format!("work_order_id: liar\nsteps:\n{steps}"), 50);
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "every step failed: {sum}");
    let run = run_of(&sum, "liar");
    for slug in slugs {
        let step = step_of(run, slug);
        assert_eq!(step["status"], "FAILED", "{step}");
        assert_eq!(step["reason_slug"], "module_failed", "{step}");
        assert!(step["message"].as_str().unwrap().contains(slug), "{step}");
    }
    let refunds = fx.of_type("billing.jsonl", "REFUND");
    assert_eq!(refunds.len(), slugs.len(), "every charge refunded");
    assert!(refunds.iter().all(|r| r["reason_slug"] == "module_failed"));
    assert_eq!(fx.balance(), 50);
    assert_eq!(run["charged_credits"], 16, "{run}");
    assert_eq!(run["refunded_credits"], 16, "{run}");
}

#[test]
fn a_failing_module_gives_partial_with_one_refund_and_a_skipped_downstream_step() {
    let fx = funded_order("failing", FAILING, 50);
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "PARTIAL is not a failure exit: {sum}");
    let run = run_of(&sum, "failing");
    assert_eq!(run["status"], "PARTIAL");
    assert_eq!(step_of(run, "bad")["status"], "FAILED");
    assert_eq!(step_of(run, "bad")["reason_slug"], "module_failed");
    assert_eq!(step_of(run, "after")["status"], "SKIPPED");
    assert_eq!(step_of(run, "after")["reason_slug"], "upstream_failed");
    assert_eq!(step_of(run, "independent")["status"], "COMPLETED");
    let refunds = fx.of_type("billing.jsonl", "REFUND");
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["step_id"], "bad");
    assert_eq!(refunds[0]["amount_credits"], 4);
    assert_eq!(refunds[0]["reason_slug"], "module_failed");
    let spend_bad: Vec<_> = fx
        .of_type("billing.jsonl", "SPEND")
        .into_iter()
        .filter(|s| s["step_id"] == "bad")
        .collect();
    assert_eq!(refunds[0]["refunds"], spend_bad[0]["idempotency_key"]);
    // the skipped step was never charged
    assert!(fx
        .of_type("billing.jsonl", "SPEND")
        .iter()
        .all(|s| s["step_id"] != "after"));
    // gen 2 + bad 4 - 4 + independent 1
    assert_eq!(fx.balance(), 50 - 3);
    // the failing module's stderr is kept with the step
    let log = fx.read_text(&format!("{}/stderr.log", step_dir(run, "bad")));
    assert!(log.contains("failing on purpose"));
}

#[test]
fn fail_fast_skips_the_rest_and_fails_the_run() {
    let fx = funded_order(
        "failing",
        &FAILING.replace(
            "work_order_id: failing\n",
            "work_order_id: failing\nmode: FAIL_FAST\n",
        ),
        50,
    );
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1);
    let run = run_of(&sum, "failing");
    assert_eq!(run["status"], "FAILED");
    assert_eq!(step_of(run, "independent")["reason_slug"], "fail_fast");
    assert_eq!(step_of(run, "independent")["status"], "SKIPPED");
}

#[test]
fn retry_failed_runs_failed_and_skipped_steps_as_the_next_attempt() {
    let fx = Fx::new();
    let marker = fx.path("flaky.marker");
    let wo = FAILING.replace(
        "    module_id: fail\n    kind: transform\n",
        &format!(
            "    module_id: fail\n    kind: transform\n    inputs: {{marker: \"{}\"}}\n",
            marker.display()
        ),
    );
    fx.workorder("failing", &wo);
    fx.topup(50, "r1");
    let (_, sum, _) = fx.orchestrate(&[]);
    assert_eq!(run_of(&sum, "failing")["status"], "PARTIAL");
    // Without --retry-failed the ended run is up to date.
    let (_, sum, _) = fx.orchestrate(&[]);
    assert_eq!(sum["up_to_date"], serde_json::json!(["t1/failing"]));
    let (code, sum, _) = fx.orchestrate(&["--retry-failed"]);
    assert_eq!(code, 0, "{sum}");
    let run = run_of(&sum, "failing");
    assert_eq!(run["action"], "retry");
    assert_eq!(run["run"], 1);
    assert_eq!(run["status"], "COMPLETED");
    assert_eq!(step_of(run, "bad")["attempt"], 2);
    assert_eq!(step_of(run, "after")["attempt"], 2);
    assert_eq!(step_of(run, "gen")["attempt"], 1);
    // attempt 1 charged and refunded, attempt 2 charged
    let bad: Vec<_> = fx
        .of_type("billing.jsonl", "SPEND")
        .into_iter()
        .filter(|s| s["step_id"] == "bad")
        .collect();
    assert_eq!(bad.len(), 2);
    assert_eq!(fx.of_type("billing.jsonl", "REFUND").len(), 1);
    let runs = fx.runs();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["status"], "COMPLETED");
    // and now it is up to date even with --retry-failed
    let before = fx.bytes(".billing-state/billing.jsonl");
    let (_, sum, _) = fx.orchestrate(&["--retry-failed"]);
    assert_eq!(sum["runs"].as_array().unwrap().len(), 0);
    assert_eq!(fx.bytes(".billing-state/billing.jsonl"), before);
}

/// "Why was the tenant charged twice?": a step fails (charged, refunded), `--retry-failed`
/// completes it in attempt 2 and a `rerun` starts run 2. The fixture, and the `run_started`
/// records of run 1 and run 2.
fn retried_then_rerun() -> (Fx, Vec<serde_json::Value>) {
    let fx = Fx::new();
    let marker = fx.path("flaky.marker");
    let wo = format!(
        "work_order_id: flaky\nsteps:\n  - step_id: bad\n    module_id: fail\n    kind: transform\n    inputs: {{marker: \"{}\"}}\n",
        marker.display()
    );
    fx.workorder("flaky", &wo);
    fx.topup(50, "r1");
    assert_eq!(fx.orchestrate(&[]).0, 1, "attempt 1 fails (refunded)");
    assert_eq!(
        fx.orchestrate(&["--retry-failed"]).0,
        0,
        "attempt 2 completes"
    );
    fx.run(&[
        "rerun",
        "--tenant-id",
        "t1",
        "--work-order-id",
        "flaky",
        "--reason",
        "upstream fixed",
        "--actor",
        "tester",
    ])
    .expect_ok();
    assert_eq!(fx.orchestrate(&[]).0, 0, "run 2");
    let starts = fx.of_type("evidence.jsonl", "run_started");
    assert_eq!(starts.len(), 2);
    (fx, starts)
}

/// The statement tells the three charges of [`retried_then_rerun`] apart by run and attempt
/// (text, CSV, JSON). Until 2026-12-03 they read as identical charges.
#[test]
fn the_statement_tells_a_retried_step_and_a_rerun_from_a_double_charge() {
    let (fx, starts) = retried_then_rerun();
    let (id1, id2) = (&starts[0]["run_id"], &starts[1]["run_id"]);

    // JSON: every SPEND and REFUND names its run, run id and attempt; a TOPUP none.
    let st = fx
        .run(&["statement", "--tenant-id", "t1", "--json"])
        .expect_ok()
        .json();
    let rows = st["records"].as_array().unwrap();
    let charges: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap(),
                r["amount_credits"].as_i64().unwrap(),
                r["run"].clone(),
                r["run_id"].clone(),
                r["attempt"].clone(),
            )
        })
        .collect();
    let (n, none) = (|v: u64| serde_json::json!(v), serde_json::Value::Null);
    assert_eq!(
        charges,
        [
            ("TOPUP", 50, none.clone(), none.clone(), none.clone()),
            ("SPEND", -4, n(1), id1.clone(), n(1)),
            ("REFUND", 4, n(1), id1.clone(), n(1)),
            ("SPEND", -4, n(1), id1.clone(), n(2)),
            ("SPEND", -4, n(2), id2.clone(), n(1)),
        ],
        "{st}"
    );

    // CSV: the three columns come last (earlier columns keep their places), numbers as numbers.
    let csv = fx
        .run(&["statement", "--tenant-id", "t1", "--csv"])
        .expect_ok()
        .stdout_text();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].ends_with(",quantity,run,run_id,attempt"), "{csv}");
    let tails: Vec<String> = lines[1..]
        .iter()
        .map(|l| l.rsplitn(4, ',').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    let (s1, s2) = (id1.as_str().unwrap(), id2.as_str().unwrap());
    assert_eq!(
        tails,
        [
            "  ".to_string(),
            format!("1 {s1} 1"),
            format!("1 {s1} 1"),
            format!("2 {s1} 1"),
            format!("1 {s2} 2"),
        ],
        "attempt, run_id, run from the right: {csv}"
    );

    // Text: the run and the attempt beside the work order and the step.
    let text = fx
        .run(&["statement", "--tenant-id", "t1"])
        .expect_ok()
        .stdout_text();
    let header: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        header[5..9],
        ["work_order_id", "run", "step_id", "attempt"],
        "{text}"
    );
    let spends: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.contains(" SPEND "))
        .map(|l| l.split_whitespace().skip(5).take(4).collect())
        .collect();
    assert_eq!(
        spends,
        [
            ["flaky", "1", "bad", "1"],
            ["flaky", "1", "bad", "2"],
            ["flaky", "2", "bad", "1"]
        ],
        "{text}"
    );
}

/// `runs` gives each run of [`retried_then_rerun`] its start time, why it started and its
/// credits, equal to the ledger's SPEND/REFUND sums of its run_id, and shows the attempt.
/// Until 2026-12-03 it had no credits or times, and the text no attempt.
#[test]
fn runs_show_each_runs_start_credits_and_attempts() {
    let (fx, starts) = retried_then_rerun();
    let (id1, id2) = (&starts[0]["run_id"], &starts[1]["run_id"]);
    let (s1, s2) = (id1.as_str().unwrap(), id2.as_str().unwrap());
    // --json: the pinned keys, plus when, why and what each run charged and refunded.
    let runs = fx.runs();
    let billing = fx.billing();
    let sum = |ty: &str, run_id: &serde_json::Value| -> i64 {
        billing
            .iter()
            .filter(|r| r["type"] == ty && &r["run_id"] == run_id)
            .map(|r| r["amount_credits"].as_i64().unwrap().abs())
            .sum()
    };
    for (i, (run_id, charged, refunded)) in [(id1, 8, 4), (id2, 4, 0)].into_iter().enumerate() {
        let run = &runs[i];
        assert_eq!(&run["run_id"], run_id, "{runs}");
        assert_eq!(run["started_at"], starts[i]["recorded_at"], "{runs}");
        assert_eq!(
            (
                run["charged_credits"].as_i64(),
                run["refunded_credits"].as_i64()
            ),
            (Some(charged), Some(refunded)),
            "{runs}"
        );
        assert_eq!(
            (sum("SPEND", run_id), sum("REFUND", run_id)),
            (charged, refunded)
        );
    }
    assert_eq!(runs[0]["steps"][0]["attempt"], 2);
    assert_eq!(runs[0]["rerun"], serde_json::Value::Null);
    assert_eq!(runs[1]["rerun"], "rerun/t1/flaky/after-r1");

    // runs (text): the start time, the credits, and the attempt when above 1.
    let text = fx.run(&["runs"]).expect_ok().stdout_text();
    let cols: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let started = |i: usize| starts[i]["recorded_at"].as_str().unwrap();
    assert_eq!(
        cols,
        [
            vec![
                "t1/flaky",
                "1",
                s1,
                "-",
                started(0),
                "COMPLETED",
                "8",
                "4",
                "bad=COMPLETED(attempt=2)"
            ],
            vec![
                "t1/flaky",
                "2",
                s2,
                "-",
                started(1),
                "COMPLETED",
                "4",
                "0",
                "bad=COMPLETED"
            ],
        ],
        "{text}"
    );
}

#[test]
fn not_enough_credits_charges_nothing_then_a_topup_lets_it_run() {
    let fx = Fx::new();
    fx.workorder("chain", CHAIN);
    fx.topup(5, "small");
    let before = fx.bytes(".billing-state/billing.jsonl");
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1);
    let run = run_of(&sum, "chain");
    assert_eq!(run["status"], "FAILED");
    for s in run["steps"].as_array().unwrap() {
        assert_eq!(s["status"], "FAILED");
        assert_eq!(s["reason_slug"], "not_enough_credits");
    }
    assert_eq!(
        fx.bytes(".billing-state/billing.jsonl"),
        before,
        "nothing charged"
    );
    assert_eq!(fx.balance(), 5);
    fx.topup(10, "more");
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0);
    assert_eq!(run_of(&sum, "chain")["status"], "COMPLETED");
    assert_eq!(run_of(&sum, "chain")["run"], 1);
    assert_eq!(fx.balance(), 7);
}

#[test]
fn a_hanging_module_is_killed_at_its_timeout_and_refunded() {
    let fx = funded_order(
        "slow",
        "work_order_id: slow\nsteps:\n  - {step_id: wait, module_id: hang, kind: transform}\n",
        10,
    );
    let t0 = std::time::Instant::now();
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1);
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(25),
        "the module was not killed"
    );
    let run = run_of(&sum, "slow");
    assert_eq!(step_of(run, "wait")["reason_slug"], "timeout");
    assert_eq!(fx.of_type("billing.jsonl", "REFUND").len(), 1);
    assert_eq!(fx.balance(), 10);
}

#[test]
fn a_secret_reaches_only_the_module_that_declares_it_and_never_leaks() {
    let fx = funded_order("secrets", "work_order_id: secrets\nsteps:\n  - {step_id: dump, module_id: envdump, kind: transform}\n  - {step_id: use, module_id: secretuser, kind: transform}\n", 10);
    let canary = "canary-9f3b2c71-value";
    let out = fx.run_env(
        &["orchestrator", "--json"],
        &[("PLATFORM_SECRET_CANARY", canary)],
    );
    let sum = out.expect_ok().json();
    let run = run_of(&sum, "secrets");
    let env = fx.read_text(&format!("{}/outputs/env.txt", step_dir(run, "dump")));
    assert!(!env.contains("CANARY"), "{env}");
    assert!(env.contains("PLATFORM_INPUTS="));
    assert!(!env.contains("HOME="), "the environment is clean: {env}");
    let note = fx.read_text(&format!("{}/outputs/note.txt", step_dir(run, "use")));
    assert_eq!(note, format!("secret length {}\n", canary.len()));
    let stdout_log = fx.read_text(&format!("{}/stdout.log", step_dir(run, "use")));
    assert_has(&stdout_log, "my secret is [REDACTED]");
    // Nowhere: not in the ledger, the runtime dir (outputs aside, which hold only a length), stdout, stderr.
    for (path, bytes) in fx
        .all_bytes_under(".billing-state")
        .into_iter()
        .chain(fx.all_bytes_under("runtime"))
    {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(canary),
            "leaked into {}",
            path.display()
        );
    }
    assert!(!String::from_utf8_lossy(&out.stdout).contains(canary));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(canary));
}

#[test]
fn a_missing_secret_refuses_the_run_before_charging() {
    let fx = funded_order("secrets", "work_order_id: secrets\nsteps:\n  - {step_id: use, module_id: secretuser, kind: transform}\n", 10);
    let before = fx.bytes(".billing-state/billing.jsonl");
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1);
    assert_eq!(
        step_of(run_of(&sum, "secrets"), "use")["reason_slug"],
        "secrets_missing"
    );
    assert_eq!(fx.bytes(".billing-state/billing.jsonl"), before);
}

#[test]
fn dry_run_prints_the_priced_plan_and_writes_nothing() {
    let fx = funded_order("chain", CHAIN, 100);
    let billing = fx.bytes(".billing-state/billing.jsonl");
    let evidence = fx.bytes(".billing-state/evidence.jsonl");
    let text = fx
        .run(&["orchestrator", "--dry-run"])
        .expect_ok()
        .stdout_text();
    assert_has(&text, "new charges: 8 credits");
    assert_has(&text, "__run__ 2, data 3");
    assert!(
        text.contains("100") && text.contains("92"),
        "balance before/after: {text}"
    );
    let (_, sum, _) = fx.orchestrate(&["--dry-run"]);
    assert_eq!(sum["plan"]["tenants"][0]["balance_after"], 92);
    assert_eq!(fx.bytes(".billing-state/billing.jsonl"), billing);
    assert_eq!(fx.bytes(".billing-state/evidence.jsonl"), evidence);
    assert!(!fx.path("runtime").exists());
}

/// The pass's summary is streamed to stdout (never held whole as a JSON value): the bytes are
/// still one pretty document with every object's keys sorted, as `serde_json` prints a value.
#[test]
fn the_json_summary_streamed_is_the_pretty_document_of_its_value() {
    let fx = funded_order("chain", CHAIN, 100);
    for args in [
        &["orchestrator", "--dry-run", "--json"][..],
        &["orchestrator", "--json"],
        &["orchestrator", "--json"],
    ] {
        let printed = fx.run(args).expect_ok().stdout_text();
        let value: serde_json::Value = serde_json::from_str(&printed).unwrap_or_default();
        let pretty = serde_json::to_string_pretty(&value).unwrap_or_default();
        assert_eq!(printed, format!("{pretty}\n"), "{args:?}");
        assert_eq!(value["schema_version"], 1, "{args:?}");
        let keys: Vec<&String> = value
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert!(
            keys.contains(&&"runs".to_string()) && keys.is_sorted(),
            "{keys:?}"
        );
    }
}

#[test]
fn an_invalid_work_order_is_reported_and_the_others_still_run() {
    let fx = Fx::new();
    fx.workorder("chain", CHAIN);
    fx.workorder(
        "broken",
        "work_order_id: broken\nsteps:\n  - {step_id: a, module_id: nosuchmodule, kind: transform}\n",
    );
    fx.topup(100, "r1");
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1);
    assert_eq!(run_of(&sum, "chain")["status"], "COMPLETED");
    assert_eq!(sum["invalid"][0]["work_order_id"], "broken");
    assert!(sum["invalid"][0]["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("nosuchmodule"));
}

#[test]
fn filters_select_work_orders() {
    let fx = Fx::new();
    fx.workorder("chain", CHAIN);
    fx.workorder("failing", FAILING);
    fx.topup(100, "r1");
    let (_, sum, _) = fx.orchestrate(&["--work-order-id", "chain"]);
    assert_eq!(sum["runs"].as_array().unwrap().len(), 1);
    assert_eq!(sum["runs"][0]["work_order_id"], "chain");
    // A tenant neither in tenants/ nor in the ledger is a typo: exit 2, nothing run.
    let (code, doc, _) = fx.orchestrate(&["--tenant-id", "nobody"]);
    assert_eq!(code, 2, "{doc}");
    assert_eq!(doc["error"]["topic"], "error:unknown_tenant");
    assert_eq!(fx.of_type("evidence.jsonl", "run_started").len(), 1);
}

#[test]
fn a_crash_after_the_charge_resumes_without_charging_twice() {
    let fx = funded_order("chain", CHAIN, 100);
    crash_after_first_charge(&fx);
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}");
    let run = run_of(&sum, "chain");
    assert_eq!(run["action"], "resume");
    assert_eq!(run["status"], "COMPLETED");
    let spends = fx.of_type("billing.jsonl", "SPEND");
    let mut keys: Vec<&str> = spends
        .iter()
        .map(|s| s["idempotency_key"].as_str().unwrap())
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
    assert_eq!(n, 5);
    assert_eq!(fx.balance(), 92);
    assert_eq!(fx.of_type("evidence.jsonl", "run_started").len(), 1);
    fx.integrity().unwrap();
}

#[test]
fn a_second_orchestrator_waits_for_the_lock_then_finds_the_work_done() {
    let fx = funded_order(
        "slow",
        "work_order_id: slow\nsteps:\n  - {step_id: wait, module_id: hang, kind: transform}\n",
        10,
    );
    let first = fx
        .command()
        .arg("orchestrator")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, sum, stderr) = fx.orchestrate(&["--lock-timeout", "60"]);
    let mut first = first;
    first.wait().unwrap();
    assert_eq!(
        fx.of_type("evidence.jsonl", "run_started").len(),
        1,
        "{sum} {stderr}"
    );
    assert_eq!(code, 0, "{sum}");
    assert_eq!(sum["up_to_date"], serde_json::json!(["t1/slow"]));
}

#[test]
fn usage_errors_exit_2_and_come_as_json_with_json() {
    let fx = Fx::new();
    let out = fx.run(&["orchestrator", "--shard", "4/3", "--json"]);
    let doc = out.expect_code(2).json();
    assert_eq!(doc["error"]["exit_code"], 2);
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--shard"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("help:"));
}

#[test]
fn a_charged_step_whose_inputs_are_gone_after_a_crash_is_refunded() {
    // A crash right after echo's charge, then a pass on a fresh runner: the runtime folder,
    // and gen's outputs that echo reads, are gone. echo cannot run; it was charged, so it
    // fails refundably and every SPEND of it is reversed (SPEC §7: no charge is stranded).
    let fx = funded_order("chain", CHAIN, 100);
    let out = fx.run_env(
        &["orchestrator"],
        &[("PLATFORM_FAILPOINT", "after_step_started@2")],
    );
    assert!(!out.status.success(), "the failpoint aborts the process");
    let spends_of = |step: &str| -> Vec<serde_json::Value> {
        fx.of_type("billing.jsonl", "SPEND")
            .into_iter()
            .filter(|s| s["step_id"] == step)
            .collect()
    };
    let echo = spends_of("echo");
    assert!(!echo.is_empty(), "echo was charged before the crash");
    std::fs::remove_dir_all(fx.path("runtime")).unwrap();
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "gen completed, so the run is PARTIAL: {sum}");
    let run = run_of(&sum, "chain");
    assert_eq!(run["action"], "resume");
    assert_eq!(run["status"], "PARTIAL");
    let step = step_of(run, "echo");
    assert_eq!(step["status"], "FAILED", "{run}");
    assert_eq!(step["reason_slug"], "module_failed", "{run}");
    let refunds = fx.of_type("billing.jsonl", "REFUND");
    let mut reversed: Vec<&str> = refunds
        .iter()
        .map(|r| r["refunds"].as_str().unwrap())
        .collect();
    reversed.sort();
    let mut charged: Vec<&str> = echo
        .iter()
        .map(|s| s["idempotency_key"].as_str().unwrap())
        .collect();
    charged.sort();
    assert_eq!(reversed, charged, "exactly echo's charges are refunded");
    let gen: i64 = spends_of("gen")
        .iter()
        .map(|s| s["amount_credits"].as_i64().unwrap())
        .sum();
    assert_eq!(
        fx.balance(),
        100 + gen,
        "only gen, which ran, keeps its charge"
    );
    fx.integrity().unwrap();
    let (_, again, _) = fx.orchestrate(&[]);
    assert_eq!(
        again["up_to_date"],
        serde_json::json!(["t1/chain"]),
        "{again}"
    );
    assert_eq!(fx.of_type("billing.jsonl", "REFUND").len(), refunds.len());
}

#[test]
fn runs_lists_each_runs_steps_in_work_order_order_whatever_was_charged() {
    // a fails (charged, refunded), b reads a and is skipped (never charged), c completes:
    // billing.jsonl knows a and c only, and is read first; the steps are still a, b, c.
    let fx = funded_order(
        "order",
        "work_order_id: order\nsteps:\n  - {step_id: a, module_id: fail, kind: transform}\n  - {step_id: b, module_id: slow, kind: transform, inputs: {text: {from_step: a, from_file: never.txt, selector: text}, delay_ms: 1}}\n  - {step_id: c, module_id: gen, kind: transform, inputs: {text: x}}\n",
        20,
    );
    let (_, sum, _) = fx.orchestrate(&[]);
    let ids = |steps: &serde_json::Value| -> Vec<String> {
        steps
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["step_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(&run_of(&sum, "order")["steps"]),
        ["a", "b", "c"],
        "{sum}"
    );
    let runs = fx.runs();
    assert_eq!(ids(&runs[0]["steps"]), ["a", "b", "c"], "{runs}");
    let statuses: Vec<&str> = runs[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["FAILED", "SKIPPED", "COMPLETED"]);
}

#[test]
fn an_unknown_work_order_id_is_a_typo_exit_2_and_a_deleted_one_with_runs_is_known() {
    let fx = funded_order("chain", CHAIN, 100);
    let before = fx.ledger_bytes(".billing-state");
    let (code, doc, _) = fx.orchestrate(&["--work-order-id", "chian"]);
    assert_eq!(code, 2, "{doc}");
    assert_has(
        doc["error"]["message"].as_str().unwrap(),
        "unknown work order 'chian'",
    );
    assert_has(
        doc["error"]["help"].as_str().unwrap(),
        "did you mean 'chain'?",
    );
    assert_eq!(fx.ledger_bytes(".billing-state"), before, "nothing written");
    // With --tenant-id, the tenant's own work orders are the known ones.
    let (code, _, _) = fx.orchestrate(&["--tenant-id", "t1", "--work-order-id", "chain"]);
    assert_eq!(code, 0);
    // A work order deleted from the repository is known by its runs: its pass is a no-op.
    std::fs::remove_file(fx.path("tenants/t1/workorders/chain.yml")).unwrap();
    let (code, sum, _) = fx.orchestrate(&["--work-order-id", "chain"]);
    assert_eq!(code, 0, "{sum}");
}

#[test]
fn runs_with_an_unknown_work_order_id_exits_2_with_the_closest_ones() {
    let fx = funded_order("chain", CHAIN, 100);
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}");
    // Until 2026-12-03: "no runs recorded in ./.billing-state", exit 0, though it has runs.
    let out = fx.run(&["runs", "--work-order-id", "chian"]);
    out.expect_code(2);
    assert_has(&out.stderr_text(), "unknown work order 'chian'");
    assert_has(
        &out.stderr_text(),
        "help: did you mean 'chain'? (known: chain)",
    );
    assert!(out.stdout.is_empty(), "{}", out.text());
    let out = fx.run(&["runs", "--tenant-id", "t1", "--work-order-id", "chain"]);
    out.expect_ok();
    assert_has(&out.stdout_text(), "t1/chain");
    // A work-order file that never ran is known: nothing matched, and the message says so.
    fx.workorder(
        "fresh",
        &CHAIN.replace("work_order_id: chain", "work_order_id: fresh"),
    );
    let out = fx.run(&["runs", "--work-order-id", "fresh"]);
    out.expect_ok();
    assert_has(
        &out.stdout_text(),
        "no runs of work order fresh recorded in",
    );
    // A work order deleted from the repository is known by its runs.
    std::fs::remove_file(fx.path("tenants/t1/workorders/chain.yml")).unwrap();
    let out = fx.run(&["runs", "--work-order-id", "chain"]);
    out.expect_ok();
    assert_has(&out.stdout_text(), "t1/chain");
}

#[test]
fn a_packaged_path_that_starts_like_a_formula_is_text_in_manifest_csv() {
    let fx = funded_order(
        "chain",
        &CHAIN.replace("as_path: data.json", "as_path: \"=data.json\""),
        100,
    );
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{summary}");
    let pack = step_dir(run_of(&summary, "chain"), "pack");
    let csv = fx.read_text(&format!("{pack}/outputs/manifest.csv"));
    let row = csv
        .lines()
        .find(|l| l.contains("data.json"))
        .unwrap_or_else(|| panic!("no row: {csv}"));
    assert!(row.starts_with("'=data.json,"), "{csv}");
    // manifest.json and the ZIP keep the name as it is.
    let json = fx.read_text(&format!("{pack}/outputs/manifest.json"));
    assert!(json.contains("\"path\": \"=data.json\""), "{json}");
}
