//! `state push --restore` never drops what the release holds and the local copy lacks without saying so: signed records never, unsigned ones only with `--discard-unverified` (named in the audit record), records the signed heads refute freely (named); the real binary against the stateful fake GitHub.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::assert_has;
use crate::support::state::{
    flip_signature_bit, forge_topup, json_of, last_audit, resign, stderr_of, World, STATE_TAG,
};

const RESTORE: &str = "platform state push --restore";

/// `a` pushed top-up R1, `stale` pulled it, then `a` pushed R2 and R3: the release holds
/// billing.jsonl and audit.jsonl seq 1..3 (a TOPUP and its audit record each), signed.
fn stale_copy() -> World {
    let w = World::signed();
    w.state("pull", "a", &[]).success();
    w.topup("a", 100, "R1");
    w.state("push", "a", &[]).success();
    w.state("pull", "stale", &[]).success();
    w.topup("a", 50, "R2");
    w.topup("a", 25, "R3");
    w.state("push", "a", &[]).success();
    w
}

/// `--restore` from `dir` is refused with exit 1 naming `want`, and nothing changed: no
/// write to the release, `dir` byte for byte as it was (no audit record either).
fn restore_is_refused(w: &World, dir: &str, extra: &[&str], want: &[&str]) -> String {
    let release = w.remote_all();
    let before = w.snapshot(dir);
    w.fake.clear_calls();
    let mut args = vec!["--restore", "--actor", "ops"];
    args.extend_from_slice(extra);
    let out = w.state("push", dir, &args).failure().code(1);
    let stderr = stderr_of(&out);
    for needle in want {
        assert_has(&stderr, needle);
    }
    assert!(w.writes().is_empty(), "{:?}", w.writes());
    assert_eq!(w.remote_all(), release);
    assert_eq!(w.snapshot(dir), before);
    stderr
}

/// Until 2026-12-04 a restore from a stale copy over a release whose only fault was its
/// heads.json (a flipped signature bit, deleted, re-signed by a stranger) exited 0 and put
/// the stale copy in its place: R2 and R3 were gone, and the balance with them.
#[test]
fn a_restore_from_a_stale_copy_over_a_tampered_heads_json_keeps_the_releases_records() {
    type Tamper = fn(&World);
    let tampers: [(&str, Tamper, &str); 3] = [
        (
            "a flipped signature bit",
            |w| {
                let bad = flip_signature_bit(&w.remote("heads.json").unwrap());
                w.fake.put_asset(STATE_TAG, "heads.json", &bad);
            },
            "does not verify with key",
        ),
        (
            "a deleted heads.json",
            |w| w.fake.remove_asset(STATE_TAG, "heads.json"),
            "the state release had no heads.json",
        ),
        (
            "a stranger's key",
            |w| {
                let forged = resign(w, &w.keygen(), |_| {});
                w.fake.put_asset(STATE_TAG, "heads.json", &forged);
            },
            "which config/ledger.yml does not list",
        ),
    ];
    for (what, tamper, why) in tampers {
        let w = stale_copy();
        tamper(&w);
        let stderr = restore_is_refused(
            &w,
            "stale",
            &[],
            &[
                "state push --restore refused: ",
                "lacks records of the state release that no listed key signed: billing.jsonl seq 2..3 (not signed), audit.jsonl seq 2..3 (not signed); ",
                why,
                "restoring would discard them; nothing was uploaded",
                "--discard-unverified",
            ],
        );
        assert!(!stderr.contains("seq 1"), "{what}: {stderr}");

        // The copy that holds every record restores it; nothing is lost.
        let out = w
            .state("push", "a", &["--restore", "--actor", "ops", "--json"])
            .success();
        let restored = json_of(&out)["restored"].as_str().unwrap().to_string();
        assert!(!restored.contains("discarded"), "{what}: {restored}");
        last_audit(&w, "a", "state.restore", RESTORE);
        w.state("pull", "fresh", &[]).success();
        assert_eq!(w.balance("fresh"), 175, "{what}");
    }
}

