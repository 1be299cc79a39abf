//! The derived caches of a no-op pass (SPEC §8): the ledger cache verifies only records appended since it was written and is rebuilt when missing, stale, damaged or another ledger's; the work-order cache parses only changed files, and a changed module validates every work order again.
use crate::support::check::{assert_has, sha256_hex};
use crate::support::fx::Transcript;
use crate::support::ledger_fixtures::{append_chained, copy_state, forge, records_of};
use crate::support::orch::{funded_order, CHAIN};
use crate::support::Fx;
use serde_json::{json, Value};
use std::sync::OnceLock;

/// CHAIN run once with 100 credits, then a no-op pass in this copy: the caches hold what
/// they would after a pass here (a copy is another billing-state directory, read whole).
fn after_one_pass() -> Fx {
    static ONCE: OnceLock<Fx> = OnceLock::new();
    let fx = Fx::prepared(&ONCE, || {
        let fx = funded_order("chain", CHAIN, 100);
        let (code, sum, err) = fx.orchestrate(&[]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(sum["runs"].as_array().unwrap().len(), 1);
        fx
    });
    full_because(&up_to_date(&fx, &[]), "another billing-state directory");
    fx
}

/// A pass (`--json` plus `extra`) that must exit 0 and find chain up to date; its summary.
fn up_to_date(fx: &Fx, extra: &[&str]) -> Value {
    let (code, sum, err) = fx.orchestrate(extra);
    assert_eq!(code, 0, "{err}\n{sum}");
    assert_eq!(sum["up_to_date"], json!(["t1/chain"]), "{sum}");
    assert_eq!(sum["runs"], json!([]), "{sum}");
    sum
}

fn ledger_use(sum: &Value) -> &str {
    sum["cache"]["ledger"]["use"].as_str().unwrap_or("")
}

fn full_because(sum: &Value, why: &str) {
    assert_eq!(ledger_use(sum), "full", "{sum}");
    assert_has(sum["cache"]["ledger"]["reason"].as_str().unwrap(), why);
}

fn cache_file(fx: &Fx, name: &str) -> std::path::PathBuf {
    fx.path(&format!("runtime/.cache/{name}"))
}

#[test]
fn a_noop_pass_reads_no_record_and_parses_no_work_order() {
    let fx = after_one_pass();
    let billing = fx.bytes(".billing-state/billing.jsonl");
    let sum = up_to_date(&fx, &[]);
    assert_eq!(ledger_use(&sum), "hit", "{sum}");
    assert_eq!(sum["cache"]["work_orders_parsed"], 0);
    assert_eq!(sum["cache"]["work_orders_cached"], 1);
    assert_eq!(fx.bytes(".billing-state/billing.jsonl"), billing);
}

#[test]
fn a_missing_or_damaged_cache_is_rebuilt_and_the_pass_is_still_right() {
    let fx = after_one_pass();
    std::fs::remove_dir_all(fx.path("runtime/.cache")).unwrap();
    let sum = up_to_date(&fx, &[]);
    full_because(&sum, "no cache");
    assert_eq!(sum["cache"]["work_orders_parsed"], 1);
    assert_eq!(ledger_use(&up_to_date(&fx, &[])), "hit");

    std::fs::write(
        cache_file(&fx, "ledger.json"),
        b"{\"format\": 1, \"files\": [",
    )
    .unwrap();
    std::fs::write(cache_file(&fx, "workorders.json"), b"\x00garbage").unwrap();
    let sum = up_to_date(&fx, &[]);
    full_because(&sum, "the cache is damaged");
    assert_eq!(sum["cache"]["work_orders_parsed"], 1);
    let sum = up_to_date(&fx, &[]);
    assert_eq!(ledger_use(&sum), "hit", "rebuilt: {sum}");
    assert_eq!(sum["cache"]["work_orders_cached"], 1);
}

#[test]
fn a_topup_appended_by_another_process_is_verified_and_counted() {
    let fx = after_one_pass();
    let before = fx.balance();
    fx.topup(50, "later");
    let sum = up_to_date(&fx, &["--dry-run"]);
    assert_eq!(
        sum["cache"]["ledger"],
        json!({"use": "appended", "records": 2})
    );
    let t1 = &sum["plan"]["tenants"][0];
    assert_eq!(t1["tenant_id"], "t1");
    assert_eq!(t1["balance_before"], before + 50);
    assert_eq!(fx.balance(), before + 50);
    // A dry run writes no cache; a real pass keeps what it verified, and the next reads nothing.
    assert_eq!(ledger_use(&up_to_date(&fx, &[])), "appended");
    assert_eq!(ledger_use(&up_to_date(&fx, &[])), "hit");
}

#[test]
fn a_damaged_key_file_is_rebuilt_when_records_were_appended() {
    let fx = after_one_pass();
    let keys = cache_file(&fx, "ledger-keys.bin");
    let mut bytes = std::fs::read(&keys).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&keys, bytes).unwrap();
    fx.topup(5, "after-damage");
    full_because(&up_to_date(&fx, &[]), "key file is damaged");
    assert_eq!(ledger_use(&up_to_date(&fx, &[])), "hit");
}

