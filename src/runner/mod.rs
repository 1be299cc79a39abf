//! Executes one step: a command module as a supervised child process tree, or a built-in
//! in-process; checks and bounds outputs; keeps capped logs with secrets redacted.
pub mod command;
#[cfg(target_os = "linux")]
pub mod launch;
pub mod logs;
pub mod outputs;
#[cfg(target_os = "linux")]
pub mod procs;
pub mod redact;
pub mod result;
pub mod self_test;
pub mod supervisor;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    #[serde(rename = "COMPLETED")]
    Completed,
    #[serde(rename = "FAILED")]
    Failed,
}

/// A file an executed step produced, as recorded in evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRecord {
    /// The output id (or log name).
    pub id: String,
    /// Path relative to the step's outputs dir (or runtime-relative for logs).
    pub path: String,
    /// Bytes of the file, or of all files of a `dir` output.
    pub bytes: u64,
    /// SHA-256 of the file, or of a `dir` output's manifest.
    pub sha256: String,
    /// A `dir` output's file count (None for a file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
}

/// What running a step produced.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub status: Status,
    pub reason_slug: Option<String>,
    pub message: Option<String>,
    pub values: serde_json::Map<String, serde_json::Value>,
    pub outputs: Vec<FileRecord>,
    pub logs: Vec<FileRecord>,
    /// Set by delivery built-ins.
    pub receipt: Option<serde_json::Value>,
}

impl StepResult {
    pub fn failed(slug: &str, message: impl Into<String>) -> Self {
        StepResult {
            status: Status::Failed,
            reason_slug: Some(slug.to_string()),
            message: Some(message.into()),
            values: Default::default(),
            outputs: Vec::new(),
            logs: Vec::new(),
            receipt: None,
        }
    }
    pub fn completed() -> Self {
        StepResult {
            status: Status::Completed,
            reason_slug: None,
            message: None,
            values: Default::default(),
            outputs: Vec::new(),
            logs: Vec::new(),
            receipt: None,
        }
    }
}
