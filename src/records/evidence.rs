//! Evidence records of evidence.jsonl (runs, rerun requests, steps, evidence items and bundles, delivery receipts, publishes) and their keys.
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Status of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StepStatus {
    Completed,
    Failed,
    Skipped,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Completed => "COMPLETED",
            StepStatus::Failed => "FAILED",
            StepStatus::Skipped => "SKIPPED",
        }
    }
}

/// Status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RunStatus {
    Completed,
    Partial,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Completed => "COMPLETED",
            RunStatus::Partial => "PARTIAL",
            RunStatus::Failed => "FAILED",
        }
    }
}

/// Whether a publish record is an upload or a staged (`--no-publish`) artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishStatus {
    Published,
    Staged,
}

impl PublishStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PublishStatus::Published => "published",
            PublishStatus::Staged => "staged",
        }
    }
}

/// `run_started/{run_id}`.
pub fn run_started_key(run_id: &str) -> String {
    format!("run_started/{run_id}")
}
/// `step_started/{run_id}/{step_id}/a{attempt}`.
pub fn step_started_key(run_id: &str, step_id: &str, attempt: u32) -> String {
    format!("step_started/{run_id}/{step_id}/a{attempt}")
}
/// `step_outcome/{run_id}/{step_id}/a{attempt}`.
pub fn step_outcome_key(run_id: &str, step_id: &str, attempt: u32) -> String {
    format!("step_outcome/{run_id}/{step_id}/a{attempt}")
}
/// `evidence_item/{run_id}/{step_id}/a{attempt}`.
pub fn evidence_item_key(run_id: &str, step_id: &str, attempt: u32) -> String {
    format!("evidence_item/{run_id}/{step_id}/a{attempt}")
}
/// `delivery_receipt/{run_id}/{step_id}/a{attempt}`.
pub fn delivery_receipt_key(run_id: &str, step_id: &str, attempt: u32) -> String {
    format!("delivery_receipt/{run_id}/{step_id}/a{attempt}")
}
/// `run_ended/{run_id}/a{attempt}`: a `--retry-failed` pass ends the run again, as a new attempt.
pub fn run_ended_key(run_id: &str, attempt: u32) -> String {
    format!("run_ended/{run_id}/a{attempt}")
}
/// `evidence_bundle/{run_id}/a{attempt}`.
pub fn evidence_bundle_key(run_id: &str, attempt: u32) -> String {
    format!("evidence_bundle/{run_id}/a{attempt}")
}
/// `publish/{status}/{asset_name}/{sha256}`: the same bytes are published (or staged) once.
pub fn publish_key(status: PublishStatus, asset_name: &str, sha256: &str) -> String {
    format!("publish/{}/{asset_name}/{sha256}", status.as_str())
}

/// `publish/published/{asset_name}/{sha256}/{repository}` (the repository in lower case, as
/// GitHub compares it): the same bytes published to another repository than the one the
/// record under [`publish_key`] names. The first publish keeps the plain key, so the keys of
/// every record written before publishes could go to a second repository stay as they were.
pub fn publish_key_in(asset_name: &str, sha256: &str, repository: &str) -> String {
    format!(
        "{}/{}",
        publish_key(PublishStatus::Published, asset_name, sha256),
        repository.to_ascii_lowercase()
    )
}

/// SHA-256 (hex) over the newline-joined item keys of a bundle.
pub fn bundle_digest(items: &[String]) -> String {
    hex::encode(Sha256::digest(items.join("\n").as_bytes()))
}

/// `rerun/{tenant}/{work_order}/after-r{run}`: one pending request per last run, so a second
/// request before the pass that consumes it is the same request.
pub fn rerun_key(tenant_id: &str, work_order_id: &str, after_run: u64) -> String {
    format!("rerun/{tenant_id}/{work_order_id}/after-r{after_run}")
}

/// A run began: the work order's file digest (and, for a scheduled work order, its period)
/// decides later whether it is up to date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStarted {
    pub tenant_id: String,
    pub work_order_id: String,
    pub run: u64,
    pub run_id: String,
    pub work_order_sha256: String,
    pub correlation_id: String,
    /// The UTC calendar period of a scheduled work order's run; null when unscheduled (SPEC
    /// §9). Records written before schedules existed omit it (read as null): the payload
    /// digest takes a null period as absent (`records::NULL_AS_ABSENT`), so their replays
    /// are still no-ops. Until 2026-12-04 new records omitted it too.
    #[serde(default)]
    pub period: Option<String>,
    /// The key of the `rerun_requested` record this run answers, when one started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun: Option<String>,
}

