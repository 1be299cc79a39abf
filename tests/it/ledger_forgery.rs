//! Attacks on the billing-state directory, each as an attacker or a crash would leave it (files edited, hash chains recomputed, a real abort between two writes), against the real binary: one test per defect of issue #12.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::check::assert_has;
use crate::support::fx::LEDGER_FILES;
use crate::support::ledger_fixtures::{copy_state, forge, lines, read, records_of};
use crate::support::orch::run_of;
use crate::support::{Fx, Transcript};
use serde_json::{json, Value};

/// One step, 2 + 3 credits.
const ONE: &str = "work_order_id: one\nsteps:\n  - step_id: gen\n    module_id: gen\n    kind: transform\n    inputs: {text: \"a b\"}\n    deliverables: [data]\n";

fn two() -> String {
    ONE.replace("work_order_id: one", "work_order_id: two")
}

/// A fixture that ran `one` and `two` once each: 100 credits topped up, 10 charged.
fn ran_twice() -> Fx {
    let fx = Fx::new();
    fx.workorder("one", ONE);
    fx.workorder("two", &two());
    fx.topup(100, "INV-1");
    // One work order at a time: the damage tests name the lines they change.
    let (code, sum, stderr) = fx.orchestrate(&["--jobs", "1"]);
    assert_eq!(code, 0, "{sum}\n{stderr}");
    assert_eq!(run_of(&sum, "two")["status"], "COMPLETED");
    assert_eq!(fx.balance(), 90);
    fx
}

/// integrity-validate refuses, naming `file:line` and `what`.
fn refused_by_integrity_validate(fx: &Fx, file_line: &str, what: &str) {
    let text = fx.run(&["integrity-validate"]).expect_code(1).stdout_text();
    assert!(
        text.lines()
            .any(|l| l.contains(file_line) && l.contains(what)),
        "expected {file_line} … {what}:\n{text}"
    );
}

/// Every reader refuses (exit 1) and prints no figure.
fn refused_by_readers(fx: &Fx, what: &str) {
    for args in [
        &["balance", "--tenant-id", "t1"][..],
        &["statement", "--tenant-id", "t1"],
        &["runs"],
    ] {
        let o = fx.run(args);
        o.expect_code(1);
        assert!(o.stdout.is_empty(), "{args:?} printed {}", o.text());
        assert!(o.stderr_text().contains(what), "{args:?}: {}", o.text());
    }
}

#[test]
fn lost_or_truncated_evidence_is_refused_and_nothing_is_charged_again() {
    let fx = ran_twice();
    let billing = read(&fx.state_file("billing.jsonl"));
    let evidence = read(&fx.state_file("evidence.jsonl"));
    let spend_line = 2; // TOPUP, then the SPEND batch of `one`
    let cuts = {
        // The whole file, and a cut at the batch boundary before `two`'s run_started.
        let at = lines(&fx.state_file("evidence.jsonl"))
            .iter()
            .position(|l| {
                let l = String::from_utf8_lossy(l);
                l.contains("\"type\":\"run_started\"") && l.contains("\"work_order_id\":\"two\"")
            })
            .unwrap();
        let keep: usize = lines(&fx.state_file("evidence.jsonl"))[..at]
            .iter()
            .map(Vec::len)
            .sum();
        [None, Some(keep)]
    };
    for cut in cuts {
        match cut {
            None => std::fs::remove_file(fx.state_file("evidence.jsonl")).unwrap(),
            Some(n) => std::fs::write(fx.state_file("evidence.jsonl"), &evidence[..n]).unwrap(),
        }
        let first = if cut.is_none() { spend_line } else { 4 };
        refused_by_integrity_validate(
            &fx,
            &format!("billing.jsonl:{first}:"),
            "whose run_started is not in evidence.jsonl",
        );
        let o = fx.run(&["orchestrator", "--json"]);
        assert!(
            o.expect_code(1)
                .stderr_text()
                .contains("nothing was charged"),
            "{cut:?}: {}",
            o.text()
        );
        assert_eq!(
            read(&fx.state_file("billing.jsonl")),
            billing,
            "{cut:?}: charged again"
        );
        refused_by_readers(&fx, "run_started is not in evidence.jsonl");
        std::fs::write(fx.state_file("evidence.jsonl"), &evidence).unwrap();
    }
    assert_eq!(fx.balance(), 90);
}

