//! Identity of a work order and its steps: id = file stem, one file per id, unique step ids.
use super::{step_field, Wo};
use crate::findings::Finding;
use crate::repo::{LoadedWorkOrder, Repo};
use std::collections::BTreeMap;

/// `work_order_id` equals the file stem; there is at least one step; step ids are unique.
pub fn check(_repo: &Repo, w: &Wo<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    if w.wo.work_order_id != w.lw.stem {
        out.push(w.finding(
            "work_order_id",
            format!(
                "work_order_id '{}' must equal the file name '{}' (without .yml); rename the file or change the id",
                w.wo.work_order_id, w.lw.stem
            ),
        ));
    }
    if w.wo.steps.is_empty() {
        // The platform never injects steps, so an empty work order could only charge nothing
        // and deliver nothing: almost certainly an unfinished file.
        out.push(w.finding(
            "steps",
            "the work order has no steps; add at least one step",
        ));
    }
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, step) in w.wo.steps.iter().enumerate() {
        if let Some(j) = first.get(step.step_id.as_str()) {
            out.push(w.finding(
                &format!("{}.step_id", step_field(i)),
                format!(
                    "step id '{}' is used by steps[{j}] and steps[{i}]; step ids must be unique within a work order, rename one",
                    step.step_id
                ),
            ));
        } else {
            first.insert(&step.step_id, i);
        }
    }
    out
}

/// Two files of one tenant with the same stem (`x.yml` and `x.yaml`) would be one work order
/// twice: the ledger keys runs by id, so their runs would mix.
pub fn duplicate_files(repo: &Repo, lw: &LoadedWorkOrder) -> Vec<Finding> {
    let Some(tenant) = repo.tenants.get(&lw.tenant_id) else {
        return Vec::new();
    };
    // A tenant's work orders are sorted by path, so every file named `<stem>.<ext>` is in the
    // run of paths that start with `<dir>/<stem>.`: found by bisection (scanning the whole
    // tenant for each of its work orders made validation quadratic in its size).
    let dir_len = lw.rel.rfind('/').map_or(0, |i| i + 1);
    let prefix = format!("{}{}.", &lw.rel[..dir_len], lw.stem);
    let all = &tenant.work_orders;
    let from = all.partition_point(|o| o.rel.as_str() < prefix.as_str());
    let others: Vec<&str> = all[from..]
        .iter()
        .take_while(|o| o.rel.starts_with(&prefix))
        .filter(|o| o.stem == lw.stem && o.rel != lw.rel)
        .map(|o| o.rel.as_str())
        .collect();
    if others.is_empty() {
        return Vec::new();
    }
    vec![Finding::error(
        &lw.rel,
        "work_order_id",
        format!(
            "work order '{}' is also defined by {}; keep one file per work order id",
            lw.stem,
            others.join(", ")
        ),
    )]
}
