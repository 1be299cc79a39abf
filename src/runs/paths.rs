//! The runtime directory's layout for runs: `runs/<tenant>/<work order>/<run_id>/<step>/` (SPEC §2), opened beneath the runtime directory.
use crate::beneath::Beneath;
use std::path::Path;

/// The folder of one step of one run, beneath the runtime directory: what the platform reads
/// there (outputs, asset copies) is opened through no link below the runtime directory.
pub fn step_beneath(
    runtime_dir: &Path,
    tenant: &str,
    wo: &str,
    run_id: &str,
    step_id: &str,
) -> Beneath {
    let rel = Path::new("runs")
        .join(tenant)
        .join(wo)
        .join(run_id)
        .join(step_id);
    Beneath::new(runtime_dir, rel)
}
