//! Signing-key messages end to end: a heads.json that does not verify is named as such (never "heads.json is the signature ..."), and a key rotation's leftovers (old-key heads.json in a copy, the old key removed too early) name the key and the way out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::assert_has;
use crate::support::state::{flip_signature_bit, pushed, stderr_of, text, World, STATE_TAG};
use serde_json::Value;

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// Until 2026-12-04 these read "the state release's heads.json is the signature does not
/// verify ..." and "... heads.json is signature decodes to 5 bytes; an Ed25519 key is 64
/// bytes" (a signature is no key).
#[test]
fn a_bad_or_short_signature_is_named_as_such() {
    let w = pushed();
    let kid = w.key.clone().unwrap().key_id;
    let fresh = w.dir("fresh").display().to_string();
    let bad = flip_signature_bit(&w.remote("heads.json").unwrap());
    w.fake.put_asset(STATE_TAG, "heads.json", &bad);
    let out = w.state("pull", "fresh", &[]).failure().code(1);
    assert_eq!(
        first_line(&stderr_of(&out)),
        format!("error: state pull from acme/state refused: the state release's heads.json does not verify with key {kid}: heads.json was altered, or not signed by that key; {fresh} was left as it was")
    );
    let out = w.state("push", "a", &[]).failure().code(1);
    assert_eq!(
        first_line(&stderr_of(&out)),
        format!("error: state push to acme/state refused: the state release '{STATE_TAG}' fails verification: the state release's heads.json does not verify with key {kid}: heads.json was altered, or not signed by that key; nothing was uploaded")
    );

    let mut doc: Value = serde_json::from_slice(&bad).unwrap();
    doc["signature"] = Value::from("c2hvcnQ=");
    w.fake
        .put_asset(STATE_TAG, "heads.json", doc.to_string().as_bytes());
    let out = w.state("pull", "fresh", &[]).failure().code(1);
    assert_eq!(
        first_line(&stderr_of(&out)),
        format!("error: state pull from acme/state refused: the state release's heads.json does not verify with key {kid}: its signature decodes to 5 bytes; an Ed25519 signature is 64 bytes; {fresh} was left as it was")
    );
}

/// Every file of `from` (a billing-state directory) copied into `to`.
fn copy_dir(w: &World, from: &str, to: &str) {
    std::fs::create_dir_all(w.dir(to)).unwrap();
    for entry in std::fs::read_dir(w.dir(from)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), w.dir(to).join(entry.file_name())).unwrap();
        }
    }
}

fn integrity(w: &World, dir: &str) -> (i32, String) {
    let out = w
        .cmd()
        .args(["integrity-validate", "--billing-state-dir"])
        .arg(w.dir(dir))
        .output()
        .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    (out.status.code().unwrap(), all)
}

/// Until 2026-12-04 a copy holding the old key's heads.json failed integrity-validate with
/// no hint that a pull fixes it, and removing the old key before a push re-signed the
/// release made pull and push point only at `state push --restore`.
#[test]
fn key_rotation_leftovers_name_the_key_and_the_way_out() {
    let mut w = pushed();
    let old = w.key.clone().unwrap();
    let new = w.keygen();
    copy_dir(&w, "a", "copy");
    copy_dir(&w, "a", "busy");

    // Out of order: the old key removed before any push re-signed the release.
    w.trust(&[&new]);
    w.key = Some(new.clone());
    let relist = format!(
        "list {} again until `platform state push` has re-signed it",
        old.key_id
    );
    let out = w.state("pull", "fresh", &[]).failure().code(1);
    let stderr = stderr_of(&out);
    assert_has(
        &stderr,
        &format!(
            "the state release's heads.json is signed by key {}, which config/ledger.yml does not list (listed: {})",
            old.key_id, new.key_id
        ),
    );
    assert_has(&stderr, &relist);
    let out = w.state("push", "a", &[]).failure().code(1);
    assert_has(&stderr_of(&out), &relist);

    // Listed again, the push re-signs with the new key; then the old key goes.
    w.trust(&[&old, &new]);
    w.state("push", "a", &[]).success();
    let heads: Value = serde_json::from_slice(&w.remote("heads.json").unwrap()).unwrap();
    assert_eq!(heads["key_id"], new.key_id.as_str());
    w.trust(&[&new]);
    w.state("pull", "fresh", &[]).success();

    // The copy pulled before the rotation still holds the old key's heads.json.
    let (code, out) = integrity(&w, "copy");
    assert_eq!(code, 1, "{out}");
    assert_has(
        &out,
        &format!(
            "heads.json:1: heads.json is signed by key {}, which config/ledger.yml does not list (listed: {}): if a key rotation removed {}, run `platform state pull` into this directory (or `platform state push` when it holds records not yet pushed) to get heads.json re-signed with a listed key",
            old.key_id, new.key_id, old.key_id
        ),
    );
    // And the way out works: a pull brings the re-signed heads.json; a copy with records
    // not yet pushed gets one signed with the new key by its push.
    w.state("pull", "copy", &[]).success();
    let (code, out) = integrity(&w, "copy");
    assert_eq!(code, 0, "{out}");
    w.topup("busy", 5, "LATER");
    assert_eq!(integrity(&w, "busy").0, 1);
    w.state("push", "busy", &[]).success();
    let (code, out) = integrity(&w, "busy");
    assert_eq!(code, 0, "{out}");
}

