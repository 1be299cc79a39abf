//! package_std as a step: packs the outputs its `bound_outputs` names into the declared
//! package_zip and manifests. The packing itself is package.rs.
use super::package::{
    build_package_as_recorded, dir_entries, max_package_bytes, ManifestEntry, PackSource,
};
use super::{BuiltinStep, Implementation, Receipt, StepFailure};
use crate::workorder::bindings::{output_beneath, Produced};
use crate::workorder::model::{BoundOutput, Step};
use std::collections::BTreeMap;
use std::path::Path;

pub struct PackageStd;

impl Implementation for PackageStd {
    /// Every `bound_outputs` entry names an earlier output that can be read, and the package
    /// of them fits in the outputs a step may leave.
    fn precheck(&self, s: &BuiltinStep) -> Result<(), String> {
        let (_, recorded) = package_sources(s.step, s.produced)?;
        fits_in_a_step(s, &recorded)
    }

    fn run(&self, s: &BuiltinStep) -> Result<Option<Receipt>, StepFailure> {
        // Checked before the step was charged; a failure now is a change since: refundable.
        let (sources, recorded) =
            package_sources(s.step, s.produced).map_err(StepFailure::module_failed)?;
        // Tests change a source here, between its check and its packing (docs/reliability.md).
        crate::failpoint::pause("package_std_checked");
        let outputs_dir = s.outputs_dir();
        let path = |id: &str, default: &str| outputs_dir.join(output_path(s, id, default));
        let zip = path("package_zip", PACKAGE_ZIP);
        let mj = path("manifest_json", "manifest.json");
        let mc = path("manifest_csv", "manifest.csv");
        for p in [&zip, &mj, &mc] {
            if let Some(parent) = p.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
        }
        // Compared with the records as packed: what a step recorded is what is packed, or
        // nothing is kept and the step fails, refunded.
        build_package_as_recorded(&sources, &recorded, &zip, Some(&mj), Some(&mc))
            .map_err(|e| StepFailure::module_failed(e.message))?;
        Ok(None)
    }
}

/// The package's path when module.yml declares none.
const PACKAGE_ZIP: &str = "package.zip";

/// Where module.yml puts output `id` in the outputs folder (`default` when it says nothing).
fn output_path(s: &BuiltinStep, id: &str, default: &str) -> String {
    s.contract
        .output_path(id)
        .unwrap_or_else(|| default.to_string())
}

/// The package and its manifests are the step's outputs, which may hold at most
/// `output_digest::MAX_BYTES`: a package that could pass it is refused before the charge
/// (past it, the step would fail `outputs_too_large` after the charge, on every retry). Its
/// size is bounded as if nothing compressed: how well the files compress is only known
/// once they are packed.
fn fits_in_a_step(s: &BuiltinStep, recorded: &[ManifestEntry]) -> Result<(), String> {
    use crate::output_digest::MAX_BYTES;
    let zip = output_path(s, "package_zip", PACKAGE_ZIP);
    let most = max_package_bytes(recorded, Path::new(&zip));
    if most <= MAX_BYTES {
        return Ok(());
    }
    let bytes = recorded
        .iter()
        .fold(0u64, |sum, e| sum.saturating_add(e.bytes));
    Err(format!(
        "the package would exceed {} GiB, the most a step may leave: bound_outputs hold {} file{} of {bytes} bytes in all, which with the ZIP's headers and the manifests may take up to {most} bytes (counted as if nothing compressed); split bound_outputs across several package_std steps, each making a package of its own",
        MAX_BYTES >> 30,
        recorded.len(),
        if recorded.len() == 1 { "" } else { "s" }
    ))
}

/// package_std's sources from `bound_outputs`, each checked against what its step recorded,
/// and the entries the package must hold (the recorded files); Err names the entry that
/// cannot be used.
pub fn package_sources(
    step: &Step,
    produced: &BTreeMap<String, Produced>,
) -> Result<(Vec<PackSource>, Vec<ManifestEntry>), String> {
    let raw = step
        .raw_inputs
        .get("bound_outputs")
        .and_then(|v| v.as_array())
        .ok_or("input 'bound_outputs' must be a list of {from_step, output_id, as_path}")?;
    let (mut out, mut recorded) = (Vec::new(), Vec::new());
    for (i, entry) in raw.iter().enumerate() {
        let b: BoundOutput = serde_json::from_value(entry.clone())
            .map_err(|e| format!("bound_outputs[{i}]: {e}"))?;
        // The entry names package.rs accepts, checked here too: before the charge.
        super::package::validate_as_path(&b.as_path)
            .map_err(|e| format!("bound_outputs[{i}]: {}", e.message))?;
        let checked = output_beneath(produced, &b.from_step, &b.output_id)
            .map_err(|e| format!("bound_outputs[{i}]: {e}"))?;
        match checked.manifest {
            Some(manifest) => recorded.extend(
                dir_entries(&b.as_path, &checked.at, manifest)
                    .map_err(|e| format!("bound_outputs[{i}]: {}", e.message))?,
            ),
            None => recorded.push(ManifestEntry {
                path: b.as_path.clone(),
                bytes: checked.record.bytes,
                sha256: checked.record.sha256.clone(),
            }),
        }
        out.push(PackSource {
            as_path: b.as_path,
            source: checked.at,
        });
    }
    Ok((out, recorded))
}
