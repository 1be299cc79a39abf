//! What a built-in hands back: a delivery's receipt on success, a step failure with a SPEC §4 reason otherwise.
use crate::contract::Failure;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A delivery's receipt: the fields its `delivery_receipt` record carries beside the step's
/// identity (one definition, in records/).
pub use crate::records::evidence::Delivered as Receipt;

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
