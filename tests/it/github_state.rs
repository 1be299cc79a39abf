//! `platform state pull|push` end to end (unsigned state: no config/ledger.yml): the real binary against a fake GitHub on loopback, with real ledgers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::assert_has;
use crate::support::state::{text, World, STATE_TAG};

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
    assert_eq!(
        w.writes(),
        [
            "delete billing.jsonl",
            "upload billing.jsonl",
            "delete audit.jsonl",
            "upload audit.jsonl"
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
