//! Signed heads and verified transport (SPEC §7), end to end: the real binary against the stateful fake GitHub, with every attack forged for real (edited and re-chained ledgers, dropped and damaged lines, re-signed or stolen heads) and refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::{assert_has, find};
use crate::support::state::{
    failed_upload_then_retry, flip_signature_bit, forge_topup, json_of, last_audit, never_lacked,
    pushed, rechain, records, resign, stderr_of, text, Key, World, STATE_TAG,
};
use crate::support::Transcript;
use platform::heads::{SignedHeads, Signer};
use proptest::prelude::*;
use serde_json::Value;
use std::time::Duration;

/// `state pull --adopt-unsigned --actor ops --json` into `dir`: its report and the audit
/// record of the adoption.
fn adopt(w: &World, dir: &str) -> (Value, serde_json::Map<String, Value>) {
    let out = w
        .state(
            "pull",
            dir,
            &["--adopt-unsigned", "--actor", "ops", "--json"],
        )
        .success();
    let json = json_of(&out);
    assert_eq!(json["signing"]["status"], "adopted_unsigned");
    let command = "platform state pull --adopt-unsigned";
    (json, last_audit(w, dir, "state.adopt_unsigned", command))
}

/// A pull of the release into a fresh directory and into `a` is refused with exit 1, names
/// `want`, creates nothing and leaves `a` exactly as it was.
fn pull_is_refused(w: &World, want: &str) {
    let out = w.state("pull", "fresh", &[]).failure().code(1);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("refused") && stderr.contains(want),
        "{stderr}"
    );
    assert!(
        !w.dir("fresh").exists(),
        "a refused pull created its directory"
    );
    let before = w.snapshot("a");
    w.state("pull", "a", &[]).failure().code(1);
    assert_eq!(
        w.snapshot("a"),
        before,
        "a refused pull changed the directory"
    );
}

#[test]
fn keygen_prints_a_key_pair_whose_id_derives_from_the_public_key() {
    use base64::Engine;
    let w = World::new();
    let k = w.keygen();
    let b64 = base64::engine::general_purpose::STANDARD;
    let public = b64.decode(&k.public_key).unwrap();
    assert_eq!(public.len(), 32);
    assert_eq!(b64.decode(&k.private_key).unwrap().len(), 32);
    assert_eq!(k.key_id, platform::digest::sha256_hex(&public)[..16]);
    assert_ne!(w.keygen().private_key, k.private_key, "keys are random");
    let out = w.fx.run(&["ledger", "keygen"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("PLATFORM_LEDGER_SIGNING_KEY") && stdout.contains("signing_keys:"));

    // config/ledger.yml is validated: a key_id that is not its key's is an error at its line.
    let other = w.keygen();
    std::fs::write(
        w.fx.path("config/ledger.yml"),
        format!(
            "signing_keys:\n  - key_id: \"{}\"\n    public_key: {}\n",
            k.key_id, other.public_key
        ),
    )
    .unwrap();
    let out = w.fx.run(&["consistency-validate", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let findings: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = find(&findings["errors"], "file", "config/ledger.yml");
    assert_eq!(f["file"], "config/ledger.yml");
    assert_eq!(f["field"], "signing_keys[0].key_id");
    assert!(
        f["message"].as_str().unwrap().contains(&other.key_id),
        "{f}"
    );
    let out = w.fx.run(&["schema", "ledger"]);
    assert!(text(&out.stdout).contains("signing_keys"));
}

#[test]
fn a_signed_round_trip_uploads_heads_last_and_reports_unpushed_records() {
    let w = World::signed();
    w.state("pull", "a", &[]).success();
    w.seed("a");
    w.fake.clear_calls();
    let out = w.state("push", "a", &["--json"]).success();
    let writes = w.writes();
    assert_eq!(
        writes.last().unwrap(),
        "rename heads.json.staged to heads.json",
        "{writes:?}"
    );
    assert_eq!(
        writes[writes.len() - 2],
        "upload heads.json.staged",
        "{writes:?}"
    );
    assert_eq!(
        writes.iter().filter(|c| c.starts_with("upload")).count(),
        4,
        "{writes:?}"
    );
    let json = json_of(&out);
    assert_eq!(json["signing"]["status"], "signed");
    assert_eq!(
        json["signing"]["key_id"],
        w.key.as_ref().unwrap().key_id.as_str()
    );
    assert_eq!(json["heads_uploaded"], true);
    let heads = SignedHeads::parse(&w.remote("heads.json").unwrap())
        .unwrap()
        .heads;
    assert_eq!(heads.repository, "acme/state");
    assert_eq!(heads.state_tag, STATE_TAG);
    let billing = records(&w.remote("billing.jsonl").unwrap());
    let last = billing.last().unwrap();
    assert_eq!(
        heads.files["billing.jsonl"].seq,
        last["seq"].as_u64().unwrap()
    );
    assert_eq!(
        heads.files["billing.jsonl"].hash,
        last["hash"].as_str().unwrap()
    );
    assert_eq!(
        std::fs::read(w.dir("a/heads.json")).unwrap(),
        w.remote("heads.json").unwrap()
    );

    // Another directory pulls and verifies; integrity-validate agrees.
    let out = w.state("pull", "b", &["--json"]).success();
    assert_eq!(json_of(&out)["signing"]["status"], "signed");
    let iv = |dir: &str| {
        w.cmd()
            .args(["integrity-validate", "--json", "--billing-state-dir"])
            .arg(w.dir(dir))
            .output()
            .unwrap()
    };
    let out = iv("b");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["signed_heads"]["signature_verified"], true);
    assert_eq!(report["signed_heads"]["not_yet_pushed"], 0);

    // New records are "not yet pushed", not an error, until the push signs them.
    w.topup("b", 9, "INV-3");
    let out = iv("b");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["signed_heads"]["not_yet_pushed"], 2, "{report}");
    w.state("push", "b", &[]).success();
    let out = iv("b");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["signed_heads"]["not_yet_pushed"], 0, "{report}");

    // Nothing new: nothing uploaded, the release's heads are already current.
    w.fake.clear_calls();
    let out = w.state("push", "b", &[]).success();
    assert!(w.writes().is_empty(), "{:?}", w.writes());
    assert!(text(&out.get_output().stdout).contains("already current"));
}