/// `a` pushed top-ups of 100 (R1) and 50 (R2), signed with the listed key, which leaked: the
/// thief raised R1 to 1000, re-chained billing.jsonl and re-signed heads.json with it.
fn leaked_and_forged() -> World {
    use crate::support::state::{forge_topup, REPOSITORY};
    use platform::heads::{Heads, SignedHeads, Signer};
    let w = World::signed();
    let leaked = w.key.clone().unwrap();
    w.state("pull", "a", &[]).success();
    w.topup("a", 100, "R1");
    w.topup("a", 50, "R2");
    w.state("push", "a", &[]).success();
    copy_dir(&w, "a", "thief");
    let forged = forge_topup(&w.remote("billing.jsonl").unwrap(), 1000);
    std::fs::write(w.dir("thief/billing.jsonl"), &forged).unwrap();
    let report = platform::ledger::verify(&w.dir("thief")).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let heads = Heads::of_report(&report, REPOSITORY, STATE_TAG, &leaked.key_id);
    let signer = Signer::from_secret(&leaked.private_key).unwrap();
    let signed = SignedHeads::sign(heads, &signer).unwrap();
    w.fake.put_asset(STATE_TAG, "billing.jsonl", &forged);
    w.fake
        .put_asset(STATE_TAG, "heads.json", &signed.to_bytes().unwrap());
    w
}

/// A leaked key (docs/ledger.md, "A lost or leaked signing key"): while it is listed, whoever holds
/// it and can write the release makes a forged state that a fresh pull accepts; only the
/// directories that hold the genuine state refuse it. Once it is removed, its heads.json is
/// refused everywhere, and a restore from a trusted copy drops the forged records only when
/// told to, naming them.
#[test]
fn a_leaked_key_signs_what_a_fresh_pull_accepts_until_it_is_removed_and_the_state_restored() {
    let mut w = leaked_and_forged();
    let leaked = w.key.clone().unwrap();

    // What signing cannot prevent while the key is listed: a fresh pull takes the forgery.
    let out = w.state("pull", "fresh", &["--json"]).success();
    assert_eq!(
        crate::support::state::json_of(&out)["signing"]["status"],
        "signed"
    );
    assert_eq!(w.balance("fresh"), 1050);
    assert_eq!(integrity(&w, "fresh").0, 0);
    // The directory that holds the genuine state refuses it.
    let out = w.state("pull", "a", &[]).failure().code(1);
    assert_has(
        &stderr_of(&out),
        "does not start with what this directory last pulled or pushed",
    );

    // The leaked key removed, a new one listed and set: its heads.json is refused.
    let new = w.keygen();
    w.trust(&[&new]);
    w.key = Some(new);
    let out = w.state("pull", "fresh2", &[]).failure().code(1);
    assert_has(
        &stderr_of(&out),
        &format!(
            "is signed by key {}, which config/ledger.yml does not list",
            leaked.key_id
        ),
    );
    // The trusted copy lacks the forged records: named, dropped only when told to.
    let out = w
        .state("push", "a", &["--restore", "--actor", "ops"])
        .failure()
        .code(1);
    assert_has(
        &stderr_of(&out),
        "a lacks records of the state release that no listed key signed: billing.jsonl seq 1..2 (not signed)",
    );
    let restored = crate::support::state::restore_discarding(&w, "a");
    assert!(
        restored.starts_with("discarded billing.jsonl seq 1..2 (not signed)"),
        "{restored}"
    );
    w.state("pull", "fresh3", &[]).success();
    assert_eq!(w.balance("fresh3"), 150);
}

/// Rotation is no cure for a leaked key: its "push once" re-signs whatever the release holds
/// with the new key, the forgery included, and a restore never drops signed records.
#[test]
fn rotating_away_from_a_leaked_key_signs_the_forgery_with_the_new_key() {
    let mut w = leaked_and_forged();
    let leaked = w.key.clone().unwrap();
    let new = w.keygen();
    w.trust(&[&leaked, &new]);
    w.key = Some(new.clone());
    w.state("pull", "fresh", &[]).success();
    w.state("push", "fresh", &[]).success();
    w.trust(&[&new]);
    w.state("pull", "fresh2", &[]).success();
    assert_eq!(w.balance("fresh2"), 1050);
    let out = w
        .state(
            "push",
            "a",
            &["--restore", "--actor", "ops", "--discard-unverified"],
        )
        .failure()
        .code(1);
    assert_has(
        &stderr_of(&out),
        "lacks records it signs: billing.jsonl seq 1..2 (signed)",
    );
}