#[test]
fn readers_and_merge_refuse_what_integrity_validate_refuses() {
    let fx = ran_twice();
    let good = fx.ledger_bytes(".billing-state");
    let restore = || {
        for (f, b) in LEDGER_FILES.iter().zip(&good) {
            std::fs::write(fx.state_file(f), b).unwrap();
        }
    };
    // A line duplicated at the end, the chain recomputed: 190 credits instead of 90.
    forge(&fx.state_file("billing.jsonl"), |r| r.push(r[0].clone()));
    refused_by_integrity_validate(&fx, "billing.jsonl:6:", "duplicate idempotency_key");
    refused_by_readers(&fx, "duplicate idempotency_key topup/t1/INV-1");

    // ...and a segment holding it is no segment a merge takes.
    let target = fx.path("merged");
    let o = fx.run(&["ledger", "merge", "--into", "merged", ".billing-state"]);
    let said = o.expect_code(1).text();
    assert_has(&said, "fails verification");
    assert_has(&said, "billing.jsonl:6");
    for f in LEDGER_FILES {
        assert!(read(&target.join(f)).is_empty(), "the merge wrote {f}");
    }

    // A forged SPEND of 1000 credits of a real run: a negative balance.
    restore();
    forge(&fx.state_file("billing.jsonl"), |r| {
        let mut s = r[1].clone();
        s.insert("amount_credits".into(), json!(-1000));
        s.insert("deliverable_id".into(), json!("forged"));
        s.insert(
            "idempotency_key".into(),
            json!("spend/t1/one/r1/gen/a1/forged"),
        );
        s.remove("batch");
        s.remove("batch_len");
        r.push(s);
    });
    refused_by_integrity_validate(&fx, "billing.jsonl:6:", "not enough credits");
    refused_by_readers(&fx, "not enough credits");
}

#[test]
fn top_ups_are_capped_and_no_sum_saturates() {
    let fx = Fx::new();
    let topup = |amount: &str, reference: &str| fx.topup_cmd(amount, reference).output().unwrap();
    let max = i64::MAX.to_string();
    for (amount, reference, code) in [
        (max.as_str(), "A", 2),
        ("10", "B", 0),
        (max.as_str(), "C", 2),
        ("1000000000001", "D", 2),
        ("1000000000000", "E", 0),
    ] {
        let o = topup(amount, reference);
        o.expect_code(code);
        if code == 2 {
            assert!(o
                .stderr_text()
                .contains("--amount-credits must be 1..=1000000000000"));
        }
    }
    assert_eq!(fx.balance(), 1_000_000_000_010);
    assert_eq!(lines(&fx.state_file("billing.jsonl")).len(), 2);

    // Forged in the file (with forged audit records too): the amount rule still holds.
    forge(&fx.state_file("billing.jsonl"), |r| {
        r[0].insert("amount_credits".into(), json!(i64::MAX));
    });
    refused_by_integrity_validate(
        &fx,
        "billing.jsonl:1:",
        "TOPUP amount_credits must be 1..=1000000000000, got 9223372036854775807",
    );
    refused_by_readers(&fx, "must be 1..=1000000000000");
}

#[test]
fn a_changed_last_record_is_damage_and_no_writer_removes_it() {
    let fx = Fx::new();
    fx.topup(100, "INV-1");
    let file = fx.state_file("billing.jsonl");
    let text = String::from_utf8(read(&file)).unwrap();
    let forged = text.replacen("\"amount_credits\":100", "\"amount_credits\":900", 1);
    assert_ne!(forged, text);
    std::fs::write(&file, &forged).unwrap();

    refused_by_integrity_validate(&fx, "billing.jsonl:1:", "hash mismatch");
    let o = fx.run(&["integrity-validate"]);
    assert!(!o.text().contains("torn tail"), "{}", o.text());
    // A writer refuses, names the line and what to do, and leaves the line where it is.
    let o = fx.topup_cmd("5", "INV-2").output().unwrap();
    let err = o.expect_code(1).stderr_text();
    assert_has(&err, "billing.jsonl is damaged at line 1");
    assert_has(&err, "restore the file from a good copy");
    fx.run(&["orchestrator", "--json"]).expect_code(1);
    assert_eq!(read(&file), forged.as_bytes(), "a writer changed the file");
    refused_by_readers(&fx, "hash mismatch");
}

