//! Activation gating (SPEC §2): requested artifacts need packaging and delivery; a package needs a delivery.
use super::{step_field, Wo};
use crate::contract::Kind;
use crate::findings::Finding;
use crate::repo::Repo;

/// Rules 1 and 2 of activation gating, judged on the steps' declared kinds (a kind that
/// disagrees with its module is reported by the modules check).
pub fn check(_repo: &Repo, w: &Wo<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let first_of = |k: Kind| w.wo.steps.iter().position(|s| s.kind == k);
    let packaging = first_of(Kind::Packaging);
    let delivery = first_of(Kind::Delivery);
    if w.wo.artifacts_requested {
        if packaging.is_none() {
            out.push(w.finding(
                "artifacts_requested",
                "artifacts_requested is true but no step has kind packaging; add a packaging step (e.g. module package_std) or set artifacts_requested: false",
            ));
        }
        if delivery.is_none() {
            out.push(w.finding(
                "artifacts_requested",
                "artifacts_requested is true but no step has kind delivery; add a delivery step (e.g. module deliver_local) or set artifacts_requested: false",
            ));
        }
    }
    if let (Some(p), None) = (packaging, delivery) {
        // Rule 1 already said it when artifacts were requested; one finding per cause.
        if !w.wo.artifacts_requested {
            let id =
                w.wo.steps
                    .get(p)
                    .map(|s| s.step_id.as_str())
                    .unwrap_or_default();
            out.push(w.finding(
                &format!("{}.kind", step_field(p)),
                format!(
                    "step '{id}' builds a package but no step has kind delivery to send it; add a delivery step (e.g. module deliver_local) after '{id}'"
                ),
            ));
        }
    }
    out
}