/// After a cache-hit pass, `forge` (given billing.jsonl's records) appended in place behind
/// the cache, re-chained as another process would; the next pass, and the line it is on.
fn append_behind_a_hit(
    forge: impl FnOnce(&[serde_json::Map<String, Value>]) -> serde_json::Map<String, Value>,
) -> (Fx, usize) {
    let fx = after_one_pass();
    assert_eq!(ledger_use(&up_to_date(&fx, &[])), "hit");
    let path = fx.state_file("billing.jsonl");
    let records = records_of(&path);
    let ino =
        |p: &std::path::Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let before = ino(&path);
    append_chained(&path, forge(&records));
    assert_eq!(
        ino(&path),
        before,
        "appended in place: the cache's appended path"
    );
    (fx, records.len() + 1)
}

/// The pass after a forged append: refused, naming billing.jsonl and the forged line, the
/// ledger left as it was, no run started, and the cache never vouching for it.
fn assert_forgery_refused(fx: &Fx, line: usize, why: &str) {
    let billing = fx.bytes(".billing-state/billing.jsonl");
    let started = fx.of_type("evidence.jsonl", "run_started").len();
    let out = fx.run(&["orchestrator", "--json"]);
    let err = out.stderr_text();
    assert_eq!(out.status.code(), Some(1), "{err}\n{}", out.stdout_text());
    assert_has(&err, &format!("billing.jsonl is damaged at line {line}"));
    assert_has(&err, why);
    assert_eq!(
        fx.bytes(".billing-state/billing.jsonl"),
        billing,
        "nothing written"
    );
    assert_eq!(fx.of_type("evidence.jsonl", "run_started").len(), started);
    // The --json answer is the refusal itself (no pass summary, so no cache use to report).
    let answer = out.json();
    assert_eq!(answer["error"]["topic"], "error:ledger_damaged", "{answer}");
    let at = format!("./.billing-state/billing.jsonl:{line}");
    assert_eq!(answer["error"]["location"], json!(at), "{answer}");
    // Nor does a later pass (the cache was not renewed from the forged file).
    let again = fx.run(&["orchestrator", "--json"]);
    assert_eq!(again.status.code(), Some(1), "{}", again.stderr_text());
}

/// Attack: a record forged behind the cache's back, appended to the file the cache marked (so
/// the pass takes the "appended since the mark" path): a second copy of the top-up (its key
/// already used). The appended records get every check of a whole read.
#[test]
fn a_duplicate_topup_appended_behind_the_cache_is_refused_naming_its_line() {
    let (fx, line) = append_behind_a_hit(|records| {
        let topup = records.iter().find(|r| r["type"] == "TOPUP").unwrap();
        topup.clone()
    });
    assert_forgery_refused(&fx, line, "duplicate idempotency_key");
}

/// The same with a SPEND of a run that never started (a fresh key, a run id with no
/// `run_started` in evidence.jsonl): the rule across files holds for appended records.
#[test]
fn a_spend_without_its_run_appended_behind_the_cache_is_refused_naming_its_line() {
    let (fx, line) = append_behind_a_hit(|records| {
        let mut spend = records
            .iter()
            .find(|r| r["type"] == "SPEND")
            .unwrap()
            .clone();
        spend.insert("run_id".into(), json!("t1-chain-r99"));
        spend.insert("run".into(), json!(99));
        let key = format!("{}-forged", spend["idempotency_key"].as_str().unwrap());
        spend.insert("idempotency_key".into(), json!(key));
        spend.remove("batch");
        spend.remove("batch_len");
        spend
    });
    assert_forgery_refused(&fx, line, "run_started");
}

