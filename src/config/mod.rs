//! Platform configuration under config/: the registry of stable IDs, IAM, runtime profiles, trusted ledger keys.
pub mod iam;
pub mod ledger;
pub mod profile;
pub mod registry;
