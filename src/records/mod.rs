//! Ledger record types (billing, evidence, audit) and their idempotency keys: serde only, no I/O, no dependency on the rest of the crate but its serde plumbing (`serde_shapes`).
//!
//! The line format (canonical encoding, hash chain) is in [`canonical`]; docs/records.md is
//! the protocol description and a test parses every example there.
pub mod audit;
pub mod billing;
pub mod canonical;
pub mod canonical_ser;
pub mod evidence;
pub mod template;

use serde::{Deserialize, Serialize};

pub use audit::{Audit, Decision};
pub use billing::{Adjust, Refund, Spend, Topup, MAX_CREDITS};
pub use evidence::{
    DeliveryReceipt, EvidenceBundle, EvidenceItem, FileDigest, OutputRecord, Publish,
    PublishStatus, RerunRequested, RunEnded, RunStarted, RunStatus, StepOutcome, StepStarted,
    StepStatus, StepSummary, UsageCharge,
};

/// The format version every record carries in `v`; bumping it means a new canonical encoding.
pub const FORMAT_VERSION: u64 = 1;

/// `prev_hash` of the record with `seq` 1.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Envelope fields that are not part of the payload: they differ between two postings of the
/// same fact (time, position), so idempotency compares everything else.
pub const NON_PAYLOAD_FIELDS: [&str; 4] = ["seq", "recorded_at", "prev_hash", "hash"];

/// Fields whose `null` is the payload without them: a record written before the field existed
/// omits it, a new one carries `null` (SPEC §9: unscheduled runs carry `"period": null`), and
/// both are the same fact, so a replay of either is a no-op and not a conflict. The payload
/// digest (what idempotency compares) leaves such a member out when it is `null`.
pub const NULL_AS_ABSENT: [&str; 1] = ["period"];

/// Whether the member `key: value` (`value` in its canonical encoding) is left out of the
/// payload digest ([`NULL_AS_ABSENT`]).
pub fn absent_from_payload(key: &[u8], value: &[u8]) -> bool {
    value == b"null" && NULL_AS_ABSENT.iter().any(|k| k.as_bytes() == key)
}

/// One of the three append-only files of a billing-state directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Billing,
    Evidence,
    Audit,
}

impl Stream {
    pub const ALL: [Stream; 3] = [Stream::Billing, Stream::Evidence, Stream::Audit];

    pub fn file_name(self) -> &'static str {
        match self {
            Stream::Billing => "billing.jsonl",
            Stream::Evidence => "evidence.jsonl",
            Stream::Audit => "audit.jsonl",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Stream::Billing => "billing",
            Stream::Evidence => "evidence",
            Stream::Audit => "audit",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Stream::Billing => 0,
            Stream::Evidence => 1,
            Stream::Audit => 2,
        }
    }

    /// The stream a record `type` belongs to, or None for an unknown type.
    pub fn of_type(type_name: &str) -> Option<Stream> {
        RecordType::from_name(type_name).map(RecordType::stream)
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.file_name())
    }
}

impl RecordType {
    /// The `type` field as written on disk.
    pub fn name(self) -> &'static str {
        match self {
            RecordType::Topup => "TOPUP",
            RecordType::Spend => "SPEND",
            RecordType::Refund => "REFUND",
            RecordType::RunStarted => "run_started",
            RecordType::StepStarted => "step_started",
            RecordType::StepOutcome => "step_outcome",
            RecordType::EvidenceItem => "evidence_item",
            RecordType::DeliveryReceipt => "delivery_receipt",
            RecordType::RunEnded => "run_ended",
            RecordType::EvidenceBundle => "evidence_bundle",
            RecordType::Publish => "publish",
            RecordType::Audit => "audit",
            RecordType::Adjust => "ADJUST",
            RecordType::RerunRequested => "rerun_requested",
        }
    }

    /// The type a `type` string names, or None for an unknown one.
    pub fn from_name(name: &str) -> Option<RecordType> {
        RecordType::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn stream(self) -> Stream {
        match self {
            RecordType::Topup | RecordType::Adjust | RecordType::Spend | RecordType::Refund => {
                Stream::Billing
            }
            RecordType::Audit => Stream::Audit,
            _ => Stream::Evidence,
        }
    }

    /// Records of a run: each names (`run_id`) a run whose `run_started` is in evidence.jsonl
    /// (SPEC §7 "Across files"), so losing evidence.jsonl can never make a charge look new.
    pub fn names_a_run(self) -> bool {
        matches!(
            self,
            RecordType::Spend
                | RecordType::Refund
                | RecordType::StepStarted
                | RecordType::StepOutcome
                | RecordType::EvidenceItem
                | RecordType::DeliveryReceipt
                | RecordType::RunEnded
                | RecordType::EvidenceBundle
        )
    }

    /// The audit rule of a record only a privileged command writes (see [`PRIVILEGED`]).
    pub fn privileged(self) -> Option<&'static Privileged> {
        PRIVILEGED.iter().find(|p| p.record == self)
    }
}