/// An operator asked for a new run of a work order (`platform rerun`): the next pass starts
/// one even when the work order is up to date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RerunRequested {
    pub tenant_id: String,
    pub work_order_id: String,
    /// The last run number when the request was made (0 if none): the request is pending
    /// until a later run starts.
    pub after_run: u64,
    pub reason: String,
    pub actor: String,
}

impl RerunRequested {
    pub fn key(&self) -> String {
        rerun_key(&self.tenant_id, &self.work_order_id, self.after_run)
    }
}

impl RunStarted {
    pub fn key(&self) -> String {
        run_started_key(&self.run_id)
    }
}

/// A step was charged and is about to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepStarted {
    pub tenant_id: String,
    pub work_order_id: String,
    pub run: u64,
    pub run_id: String,
    pub step_id: String,
    pub attempt: u32,
    pub module_id: String,
}

impl StepStarted {
    pub fn key(&self) -> String {
        step_started_key(&self.run_id, &self.step_id, self.attempt)
    }
}

/// One declared output of a step, by digest: a `file` output by its bytes, a `dir` output
/// once, by its file count, total bytes and the SHA-256 of its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    pub output_id: String,
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    /// Files of a `dir` output (absent for a file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
}

/// How a step attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    pub tenant_id: String,
    pub work_order_id: String,
    pub run: u64,
    pub run_id: String,
    pub step_id: String,
    pub attempt: u32,
    pub module_id: String,
    pub status: StepStatus,
    #[serde(default)]
    pub reason_slug: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub outputs: Vec<OutputRecord>,
    /// Value outputs by id. The canonical encoding holds integers only: a fractional number
    /// is refused by the ledger, so post it as a string.
    #[serde(default)]
    pub values: BTreeMap<String, Value>,
    /// Metered usage of a COMPLETED step, by unit (SPEC §10): what the step is charged for
    /// usage, once, by the SPENDs posted after this record. Absent when none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub usage: BTreeMap<String, UsageCharge>,
}

/// One usage unit of a step outcome: the quantity reported and the price per unit then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCharge {
    pub quantity: u64,
    pub credits: u64,
}

impl UsageCharge {
    /// Credits this usage costs (prices and maxima are capped by the schema: it fits).
    pub fn amount(&self) -> i64 {
        i64::try_from(self.quantity.saturating_mul(self.credits)).unwrap_or(i64::MAX)
    }
}

impl StepOutcome {
    pub fn key(&self) -> String {
        step_outcome_key(&self.run_id, &self.step_id, self.attempt)
    }
}

/// A file named in evidence, by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
    /// Files of a `dir` output, whose `sha256` is that of its manifest (absent for a file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
}

/// Evidence of one step attempt: the files it produced (subjects) and its logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceItem {
    pub run_id: String,
    pub step_id: String,
    pub attempt: u32,
    pub status: StepStatus,
    #[serde(default)]
    pub subjects: Vec<FileDigest>,
    #[serde(default)]
    pub logs: Vec<FileDigest>,
}

impl EvidenceItem {
    pub fn key(&self) -> String {
        evidence_item_key(&self.run_id, &self.step_id, self.attempt)
    }
}

/// Evidence that a delivery happened: where the package went and what was there (what a
/// delivery built-in hands back, and the body of its `delivery_receipt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// `local`, `email`, `github_release`.
    pub provider: String,
    /// Where the package now is: an absolute path, `smtp://host:port/<recipient>`, a URL.
    pub remote_path: String,
    /// The provider's own id for the object (SMTP queue id, Message-ID, asset id), if any.
    #[serde(default)]
    pub object_id: Option<String>,
    pub bytes: u64,
    pub sha256: String,
    /// `verified` (re-read and compared) or `accepted_by_server` (the peer took it).
    pub verification_status: String,
}

/// What a delivery step sent, and where: the step's identity and what it delivered, in one
/// flat JSON object on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReceipt {
    pub tenant_id: String,
    pub work_order_id: String,
    pub run_id: String,
    pub step_id: String,
    pub attempt: u32,
    #[serde(flatten)]
    pub delivered: Delivered,
}

impl DeliveryReceipt {
    pub fn key(&self) -> String {
        delivery_receipt_key(&self.run_id, &self.step_id, self.attempt)
    }
}

/// One step's final state in a run's end record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSummary {
    pub step_id: String,
    pub status: StepStatus,
    #[serde(default)]
    pub reason_slug: Option<String>,
    pub attempt: u32,
}

/// A run (or a `--retry-failed` pass over it) ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEnded {
    pub tenant_id: String,
    pub work_order_id: String,
    pub run: u64,
    pub run_id: String,
    /// The highest attempt of this pass.
    pub attempt: u32,
    pub status: RunStatus,
    pub steps: Vec<StepSummary>,
    pub charged_credits: i64,
    pub refunded_credits: i64,
    /// The run's period, as in its `run_started` (null: unscheduled; absent on older records).
    #[serde(default)]
    pub period: Option<String>,
}