#[test]
fn attack_1_a_topup_raised_and_rechained_is_refused_by_push_and_by_pull() {
    let w = pushed();
    let remote_before = w.remote_all();

    // Through `state push` from a pulled copy, even holding the signing key.
    w.state("pull", "evil", &[]).success();
    let billing = std::fs::read(w.dir("evil/billing.jsonl")).unwrap();
    let forged = forge_topup(&billing, 1000);
    std::fs::write(w.dir("evil/billing.jsonl"), &forged).unwrap();
    let iv = w
        .cmd()
        .args(["integrity-validate", "--billing-state-dir"])
        .arg(w.dir("evil"))
        .output()
        .unwrap();
    assert_eq!(
        iv.status.code(),
        Some(1),
        "the local heads.json catches it: {}",
        text(&iv.stdout)
    );
    assert!(
        text(&iv.stdout).contains("billing.jsonl"),
        "{}",
        text(&iv.stdout)
    );
    // The signature itself is good: the report says the file diverged from it, not that
    // the signature failed, and never that every record is pushed.
    let summary = text(&iv.stdout);
    assert!(
        summary.contains("signature verified")
            && summary.contains("billing.jsonl no longer end(s) where it is signed")
            && !summary.contains("every record is pushed"),
        "{summary}"
    );
    let iv_json = w
        .cmd()
        .args(["integrity-validate", "--json", "--billing-state-dir"])
        .arg(w.dir("evil"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&iv_json.stdout).unwrap();
    assert_eq!(
        report["signed_heads"]["signature_verified"], true,
        "{report}"
    );
    w.fake.clear_calls();
    let out = w.state("push", "evil", &[]).failure().code(1);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("no longer start") && stderr.contains("billing.jsonl"),
        "{stderr}"
    );
    assert!(w.writes().is_empty(), "{:?}", w.writes());
    assert_eq!(w.remote_all(), remote_before);

    // Written straight to the release: every pull refuses it, and balances stay honest.
    w.fake.put_asset(STATE_TAG, "billing.jsonl", &forged);
    pull_is_refused(&w, "billing.jsonl");
    let out = w
        .cmd()
        .args([
            "balance",
            "--tenant-id",
            "t1",
            "--json",
            "--billing-state-dir",
        ])
        .arg(w.dir("a"))
        .output()
        .unwrap();
    let balance: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        balance["balance_credits"].as_i64().unwrap() < 1000,
        "{balance}"
    );
}

