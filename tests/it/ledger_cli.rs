//! Transcripts of the ledger commands run as the real binary: admin-topup, balance, statement, integrity-validate, ledger merge.
// Tests fail by panicking; unwrap() and expect() are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::ledger_fixtures as fixtures;

use assert_cmd::Command;
use fixtures::*;
use platform::ledger::{Ledger, Stream};
use platform::records::billing::RUN_DELIVERABLE;
use platform::records::Payload;
use serde_json::Value;
use std::path::{Path, PathBuf};

struct Repo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
}

fn repo() -> Repo {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    for t in ["acme", "beta"] {
        let d = root.join("tenants").join(t);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("tenant.yml"), format!("tenant_id: {t}\n")).unwrap();
    }
    std::fs::create_dir_all(root.join("config")).unwrap();
    std::fs::write(
        root.join("config/iam.yml"),
        "roles:\n  admin: [billing.topup]\n  publisher: [artifacts.publish]\nactors:\n  - id: ops\n    roles: [admin]\n  - id: ops2\n    roles: [admin]\n  - id: intern\n    roles: [publisher]\n",
    )
    .unwrap();
    let state = tmp.path().join("state");
    Repo {
        _tmp: tmp,
        root,
        state,
    }
}

fn platform(r: &Repo) -> Command {
    let mut c = Command::cargo_bin("platform").unwrap();
    c.current_dir(&r.root)
        .env_remove("GITHUB_ACTOR")
        .arg("--repo")
        .arg(&r.root);
    c
}

fn topup_cmd(r: &Repo, amount: &str, reference: &str) -> Command {
    topup_as(r, "ops", amount, reference)
}

fn topup_as(r: &Repo, actor: &str, amount: &str, reference: &str) -> Command {
    let mut c = platform(r);
    c.args([
        "admin-topup",
        "--tenant-id",
        "acme",
        "--amount-credits",
        amount,
    ])
    .args([
        "--topup-method-id",
        "bank",
        "--reference",
        reference,
        "--actor",
        actor,
    ])
    .arg("--billing-state-dir")
    .arg(&r.state);
    c
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

fn billing(r: &Repo) -> Vec<u8> {
    read(&r.state.join("billing.jsonl"))
}

#[test]
fn topup_replay_and_conflict() {
    let r = repo();
    let out = topup_cmd(&r, "100", "INV-1")
        .arg("--json")
        .assert()
        .success();
    let v = json_of(&out.get_output().stdout);
    assert_eq!(v["status"], "appended");
    assert_eq!(v["balance_credits"], 100);
    assert_eq!(v["idempotency_key"], "topup/acme/INV-1");
    let before = billing(&r);
    let audit_before = read(&r.state.join("audit.jsonl"));
    assert_eq!(lines(&r.state.join("audit.jsonl")).len(), 1);

    // The same reference and amount again: one top-up.
    let out = topup_cmd(&r, "100", "INV-1").assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("already recorded"), "{text}");
    assert_eq!(billing(&r), before);
    assert_eq!(read(&r.state.join("audit.jsonl")), audit_before);

    // Another actor replaying it is still the same top-up.
    topup_as(&r, "ops2", "100", "INV-1")
        .args(["--note", "re-entered"])
        .assert()
        .success();
    assert_eq!(billing(&r), before);

    // A different amount for the reference: conflict, nothing written.
    let out = topup_cmd(&r, "200", "INV-1").assert().code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("conflict") && err.contains("amount_credits"),
        "{err}"
    );
    assert_eq!(billing(&r), before);

    let out = platform(&r)
        .args([
            "balance",
            "--tenant-id",
            "acme",
            "--json",
            "--billing-state-dir",
        ])
        .arg(&r.state)
        .assert()
        .success();
    let v = json_of(&out.get_output().stdout);
    assert_eq!(
        v,
        serde_json::json!({"tenant_id": "acme", "balance_credits": 100})
    );
}

#[test]
fn topup_actor_comes_from_github_actor() {
    let r = repo();
    let mut c = platform(&r);
    c.env("GITHUB_ACTOR", "ops")
        .args([
            "admin-topup",
            "--tenant-id",
            "acme",
            "--amount-credits",
            "5",
        ])
        .args([
            "--topup-method-id",
            "card",
            "--reference",
            "R",
            "--billing-state-dir",
        ])
        .arg(&r.state)
        .assert()
        .success();
    let mut c = platform(&r);
    let out = c
        .args([
            "admin-topup",
            "--tenant-id",
            "acme",
            "--amount-credits",
            "5",
        ])
        .args([
            "--topup-method-id",
            "card",
            "--reference",
            "R2",
            "--billing-state-dir",
        ])
        .arg(&r.state)
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("actor"), "{err}");
}

