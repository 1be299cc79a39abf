//! One writer per run's release (SPEC §5): every deliver_github_release step and `platform publish` publish the release the profile's `release_tag` renders for a run, so a work order has one such step and no purchases, or purchases and no such step.
use super::{list_or_none, step_field, Wo};
use crate::contract::Builtin;
use crate::findings::Finding;
use crate::github::settings::DEFAULT_RELEASE_TAG;
use crate::github::tag_template::TagTemplate;
use crate::github::ReleaseOwner;
use crate::publish::select::is_internal;
use crate::repo::Repo;
use crate::workorder::model::Step;

/// Both rules, refused here, before anything is charged.
pub fn check(repo: &Repo, w: &Wo<'_>) -> Vec<Finding> {
    let github = release_deliveries(repo, w);
    let mut out = second_deliveries(w, &github);
    out.extend(with_purchases(w, &github));
    out
}

/// The deliver_github_release steps of a work order (any module whose runner is that
/// built-in), with their indexes.
pub(super) fn release_deliveries<'w>(repo: &Repo, w: &Wo<'w>) -> Vec<(usize, &'w Step)> {
    w.wo.steps
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            repo.module(&s.module_id).and_then(|m| m.runner.builtin())
                == Some(Builtin::DeliverGithubRelease)
        })
        .collect()
}

/// Each deliver_github_release step after the first. A tag is rendered from its owner alone
/// (tenant, work order, run: the template's only placeholders, none names a step), so every
/// such step of a run uploads to one release, whatever the profile, and each publishes it
/// when its upload is verified. GitHub's published releases are immutable: a later step's
/// package (under any file name) could never be added, and that step failed
/// `delivery_failed` on every run and every `--retry-failed`, after the steps before it
/// were charged.
fn second_deliveries(w: &Wo<'_>, github: &[(usize, &Step)]) -> Vec<Finding> {
    let Some(((_, first), later)) = github.split_first() else {
        return Vec::new();
    };
    let example = default_tag(w);
    later
        .iter()
        .map(|(i, step)| {
            w.finding(
                &format!("{}.module_id", step_field(*i)),
                format!(
                    "step '{}' runs deliver_github_release, as step '{}' does: both would upload to the same GitHub release, the one the runtime profile's github.release_tag names for each run, whatever the step{example}, and each publishes it: published releases are immutable, so '{}' would fail on every run after the steps before it were charged, whatever its package's file name. Put every file in one package (bind them in one package_std step's bound_outputs) and deliver it with one deliver_github_release step, or deliver the others with deliver_local or deliver_email",
                    step.step_id, first.step_id, step.step_id
                ),
            )
        })
        .collect()
}

/// Each deliver_github_release step of a work order that also purchases deliverables. Both
/// writers render the tag from the same owner (tenant, work order, run) and each publishes the
/// release when done; GitHub's published releases are immutable, so whichever comes second
/// would fail on every try (publish exits 1 on every run, or every retry of the delivery is
/// charged and fails).
fn with_purchases(w: &Wo<'_>, github: &[(usize, &Step)]) -> Vec<Finding> {
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
    let example = default_tag(w);
    let mut out = Vec::new();
    for (i, step) in github {
        let step_id = &step.step_id;
        out.push(w.finding(
            &format!("{}.module_id", step_field(*i)),
            format!(
                "step '{step_id}' runs deliver_github_release and {buyers} deliverables, which `platform publish` uploads; both would write the same GitHub release, the one the runtime profile's github.release_tag names for each run{example}, and each publishes it: published releases are immutable, so whichever comes second would fail on every run. Deliver with deliver_local or deliver_email instead, or remove `deliverables:` and put those outputs in the package that '{step_id}' uploads (bind them in a package_std step's bound_outputs)",
            ),
        ));
    }
    out
}

/// ` (with the default template, <tag> for run 1)`: the release the messages speak of.
fn default_tag(w: &Wo<'_>) -> String {
    let owner = ReleaseOwner::new(&w.lw.tenant_id, &w.wo.work_order_id, 1);
    TagTemplate::parse(DEFAULT_RELEASE_TAG)
        .map(|t| {
            format!(
                " (with the default template, {} for run 1)",
                t.render(&owner)
            )
        })
        .unwrap_or_default()
}
