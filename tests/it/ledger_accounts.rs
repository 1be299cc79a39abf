//! Each run's account across files: billing.jsonl forged alone and re-chained (no signing keys, the default setup) against what evidence.jsonl says of the run — its tenant and work order, and the credits its `run_ended` states — and the histories a crash in a `--retry-failed` pass leaves, which must still pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::check::assert_has;
use crate::support::ledger_fixtures::{forge, read, records_of};
use crate::support::orch::run_of;
use crate::support::{Fx, Transcript};
use serde_json::{json, Map, Value};

/// One step, 2 + 3 credits.
const ONE: &str = "work_order_id: one\nsteps:\n  - step_id: gen\n    module_id: gen\n    kind: transform\n    inputs: {text: \"a b\"}\n    deliverables: [data]\n";

/// A step that always fails (module_failed, refundable): 4 credits charged, then refunded.
const FLAKY: &str = "work_order_id: flaky\nsteps:\n  - step_id: bad\n    module_id: fail\n    kind: transform\n    inputs: {}\n";

type Rec = Map<String, Value>;

/// t1 ran `one`, `two` and `flaky` once each (100 topped up, 90 left); t2 has 50 credits.
fn ran() -> Fx {
    let fx = Fx::new();
    fx.add_tenant("t2");
    fx.workorder("one", ONE);
    fx.workorder(
        "two",
        &ONE.replace("work_order_id: one", "work_order_id: two"),
    );
    fx.workorder("flaky", FLAKY);
    fx.topup(100, "INV-1");
    fx.fund("t2", 50, "INV-2");
    let (code, sum, stderr) = fx.orchestrate(&["--jobs", "1"]);
    assert_eq!(code, 1, "flaky fails: {sum}\n{stderr}");
    assert_eq!(run_of(&sum, "flaky")["status"], "FAILED");
    assert_eq!(fx.balance(), 90);
    fx.integrity().unwrap();
    fx
}

/// The index of the first record of `records` that `pick` accepts.
fn find(records: &[Rec], pick: impl Fn(&Rec) -> bool) -> usize {
    records.iter().position(pick).expect("no such record")
}

fn key_has(r: &Rec, part: &str) -> bool {
    r["idempotency_key"].as_str().unwrap().contains(part)
}

/// The line (from 1) of the record of type `ty` of work order `wo` in evidence.jsonl.
fn evidence_line(fx: &Fx, ty: &str, wo: &str) -> usize {
    let ev = records_of(&fx.state_file("evidence.jsonl"));
    1 + find(&ev, |r| r["type"] == ty && r["work_order_id"] == wo)
}

fn run_ended_line(fx: &Fx, wo: &str) -> usize {
    evidence_line(fx, "run_ended", wo)
}

/// A copy of a SPEND, unbatched, as `attempt` under the key that attempt gives it.
fn spend_as(r: &Rec, attempt: u64, amount: i64) -> Rec {
    let mut s = r.clone();
    let key = s["idempotency_key"]
        .as_str()
        .unwrap()
        .replace("/a1/", &format!("/a{attempt}/"));
    s.insert("idempotency_key".into(), json!(key));
    s.insert("attempt".into(), json!(attempt));
    s.insert("amount_credits".into(), json!(amount));
    s.remove("batch");
    s.remove("batch_len");
    s
}