/// The same with a TOPUP that has no audit record (a fresh key and reference): what a crash
/// between a top-up's two writes leaves, so, as for any writer (docs/ledger.md), the pass
/// reads the whole ledger, adds the audit record and reports the repair; the cache is
/// renewed only from a read that needed no repair.
#[test]
fn an_unaudited_topup_appended_behind_the_cache_is_repaired_and_reported() {
    let (fx, line) = append_behind_a_hit(|records| {
        let mut topup = records
            .iter()
            .find(|r| r["type"] == "TOPUP")
            .unwrap()
            .clone();
        for field in ["idempotency_key", "reference"] {
            let v = format!("{}-X", topup[field].as_str().unwrap());
            topup.insert(field.into(), json!(v));
        }
        topup.insert("amount_credits".into(), json!(5000));
        topup
    });
    let audits = fx.lines("audit.jsonl").len();
    let (code, sum, err) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{err}\n{sum}");
    assert_eq!(ledger_use(&sum), "full", "{sum}");
    let notes = sum["notes"].to_string();
    assert_has(&notes, "repaired ./.billing-state/audit.jsonl");
    let at =
        format!("the audit record of TOPUP topup/t1/r1-X at ./.billing-state/billing.jsonl:{line}");
    assert_has(&notes, &at);
    assert_eq!(fx.lines("audit.jsonl").len(), audits + 1, "{err}");
    fx.integrity().unwrap();
    assert_eq!(fx.balance(), 100 - 8 + 5000);
    assert_eq!(sum["runs"], json!([]), "{sum}");
}

#[test]
fn a_file_rewritten_to_the_same_length_is_stale() {
    let fx = after_one_pass();
    let path = fx.state_file("billing.jsonl");
    let len = std::fs::metadata(&path).unwrap().len();
    // An attacker's re-chained edit of the top-up, same number of digits: every hash changes,
    // the length does not.
    forge(&path, |records| records[0]["amount_credits"] = json!(900));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    let sum = up_to_date(&fx, &["--dry-run"]);
    full_because(&sum, "a ledger file");
    // What the files now say (unsigned state: the signed heads of `state pull` guard that).
    assert_eq!(sum["plan"]["tenants"][0]["balance_before"], 900 - 8);
}

#[test]
fn another_ledger_copied_over_this_one_is_read_whole() {
    let fx = after_one_pass();
    // Another directory's ledger: funded, chain never run.
    let other = funded_order("chain", CHAIN, 40);
    copy_state(&other.path(".billing-state"), &fx.path(".billing-state"));
    let (code, sum, err) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{err}");
    full_because(&sum, "a ledger file");
    assert_eq!(
        sum["runs"][0]["run"], 1,
        "chain runs again on this ledger: {sum}"
    );
    assert_eq!(fx.balance(), 40 - 8);
    // The same with the directory itself swapped (new inodes).
    let third = funded_order("chain", CHAIN, 30);
    std::fs::remove_dir_all(fx.path(".billing-state")).unwrap();
    copy_state(&third.path(".billing-state"), &fx.path(".billing-state"));
    let (code, sum, err) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{err}");
    full_because(&sum, "replaced");
    assert_eq!(sum["runs"][0]["run"], 1, "{sum}");
}

#[test]
fn a_damaged_old_record_under_a_doctored_cache_is_still_caught_by_integrity_validate() {
    let fx = after_one_pass();
    let path = fx.state_file("evidence.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(7).position(|w| w == b"\"chain\"").unwrap();
    bytes[at + 1] = b'C';
    std::fs::write(&path, &bytes).unwrap();
    // Damage the orchestrator sees: the file changed in place since the cache was written.
    let (code, _, err) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "{err}");
    assert_has(&err, "evidence.jsonl is damaged at line");
    // Someone who can write the runtime directory too makes the cache vouch for the file as
    // it is now: the orchestrator trusts it (it verifies appended records only) ...
    let cache = cache_file(&fx, "ledger.json");
    let mut stored: Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    let ctime = {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&path).unwrap();
        i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec())
    };
    stored["files"][1]["ctime_ns"] = json!(ctime);
    std::fs::write(&cache, serde_json::to_vec(&stored).unwrap()).unwrap();
    assert_eq!(ledger_use(&up_to_date(&fx, &[])), "hit");
    // ... and `integrity-validate`, which never reads a cache, still names the damage.
    let out = fx.run(&["integrity-validate"]);
    assert_eq!(out.status.code(), Some(1));
    assert_has(&out.stdout_text(), "evidence.jsonl");
}

