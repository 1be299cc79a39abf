//! docs/records.md is a protocol description: every example line there parses, hashes and verifies as a ledger.
// Tests fail by panicking; unwrap() and expect() are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::fx::temp_dir;
use platform::ledger::{self, Ledger, Stream};
use platform::records::billing::RUN_DELIVERABLE;
use platform::records::canonical::{check_line_hash, encode_object};
use platform::records::evidence::*;
use platform::records::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Every example line of docs/records.md's ```jsonl blocks, in page order (also the source of
/// the heads.json example's heads, `state_signed.rs`).
pub(crate) fn doc_lines() -> Vec<String> {
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
    assert!(lines.len() >= 18, "every record type has an example");
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
        let t = RecordType::from_name(obj["type"].as_str().unwrap()).unwrap();
        let entry = Entry::from_json(t, line.as_bytes()).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(entry.record.record_type(), t, "{line}");
        // Written back from the typed record, straight to its canonical encoding (as the
        // ledger prepares a record to append), the payload is byte for byte the line's: the
        // serializer, serde's tags and RecordType agree for every type.
        let batch = entry
            .envelope
            .batch
            .as_deref()
            .zip(entry.envelope.batch_len);
        let back = Payload::with_key(&entry.envelope.idempotency_key, entry.record.clone())
            .members(batch)
            .unwrap();
        assert_eq!(
            back.get_str("type").as_deref(),
            obj["type"].as_str(),
            "{line}"
        );
        let mut payload = without.clone();
        for field in template::CHAIN_FIELDS {
            payload.remove(field);
        }
        let want: [u8; 32] = Sha256::digest(encode_object(&payload).unwrap()).into();
        assert_eq!(
            template::Template::of_members(&back, &template::CHAIN_FIELDS).digest_without_holes(),
            want,
            "the payload prepared from the typed record differs: {line}"
        );
        if let Some(key) = entry.record.key() {
            assert_eq!(entry.envelope.idempotency_key, key, "{line}");
        }
        types.insert(entry.record.type_name());
        let f = files.entry(entry.record.stream()).or_default();
        f.push_str(line);
        f.push('\n');
    }
    assert_eq!(types.len(), RecordType::ALL.len(), "{types:?}");
    let dir = temp_dir();
    for (stream, text) in files {
        std::fs::write(dir.path().join(stream.file_name()), text).unwrap();
    }
    let report = ledger::verify(dir.path()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

/// The example `dir` output's manifest digest (any digest: the example shows the shape).
const DIR_MANIFEST_SHA256: &str =
    "5adfef548a61a5a84bf0502c7c9ade76ccfd602707cbf0ca3bd9b0819cf07945";

/// Prints a fresh set of example lines for docs/records.md.
#[test]
#[ignore = "generator: cargo test --test it ledger_docs:: -- --ignored --nocapture"]
fn print_examples() {
    let dir = temp_dir();
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
            period: None,
            rerun: None,
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
    let started = StepStarted {
        tenant_id: t.into(),
        work_order_id: wo.into(),
        run,
        run_id: run_id.into(),
        step_id: "build".into(),
        attempt: 1,
        module_id: "text_stats".into(),
    };
    post(Record::StepStarted(started.clone()));
    let mut values = BTreeMap::new();
    values.insert("word_count".to_string(), serde_json::json!(1234));
    // The outcome names the step as its start did.
    let StepStarted {
        tenant_id,
        work_order_id,
        run_id: step_run_id,
        step_id,
        module_id,
        ..
    } = started;
    post(Record::StepOutcome(StepOutcome {
        tenant_id,
        work_order_id,
        run,
        run_id: step_run_id,
        step_id,
        attempt: 1,
        module_id,
        status: StepStatus::Completed,
        reason_slug: None,
        message: None,
        outputs: vec![
            OutputRecord {
                output_id: "report".into(),
                path: "report.json".into(),
                bytes: 512,
                sha256: "a3f1c9e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a6c8e0b2d4f6a8".into(),
                files: None,
            },
            OutputRecord {
                output_id: "report_dir".into(),
                path: "report".into(),
                bytes: 1890,
                sha256: DIR_MANIFEST_SHA256.into(),
                files: Some(3),
            },
        ],
        values,
        usage: Default::default(),
    }));
    post(Record::EvidenceItem(EvidenceItem {
        run_id: run_id.into(),
        step_id: "build".into(),
        attempt: 1,
        status: StepStatus::Completed,
        subjects: vec![
            FileDigest {
                name: "report.json".into(),
                sha256: "a3f1c9e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a6c8e0b2d4f6a8".into(),
                bytes: 512,
                files: None,
            },
            FileDigest {
                name: "report".into(),
                sha256: DIR_MANIFEST_SHA256.into(),
                bytes: 1890,
                files: Some(3),
            },
        ],
        logs: vec![FileDigest {
            name: "stderr.log".into(),
            sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            bytes: 0,
            files: None,
        }],
    }));
    post(Record::DeliveryReceipt(DeliveryReceipt {
        tenant_id: t.into(),
        work_order_id: wo.into(),
        run_id: run_id.into(),
        step_id: "deliver".into(),
        attempt: 1,
        delivered: Delivered {
            provider: "local".into(),
            remote_path: "runtime/deliveries/acme/wo-report/deliver/package.zip".into(),
            object_id: None,
            bytes: 2048,
            sha256: "5d41402abc4b2a76b9719d911017c592ae1f3c2b4d5e6f708192a3b4c5d6e7f8".into(),
            verification_status: "verified".into(),
        },
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
        period: None,
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
        purchase: Purchase {
            tenant_id: t.into(),
            work_order_id: wo.into(),
            run,
            run_id: run_id.into(),
            step_id: "build".into(),
            attempt: 1,
            deliverable_id: "report".into(),
        },
        spend_key: deliverable.key(),
        asset_name: "acme__wo-report__build__report.zip".into(),
        bytes: 733,
        sha256: "0c1d2e3f405162738495a6b7c8d9eaf00112233445566778899aabbccddeeff0".into(),
        status: PublishStatus::Staged,
        repository: None,
        release_tag: None,
        url: None,
        actor: Some("demo-admin".into()),
    }));
    let audit = Audit {
        action: "billing.topup".into(),
        scope: "billing.topup".into(),
        actor: "demo-admin".into(),
        decision: Decision::Allowed,
        reason: None,
        tenant_id: Some(t.into()),
        target: "topup/acme/INV-2026-0042".into(),
        command: None,
    };
    l.audit(audit.clone()).unwrap();
    l.audit(Audit {
        actor: "intern".into(),
        decision: Decision::Denied,
        reason: Some("actor 'intern' has no role granting scope 'billing.topup'".into()),
        target: "topup/acme/INV-2026-0043".into(),
        command: None,
        ..audit
    })
    .unwrap();
    // Appended last, as the examples in docs/records.md show them.
    l.append(
        Stream::Billing,
        vec![Payload::new(Adjust {
            tenant_id: t.into(),
            amount_credits: 10,
            reason_slug: "goodwill".into(),
            reference: "CASE-2026-0007".into(),
            note: Some("late delivery, credited".into()),
            actor: "demo-admin".into(),
            usage_unit: "credits".into(),
        })],
    )
    .unwrap();
    l.append(
        Stream::Evidence,
        vec![Payload::new(RerunRequested {
            tenant_id: t.into(),
            work_order_id: "weekly-digest".into(),
            after_run: 0,
            reason: "upstream data fixed".into(),
            actor: "demo-admin".into(),
        })],
    )
    .unwrap();
    for s in Stream::ALL {
        println!("--- {}", s.file_name());
        print!(
            "{}",
            std::fs::read_to_string(dir.path().join(s.file_name())).unwrap()
        );
    }
}

// ---- the canonical encoding is RFC 8785 (JCS) within the caps --------------------------------

/// Our canonical encoding and an independent JCS implementation (serde_jcs) agree on `v`.
fn same_as_jcs(v: &serde_json::Value) {
    let ours = canonical::encode(v).unwrap();
    let jcs = serde_jcs::to_vec(v).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&jcs),
        "canonical encoding differs from RFC 8785"
    );
}

