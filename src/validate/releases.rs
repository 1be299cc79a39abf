//! One writer per run's release (SPEC §5): deliver_github_release and `platform publish` both publish the release the profile's `release_tag` renders for a run, so a work order may not have both.
use super::{list_or_none, step_field, Wo};
use crate::contract::Builtin;
use crate::findings::Finding;
use crate::github::settings::DEFAULT_RELEASE_TAG;
use crate::github::tag_template::TagTemplate;
use crate::github::ReleaseOwner;
use crate::publish::select::is_internal;
use crate::repo::Repo;

/// Each deliver_github_release step of a work order that also purchases deliverables. Both
/// writers render the tag from the same owner (tenant, work order, run) and each publishes the
/// release when done; GitHub's published releases are immutable, so whichever comes second
/// would fail on every try (publish exits 1 on every run, or every retry of the delivery is
/// charged and fails). Refused here, before anything is charged.
pub fn check(repo: &Repo, w: &Wo<'_>) -> Vec<Finding> {
    let github: Vec<(usize, &str)> =
        w.wo.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                repo.module(&s.module_id).and_then(|m| m.runner.builtin())
                    == Some(Builtin::DeliverGithubRelease)
            })
            .map(|(i, s)| (i, s.step_id.as_str()))
            .collect();
    if github.is_empty() {
        return Vec::new();
    }
    let purchases: Vec<String> =
        w.wo.steps
            .iter()
            .filter_map(|s| {
                let bought: Vec<&str> = s
                    .deliverables
                    .iter()
                    .map(String::as_str)
                    .filter(|d| !is_internal(d))
                    .collect();
                (!bought.is_empty()).then(|| format!("'{}' ({})", s.step_id, list_or_none(bought)))
            })
            .collect();
    if purchases.is_empty() {
        return Vec::new();
    }
    let buyers = match purchases.as_slice() {
        [one] => format!("step {one} purchases"),
        many => format!("steps {} purchase", many.join(", ")),
    };
    let owner = ReleaseOwner::new(&w.lw.tenant_id, &w.wo.work_order_id, 1);
    let example = TagTemplate::parse(DEFAULT_RELEASE_TAG)
        .map(|t| {
            format!(
                " (with the default template, {} for run 1)",
                t.render(&owner)
            )
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, step_id) in github {
        out.push(w.finding(
            &format!("{}.module_id", step_field(i)),
            format!(
                "step '{step_id}' runs deliver_github_release and {buyers} deliverables, which `platform publish` uploads; both would write the same GitHub release, the one the runtime profile's github.release_tag names for each run{example}, and each publishes it: published releases are immutable, so whichever comes second would fail on every run. Deliver with deliver_local or deliver_email instead, or remove `deliverables:` and put those outputs in the package that '{step_id}' uploads (bind them in a package_std step's bound_outputs)",
            ),
        ));
    }
    out
}
