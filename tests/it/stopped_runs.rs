//! A run the pass stops on mid-way (a ledger refusal after a charge, an injected error), on the real binary: its report keeps what the pass posted, says why in every summary, and a credits cause lists its tenant.
use crate::support::check::find;
use crate::support::fx::adjust_args;
use crate::support::orch::{pass_with_closing_held, run_of, step_of, CHAIN};
use crate::support::{Fx, Transcript};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The usage fixture with `slowmeter` (1 credit to run, 2 a page, at most 10), which sleeps
/// 1.5 s and reports 10 pages, and one work order `m` running it, funded with 21 credits.
fn slow_metered() -> Fx {
    let fx = Fx::new().overlay("usage", "");
    fx.write(
        "modules/slowmeter/module.yml",
        "module_id: slowmeter\nversion: \"1\"\nkind: transform\nrunner: {command: [\"./run.sh\"]}\noutputs:\n  - {id: done, type: file, path: done.txt}\npricing:\n  run_credits: 1\n  usage:\n    pages: {credits: 2, max_units: 10}\n",
    );
    fx.write(
        "modules/slowmeter/run.sh",
        "#!/bin/sh\nsleep 1.5\necho done >\"$PLATFORM_OUTPUTS_DIR/done.txt\"\nprintf '{\"usage\": {\"pages\": 10}}' >\"$PLATFORM_RESULT\"\n",
    );
    use std::os::unix::fs::PermissionsExt;
    let script = fx.path("modules/slowmeter/run.sh");
    std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).unwrap();
    fx.workorder(
        "m",
        "work_order_id: m\nsteps:\n  - step_id: count\n    module_id: slowmeter\n    kind: transform\n",
    );
    fx.topup(21, "r1");
    fx
}

