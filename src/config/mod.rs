//! Platform configuration under config/: the registry of stable IDs, IAM, runtime profiles, trusted ledger keys, the catalog of plans.
pub mod catalog;
pub mod iam;
pub mod ledger;
pub mod profile;
pub mod registry;

use crate::findings::Finding;
use crate::schema::SchemaKind;
use crate::yaml::{self, Doc};
use std::path::Path;

/// Read `rel` under `root` and check it against `kind`'s schema: None when no such entry
/// exists (a link that leads to no file is an error, as is a `.yaml` twin; or is an empty document, when `empty_is_absent`: a file kept as a placeholder); Err
/// holds the findings of a file that does not parse or fails its schema.
pub(crate) fn load_checked(
    root: &Path,
    rel: &str,
    kind: SchemaKind,
    empty_is_absent: bool,
) -> Result<Option<Doc>, Vec<Finding>> {
    let path = root.join(rel);
    let exists = yaml::entry_exists(&path).map_err(|e| vec![unreadable(rel, &e)])?;
    if let Some(twin) = yaml_twin(root, rel) {
        return Err(vec![twin]);
    }
    if !exists {
        return Ok(None);
    }
    let doc = yaml::load(root, &path).map_err(|f| vec![f])?;
    if empty_is_absent && doc.value.is_null() {
        return Ok(None);
    }
    let findings = doc.schema_findings(kind);
    if !findings.is_empty() {
        return Err(findings);
    }
    Ok(Some(doc))
}

/// Why `rel` could not even be looked at: most often `config` itself is a file, which is
/// then named, not the file the platform looked for in it.
fn unreadable(rel: &str, e: &std::io::Error) -> Finding {
    let folder = rel.rsplit_once('/').map_or(".", |(dir, _)| dir);
    let message = if e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) {
        format!("cannot be read: {folder} is not a folder; make {folder}/ the folder holding the platform's configuration")
    } else {
        format!("cannot be read: {e}")
    };
    Finding::error(rel, "", message)
}

/// An error on `config/<name>.yaml` when it exists next to (or instead of) `rel`, which ends in
/// `.yml`: the platform reads `.yml` only, so a catalog saved as `.yaml` would be no catalog
/// at all (every module open to every tenant), and a ledger.yml saved so, unsigned state.
pub(crate) fn yaml_twin(root: &Path, rel: &str) -> Option<Finding> {
    let twin = format!("{}.yaml", rel.strip_suffix(".yml")?);
    if !matches!(yaml::entry_exists(&root.join(&twin)), Ok(true)) {
        return None;
    }
    let message = format!(
        "the platform reads {rel}, never {twin}; rename it to {rel} (merging the two if both exist)"
    );
    Some(Finding::error(twin, "", message))
}

/// What a check that reads config file `file` says while the file has `errors`: that it is
/// invalid and where its first error is, so no finding blames an entry it could not read (an
/// invalid file is read as empty, or as built-ins only). None when it has none.
pub fn invalid_note(file: &str, errors: &[Finding]) -> Option<String> {
    let first = errors.first()?;
    let more = match errors.len() {
        1 => String::new(),
        n => format!(" and {} more", n - 1),
    };
    Some(format!(
        "{file} is invalid (its error at {}{more}); fix it first (`platform consistency-validate` lists them)",
        first.location()
    ))
}
