//! A whole repository's findings as `consistency-validate` reports them: errors and warnings, each grouped by file, then line.
use crate::error::{Error, Result};
use crate::findings::Finding;
use crate::repo::Repo;
use serde::Serialize;
use std::path::Path;

/// Every finding of a repository (the `--format json` document).
#[derive(Debug, Clone, Serialize)]
pub struct Findings {
    pub errors: Vec<Finding>,
    /// Drafts' findings, and anything else that does not fail validation.
    pub warnings: Vec<Finding>,
}

/// Load and check the repository at `root`. A missing or unreadable repository, or a folder
/// with neither modules/ nor tenants/, is an input error (exit 2), not "0 findings".
pub fn check_repository(root: &Path) -> Result<Findings> {
    if let Err(e) = std::fs::read_dir(root) {
        return Err(
            Error::input(format!("cannot read repository {}: {e}", root.display())).help(
                "pass --repo DIR pointing at a platform repository (modules/, tenants/, config/)",
            ),
        );
    }
    if !root.join("modules").is_dir() && !root.join("tenants").is_dir() {
        return Err(Error::input(format!(
            "{} is not a platform repository: it has neither modules/ nor tenants/",
            root.display()
        ))
        .help("run this in the repository root, or pass --repo DIR"));
    }
    let repo = Repo::load(root)?;
    let (errors, warnings) = super::split(sort(super::repository(&repo)));
    Ok(Findings { errors, warnings })
}

/// Group by file, then by line, keeping each file's findings in the order the checks found them.
pub fn sort(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by(|a, b| {
        a.file
            .cmp(&b.file)
            .then(a.line.unwrap_or(0).cmp(&b.line.unwrap_or(0)))
    });
    findings
}