#[test]
fn real_records_are_encoded_as_rfc_8785_says() {
    // Every documented record, as written by the ledger, without its hash (the hash is what
    // is computed over that encoding; the line then appends it last).
    for line in doc_lines() {
        let mut v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v.as_object_mut().unwrap().remove("hash");
        same_as_jcs(&v);
    }
    // Records the writer produced just now, with escapes and non-ASCII text in them.
    let dir = temp_dir();
    let (mut l, _) = Ledger::open(dir.path()).unwrap();
    let note = "Zahlung für März \u{1f980} \"quoted\" back\\slash tab\t";
    l.append(
        Stream::Billing,
        vec![Payload::new(Topup::new(
            "acme",
            1_000_000_000_000,
            "bank-wire",
            "INV-2026/07:A_1.b",
            Some(note),
            "ops",
        ))],
    )
    .unwrap();
    for stream in Stream::ALL {
        ledger::for_each_line(dir.path(), stream, |line| {
            let mut v = serde_json::Value::Object(line.object()?);
            v.as_object_mut().unwrap().remove("hash");
            same_as_jcs(&v);
            Ok(())
        })
        .unwrap();
    }
}

#[test]
fn a_heads_like_object_is_encoded_as_rfc_8785_says() {
    let head = |seq: u64| serde_json::json!({"seq": seq, "hash": "e411f3b014d9001da5994aa9933d46b9d0c391b2153e90b4efb369c8c701c3e7"});
    same_as_jcs(&serde_json::json!({
        "files": {"billing.jsonl": head(4), "evidence.jsonl": head(8), "audit.jsonl": head(0)},
        "repository": "owner/name",
        "state_tag": "billing-state-v1",
        "signed_at": "2026-11-25T20:32:33.527Z",
        "key_id": "0123456789abcdef",
        "max_safe": 9_007_199_254_740_991i64,
        "min_safe": -9_007_199_254_740_991i64,
        "empty": {}, "list": [], "nested": [[1, {"b": null, "a": true, "B": false}]],
        "controls": "\u{0}\u{1}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1f}\u{7f}\u{2028}é",
    }));
}

