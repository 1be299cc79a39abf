//! The `platform` library: every command's logic; `main.rs` only parses argv and exits.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
pub mod account;
pub mod atomic;
pub mod audit;
pub mod beneath;
pub mod build;
pub mod builtin;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod config;
pub mod contract;
pub mod csv_cell;
pub mod digest;
pub mod dirs;
pub mod env_text;
pub mod error;
pub mod explain;
pub mod failpoint;
pub mod findings;
pub mod folder;
pub mod github;
pub mod heads;
pub mod ids;
pub mod init;
pub mod integrity;
pub mod job_summary;
pub mod known_ids;
pub mod ledger;
pub mod leftovers;
pub mod orchestrator;
pub mod output;
pub mod output_digest;
pub mod privileged;
pub mod publish;
pub mod records;
pub mod redact;
pub mod repo;
pub mod rerun;
pub mod run_list;
pub mod runner;
pub mod runs;
pub mod schema;
pub mod secrets;
pub(crate) mod serde_shapes;
pub mod state_sync;
pub mod suggest;
#[cfg(test)]
mod testing;
pub mod validate;
pub mod workorder;
pub mod yaml;

pub use error::{Error, Result};

/// Run a parsed command line; returns the exit code (errors carry their own).
pub fn run(cli: cli::Cli) -> Result<u8> {
    commands::dispatch(cli)
}