#[test]
fn a_crash_between_a_topup_and_its_audit_record_is_reported_then_repaired() {
    let fx = Fx::new();
    let topup = |failpoint: Option<&str>| {
        let mut c = fx.topup_cmd("40", "INV-7");
        if let Some(f) = failpoint {
            c.env("PLATFORM_FAILPOINT", f);
        }
        c.output().unwrap()
    };
    // A real abort right after the TOPUP's write, before its audit record's.
    let o = topup(Some("ledger_after_write@1"));
    assert!(o.status.code() != Some(0), "{}", o.text());
    assert_has(&o.text(), "failpoint ledger_after_write");
    assert_eq!(lines(&fx.state_file("billing.jsonl")).len(), 1);
    assert!(read(&fx.state_file("audit.jsonl")).is_empty());

    refused_by_integrity_validate(&fx, "billing.jsonl:1:", "has no audit record");
    // A reader shows no figure that could come from a forged top-up.
    let o = fx.run(&["balance", "--tenant-id", "t1"]);
    assert!(o
        .expect_code(1)
        .text()
        .contains("any writer adds the audit record"));

    // The next writer (the top-up replayed) adds it from the TOPUP and says so.
    let o = topup(None);
    let err = o.expect_ok().stderr_text();
    assert!(
        err.contains("repaired") && err.contains("the audit record of TOPUP topup/t1/INV-7"),
        "{err}"
    );
    let audit = records_of(&fx.state_file("audit.jsonl"));
    assert_eq!(audit.len(), 1);
    assert_eq!(
        audit[0]["idempotency_key"],
        "audit/billing.topup/topup/t1/INV-7"
    );
    assert_eq!(audit[0]["actor"], "tester");
    assert_eq!(audit[0]["decision"], "allowed");
    fx.integrity().unwrap();
    assert_eq!(fx.balance(), 40);
}

/// A module that appends half a record to a file: another process that crashed mid-write
/// while the orchestrator's pass runs.
fn add_tearing_module(fx: &Fx) {
    fx.write(
        "modules/tear/module.yml",
        "module_id: tear\nversion: \"1\"\nkind: transform\nrunner: {command: [\"./run.py\"]}\ninputs:\n  - {id: path, type: string, required: true}\npricing: {run_credits: 1}\n",
    );
    let script = fx.path("modules/tear/run.py");
    std::fs::write(
        &script,
        "#!/usr/bin/env python3\nimport json, os\nwith open(os.environ['PLATFORM_INPUTS']) as f:\n    path = json.load(f)['path']\nwith open(path, 'ab') as f:\n    f.write(b'{\"actor\":\"ops\",\"amount_cre')\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn the_orchestrator_reports_a_repair_it_makes_mid_pass() {
    let fx = Fx::new();
    add_tearing_module(&fx);
    let billing = fx.state_file("billing.jsonl");
    fx.workorder(
        "tear",
        &format!(
            "work_order_id: tear\nsteps:\n  - step_id: tear\n    module_id: tear\n    kind: transform\n    inputs: {{path: \"{}\"}}\n  - step_id: gen\n    module_id: gen\n    kind: transform\n    inputs: {{text: \"a\"}}\n",
            billing.display()
        ),
    );
    fx.topup(20, "INV-1");
    let (code, sum, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}\n{stderr}");
    assert_eq!(run_of(&sum, "tear")["status"], "COMPLETED");
    let notes: Vec<&str> = sum["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        notes.iter().any(|n| n.starts_with("repaired")
            && n.contains("billing.jsonl")
            && n.contains("interrupted write")),
        "{notes:?}"
    );
    fx.integrity().unwrap();
    assert_eq!(fx.balance(), 20 - 1 - 2);
}

