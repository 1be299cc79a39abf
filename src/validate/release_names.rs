//! Names a work order's IDs give GitHub: the release tag each profile's `release_tag` renders for its run 1 (when it delivers to or purchases for a release) and each purchase's asset name, checked by the functions the publisher and deliver_github_release use.
use super::{step_field, Wo};
use crate::findings::Finding;
use crate::github::{validate_asset_name, GithubSettings, ReleaseOwner};
use crate::publish::select::{asset_name, is_internal};
use crate::repo::Repo;
use std::collections::BTreeMap;

/// IDs may be 64 characters each (SPEC §2), but a tag may have 128 and an asset name 255:
/// two long IDs make a tag no release can have, four an asset name no file system or release
/// takes. Left to run time, every run charged the steps before deliver_github_release and then
/// failed it, and `platform publish` failed the purchase on every run, forever.
pub fn check(repo: &Repo, w: &Wo<'_>) -> Vec<Finding> {
    let mut out = asset_names(w);
    out.extend(release_tags(repo, w));
    out
}

/// Each purchase's `<tenant>__<work_order>__<step>__<deliverable>.zip`, through the check
/// every upload runs (`validate_asset_name`).
fn asset_names(w: &Wo<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, step) in w.wo.steps.iter().enumerate() {
        for d in step.deliverables.iter().filter(|d| !is_internal(d)) {
            let name = asset_name(&w.lw.tenant_id, &w.wo.work_order_id, &step.step_id, d);
            if let Err(e) = validate_asset_name(&name) {
                out.push(w.finding(
                    &format!("{}.deliverables", step_field(i)),
                    format!(
                        "step '{}' purchases '{d}', which `platform publish` writes and uploads as {} ({} bytes): {}; every publish would fail it after it was charged. Shorten the tenant, work order, step or deliverable id",
                        step.step_id,
                        name,
                        name.len(),
                        e.message
                    ),
                ));
            }
        }
    }
    out
}

/// The tag of run 1 under each profile's template (`checked_release_tag`), when a step
/// delivers to the run's release or purchases what `platform publish` uploads to it. Later runs
/// have longer numbers: a tag that fits run 1 but not run 10 is refused by
/// deliver_github_release's own check before its charge.
fn release_tags(repo: &Repo, w: &Wo<'_>) -> Vec<Finding> {
    let Some(why) = why_a_release(repo, w) else {
        return Vec::new();
    };
    let owner = ReleaseOwner::new(&w.lw.tenant_id, &w.wo.work_order_id, 1);
    let blocks = repo
        .github_blocks
        .get_or_init(|| super::profiles::github_blocks(repo));
    // Profiles with one template give one tag: one finding naming them all.
    let mut by_template: BTreeMap<&str, (Vec<&str>, &GithubSettings)> = BTreeMap::new();
    for (profile, settings) in blocks {
        by_template
            .entry(settings.release_tag.as_str())
            .or_insert_with(|| (Vec::new(), settings))
            .0
            .push(profile);
    }
    by_template
        .into_iter()
        .filter_map(|(template, (profiles, settings))| {
            let e = settings.checked_release_tag(&owner).err()?;
            Some(w.finding(
                "work_order_id",
                format!(
                    "{why}; for run 1, github.release_tag '{template}' of {} gives: {}; {}",
                    profiles.join(", "),
                    e.message,
                    e.help.unwrap_or_default()
                ),
            ))
        })
        .collect()
}

/// What needs the run's release: a deliver_github_release step, else a purchase.
fn why_a_release(repo: &Repo, w: &Wo<'_>) -> Option<String> {
    if let Some((_, s)) = super::releases::release_deliveries(repo, w).first() {
        return Some(format!(
            "step '{}' runs deliver_github_release, which uploads to the release of each run (every run would charge the steps before it, then fail it)",
            s.step_id
        ));
    }
    w.wo.steps
        .iter()
        .find(|s| s.deliverables.iter().any(|d| !is_internal(d)))
        .map(|s| {
            format!(
                "step '{}' purchases deliverables, which `platform publish` uploads to the release of each run (it could never publish them)",
                s.step_id
            )
        })
}
