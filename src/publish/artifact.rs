//! One deliverable's package: its files (from the module contract and the step's recorded outcome), verified against the ledger, then zipped deterministically.
use super::select::{Candidate, Purchase};
use crate::beneath::Beneath;
use crate::builtin::package::{
    build_package_as_recorded, dir_entries, validate_as_path, ManifestEntry, PackSource,
};
use crate::contract::{ModuleContract, OutputType};
pub use crate::digest::short;
use crate::records::OutputRecord;
use crate::runs::step_beneath;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A ZIP written to the dist directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packaged {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

/// The files of a deliverable, as the step's outcome recorded them: the recorded entries of
/// every `file`/`dir` output the contract lists for it (value outputs have no file).
pub fn recorded_files<'a>(
    candidate: &'a Candidate,
    contract: Option<&ModuleContract>,
) -> Result<Vec<&'a OutputRecord>, String> {
    let contract = contract.ok_or_else(|| {
        format!(
            "module '{}' is not in modules/ (or its module.yml does not load), so the outputs of deliverable '{}' are unknown; run `platform consistency-validate`",
            candidate.module_id, candidate.purchase.deliverable_id
        )
    })?;
    let deliverable = contract.deliverable(&candidate.purchase.deliverable_id).ok_or_else(|| {
        format!(
            "module '{}' no longer declares deliverable '{}'; restore it in modules/{}/module.yml to publish this purchase",
            candidate.module_id, candidate.purchase.deliverable_id, candidate.module_id
        )
    })?;
    let mut wanted = BTreeSet::new();
    for id in &deliverable.outputs {
        let output = contract.output(id).ok_or_else(|| {
            format!(
                "deliverable '{}' of module '{}' names output '{id}', which the module does not declare",
                candidate.purchase.deliverable_id, candidate.module_id
            )
        })?;
        match output.ty {
            OutputType::Value => {}
            OutputType::File | OutputType::Dir => {
                wanted.insert(id.as_str());
            }
        }
        // A declared file that the outcome does not list was never verified: refuse to guess.
        if output.ty == OutputType::File
            && !candidate.outcome.outputs.iter().any(|o| o.output_id == *id)
        {
            return Err(format!(
                "the outcome of step '{}' attempt {} records no file for output '{id}'",
                candidate.purchase.step_id, candidate.purchase.attempt
            ));
        }
    }
    let files: Vec<&OutputRecord> = candidate
        .outcome
        .outputs
        .iter()
        .filter(|o| wanted.contains(o.output_id.as_str()))
        .collect();
    if files.is_empty() {
        return Err(format!(
            "deliverable '{}' has no recorded files to package",
            candidate.purchase.deliverable_id
        ));
    }
    Ok(files)
}

/// The step's outputs folder beneath the runtime directory (read through no link).
pub fn outputs_dir(runtime_dir: &Path, c: &Candidate) -> Beneath {
    step_beneath(
        runtime_dir,
        &c.purchase.tenant_id,
        &c.purchase.work_order_id,
        &c.purchase.run_id,
        &c.purchase.step_id,
    )
    .join("outputs")
}

/// Verify every file against the outcome record, then write the ZIP at `zip_path`, entries
/// named by the outputs' declared paths. Anything that differs from what was recorded is an
/// error: the publisher never ships bytes the ledger did not see.
pub fn package(
    candidate: &Candidate,
    contract: Option<&ModuleContract>,
    runtime_dir: &Path,
    zip_path: &Path,
) -> Result<Packaged, String> {
    check_ids(&candidate.purchase)?;
    let files = recorded_files(candidate, contract)?;
    let outputs = outputs_dir(runtime_dir, candidate);
    let dir = outputs.path();
    if !dir.is_dir() {
        return Err(format!(
            "the step's outputs are not in the runtime directory ({} is missing); run publish with the --runtime-dir the orchestrator wrote to, before that scratch space is cleared",
            dir.display()
        ));
    }
    let (sources, expected) = verified(candidate, &files, &outputs)?;
    if let Some(parent) = zip_path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    // The files may change between the check above and the ZIP being written: what goes into
    // the ZIP is compared with the records as it is read, and on a difference no ZIP is kept.
    let summary = build_package_as_recorded(&sources, &expected, zip_path, None, None)
        .map_err(|e| format!("step '{}': {}", candidate.purchase.step_id, e.message))?;
    Ok(Packaged {
        path: zip_path.to_path_buf(),
        bytes: summary.zip_bytes,
        sha256: summary.zip_sha256,
    })
}

/// The IDs become path components and an asset name; the ledger should only hold valid
/// IDs, but a hand-edited line must not steer files elsewhere.
fn check_ids(p: &Purchase) -> Result<(), String> {
    let ids = [
        &p.tenant_id,
        &p.work_order_id,
        &p.run_id,
        &p.step_id,
        &p.deliverable_id,
    ];
    match ids.into_iter().find_map(|id| crate::ids::check(id)) {
        Some(why) => Err(format!("the ledger names an invalid ID: {why}")),
        None => Ok(()),
    }
}

/// Every recorded file, checked against its record: what goes into the ZIP, and the
/// manifest entries the ZIP must then hold.
fn verified(
    candidate: &Candidate,
    files: &[&OutputRecord],
    outputs: &Beneath,
) -> Result<(Vec<PackSource>, Vec<ManifestEntry>), String> {
    let mut sources = Vec::with_capacity(files.len());
    let mut expected = Vec::with_capacity(files.len());
    for f in files {
        validate_as_path(&f.path).map_err(|e| format!("recorded output path: {}", e.message))?;
        let source = PackSource {
            as_path: f.path.clone(),
            source: outputs.join(&f.path),
        };
        match checked(candidate, f, &source.source)? {
            Some(manifest) => expected
                .extend(dir_entries(&f.path, &source.source, manifest).map_err(|e| e.message)?),
            None => expected.push(ManifestEntry {
                path: f.path.clone(),
                bytes: f.bytes,
                sha256: f.sha256.clone(),
            }),
        }
        sources.push(source);
    }
    Ok((sources, expected))
}

/// A recorded output that cannot be read now, or not as a regular file through no link.
fn unreadable(c: &Candidate, e: impl std::fmt::Display) -> String {
    format!(
        "{e} (recorded by step '{}' attempt {}); outputs are read only as regular files with a single link, never through a link",
        c.purchase.step_id, c.purchase.attempt
    )
}

/// A recorded output checked against its record, or why not (the message names the step).
fn checked(
    c: &Candidate,
    f: &OutputRecord,
    at: &Beneath,
) -> Result<Option<crate::output_digest::DirManifest>, String> {
    use crate::output_digest::{check_recorded, NotAsRecorded};
    check_recorded(at, f).map_err(|e| match e {
        NotAsRecorded::Unreadable(why) => unreadable(c, why),
        NotAsRecorded::Differs { bytes, sha256 } => differs(c, f, &at.path(), bytes, &sha256),
    })
}

fn differs(c: &Candidate, f: &OutputRecord, path: &Path, bytes: u64, sha256: &str) -> String {
    format!(
        "{} differs from what step '{}' attempt {} recorded ({} bytes, sha256 {}; recorded {} bytes, sha256 {}); not packaged",
        path.display(),
        c.purchase.step_id,
        c.purchase.attempt,
        bytes,
        short(sha256),
        f.bytes,
        short(&f.sha256)
    )
}
