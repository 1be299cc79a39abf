//! What every command shares, run as the real binary: the billing-state directory found one way (flag, else the profile's, else the default), one error for a missing one, and IAM denials audited the same way by every privileged command.
use crate::support::fx::{adjust_args, Fx};
use crate::support::state::{text, World};
use serde_json::Value;
use std::io::Write;

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

#[test]
fn every_command_finds_the_billing_state_dir_of_the_local_profile() {
    let fx = Fx::new();
    let profile = fx.path("config/runtime_profile.local.yml");
    std::fs::write(profile, "billing_state_dir: books\n").unwrap();
    fx.topup(10, "INV-1");
    assert!(fx.path("books/billing.jsonl").is_file());
    assert!(
        !fx.path(".billing-state").exists(),
        "the default is not used"
    );

    let out = fx.run(&["balance", "--tenant-id", "t1", "--json"]);
    assert_eq!(json(&out)["balance_credits"], 10, "{}", text(&out.stderr));
    let out = fx.run(&["statement", "--tenant-id", "t1", "--json"]);
    assert_eq!(json(&out)["records"][0]["reference"], "INV-1");
    let out = fx.run(&["integrity-validate", "--json"]);
    let doc = json(&out);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["files"]["billing.jsonl"]["records"], 1);
    assert!(doc["billing_state_dir"]
        .as_str()
        .unwrap()
        .ends_with("books"));
    let out = fx.run(&["orchestrator", "--dry-run", "--json"]);
    let dir = json(&out)["billing_state_dir"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(dir.ends_with("books"), "{dir}");
    // publish reads the same directory: without it, it would refuse a missing .billing-state.
    let out = fx.run(&["publish", "--no-publish", "--actor", "tester", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(json(&out)["staged"], 0);
    // A flag still wins over the profile, relative to the current directory.
    let out = fx.run(&[
        "balance",
        "--tenant-id",
        "t1",
        "--billing-state-dir",
        "books",
    ]);
    assert!(
        text(&out.stdout).contains("t1: 10 credits"),
        "{}",
        text(&out.stderr)
    );
    std::fs::create_dir(fx.path("elsewhere")).unwrap();
    let out = fx.run(&["runs", "--billing-state-dir", "elsewhere"]);
    assert!(text(&out.stdout).starts_with("no runs recorded in elsewhere"));
}

#[test]
fn a_missing_billing_state_dir_is_one_error_with_one_help_for_every_command() {
    let w = World::new();
    let nowhere = w.dir("nowhere");
    let nowhere = nowhere.to_str().unwrap();
    let commands: [&[&str]; 6] = [
        &["balance", "--tenant-id", "t1"],
        &["statement", "--tenant-id", "t1"],
        // Until 2026-12-03, runs printed "no runs recorded" and exited 0.
        &["runs"],
        &["integrity-validate"],
        &["publish", "--no-publish", "--actor", "tester"],
        &["state", "push", "--runtime-profile", "profile.yml"],
    ];
    let mut helps = Vec::new();
    for args in commands {
        let out = w
            .cmd()
            .args(args)
            .args(["--billing-state-dir", nowhere])
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let want = format!("error: billing-state directory {nowhere} does not exist");
        assert!(stderr.contains(&want), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("--> {nowhere}")),
            "{args:?}: {stderr}"
        );
        let help = stderr
            .lines()
            .find(|l| l.starts_with("help: "))
            .unwrap_or_default();
        helps.push(help.to_string());
    }
    assert!(helps[0].contains("platform state pull"), "{}", helps[0]);
    assert!(helps.iter().all(|h| *h == helps[0]), "{helps:#?}");
    assert!(!w.dir("nowhere").exists(), "no reader created it");
    assert!(w.writes().is_empty(), "nothing was pushed");
}

/// Cut the last line of a ledger file in half, as a crash mid-write leaves it.
fn tear(path: &std::path::Path) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(b"{\"v\":1,\"seq\":99,\"recorded_at\":\"20")
        .unwrap();
}

#[test]
fn every_privileged_command_audits_its_denials_capped_and_reports_repairs() {
    let fx = Fx::new();
    fx.topup(10, "INV-1");
    let audit = fx.path(".billing-state/audit.jsonl");
    let huge_actor = "m".repeat(10_000);
    let topup = [
        "admin-topup",
        "--tenant-id",
        "t1",
        "--amount-credits",
        "5",
        "--topup-method-id",
        "manual",
        "--reference",
        "INV-2",
    ];
    let adjust = adjust_args("-5", "correction", "CASE-1");
    let adjust: Vec<&str> = adjust.iter().map(String::as_str).collect();
    fx.workorder("w", "work_order_id: w\nsteps: []\n");
    let rerun = [
        "rerun",
        "--tenant-id",
        "t1",
        "--work-order-id",
        "w",
        "--reason",
        "why",
    ];
    let denied: [(&[&str], &str, &str); 4] = [
        (&topup, "billing.topup", "may not top up credits"),
        (&adjust, "billing.adjust", "may not adjust balances"),
        (&rerun, "orders.rerun", "may not request re-runs"),
        (
            &["publish", "--no-publish"],
            "artifacts.publish",
            "may not publish artifacts",
        ),
    ];
    for (args, scope, says) in denied {
        tear(&audit);
        let before = fx.lines("billing.jsonl");
        let out = fx
            .cmd()
            .args(args)
            .args(["--actor", &huge_actor])
            .output()
            .unwrap();
        check_denial(&fx, &out, scope, says);
        assert_eq!(fx.lines("billing.jsonl"), before, "nothing billed");
    }
    let out = fx.run(&["integrity-validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

/// Exit 3 naming the scope, the torn tail repaired and said so, and the denial the last
/// audit record with the caller's actor capped at 256 characters.
fn check_denial(fx: &Fx, out: &std::process::Output, scope: &str, says: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(says) && stderr.contains(scope), "{stderr}");
    assert!(
        stderr.contains("repaired") && stderr.contains("audit.jsonl"),
        "{stderr}"
    );
    let last = fx.lines("audit.jsonl").pop().unwrap();
    assert_eq!(last["decision"], "denied");
    assert_eq!(last["scope"], scope);
    let actor = last["actor"].as_str().unwrap();
    assert_eq!(actor.chars().count(), 256);
    assert!(actor.ends_with('…'));
}
