//! Test helpers for ledger tests: record builders and file utilities (no assertions of their own).
#![allow(dead_code)]
use platform::records::{Audit, Decision, Payload, Refund, Spend, Topup};
use std::path::Path;

pub fn topup(tenant: &str, amount: i64, reference: &str) -> Payload {
    Payload::new(Topup::new(tenant, amount, "bank", reference, None, "ops"))
}

pub fn spend(tenant: &str, wo: &str, step: &str, deliverable: &str, price: i64) -> Spend {
    let run_id = format!("{tenant}-{wo}-r1");
    Spend::new(
        tenant,
        wo,
        1,
        &run_id,
        step,
        1,
        "mod",
        deliverable,
        price,
        &run_id,
    )
}

pub fn refund(s: &Spend) -> Payload {
    Payload::new(Refund::reversing(s, "module_failed"))
}

pub fn audit_allowed(target: &str) -> Payload {
    Payload::new(Audit {
        action: "billing.topup".into(),
        scope: "billing.topup".into(),
        actor: "ops".into(),
        decision: Decision::Allowed,
        reason: None,
        tenant_id: Some("acme".into()),
        target: target.into(),
        command: None,
    })
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

pub fn lines(path: &Path) -> Vec<Vec<u8>> {
    let bytes = read(path);
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Copy the three ledger files of `from` into a fresh `to`.
pub fn copy_state(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in ["billing.jsonl", "evidence.jsonl", "audit.jsonl"] {
        let src = from.join(name);
        if src.exists() {
            std::fs::copy(&src, to.join(name)).unwrap();
        }
    }
}
