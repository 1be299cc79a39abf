//! `platform state pull|push` end to end (unsigned state: no config/ledger.yml): the real binary against a fake GitHub on loopback, with real ledgers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::assert_has;
use crate::support::state::{
    failed_upload_then_retry, never_lacked, records, text, World, STATE_TAG,
};
use crate::support::Transcript;
use std::time::Duration;

#[test]
fn pull_then_push_round_trip() {
    let w = World::new();

    // Nothing remote yet: start empty, and say so.
    let out = w.state("pull", "a", &[]).success();
    let stdout = text(&out.get_output().stdout);
    assert_has(&stdout, "starting with an empty ledger");
    assert_has(&stdout, "not signed");
    let pulled: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.dir("a/.state-pulled.json")).unwrap()).unwrap();
    assert_eq!(pulled["tag"], STATE_TAG);
    assert_eq!(pulled["release_id"], serde_json::Value::Null);
    assert_eq!(pulled["heads"]["billing.jsonl"]["state"], "absent");

    // First push creates the draft state release and uploads what exists.
    w.topup("a", 100, "INV-1");
    let out = w.state("push", "a", &[]).success();
    let stdout = text(&out.get_output().stdout);
    assert_has(&stdout, "created as a draft");
    let release = w.fake.release(STATE_TAG).unwrap();
    assert!(release.draft, "the state release stays a draft");
    assert_eq!(
        w.remote("billing.jsonl").unwrap(),
        std::fs::read(w.dir("a/billing.jsonl")).unwrap()
    );
    // The writer created all three files; evidence.jsonl is empty.
    assert_eq!(w.remote("evidence.jsonl").unwrap(), b"");
    assert!(
        w.remote("heads.json").is_none(),
        "unsigned state has no heads"
    );

    // Another machine pulls, appends, pushes (replacing the assets; still a draft).
    w.state("pull", "b", &[]).success();
    for f in ["billing.jsonl", "audit.jsonl"] {
        assert_eq!(
            std::fs::read(w.dir("b").join(f)).unwrap(),
            std::fs::read(w.dir("a").join(f)).unwrap()
        );
    }
    w.topup("b", 7, "INV-2");
    w.fake.clear_calls();
    let out = w.state("push", "b", &["--json"]).success();
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json["files"][0]["name"], "billing.jsonl");
    assert_eq!(json["files"][0]["action"], "uploaded");
    assert_eq!(json["files"][1]["action"], "unchanged");
    assert_eq!(json["signing"]["status"], "not_configured");
    // Each file is replaced without ever leaving the release: staged upload, delete, rename.
    assert_eq!(
        w.writes(),
        [
            "upload billing.jsonl.staged",
            "delete billing.jsonl",
            "rename billing.jsonl.staged to billing.jsonl",
            "upload audit.jsonl.staged",
            "delete audit.jsonl",
            "rename audit.jsonl.staged to audit.jsonl"
        ]
    );
    assert!(w.fake.release(STATE_TAG).unwrap().draft);
    let b_billing = std::fs::read(w.dir("b/billing.jsonl")).unwrap();
    assert_eq!(w.remote("billing.jsonl").unwrap(), b_billing);

    // A push with nothing new uploads nothing.
    w.fake.clear_calls();
    w.state("push", "b", &[]).success();
    assert!(w.writes().is_empty(), "{:?}", w.writes());

    // Machine A pulls again: its copy is unchanged since its pull, so it fast-forwards.
    w.state("pull", "a", &[]).success();
    assert_eq!(std::fs::read(w.dir("a/billing.jsonl")).unwrap(), b_billing);
    let leftovers: Vec<_> = std::fs::read_dir(w.dir("a"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".state-pull-") || n.ends_with(".pulling"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_push_after_someone_elses_push_is_refused_and_writes_nothing_remote() {
    let w = World::new();
    w.state("pull", "a", &[]).success();
    w.state("pull", "b", &[]).success();
    w.topup("b", 5, "BY-B");
    w.state("push", "b", &[]).success();
    let remote_b = w.remote("billing.jsonl").unwrap();

    w.topup("a", 6, "BY-A");
    w.fake.clear_calls();
    let out = w.state("push", "a", &[]).failure().code(1);
    let stderr = text(&out.get_output().stderr);
    assert_has(&stderr, "someone pushed since your pull");
    assert_has(&stderr, "platform ledger merge");
    assert_has(&stderr, "billing.jsonl");
    assert!(w.writes().is_empty(), "{:?}", w.fake.calls());
    assert_eq!(w.remote("billing.jsonl").unwrap(), remote_b);

    // And pulling into A would overwrite A's unpushed record: refused too, nothing changed.
    let before = w.snapshot("a");
    let out = w.state("pull", "a", &[]).failure().code(1);
    let stderr = text(&out.get_output().stderr);
    assert_has(&stderr, "would overwrite local records");
    assert_eq!(w.snapshot("a"), before);
}

#[test]
fn a_push_without_a_pull_is_allowed_only_onto_an_empty_remote() {
    let w = World::new();
    w.topup("a", 1, "A-1");
    w.state("push", "a", &[]).success();
    assert!(w.remote("billing.jsonl").is_some());

    w.topup("c", 2, "C-1");
    w.fake.clear_calls();
    let out = w.state("push", "c", &[]).failure().code(1);
    let stderr = text(&out.get_output().stderr);
    assert_has(&stderr, "no pull was made");
    assert!(w.writes().is_empty());
}

#[test]
fn a_push_interrupted_by_a_failed_upload_can_be_retried() {
    let w = World::new();
    w.state("pull", "a", &[]).success();
    w.topup("a", 3, "R-1");
    // billing.jsonl goes up, evidence.jsonl fails and leaves an incomplete asset.
    w.fake.state().fail_upload = Some((2, 502, true));
    let out = w.state("push", "a", &[]).failure().code(1);
    let stderr = text(&out.get_output().stderr);
    assert!(
        stderr.contains("evidence.jsonl") && stderr.contains("502"),
        "{stderr}"
    );
    assert!(
        stderr.contains("acme/state") && stderr.contains(STATE_TAG),
        "{stderr}"
    );

    w.state("push", "a", &[]).success();
    assert_eq!(
        w.remote("audit.jsonl").unwrap(),
        std::fs::read(w.dir("a/audit.jsonl")).unwrap()
    );
    assert!(w.fake.release(STATE_TAG).unwrap().draft);
}

#[test]
fn without_a_token_state_commands_say_to_set_it() {
    let w = World::new();
    let out =
        w.fx.cmd()
            .args(["state", "pull", "--runtime-profile", "profile.yml"])
            .assert()
            .failure()
            .code(2);
    let stderr = text(&out.get_output().stderr);
    assert_has(&stderr, "GITHUB_TOKEN is not set");
    assert!(w.fake.calls().is_empty());
}

#[test]
fn the_profile_default_directory_is_used() {
    let w = World::new();
    w.cmd()
        .args(["state", "pull", "--runtime-profile", "profile.yml"])
        .assert()
        .success();
    assert!(w.dir(".billing-state/.state-pulled.json").exists());
}

#[test]
fn a_failed_upload_of_billing_keeps_the_old_copy_and_the_retry_finishes_the_push() {
    failed_upload_then_retry(&World::new(), "billing.jsonl", 500, false);
}

#[test]
fn a_failed_upload_of_audit_that_leaves_a_starter_asset_is_finished_by_the_retry() {
    failed_upload_then_retry(&World::new(), "audit.jsonl", 502, true);
}

/// An older version deleted a file before uploading its replacement, so a failed upload left
/// the release without it. The file is pending in the pull record: the retry uploads it.
#[test]
fn a_retry_finishes_a_push_whose_file_is_gone_from_the_release() {
    let w = World::new();
    w.state("pull", "a", &[]).success();
    w.topup("a", 5, "G-1");
    w.state("push", "a", &[]).success();
    w.state("pull", "b", &[]).success();
    w.topup("b", 6, "G-2");
    w.fake.state().fail_upload_of = Some(("audit.jsonl".into(), 500, false));
    w.state("push", "b", &[]).failure().code(1);
    w.fake.remove_asset(STATE_TAG, "audit.jsonl");

    w.state("push", "b", &[]).success();
    w.state("pull", "fresh", &[]).success();
    for f in ["billing.jsonl", "evidence.jsonl", "audit.jsonl"] {
        let want = std::fs::read(w.dir("b").join(f)).unwrap();
        assert_eq!(std::fs::read(w.dir("fresh").join(f)).unwrap(), want, "{f}");
    }
    // Only the directory whose push it was: another one's push is still refused.
    w.topup("a", 1, "G-3");
    let out = w.state("push", "a", &[]).failure().code(1);
    assert_has(
        &text(&out.get_output().stderr),
        "someone pushed since your pull",
    );
}

/// How a push from `b` is stopped midway.
enum Stop {
    /// kill -9 at this failpoint (`name@N`: the N-th replaced file; 1 billing.jsonl, 2 audit.jsonl).
    Kill(&'static str),
    /// Every try of the rename of this file's staged copy fails.
    RenameFails(&'static str),
}

/// A push stopped at any step of a file's replacement: the release holds a complete copy of
/// every file at every moment, a pull takes the new copy once the old one is gone, and the
/// retry from the same directory finishes the push.
#[test]
fn a_push_stopped_at_any_step_of_a_replacement_is_finished_by_the_retry() {
    let stops = [
        Stop::Kill("state_push_staged@1"),
        Stop::Kill("state_push_old_deleted@1"),
        Stop::Kill("state_push_staged@2"),
        Stop::Kill("state_push_old_deleted@2"),
        Stop::RenameFails("audit.jsonl"),
    ];
    for stop in stops {
        let w = World::new();
        w.state("pull", "a", &[]).success();
        w.topup("a", 5, "K-1");
        w.state("push", "a", &[]).success();
        w.state("pull", "b", &[]).success();
        // billing.jsonl and audit.jsonl change; evidence.jsonl does not.
        w.topup("b", 6, "K-2");
        w.fake.state().record_names = true;
        let mut push = w.cmd();
        push.args(["state", "push", "--runtime-profile", "profile.yml"])
            .arg("--billing-state-dir")
            .arg(w.dir("b"));
        let label = match stop {
            Stop::Kill(failpoint) => {
                push.env("PLATFORM_FAILPOINT", failpoint);
                failpoint
            }
            Stop::RenameFails(file) => {
                w.fake.state().fail_rename_of = Some((file.to_string(), 4));
                "rename fails"
            }
        };
        let out = push.output().unwrap();
        assert!(!out.status.success(), "{label}");
        let stderr = text(&out.stderr);
        match stop {
            Stop::Kill(failpoint) => assert_has(&stderr, failpoint.split('@').next().unwrap()),
            Stop::RenameFails(_) => assert_has(&stderr, "re-run `platform state push`"),
        }
        let last_step = matches!(
            stop,
            Stop::Kill("state_push_old_deleted@2") | Stop::RenameFails(_)
        );
        if last_step {
            // audit.jsonl's old copy is gone and its new one is still staged: a pull takes
            // the staged copy, so it gets the whole new state, not an empty audit.jsonl.
            assert!(w.remote("audit.jsonl").is_none(), "{label}");
            w.state("pull", "mid", &[]).success();
            assert_eq!(
                std::fs::read(w.dir("mid/audit.jsonl")).unwrap(),
                std::fs::read(w.dir("b/audit.jsonl")).unwrap(),
                "{label}"
            );
        }
        w.state("push", "b", &[]).success();
        for f in ["billing.jsonl", "evidence.jsonl", "audit.jsonl"] {
            never_lacked(&w, f);
        }
        w.fake.state().record_names = false;
        w.state("pull", "fresh", &[]).success();
        for f in ["billing.jsonl", "evidence.jsonl", "audit.jsonl"] {
            let want = std::fs::read(w.dir("b").join(f)).unwrap();
            assert_eq!(
                std::fs::read(w.dir("fresh").join(f)).unwrap(),
                want,
                "{label} {f}"
            );
            assert_eq!(w.remote(f).unwrap(), want, "{label} {f}");
        }
        let release = w.fake.release(STATE_TAG).unwrap();
        let names: Vec<&str> = release.assets.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names.len(), 3, "{label}: {names:?}");
    }
}

/// Until 2026-12-03 a pull into a directory that had pulled (or pushed) before replaced its
/// files with a release that someone with write access had cut back to fewer records: exit
/// 0, and the records were gone from the only copy that still had them.
#[test]
fn a_pull_refuses_a_release_cut_back_below_what_the_directory_pulled() {
    let w = World::new();
    w.state("pull", "a", &[]).success();
    w.seed("a");
    w.state("push", "a", &[]).success();
    let billing = w.remote("billing.jsonl").unwrap();
    let evidence = w.remote("evidence.jsonl").unwrap();
    let first_line = billing.iter().position(|b| *b == b'\n').unwrap() + 1;
    // Both files still verify: a chain cut at a record boundary is a valid chain.
    w.fake
        .put_asset(STATE_TAG, "billing.jsonl", &billing[..first_line]);
    w.fake.put_asset(STATE_TAG, "evidence.jsonl", b"");

    let before = w.snapshot("a");
    let out = w.state("pull", "a", &[]).failure().code(1);
    let stderr = text(&out.get_output().stderr);
    for want in [
        "does not start with what this directory last pulled or pushed",
        &format!("billing.jsonl (release: {first_line} bytes"),
        &format!("last pulled or pushed here: {} bytes", billing.len()),
        "evidence.jsonl (release: 0 bytes",
        &format!("last pulled or pushed here: {} bytes", evidence.len()),
        "cut back, re-chained or rolled back",
        "was left as it was",
        "platform state pull --billing-state-dir <fresh>",
    ] {
        assert_has(&stderr, want);
    }
    assert_eq!(
        w.snapshot("a"),
        before,
        "a refused pull changed the directory"
    );

    // A fresh directory has nothing to compare with, but audit.jsonl still names the top-up
    // cut from billing.jsonl (until 2026-12-04 that passed too).
    let out = w.state("pull", "fresh", &[]).failure().code(1);
    assert_has(
        &text(&out.get_output().stderr),
        "says TOPUP topup/t1/INV-2 was recorded, but billing.jsonl holds no such record",
    );
    // Cut consistently, all three files, it is a valid ledger: a fresh directory takes it.
    let audit = w.remote("audit.jsonl").unwrap();
    let first_audit = audit.iter().position(|b| *b == b'\n').unwrap() + 1;
    w.fake
        .put_asset(STATE_TAG, "audit.jsonl", &audit[..first_audit]);
    w.state("pull", "fresh", &[]).success();
    assert_eq!(
        std::fs::read(w.dir("fresh/billing.jsonl")).unwrap(),
        &billing[..first_line]
    );
}

/// Until 2026-12-03 `state pull` took no ledger lock: a top-up made while the pull was
/// downloading ("topped up ... balance 157") was renamed over when the pull moved the
/// release's files into place, and was gone. The pull now holds the ledger's lock from
/// reading the local files to recording the pull: the top-up waits, then lands on the
/// pulled state.
#[test]
fn a_top_up_during_a_slow_pull_waits_for_it_and_is_kept() {
    let w = World::new();
    w.state("pull", "a", &[]).success();
    w.topup("a", 100, "INV-1");
    w.state("push", "a", &[]).success();
    // Another directory pushes newer state, which `a` then pulls, slowly.
    w.state("pull", "b", &[]).success();
    w.topup("b", 7, "INV-2");
    w.state("push", "b", &[]).success();
    let pushed = w.remote("billing.jsonl").unwrap();

    w.fake
        .delay_next("download billing.jsonl", Duration::from_secs(3));
    w.fake.clear_calls();
    let pull = w.spawn_state("pull", "a");
    w.fake.wait_for_call("download billing.jsonl");
    let topup = w.try_topup("a", 50, "LATE");
    let pull = pull.wait_with_output().unwrap();
    pull.expect_ok();
    assert_has(&topup.expect_ok().stdout_text(), "topped up");

    let billing = std::fs::read(w.dir("a/billing.jsonl")).unwrap();
    assert!(billing.starts_with(&pushed), "the pulled state comes first");
    let late: Vec<_> = records(&billing)
        .into_iter()
        .filter(|r| r["reference"] == "LATE")
        .collect();
    assert_eq!(late.len(), 1, "the reported top-up is in the ledger");
    assert_eq!(w.balance("a"), 100 + 7 + 50);
    w.fx.run(&["integrity-validate", "--billing-state-dir", "a"])
        .expect_ok();
    // And it goes up with the next push.
    w.state("push", "a", &[]).success();
    assert_eq!(w.remote("billing.jsonl").unwrap(), billing);
}

/// Until 2026-12-03 the state release was looked for among the 2,000 newest releases only,
/// and not finding it there meant "no release yet": with one release per run, the state
/// draft (made by the first push, so among the oldest) dropped out of sight, a fresh pull
/// started an empty ledger (exit 0) and the next push created a second `billing-state-v1`.
/// Now the lookup lists up to 10,000 releases and fails past them; a directory that pulled
/// or pushed before addresses the release by the id it recorded.
#[test]
fn the_state_release_is_found_behind_thousands_of_newer_releases_or_the_lookup_fails() {
    let w = World::new();
    w.state("pull", "a", &[]).success();
    w.topup("a", 100, "INV-1");
    w.state("push", "a", &[]).success();

    w.fake.seed_releases("artifacts-t1-wo-r", 2_500);
    w.state("pull", "fresh", &[]).success();
    assert_eq!(w.balance("fresh"), 100, "the fresh pull found the state");

    w.fake.seed_releases("artifacts-t1-more-r", 7_600);
    w.fake.clear_calls();
    let out = w.state("pull", "fresh2", &[]).failure().code(1);
    let stderr = text(&out.get_output().stderr);
    for want in [
        "looking for release 'billing-state-v1' of acme/state",
        "GitHub listed 10000 releases, newest first, without it, and has more",
        "not taken as missing",
        "delete releases of acme/state that are no longer needed",
        "release_id",
    ] {
        assert_has(&stderr, want);
    }
    assert!(!w.dir("fresh2").exists());
    let listed = w
        .fake
        .calls()
        .iter()
        .filter(|c| *c == "list releases")
        .count();
    assert_eq!(listed, 100);

    // Directories that pulled or pushed before go to the release by its id, without listing:
    // the push lands on the one state release, and the other directory pulls it.
    w.topup("a", 5, "INV-2");
    w.fake.clear_calls();
    w.state("push", "a", &[]).success();
    assert!(
        !w.fake.calls().iter().any(|c| c == "list releases"),
        "{:?}",
        w.fake.calls()
    );
    assert_eq!(w.fake.releases_tagged(STATE_TAG), 1);
    w.state("pull", "fresh", &[]).success();
    assert_eq!(w.balance("fresh"), 105);
}

/// `state pull` into `a` (whose last pull is older than the release), killed by the failpoint
/// `ledger_install_moved@n` after the n-th file moved into place (the ledger files in their
/// replace order, then the others with dot-names last, `ledger/install.rs`: 1 audit.jsonl,
/// 2 evidence.jsonl, 3 billing.jsonl, 4 the pull record `.state-pulled.json`; this state is
/// unsigned, so no heads.json comes before it): the ledger files the release holds.
fn pull_killed_at(n: u32) -> (World, Vec<(String, Vec<u8>)>) {
    let w = World::new();
    w.state("pull", "a", &[]).success();
    w.topup("a", 100, "INV-0");
    w.state("push", "a", &[]).success();
    w.state("pull", "b", &[]).success();
    w.seed("b");
    w.state("push", "b", &[]).success();
    let release = w.remote_all();
    let out = w
        .command()
        .args(["state", "pull", "--runtime-profile", "profile.yml"])
        .arg("--billing-state-dir")
        .arg(w.dir("a"))
        .env("PLATFORM_FAILPOINT", format!("ledger_install_moved@{n}"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "@{n}: the pull was not stopped");
    assert_has(&text(&out.stderr), "failpoint ledger_install_moved");
    assert!(w.dir("a/.ledger-install").is_dir(), "@{n}");
    (w, release)
}

/// Every ledger file of `dir` is the release's `release` file, byte for byte.
fn holds_release(w: &World, dir: &str, release: &[(String, Vec<u8>)], label: &str) {
    for (name, bytes) in release {
        assert_eq!(
            &std::fs::read(w.dir(dir).join(name)).unwrap(),
            bytes,
            "{label}: {dir}/{name}"
        );
    }
}

/// Until 2026-12-04 a `state pull` killed while it renamed the release's files into place
/// (or before it wrote its pull record) left a directory that, once a writer had appended,
/// could neither pull ("would overwrite local records") nor push ("someone pushed since your
/// pull", when nobody had); killed between two renames, the next writer added an audit record
/// of its own to a release's TOPUP, or every command called the charges forged. Now the pull
/// stages everything (files, heads, its record), then moves the folder in one rename, and the
/// next writer, pull or push finishes the move: a plain re-run recovers, nothing is lost.
/// Killed after the last file, the pull record, moved (@4), only the empty staged folder is
/// left to remove.
#[test]
fn a_pull_killed_while_moving_files_in_is_finished_by_the_next_writer_or_pull() {
    for n in 1..=4 {
        let label = format!("ledger_install_moved@{n}");
        // The next writer finishes the move, then appends; the push that follows is accepted
        // and a fresh pull gets every record.
        let (w, release) = pull_killed_at(n);
        let left = std::fs::read_dir(w.dir("a/.ledger-install"))
            .unwrap()
            .count();
        assert_eq!(left, 4 - n as usize, "{label}: files still to move");
        if n == 2 {
            // evidence.jsonl is the release's, billing.jsonl not yet: a reader says what
            // finishes it.
            let out =
                w.fx.run(&["integrity-validate", "--billing-state-dir", "a"]);
            assert_has(
                &format!("{}{}", out.stdout_text(), out.stderr_text()),
                "a `platform state pull` into a stopped while moving its files into place",
            );
        }
        let topup = w.try_topup("a", 5, "AFTER");
        let stderr = text(&topup.stderr);
        assert_has(
            &stderr,
            "an interrupted `platform state pull` had staged its files",
        );
        topup.expect_ok();
        assert!(!w.dir("a/.ledger-install").exists(), "{label}");
        w.state("push", "a", &[]).success();
        w.state("pull", "fresh", &[]).success();
        let billing = std::fs::read(w.dir("fresh/billing.jsonl")).unwrap();
        assert_eq!(billing, std::fs::read(w.dir("a/billing.jsonl")).unwrap());
        let references: Vec<String> = records(&billing)
            .iter()
            .filter(|r| r["type"] == "TOPUP")
            .map(|r| r["reference"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(references, ["INV-0", "INV-1", "INV-2", "AFTER"], "{label}");
        for (name, bytes) in &release {
            let now = std::fs::read(w.dir("fresh").join(name)).unwrap();
            assert!(now.starts_with(bytes), "{label}: {name} lost records");
        }
        w.fx.run(&["integrity-validate", "--billing-state-dir", "fresh"])
            .expect_ok();

        // Or the same pull again: it finishes the move and says so.
        let (w, release) = pull_killed_at(n);
        let out = w.state("pull", "a", &[]).success();
        assert_has(
            &text(&out.get_output().stderr),
            "an interrupted `platform state pull`",
        );
        holds_release(&w, "a", &release, &label);
        assert!(!w.dir("a/.ledger-install").exists(), "{label}");
        w.topup("a", 5, "AFTER");
        w.state("push", "a", &[]).success();
    }
}

/// A directory a pull left half-moved (`.ledger-install` holds the rest): readers, which take
/// no writer lock and cannot finish it, name the unfinished move, not a forgery; a pass,
/// which reads before its writer opens, finishes it first and runs. Until 2026-12-04
/// readers said "a forgery, or a copy cut back ... restore the directory", and a pass
/// refused the directory until some other writer came.
#[test]
fn a_half_moved_directory_is_named_by_readers_and_finished_by_a_pass() {
    for n in 1..=2 {
        let (w, release) = pull_killed_at(n);
        let label = format!("ledger_install_moved@{n}");
        for args in [
            &["integrity-validate", "--billing-state-dir", "a"][..],
            &["runs", "--billing-state-dir", "a"],
        ] {
            let out = w.fx.run(args);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{label} {args:?}: {}",
                out.text()
            );
            let text = out.text();
            assert_has(
                &text,
                "a `platform state pull` into a stopped while moving its files into place (.ledger-install/ holds the rest), so they do not match yet",
            );
            assert_has(&text, "it finishes the move first");
            assert!(
                !text.contains("forgery") && !text.contains("restore"),
                "{text}"
            );
        }
        let out = w.fx.run(&[
            "orchestrator",
            "--dry-run",
            "--runtime-dir",
            "runtime",
            "--billing-state-dir",
            "a",
        ]);
        assert_eq!(out.status.code(), Some(1), "{label}: {}", out.text());
        assert_has(&out.text(), "a dry run does not finish the move");
        let out = w.fx.run(&[
            "orchestrator",
            "--runtime-dir",
            "runtime",
            "--billing-state-dir",
            "a",
        ]);
        assert_eq!(out.status.code(), Some(0), "{label}: {}", out.text());
        assert_has(
            &out.text(),
            "an interrupted `platform state pull` had staged its files",
        );
        assert!(!w.dir("a/.ledger-install").exists(), "{label}");
        holds_release(&w, "a", &release, &label);
        w.fx.run(&["integrity-validate", "--billing-state-dir", "a"])
            .expect_ok();
    }
}

/// A pull refused after it finished an interrupted pull's move says what it moved, not "left
/// as it was" (until 2026-12-04 it did, though the directory now held the staged release).
#[test]
fn a_refused_pull_that_first_finished_an_interrupted_one_says_what_it_moved() {
    let (w, release) = pull_killed_at(1);
    let billing = w.remote("billing.jsonl").unwrap();
    let first_line = billing.iter().position(|b| *b == b'\n').unwrap() + 1;
    w.fake
        .put_asset(STATE_TAG, "billing.jsonl", &billing[..first_line]);
    let out = w.state("pull", "a", &[]).failure().code(1);
    let stderr = text(&out.get_output().stderr);
    assert_has(&stderr, "state pull from");
    assert_has(
        &stderr,
        "where this pull first finished earlier work: an interrupted `platform state pull`",
    );
    assert!(!stderr.contains("was left as it was"), "{stderr}");
    holds_release(&w, "a", &release, "finished, then refused");
    assert!(!w.dir("a/.ledger-install").exists());
}

/// Until 2026-12-04 the temp files of a killed `state pull` (its `.state-pull-*` staging
/// folder, a whole copy of the ledger) or `state push` (`.heads-*`), and of either's pull
/// record (`.tmp*`), stayed in the billing-state directory for good: docs/github.md said
/// "removed afterwards". The next run of the command that makes them removes them under the
/// ledger lock and says so; another command's, and links, are left alone.
#[test]
fn temp_files_a_killed_pull_or_push_left_are_removed_by_its_next_run() {
    let w = World::new();
    w.state("pull", "a", &[]).success();
    w.topup("a", 100, "INV-1");
    w.state("push", "a", &[]).success();
    let a = w.dir("a");
    std::fs::create_dir(a.join(".state-pull-Ab12Cd")).unwrap();
    std::fs::write(a.join(".state-pull-Ab12Cd/billing.jsonl"), b"staged").unwrap();
    std::fs::write(a.join(".state-record-Ef34Gh"), b"{").unwrap();
    std::fs::write(a.join(".tmpIj56Kl"), b"{").unwrap();
    std::fs::write(a.join(".heads-Mn78Op"), b"{").unwrap();
    let outside = w.dir("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep"), b"mine").unwrap();
    std::os::unix::fs::symlink(&outside, a.join(".state-pull-link00")).unwrap();

    let out = w.state("pull", "a", &["--json"]).success();
    let stderr = text(&out.get_output().stderr);
    assert_has(
        &stderr,
        "removed what an interrupted `platform state pull` left in",
    );
    assert_has(
        &stderr,
        ".state-pull-Ab12Cd, .state-record-Ef34Gh, .tmpIj56Kl",
    );
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json["notes"].as_array().unwrap().len(), 1, "{json}");
    for gone in [".state-pull-Ab12Cd", ".state-record-Ef34Gh", ".tmpIj56Kl"] {
        assert!(a.join(gone).symlink_metadata().is_err(), "{gone}");
    }
    assert!(
        a.join(".heads-Mn78Op").exists(),
        "a push's temp file is the push's"
    );
    assert!(a.join(".state-pull-link00").symlink_metadata().is_ok());
    assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"mine");

    let out = w.state("push", "a", &[]).success();
    assert_has(
        &text(&out.get_output().stderr),
        "removed what an interrupted `platform state push` left in",
    );
    assert!(!a.join(".heads-Mn78Op").exists());
    // Nothing of either command is left behind by a run that completes.
    let out = w.state("pull", "a", &[]).success();
    assert!(
        out.get_output().stderr.is_empty(),
        "{}",
        text(&out.get_output().stderr)
    );
}
