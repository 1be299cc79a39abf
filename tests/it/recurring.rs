//! SPEC §9 recurring work orders with a fixed clock (`--now`, `PLATFORM_NOW`): one run, and one charge, per UTC calendar period, across second passes, crashes and shards.
use crate::support::check::assert_has;
use crate::support::orch::{step_of, GEN_STEP};
use crate::support::{Fx, Transcript};
use serde_json::Value;

/// One step (gen: 2 credits to run + 3 for its deliverable), run once a day.
fn daily_yaml() -> String {
    format!("work_order_id: daily\nschedule: {{every: day}}\n{GEN_STEP}")
}

const DAY1: &str = "2026-12-01T09:00:00Z";
const DAY1_LATER: &str = "2026-12-01T23:59:59Z";
const DAY2: &str = "2026-12-02T00:00:01Z";

/// The orch fixture with the daily work order and 100 credits.
fn daily() -> Fx {
    let fx = Fx::new();
    fx.workorder("daily", &daily_yaml());
    fx.topup(100, "r1");
    fx
}

/// A pass at `now`: exit code and summary.
fn pass_at(fx: &Fx, now: &str) -> (i32, Value) {
    let (code, sum, stderr) = fx.orchestrate(&["--now", now]);
    assert!(code == 0 || code == 1, "{stderr}");
    (code, sum)
}

/// (run, period) of every run_started, in order.
fn started(fx: &Fx) -> Vec<(u64, Value)> {
    fx.of_type("evidence.jsonl", "run_started")
        .iter()
        .map(|r| (r["run"].as_u64().unwrap(), r["period"].clone()))
        .collect()
}

fn spends(fx: &Fx) -> usize {
    fx.of_type("billing.jsonl", "SPEND").len()
}

#[test]
fn a_daily_work_order_runs_once_per_day() {
    let fx = daily();
    let (code, sum) = pass_at(&fx, DAY1);
    assert_eq!(code, 0, "{sum}");
    assert_eq!(sum["runs"][0]["period"], "2026-12-01", "{sum}");
    assert_eq!(fx.balance(), 95);
    // A second pass the same day appends nothing to any file.
    let before = fx.ledger_bytes(".billing-state");
    let (code, sum) = pass_at(&fx, DAY1_LATER);
    assert_eq!(code, 0, "{sum}");
    assert_eq!(sum["up_to_date"][0], "t1/daily", "{sum}");
    assert_eq!(fx.ledger_bytes(".billing-state"), before);
    // The next day is a new period: run 2, charged once.
    let (code, sum) = pass_at(&fx, DAY2);
    assert_eq!(
        (code, sum["runs"][0]["run"].as_u64()),
        (0, Some(2)),
        "{sum}"
    );
    assert_eq!(
        started(&fx),
        vec![(1, "2026-12-01".into()), (2, "2026-12-02".into())]
    );
    let ends = fx.of_type("evidence.jsonl", "run_ended");
    assert_eq!(ends[1]["period"], "2026-12-02");
    assert_eq!((spends(&fx), fx.balance()), (4, 90));
    // `runs` shows the period, in JSON and in text.
    let runs = fx.runs();
    assert_eq!(runs[0]["period"], "2026-12-01");
    assert_eq!(runs[1]["period"], "2026-12-02");
    assert_has(&fx.run(&["runs"]).stdout_text(), "2026-12-02");
    fx.integrity().unwrap();
}

