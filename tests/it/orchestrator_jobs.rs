//! `orchestrator --jobs N` (SPEC §8): the same results as one work order at a time, the
//! credits gate under concurrency (no tenant overspends; a SPEND the ledger refuses fails
//! its step and the run goes on), secret steps alone, `--json` in plan order, bad values.
use crate::support::fx::{adjust_args, Fx, Transcript};
use crate::support::reliability::{crash_fixture, snapshot};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A module that writes when it started and ended (ns since the epoch) to times.txt,
/// sleeping `delay_ms` between; `secrets` makes it declare the secret TOKEN and fork a child
/// (holding the same environment, its logs let go) that would outlive it by up to a second, appending the
/// time to `child.log` in the step's folder every 10 ms while it lives: its last line is
/// when it was last seen alive (the supervisor ends it with its parent).
fn add_clock(fx: &Fx, module_id: &str, secrets: bool) {
    let declare = if secrets { "secrets: [TOKEN]\n" } else { "" };
    let child = if secrets {
        "log=\"$PLATFORM_OUTPUTS_DIR/../child.log\"\n(n=0; while [ $n -lt 100 ]; do echo \"$(date +%s%N)\" >>\"$log\"; n=$((n + 1)); sleep 0.01; done) >/dev/null 2>&1 &\n"
    } else {
        ""
    };
    fx.write(
        &format!("modules/{module_id}/module.yml"),
        format!(
            "module_id: {module_id}\nversion: \"1\"\nkind: transform\ndescription: Records when it ran.\nrunner: {{command: [\"./run.sh\"]}}\n{declare}inputs:\n  - {{id: delay_ms, type: integer, default: 300}}\noutputs:\n  - {{id: times, type: file, path: times.txt}}\npricing: {{run_credits: 1}}\n"
        ),
    );
    let script = fx.path(&format!("modules/{module_id}/run.sh"));
    fx.write(
        &format!("modules/{module_id}/run.sh"),
        format!("#!/bin/sh\nset -eu\nstart=$(date +%s%N)\n{child}ms=$(sed -n 's/^ *\"delay_ms\": *\\([0-9][0-9]*\\).*/\\1/p' \"$PLATFORM_INPUTS\")\nsleep \"$((ms / 1000)).$(printf '%03d' $((ms % 1000)))\"\necho \"$start $(date +%s%N)\" >\"$PLATFORM_OUTPUTS_DIR/times.txt\"\n"),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn one_step(id: &str, module_id: &str, delay_ms: u64) -> String {
    format!(
        "work_order_id: {id}\nsteps:\n  - step_id: s1\n    module_id: {module_id}\n    kind: transform\n    inputs: {{delay_ms: {delay_ms}}}\n"
    )
}

/// The crash fixture (COMPLETED, PARTIAL with a refund and a skip, packages, deliveries)
/// and six more work orders of t2, with slow steps.
fn many_work_orders() -> Fx {
    let fx = crash_fixture(150);
    for i in 0..6 {
        let yaml = format!(
            "work_order_id: x{i}\nsteps:\n  - step_id: s1\n    module_id: slow\n    kind: transform\n    inputs: {{text: \"x{i}\", delay_ms: {}, fail: {}}}\n    deliverables: [result]\n  - step_id: s2\n    module_id: slow\n    kind: transform\n    inputs:\n      text: {{from_step: s1, from_file: out.txt, selector: text}}\n      delay_ms: 50\n",
            100 + 40 * i,
            i % 3 == 2
        );
        fx.workorder_for("t2", &format!("x{i}"), &yaml);
    }
    fx.fund("t2", 100, "more");
    fx
}

/// Every delivered file under runtime/deliveries, by path relative to it, with its bytes.
fn deliveries(fx: &Fx) -> Vec<(String, Vec<u8>)> {
    let base = fx.path("runtime/deliveries");
    let mut out: Vec<(String, Vec<u8>)> = fx
        .all_bytes_under("runtime/deliveries")
        .into_iter()
        .map(|(p, b)| (p.strip_prefix(&base).unwrap().display().to_string(), b))
        .collect();
    out.sort();
    out
}

/// (tenant, work order, status) of each run of a `--json` summary, in its order.
fn listed(summary: &Value) -> Vec<(String, String, String)> {
    summary["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (s("tenant_id"), s("work_order_id"), s("status"))
        })
        .collect()
}

#[test]
fn jobs_8_leaves_exactly_what_jobs_1_leaves() {
    let template = many_work_orders();
    let mut results = Vec::new();
    for jobs in ["1", "8"] {
        let fx = template.fork();
        let out = fx.run(&["orchestrator", "--json", "--jobs", jobs]);
        // x2 and x5 fail their first step: FAILED runs, exit 1.
        out.expect_code(1);
        results.push((jobs, snapshot(&fx), deliveries(&fx), listed(&out.json())));
    }
    let (_, want, want_files, want_list) = &results[0];
    let (_, got, got_files, got_list) = &results[1];
    assert_eq!(want_list.len(), 9, "every work order ran: {want_list:?}");
    for status in ["COMPLETED", "PARTIAL", "FAILED"] {
        assert!(want_list.iter().any(|r| r.2 == status), "{want_list:?}");
    }
    // Balances, runs and statuses, and every record's payload (outputs' and logs' digests
    // included), whatever the order and time the records were written in.
    assert_eq!(got.balances, want.balances);
    assert_eq!(got.runs, want.runs);
    assert_eq!(got.billing, want.billing);
    assert_eq!(got.evidence, want.evidence);
    assert_eq!(got_files, want_files, "the same deliveries, byte for byte");
    assert!(!want_files.is_empty());
    // --json lists runs in tenant, then work order order, whatever finished first.
    assert_eq!(got_list, want_list);
    let mut sorted = got_list.clone();
    sorted.sort();
    assert_eq!(*got_list, sorted);
}

#[test]
fn with_jobs_the_records_of_work_orders_interleave_but_each_keeps_its_order() {
    let fx = many_work_orders();
    fx.run(&["orchestrator", "--jobs", "8"]).expect_code(1);
    let evidence = fx.records("evidence.jsonl");
    let run_of = |r: &Value| r["run_id"].as_str().unwrap_or_default().to_string();
    // Work orders ran at once: a run started before another one ended.
    let mut open = std::collections::BTreeSet::new();
    let mut overlapped = false;
    for r in &evidence {
        match r["type"].as_str().unwrap() {
            "run_started" => {
                overlapped |= !open.is_empty();
                open.insert(run_of(r));
            }
            "run_ended" => {
                open.remove(&run_of(r));
            }
            _ => {}
        }
    }
    assert!(overlapped, "runs never overlapped with --jobs 8");
    // Within a run, SPEC §4's order: run_started first, each step_started before its
    // outcome, run_ended and the bundle last.
    let mut by_run: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for r in &evidence {
        by_run
            .entry(run_of(r))
            .or_default()
            .push(r["type"].as_str().unwrap());
    }
    for (run, types) in by_run.iter().filter(|(k, _)| !k.is_empty()) {
        assert_eq!(types.first(), Some(&"run_started"), "{run}: {types:?}");
        assert_eq!(&types[types.len() - 2..], ["run_ended", "evidence_bundle"]);
    }
}

#[test]
fn the_credits_gate_never_lets_a_tenant_overspend_with_jobs() {
    let fx = Fx::new();
    // Ten work orders of 3 credits each; 14 credits cover four of them.
    for i in 0..10 {
        fx.workorder(
            &format!("w{i}"),
            &format!(
                "work_order_id: w{i}\nsteps:\n  - step_id: s1\n    module_id: slow\n    kind: transform\n    inputs: {{text: \"w{i}\", delay_ms: 100}}\n    deliverables: [result]\n"
            ),
        );
    }
    fx.topup(14, "r1");
    let mut outcomes = Vec::new();
    for jobs in ["1", "8"] {
        let run = fx.fork();
        let out = run.run(&["orchestrator", "--json", "--jobs", jobs]);
        out.expect_code(1);
        let summary = out.json();
        let completed: Vec<String> = listed(&summary)
            .into_iter()
            .filter(|r| r.2 == "COMPLETED")
            .map(|r| r.1)
            .collect();
        let refused = summary["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["refused"].is_string())
            .count();
        assert_eq!(completed.len(), 4, "--jobs {jobs}: {summary}");
        assert_eq!(refused, 6, "--jobs {jobs}");
        assert_eq!(run.balance_of("t1"), 2, "--jobs {jobs}: 14 - 4 × 3");
        let spends = run
            .records("billing.jsonl")
            .into_iter()
            .filter(|r| r["type"] == "SPEND")
            .count();
        assert_eq!(spends, 8, "--jobs {jobs}: two SPENDs per run that ran");
        outcomes.push(completed);
    }
    assert_eq!(outcomes[0], outcomes[1], "the same runs fit, in plan order");
}

/// The planner gates each run against what the runs planned before it leave, as if all were
/// charged in full and none refunded. A tenant with 6 credits: w0 fails and is refunded, w1
/// runs, and w2 (3 credits) fits in what is left; w3 does not. Until 2026-12-03 w2 and w3
/// were refused "balance 0 credits … top up" though the tenant held 3 credits when w2 would
/// have started. The planner's refusals are now decided again at the end of the pass against
/// the ledger's balance, one after another in plan order: the same runs with any `--jobs`.
#[test]
fn a_run_the_plan_refused_for_credits_runs_when_refunds_of_the_pass_cover_it() {
    let fx = Fx::new();
    for i in 0..4 {
        let fail = i == 0;
        fx.workorder(
            &format!("w{i}"),
            &format!(
                "work_order_id: w{i}\nsteps:\n  - step_id: s1\n    module_id: slow\n    kind: transform\n    inputs: {{text: \"w{i}\", delay_ms: 50, fail: {fail}}}\n    deliverables: [result]\n"
            ),
        );
    }
    fx.topup(6, "r1");
    let dry = fx.run(&["orchestrator", "--json", "--dry-run"]);
    let predicted = dry.json()["plan"]["work_orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["refused"].is_object())
        .count();
    assert_eq!(
        predicted,
        2,
        "the dry run predicts no refund: {}",
        dry.json()
    );
    let mut outcomes = Vec::new();
    for jobs in ["1", "8"] {
        let run = fx.fork();
        let out = run.run(&["orchestrator", "--json", "--jobs", jobs]);
        out.expect_code(1);
        let summary = out.json();
        let list = listed(&summary);
        let status = |w: &str| list.iter().find(|r| r.1 == w).unwrap().2.clone();
        assert_eq!(status("w0"), "FAILED", "--jobs {jobs}: {summary}");
        assert_eq!(status("w1"), "COMPLETED", "--jobs {jobs}: {summary}");
        assert_eq!(status("w2"), "COMPLETED", "--jobs {jobs}: {summary}");
        let w3 = summary["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["work_order_id"] == "w3")
            .unwrap();
        assert_eq!(
            w3["refused"],
            "balance 0 credits does not cover 3 credits of charges; top up and run again",
            "--jobs {jobs}: the balance the tenant had: {summary}"
        );
        assert_eq!(
            run.balance_of("t1"),
            0,
            "--jobs {jobs}: 6 - 3 (w1) - 3 (w2)"
        );
        let names: Vec<&str> = list.iter().map(|r| r.1.as_str()).collect();
        assert_eq!(names, ["w0", "w1", "w2", "w3"], "--jobs {jobs}: plan order");
        run.integrity().unwrap();
        outcomes.push(list);
    }
    assert_eq!(outcomes[0], outcomes[1]);
}

/// `orchestrator --json --jobs JOBS` started in the background, returned once `started`
/// steps have their step_started record.
fn pass_once_started(fx: &Fx, jobs: &str, started: usize) -> std::process::Child {
    let child = fx
        .command()
        .args(["orchestrator", "--json", "--jobs", jobs])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while fx
        .records("evidence.jsonl")
        .iter()
        .filter(|r| r["type"] == "step_started")
        .count()
        < started
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the pass never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// `admin-adjust` t1 by -`credits` (another process, while the pass runs).
fn debit(fx: &Fx, credits: i64) {
    let mut args = adjust_args(&format!("-{credits}"), "correction", "CASE-1");
    args.extend(["--actor".to_string(), "tester".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fx.run(&args).expect_ok();
}

#[test]
fn a_spend_refused_because_an_adjustment_took_the_credits_fails_its_step_and_the_run_goes_on() {
    let fx = Fx::new();
    add_clock(&fx, "clock", false);
    // s1 sleeps while the credits go elsewhere; s2 is then refused by the ledger.
    let steps = "steps:\n  - step_id: s1\n    module_id: clock\n    kind: transform\n    inputs: {delay_ms: 2500}\n  - step_id: s2\n    module_id: clock\n    kind: transform\n    inputs: {delay_ms: 0}\n";
    for wo in ["a", "b", "c"] {
        fx.workorder(wo, &format!("work_order_id: {wo}\n{steps}"));
    }
    fx.topup(6, "r1");
    // Every s1 started (and was charged): each run holds its s2's credit.
    let child = pass_once_started(&fx, "3", 3);
    debit(&fx, 3);
    assert_eq!(
        fx.balance_of("t1"),
        0,
        "the adjustment took what the runs still hold"
    );
    let out = child.wait_with_output().unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{summary}");
    for r in summary["runs"].as_array().unwrap() {
        assert_eq!(r["status"], "PARTIAL", "{r}");
        let s2 = &r["steps"][1];
        assert_eq!(s2["status"], "FAILED");
        assert_eq!(s2["reason_slug"], "not_enough_credits");
    }
    assert_eq!(fx.balance_of("t1"), 0, "never below zero");
    let evidence = fx.records("evidence.jsonl");
    let started = |step: &str| {
        evidence
            .iter()
            .filter(|r| r["type"] == "step_started" && r["step_id"] == step)
            .count()
    };
    assert_eq!(started("s2"), 0, "a refused step never runs");
    let ended = evidence.iter().filter(|r| r["type"] == "run_ended").count();
    assert_eq!(ended, 3, "every run ended");
}

#[test]
fn the_gate_of_a_later_run_sees_what_another_process_debited_while_the_pass_ran() {
    let fx = Fx::new();
    add_clock(&fx, "clock", false);
    fx.workorder("a", &one_step("a", "clock", 1500));
    fx.workorder("b", &one_step("b", "clock", 0));
    // Two credits: the plan fits both runs.
    fx.topup(2, "r1");
    let child = pass_once_started(&fx, "1", 1);
    // a is charged and runs; another process takes the credit b was planned on.
    debit(&fx, 1);
    let out = child.wait_with_output().unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = summary["runs"].as_array().unwrap();
    let run = |id: &str| runs.iter().find(|r| r["work_order_id"] == id).unwrap();
    assert_eq!(run("a")["status"], "COMPLETED", "{summary}");
    // Refused by b's credits gate, which read the ledger again (a SPEND refused by the
    // ledger would have failed b's step instead, after its run started).
    assert!(run("b")["refused"].is_string(), "{summary}");
    let b_records = fx
        .records("evidence.jsonl")
        .into_iter()
        .chain(fx.records("billing.jsonl"))
        .filter(|r| r["work_order_id"] == "b")
        .count();
    assert_eq!(b_records, 0, "nothing of b was recorded");
    assert_eq!(fx.balance_of("t1"), 0);
}

/// (start, end, secret) of every clock step of the pass, from its times.txt; a secret step
/// ends when the last of its process and its child (child.log) was last seen alive.
fn intervals(fx: &Fx) -> Vec<(u128, u128, bool)> {
    let mut out = Vec::new();
    for (path, bytes) in fx.all_bytes_under("runtime/runs") {
        if path.file_name().and_then(|n| n.to_str()) != Some("times.txt") {
            continue;
        }
        let text = String::from_utf8(bytes).unwrap();
        let t: Vec<u128> = text
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        let secret = path.display().to_string().contains("/secret");
        let mut end = t[1];
        if secret {
            let log = path.parent().unwrap().join("../child.log");
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            // Whole lines only: the child may be killed in the middle of one.
            let seen: Vec<u128> = (text.split_inclusive('\n'))
                .filter_map(|l| l.strip_suffix('\n')?.parse().ok())
                .collect();
            let last = *seen
                .iter()
                .max()
                .unwrap_or_else(|| panic!("{}: empty", log.display()));
            assert!(
                last > t[0] + 200_000_000,
                "the child lived through most of its parent's 400 ms: {t:?}, last seen {last}"
            );
            end = end.max(last);
        }
        out.push((t[0], end, secret));
    }
    out
}

#[test]
fn a_step_whose_module_declares_secrets_runs_alone() {
    let fx = Fx::new();
    add_clock(&fx, "clock", false);
    add_clock(&fx, "clock_secret", true);
    for i in 0..6 {
        fx.workorder(
            &format!("plain{i}"),
            &one_step(&format!("plain{i}"), "clock", 400),
        );
    }
    for i in 0..2 {
        fx.workorder(
            &format!("secret{i}"),
            &one_step(&format!("secret{i}"), "clock_secret", 400),
        );
    }
    fx.topup(100, "r1");
    let out = fx.run_env(
        &["orchestrator", "--json", "--jobs", "8"],
        &[("PLATFORM_SECRET_TOKEN", "s3cr3t")],
    );
    out.expect_ok();
    let runs = listed(&out.json());
    assert!(runs.iter().all(|r| r.2 == "COMPLETED"), "{runs:?}");
    let all = intervals(&fx);
    assert_eq!(all.len(), 8);
    let overlaps = |a: &(u128, u128, bool), b: &(u128, u128, bool)| a.0 < b.1 && b.0 < a.1;
    for (i, s) in all.iter().enumerate().filter(|(_, s)| s.2) {
        for (j, o) in all.iter().enumerate() {
            assert!(
                i == j || !overlaps(s, o),
                "a secret step ran beside another module: {s:?} and {o:?}"
            );
        }
    }
    // The others did run side by side (so the check above had something to catch).
    let plain: Vec<_> = all.iter().filter(|s| !s.2).collect();
    let side_by_side = plain
        .iter()
        .enumerate()
        .any(|(i, a)| plain.iter().skip(i + 1).any(|b| overlaps(a, b)));
    assert!(side_by_side, "no two plain steps overlapped: {plain:?}");
}

/// A fixture with `module_id`, a command module whose `run.sh` runs `script` and leaves one
/// file output `file`, and `n` funded work orders of one step each that run it.
fn one_file_module_pass(module_id: &str, what: &str, file: &str, script: &str, n: usize) -> Fx {
    let fx = Fx::new();
    let id = file.split('.').next().unwrap_or(file);
    fx.write(
        &format!("modules/{module_id}/module.yml"),
        format!("module_id: {module_id}\nversion: \"1\"\nkind: transform\ndescription: {what}\nrunner: {{command: [\"./run.sh\"]}}\noutputs:\n  - {{id: {id}, type: file, path: {file}}}\npricing: {{run_credits: 1}}\n"),
    );
    fx.write(
        &format!("modules/{module_id}/run.sh"),
        format!("#!/bin/sh\n{script}\n"),
    );
    use std::os::unix::fs::PermissionsExt;
    let run = fx.path(&format!("modules/{module_id}/run.sh"));
    std::fs::set_permissions(run, std::fs::Permissions::from_mode(0o755)).unwrap();
    for i in 0..n {
        fx.workorder(
            &format!("{module_id}{i}"),
            &format!("work_order_id: {module_id}{i}\nsteps:\n  - step_id: s1\n    module_id: {module_id}\n    kind: transform\n"),
        );
    }
    fx.topup(100, "r1");
    fx
}

/// The nice value of each module process of a pass, from the `nice` each one ran.
fn module_niceness(fx: &Fx) -> Vec<i32> {
    fx.all_bytes_under("runtime/runs")
        .into_iter()
        .filter(|(p, _)| p.file_name().and_then(|n| n.to_str()) == Some("nice.txt"))
        .map(|(_, b)| String::from_utf8(b).unwrap().trim().parse().unwrap())
        .collect()
}

#[test]
fn modules_keep_the_pass_priority_whatever_the_number_of_workers() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let jobs = cpus + 2;
    let fx = one_file_module_pass(
        "niceness",
        "Says its nice value.",
        "nice.txt",
        "nice >\"$PLATFORM_OUTPUTS_DIR/nice.txt\"",
        jobs + 1,
    );
    let base: i32 = String::from_utf8(std::process::Command::new("nice").output().unwrap().stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // One worker leads its own groups: modules keep the pass's priority.
    let alone = fx.fork();
    alone.run(&["orchestrator", "--jobs", "1"]).expect_ok();
    assert_eq!(module_niceness(&alone), vec![base; jobs + 1]);
    // More workers than CPUs: a thread of its own commits the ledger's groups and the
    // workers yield the CPU to it, but not the supervisors and modules, which the workers
    // mostly wait for (their zygote starts before the workers lower their priority:
    // docs/performance.md).
    fx.run(&["orchestrator", "--jobs", &jobs.to_string()])
        .expect_ok();
    assert_eq!(module_niceness(&fx), vec![base; jobs + 1]);
}

#[test]
fn jobs_must_be_a_whole_number_of_at_least_one() {
    let fx = Fx::new();
    for bad in ["0", "-1", "many", "1.5", ""] {
        let out = fx.run(&["orchestrator", &format!("--jobs={bad}")]);
        out.expect_code(2);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--jobs"),
            "{bad}: {}",
            out.text()
        );
    }
    fx.run(&["orchestrator", "--jobs", "1"]).expect_ok();
}

#[test]
fn short_passes_with_more_workers_than_cpus_never_hang() {
    // The first groups of a pass are led by workers while the ledger's serving thread
    // starts: a lost wake-up there once left every worker waiting for ever (2 passes in 150,
    // docs/performance.md); a hung pass fails here (`Fx::run_watched`) instead of holding up
    // the suite.
    let fx = Fx::new();
    add_clock(&fx, "clock", false);
    for i in 0..12 {
        let yaml = format!(
            "work_order_id: w{i}\nsteps:\n  - step_id: s1\n    module_id: clock\n    kind: transform\n    inputs: {{delay_ms: 0}}\n  - step_id: s2\n    module_id: clock\n    kind: transform\n    inputs: {{delay_ms: 0}}\n"
        );
        fx.workorder(&format!("w{i}"), &yaml);
    }
    fx.topup(100, "r1");
    let funded = fx.path(".billing-state");
    for pass in 0..20 {
        let state = fx.path(&format!("state-{pass}"));
        crate::support::fx::copy_tree(&funded, &state);
        let (state_dir, runtime_dir) = (
            state.display().to_string(),
            fx.path(&format!("rt-{pass}")).display().to_string(),
        );
        let out = fx.run_watched(&[
            "orchestrator",
            "--jobs",
            "16",
            "--billing-state-dir",
            &state_dir,
            "--runtime-dir",
            &runtime_dir,
        ]);
        out.expect_ok();
        let started = std::fs::read_to_string(state.join("evidence.jsonl"))
            .unwrap()
            .matches("\"type\":\"step_started\"")
            .count();
        assert_eq!(started, 24, "pass {pass}: every step started once");
    }
}

/// A process's start time (field 22 of /proc/PID/stat), None once it is gone (reaped).
fn start_time(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing paren.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19).map(str::to_string)
}

#[test]
fn the_zygote_and_every_supervisor_are_reaped_before_the_pass_exits() {
    // They are told to end as soon as the last step is done and exit while the pass writes
    // its caches and prints its summary; the command reaps them before it exits, so none is
    // left running, nor a zombie for someone else to reap.
    let cpus = std::thread::available_parallelism().unwrap().get();
    let jobs = cpus + 2;
    // Its supervisor is its parent; the zygote is the supervisor's parent (field 4).
    let fx = one_file_module_pass(
        "ancestry",
        "Names its supervisor and the zygote.",
        "ids.txt",
        "set -eu\nz=$(sed 's/.*) //' /proc/$PPID/stat | cut -d' ' -f2)\nfor p in $PPID $z; do echo \"$p $(sed 's/.*) //' /proc/$p/stat | cut -d' ' -f20)\"; done >\"$PLATFORM_OUTPUTS_DIR/ids.txt\"",
        2 * jobs,
    );
    fx.run(&["orchestrator", "--jobs", &jobs.to_string()])
        .expect_ok();
    let mut seen = std::collections::BTreeSet::new();
    for (_, bytes) in fx
        .all_bytes_under("runtime/runs")
        .into_iter()
        .filter(|(p, _)| p.file_name().and_then(|n| n.to_str()) == Some("ids.txt"))
    {
        for line in String::from_utf8(bytes).unwrap().lines() {
            let (pid, started) = line.split_once(' ').unwrap();
            seen.insert((pid.to_string(), started.to_string()));
        }
    }
    // One zygote and at least one supervisor.
    assert!(seen.len() >= 2, "{seen:?}");
    for (pid, started) in &seen {
        assert_ne!(
            start_time(pid).as_deref(),
            Some(started.as_str()),
            "process {pid} (started at tick {started}) outlived the pass"
        );
    }
}