#[test]
fn attack_2_dropped_records_and_a_damaged_line_are_refused_by_push_and_by_pull() {
    let w = pushed();
    let billing = w.remote("billing.jsonl").unwrap();
    let lines = records(&billing);
    assert!(lines.len() >= 4, "{}", lines.len());
    // The last top-up dropped: SPENDs dropped would not even verify (their run's run_ended
    // counts them: ledger_accounts), a trailing record nothing counts does.
    let truncated = rechain(&lines[..lines.len() - 1]);
    // ...with its audit record (alone, it is refused by every verification: its audit record
    // names it; both files cut are a valid ledger that only the signed heads tell from the
    // real one).
    let audits = records(&w.remote("audit.jsonl").unwrap());
    let audit_cut = rechain(&audits[..audits.len() - 1]);
    let evidence = std::fs::read(w.dir("a/evidence.jsonl")).unwrap();
    let mut damaged = evidence.clone();
    let middle = damaged.iter().position(|b| *b == b'\n').unwrap() + 20;
    damaged[middle] ^= 0x01;

    // Local copies: push refuses both, uploads nothing.
    for (file, bytes, want) in [
        ("billing.jsonl", &truncated, "no longer start"),
        ("evidence.jsonl", &damaged, "fails verification"),
    ] {
        let dir = format!("evil-{file}");
        w.state("pull", &dir, &[]).success();
        std::fs::write(w.dir(&dir).join(file), bytes).unwrap();
        if file == "billing.jsonl" {
            std::fs::write(w.dir(&dir).join("audit.jsonl"), &audit_cut).unwrap();
        }
        w.fake.clear_calls();
        let out = w.state("push", &dir, &[]).failure().code(1);
        let stderr = stderr_of(&out);
        assert!(stderr.contains(want) && stderr.contains(file), "{stderr}");
        assert_has(&stderr, "nothing was uploaded");
        assert!(w.writes().is_empty(), "{:?}", w.writes());
    }

    // Straight on the release: pull refuses both.
    let audit = w.remote("audit.jsonl").unwrap();
    w.fake.put_asset(STATE_TAG, "billing.jsonl", &truncated);
    pull_is_refused(&w, "holds no such record");
    w.fake.put_asset(STATE_TAG, "audit.jsonl", &audit_cut);
    pull_is_refused(&w, "before its signed head");
    w.fake.put_asset(STATE_TAG, "billing.jsonl", &billing);
    w.fake.put_asset(STATE_TAG, "audit.jsonl", &audit);
    w.fake.put_asset(STATE_TAG, "evidence.jsonl", &damaged);
    pull_is_refused(&w, "fails verification");
    // A push uploading its files one by one looks the same from outside: the help says to
    // pull again first, before any restore (until 2026-12-04 it went straight to restoring).
    let out = w.state("pull", "fresh", &[]).failure().code(1);
    assert!(
        stderr_of(&out).contains("if a `platform state push` may be running elsewhere (another job, another machine), pull again once it has finished; otherwise"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn attack_3_history_rewritten_and_rechained_is_refused_whatever_is_done_with_the_heads() {
    let w = pushed();
    let billing = w.remote("billing.jsonl").unwrap();
    // Every charge erased: the chain verifies, but the run's run_ended states them (since
    // 2026-12-03 a forgery of billing.jsonl alone that evidence.jsonl contradicts fails
    // verification, signed heads or not).
    let mut lines = records(&billing);
    lines.retain(|l| l["type"] != "SPEND");
    w.fake
        .put_asset(STATE_TAG, "billing.jsonl", &rechain(&lines));
    pull_is_refused(&w, "billing.jsonl holds SPENDs of 0");
    // The first top-up rewritten to 1,000 credits: nothing in the other files says what it
    // was, and the chain verifies.
    let mut lines = records(&billing);
    lines[0].insert("amount_credits".into(), Value::from(1000));
    let rewritten = rechain(&lines);
    w.fake.put_asset(STATE_TAG, "billing.jsonl", &rewritten);

    // The old heads stay: the chain no longer ends at them.
    pull_is_refused(&w, "does not match its signed heads");
    // Re-signed by the attacker's own key: not a listed key.
    let attacker = w.keygen();
    let report_files = |h: &mut platform::heads::Heads| {
        let last = records(&rewritten).pop().unwrap();
        let f = h.files.get_mut("billing.jsonl").unwrap();
        f.seq = last["seq"].as_u64().unwrap();
        f.hash = last["hash"].as_str().unwrap().to_string();
    };
    w.fake.put_asset(
        STATE_TAG,
        "heads.json",
        &resign(&w, &attacker, report_files),
    );
    pull_is_refused(&w, "does not list");
    // heads.json deleted: unsigned state is refused unless adopted.
    w.fake.remove_asset(STATE_TAG, "heads.json");
    pull_is_refused(&w, "no heads.json");
}

#[test]
fn a_bad_signature_is_refused() {
    let w = pushed();
    let heads = text(&w.remote("heads.json").unwrap());
    // The signed seq of audit.jsonl lowered by one, signature kept: it no longer verifies.
    let mut doc: Value = serde_json::from_str(&heads).unwrap();
    let seq = doc["files"]["audit.jsonl"]["seq"].as_u64().unwrap();
    doc["files"]["audit.jsonl"]["seq"] = Value::from(seq - 1);
    w.fake
        .put_asset(STATE_TAG, "heads.json", doc.to_string().as_bytes());
    pull_is_refused(&w, "does not verify");
}

#[test]
fn an_unknown_key_is_refused() {
    let w = pushed();
    let stranger = w.keygen();
    w.fake
        .put_asset(STATE_TAG, "heads.json", &resign(&w, &stranger, |_| {}));
    pull_is_refused(&w, "does not list");
}

#[test]
fn another_repositorys_heads_are_refused() {
    let w = pushed();
    // Signed with the real key (one key shared by two platforms), but for another repository.
    let key = w.key.clone().unwrap();
    let other = resign(&w, &key, |h| h.repository = "acme/other".into());
    w.fake.put_asset(STATE_TAG, "heads.json", &other);
    pull_is_refused(&w, "another repository");
    let tag = resign(&w, &key, |h| h.state_tag = "billing-state-v0".into());
    w.fake.put_asset(STATE_TAG, "heads.json", &tag);
    pull_is_refused(&w, "another repository");
}

#[test]
fn records_past_the_signed_head_are_refused_unless_adopted_with_an_audit_record() {
    let w = pushed();
    // Someone without the key appends a valid record and uploads the file alone.
    w.state("pull", "nokey", &[]).success();
    w.topup("nokey", 5, "SNEAK");
    for f in ["billing.jsonl", "audit.jsonl"] {
        w.fake.put_asset(
            STATE_TAG,
            f,
            &std::fs::read(w.dir("nokey").join(f)).unwrap(),
        );
    }
    pull_is_refused(&w, "past its signed heads");

    let (json, last) = adopt(&w, "adopted");
    assert_eq!(json["signing"]["past_signed_head"]["billing.jsonl"], 1);
    assert_eq!(json["audit_key"], last["idempotency_key"]);
    // The next push signs everything; a fresh pull verifies again.
    w.state("push", "adopted", &[]).success();
    w.state("pull", "fresh2", &[]).success();
    assert_eq!(
        std::fs::read(w.dir("fresh2/audit.jsonl")).unwrap(),
        std::fs::read(w.dir("adopted/audit.jsonl")).unwrap()
    );
}

#[test]
fn the_upgrade_from_unsigned_state_is_an_audited_adoption() {
    // Unsigned state on the release, then config/ledger.yml lists a first key.
    let mut w = World::new();
    w.state("pull", "a", &[]).success();
    w.seed("a");
    w.state("push", "a", &[]).success();
    assert!(w.remote("heads.json").is_none());
    let key = w.keygen();
    w.trust(&[&key]);
    w.key = Some(key);

    pull_is_refused(&w, "no heads.json");
    let out = w
        .state("pull", "up", &["--adopt-unsigned"])
        .failure()
        .code(2);
    assert_has(&stderr_of(&out), "no actor");
    assert!(!w.dir("up").exists());

    let (json, last) = adopt(&w, "up");
    assert_eq!(json["signing"]["had_heads"], false);
    assert!(last["target"]
        .as_str()
        .unwrap()
        .starts_with("acme/state/billing-state-v1/b"));

    let out = w.state("push", "up", &["--json"]).success();
    assert_eq!(json_of(&out)["heads_uploaded"], true);
    let out = w.state("pull", "after", &["--json"]).success();
    assert_eq!(json_of(&out)["signing"]["status"], "signed");
}

#[test]
fn an_interrupted_push_is_finished_by_its_own_directory_and_refused_elsewhere() {
    let w = pushed();
    w.topup("a", 4, "INV-9");
    // kill -9 after the files were uploaded, before heads.json.
    let out = w
        .cmd()
        .env("PLATFORM_FAILPOINT", "state_push_before_heads")
        .args([
            "state",
            "push",
            "--runtime-profile",
            "profile.yml",
            "--billing-state-dir",
        ])
        .arg(w.dir("a"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("failpoint state_push_before_heads"));
    assert_eq!(
        w.remote("billing.jsonl").unwrap(),
        std::fs::read(w.dir("a/billing.jsonl")).unwrap()
    );

    // Any other directory is refused; this one is told to finish its push, untouched.
    let out = w.state("pull", "other", &[]).failure().code(1);
    assert_has(&stderr_of(&out), "past its signed heads");
    let before = w.snapshot("a");
    let out = w.state("pull", "a", &["--json"]).success();
    assert_eq!(json_of(&out)["signing"]["status"], "unfinished_push");
    assert_eq!(w.snapshot("a"), before);
    w.state("push", "a", &[]).success();
    w.state("pull", "other", &[]).success();

    // Interrupted while replacing heads.json (its upload fails): the same. The old heads.json
    // stays on the release until the new one has landed.
    w.topup("a", 4, "INV-10");
    let old_heads = w.remote("heads.json").unwrap();
    w.fake.state().fail_upload_of = Some(("heads.json".into(), 502, false));
    w.state("push", "a", &[]).failure().code(1);
    assert_eq!(w.remote("heads.json").unwrap(), old_heads);
    let out = w.state("pull", "a", &["--json"]).success();
    assert_eq!(json_of(&out)["signing"]["status"], "unfinished_push");
    w.state("push", "a", &[]).success();
    w.state("pull", "other2", &[]).success();
}

#[test]
fn a_failed_upload_in_signed_state_is_finished_by_the_retry() {
    failed_upload_then_retry(&World::signed(), "billing.jsonl", 502, true);
    failed_upload_then_retry(&World::signed(), "audit.jsonl", 500, false);
}

#[test]
fn a_push_killed_between_deleting_the_old_heads_and_renaming_the_new_ones_leaves_a_state_pull_accepts(
) {
    let w = pushed();
    w.topup("a", 4, "INV-11");
    w.fake.state().record_names = true;
    // Replaced: billing.jsonl, audit.jsonl, then heads.json (the third).
    let out = w
        .cmd()
        .env("PLATFORM_FAILPOINT", "state_push_old_deleted@3")
        .args(["state", "push", "--runtime-profile", "profile.yml"])
        .arg("--billing-state-dir")
        .arg(w.dir("a"))
        .output()
        .unwrap();
    assert!(text(&out.stderr).contains("failpoint state_push_old_deleted"));
    assert!(w.remote("heads.json").is_none());
    // The staged heads.json is the release's heads: any directory verifies the new state.
    let out = w.state("pull", "other", &["--json"]).success();
    assert_eq!(json_of(&out)["signing"]["status"], "signed");
    assert_eq!(
        std::fs::read(w.dir("other/billing.jsonl")).unwrap(),
        std::fs::read(w.dir("a/billing.jsonl")).unwrap()
    );
    w.state("push", "a", &[]).success();
    never_lacked(&w, "heads.json");
    assert!(w.remote("heads.json").is_some());
    w.state("pull", "after", &[]).success();
}

#[test]
fn a_plain_push_onto_a_release_that_fails_verification_is_refused_and_points_to_restore() {
    type Tamper = fn(&World, &Key);
    let tampers: [(&str, Tamper, &str); 3] = [
        (
            "a flipped signature bit",
            |w, _| {
                let bad = flip_signature_bit(&w.remote("heads.json").unwrap());
                w.fake.put_asset(STATE_TAG, "heads.json", &bad);
            },
            "does not verify",
        ),
        (
            "a deleted heads.json",
            |w, _| w.fake.remove_asset(STATE_TAG, "heads.json"),
            "no heads.json",
        ),
        (
            "an unknown key",
            |w, stranger| {
                let forged = resign(w, stranger, |_| {});
                w.fake.put_asset(STATE_TAG, "heads.json", &forged);
            },
            "does not list",
        ),
    ];
    for (what, tamper, why) in tampers {
        let w = pushed();
        w.state("pull", "b", &[]).success();
        w.topup("b", 3, "AFTER-PULL");
        let stranger = w.keygen();
        tamper(&w, &stranger);
        let release_before = w.remote_all();
        let local_before = w.snapshot("b");
        w.fake.clear_calls();
        let out = w.state("push", "b", &[]).failure().code(1);
        let stderr = stderr_of(&out);
        assert!(
            stderr.contains("fails verification") && stderr.contains(why),
            "{what}: {stderr}"
        );
        assert!(
            stderr.contains("state push --restore") && stderr.contains("audited"),
            "{what}: {stderr}"
        );
        assert!(w.writes().is_empty(), "{what}: {:?}", w.writes());
        assert_eq!(w.remote_all(), release_before, "{what}");
        assert_eq!(w.snapshot("b"), local_before, "{what}");

        // The audited way replaces it, and says so in audit.jsonl.
        w.state("push", "b", &["--restore", "--actor", "ops"])
            .success();
        last_audit(&w, "b", "state.restore", "platform state push --restore");
        w.state("pull", "fresh", &[]).success();
    }
}

#[test]
fn restore_replaces_a_release_that_fails_verification_audited_and_key_required() {
    let mut w = pushed();
    let good = w.snapshot("a");
    let forged = forge_topup(&w.remote("billing.jsonl").unwrap(), 1000);
    w.fake.put_asset(STATE_TAG, "billing.jsonl", &forged);

    let key = w.key.take();
    w.fake.clear_calls();
    let out = w
        .state("push", "a", &["--restore", "--actor", "ops"])
        .failure()
        .code(2);
    assert_has(&stderr_of(&out), "PLATFORM_LEDGER_SIGNING_KEY");
    assert!(w.fake.calls().is_empty(), "{:?}", w.fake.calls());
    assert_eq!(w.snapshot("a"), good);
    w.key = key;

    let out = w
        .state("push", "a", &["--restore", "--actor", "ops", "--json"])
        .success();
    let json = json_of(&out);
    assert!(
        json["restored"].as_str().unwrap().contains("signed heads"),
        "{json}"
    );
    last_audit(&w, "a", "state.restore", "platform state push --restore");
    assert_eq!(
        w.remote("billing.jsonl").unwrap(),
        std::fs::read(w.dir("a/billing.jsonl")).unwrap()
    );
    w.state("pull", "fresh", &[]).success();

    // A release that verifies is never replaced by a state that lacks its records.
    w.state("pull", "old", &[]).success();
    w.topup("fresh", 3, "LATER");
    w.state("push", "fresh", &[]).success();
    let out = w
        .state("push", "old", &["--restore", "--actor", "ops"])
        .failure()
        .code(1);
    assert_has(&stderr_of(&out), "discard signed records");
}

#[test]
fn push_is_refused_without_the_key_or_with_an_unlisted_one() {
    let mut w = World::signed();
    w.state("pull", "a", &[]).success();
    w.topup("a", 1, "K-1");
    let listed = w.key.take();
    w.fake.clear_calls();
    let out = w.state("push", "a", &[]).failure().code(2);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("needs the signing key") && stderr.contains("PLATFORM_LEDGER_SIGNING_KEY"),
        "{stderr}"
    );
    assert!(w.fake.calls().is_empty(), "{:?}", w.fake.calls());

    w.key = Some(w.keygen());
    let out = w.state("push", "a", &[]).failure().code(2);
    assert_has(&stderr_of(&out), "does not list");
    assert!(w.fake.calls().is_empty());
    let private = w.key.as_ref().unwrap().private_key.clone();
    assert!(
        !stderr_of(&out).contains(&private),
        "the key is never printed"
    );

    // Rotation: list both keys, switch the secret, push once (re-signs), remove the old key.
    let new = w.key.clone().unwrap();
    w.key = listed.clone();
    w.state("push", "a", &[]).success();
    w.trust(&[listed.as_ref().unwrap(), &new]);
    w.key = Some(new.clone());
    w.fake.clear_calls();
    w.state("push", "a", &[]).success();
    assert_eq!(
        w.writes(),
        [
            "upload heads.json.staged",
            "delete heads.json",
            "rename heads.json.staged to heads.json"
        ]
    );
    w.trust(&[&new]);
    w.state("pull", "b", &[]).success();
}

/// Whether the release's ledger files, with `name` replaced by `forged`, pass `verify`.
fn verifies(w: &World, name: &str, forged: &[u8]) -> bool {
    let dir = crate::support::fx::temp_dir();
    for file in ["billing.jsonl", "evidence.jsonl", "audit.jsonl"] {
        let bytes = if file == name {
            forged.to_vec()
        } else {
            w.remote(file).unwrap_or_default()
        };
        std::fs::write(dir.path().join(file), bytes).unwrap();
    }
    platform::ledger::verify(dir.path()).unwrap().ok()
}

/// One forgery of the release: a file, an edit, and what is done with heads.json.
#[derive(Debug, Clone)]
struct Forgery {
    file: usize,
    edit: Edit,
    rechained: bool,
    heads: HeadsMove,
}

#[derive(Debug, Clone)]
enum Edit {
    FlipByte(usize),
    ChangeValue(usize),
    DropLine(usize),
    DropTail(usize),
    Duplicate(usize),
    Swap(usize),
}

#[derive(Debug, Clone)]
enum HeadsMove {
    Keep,
    ResignWithOwnKey,
    Delete,
}

fn forgery() -> impl Strategy<Value = Forgery> {
    let edit = prop_oneof![
        any::<usize>().prop_map(Edit::FlipByte),
        any::<usize>().prop_map(Edit::ChangeValue),
        any::<usize>().prop_map(Edit::DropLine),
        (1usize..4).prop_map(Edit::DropTail),
        any::<usize>().prop_map(Edit::Duplicate),
        any::<usize>().prop_map(Edit::Swap),
    ];
    let heads = prop_oneof![
        Just(HeadsMove::Keep),
        Just(HeadsMove::ResignWithOwnKey),
        Just(HeadsMove::Delete)
    ];
    (0usize..3, edit, any::<bool>(), heads).prop_map(|(file, edit, rechained, heads)| Forgery {
        file,
        edit,
        rechained,
        heads,
    })
}

fn apply(bytes: &[u8], edit: &Edit, rechained: bool) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = bytes
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let n = lines.len();
    match edit {
        Edit::FlipByte(at) => {
            let mut out = bytes.to_vec();
            let i = at % out.len();
            out[i] ^= 0x20;
            return out;
        }
        Edit::ChangeValue(at) => {
            let line = &mut lines[at % n];
            let mut map: serde_json::Map<String, Value> = serde_json::from_slice(line).unwrap();
            map.insert(
                "recorded_at".into(),
                Value::String("2020-01-01T00:00:00.000Z".into()),
            );
            *line = serde_json::to_vec(&map).unwrap();
            line.push(b'\n');
        }
        Edit::DropLine(at) => {
            lines.remove(at % n);
        }
        Edit::DropTail(k) => lines.truncate(n.saturating_sub(*k)),
        Edit::Duplicate(at) => {
            let l = lines[at % n].clone();
            lines.insert(at % n, l);
        }
        Edit::Swap(at) => {
            let i = at % n;
            lines.swap(i, (i + 1) % n);
        }
    }
    let joined = lines.concat();
    if rechained && !joined.is_empty() {
        rechain(&records(&joined))
    } else {
        joined
    }
}

#[test]
fn any_forgery_of_the_release_is_refused_by_pull() {
    let w = pushed();
    let original = w.remote_all();
    let attacker = w.keygen();
    let files = ["billing.jsonl", "evidence.jsonl", "audit.jsonl"];
    let config = ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(f in forgery())| {
        let name = files[f.file];
        let bytes = w.remote(name).unwrap();
        let forged = apply(&bytes, &f.edit, f.rechained);
        prop_assume!(forged != bytes);
        w.fake.put_asset(STATE_TAG, name, &forged);
        match f.heads {
            HeadsMove::Keep => {}
            HeadsMove::Delete => w.fake.remove_asset(STATE_TAG, "heads.json"),
            HeadsMove::ResignWithOwnKey => {
                let signed = resign(&w, &attacker, |_| {});
                w.fake.put_asset(STATE_TAG, "heads.json", &signed);
            }
        }
        let before = w.snapshot("a");
        let out = w.state("pull", "a", &[]).get_output().clone();
        let fresh = w.state("pull", "fresh", &[]).get_output().clone();
        for (n, d) in &original {
            w.fake.put_asset(STATE_TAG, n, d);
        }
        prop_assert_eq!(out.status.code(), Some(1), "{:?}: {}", f, text(&out.stderr));
        prop_assert_eq!(fresh.status.code(), Some(1), "{:?}: {}", f, text(&fresh.stderr));
        // Refused for the reason that fits, not for any failure that exits 1: the chains are
        // judged first, so a forgery that does not verify on its own is refused for that
        // whatever the move; one that does is caught by what was done with heads.json, and
        // with the heads kept, by the edit itself.
        let reasons: &[&str] = match f.heads {
            _ if !verifies(&w, name, &forged) => &["fails verification"],
            HeadsMove::Keep => &["does not match its signed heads", "before its signed head"],
            HeadsMove::ResignWithOwnKey => &["does not list"],
            HeadsMove::Delete => &["no heads.json"],
        };
        // The directory that pulled before also refuses a file that no longer starts with what
        // it pulled, before the chains are judged.
        let mut pulled_before = reasons.to_vec();
        if !forged.starts_with(&bytes) {
            pulled_before.push("does not start with what this directory last pulled or pushed");
        }
        for (stderr, reasons) in [
            (text(&out.stderr), &pulled_before[..]),
            (text(&fresh.stderr), reasons),
        ] {
            prop_assert!(
                stderr.contains("refused") && reasons.iter().any(|r| stderr.contains(r)),
                "{:?}: not refused for any of {:?}: {}", f, reasons, stderr
            );
        }
        prop_assert_eq!(w.snapshot("a"), before);
        prop_assert!(!w.dir("fresh").exists());
    });
}

/// RFC 8032 §7.1 TEST 1's key: docs/records.md signs its heads.json example with it.
const EXAMPLE_SEED_B64: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";

#[test]
fn the_documented_heads_json_example_is_canonical_and_verifies() {
    use platform::heads::{FileHead, Heads, TrustedKey};
    use platform::records::RecordType;
    use std::collections::BTreeMap;
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/records.md")).unwrap();
    let block: String = docs
        .split("```json heads.json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_default()
        .to_string();
    let signer = Signer::from_secret(EXAMPLE_SEED_B64).unwrap();
    // "Over the last records of the examples above": each file's head is taken from the page's
    // own example lines (the last one of its file), so an example appended or changed later
    // without re-signing the heads fails here.
    let signed_at = "2026-12-01T17:50:00.000Z";
    let mut last: BTreeMap<String, FileHead> = BTreeMap::new();
    for line in crate::ledger_docs::doc_lines() {
        let record: Value = serde_json::from_str(&line).unwrap();
        // RFC 3339 UTC with milliseconds: as strings, they sort as times.
        let recorded_at = record["recorded_at"].as_str().unwrap();
        assert!(
            recorded_at < signed_at,
            "the example heads are signed before a record they cover: {line}"
        );
        let stream = RecordType::from_name(record["type"].as_str().unwrap())
            .unwrap_or_else(|| panic!("unknown record type: {line}"))
            .stream();
        last.insert(
            stream.file_name().to_string(),
            FileHead {
                seq: record["seq"].as_u64().unwrap(),
                hash: record["hash"].as_str().unwrap().into(),
            },
        );
    }
    assert_eq!(
        last.keys().map(String::as_str).collect::<Vec<_>>(),
        ["audit.jsonl", "billing.jsonl", "evidence.jsonl"],
        "the page has examples of all three files"
    );
    let heads = Heads {
        v: 1,
        repository: "acme/platform".into(),
        state_tag: "billing-state-v1".into(),
        signed_at: signed_at.into(),
        key_id: signer.key_id().into(),
        files: last.into_iter().collect(),
    };
    let expected = text(
        &SignedHeads::sign(heads, &signer)
            .unwrap()
            .to_bytes()
            .unwrap(),
    );
    assert_eq!(
        block, expected,
        "docs/records.md's heads.json example should be:\n{expected}"
    );
    let parsed = SignedHeads::parse(block.as_bytes()).unwrap();
    let trusted = TrustedKey {
        key_id: signer.key_id().into(),
        public_key: signer.public_key().to_vec(),
    };
    parsed.verify(&[trusted]).unwrap();
    assert!(
        docs.contains(&format!("key_id: {}", signer.key_id())),
        "the docs name the example key"
    );
}

/// Until 2026-12-03 a release put back to an older, validly signed state was pulled over the
/// newer state of the very directory that had pushed it (exit 0, "heads.json verified"), and
/// the next orchestrator pass charged the lost runs again. The directory's pull record, and
/// its own heads.json, say how far the state had got: an older release is refused.
#[test]
fn a_pull_refuses_a_release_rolled_back_to_older_signed_state() {
    let w = pushed();
    let old = w.remote_all();
    let old_seq = SignedHeads::parse(&w.remote("heads.json").unwrap())
        .unwrap()
        .heads
        .files["billing.jsonl"]
        .seq;
    w.topup("a", 5, "NEWER");
    w.state("push", "a", &[]).success();
    let new_seq = SignedHeads::parse(&w.remote("heads.json").unwrap())
        .unwrap()
        .heads
        .files["billing.jsonl"]
        .seq;
    assert!(new_seq > old_seq);
    for (name, bytes) in &old {
        w.fake.put_asset(STATE_TAG, name, bytes);
    }

    let before = w.snapshot("a");
    let out = w.state("pull", "a", &[]).failure().code(1);
    let stderr = stderr_of(&out);
    let old_len = old
        .iter()
        .find(|(n, _)| n == "billing.jsonl")
        .unwrap()
        .1
        .len();
    let new_len = std::fs::read(w.dir("a/billing.jsonl")).unwrap().len();
    for want in [
        "does not start with what this directory last pulled or pushed",
        &format!("billing.jsonl (release: {old_len} bytes"),
        &format!("last pulled or pushed here: {new_len} bytes"),
        "audit.jsonl",
        "platform state push --restore",
    ] {
        assert_has(&stderr, want);
    }
    assert_eq!(
        w.snapshot("a"),
        before,
        "a refused pull changed the directory"
    );

    // Without its pull record and ledger files, the directory's own heads.json still says
    // how far the signed state had got.
    let heads_only = w.dir("heads-only");
    std::fs::create_dir_all(&heads_only).unwrap();
    std::fs::copy(w.dir("a/heads.json"), heads_only.join("heads.json")).unwrap();
    let out = w.state("pull", "heads-only", &[]).failure().code(1);
    let stderr = stderr_of(&out);
    assert_has(
        &stderr,
        &format!("billing.jsonl (release signed at seq {old_seq}; this directory's heads.json at seq {new_seq})"),
    );
    assert_has(&stderr, "rolled back to older signed state");
    assert!(!heads_only.join("billing.jsonl").exists());

    // A fresh directory takes the release as it is; `--restore` from `a` puts its state back.
    w.state("pull", "fresh", &[]).success();
    w.state("push", "a", &["--restore", "--actor", "ops"])
        .success();
    w.state("pull", "a", &[]).success();
    let heads = SignedHeads::parse(&w.remote("heads.json").unwrap()).unwrap();
    assert!(heads.heads.files["billing.jsonl"].seq >= new_seq);
}

/// Until 2026-12-03 `state push` took no ledger lock: a top-up made while the push read the
/// release went up with the files, but not into the heads it signed (read before), so the
/// release was past its signed heads and every other directory's pull was refused until the
/// next push. The push now holds the ledger's lock from verifying the local files to
/// recording the push: the top-up waits, and goes up with the next push.
#[test]
fn a_top_up_during_a_slow_push_waits_for_it_and_the_release_stays_at_its_signed_heads() {
    let w = World::signed();
    w.state("pull", "a", &[]).success();
    w.topup("a", 100, "INV-1");
    w.state("push", "a", &[]).success();
    w.topup("a", 7, "INV-2");

    w.fake.delay_next("list assets", Duration::from_secs(3));
    w.fake.clear_calls();
    let push = w.spawn_state("push", "a");
    w.fake.wait_for_call("list assets");
    let topup = w.try_topup("a", 50, "LATE");
    push.wait_with_output().unwrap().expect_ok();
    topup.expect_ok();

    // The release ends exactly at its signed heads: another directory pulls it.
    w.state("pull", "b", &[]).success();
    assert_eq!(w.balance("b"), 107);
    // The top-up that waited is in `a`, and the next push takes it up.
    assert_eq!(w.balance("a"), 157);
    w.state("push", "a", &[]).success();
    w.state("pull", "b", &[]).success();
    assert_eq!(w.balance("b"), 157);
}