/// One pass (`args`, the job summary to `summary.md`) during which, once the step has
/// started (and its run credit is charged), another process debits t1 by 5: the 20 credits
/// of usage are then refused by the ledger. The pass's output and the billing records it
/// appended.
fn pass_with_debit_meanwhile(fx: &Fx, args: &[&str]) -> (std::process::Output, Vec<Value>) {
    let before = fx.billing().len();
    let child = fx
        .command()
        .args(args)
        .env("GITHUB_STEP_SUMMARY", fx.path("summary.md"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !fx
        .records("evidence.jsonl")
        .iter()
        .any(|r| r["type"] == "step_started")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut adjust = adjust_args("-5", "correction", "CASE-1");
    adjust.extend(["--actor".to_string(), "tester".to_string()]);
    let adjust: Vec<&str> = adjust.iter().map(String::as_str).collect();
    fx.run(&adjust).expect_ok();
    let out = child.wait_with_output().unwrap();
    let appended = fx.billing().split_off(before);
    (out, appended)
}

/// Credits the SPEND records among `records` charged (positive).
fn spent(records: &[Value]) -> i64 {
    records
        .iter()
        .filter(|r| r["type"] == "SPEND")
        .map(|r| -r["amount_credits"].as_i64().unwrap())
        .sum()
}

#[test]
fn usage_refused_by_a_debit_meanwhile_keeps_the_pass_charge_the_step_and_the_reason() {
    let fx = slow_metered();
    let (out, appended) = pass_with_debit_meanwhile(&fx, &["orchestrator", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let summary = out.json();
    assert_eq!(spent(&appended), 1, "the run credit only: {appended:?}");
    assert_eq!(summary["charged_credits"], 1, "{summary}");
    assert_eq!(summary["refunded_credits"], 0, "{summary}");
    let run = run_of(&summary, "m");
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(run["charged_credits"], 1, "{run}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("metered usage of step 'count' (20 credits) was refused"),
        "{run}"
    );
    // The step's outcome is in the ledger: the report shows it as recorded.
    let step = step_of(run, "count");
    assert_eq!(step["status"], "COMPLETED", "{run}");
    assert!(step.get("usage").is_none(), "no usage was charged: {run}");
    let low = find(&summary["low_balance"], "tenant_id", "t1");
    assert_eq!(low["reason"], "refused_for_credits", "{summary}");
    assert_eq!(low["balance_credits"], 15, "21 - 1 - 5: {summary}");
    let md = fx.read_text("summary.md");
    assert!(md.contains("| t1/m | 1 | ❌ FAILED | 1 | 0 |"), "{md}");
    assert!(
        md.contains("stopped: `the metered usage of step 'count' (20 credits) was refused"),
        "{md}"
    );
    assert!(md.contains("refused_for_credits"), "{md}");
}

#[test]
fn the_text_summary_says_why_the_pass_stopped_on_a_run_and_lists_its_tenant() {
    let fx = slow_metered();
    let (out, _) = pass_with_debit_meanwhile(&fx, &["orchestrator"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let row = text
        .lines()
        .find(|l| l.starts_with("t1/m "))
        .unwrap_or_else(|| panic!("no row of t1/m: {text}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[1..6], ["1", "start", "FAILED", "1", "0"], "{text}");
    assert!(
        text.contains("    stopped: the metered usage of step 'count' (20 credits) was refused"),
        "{text}"
    );
    assert!(
        text.contains("low balance: t1 has 15 credits (a run was refused for credits)"),
        "{text}"
    );
}

#[test]
fn an_error_after_a_charge_reports_what_the_pass_posted_of_the_run() {
    // gen is charged and completes; the next charge of the run fails (an injected error).
    let fx = Fx::new();
    fx.workorder("chain", CHAIN);
    fx.topup(100, "r1");
    let before = fx.billing().len();
    let out = fx.run_env(
        &["orchestrator", "--json"],
        &[("PLATFORM_FAILPOINT", "error:before_spend@2")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let summary = out.json();
    let appended = fx.billing().split_off(before);
    let charged = spent(&appended);
    assert!(charged > 0, "{appended:?}");
    assert_eq!(summary["charged_credits"], charged, "{summary}");
    let run = run_of(&summary, "chain");
    assert_eq!(run["charged_credits"], charged, "{run}");
    assert_eq!(step_of(run, "gen")["status"], "COMPLETED", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap_or_default()
            .contains("failpoint error:before_spend"),
        "{run}"
    );
}

#[test]
fn a_resumed_run_owing_usage_counts_it_in_the_plan_and_the_credits_gate() {
    let fx = slow_metered();
    let (out, _) = pass_with_debit_meanwhile(&fx, &["orchestrator", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    assert_eq!(fx.balance(), 15);
    // The plan resumes the run: its kept step owes 20 credits of usage, which 15 don't cover.
    let (code, dry, _) = fx.orchestrate(&["--dry-run"]);
    assert_eq!(code, 1, "{dry}");
    let wp = &dry["plan"]["work_orders"][0];
    assert_eq!(wp["action"], "resume", "{dry}");
    assert_eq!(wp["new_charges"], 20, "{dry}");
    assert_eq!(wp["refused"]["not_enough_credits"]["needed"], 20, "{dry}");
    let kept = &wp["steps"][0];
    assert_eq!(kept["disposition"], "keep", "{dry}");
    assert_eq!(kept["charges"][0]["deliverable_id"], "pages", "{dry}");
    assert_eq!(kept["charges"][0]["amount_credits"], 20, "{dry}");
    let text = fx.run(&["orchestrator", "--dry-run"]).text();
    assert!(text.contains("pages 20"), "{text}");
    assert!(text.contains("new charges: 20 credits"), "{text}");
    // The pass refuses it before charging anything, and says whom to top up.
    let before = fx.billing().len();
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "{summary}");
    assert!(run_of(&summary, "m")["refused"].is_string(), "{summary}");
    assert_eq!(fx.billing().len(), before, "nothing written");
    let low = find(&summary["low_balance"], "tenant_id", "t1");
    assert_eq!(low["reason"], "refused_for_credits", "{summary}");
    // Topped up: the owed usage is charged once and the run ends.
    fx.topup(5, "r2");
    let (code, summary, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{summary}");
    let run = run_of(&summary, "m");
    assert_eq!(run["status"], "COMPLETED", "{run}");
    assert_eq!(run["charged_credits"], 20, "{run}");
    assert_eq!(fx.balance(), 0, "21 + 5 - 5 - 1 - 20");
    fx.integrity().unwrap();
}

/// A run whose usage the ledger refused (a debit meanwhile) owes it; when its work order then
/// changes, the run is closed as superseded and the closing charges what it owes, as a resume
/// would. While the balance cannot cover it, the closing stops (exit 1, nothing written, the
/// run stays open and nothing else of the work order runs); after a top-up the next pass
/// closes it. Until 2026-12-03 the closing ended the run without the usage: the tenant's edit
/// saved it 20 credits.
#[test]
fn closing_a_superseded_run_charges_the_usage_its_completed_step_owes() {
    let fx = slow_metered();
    let (out, _) = pass_with_debit_meanwhile(&fx, &["orchestrator", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    assert_eq!(fx.balance(), 15, "21 - 1 - 5; 20 credits of usage owed");
    fx.workorder(
        "m",
        "work_order_id: m\nmode: FAIL_FAST\nsteps:\n  - step_id: count\n    module_id: slowmeter\n    kind: transform\n",
    );
    let before = fx.billing().len();
    let (code, summary, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "{summary}\n{stderr}");
    assert!(
        summary
            .to_string()
            .contains("owes 20 credits of metered usage"),
        "{summary}"
    );
    assert_eq!(fx.billing().len(), before, "nothing charged");
    assert_eq!(
        fx.runs().as_array().map(Vec::len),
        Some(1),
        "run 2 did not start"
    );

    fx.topup(100, "r2");
    let dry = fx.run(&["orchestrator", "--dry-run"]);
    assert!(
        dry.stdout_text()
            .contains("charges 20 credits of owed usage"),
        "{}",
        dry.text()
    );
    let (code, summary, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{summary}\n{stderr}");
    let usage: Vec<Value> = fx
        .billing()
        .into_iter()
        .filter(|r| r["quantity"].is_u64())
        .collect();
    assert_eq!(usage.len(), 2, "{usage:?}");
    assert_eq!(
        (
            usage[0]["run"].as_u64(),
            usage[0]["amount_credits"].as_i64()
        ),
        (Some(1), Some(-20))
    );
    assert_eq!(
        fx.balance(),
        115 - 20 - 1 - 20,
        "run 1's owed usage, then run 2"
    );
    let runs = fx.runs();
    // A closed run is PARTIAL when a step completed (docs/orchestrator.md).
    assert_eq!(runs[0]["status"], "PARTIAL", "{runs}");
    assert_eq!(runs[0]["charged_credits"], 21, "{runs}");
    fx.integrity().unwrap();
}

/// `runs` on a run a `--retry-failed` pass left open after charging a step's new attempt: the
/// step is shown as that attempt, STARTED, and the run RUNNING (docs/cli.md). Until
/// 2026-12-03 the step showed its earlier, refunded attempt FAILED, and the statement's new
/// charge matched no step the report showed.
#[test]
fn runs_shows_the_attempt_a_stopped_retry_charged() {
    let fx = Fx::new();
    fx.workorder(
        "w",
        "work_order_id: w\nsteps:\n  - step_id: s1\n    module_id: slow\n    kind: transform\n    inputs: {text: w, delay_ms: 10, fail: true}\n    deliverables: [result]\n",
    );
    fx.topup(20, "r1");
    fx.run(&["orchestrator"]).expect_code(1);
    let out = fx.run_env(
        &["orchestrator", "--retry-failed"],
        &[("PLATFORM_FAILPOINT", "after_step_started@1")],
    );
    assert_ne!(out.status.code(), Some(0), "{}", out.text());
    let runs = fx.run(&["runs", "--json"]).expect_ok().json();
    let run = &runs[0];
    assert_eq!(run["status"], "RUNNING", "{runs}");
    assert_eq!(run["steps"][0]["status"], "STARTED", "{runs}");
    assert_eq!(run["steps"][0]["attempt"], 2, "{runs}");
    assert_eq!(run["steps"][0]["reason_slug"], Value::Null, "{runs}");
    let attempt2 = fx
        .records("billing.jsonl")
        .into_iter()
        .filter(|r| r["type"] == "SPEND" && r["attempt"] == 2)
        .count();
    assert_eq!(attempt2, 2, "attempt 2 was charged (run and deliverable)");
}

/// A step charged before a crash is resumed with the batch it was charged, whatever the
/// module's prices say now: the plan, the credits gate and the pass report count nothing new
/// for it. Here `data` cost 0 when s1 was charged (2 credits) and 3 at the resume; the 5
/// credits left are exactly s2's charges. Until 2026-12-04 the plan counted s1's `data` as
/// a new charge: the resume was refused ("balance 5 does not cover 8"), the run stayed open
/// holding s1's charge, and with enough credits the report said 8 charged while the ledger
/// got 5.
#[test]
fn a_resumed_step_is_gated_and_reported_for_the_batch_it_was_charged() {
    let fx = Fx::new();
    let gen = fx.read_text("modules/gen/module.yml");
    let priced = |data: u32| gen.replace("data: 3}", &format!("data: {data}}}"));
    fx.write("modules/gen/module.yml", priced(0));
    fx.workorder(
        "w",
        "work_order_id: w\nsteps:\n  - {step_id: s1, module_id: gen, kind: transform, inputs: {text: a}, deliverables: [data]}\n  - {step_id: s2, module_id: gen, kind: transform, inputs: {text: b}, deliverables: [data]}\n",
    );
    fx.topup(7, "r1");
    let out = fx.run_env(
        &["orchestrator"],
        &[("PLATFORM_FAILPOINT", "after_spend@1")],
    );
    assert!(!out.status.success(), "the failpoint aborts the pass");
    assert_eq!(fx.balance(), 5, "s1 charged its run credits only");
    fx.write("modules/gen/module.yml", priced(3));
    let (code, dry, _) = fx.orchestrate(&["--dry-run"]);
    assert_eq!(code, 0, "{dry}");
    let wp = &dry["plan"]["work_orders"][0];
    assert_eq!(
        (&wp["action"], &wp["new_charges"]),
        (&"resume".into(), &5.into()),
        "{dry}"
    );
    let s1 = &wp["steps"][0]["charges"];
    assert_eq!(
        s1.as_array().map(Vec::len),
        Some(1),
        "s1's recorded batch: {dry}"
    );
    assert_eq!(
        (&s1[0]["deliverable_id"], &s1[0]["already_charged"]),
        (&"__run__".into(), &true.into())
    );
    for jobs in ["1", "8"] {
        let fx = fx.fork();
        let (code, summary, _) = fx.orchestrate(&["--jobs", jobs]);
        assert_eq!(code, 0, "--jobs {jobs}: {summary}");
        let run = run_of(&summary, "w");
        assert_eq!(run["status"], "COMPLETED", "{run}");
        assert_eq!(run["charged_credits"], 5, "what this pass posted: {run}");
        assert_eq!(fx.balance(), 0, "7 - 2 - 5");
        assert_eq!(fx.runs()[0]["charged_credits"], 7, "{}", fx.runs());
        fx.integrity().unwrap();
    }
}

/// What a pass over `fx` came to, for comparing passes: its exit code, the balance, and per
/// run its work order, action, status, credits charged and refunded, and whether it was
/// refused.
fn outcome(fx: &Fx, code: i32, summary: &Value) -> (i32, i64, Vec<String>) {
    let runs = summary["runs"].as_array().cloned().unwrap_or_default();
    let rows = runs
        .iter()
        .map(|r| {
            format!(
                "{} r{} {} {} charged {} refunded {} refused {}",
                r["work_order_id"],
                r["run"],
                r["action"],
                r["status"],
                r["charged_credits"],
                r["refunded_credits"],
                r["refused"].is_string()
            )
        })
        .collect();
    (code, fx.balance(), rows)
}

/// SPEC §8: a closing that charges owed usage leaves what `--jobs 1` leaves, whatever runs
/// beside it. Run 1 of `m` (disabled) owes 20 credits of usage; t1 has 30; `x` needs 21
/// (1 to run, 20 of usage reserve). The pass closes m first (30 - 20 = 10) and refuses x,
/// and the dry run says so. Until 2026-12-04 the planner left the owed usage out of the
/// tenant's balance: `--dry-run` said "balance after 9" with x running, and with `--jobs 2`
/// x could hold its 21 credits while the closing waited (here: paused before it began), so
/// the closing stopped for credits and x ran — with `--jobs 1` the closing was charged and
/// x refused.
#[test]
fn a_closing_owing_usage_leaves_what_jobs_1_leaves_and_the_dry_run_says_so() {
    let fx = slow_metered();
    let (out, _) = pass_with_debit_meanwhile(&fx, &["orchestrator", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    fx.workorder(
        "m",
        "work_order_id: m\nenabled: false\nsteps:\n  - step_id: count\n    module_id: slowmeter\n    kind: transform\n",
    );
    fx.workorder(
        "x",
        "work_order_id: x\nsteps:\n  - step_id: count\n    module_id: slowmeter\n    kind: transform\n",
    );
    fx.topup(15, "r2");
    assert_eq!(fx.balance(), 30);
    let (_, dry, _) = fx.orchestrate(&["--dry-run"]);
    let plan = &dry["plan"];
    assert_eq!(plan["tenants"][0]["balance_after"], 10, "{dry}");
    let x = find(&plan["work_orders"], "work_order_id", "x");
    assert_eq!(
        x["refused"]["not_enough_credits"]["balance"], 10,
        "30 less the 20 the closing charges: {dry}"
    );

    let alone = fx.fork();
    let (code, summary, _) = alone.orchestrate(&["--jobs", "1"]);
    let one = outcome(&alone, code, &summary);
    assert_eq!(one.1, 10, "{summary}");
    assert!(run_of(&summary, "x")["refused"].is_string(), "{summary}");

    let args = ["orchestrator", "--json", "--jobs", "2"];
    let out = pass_with_closing_held(&fx, &args, "x");
    let two = outcome(&fx, out.status.code().unwrap_or(-1), &out.json());
    assert_eq!(two, one, "--jobs 2 against --jobs 1");
    fx.integrity().unwrap();
}