#[test]
fn a_run_left_open_by_a_crash_is_resumed_whatever_the_cache_said() {
    let fx = after_one_pass();
    fx.workorder("chain", &CHAIN.replace("alpha beta gamma delta", "one two"));
    let crashed = fx.run_env(
        &["orchestrator"],
        &[("PLATFORM_FAILPOINT", "after_step_started")],
    );
    assert!(!crashed.status.success(), "the failpoint aborts the pass");
    // The cache still describes the ledger before run 2: its records are new, and run 2 is
    // open, so the pass reads every record and resumes it.
    let (code, sum, err) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{err}");
    full_because(&sum, "run records were appended");
    let run = &sum["runs"][0];
    assert_eq!(
        (run["run"].as_u64(), run["action"].as_str()),
        (Some(2), Some("resume"))
    );
    assert_eq!(run["status"], "COMPLETED");
    assert_eq!(fx.balance(), 100 - 8 - 8, "nothing charged twice");
    fx.integrity().unwrap();
    assert_eq!(ledger_use(&up_to_date(&fx, &[])), "hit");
}

/// Aborts a pass that renews the ledger cache by reading the ledger again.
const NO_CACHE_READ: [(&str, &str); 1] = [("PLATFORM_FAILPOINT", "before_cache_read")];

/// The ledger cache as it is, then rebuilt by a whole read (a no-op pass without it): byte
/// for byte the same.
fn assert_cache_is_a_whole_reads(fx: &Fx) {
    let names = ["ledger.json", "ledger-keys.bin"];
    let left: Vec<Vec<u8>> = names
        .iter()
        .map(|n| std::fs::read(cache_file(fx, n)).unwrap())
        .collect();
    for n in names {
        std::fs::remove_file(cache_file(fx, n)).unwrap();
    }
    let (code, sum, err) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["runs"], json!([]), "{sum}");
    full_because(&sum, "no cache");
    for (n, bytes) in names.iter().zip(left) {
        assert!(
            std::fs::read(cache_file(fx, n)).unwrap() == bytes,
            "{n} differs"
        );
    }
}

#[test]
fn a_pass_renews_the_cache_from_its_writer_as_a_whole_read_would() {
    let fx = funded_order("chain", CHAIN, 100);
    fx.workorder("second", SECOND);
    // From the whole read at its start (no cache yet), two work orders at once.
    let out = fx.run_env(&["orchestrator", "--json", "--jobs", "2"], &NO_CACHE_READ);
    assert!(out.status.success(), "{}", out.stderr_text());
    assert_eq!(out.json()["runs"].as_array().unwrap().len(), 2);
    assert_cache_is_a_whole_reads(&fx);
    // From the cache (nothing appended since): run 2 of a changed work order.
    fx.workorder("chain", &CHAIN.replace("alpha beta gamma delta", "one two"));
    let out = fx.run_env(&["orchestrator", "--json"], &NO_CACHE_READ);
    assert!(out.status.success(), "{}", out.stderr_text());
    let sum = out.json();
    assert_eq!(ledger_use(&sum), "hit", "{sum}");
    assert_eq!(sum["runs"][0]["run"], 2, "{sum}");
    assert_cache_is_a_whole_reads(&fx);
    let (code, sum, err) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["up_to_date"], json!(["t1/chain", "t1/second"]), "{sum}");
    assert_eq!(ledger_use(&sum), "hit", "{sum}");
}

#[test]
fn a_pass_that_resumed_a_run_renews_the_cache_by_reading_the_ledger() {
    let fx = funded_order("chain", CHAIN, 100);
    let crashed = fx.run_env(
        &["orchestrator"],
        &[("PLATFORM_FAILPOINT", "after_step_started")],
    );
    assert!(!crashed.status.success(), "the failpoint aborts the pass");
    // A run was open at its start: no cache to build on, so it reads the ledger at its end.
    let resumed = fx.run_env(&["orchestrator"], &NO_CACHE_READ);
    assert!(!resumed.status.success());
    assert_has(&resumed.stderr_text(), "failpoint before_cache_read");
    // Everything it ran is durable; the next pass finds the run ended and rebuilds the cache.
    let sum = up_to_date(&fx, &[]);
    assert_eq!(ledger_use(&sum), "full", "{sum}");
    assert_eq!(fx.balance(), 100 - 8, "charged once");
    fx.integrity().unwrap();
    assert_eq!(ledger_use(&up_to_date(&fx, &[])), "hit");
}