/// A record type only a privileged command writes, and the allowed audit record it needs:
/// `audit/{action}/{the record's key}`, with the record's own `actor` and `tenant_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Privileged {
    pub record: RecordType,
    pub action: &'static str,
    pub scope: &'static str,
    /// The type became privileged after records of it were written: those carry no `actor`
    /// (their audit record was keyed otherwise), so a line without one is legacy and needs
    /// no audit record of its own. Every new record of the type carries its actor (the
    /// writer refuses one without), and is checked.
    pub legacy_without_actor: bool,
    /// How the type's keys begin: an allowed audit record of `action` whose target begins so
    /// names a record of this type, which must then exist (an older `publish-set/…` target
    /// names none).
    pub key_prefix: &'static str,
}

/// Every privileged record type. A new one (ADJUST, a rerun request, a publish) is one entry here: the
/// writer then audits it, and `verify` and every writer check and repair its audit record.
pub const PRIVILEGED: &[Privileged] = &[
    Privileged {
        record: RecordType::Topup,
        action: "billing.topup",
        scope: "billing.topup",
        legacy_without_actor: false,
        key_prefix: "topup/",
    },
    Privileged {
        record: RecordType::Adjust,
        action: "billing.adjust",
        scope: "billing.adjust",
        legacy_without_actor: false,
        key_prefix: "adjust/",
    },
    Privileged {
        record: RecordType::RerunRequested,
        action: "orders.rerun",
        scope: "orders.rerun",
        legacy_without_actor: false,
        key_prefix: "rerun/",
    },
    // Until 2026-12-03 a publish was audited by one `publish-set/<sha256>` record written
    // after its publish records, so a crash between the two left it unaudited for good.
    Privileged {
        record: RecordType::Publish,
        action: "artifacts.publish",
        scope: "artifacts.publish",
        legacy_without_actor: true,
        key_prefix: "publish/",
    },
];

