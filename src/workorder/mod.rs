//! Work orders: types, path rules, binding resolution and the pure planner.
pub mod assets;
pub mod bindings;
pub mod model;
pub mod paths;