#[test]
fn the_clock_comes_from_platform_now_and_dry_run_names_the_period() {
    let fx = daily();
    let env = [("PLATFORM_NOW", "2026-12-01T12:00:00+13:00")];
    let out = fx.run_env(&["orchestrator", "--dry-run"], &env);
    // 12:00 at +13:00 is 23:00 UTC the day before.
    assert_has(
        &out.stdout_text(),
        "t1/daily  start run 1 period 2026-11-30",
    );
    let out = fx.run_env(&["orchestrator", "--dry-run", "--json"], &env);
    assert_eq!(out.json()["plan"]["work_orders"][0]["period"], "2026-11-30");
    let out = fx.run_env(&["orchestrator"], &[("PLATFORM_NOW", "soon")]);
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert_has(&out.text(), "PLATFORM_NOW 'soon' is not an RFC 3339 time");
    assert!(!fx.state_file("evidence.jsonl").exists() || started(&fx).is_empty());
    // A valid RFC 3339 time whose UTC instant is in the year 10000: no four-digit period id.
    // Until 2026-12-03 it ran and recorded the period `+10000-01-01`.
    let out = fx.run(&["orchestrator", "--now", "9999-12-31T23:59:59-23:59"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert_has(&out.text(), "outside the years 0000-9999");
    assert!(!fx.state_file("evidence.jsonl").exists() || started(&fx).is_empty());
}

/// SPEC §9: an unscheduled run's records carry `"period": null`. Until 2026-12-04 they omitted
/// the field; a ledger of such records (every run before schedules existed) still verifies,
/// and the same records posted again with `null` (a resumed run, a merge) are no conflict.
#[test]
fn an_unscheduled_work_order_carries_null_periods_and_older_records_still_match() {
    let fx = daily();
    fx.workorder(
        "daily",
        &daily_yaml().replace("schedule: {every: day}\n", ""),
    );
    let env = [
        ("PLATFORM_FAILPOINT", "after_step_started"),
        ("PLATFORM_NOW", DAY1),
    ];
    assert!(!fx.run_env(&["orchestrator"], &env).status.success());
    let start = &fx.of_type("evidence.jsonl", "run_started")[0];
    assert_eq!(start.get("period"), Some(&Value::Null), "{start}");
    assert!(start.get("rerun").is_none(), "{start}");
    copy_state(&fx, ".billing-state", "segment");
    // The ledger as a build before 2026-12-04 wrote it: run records without `period`.
    crate::support::ledger_fixtures::forge(&fx.path(".billing-state/evidence.jsonl"), |rs| {
        for r in rs.iter_mut().filter(|r| r["type"] == "run_started") {
            r.remove("period");
        }
    });
    assert!(fx.of_type("evidence.jsonl", "run_started")[0]
        .get("period")
        .is_none());
    fx.integrity().unwrap();
    // The same records with `null`: already there, nothing merged.
    let before = fx.ledger_bytes(".billing-state");
    let out = fx.run(&["ledger", "merge", "--into", ".billing-state", "segment"]);
    out.expect_ok();
    assert_eq!(fx.ledger_bytes(".billing-state"), before, "{}", out.text());
    // The stopped run resumes on the old ledger and ends with `null`.
    let (code, sum) = pass_at(&fx, DAY1);
    assert_eq!(code, 0, "{sum}");
    assert_eq!(sum["runs"][0]["action"], "resume", "{sum}");
    let end = &fx.of_type("evidence.jsonl", "run_ended")[0];
    assert_eq!(end.get("period"), Some(&Value::Null), "{end}");
    assert_eq!(fx.runs()[0]["period"], Value::Null);
    fx.integrity().unwrap();
    // And the old ledger's records merge into one written with `null` (the other way round).
    let out = fx.run(&["ledger", "merge", "--into", "segment", ".billing-state"]);
    out.expect_ok();
    fx.run(&["integrity-validate", "--billing-state-dir", "segment"])
        .expect_ok();
    let (_, sum) = pass_at(&fx, DAY2);
    assert_eq!(
        sum["up_to_date"][0], "t1/daily",
        "no period, no new run: {sum}"
    );
}

#[test]
fn a_crash_on_day_one_is_finished_on_day_two_then_day_two_runs() {
    let fx = daily();
    let env = [
        ("PLATFORM_FAILPOINT", "after_step_started"),
        ("PLATFORM_NOW", DAY1),
    ];
    let out = fx.run_env(&["orchestrator"], &env);
    assert!(!out.status.success(), "the failpoint aborts the pass");
    assert_eq!((spends(&fx), fx.balance()), (2, 95), "day 1 was charged");
    let text = fx
        .run(&["orchestrator", "--dry-run", "--now", DAY2])
        .stdout_text();
    assert_has(&text, "resume run 1 period 2026-12-01");
    assert_has(&text, "then t1/daily  start run 2 period 2026-12-02");
    let (code, sum) = pass_at(&fx, DAY2);
    assert_eq!(code, 0, "{sum}");
    let runs = sum["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{sum}");
    assert_eq!(
        (runs[0]["action"].as_str(), runs[0]["period"].as_str()),
        (Some("resume"), Some("2026-12-01"))
    );
    assert_eq!(step_of(&runs[0], "gen")["status"], "COMPLETED");
    assert_eq!(
        (runs[1]["action"].as_str(), runs[1]["period"].as_str()),
        (Some("start"), Some("2026-12-02"))
    );
    // Day 1's charges were not posted again: one charge per period.
    assert_eq!((spends(&fx), fx.balance()), (4, 90));
    let ends = fx.of_type("evidence.jsonl", "run_ended");
    assert_eq!(
        ends[0]["period"], "2026-12-01",
        "the resumed run ends in its own period"
    );
    assert_eq!(ends[1]["period"], "2026-12-02");
    // Once more on day 2: up to date.
    let before = fx.ledger_bytes(".billing-state");
    pass_at(&fx, DAY2);
    assert_eq!(fx.ledger_bytes(".billing-state"), before);
    fx.integrity().unwrap();
}

#[test]
fn shards_with_the_plan_jobs_clock_merge_to_one_charge_per_period() {
    let fx = daily();
    fx.add_tenant("t2");
    fx.workorder_for("t2", "daily", &daily_yaml());
    fx.fund("t2", 100, "r2");
    // Day 1 on one machine; day 2 on two shards that start from copies of that state.
    pass_at(&fx, DAY1);
    for k in ["1", "2"] {
        copy_state(&fx, ".billing-state", &format!("shard-{k}"));
        let shard = format!("{k}/2");
        let dir = format!("shard-{k}");
        let args = [
            "orchestrator",
            "--shard",
            &shard,
            "--billing-state-dir",
            &dir,
            "--now",
            DAY2,
        ];
        fx.run(&args).expect_ok();
        // A retried shard job (same clock, same state) appends nothing.
        let after = fx.ledger_bytes(&dir);
        fx.run(&args).expect_ok();
        assert_eq!(fx.ledger_bytes(&dir), after, "shard {k} retried");
    }
    fx.run(&[
        "ledger",
        "merge",
        "--into",
        ".billing-state",
        "shard-1",
        "shard-2",
    ])
    .expect_ok();
    for t in ["t1", "t2"] {
        let per_period: Vec<String> = fx
            .of_type("billing.jsonl", "SPEND")
            .iter()
            .filter(|s| s["tenant_id"] == t && s["deliverable_id"] == "__run__")
            .map(|s| s["run"].to_string())
            .collect();
        assert_eq!(per_period, ["1", "2"], "{t}: one run charge per day");
        assert_eq!(fx.balance_of(t), 90, "{t}");
    }
    fx.integrity().unwrap();
}

/// A shard that ran on a snapshot a later pass has overtaken (an orchestrator shard job re-run
/// after the next run merged, with its own run's older clock) records run 1 again, in another
/// period: the merge refuses it, writes nothing, and its help names that cause and what to do.
/// Until 2026-12-03 the help said only "find which shard is wrong", and docs/operations.md
/// blamed another version of a module or config.
#[test]
fn a_segment_from_an_overtaken_snapshot_is_refused_naming_the_cause() {
    let fx = daily();
    copy_state(&fx, ".billing-state", "stale");
    pass_at(&fx, DAY2);
    let merged = fx.ledger_bytes(".billing-state");
    let (code, _, stderr) = fx.orchestrate(&["--billing-state-dir", "stale", "--now", DAY1]);
    assert_eq!(code, 0, "{stderr}");
    let out = fx.run(&["ledger", "merge", "--into", ".billing-state", "stale"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let stderr = out.stderr_text();
    assert_has(&stderr, "merge conflict");
    assert_has(
        &stderr,
        r#"period (recorded "2026-12-02", posted "2026-12-01")"#,
    );
    for cause in [
        "the input was cut from an older snapshot than the ledger it goes into",
        "a shard job re-run after another run had merged",
        "merge the others without it; what it ran is not recorded, and its work orders run on the next pass if still due",
        "`platform explain error:ledger_conflict` says more",
    ] {
        assert_has(&stderr, cause);
    }
    assert_eq!(
        fx.ledger_bytes(".billing-state"),
        merged,
        "a refused merge wrote"
    );
    fx.integrity().unwrap();
}

/// Copy the three ledger files of one state directory into another (a shard's start).
fn copy_state(fx: &Fx, from: &str, to: &str) {
    std::fs::create_dir_all(fx.path(to)).unwrap();
    for f in crate::support::fx::LEDGER_FILES {
        let src = fx.path(&format!("{from}/{f}"));
        if src.exists() {
            std::fs::copy(src, fx.path(&format!("{to}/{f}"))).unwrap();
        }
    }
}

#[test]
fn a_period_with_an_ended_run_of_this_version_is_never_charged_again() {
    let fx = daily();
    pass_at(&fx, DAY1);
    pass_at(&fx, DAY2);
    assert_eq!((spends(&fx), fx.balance()), (4, 90));
    // A pass with an earlier clock (an old --now, a clock set back): day 1 has an ended run
    // with this digest, though the last run is day 2's. Until 2026-12-03 it ran day 1 again.
    let before = fx.ledger_bytes(".billing-state");
    let (code, sum) = pass_at(&fx, DAY1_LATER);
    assert_eq!(code, 0, "{sum}");
    assert_eq!(sum["up_to_date"][0], "t1/daily", "{sum}");
    assert_eq!(
        fx.ledger_bytes(".billing-state"),
        before,
        "nothing appended"
    );
    // An edit reverted within day 2 (a → b → a): b runs as run 3; a is run 2's digest.
    let edited = daily_yaml().replace("alpha beta", "alpha beta gamma");
    assert_ne!(edited, daily_yaml());
    fx.workorder("daily", &edited);
    pass_at(&fx, DAY2);
    fx.workorder("daily", &daily_yaml());
    let before = fx.ledger_bytes(".billing-state");
    let (code, sum) = pass_at(&fx, DAY2);
    assert_eq!(code, 0, "{sum}");
    assert_eq!(sum["up_to_date"][0], "t1/daily", "{sum}");
    assert_eq!(
        fx.ledger_bytes(".billing-state"),
        before,
        "nothing appended"
    );
    // The next period runs as before: run 4, charged once.
    pass_at(&fx, "2026-12-03T08:00:00Z");
    assert_eq!(
        started(&fx),
        vec![
            (1, "2026-12-01".into()),
            (2, "2026-12-02".into()),
            (3, "2026-12-02".into()),
            (4, "2026-12-03".into())
        ]
    );
    assert_eq!((spends(&fx), fx.balance()), (8, 80));
    fx.integrity().unwrap();
}

#[test]
fn an_interrupted_edit_reverted_within_the_period_is_closed_and_nothing_starts() {
    let fx = daily();
    pass_at(&fx, DAY1);
    let edited = daily_yaml().replace("alpha beta", "alpha beta gamma");
    fx.workorder("daily", &edited);
    let env = [
        ("PLATFORM_FAILPOINT", "after_step_started"),
        ("PLATFORM_NOW", DAY1_LATER),
    ];
    assert!(!fx.run_env(&["orchestrator"], &env).status.success());
    assert_eq!((spends(&fx), fx.balance()), (4, 90), "run 2 was charged");
    fx.workorder("daily", &daily_yaml());
    let (code, sum) = pass_at(&fx, DAY1_LATER);
    assert_eq!(code, 1, "a closed run ended FAILED counts as failed: {sum}");
    let runs = sum["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "only the closing: {sum}");
    assert_eq!(
        (runs[0]["action"].as_str(), runs[0]["run"].as_u64()),
        (Some("close"), Some(2))
    );
    assert_eq!(sum["up_to_date"][0], "t1/daily", "{sum}");
    assert_has(
        &sum["notes"].to_string(),
        "run 1 already ended in period 2026-12-01",
    );
    assert_eq!(fx.balance(), 95, "run 2 refunded, day 1 not charged again");
    assert_eq!(started(&fx).len(), 2);
    fx.integrity().unwrap();
}