/// Everything that reads or writes the ledger refuses it, naming `file_line` (`file:line`)
/// and `what`; nothing is charged or written.
fn refused_everywhere(fx: &Fx, file_line: &str, what: &str) {
    let before = fx.ledger_bytes(".billing-state");
    let text = fx.run(&["integrity-validate"]).expect_code(1).stdout_text();
    assert!(
        text.lines()
            .any(|l| l.contains(&format!("{file_line}: ")) && l.contains(what)),
        "expected {file_line}: … {what}:\n{text}"
    );
    for args in [
        &["balance", "--tenant-id", "t1"][..],
        &["statement", "--tenant-id", "t1"],
        &["runs"],
    ] {
        let o = fx.run(args);
        o.expect_code(1);
        assert!(o.stdout.is_empty(), "{args:?} printed {}", o.text());
        assert_has(&o.stderr_text(), file_line);
        assert_has(&o.stderr_text(), what);
    }
    let o = fx.run(&["orchestrator", "--json", "--jobs", "1"]);
    let err = o.expect_code(1).stderr_text();
    assert_has(&err, "nothing was charged");
    assert_has(&err, what);
    fx.topup_cmd("5", "INV-9").output().unwrap().expect_code(1);
    assert_eq!(fx.ledger_bytes(".billing-state"), before, "a writer wrote");
    // ...and no merge takes the directory as a segment.
    let o = fx.run(&["ledger", "merge", "--into", "merged", ".billing-state"]);
    assert_has(&o.expect_code(1).text(), "fails verification");
    assert!(
        read(&fx.path("merged/billing.jsonl")).is_empty(),
        "the merge wrote"
    );
}

/// billing.jsonl edited alone and re-chained, as an attacker who knows the documented format
/// would: each forgery keeps the billing rules (balances stay at or above zero, refunds
/// reverse spends), and is refused at the line that tells. Until 2026-12-03 all of them passed
/// `integrity-validate` and every reader; the orchestrator took (a) as a charge without an
/// outcome and ran the step again, and (d) lost the refund for good.
#[test]
fn billing_forged_alone_is_refused_where_evidence_contradicts_it() {
    let fx = ran();
    let good = fx.ledger_bytes(".billing-state");
    let billing = fx.state_file("billing.jsonl");
    let restore = || {
        for (f, b) in crate::support::fx::LEDGER_FILES.iter().zip(&good) {
            std::fs::write(fx.state_file(f), b).unwrap();
        }
    };
    let one_run = |r: &Rec| r["type"] == "SPEND" && key_has(r, "/one/r1/gen/a1/__run__");
    let appended = records_of(&billing).len() + 1;

    // (a) A SPEND appended to `one`'s ended run, as a later attempt of its completed step.
    forge(&billing, |r| {
        let s = spend_as(&r[find(r, one_run)], 7, -50);
        r.push(s);
    });
    refused_everywhere(
        &fx,
        &format!("billing.jsonl:{appended}"),
        "is attempt 7, after the run ended as attempt 1",
    );
    restore();
    // ...as the very attempt a retry would charge: but `gen` completed.
    forge(&billing, |r| {
        let s = spend_as(&r[find(r, one_run)], 2, -2);
        r.push(s);
    });
    refused_everywhere(
        &fx,
        &format!("billing.jsonl:{appended}"),
        "which reports step gen COMPLETED",
    );
    restore();
    // ...as another charge of attempt 1 (a deliverable never bought).
    forge(&billing, |r| {
        let mut s = spend_as(&r[find(r, one_run)], 1, -1);
        s.insert(
            "idempotency_key".into(),
            json!("spend/t1/one/r1/gen/a1/forged"),
        );
        s.insert("deliverable_id".into(), json!("forged"));
        r.push(s);
    });
    refused_everywhere(
        &fx,
        &format!("evidence.jsonl:{}", run_ended_line(&fx, "one")),
        "states 5 credits charged and 0 refunded, but billing.jsonl holds SPENDs of 6 and REFUNDs of 0",
    );
    restore();

    // (b) One of `one`'s SPENDs moved to tenant t2 (its key and run are t1's).
    let mut moved = 0;
    forge(&billing, |r| {
        moved = find(r, |r| {
            r["type"] == "SPEND" && key_has(r, "/one/r1/gen/a1/data")
        });
        r[moved].insert("tenant_id".into(), json!("t2"));
    });
    refused_everywhere(
        &fx,
        &format!("billing.jsonl:{}", moved + 1),
        &format!(
            "as tenant t2, work order one, run 1, but its run_started (evidence.jsonl:{}) is tenant t1",
            evidence_line(&fx, "run_started", "one")
        ),
    );
    restore();

    // (c) `two`'s SPEND batch removed whole: its evidence says it was charged 5.
    forge(&billing, |r| r.retain(|r| !key_has(r, "/two/")));
    refused_everywhere(
        &fx,
        &format!("evidence.jsonl:{}", run_ended_line(&fx, "two")),
        "states 5 credits charged and 0 refunded, but billing.jsonl holds SPENDs of 0 and REFUNDs of 0",
    );
    restore();

    // (d) The refund of `flaky`'s failed step removed: its run_ended says 4 were refunded.
    forge(&billing, |r| r.retain(|r| r["type"] != "REFUND"));
    refused_everywhere(
        &fx,
        &format!("evidence.jsonl:{}", run_ended_line(&fx, "flaky")),
        "states 4 credits charged and 4 refunded, but billing.jsonl holds SPENDs of 4 and REFUNDs of 0",
    );
    restore();

    fx.integrity().unwrap();
    assert_eq!(fx.balance(), 90);
    assert_eq!(fx.balance_of("t2"), 50);
}

