//! Runs by work order and number: the map that `History` and `LastRuns` both fold ledger
//! records into.
use std::collections::BTreeMap;

/// Runs by work order: (tenant, work order) → run number → what is known of the run.
pub(crate) type Runs<R> = BTreeMap<(String, String), RunMap<R>>;

/// A work order's runs by number. Boxed: most work orders have one run, and a B-tree's
/// first node holds eleven entries, so a run held inline cost eleven runs' memory
/// (2 KiB per work order for a `RunHistory`, 21 MB at W = 10,000).
pub type RunMap<R> = BTreeMap<u64, Box<R>>;

/// What a [`Runs`] map holds: a run known by its number and its run id.
pub(crate) trait RunSlot: Default {
    fn run_id_mut(&mut self) -> &mut String;
}

/// Run `run` of a work order, created at its first record; it keeps the first run id read.
pub(crate) fn run_entry<'a, R: RunSlot>(
    runs: &'a mut Runs<R>,
    (tenant, wo): (&str, &str),
    run: u64,
    run_id: &str,
) -> &'a mut R {
    let r = runs
        .entry((tenant.to_string(), wo.to_string()))
        .or_default()
        .entry(run)
        .or_default();
    if r.run_id_mut().is_empty() {
        *r.run_id_mut() = run_id.to_string();
    }
    r
}

/// The run of a work order with this run id, if one is known: a delivery receipt alone
/// starts no run.
pub(crate) fn run_with_id<'a, R: RunSlot>(
    runs: &'a mut Runs<R>,
    (tenant, wo): (&str, &str),
    run_id: &str,
) -> Option<&'a mut R> {
    runs.get_mut(&(tenant.to_string(), wo.to_string()))
        .and_then(|runs| {
            runs.values_mut()
                .find_map(|r| (r.run_id_mut() == run_id).then_some(&mut **r))
        })
}
