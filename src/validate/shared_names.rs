//! One asset name, one purchase: SPEC §5 names a purchase's artifact `<tenant>__<work_order>__<step>__<deliverable>.zip`, and IDs may contain `_`, so two purchases (of one work order, or of two tenants) can run together into one name; each is reported where it is purchased, naming the other.
//!
//! No rule on IDs alone can keep the names apart without narrowing SPEC §2's IDs: tenant `a`
//! with work order `b__c` and tenant `a__b` with work order `c` are both valid. So the
//! purchases themselves are compared. Two names can only be equal when, of two different
//! tenant ids (or work order ids of one tenant), the longer one is the shorter followed by `_`
//! or by `__` (see [`run_together`]): only the work orders of such tenants and such work
//! orders are read, so a repository whose IDs never run together costs a scan of its IDs.
use super::{step_field, Wo};
use crate::findings::Finding;
use crate::publish::select::{asset_name, is_internal};
use crate::repo::{LoadedWorkOrder, Repo};
use crate::workorder::model::WorkOrder;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::Path;

/// One purchased deliverable of a work order, and the asset name it is published under.
#[derive(Debug, Clone)]
struct Buyer<'a> {
    rel: &'a str,
    tenant_id: &'a str,
    work_order_id: &'a str,
    step: usize,
    step_id: &'a str,
    deliverable_id: &'a str,
    name: String,
}

impl Buyer<'_> {
    fn same_purchase(&self, other: &Buyer<'_>) -> bool {
        (
            self.tenant_id,
            self.work_order_id,
            self.step_id,
            self.deliverable_id,
        ) == (
            other.tenant_id,
            other.work_order_id,
            other.step_id,
            other.deliverable_id,
        )
    }

    /// How a message names it when it is another file's.
    fn describe(&self) -> String {
        format!(
            "step '{}' ('{}') of {} (tenant '{}', work order '{}')",
            self.step_id, self.deliverable_id, self.rel, self.tenant_id, self.work_order_id
        )
    }
}

/// Every purchase of a work order with its asset name.
fn buyers<'a>(rel: &'a str, tenant_id: &'a str, wo: &'a WorkOrder) -> Vec<Buyer<'a>> {
    let mut out = Vec::new();
    for (i, step) in wo.steps.iter().enumerate() {
        for d in step.deliverables.iter().filter(|d| !is_internal(d)) {
            out.push(Buyer {
                rel,
                tenant_id,
                work_order_id: &wo.work_order_id,
                step: i,
                step_id: &step.step_id,
                deliverable_id: d,
                name: asset_name(tenant_id, &wo.work_order_id, &step.step_id, d),
            });
        }
    }
    out
}

/// For each buyer (by index), the others of the same name that are another purchase and that
/// `counts` accepts.
fn clashes<'b>(
    buyers: &'b [Buyer<'_>],
    counts: impl Fn(&Buyer<'_>, &Buyer<'_>) -> bool,
) -> BTreeMap<usize, Vec<&'b Buyer<'b>>> {
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, b) in buyers.iter().enumerate() {
        by_name.entry(b.name.as_str()).or_default().push(i);
    }
    let mut out: BTreeMap<usize, Vec<&Buyer<'_>>> = BTreeMap::new();
    for idx in by_name.values().filter(|idx| idx.len() > 1) {
        for &i in idx {
            let me = &buyers[i];
            let others: Vec<&Buyer<'_>> = idx
                .iter()
                .map(|&j| &buyers[j])
                .filter(|o| !o.same_purchase(me) && counts(me, o))
                .collect();
            if !others.is_empty() {
                out.insert(i, others);
            }
        }
    }
    out
}

fn message(me: &Buyer<'_>, others: &str) -> String {
    format!(
        "step '{}' purchases '{}', which `platform publish` names {}; so does {others}. One asset name holds one purchase: whichever is published second with the same bytes would never be published (IDs may contain '__', and SPEC §5 fixes the name). Rename a work order, step or deliverable (or a tenant) so the IDs do not run together",
        me.step_id, me.deliverable_id, me.name
    )
}

/// Purchases of this work order that share a name with another of its own purchases
/// (step `x__y` buying `z`, step `x` buying `y__z`). Only this file and the module contracts
/// decide it, so the work-order cache's verdict holds for it.
pub fn check(_repo: &Repo, w: &Wo<'_>) -> Vec<Finding> {
    let mine = buyers(&w.lw.rel, &w.lw.tenant_id, w.wo);
    clashes(&mine, |_, _| true)
        .into_iter()
        .map(|(i, others)| {
            let me = &mine[i];
            let list: Vec<String> = others
                .iter()
                .map(|o| {
                    format!(
                        "step '{}' ('{}') of this work order",
                        o.step_id, o.deliverable_id
                    )
                })
                .collect();
            w.finding(
                &format!("{}.deliverables", step_field(me.step)),
                message(me, &list.join(", ")),
            )
        })
        .collect()
}