#[test]
fn a_denial_is_audited_and_exits_3() {
    let r = repo();
    for _ in 0..2 {
        let out = topup_as(&r, "intern", "100", "INV-1").assert().code(3);
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(
            err.contains("intern") && err.contains("billing.topup"),
            "{err}"
        );
    }
    assert!(billing(&r).is_empty(), "nothing billed");
    let audit = lines(&r.state.join("audit.jsonl"));
    assert_eq!(audit.len(), 2, "each denial is its own event");
    let first: Value = serde_json::from_slice(&audit[0]).unwrap();
    assert_eq!(first["decision"], "denied");
    assert_eq!(first["actor"], "intern");
    assert_eq!(first["target"], "topup/acme/INV-1");
    assert!(first["idempotency_key"]
        .as_str()
        .unwrap()
        .starts_with("audit/denied/billing.topup/"));
    platform(&r)
        .args(["integrity-validate", "--billing-state-dir"])
        .arg(&r.state)
        .assert()
        .success();
}

#[test]
fn topup_input_errors_name_the_flag() {
    let r = repo();
    let cases: [(&[&str], &str); 4] = [
        (&["--tenant-id", "nobody"], "--tenant-id"),
        (&["--topup-method-id", "crypto"], "--topup-method-id"),
        (&["--amount-credits", "0"], "--amount-credits"),
        (&["--tenant-id", "../x"], "--tenant-id"),
    ];
    for (extra, flag) in cases {
        let mut c = topup_cmd(&r, "10", "INV-9");
        let out = c.args(extra).assert().code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(err.contains(flag), "{extra:?}: {err}");
    }
    assert!(billing(&r).is_empty());
}

#[test]
fn statement_lists_every_record_with_the_running_balance() {
    let r = repo();
    topup_cmd(&r, "50", "INV-1").assert().success();
    {
        let (mut l, _) = Ledger::open(&r.state).unwrap();
        start_runs(&mut l, &[("acme", "wo-1")]);
        let run = spend("acme", "wo-1", "s1", RUN_DELIVERABLE, 3);
        let zip = spend("acme", "wo-1", "s1", "zip", 4);
        l.append_batch(
            Stream::Billing,
            &run.batch_id(),
            vec![Payload::new(run.clone()), Payload::new(zip.clone())],
        )
        .unwrap();
        l.append(Stream::Billing, vec![refund(&zip)]).unwrap();
        l.append(Stream::Billing, vec![topup("beta", 9, "B-1")])
            .unwrap();
    }
    let out = platform(&r)
        .args([
            "statement",
            "--tenant-id",
            "acme",
            "--json",
            "--billing-state-dir",
        ])
        .arg(&r.state)
        .assert()
        .success();
    let v = json_of(&out.get_output().stdout);
    let recs = v["records"].as_array().unwrap();
    let types: Vec<&str> = recs.iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["TOPUP", "SPEND", "SPEND", "REFUND"]);
    let after: Vec<i64> = recs
        .iter()
        .map(|r| r["balance_after"].as_i64().unwrap())
        .collect();
    assert_eq!(after, [50, 47, 43, 47]);
    assert_eq!(recs[3]["reason_slug"], "module_failed");
    assert_eq!(recs[0]["reference"], "INV-1");
    assert_eq!(recs[2]["deliverable_id"], "zip");
    assert_eq!(v["balance_credits"], 47);

    let out = platform(&r)
        .args([
            "statement",
            "--tenant-id",
            "acme",
            "--csv",
            "--billing-state-dir",
        ])
        .arg(&r.state)
        .assert()
        .success();
    let csv = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next().unwrap(),
        "seq,recorded_at,type,amount_credits,balance_after,work_order_id,step_id,deliverable_id,reason_slug,reference,idempotency_key"
    );
    assert_eq!(rows.count(), 4);

    let out = platform(&r)
        .args([
            "statement",
            "--tenant-id",
            "acme",
            "--since",
            "2999-01-01T00:00:00Z",
            "--json",
        ])
        .arg("--billing-state-dir")
        .arg(&r.state)
        .assert()
        .success();
    let v = json_of(&out.get_output().stdout);
    assert_eq!(v["records"].as_array().unwrap().len(), 0);
    assert_eq!(v["opening_balance_credits"], 47);

    platform(&r)
        .args([
            "statement",
            "--tenant-id",
            "acme",
            "--since",
            "yesterday",
            "--billing-state-dir",
        ])
        .arg(&r.state)
        .assert()
        .code(2);
}

