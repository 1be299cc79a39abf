//! What a built-in hands back: a delivery's receipt on success, a step failure with a SPEC §4 reason otherwise.
use crate::contract::Failure;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Evidence that a delivery happened: where the package went and what was there.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
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

/// A step that did not complete: a SPEC §4 reason (the orchestrator decides refunds) and a
/// message for the step's records.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StepFailure {
    /// Its wire name is the slug's.
    pub reason_slug: Failure,
    pub message: String,
}

impl StepFailure {
    pub fn new(reason: Failure, message: impl Into<String>) -> Self {
        StepFailure {
            reason_slug: reason,
            message: message.into(),
        }
    }
    pub fn delivery_failed(message: impl Into<String>) -> Self {
        Self::new(Failure::DeliveryFailed, message)
    }
    pub fn too_large_for_email(message: impl Into<String>) -> Self {
        Self::new(Failure::PackageTooLargeForEmail, message)
    }
    pub fn module_failed(message: impl Into<String>) -> Self {
        Self::new(Failure::ModuleFailed, message)
    }
    pub fn input_invalid(message: impl Into<String>) -> Self {
        Self::new(Failure::InputInvalid, message)
    }
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason_slug, self.message)
    }
}

impl std::error::Error for StepFailure {}
