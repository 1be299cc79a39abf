//! The `platform` library: every command's logic; `main.rs` only parses argv and exits.
pub mod cli;
pub mod commands;
pub mod digest;
pub mod error;
pub mod ids;
pub mod output;

pub use error::{Error, Result};

/// Run a parsed command line; returns the exit code (errors carry their own).
pub fn run(cli: cli::Cli) -> Result<u8> {
    commands::dispatch(cli)
}