#[test]
fn statement_since_on_a_merged_ledger_shows_every_credit() {
    let fx = Fx::new();
    fx.topup(100, "BASE");
    let shard = |name: &str, reference: &str, amount: &str| {
        let dir = fx.path(&format!("shards/{name}"));
        copy_state(&fx.path(".billing-state"), &dir);
        fx.topup_cmd(amount, reference)
            .arg("--billing-state-dir")
            .arg(&dir)
            .output()
            .unwrap()
            .expect_ok();
        std::thread::sleep(std::time::Duration::from_millis(30));
        dir
    };
    // Shard b records first, shard a later; merged in path order, a's record comes first.
    let b = shard("b", "B-1", "10");
    let since = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(30));
    let a = shard("a", "A-1", "7");
    fx.command()
        .args(["ledger", "merge", "--into", ".billing-state"])
        .arg(&b)
        .arg(&a)
        .output()
        .unwrap()
        .expect_ok();
    let refs: Vec<Value> = records_of(&fx.state_file("billing.jsonl"))
        .iter()
        .map(|r| r["reference"].clone())
        .collect();
    assert_eq!(refs, [json!("BASE"), json!("A-1"), json!("B-1")]);

    let o = fx.run(&[
        "statement",
        "--tenant-id",
        "t1",
        "--since",
        &since,
        "--json",
    ]);
    let v = o.expect_ok().json();
    // Opening: everything recorded before T (BASE and B-1, wherever they sit in the file).
    assert_eq!(v["opening_balance_credits"], 110, "{v}");
    let rows = v["records"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0]["reference"], "A-1");
    assert_eq!(rows[0]["balance_after"], 117);
    assert_eq!(v["balance_credits"], 117);
    assert_eq!(fx.balance(), 117);
}

#[test]
fn references_notes_and_denials_are_bounded() {
    let fx = Fx::new();
    let topup = |reference: &str, note: Option<&str>, actor: &str| {
        let mut c = fx.topup_cmd_as("t1", "5", reference, actor);
        if let Some(n) = note {
            c.arg("--note").arg(n);
        }
        c.output().unwrap()
    };
    // Trimmed: one top-up, not three.
    for r in ["INV-1", " INV-1", "INV-1\n"] {
        topup(r, None, "tester").expect_ok();
    }
    let billing = records_of(&fx.state_file("billing.jsonl"));
    assert_eq!(billing.len(), 1);
    assert_eq!(billing[0]["idempotency_key"], "topup/t1/INV-1");
    // Look-alikes and embedded line breaks are refused, naming the flag; nothing written.
    let before = read(&fx.state_file("billing.jsonl"));
    for r in [
        "INV\u{2010}1",
        "INV-2\r\n9  TOPUP  999",
        "",
        &"A".repeat(129),
    ] {
        let o = topup(r, None, "tester");
        assert!(o.expect_code(2).text().contains("--reference"), "{r:?}");
    }
    for n in ["line one\nline two", "\u{1b}[2J", &"n".repeat(1001)] {
        let o = topup("INV-3", Some(n), "tester");
        assert!(o.expect_code(2).text().contains("--note"), "{n:?}");
    }
    assert_eq!(read(&fx.state_file("billing.jsonl")), before);

    // A reference with a line break that reached the file anyway (forged, audit and all)
    // cannot make a row of the text statement.
    let forged_ref = "INV-9\r\n2  2026-01-01T00:00:00.000Z  TOPUP  1000000";
    forge(&fx.state_file("billing.jsonl"), |r| {
        let mut t = r[0].clone();
        t.insert("reference".into(), json!(forged_ref));
        t.insert(
            "idempotency_key".into(),
            json!(format!("topup/t1/{forged_ref}")),
        );
        r.push(t);
    });
    forge(&fx.state_file("audit.jsonl"), |r| {
        let mut a = r[0].clone();
        a.insert("target".into(), json!(format!("topup/t1/{forged_ref}")));
        a.insert(
            "idempotency_key".into(),
            json!(format!("audit/billing.topup/topup/t1/{forged_ref}")),
        );
        r.push(a);
    });
    let text = fx
        .run(&["statement", "--tenant-id", "t1"])
        .expect_ok()
        .stdout_text();
    assert!(!text.contains('\r'), "{text:?}");
    // Title, header, two rows, balance.
    assert_eq!(text.lines().count(), 5, "{text}");
    assert_has(&text, "INV-9\\r\\n2");

    // 200 denied calls with a 100 KB reference (and actor): each audit line stays small.
    let huge = format!("R{}", "x".repeat(100_000));
    let audit_before = read(&fx.state_file("audit.jsonl")).len();
    for _ in 0..200 {
        topup(&huge, None, &format!("intruder{}", "y".repeat(100_000))).expect_code(3);
    }
    let audit = lines(&fx.state_file("audit.jsonl"));
    let denials: Vec<&Vec<u8>> = audit
        .iter()
        .filter(|l| String::from_utf8_lossy(l).contains("\"decision\":\"denied\""))
        .collect();
    assert_eq!(denials.len(), 200);
    for d in &denials {
        assert!(d.len() < 2_000, "a denial line of {} bytes", d.len());
    }
    let grown = read(&fx.state_file("audit.jsonl")).len() - audit_before;
    assert!(grown < 400_000, "audit.jsonl grew by {grown} bytes");
    fx.integrity().unwrap();
}

