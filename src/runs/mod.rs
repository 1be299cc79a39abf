//! Runs as the platform keeps them: histories rebuilt from the ledger alone, and where a run's files live in the runtime directory. Shared by the orchestrator, `platform runs` and the publisher; runs nothing itself.
pub mod history;
pub mod last;
pub mod load;
pub mod paths;
mod slots;

pub use history::History;
pub use load::{add_to_run, load, load_only, Balances, RunTotals};
pub use paths::step_beneath;
pub use slots::RunMap;
