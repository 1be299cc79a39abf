//! `{asset: path}` inputs: the file is opened beneath the repository as
//! `tenants/<id>/assets/<path>` with no link at any component (check and open are one
//! operation), then copied from the open file into the step's own folder, so a module never
//! opens a tenant's file itself. Validation opens assets the same way, so the two agree.
use super::paths::check_relative;
use crate::beneath::{Beneath, Reason};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The asset as a path beneath the repository root: `tenants`, the tenant's folder and its
/// `assets` folder are components too, so a swapped tenant or assets folder is refused.
pub fn asset_beneath(repo_root: &Path, tenant_id: &str, rel: &str) -> Result<Beneath, String> {
    if let Some(why) = check_relative(rel) {
        return Err(format!(
            "asset {why} (relative to tenants/{tenant_id}/assets/)"
        ));
    }
    if !crate::ids::is_valid(tenant_id) {
        return Err(format!("'{tenant_id}' is not a tenant id"));
    }
    let rel_path = Path::new("tenants")
        .join(tenant_id)
        .join("assets")
        .join(rel);
    Ok(Beneath::new(repo_root, rel_path))
}

/// Open the asset: a regular file with a single link, reached through no link.
pub fn open_asset(repo_root: &Path, tenant_id: &str, rel: &str) -> Result<File, String> {
    let b = asset_beneath(repo_root, tenant_id, rel)?;
    b.open_file()
        .map_err(|r| refusal(tenant_id, rel, &r.reason))
}

/// Why an asset cannot be used, in the words of a finding (what is wrong, what to do).
fn refusal(tenant_id: &str, rel: &str, reason: &Reason) -> String {
    let folder = format!("tenants/{tenant_id}/assets/");
    match reason {
        // On Linux '\\' is part of a file name, not a separator: `sub\\in.txt` is one name.
        Reason::Missing if rel.contains('\\') => format!(
            "asset '{rel}' does not exist under {folder}; use '/' between folders ('{}'), not '\\'",
            rel.replace('\\', "/")
        ),
        Reason::Missing => format!(
            "asset '{rel}' does not exist under {folder}; add the file or fix the path"
        ),
        Reason::Symlink => format!(
            "asset '{rel}' is reached through a symbolic link (the file, a folder on its way, or tenants/{tenant_id}/ or its assets/ folder); refused: copy the file into {folder} instead of linking it"
        ),
        Reason::NotAFile(kind) => format!(
            "asset '{rel}' is not a file (it is {}); name a regular file under {folder}",
            kind.describe()
        ),
        Reason::HardLinked(n) => format!(
            "asset '{rel}' has {n} hard links; an asset must be a file with a single link (another link may be another tenant's file): copy it instead of linking it"
        ),
        other => format!("asset '{rel}' under {folder} {other}"),
    }
}

/// Open the asset and copy it to `<inputs_dir>/<input>/<its file name>`; returns the copy's
/// path, which is what the module gets. The name is kept: modules may go by its extension.
pub fn copy_asset(
    repo_root: &Path,
    tenant_id: &str,
    rel: &str,
    inputs_dir: &Path,
    input: &str,
) -> Result<PathBuf, String> {
    let mut src = open_asset(repo_root, tenant_id, rel)?;
    let name = Path::new(rel)
        .file_name()
        .ok_or_else(|| format!("asset '{rel}' does not name a file"))?;
    if !crate::ids::is_valid(input) {
        return Err(format!("input '{input}' cannot name a folder"));
    }
    let dest = inputs_dir.join(input).join(name);
    crate::beneath::copy_opened(&mut src, &dest)
        .map_err(|e| format!("copying asset '{rel}' to {}: {e}", dest.display()))?;
    Ok(dest)
}

/// Empty the step's inputs folder: a resumed or retried step copies its assets afresh.
pub fn clear_inputs(inputs_dir: &Path) -> Result<(), String> {
    // The module may have left a tree in it, however deep: removed with a few descriptors.
    crate::beneath::remove_tree(inputs_dir).map_err(|e| {
        format!(
            "cannot clear {}: {e}; remove that folder by hand, then retry the step",
            inputs_dir.display()
        )
    })
}