impl Record {
    /// The `type` field as written on disk.
    pub fn type_name(&self) -> &'static str {
        self.record_type().name()
    }

    pub fn stream(&self) -> Stream {
        self.record_type().stream()
    }

    /// The idempotency key derived from the record's fields. None only for an audit record of a
    /// denial: a denial is an event, so its key needs a unique part ([`Payload::audit_denied`]).
    pub fn key(&self) -> Option<String> {
        Some(match self {
            Record::Topup(r) => r.key(),
            Record::Spend(r) => r.key(),
            Record::Refund(r) => r.key(),
            Record::RunStarted(r) => r.key(),
            Record::StepStarted(r) => r.key(),
            Record::StepOutcome(r) => r.key(),
            Record::EvidenceItem(r) => r.key(),
            Record::DeliveryReceipt(r) => r.key(),
            Record::RunEnded(r) => r.key(),
            Record::EvidenceBundle(r) => r.key(),
            Record::Publish(r) => r.key(),
            Record::Adjust(r) => r.key(),
            Record::RerunRequested(r) => r.key(),
            Record::Audit(r) => return r.key(),
        })
    }

    /// The tenant a record belongs to, when it names one.
    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            Record::Topup(r) => Some(&r.tenant_id),
            Record::Spend(r) => Some(&r.tenant_id),
            Record::Refund(r) => Some(&r.tenant_id),
            Record::RunStarted(r) => Some(&r.tenant_id),
            Record::StepStarted(r) => Some(&r.tenant_id),
            Record::StepOutcome(r) => Some(&r.tenant_id),
            Record::EvidenceItem(_) => None,
            Record::DeliveryReceipt(r) => Some(&r.tenant_id),
            Record::RunEnded(r) => Some(&r.tenant_id),
            Record::EvidenceBundle(r) => Some(&r.tenant_id),
            Record::Publish(r) => Some(&r.purchase.tenant_id),
            Record::Adjust(r) => Some(&r.tenant_id),
            Record::RerunRequested(r) => Some(&r.tenant_id),
            Record::Audit(r) => r.tenant_id.as_deref(),
        }
    }

    /// The signed credit amount of a billing record.
    pub fn amount_credits(&self) -> Option<i64> {
        match self {
            Record::Topup(r) => Some(r.amount_credits),
            Record::Adjust(r) => Some(r.amount_credits),
            Record::Spend(r) => Some(r.amount_credits),
            Record::Refund(r) => Some(r.amount_credits),
            _ => None,
        }
    }
}

/// A record's fields with its `type` beside them, as a line holds them.
#[derive(Serialize)]
struct Tagged<'a, T> {
    #[serde(rename = "type")]
    type_name: &'static str,
    #[serde(flatten)]
    record: &'a T,
}

/// The one list of record types: [`RecordType`] and each table that pairs it with its
/// [`Record`] variant and struct (all types, a record's type, parsing by type, `From`) are
/// generated from it, so a new type is one entry here (and its name and file above).
macro_rules! record_types {
    ($($t:ident),* $(,)?) => {
        /// Every record type as a name the code dispatches on; the `type` string
        /// ([`RecordType::name`]) is only its wire form.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum RecordType {
            $($t,)*
        }

        /// A record of any type: its struct, named by its variant. On disk it is the
        /// struct's fields plus `type` ([`RecordType::name`]); it is read by
        /// [`Record::from_json`], which dispatches on the type (a reader knows it before it
        /// parses: the ledger's scan read it).
        #[derive(Debug, Clone, PartialEq)]
        pub enum Record {
            $($t($t),)*
        }

        impl Serialize for Record {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Record::$t(r) => Tagged { type_name: RecordType::$t.name(), record: r }.serialize(s),)*
                }
            }
        }

        impl RecordType {
            /// Every record type.
            pub const ALL: [RecordType; 14] = [$(RecordType::$t),*];
        }

        impl Record {
            pub fn record_type(&self) -> RecordType {
                match self {
                    $(Record::$t(_) => RecordType::$t,)*
                }
            }

            /// A record of type `t` from its JSON line, in one pass straight into that type's
            /// struct (other fields, such as the envelope's, are skipped); the error names
            /// the type.
            pub fn from_json(t: RecordType, json: &[u8]) -> Result<Record, String> {
                let record = match t {
                    $(RecordType::$t => serde_json::from_slice(json).map(Record::$t),)*
                };
                record.map_err(|e| format!("record of type '{}': {e}", t.name()))
            }
        }

        $(impl From<$t> for Record {
            fn from(r: $t) -> Record {
                Record::$t(r)
            }
        })*
    };
}

record_types!(
    Topup,
    Adjust,
    Spend,
    Refund,
    RerunRequested,
    RunStarted,
    StepStarted,
    StepOutcome,
    EvidenceItem,
    DeliveryReceipt,
    RunEnded,
    EvidenceBundle,
    Publish,
    Audit,
);

/// What a writer posts: a record and the idempotency key it is recorded under.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub idempotency_key: String,
    pub record: Record,
}

impl Payload {
    /// A record under its derived key. A denied audit record has no derived key: it gets an
    /// empty one here, which the ledger refuses; use [`Payload::audit_denied`] for those.
    pub fn new(record: impl Into<Record>) -> Payload {
        let record = record.into();
        Payload {
            idempotency_key: record.key().unwrap_or_default(),
            record,
        }
    }