const SECOND: &str = r#"work_order_id: second
steps:
  - step_id: gen
    module_id: gen
    kind: transform
    inputs: {text: "one"}
"#;

#[test]
fn only_changed_work_orders_are_parsed_again() {
    let fx = after_one_pass();
    fx.workorder("second", SECOND);
    let (code, sum, err) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["cache"]["work_orders_parsed"], 1, "{sum}");
    assert_eq!(sum["cache"]["work_orders_cached"], 1);
    assert_eq!(sum["runs"][0]["work_order_id"], "second");
    fx.workorder("second", &SECOND.replace("\"one\"", "\"two\""));
    let (code, sum, err) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["runs"][0]["run"], 2, "{sum}");
    assert_eq!(sum["cache"]["work_orders_parsed"], 1, "{sum}");
    let sum = fx.orchestrate(&[]).1;
    assert_eq!(sum["cache"]["work_orders_parsed"], 0, "{sum}");
    assert_eq!(sum["cache"]["work_orders_cached"], 2, "{sum}");
}

#[test]
fn a_changed_module_validates_every_work_order_again() {
    let fx = after_one_pass();
    let yml = fx.read_text("modules/gen/module.yml");
    fx.write("modules/gen/module.yml", format!("{yml}# reviewed\n"));
    let sum = up_to_date(&fx, &[]);
    assert_eq!(sum["cache"]["work_orders_parsed"], 1, "{sum}");
    // A module change that makes the work order invalid is reported, never vouched for.
    let renamed = yml.replace("{id: text, type: string", "{id: words, type: string");
    fx.write("modules/gen/module.yml", renamed);
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "{sum}");
    assert_eq!(sum["invalid"][0]["work_order_id"], "chain", "{sum}");
    assert_eq!(sum["cache"]["work_orders_parsed"], 1);
}

#[test]
fn a_removed_asset_is_seen_under_a_cached_verdict() {
    let fx = after_one_pass();
    std::fs::remove_file(fx.path("tenants/t1/assets/note.txt")).unwrap();
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "{sum}");
    assert_has(&sum["invalid"][0]["findings"].to_string(), "note.txt");
}

/// Attack: something that can write the runtime directory (a module runs as the platform's
/// user) forges a verdict for an invalid work order in the work-order cache (its real
/// digest, "enabled"), so that it is planned without being validated. The pass validates a
/// vouched work order again before it runs: reported invalid, no run, nothing charged.
#[test]
fn a_forged_cache_verdict_never_lets_an_invalid_work_order_run() {
    let fx = after_one_pass();
    // Invalid: it binds an input the module does not declare.
    let rel = "tenants/t1/workorders/sneaky.yml";
    let yaml = "work_order_id: sneaky\nsteps:\n  - {step_id: a, module_id: gen, kind: transform, inputs: {nope: x}}\n";
    fx.write(rel, yaml);
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "{sum}");
    assert_eq!(sum["invalid"][0]["work_order_id"], "sneaky", "{sum}");
    let path = cache_file(&fx, "workorders.json");
    let mut cache: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(
        cache["files"].get(rel).is_none(),
        "an invalid work order is never cached"
    );
    let digest = sha256_hex(yaml);
    cache["files"][rel] =
        json!({"sha256": digest, "enabled": true, "assets": [], "schedule": null});
    std::fs::write(&path, cache.to_string()).unwrap();
    let billing = fx.billing().len();
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "{sum}");
    assert_eq!(sum["runs"], json!([]), "{sum}");
    assert_eq!(sum["invalid"][0]["work_order_id"], "sneaky", "{sum}");
    assert_has(
        &sum["invalid"][0]["findings"].to_string(),
        "whatever the work-order cache says",
    );
    assert_eq!(fx.billing().len(), billing, "nothing charged");
}