/// Any JSON value within the caps: ASCII keys, integers below 2^53 in magnitude.
fn capped_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        (-(1i64 << 53) + 1..(1i64 << 53)).prop_map(serde_json::Value::from),
        "\\PC{0,12}|[\\x00-\\x1f\"\\\\/]{0,4}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map("[ -~]{0,8}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, failure_persistence: None, ..Default::default() })]
    #[test]
    fn any_value_within_the_caps_is_encoded_as_rfc_8785_says(v in capped_json()) {
        same_as_jcs(&v);
    }
}

/// Why the caps: beyond them the two encodings part (so the tests above can tell them apart).
#[test]
fn beyond_the_caps_the_encodings_differ() {
    // JCS sorts keys by UTF-16 code units, the ledger by UTF-8 bytes.
    let keys = serde_json::json!({"\u{e000}": 1, "\u{1f600}": 2});
    assert_ne!(
        canonical::encode(&keys).unwrap(),
        serde_jcs::to_vec(&keys).unwrap()
    );
    // JCS writes numbers as IEEE doubles: 2^53 + 1 is not one.
    let big = serde_json::json!(9_007_199_254_740_993i64);
    assert_eq!(canonical::encode(&big).unwrap(), b"9007199254740993");
    assert_ne!(
        canonical::encode(&big).unwrap(),
        serde_jcs::to_vec(&big).unwrap()
    );
}
