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

/// How a config file stands: absent, or parsed and valid against its schema. Err holds the
/// findings of a file that does not parse or fails its schema.
pub(crate) enum Loaded {
    Absent,
    Valid(Doc),
}

/// Read `rel` under `root` and check it against `kind`'s schema. An empty document counts as
/// absent when `empty_is_absent` (a file kept as a placeholder).
pub(crate) fn load_checked(
    root: &Path,
    rel: &str,
    kind: SchemaKind,
    empty_is_absent: bool,
) -> Result<Loaded, Vec<Finding>> {
    let path = root.join(rel);
    if !path.exists() {
        return Ok(Loaded::Absent);
    }
    let doc = yaml::load(root, &path).map_err(|f| vec![f])?;
    if empty_is_absent && doc.value.is_null() {
        return Ok(Loaded::Absent);
    }
    let findings = doc.schema_findings(kind);
    if !findings.is_empty() {
        return Err(findings);
    }
    Ok(Loaded::Valid(doc))
}