/// Purchases of `lw` that share a name with a purchase of another enabled work order (a
/// draft's purchases are never charged, but a draft is told about an enabled one's). The
/// rule spans files, so it is checked for every work order, whatever the cache says of it (as
/// `identity::duplicate_files`); the repository's clashes are found once.
pub fn between_files(repo: &Repo, lw: &LoadedWorkOrder) -> Vec<Finding> {
    repo.shared_names
        .get_or_init(|| index(repo))
        .get(&lw.rel)
        .cloned()
        .unwrap_or_default()
}

/// The findings of every work order whose purchases share a name with another file's, by
/// file. The suspects are read from their files again: during loading, and for a work order
/// the cache vouched for, the model is not in memory.
fn index(repo: &Repo) -> BTreeMap<String, Vec<Finding>> {
    let read: Vec<LoadedWorkOrder> = suspects(repo)
        .into_iter()
        .map(|lw| crate::repo::load_work_order(&repo.root, Path::new(&lw.rel), &lw.tenant_id))
        .collect();
    let files: BTreeMap<&str, &LoadedWorkOrder> =
        read.iter().map(|lw| (lw.rel.as_str(), lw)).collect();
    let all: Vec<Buyer<'_>> = read
        .iter()
        .filter_map(|lw| Some(buyers(&lw.rel, &lw.tenant_id, lw.work_order.as_ref()?)))
        .flatten()
        .collect();
    let enabled = |rel: &str| files.get(rel).is_some_and(|lw| lw.enabled);
    let mut out: BTreeMap<String, Vec<Finding>> = BTreeMap::new();
    for (i, others) in clashes(&all, |me, o| o.rel != me.rel && enabled(o.rel)) {
        let me = &all[i];
        let Some(doc) = files.get(me.rel).and_then(|lw| lw.doc.as_ref()) else {
            continue;
        };
        let list: Vec<String> = others.iter().map(|o| o.describe()).collect();
        out.entry(me.rel.to_string()).or_default().push(doc.finding(
            &format!("{}.deliverables", step_field(me.step)),
            message(me, &list.join(", ")),
        ));
    }
    out
}

/// Whether `<short>__…` can also be read as `<long>__…`: `long` is `short` followed by `_`, or
/// by `__` (and anything). Equal lengths never: the strings differ before the first `__`.
fn run_together(short: &str, long: &str) -> bool {
    long.strip_prefix(short)
        .is_some_and(|rest| rest == "_" || rest.starts_with("__"))
}

/// The work orders whose names could run together with another's: every work order of a
/// tenant whose id runs together with another tenant's, and within each tenant those whose
/// ids run together. Both sides of a pair start with the shorter id and `_`, so each id's
/// candidates are one range of a sorted list.
fn suspects(repo: &Repo) -> Vec<&LoadedWorkOrder> {
    let mut tenants: BTreeSet<&str> = BTreeSet::new();
    for t in repo.tenants.keys() {
        let prefix = format!("{t}_");
        let range = repo
            .tenants
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded));
        for (other, _) in range.take_while(|(o, _)| o.starts_with(&prefix)) {
            if run_together(t, other) {
                tenants.insert(t);
                tenants.insert(other);
            }
        }
    }
    let mut out: BTreeMap<&str, &LoadedWorkOrder> = BTreeMap::new();
    for (t, tenant) in &repo.tenants {
        let all = &tenant.work_orders;
        if tenants.contains(t.as_str()) {
            out.extend(all.iter().map(|lw| (lw.rel.as_str(), lw)));
            continue;
        }
        // Sorted by path: the files whose stem starts with `<stem>_` follow one another.
        for lw in all {
            let dir_len = lw.rel.rfind('/').map_or(0, |i| i + 1);
            let prefix = format!("{}{}_", &lw.rel[..dir_len], lw.stem);
            let from = all.partition_point(|o| o.rel.as_str() < prefix.as_str());
            for other in all[from..]
                .iter()
                .take_while(|o| o.rel.starts_with(&prefix))
            {
                if run_together(&lw.stem, &other.stem) {
                    out.insert(&lw.rel, lw);
                    out.insert(&other.rel, other);
                }
            }
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::run_together;

    #[test]
    fn ids_run_together_only_through_underscores() {
        // a__b__c… can be tenant a, work order b__c… or tenant a__b, work order c…
        assert!(run_together("a", "a__b"));
        // a___x… can be tenant a, work order _x… or tenant a_, work order x…
        assert!(run_together("a", "a_"));
        assert!(!run_together("a", "a_b"), "a__… never reads as a_b__…");
        assert!(!run_together("a", "ab"));
        // a____x… can be tenant a, work order __x… or tenant a__, work order x…
        assert!(run_together("a", "a__"));
        assert!(!run_together("a", "a"));
        assert!(!run_together("ab", "a__b"));
    }
}
