//! Reading the repository's GitHub Actions files for static checks: the workflow files, their jobs, steps and scripts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};

pub fn root() -> &'static Path {
    super::fx::crate_root()
}

/// `PLATFORM_TEST_ACTIONLINT`, else the one scripts/setup-test-deps.sh installs.
pub fn actionlint() -> PathBuf {
    std::env::var_os("PLATFORM_TEST_ACTIONLINT")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".ci/venv/bin/actionlint"))
}

/// Every `.yml`/`.yaml` file of .github/workflows/, sorted.
pub fn workflow_files() -> Vec<PathBuf> {
    yml_files(&root().join(".github/workflows"))
}

/// The workflows `platform init` writes (src/init/template/dot-github/workflows/), sorted.
pub fn template_workflow_files() -> Vec<PathBuf> {
    yml_files(&root().join("src/init/template/dot-github/workflows"))
}

fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no workflow files in {}", dir.display());
    files
}

pub fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
}

pub fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

pub fn jobs(wf: &Value) -> Vec<(String, &Value)> {
    wf.get("jobs")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default()
}

pub fn steps(job: &Value) -> Vec<&Value> {
    job.get("steps")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

pub fn run_text(step: &Value) -> &str {
    step.get("run").and_then(Value::as_str).unwrap_or("")
}

/// Whether a step of the job runs a script holding any of `commands`.
pub fn runs_any(job: &Value, commands: &[&str]) -> bool {
    steps(job)
        .iter()
        .any(|s| commands.iter().any(|c| run_text(s).contains(c)))
}