/// `gen` completes; `bad` fails (refundable) until the marker file exists.
fn mixed(fx: &Fx, marker: bool) -> String {
    let input = if marker {
        format!("{{marker: \"{}\"}}", fx.path("flaky.marker").display())
    } else {
        "{}".into()
    };
    format!(
        "work_order_id: mixed\nsteps:\n  - step_id: gen\n    module_id: gen\n    kind: transform\n    inputs: {{text: \"a\"}}\n  - step_id: bad\n    module_id: fail\n    kind: transform\n    inputs: {input}\n"
    )
}

/// A `--retry-failed` pass that crashes leaves the retried step's records past the run's
/// end: the run reads as open (SPEND of attempt 2, its REFUND when it failed again) and every
/// command accepts it, and the next pass resumes it and ends it as attempt 2. Forged in that
/// state, a SPEND of attempt 2 of the step the end reports COMPLETED is still refused.
#[test]
fn a_crash_in_a_retry_leaves_an_open_run_that_every_command_accepts() {
    // (failpoint, the marker lets the retry pass, the retry's records before the crash)
    for (failpoint, marker, records) in [
        ("after_spend", true, &["SPEND"][..]),
        ("before_run_ended", false, &["SPEND", "REFUND"]),
    ] {
        let fx = Fx::new();
        fx.workorder("mixed", &mixed(&fx, marker));
        fx.topup(50, "INV-1");
        let (code, sum, _) = fx.orchestrate(&[]);
        assert_eq!(code, 0, "{sum}");
        assert_eq!(run_of(&sum, "mixed")["status"], "PARTIAL");
        let o = fx.run_env(
            &["orchestrator", "--retry-failed"],
            &[("PLATFORM_FAILPOINT", failpoint)],
        );
        assert!(!o.status.success(), "{failpoint}: {}", o.text());
        let retried: Vec<String> = fx
            .billing()
            .iter()
            .filter(|r| r["attempt"] == 2)
            .map(|r| r["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(retried, records, "{failpoint}");
        assert_eq!(fx.of_type("evidence.jsonl", "run_ended").len(), 1);

        // Every reader accepts it; the run reads as open.
        fx.integrity().unwrap();
        let charged_twice = 50 - 2 - 4 + 4 - 4 + if marker { 0 } else { 4 };
        assert_eq!(fx.balance(), charged_twice, "{failpoint}");
        fx.run(&["statement", "--tenant-id", "t1"]).expect_ok();
        let runs = fx.runs();
        assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");

        // A SPEND of attempt 2 forged for `gen` in that state: gen completed in attempt 1.
        let forged = fx.fork();
        let billing = forged.state_file("billing.jsonl");
        let appended = records_of(&billing).len() + 1;
        forge(&billing, |r| {
            let gen = find(r, |r| key_has(r, "/mixed/r1/gen/a1/__run__"));
            let s = spend_as(&r[gen], 2, -2);
            r.push(s);
        });
        refused_everywhere(
            &forged,
            &format!("billing.jsonl:{appended}"),
            "which reports step gen COMPLETED",
        );

        // The next pass resumes the run and ends it as attempt 2.
        let (_, sum, stderr) = fx.orchestrate(&[]);
        let run = run_of(&sum, "mixed");
        assert_eq!(run["action"], "resume", "{failpoint}: {sum}\n{stderr}");
        let ends = fx.of_type("evidence.jsonl", "run_ended");
        assert_eq!(ends.len(), 2);
        assert_eq!(ends[1]["attempt"], 2);
        fx.integrity().unwrap();
        assert_eq!(
            fx.balance(),
            charged_twice,
            "{failpoint}: nothing charged again"
        );
    }
}

/// An audit record says its privileged record was posted: a TOPUP, ADJUST or rerun request
/// removed from its file (re-chained, balances kept at or above zero) leaves it behind. Until
/// 2026-12-04 nothing checked an audit record against the record it names, so a removed
/// top-up (t2 lost 50 credits), or a removed debit (t1 got 5 back), passed everywhere.
#[test]
fn a_privileged_record_removed_while_its_audit_record_stays_is_refused() {
    let fx = ran();
    let mut argv = crate::support::fx::adjust_args("-5", "correction", "CASE-7");
    argv.extend(["--actor".to_string(), "tester".to_string()]);
    fx.run(&argv.iter().map(String::as_str).collect::<Vec<_>>())
        .expect_ok();
    // evidence.jsonl's privileged record: a rerun request (no pass consumes it here).
    let rerun = [
        "rerun",
        "--tenant-id",
        "t1",
        "--work-order-id",
        "one",
        "--reason",
        "upstream data fixed",
        "--actor",
        "tester",
    ];
    fx.run(&rerun).expect_ok();
    assert_eq!(fx.balance(), 85);
    fx.integrity().unwrap();
    let good = fx.ledger_bytes(".billing-state");
    let restore = || {
        for (f, b) in crate::support::fx::LEDGER_FILES.iter().zip(&good) {
            std::fs::write(fx.state_file(f), b).unwrap();
        }
    };
    let billing = fx.state_file("billing.jsonl");
    let audits = records_of(&fx.state_file("audit.jsonl"));
    let audit_line =
        |part: &str| format!("audit.jsonl:{}", 1 + find(&audits, |r| key_has(r, part)));

    forge(&billing, |r| {
        r.remove(find(r, |r| {
            r["type"] == "TOPUP" && key_has(r, "topup/t2/INV-2")
        }));
    });
    refused_everywhere(
        &fx,
        &audit_line("topup/t2/INV-2"),
        "says TOPUP topup/t2/INV-2 was recorded, but billing.jsonl holds no such record",
    );
    restore();
    forge(&billing, |r| {
        r.remove(find(r, |r| r["type"] == "ADJUST"));
    });
    refused_everywhere(
        &fx,
        &audit_line("adjust/t1/CASE-7"),
        "says ADJUST adjust/t1/CASE-7 was recorded, but billing.jsonl holds no such record",
    );
    restore();
    forge(&fx.state_file("evidence.jsonl"), |r| {
        r.remove(find(r, |r| r["type"] == "rerun_requested"));
    });
    refused_everywhere(
        &fx,
        &audit_line("rerun/t1/one/after-r1"),
        "says rerun_requested rerun/t1/one/after-r1 was recorded, but evidence.jsonl holds no such record",
    );
    restore();
    fx.integrity().unwrap();
    assert_eq!(fx.balance(), 85);
}
