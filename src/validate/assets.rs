//! `{asset: path}` inputs: relative, no `..`, and a regular file with a single link under the
//! tenant's own assets/, reached through no symlink (opened exactly as a run opens it).
use super::{input_field, Wo};
use crate::findings::Finding;
use crate::repo::Repo;
use crate::workorder::assets::open_asset;
use crate::workorder::model::InputValue;

pub fn check(repo: &Repo, w: &Wo<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let tenant = &w.lw.tenant_id;
    for (i, step) in w.wo.steps.iter().enumerate() {
        for (name, value) in &step.inputs {
            let InputValue::Asset(rel) = value else {
                continue;
            };
            if let Err(why) = open_asset(&repo.root, tenant, rel) {
                out.push(w.finding(
                    &format!("{}.asset", input_field(i, name)),
                    format!("step '{}' input '{name}': {why}", step.step_id),
                ));
            }
        }
    }
    out
}
