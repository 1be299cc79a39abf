//! Platform configuration under config/: the registry of stable IDs, IAM, runtime profiles.
pub mod iam;
pub mod profile;
pub mod registry;
