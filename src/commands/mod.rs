//! One handler per subcommand: typed args in, a `Report` out; handlers never print.
use crate::cli::{Cli, Command, LedgerCommand, ModuleCommand, StateCommand};
use crate::config::profile::RuntimeProfile;
use crate::error::{Error, Result};
use crate::output::{self, Report};
use std::path::{Path, PathBuf};

pub mod admin_topup;
pub mod balance;
pub mod consistency_validate;
pub mod explain;
pub mod integrity_validate;
pub mod ledger_keygen;
pub mod ledger_merge;
pub mod module_test;
pub mod orchestrator;
pub mod publish;
pub mod runs;
pub mod schema;
pub mod state;
pub mod statement;

/// What every handler may read: where the platform repository is.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub repo: PathBuf,
}

impl Ctx {
    /// A path given on the command line, relative to the current directory as usual.
    pub fn repo_path(&self, rel: &str) -> PathBuf {
        self.repo.join(rel)
    }
    pub fn repo(&self) -> &Path {
        &self.repo
    }
}

/// Run the parsed command line and return the process exit code.
pub fn dispatch(cli: Cli) -> Result<u8> {
    let ctx = Ctx { repo: cli.repo };
    let (report, json): (Report, bool) = match &cli.command {
        Command::ConsistencyValidate(a) => (consistency_validate::run(&ctx, a)?, false),
        Command::IntegrityValidate(a) => (integrity_validate::run(&ctx, a)?, a.json),
        Command::Orchestrator(a) => (orchestrator::run(&ctx, a)?, a.json),
        Command::Ledger(LedgerCommand::Merge(a)) => (ledger_merge::run(&ctx, a)?, a.json),
        Command::Ledger(LedgerCommand::Keygen(a)) => (ledger_keygen::run(&ctx, a)?, a.json),
        Command::AdminTopup(a) => (admin_topup::run(&ctx, a)?, a.json),
        Command::Publish(a) => (publish::run(&ctx, a)?, a.json),
        Command::State(StateCommand::Pull(a)) => (state::pull(&ctx, a)?, a.common.json),
        Command::State(StateCommand::Push(a)) => (state::push(&ctx, a)?, a.common.json),
        Command::Statement(a) => (statement::run(&ctx, a)?, a.json),
        Command::Balance(a) => (balance::run(&ctx, a)?, a.json),
        Command::Runs(a) => (runs::run(&ctx, a)?, a.json),
        Command::Module(ModuleCommand::Test(a)) => (module_test::run(&ctx, a)?, a.json),
        Command::Schema(a) => (schema::run(&ctx, a)?, false),
        Command::Explain(a) => (explain::run(&ctx, a)?, a.json),
    };
    output::print_report(&report, json);
    Ok(report.exit_code)
}

/// The billing-state directory: `--billing-state-dir` (relative to the current directory),
/// else the runtime profile's, else `.billing-state` in the repository.
pub(crate) fn state_dir(ctx: &Ctx, flag: Option<&Path>) -> Result<PathBuf> {
    match flag {
        Some(p) => Ok(p.to_path_buf()),
        None => Ok(RuntimeProfile::load(ctx.repo(), None)?.billing_state_dir(None)),
    }
}

/// As [`state_dir`], for commands that only read: a missing directory is an input error
/// rather than a silent zero.
pub(crate) fn existing_state_dir(ctx: &Ctx, flag: Option<&Path>) -> Result<PathBuf> {
    let dir = state_dir(ctx, flag)?;
    if !dir.is_dir() {
        return Err(Error::input(format!(
            "billing-state directory {} does not exist",
            dir.display()
        ))
        .at(dir.display().to_string())
        .help("pass --billing-state-dir, run `platform state pull`, or record something first (platform admin-topup)"));
    }
    Ok(dir)
}