impl RunEnded {
    pub fn key(&self) -> String {
        run_ended_key(&self.run_id, self.attempt)
    }
}

/// The evidence of one run pass: the keys of its evidence items and delivery receipts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceBundle {
    pub tenant_id: String,
    pub work_order_id: String,
    pub run_id: String,
    pub attempt: u32,
    pub items: Vec<String>,
    /// [`bundle_digest`] of `items`.
    pub digest: String,
}

impl EvidenceBundle {
    /// A bundle over `items`, with its digest computed.
    pub fn new(
        tenant_id: &str,
        work_order_id: &str,
        run_id: &str,
        attempt: u32,
        items: Vec<String>,
    ) -> EvidenceBundle {
        let digest = bundle_digest(&items);
        EvidenceBundle {
            tenant_id: tenant_id.into(),
            work_order_id: work_order_id.into(),
            run_id: run_id.into(),
            attempt,
            items,
            digest,
        }
    }

    pub fn key(&self) -> String {
        evidence_bundle_key(&self.run_id, self.attempt)
    }
}

/// Which purchase: a deliverable of one step attempt of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    pub tenant_id: String,
    pub work_order_id: String,
    pub run: u64,
    pub run_id: String,
    pub step_id: String,
    /// The attempt whose outputs are published.
    pub attempt: u32,
    pub deliverable_id: String,
}

/// A purchased deliverable published as a release asset (or staged with `--no-publish`):
/// the purchase and what was published, in one flat JSON object on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publish {
    #[serde(flatten)]
    pub purchase: Purchase,
    /// The SPEND that bought the deliverable.
    pub spend_key: String,
    pub asset_name: String,
    pub bytes: u64,
    pub sha256: String,
    pub status: PublishStatus,
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default)]
    pub release_tag: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    /// Who published (SPEC §7: a privileged record carries what its audit record needs, so
    /// a writer can rebuild `audit/artifacts.publish/{key}` after a crash). Records written
    /// before publish records were privileged have none: they are legacy, audited by the
    /// `publish-set/<sha256>` record of their publish, and not checked one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl Publish {
    /// The plain key ([`publish_key`]); a publish of the same bytes to a second repository is
    /// posted under [`publish_key_in`] instead, by the publisher, which knows the first.
    pub fn key(&self) -> String {
        publish_key(self.status, &self.asset_name, &self.sha256)
    }

    /// Whether this record is of a publish to `repository` (GitHub's names ignore ASCII case).
    pub fn published_to(&self, repository: &str) -> bool {
        self.status == PublishStatus::Published
            && self
                .repository
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(repository))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(run_started_key("r-1"), "run_started/r-1");
        assert_eq!(step_started_key("r-1", "s1", 2), "step_started/r-1/s1/a2");
        assert_eq!(step_outcome_key("r-1", "s1", 1), "step_outcome/r-1/s1/a1");
        assert_eq!(evidence_item_key("r-1", "s1", 1), "evidence_item/r-1/s1/a1");
        assert_eq!(
            delivery_receipt_key("r-1", "s3", 1),
            "delivery_receipt/r-1/s3/a1"
        );
        assert_eq!(run_ended_key("r-1", 2), "run_ended/r-1/a2");
        assert_eq!(evidence_bundle_key("r-1", 1), "evidence_bundle/r-1/a1");
        assert_eq!(rerun_key("acme", "wo-1", 0), "rerun/acme/wo-1/after-r0");
        assert_eq!(
            publish_key(PublishStatus::Staged, "a.zip", "ff"),
            "publish/staged/a.zip/ff"
        );
        assert_eq!(
            publish_key_in("a.zip", "ff", "Acme/Artifacts"),
            "publish/published/a.zip/ff/acme/artifacts"
        );
    }

    #[test]
    fn bundle_digest_is_over_newline_joined_keys() {
        let items = vec!["a".to_string(), "b".to_string()];
        assert_eq!(bundle_digest(&items), hex::encode(Sha256::digest(b"a\nb")));
        let b = EvidenceBundle::new("t", "w", "r", 1, items);
        assert_eq!(b.digest, bundle_digest(&b.items));
    }

    #[test]
    fn statuses_serialize_as_on_disk() {
        assert_eq!(
            serde_json::to_string(&StepStatus::Skipped).unwrap(),
            "\"SKIPPED\""
        );
        assert_eq!(
            serde_json::to_string(&RunStatus::Partial).unwrap(),
            "\"PARTIAL\""
        );
        assert_eq!(
            serde_json::to_string(&PublishStatus::Staged).unwrap(),
            "\"staged\""
        );
    }
}
