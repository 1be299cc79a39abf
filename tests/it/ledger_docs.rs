//! docs/records.md is a protocol description: every example line there parses, hashes and verifies as a ledger.
// Tests fail by panicking; unwrap() and expect() are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use platform::ledger::{self, Ledger, Stream};
use platform::records::billing::RUN_DELIVERABLE;
use platform::records::canonical::{check_line_hash, encode_object};
use platform::records::evidence::*;
use platform::records::*;
use std::collections::BTreeMap;

fn doc_lines() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/records.md"))
        .expect("docs/records.md");
    let mut out = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_block = line == "```jsonl";
            continue;
        }
        if in_block && line.starts_with('{') {
            out.push(line.to_string());
        }
    }
    out
}

#[test]
fn every_documented_line_parses_hashes_and_verifies() {
    let lines = doc_lines();
    assert!(lines.len() >= 14, "every record type has an example");
    let mut types = std::collections::BTreeSet::new();
    let mut files: BTreeMap<Stream, String> = BTreeMap::new();
    for line in &lines {
        check_line_hash(line.as_bytes()).unwrap_or_else(|e| panic!("{e}: {line}"));
        let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
        let mut without = obj.clone();
        let hash = without.remove("hash").unwrap();
        let (sealed, h) = canonical::seal(&encode_object(&without).unwrap()).unwrap();
        assert_eq!(serde_json::Value::String(h), hash);
        assert_eq!(
            String::from_utf8(sealed).unwrap().trim_end(),
            line,
            "canonical"
        );
        let entry = Entry::from_object(obj).unwrap_or_else(|e| panic!("{e}: {line}"));
        if let Some(key) = entry.record.key() {
            assert_eq!(entry.envelope.idempotency_key, key, "{line}");
        }
        types.insert(entry.record.type_name());
        let f = files.entry(entry.record.stream()).or_default();
        f.push_str(line);
        f.push('\n');
    }
    assert_eq!(types.len(), 12, "{types:?}");
    let dir = tempfile::tempdir().unwrap();
    for (stream, text) in files {
        std::fs::write(dir.path().join(stream.file_name()), text).unwrap();
    }
    let report = ledger::verify(dir.path()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

/// Prints a fresh set of example lines for docs/records.md.
#[test]
#[ignore = "generator: cargo test --test it ledger_docs:: -- --ignored --nocapture"]
fn print_examples() {
    let dir = tempfile::tempdir().unwrap();
    let (mut l, _) = Ledger::open(dir.path()).unwrap();
    let (t, wo, run, run_id, corr) = (
        "acme",
        "wo-report",
        1u64,
        "acme.wo-report.r1",
        "acme.wo-report.r1",
    );
    l.append(
        Stream::Billing,
        vec![Payload::new(Topup::new(
            t,
            100,
            "bank-wire",
            "INV-2026-0042",
            Some("March invoice"),
            "demo-admin",
        ))],
    )
    .unwrap();
    // A run's records need its run_started first (SPEC §7 "Across files").
    l.append(
        Stream::Evidence,
        vec![Payload::new(RunStarted {
            tenant_id: t.into(),
            work_order_id: wo.into(),
            run,
            run_id: run_id.into(),
            work_order_sha256: "9f2c5d0e8b7a6c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"
                .into(),
            correlation_id: corr.into(),
        })],
    )
    .unwrap();
    let run_charge = Spend::new(
        t,
        wo,
        run,
        run_id,
        "build",
        1,
        "text_stats",
        RUN_DELIVERABLE,
        2,
        corr,
    );
    let deliverable = Spend::new(
        t,
        wo,
        run,
        run_id,
        "build",
        1,
        "text_stats",
        "report",
        5,
        corr,
    );
    l.append_batch(
        Stream::Billing,
        &run_charge.batch_id(),
        vec![
            Payload::new(run_charge.clone()),
            Payload::new(deliverable.clone()),
        ],
    )
    .unwrap();
    let refund = Refund::reversing(&deliverable, "outputs_missing");
    l.append_batch(
        Stream::Billing,
        &refund.batch_id(),
        vec![Payload::new(refund)],
    )
    .unwrap();

    let mut post = |r: Record| {
        l.append(Stream::Evidence, vec![Payload::new(r)]).unwrap();
    };
    post(Record::StepStarted(StepStarted {
        tenant_id: t.into(),
        work_order_id: wo.into(),
        run,
        run_id: run_id.into(),
        step_id: "build".into(),
        attempt: 1,
        module_id: "text_stats".into(),
    }));
    let mut values = BTreeMap::new();
    values.insert("word_count".to_string(), serde_json::json!(1234));
    post(Record::StepOutcome(StepOutcome {
        tenant_id: t.into(),
        work_order_id: wo.into(),
        run,
        run_id: run_id.into(),
        step_id: "build".into(),
        attempt: 1,
        module_id: "text_stats".into(),
        status: StepStatus::Completed,
        reason_slug: None,
        message: None,
        outputs: vec![OutputRecord {
            output_id: "report".into(),
            path: "report.json".into(),
            bytes: 512,
            sha256: "a3f1c9e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a6c8e0b2d4f6a8".into(),
        }],
        values,
    }));
    post(Record::EvidenceItem(EvidenceItem {
        run_id: run_id.into(),
        step_id: "build".into(),
        attempt: 1,
        status: StepStatus::Completed,
        subjects: vec![FileDigest {
            name: "report.json".into(),
            sha256: "a3f1c9e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a6c8e0b2d4f6a8".into(),
            bytes: 512,
        }],
        logs: vec![FileDigest {
            name: "stderr.log".into(),
            sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            bytes: 0,
        }],
    }));
    post(Record::DeliveryReceipt(DeliveryReceipt {
        tenant_id: t.into(),
        work_order_id: wo.into(),
        run_id: run_id.into(),
        step_id: "deliver".into(),
        attempt: 1,
        provider: "local".into(),
        remote_path: "runtime/deliveries/acme/wo-report/deliver/package.zip".into(),
        object_id: None,
        bytes: 2048,
        sha256: "5d41402abc4b2a76b9719d911017c592ae1f3c2b4d5e6f708192a3b4c5d6e7f8".into(),
        verification_status: "verified".into(),
    }));
    post(Record::RunEnded(RunEnded {
        tenant_id: t.into(),
        work_order_id: wo.into(),
        run,
        run_id: run_id.into(),
        attempt: 1,
        status: RunStatus::Partial,
        steps: vec![
            StepSummary {
                step_id: "build".into(),
                status: StepStatus::Completed,
                reason_slug: None,
                attempt: 1,
            },
            StepSummary {
                step_id: "deliver".into(),
                status: StepStatus::Failed,
                reason_slug: Some("delivery_failed".into()),
                attempt: 1,
            },
        ],
        charged_credits: 7,
        refunded_credits: 5,
    }));
    post(Record::EvidenceBundle(EvidenceBundle::new(
        t,
        wo,
        run_id,
        1,
        vec![
            evidence_item_key(run_id, "build", 1),
            delivery_receipt_key(run_id, "deliver", 1),
        ],
    )));
    post(Record::Publish(Publish {
        tenant_id: t.into(),
        work_order_id: wo.into(),
        run,
        run_id: run_id.into(),
        step_id: "build".into(),
        attempt: 1,
        deliverable_id: "report".into(),
        spend_key: deliverable.key(),
        asset_name: "acme__wo-report__build__report.zip".into(),
        bytes: 733,
        sha256: "0c1d2e3f405162738495a6b7c8d9eaf00112233445566778899aabbccddeeff0".into(),
        status: PublishStatus::Staged,
        repository: None,
        release_tag: None,
        url: None,
    }));
    let audit = Audit {
        action: "billing.topup".into(),
        scope: "billing.topup".into(),
        actor: "demo-admin".into(),
        decision: Decision::Allowed,
        reason: None,
        tenant_id: Some(t.into()),
        target: "topup/acme/INV-2026-0042".into(),
    };
    l.audit(audit.clone()).unwrap();
    l.audit(Audit {
        actor: "intern".into(),
        decision: Decision::Denied,
        reason: Some("actor 'intern' has no role granting scope 'billing.topup'".into()),
        target: "topup/acme/INV-2026-0043".into(),
        ..audit
    })
    .unwrap();
    for s in Stream::ALL {
        println!("--- {}", s.file_name());
        print!(
            "{}",
            std::fs::read_to_string(dir.path().join(s.file_name())).unwrap()
        );
    }
}