    /// A record under an explicit key.
    pub fn with_key(idempotency_key: impl Into<String>, record: impl Into<Record>) -> Payload {
        Payload {
            idempotency_key: idempotency_key.into(),
            record: record.into(),
        }
    }

    /// An audit record of a denial, keyed `audit/denied/{action}/{unique}`; `unique` must not
    /// repeat (the ledger offers `unique_event_id()`).
    pub fn audit_denied(audit: Audit, unique: &str) -> Payload {
        Payload {
            idempotency_key: audit::denied_key(&audit.action, unique),
            record: Record::Audit(audit),
        }
    }

    /// The payload's members, each in its canonical encoding: the record's fields, `type`,
    /// `v`, `idempotency_key` and the batch fields when given. The ledger adds `seq`,
    /// `recorded_at`, `prev_hash`, `hash`.
    pub fn members(&self, batch: Option<(&str, u64)>) -> Result<canonical_ser::Members, String> {
        let mut members = canonical_ser::Members::of(&self.record)?;
        members.push("v", &FORMAT_VERSION)?;
        members.push("idempotency_key", &self.idempotency_key)?;
        if let Some((id, len)) = batch {
            members.push("batch", id)?;
            members.push("batch_len", &len)?;
        }
        Ok(members)
    }
}

/// The envelope of a record read back from disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u64,
    pub seq: u64,
    pub recorded_at: String,
    pub idempotency_key: String,
    pub prev_hash: String,
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_len: Option<u64>,
}

/// A record read back from disk: envelope and typed record.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub envelope: Envelope,
    pub record: Record,
}

impl Entry {
    /// A ledger line of type `t` as envelope and typed record; the error says which part is
    /// wrong.
    pub fn from_json(t: RecordType, json: &[u8]) -> Result<Entry, String> {
        let envelope: Envelope =
            serde_json::from_slice(json).map_err(|e| format!("envelope: {e}"))?;
        let record = Record::from_json(t, json)?;
        Ok(Entry { envelope, record })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_type_has_one_name_and_one_file() {
        for t in RecordType::ALL {
            assert_eq!(RecordType::from_name(t.name()), Some(t));
            assert_eq!(Stream::of_type(t.name()), Some(t.stream()));
        }
        assert_eq!(RecordType::from_name("topup"), None);
        assert_eq!(
            RecordType::Topup.privileged().map(|p| p.action),
            Some("billing.topup")
        );
        assert_eq!(
            RecordType::Publish
                .privileged()
                .map(|p| (p.action, p.legacy_without_actor)),
            Some(("artifacts.publish", true))
        );
        assert!(RecordType::Spend.names_a_run() && !RecordType::RunStarted.names_a_run());
        assert!(!RecordType::Publish.names_a_run() && !RecordType::Topup.names_a_run());
    }

    #[test]
    fn a_line_is_read_into_the_struct_its_type_names() {
        let line = br#"{"attempt":1,"charged_credits":0,"hash":"h","idempotency_key":"k","prev_hash":"p","recorded_at":"2026-01-02T03:04:05.678Z","refunded_credits":0,"run":1,"run_id":"r","seq":3,"status":"COMPLETED","step_id":"s","steps":[],"tenant_id":"t","type":"run_ended","v":1,"work_order_id":"w"}"#;
        let Ok(Record::RunEnded(end)) = Record::from_json(RecordType::RunEnded, line) else {
            panic!("not a run_ended record");
        };
        assert_eq!(
            (end.run_id.as_str(), end.status),
            ("r", RunStatus::Completed)
        );
        let err = Record::from_json(RecordType::Spend, line).unwrap_err();
        assert!(err.starts_with("record of type 'SPEND'"), "{err}");
        let entry = Entry::from_json(RecordType::RunEnded, line).unwrap();
        assert_eq!(
            (entry.envelope.seq, entry.record.record_type()),
            (3, RecordType::RunEnded)
        );
    }
}
