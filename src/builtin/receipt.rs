//! What a delivery hands back: a receipt on success, a step failure with a SPEC §4 reason slug otherwise.
use serde::{Deserialize, Serialize};
use std::fmt;

/// Reason slugs a built-in step can report (SPEC §4); the orchestrator decides refunds.
pub mod slug {
    pub const DELIVERY_FAILED: &str = "delivery_failed";
    pub const PACKAGE_TOO_LARGE_FOR_EMAIL: &str = "package_too_large_for_email";
    pub const MODULE_FAILED: &str = "module_failed";
    pub const INPUT_INVALID: &str = "input_invalid";
}

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

/// A step that did not complete: a SPEC §4 reason slug and a message for the step's records.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StepFailure {
    pub reason_slug: String,
    pub message: String,
}

impl StepFailure {
    pub fn new(reason_slug: &str, message: impl Into<String>) -> Self {
        StepFailure {
            reason_slug: reason_slug.to_string(),
            message: message.into(),
        }
    }
    pub fn delivery_failed(message: impl Into<String>) -> Self {
        Self::new(slug::DELIVERY_FAILED, message)
    }
    pub fn too_large_for_email(message: impl Into<String>) -> Self {
        Self::new(slug::PACKAGE_TOO_LARGE_FOR_EMAIL, message)
    }
    pub fn module_failed(message: impl Into<String>) -> Self {
        Self::new(slug::MODULE_FAILED, message)
    }
    pub fn input_invalid(message: impl Into<String>) -> Self {
        Self::new(slug::INPUT_INVALID, message)
    }
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason_slug, self.message)
    }
}

impl std::error::Error for StepFailure {}
