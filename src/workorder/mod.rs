//! Work orders: the typed model, schedules, path rules, `json_path`, tenant assets and binding resolution at run time (the planner is `crate::orchestrator::plan`).
pub mod assets;
pub mod bindings;
pub mod json_path;
pub mod model;
pub mod paths;
pub mod schedule;
pub mod selected;
