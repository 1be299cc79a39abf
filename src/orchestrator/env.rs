//! What executing a plan needs besides the plan, shared by every worker: the platform a step runs on, the ledger's writer, the credits held for runs in flight, the turn of module processes and where progress goes.
use super::credits::Holds;
use super::journal::Journal;
use super::plan::{Refusal, WorkOrderPlan};
use super::progress::Board;
use super::report::{self, RunReport};
use crate::contract::ModuleContract;
use crate::runner::Platform;
use crate::runs::history::RunHistory;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// What the executor needs besides the plan.
pub struct ExecEnv<'a> {
    pub platform: Platform<'a>,
    pub journal: Journal,
    pub holds: Holds,
    /// Module processes run holding it shared; a step whose module declares secrets holds
    /// it alone (SPEC §6), so no other module process runs beside it.
    pub modules: RwLock<()>,
    pub progress: &'a Board<'a>,
}

/// A step's turn to run its module: shared, or alone for a module with secrets.
pub enum Turn<'a> {
    Shared(#[allow(dead_code)] RwLockReadGuard<'a, ()>),
    Alone(#[allow(dead_code)] RwLockWriteGuard<'a, ()>),
}

impl ExecEnv<'_> {
    /// A run refused before anything new was charged (`hist`: its history, when it resumes),
    /// said on the progress.
    pub fn refused(
        &self,
        wp: &WorkOrderPlan,
        refusal: &Refusal,
        hist: Option<&RunHistory>,
    ) -> RunReport {
        let r = report::refused_report(wp, refusal, hist);
        self.progress.line(&format!(
            "[{}/{}] refused: {}",
            wp.tenant_id,
            wp.work_order_id,
            r.refused.clone().unwrap_or_default()
        ));
        r
    }

    /// Wait for the turn of a step of `contract`; held until the module has ended.
    pub fn turn(&self, contract: &ModuleContract) -> Turn<'_> {
        if contract.secrets.is_empty() {
            Turn::Shared(self.modules.read().unwrap_or_else(PoisonError::into_inner))
        } else {
            Turn::Alone(self.modules.write().unwrap_or_else(PoisonError::into_inner))
        }
    }
}