/// With `--discard-unverified` the operator drops unsigned records knowingly: the output and
/// the state.restore record name each one.
#[test]
fn discard_unverified_drops_unsigned_records_and_names_them_in_the_audit_record() {
    let w = stale_copy();
    let bad = flip_signature_bit(&w.remote("heads.json").unwrap());
    w.fake.put_asset(STATE_TAG, "heads.json", &bad);
    let restored = crate::support::state::restore_discarding(&w, "stale");
    let named = "discarded billing.jsonl seq 2..3 (not signed), audit.jsonl seq 2..3 (not signed); the state release's heads.json does not verify with key";
    assert!(restored.starts_with(named), "{restored}");
    let audit = last_audit(&w, "stale", "state.restore", RESTORE);
    assert!(
        audit["reason"].as_str().unwrap().starts_with(named),
        "{audit:?}"
    );
    w.state("pull", "fresh", &[]).success();
    assert_eq!(w.balance("fresh"), 100);

    // Without --restore the flag means nothing: exit 2.
    let out = w
        .state("push", "stale", &["--discard-unverified"])
        .failure()
        .code(2);
    assert_has(&stderr_of(&out), "--restore");
}

/// A push killed before heads.json (the documented CI case) leaves valid signed heads with
/// records past them. Until 2026-12-04 a restore from a stale copy passed "records past its
/// signed heads" and discarded the signed record R2 with the unsigned R3.
#[test]
fn a_restore_over_an_interrupted_push_never_drops_its_signed_records() {
    let w = World::signed();
    w.state("pull", "a", &[]).success();
    w.topup("a", 100, "R1");
    w.state("push", "a", &[]).success();
    w.state("pull", "stale", &[]).success();
    w.topup("a", 50, "R2");
    w.state("push", "a", &[]).success();
    w.state("pull", "mid", &[]).success();
    w.topup("a", 25, "R3");
    let out = w
        .cmd()
        .env("PLATFORM_FAILPOINT", "state_push_before_heads")
        .args(["state", "push", "--runtime-profile", "profile.yml"])
        .arg("--billing-state-dir")
        .arg(w.dir("a"))
        .output()
        .unwrap();
    assert!(!out.status.success());

    // Signed R2 is never dropped, not even with --discard-unverified.
    for extra in [&[][..], &["--discard-unverified"][..]] {
        restore_is_refused(
            &w,
            "stale",
            extra,
            &[
                "stale lacks records it signs: billing.jsonl seq 2 (signed), audit.jsonl seq 2 (signed) (and records no key signed: billing.jsonl seq 3 (not signed), audit.jsonl seq 3 (not signed)); restoring would discard signed records; nothing was uploaded",
                "--adopt-unsigned",
                "ledger merge --into <fresh>",
            ],
        );
    }
    // A copy with R2 lacks only the unsigned R3: refused unless discarded knowingly.
    restore_is_refused(
        &w,
        "mid",
        &[],
        &[
            "mid lacks records of the state release that no listed key signed: billing.jsonl seq 3 (not signed), audit.jsonl seq 3 (not signed); the state release had records past its signed heads (heads signed at ",
            "--discard-unverified",
        ],
    );

    // The way the refusal points to keeps everything: adopt the records past the heads into
    // a fresh directory, merge the stale copy in, push.
    w.state(
        "pull",
        "fresh",
        &["--adopt-unsigned", "--actor", "ops", "--json"],
    )
    .success();
    w.cmd()
        .args(["ledger", "merge", "--into"])
        .arg(w.dir("fresh"))
        .arg(w.dir("stale"))
        .assert()
        .success();
    w.state("push", "fresh", &[]).success();
    w.state("pull", "check", &[]).success();
    assert_eq!(w.balance("check"), 175);
}

/// Records the signed heads refute (the release's file no longer contains its signed head;
/// the local copy does) are what a restore is for: replaced without asking, and named.
#[test]
fn records_the_signed_heads_refute_are_replaced_and_named() {
    let w = World::signed();
    w.state("pull", "a", &[]).success();
    w.topup("a", 100, "R1");
    w.topup("a", 50, "R2");
    w.state("push", "a", &[]).success();
    let forged = forge_topup(&w.remote("billing.jsonl").unwrap(), 1000);
    w.fake.put_asset(STATE_TAG, "billing.jsonl", &forged);

    let out = w
        .state("push", "a", &["--restore", "--actor", "ops", "--json"])
        .success();
    let restored = json_of(&out)["restored"].as_str().unwrap().to_string();
    assert!(
        restored.starts_with(
            "discarded billing.jsonl seq 1..2 (not the signed records); the state release does not match its signed heads"
        ),
        "{restored}"
    );
    w.state("pull", "fresh", &[]).success();
    assert_eq!(w.balance("fresh"), 150);
}
