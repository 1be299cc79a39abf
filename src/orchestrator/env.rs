//! What executing a plan needs besides the plan: the platform a step runs on, the ledger's
//! writer and where progress lines go.
use super::journal::Journal;
use crate::runner::Platform;

/// What the executor needs besides the plan.
pub struct ExecEnv<'a> {
    pub platform: Platform<'a>,
    pub journal: &'a mut Journal,
    pub progress: &'a mut dyn FnMut(&str),
}