/// A privileged record in another file than its type's (a TOPUP appended to evidence.jsonl,
/// re-chained) is damage at its own line, in the file it is in. Until 2026-12-03
/// `integrity-validate` also reported it as a TOPUP without its audit record at the same
/// line number of billing.jsonl (a line that file did not have), with a repair no writer
/// makes (writers refuse the damage).
#[test]
fn a_privileged_record_in_another_file_is_named_in_the_file_it_is_in() {
    let fx = ran_twice();
    let evidence = fx.state_file("evidence.jsonl");
    let billing_lines = lines(&fx.state_file("billing.jsonl")).len();
    forge(&evidence, |r| {
        let mut topup = records_of(&fx.state_file("billing.jsonl"))[0].clone();
        topup.insert("idempotency_key".into(), json!("topup/t1/INV-EV"));
        topup.insert("reference".into(), json!("INV-EV"));
        r.push(topup);
    });
    let at = lines(&evidence).len();
    assert!(at > billing_lines, "the line is past billing.jsonl's end");
    let o = fx.run(&["integrity-validate"]);
    let text = o.expect_code(1).stdout_text();
    assert_has(
        &text,
        &format!("evidence.jsonl:{at}: a TOPUP record belongs in billing.jsonl"),
    );
    assert!(!text.contains("has no audit record"), "{text}");
    assert!(
        !text.contains(&format!("billing.jsonl:{at}")),
        "names a line billing.jsonl does not have:\n{text}"
    );
    let v = fx.run(&["integrity-validate", "--json"]).json();
    let problems = v["problems"].as_array().unwrap();
    assert!(!problems.is_empty(), "{v}");
    for p in problems {
        assert!(
            p["file"].as_str().unwrap().ends_with("evidence.jsonl"),
            "{p}"
        );
        assert_eq!(p["line"], at as u64, "{p}");
    }
}