#[test]
fn integrity_validate_reports_file_and_line() {
    let r = repo();
    for i in 0..3 {
        topup_cmd(&r, "10", &format!("INV-{i}")).assert().success();
    }
    let out = platform(&r)
        .args(["integrity-validate", "--json", "--billing-state-dir"])
        .arg(&r.state)
        .assert()
        .success();
    let v = json_of(&out.get_output().stdout);
    assert_eq!(v["ok"], true);
    assert_eq!(v["files"]["billing.jsonl"]["records"], 3);
    assert_eq!(v["files"]["audit.jsonl"]["records"], 3);
    assert_eq!(v["problems"], serde_json::json!([]));

    let file = r.state.join("billing.jsonl");
    let text = String::from_utf8(read(&file)).unwrap();
    std::fs::write(
        &file,
        text.replacen("\"amount_credits\":10", "\"amount_credits\":99", 2),
    )
    .unwrap();
    let out = platform(&r)
        .args(["integrity-validate", "--billing-state-dir"])
        .arg(&r.state)
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.contains("billing.jsonl:1: hash mismatch"),
        "{stdout}"
    );
    assert!(
        stdout.contains("billing.jsonl:2: hash mismatch"),
        "{stdout}"
    );
    let out = platform(&r)
        .args(["integrity-validate", "--json", "--billing-state-dir"])
        .arg(&r.state)
        .assert()
        .code(1);
    let v = json_of(&out.get_output().stdout);
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"][0]["line"], 1);
    assert!(v["problems"][0]["file"]
        .as_str()
        .unwrap()
        .ends_with("billing.jsonl"));

    // Writers refuse a damaged ledger.
    let out = topup_cmd(&r, "10", "INV-9").assert().code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("damaged at line 1"), "{err}");

    platform(&r)
        .args([
            "integrity-validate",
            "--billing-state-dir",
            "/nonexistent/state",
        ])
        .assert()
        .code(2);
}

#[test]
fn integrity_validate_checks_runtime_record_files() {
    let r = repo();
    topup_cmd(&r, "10", "INV-1").assert().success();
    let rt = r.root.join("runtime");
    let step = rt.join("runs/acme/wo/run-1/s1");
    std::fs::create_dir_all(step.join("outputs")).unwrap();
    std::fs::write(step.join("step.json"), "{\"ok\": true}").unwrap();
    std::fs::write(step.join("outputs/data.json"), "not json, and that is fine").unwrap();
    platform(&r)
        .args(["integrity-validate", "--billing-state-dir"])
        .arg(&r.state)
        .assert()
        .success();
    std::fs::write(step.join("records.jsonl"), "{\"a\":1}\n{oops\n").unwrap();
    let out = platform(&r)
        .args(["integrity-validate", "--billing-state-dir"])
        .arg(&r.state)
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.contains("records.jsonl:2: not valid JSON"),
        "{stdout}"
    );
}

fn shard(r: &Repo, name: &str, base: &Path, topups: &[(&str, i64, &str)]) -> PathBuf {
    let dir = r.root.join("shards").join(name);
    copy_state(base, &dir);
    let (mut l, _) = Ledger::open(&dir).unwrap();
    for (t, a, reference) in topups {
        l.append(Stream::Billing, vec![topup(t, *a, reference)])
            .unwrap();
    }
    l.append(Stream::Audit, vec![audit_allowed(&format!("shard/{name}"))])
        .unwrap();
    dir
}

fn merge_cmd(r: &Repo, into: &Path, segments: &[&Path]) -> Command {
    let mut c = platform(r);
    c.args(["ledger", "merge", "--json", "--into"]).arg(into);
    for s in segments {
        c.arg(s);
    }
    c
}