/// Not a test: writes `NOOP_BENCH_OLDER` (default 1,000,000) older records into the
/// billing-state directory `NOOP_BENCH_STATE`: one ended run of a tenant outside the workload,
/// charged in batches of 1,000. scripts/bench-noop.sh puts a workload's passes behind them.
#[test]
#[ignore = "benchmark helper: scripts/bench-noop.sh"]
fn write_older_records() {
    use crate::support::ledger_fixtures::{run_started, spend, topup};
    use platform::ledger::{Ledger, Stream};
    use platform::records::billing::{MAX_CREDITS, RUN_DELIVERABLE};
    use platform::records::evidence::RunEnded;
    use platform::records::{Payload, RunStatus};
    let dir = std::env::var("NOOP_BENCH_STATE").expect("NOOP_BENCH_STATE");
    let total: usize = std::env::var("NOOP_BENCH_OLDER")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let (mut l, _) = Ledger::open(std::path::Path::new(&dir)).unwrap();
    l.append(Stream::Evidence, vec![run_started("zz-old", "wo")])
        .unwrap();
    l.append(Stream::Billing, vec![topup("zz-old", MAX_CREDITS, "FUND")])
        .unwrap();
    let (mut written, mut b, mut charged) = (3, 0, 0i64);
    while written < total {
        let step = format!("s{b}");
        let n = 1000.min(total - written);
        let batch: Vec<Payload> = (0..n)
            .map(|d| {
                let deliverable = match d {
                    0 => RUN_DELIVERABLE.to_string(),
                    _ => format!("d{d}"),
                };
                Payload::new(spend("zz-old", "wo", &step, &deliverable, 1))
            })
            .collect();
        l.append_batch(Stream::Billing, &step, batch).unwrap();
        written += n;
        charged += n as i64;
        b += 1;
    }
    let end = RunEnded {
        tenant_id: "zz-old".into(),
        work_order_id: "wo".into(),
        run: 1,
        run_id: "zz-old-wo-r1".into(),
        attempt: 1,
        status: RunStatus::Completed,
        steps: Vec::new(),
        // What its SPENDs add up to: a run's end states its charges (docs/ledger.md).
        charged_credits: charged,
        refunded_credits: 0,
        period: None,
    };
    l.append(Stream::Evidence, vec![Payload::new(end)]).unwrap();
}

#[test]
fn a_cached_draft_flag_never_closes_a_run_the_file_wants_resumed() {
    // A crash leaves chain's run 1 open; a forged verdict says the work order is a draft,
    // which would close the run as superseded (refunding it) instead of resuming it.
    let fx = funded_order("chain", CHAIN, 100);
    crate::support::orch::crash_after_first_charge(&fx);
    forge_draft_verdict(&fx, "tenants/t1/workorders/chain.yml");
    // Not believed: the file is parsed, and the run is resumed at once.
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}");
    assert_eq!(sum["runs"][0]["action"], "resume", "{sum}");
    assert_eq!(sum["runs"][0]["status"], "COMPLETED", "{sum}");
    assert!(fx.of_type("billing.jsonl", "REFUND").is_empty());
}

#[test]
fn a_cached_draft_flag_never_makes_a_pass_skip_a_due_work_order() {
    // A valid work order that has not run yet, and a verdict forged for its exact bytes
    // (a module can read the repository and write the runtime directory) saying "draft".
    let fx = after_one_pass();
    let rel = "tenants/t1/workorders/fresh.yml";
    fx.write(
        rel,
        CHAIN.replace("work_order_id: chain", "work_order_id: fresh"),
    );
    forge_draft_verdict(&fx, rel);
    let (code, sum, _) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}");
    assert_eq!(sum["runs"][0]["work_order_id"], "fresh", "{sum}");
    assert_eq!(sum["runs"][0]["status"], "COMPLETED", "{sum}");
    let cache: Value = serde_json::from_slice(&fx.bytes("runtime/.cache/workorders.json")).unwrap();
    assert!(
        cache["files"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| v["enabled"] == true),
        "no draft verdict is written: {cache}"
    );
}

/// Write a verdict into the work-order cache saying `rel`, as its bytes are now, is a draft.
fn forge_draft_verdict(fx: &Fx, rel: &str) {
    let digest = sha256_hex(fx.bytes(rel));
    let path = cache_file(fx, "workorders.json");
    let mut cache: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cache["files"][rel] =
        json!({"sha256": digest, "enabled": false, "assets": [], "schedule": null});
    std::fs::write(&path, cache.to_string()).unwrap();
}