/// `orchestrator --dry-run` writes nothing, and its balances are read as `balance` reads
/// them: it says what the pass would repair first, in the text and in `--json` `notes` — a
/// privileged record without its audit record (which the balances count: a crash, or a
/// forgery), an interrupted last write (which they leave out). Until 2026-12-03 it printed
/// balances counting a forged TOPUP and said nothing of either.
#[test]
fn a_dry_run_says_what_the_pass_would_repair() {
    let fx = ran_twice();
    fx.workorder(
        "three",
        &ONE.replace("work_order_id: one", "work_order_id: three"),
    );
    let good = fx.ledger_bytes(".billing-state");
    let billing = fx.state_file("billing.jsonl");
    let dry_run = |fx: &Fx| {
        let before = fx.ledger_bytes(".billing-state");
        let text = fx
            .run(&["orchestrator", "--dry-run"])
            .expect_ok()
            .stdout_text();
        let o = fx.run(&["orchestrator", "--dry-run", "--json"]);
        let notes: Vec<String> = o.expect_ok().json()["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        assert_eq!(fx.ledger_bytes(".billing-state"), before, "a dry run wrote");
        (text, notes)
    };

    // A TOPUP of 1000 appended without its audit record (a crash between the two writes
    // leaves the same): `balance` refuses to print it.
    forge(&billing, |r| {
        let mut t = r[0].clone();
        t.insert("idempotency_key".into(), json!("topup/t1/INV-X"));
        t.insert("reference".into(), json!("INV-X"));
        t.insert("amount_credits".into(), json!(1000));
        r.push(t);
    });
    let at = lines(&billing).len();
    fx.run(&["balance", "--tenant-id", "t1"]).expect_code(1);
    let (text, notes) = dry_run(&fx);
    let said = format!("billing.jsonl:{at}: TOPUP topup/t1/INV-X has no audit record");
    assert_has(&text, &format!("note: ./.billing-state/{said}"));
    assert_has(
        &text,
        "the pass would add that audit record before anything else",
    );
    assert!(
        notes.iter().any(|n| n.contains(&said)
            && n.contains("or a forged record")
            && n.contains("the balances count the record")),
        "{notes:?}"
    );

    // Half a line at the end: another writer's interrupted write, which the balances leave
    // out.
    for (f, b) in crate::support::fx::LEDGER_FILES.iter().zip(&good) {
        std::fs::write(fx.state_file(f), b).unwrap();
    }
    let mut torn = read(&billing);
    torn.extend_from_slice(br#"{"actor":"ops","amount_cre"#);
    std::fs::write(&billing, &torn).unwrap();
    let (text, notes) = dry_run(&fx);
    let said = format!(
        "billing.jsonl ends in an interrupted write (1 line(s) from line {}",
        lines(&billing).len()
    );
    assert_has(&text, &said);
    assert_has(&text, "the pass would remove it before anything else");
    assert!(notes.iter().any(|n| n.contains(&said)), "{notes:?}");
    // The pass itself repairs it and says so, as documented.
    let (_, sum, stderr) = fx.orchestrate(&[]);
    let repaired = sum["notes"].as_array().unwrap();
    assert!(
        repaired
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("repaired")),
        "{sum}\n{stderr}"
    );
    fx.integrity().unwrap();
}

/// A writer refused after it repaired the ledger still reports the repair. Until 2026-12-04 a
/// conflicting `admin-topup` or an `admin-adjust` debit past the balance removed a torn tail,
/// or added a missing audit record, then said only "nothing was written": an operator who
/// must restore a directory whose repair nobody expected never heard of it.
#[test]
fn a_refused_writer_reports_the_repairs_it_made_first() {
    let fx = Fx::new();
    fx.topup(100, "INV-1");
    let billing = fx.state_file("billing.jsonl");
    let tear = || {
        // An interrupted write: the start of a line, never finished.
        let mut bytes = read(&billing);
        bytes.extend_from_slice(b"{\"v\":1,\"type\":\"TOPUP\",\"amount_cr");
        std::fs::write(&billing, bytes).unwrap();
    };
    let mut adjust = crate::support::fx::adjust_args("-500", "correction", "CASE-1");
    adjust.extend(["--actor".to_string(), "tester".to_string()]);
    let adjust: Vec<&str> = adjust.iter().map(String::as_str).collect();

    // A conflict (the reference recorded with another amount), then a debit past the balance.
    tear();
    let o = fx.topup_cmd("7", "INV-1").output().unwrap();
    let err = o.expect_code(1).stderr_text();
    assert_has(&err, "conflict: reference 'INV-1'");
    assert_has(&err, "the ledger was repaired: repaired");
    assert_has(&err, "removed an interrupted write of 1 line(s)");
    tear();
    let err = fx.run(&adjust).expect_code(1).stderr_text();
    assert_has(&err, "the ledger was repaired: repaired");
    assert_has(&err, "removed an interrupted write of 1 line(s)");
    fx.integrity().unwrap();

    // A TOPUP without its audit record: the refused top-up adds it, and says so.
    let audit = fx.state_file("audit.jsonl");
    let kept = read(&audit);
    let mut audit_lines = lines(&audit);
    audit_lines.remove(0);
    std::fs::write(&audit, audit_lines.concat()).unwrap();
    let err = fx
        .topup_cmd("7", "INV-1")
        .output()
        .unwrap()
        .expect_code(1)
        .stderr_text();
    assert_has(&err, "the audit record of TOPUP topup/t1/INV-1");
    assert_eq!(
        read(&audit).len(),
        kept.len(),
        "the audit record was added back"
    );
    fx.integrity().unwrap();
    assert_eq!(fx.balance(), 100);
}