#[test]
fn merge_appends_new_records_and_is_deterministic() {
    let r = repo();
    topup_cmd(&r, "10", "BASE").assert().success();
    let a = shard(&r, "a", &r.state, &[("acme", 5, "A1"), ("acme", 6, "A2")]);
    let b = shard(&r, "b", &r.state, &[("beta", 7, "B1")]);
    let base = billing(&r);

    let into1 = r.root.join("merged1");
    let into2 = r.root.join("merged2");
    copy_state(&r.state, &into1);
    copy_state(&r.state, &into2);
    let out = merge_cmd(&r, &into1, &[&b, &a]).assert().success();
    let v = json_of(&out.get_output().stdout);
    assert_eq!(v["files"]["billing.jsonl"]["added"], 3);
    assert_eq!(v["files"]["billing.jsonl"]["already_present"], 2);
    // Each shard's audit record, plus the audit record of each of its three top-ups.
    assert_eq!(v["files"]["audit.jsonl"]["added"], 5);
    merge_cmd(&r, &into2, &[&a, &b]).assert().success();
    for f in ["billing.jsonl", "evidence.jsonl", "audit.jsonl"] {
        assert_eq!(
            read(&into1.join(f)),
            read(&into2.join(f)),
            "{f}: same inputs, same bytes"
        );
    }
    let merged = read(&into1.join("billing.jsonl"));
    assert!(
        merged.starts_with(&base),
        "the target is a byte-identical prefix"
    );
    let text = String::from_utf8(merged.clone()).unwrap();
    assert!(
        text.find("acme/A2").unwrap() < text.find("beta/B1").unwrap(),
        "segments in path order"
    );
    // recorded_at is kept from the segment.
    let seg_line = lines(&a.join("billing.jsonl"))[1].clone();
    let seg: Value = serde_json::from_slice(&seg_line).unwrap();
    assert!(text.contains(seg["recorded_at"].as_str().unwrap()));
    platform(&r)
        .args(["integrity-validate", "--billing-state-dir"])
        .arg(&into1)
        .assert()
        .success();

    // The same segments again, or one segment twice: nothing added.
    let out = merge_cmd(&r, &into1, &[&a, &a, &b]).assert().success();
    let v = json_of(&out.get_output().stdout);
    assert_eq!(v["added"], 0);
    assert_eq!(read(&into1.join("billing.jsonl")), merged);
    let out = platform(&r)
        .args([
            "balance",
            "--tenant-id",
            "acme",
            "--json",
            "--billing-state-dir",
        ])
        .arg(&into1)
        .assert()
        .success();
    assert_eq!(json_of(&out.get_output().stdout)["balance_credits"], 21);
}

#[test]
fn a_merge_conflict_leaves_the_target_byte_identical() {
    let r = repo();
    topup_cmd(&r, "10", "BASE").assert().success();
    let a = shard(&r, "a", &r.state, &[("acme", 5, "X")]);
    let b = shard(&r, "b", &r.state, &[("acme", 6, "X")]);
    let into = r.root.join("merged");
    copy_state(&r.state, &into);
    let before: Vec<Vec<u8>> = ["billing.jsonl", "evidence.jsonl", "audit.jsonl"]
        .iter()
        .map(|f| read(&into.join(f)))
        .collect();
    let out = merge_cmd(&r, &into, &[&a, &b]).assert().code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("topup/acme/X") && err.contains("amount_credits"),
        "{err}"
    );
    let after: Vec<Vec<u8>> = ["billing.jsonl", "evidence.jsonl", "audit.jsonl"]
        .iter()
        .map(|f| read(&into.join(f)))
        .collect();
    assert_eq!(
        before, after,
        "nothing written, not even the audit records of segment a"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&into)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".merge-"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_merge_that_would_overdraw_fails() {
    let r = repo();
    topup_cmd(&r, "10", "BASE").assert().success();
    start_runs(&mut Ledger::open(&r.state).unwrap().0, &[("acme", "wo")]);
    // The shard forked when acme had 10 and spent 5 of them...
    let a = r.root.join("shards/a");
    copy_state(&r.state, &a);
    {
        let (mut l, _) = Ledger::open(&a).unwrap();
        l.append(
            Stream::Billing,
            vec![Payload::new(spend("acme", "wo", "s1", "zip", 5))],
        )
        .unwrap();
    }
    // ...while the target spent 8 of them meanwhile.
    {
        let (mut l, _) = Ledger::open(&r.state).unwrap();
        l.append(
            Stream::Billing,
            vec![Payload::new(spend("acme", "wo", "s9", "zip", 8))],
        )
        .unwrap();
    }
    let before = billing(&r);
    let out = merge_cmd(&r, &r.state, &[&a]).assert().code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("not enough credits"), "{err}");
    assert_eq!(billing(&r), before);
}
