//! Local deliveries in `<runtime>/deliveries/` compared with their receipts: the copy in a step's delivery folder is the one the latest receipt for that folder and name recorded.
use super::{invalid_id, is_missing, not_as_recorded, runtime_problem, Counted};
use crate::beneath::Beneath;
use crate::ledger::Problem;
use crate::output_digest::check_file;
use crate::records::evidence::Delivered;
use crate::runs::History;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The latest receipt of a delivered file: its run, attempt and what it recorded.
struct Latest<'a> {
    run_id: &'a str,
    attempt: u32,
    delivered: &'a Delivered,
}

/// Every package `deliver_local` copied (provider `local`) is at
/// `deliveries/<tenant>/<work order>/<step>/<its file name>`, a folder every run of the step
/// shares: a later run's copy replaces an earlier one's, so each file is compared with its
/// latest receipt (runs, then attempts, in order). A step whose latest attempt started
/// without an outcome (a crash, or a pass in flight) may have copied anything: its folder is
/// skipped. A present copy that differs, or is a link or not a regular file, is a problem;
/// an absent one is only counted.
pub(super) fn check(history: &History, runtime: &Path, problems: &mut Vec<Problem>) -> Counted {
    let mut counts = Counted::default();
    for ((tenant, wo), runs) in &history.work_orders {
        let mut latest: BTreeMap<(&str, &str), Latest<'_>> = BTreeMap::new();
        let mut unsettled: BTreeSet<&str> = BTreeSet::new();
        for run in runs.values() {
            for (step, s) in &run.steps {
                for (&attempt, a) in &s.attempts {
                    if a.started && a.outcome.is_none() {
                        unsettled.insert(step);
                        continue;
                    }
                    unsettled.remove(step.as_str());
                    let Some(d) = a.receipt.as_deref().filter(|d| d.provider == "local") else {
                        continue;
                    };
                    let name = Path::new(&d.remote_path)
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("");
                    let run_id = &run.run_id;
                    latest.insert(
                        (step, name),
                        Latest {
                            run_id,
                            attempt,
                            delivered: d,
                        },
                    );
                }
            }
        }
        for ((step, name), l) in latest {
            if unsettled.contains(step) {
                continue;
            }
            let at_step = format!(
                "the delivered copy of run {} step '{step}' attempt {}",
                l.run_id, l.attempt
            );
            if let Some(why) = invalid_id(&[tenant, wo, step]) {
                problems.push(runtime_problem(
                    runtime,
                    format!("{at_step}: the ledger names an invalid ID: {why}"),
                ));
                continue;
            }
            if name.is_empty() || name.starts_with('.') {
                problems.push(runtime_problem(
                    runtime,
                    format!(
                        "{at_step}: its receipt's remote_path {:?} names no file to compare",
                        l.delivered.remote_path
                    ),
                ));
                continue;
            }
            let rel = Path::new("deliveries")
                .join(tenant)
                .join(wo)
                .join(step)
                .join(name);
            let at = Beneath::new(runtime, rel);
            if is_missing(&at) {
                counts.absent += 1;
                continue;
            }
            counts.checked += 1;
            let d = l.delivered;
            if let Err(why) = check_file(&at, d.bytes, &d.sha256) {
                problems.push(not_as_recorded(&at, at_step, why, d.bytes, &d.sha256));
            }
        }
    }
    counts
}
