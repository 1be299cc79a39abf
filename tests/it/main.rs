//! The one integration-test binary: every suite is a module here, so the crate is linked once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod builtin_deliver_email;
mod builtin_deliver_local;
mod builtin_package;
mod explain;
mod fuzz_ledger;
mod fuzz_package;
mod fuzz_parsing;
mod github_publish;
mod github_state;
mod github_trust;
mod hostile_modules;
mod hostile_tenants;
mod ledger_append;
mod ledger_bench;
mod ledger_cli;
mod ledger_concurrency;
mod ledger_docs;
mod ledger_forgery;
mod ledger_integrity;
mod orchestrator_email;
mod orchestrator_runs;
mod orchestrator_superseded;
mod publish_cli;
mod reliability_concurrency;
mod reliability_crash;
mod reliability_hostile;
mod reliability_secrets;
mod shard_merge;
mod state_signed;
mod untrusted_output;
mod validate_consistency;
mod workflows_lint;
mod workflows_sim;
