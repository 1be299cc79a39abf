//! Platform configuration under config/: the registry of stable IDs, IAM, runtime profiles, trusted ledger keys, the catalog of plans.
pub mod catalog;
pub mod iam;
pub mod ledger;
pub mod profile;
pub mod registry;
