//! Step outputs in `<runtime>/runs/` compared with the digests their latest outcome recorded.
use super::{invalid_id, not_as_recorded, runtime_problem, Counted};
use crate::ledger::Problem;
use crate::output_digest::check_recorded;
use crate::runs::History;
use std::path::Path;

/// Every output the latest outcome of each step records, compared with the one found in
/// `runs/<tenant>/<work order>/<run>/<step>/outputs/` (a retry clears and reuses that folder,
/// so it holds the latest attempt's files). A present output that differs, or is a link or
/// not a regular file, is a problem; an absent one is only counted. Each present output is
/// read once, through no link.
pub(super) fn check(history: &History, runtime: &Path, problems: &mut Vec<Problem>) -> Counted {
    let mut counts = Counted::default();
    for ((tenant, wo), runs) in &history.work_orders {
        for run in runs.values() {
            for (step, s) in &run.steps {
                // A later attempt that started without an outcome (a crash) left unrecorded
                // files in the folder: nothing of the step is compared.
                let Some((attempt, Some(outcome))) = s.latest().map(|(n, a)| (n, &a.outcome))
                else {
                    continue;
                };
                let step_at = format!("run {} step '{step}' attempt {attempt}", run.run_id);
                if let Some(why) = invalid_id(&[tenant, wo, &run.run_id, step]) {
                    problems.push(runtime_problem(
                        runtime,
                        format!("{step_at}: the ledger names an invalid ID: {why}"),
                    ));
                    continue;
                }
                let folder =
                    crate::runs::paths::step_beneath(runtime, tenant, wo, &run.run_id, step)
                        .join("outputs");
                for rec in &outcome.outputs {
                    let at = folder.join(&rec.path);
                    if super::is_missing(&at) {
                        counts.absent += 1;
                        continue;
                    }
                    counts.checked += 1;
                    if let Err(why) = check_recorded(&at, rec) {
                        let what = format!("output '{}' of {step_at}", rec.output_id);
                        problems.push(not_as_recorded(&at, what, why, rec.bytes, &rec.sha256));
                    }
                }
            }
        }
    }
    counts
}
