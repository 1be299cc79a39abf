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

/// Read `rel` under `root` and check it against `kind`'s schema: None when the file does not
/// exist (or is an empty document, when `empty_is_absent`: a file kept as a placeholder); Err
/// holds the findings of a file that does not parse or fails its schema.
pub(crate) fn load_checked(
    root: &Path,
    rel: &str,
    kind: SchemaKind,
    empty_is_absent: bool,
) -> Result<Option<Doc>, Vec<Finding>> {
    let path = root.join(rel);
    if !path.exists() {
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
