//! `{asset: path}` inputs: relative, no `..`, existing, and inside the tenant's own assets/ after following symlinks.
use super::{input_field, Wo};
use crate::findings::Finding;
use crate::repo::Repo;
use crate::workorder::model::InputValue;
use crate::workorder::paths::{check_relative, resolve_inside};
use std::path::{Path, PathBuf};

pub fn check(repo: &Repo, w: &Wo<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let tenant = &w.lw.tenant_id;
    for (i, step) in w.wo.steps.iter().enumerate() {
        for (name, value) in &step.inputs {
            let InputValue::Asset(rel) = value else {
                continue;
            };
            let field = format!("{}.asset", input_field(i, name));
            match resolve_asset(&repo.root, tenant, rel) {
                Err(why) => out.push(w.finding(
                    &field,
                    format!("step '{}' input '{name}': {why}", step.step_id),
                )),
                Ok(real) => {
                    // The runner hands a module exactly one file per asset.
                    if !real.is_file() {
                        out.push(w.finding(
                            &field,
                            format!(
                                "step '{}' input '{name}': asset '{rel}' is not a file; name a file under tenants/{tenant}/assets/",
                                step.step_id
                            ),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// Where `{asset: rel}` of tenant `tenant_id` points, refusing anything outside
/// `tenants/<tenant_id>/assets/`. Symlinks are followed first, including a symlinked tenant
/// or assets folder: otherwise one tenant could link to another tenant's files. The
/// orchestrator resolves assets with this too, so validation and runs agree.
pub fn resolve_asset(repo_root: &Path, tenant_id: &str, rel: &str) -> Result<PathBuf, String> {
    if let Some(why) = check_relative(rel) {
        return Err(format!(
            "asset {why} (relative to tenants/{tenant_id}/assets/)"
        ));
    }
    let tenants = repo_root.join("tenants");
    let tenant_dir = tenants.join(tenant_id);
    let assets = tenant_dir.join("assets");
    if !assets.is_dir() {
        return Err(format!(
            "asset '{rel}' cannot be found: tenant '{tenant_id}' has no assets/ folder; create tenants/{tenant_id}/assets/ and put the file there"
        ));
    }
    let canon = |p: &Path| {
        p.canonicalize()
            .map_err(|e| format!("{} cannot be opened: {e}", p.display()))
    };
    let tenants_real = canon(&tenants)?;
    let tenant_real = canon(&tenant_dir)?;
    let assets_real = canon(&assets)?;
    if tenant_real != tenants_real.join(tenant_id) || assets_real != tenant_real.join("assets") {
        return Err(format!(
            "tenants/{tenant_id}/assets/ is reached through a symlink that leaves the tenant's folder; refused (assets must be real files under the tenant)"
        ));
    }
    resolve_inside(&assets, rel).map_err(|why| {
        if why.contains("does not exist") {
            format!("asset '{rel}' does not exist under tenants/{tenant_id}/assets/; add the file or fix the path")
        } else if why.contains("outside") {
            format!("asset '{rel}' resolves outside tenants/{tenant_id}/assets/ through a symlink; refused, copy the file into the tenant's assets instead")
        } else {
            format!("asset '{rel}': {why}")
        }
    })
}
