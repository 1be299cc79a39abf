//! Test helpers for ledger tests: record builders and file utilities (no assertions of their own).
use super::fx::temp_dir;
use platform::ledger::{Ledger, Stream};
use platform::records::{Audit, Decision, Payload, Refund, RunStarted, Spend, Topup};
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

/// The `run_started` of the run `spend(tenant, wo, ..)` charges (run 1): every record of a
/// run needs it in evidence.jsonl first (SPEC §7 "Across files").
pub fn run_started(tenant: &str, wo: &str) -> Payload {
    let run_id = format!("{tenant}-{wo}-r1");
    Payload::new(RunStarted {
        tenant_id: tenant.into(),
        work_order_id: wo.into(),
        run: 1,
        run_id: run_id.clone(),
        work_order_sha256: "0".repeat(64),
        correlation_id: run_id,
        period: None,
        rerun: None,
    })
}

/// Record the `run_started` of each (tenant, work order) fixture run.
pub fn start_runs(l: &mut Ledger, runs: &[(&str, &str)]) {
    for (tenant, wo) in runs {
        l.append(Stream::Evidence, vec![run_started(tenant, wo)])
            .unwrap();
    }
}

/// A writer of a fresh ledger in a temp dir (which must outlive it).
pub fn open_fresh() -> (tempfile::TempDir, Ledger) {
    let dir = temp_dir();
    let (l, repairs) = Ledger::open(dir.path()).unwrap();
    assert!(repairs.is_empty(), "{repairs:?}");
    (dir, l)
}

/// A fresh ledger where acme's run of `wo` has started and acme has `credits` (INV-1).
pub fn acme_with(credits: i64) -> (tempfile::TempDir, Ledger) {
    let (dir, mut l) = open_fresh();
    start_runs(&mut l, &[("acme", "wo")]);
    l.append(Stream::Billing, vec![topup("acme", credits, "INV-1")])
        .unwrap();
    (dir, l)
}

/// `records` appended to billing.jsonl are refused with a message naming `needle`.
pub fn refused(l: &mut Ledger, records: Vec<Payload>, needle: &str) -> platform::error::Error {
    let err = l.append(Stream::Billing, records).unwrap_err();
    assert!(
        err.message.contains(needle),
        "{needle:?} not in: {}",
        err.message
    );
    err
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
    for name in super::fx::LEDGER_FILES {
        let src = from.join(name);
        if src.exists() {
            std::fs::copy(&src, to.join(name)).unwrap();
        }
    }
}

/// The lines of a ledger file as JSON objects.
pub fn records_of(path: &Path) -> Vec<serde_json::Map<String, serde_json::Value>> {
    records_in(&read(path))
}

/// The lines of a ledger file's bytes as JSON objects.
pub fn records_in(bytes: &[u8]) -> Vec<serde_json::Map<String, serde_json::Value>> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

/// What an attacker who knows the documented format writes: the records given, re-chained
/// from the genesis hash (new `seq`, `prev_hash` and `hash`), so every line's own checks pass.
pub fn rechain(records: &[serde_json::Map<String, serde_json::Value>]) -> Vec<u8> {
    use platform::records::canonical::{encode_object, seal};
    let mut out = Vec::new();
    let mut prev = platform::records::GENESIS_HASH.to_string();
    for (i, r) in records.iter().enumerate() {
        let mut r = r.clone();
        r.remove("hash");
        r.insert("seq".into(), (i as u64 + 1).into());
        r.insert("prev_hash".into(), prev.clone().into());
        let (line, hash) = seal(&encode_object(&r).unwrap()).unwrap();
        out.extend_from_slice(&line);
        prev = hash;
    }
    out
}

/// Edit a ledger file's records, then re-chain and write it back, as an attacker would.
pub fn forge(path: &Path, edit: impl FnOnce(&mut Vec<serde_json::Map<String, serde_json::Value>>)) {
    let mut records = records_of(path);
    edit(&mut records);
    std::fs::write(path, rechain(&records)).unwrap();
}

/// Append `record` to a ledger file in place (same inode, as another process's append would
/// be), chained to the file's last record: the line's own checks and the chain pass.
pub fn append_chained(path: &Path, record: serde_json::Map<String, serde_json::Value>) {
    use platform::records::canonical::{encode_object, seal};
    use std::io::Write;
    let last = records_of(path).pop().expect("a ledger file with records");
    let mut r = record;
    r.remove("hash");
    r.insert("seq".into(), (last["seq"].as_u64().unwrap() + 1).into());
    r.insert("prev_hash".into(), last["hash"].clone());
    let (line, _) = seal(&encode_object(&r).unwrap()).unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(&line).unwrap();
}
