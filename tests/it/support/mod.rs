//! Shared test harnesses: fixture repositories, the fake GitHub, the real SMTP server, fuzzing.
pub mod fake_github;
pub mod fuzz;
pub mod ledger_fixtures;
pub mod orch;
pub mod reliability;
pub mod smtp;
pub mod state;
pub mod workflows;
