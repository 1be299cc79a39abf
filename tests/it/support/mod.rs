//! Shared test support: the one fixture/command harness (`fx`) and its extensions per area
//! (orchestrator summaries, reliability, release-backed state, ledger records, fuzzing,
//! workflow files and a stand-in Actions runner), the fake GitHub, a server answering without
//! end, and the real SMTP server.
pub mod check;
pub mod fake_github;
pub mod fuzz;
pub mod fx;
pub mod ledger_fixtures;
pub mod long_answers;
pub mod orch;
pub mod pause;
pub mod reliability;
pub mod smtp;
pub mod state;
pub mod workflow_expr;
pub mod workflow_runner;
pub mod workflows;

pub use fx::{Fx, Transcript};
