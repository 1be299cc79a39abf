//! Signing-key messages end to end: a heads.json that does not verify is named as such (never "heads.json is the signature ...").
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::state::{flip_signature_bit, pushed, stderr_of, STATE_TAG};
use serde_json::Value;

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// Until 2026-12-05 these read "the state release's heads.json is the signature does not
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
