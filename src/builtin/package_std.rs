//! package_std as a step: packs the outputs its `bound_outputs` names into the declared
//! package_zip and manifests. The packing itself is package.rs.
use super::package::{build_package_as_recorded, dir_entries, ManifestEntry, PackSource};
use super::{BuiltinStep, Implementation, Receipt, StepFailure};
use crate::workorder::bindings::{output_beneath, Produced};
use crate::workorder::model::{BoundOutput, Step};
use std::collections::BTreeMap;

pub struct PackageStd;

impl Implementation for PackageStd {
    /// Every `bound_outputs` entry names an earlier output that can be read.
    fn precheck(&self, s: &BuiltinStep) -> Result<(), String> {
        package_sources(s.step, s.produced).map(drop)
    }

    fn run(&self, s: &BuiltinStep) -> Result<Option<Receipt>, StepFailure> {
        // Checked before the step was charged; a failure now is a change since: refundable.
        let (sources, recorded) =
            package_sources(s.step, s.produced).map_err(StepFailure::module_failed)?;
        // Tests change a source here, between its check and its packing (docs/reliability.md).
        crate::failpoint::pause("package_std_checked");
        let outputs_dir = s.outputs_dir();
        let path = |id: &str, default: &str| {
            outputs_dir.join(
                s.contract
                    .output_path(id)
                    .unwrap_or_else(|| default.to_string()),
            )
        };
        let zip = path("package_zip", "package.zip");
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
