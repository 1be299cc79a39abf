//! One handler per subcommand: typed args in, a `Report` out; handlers never print.
use crate::cli::{Cli, Command, LedgerCommand, ModuleCommand, StateCommand, StateDirArgs};
use crate::error::Result;
use crate::output;
use crate::repo::root::Root;
use std::path::{Path, PathBuf};

pub mod admin_adjust;
pub mod admin_topup;
pub mod balance;
pub mod completions;
pub mod consistency_validate;
pub mod explain;
pub mod init;
pub mod integrity_validate;
pub mod ledger_keygen;
pub mod ledger_merge;
pub mod man;
pub mod module_test;
pub mod orchestrator;
pub mod publish;
pub mod rerun;
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
    pub fn repo(&self) -> &Path {
        &self.repo
    }
    /// The billing-state directory of a command without `--runtime-profile`
    /// ([`crate::dirs::billing_state`]: flag, else the local profile's, else the default).
    pub fn state_dir(&self, args: &StateDirArgs) -> Result<PathBuf> {
        crate::dirs::billing_state(&self.repo, None, args.billing_state_dir.as_deref())
    }
}

/// Run the parsed command line and return the process exit code.
pub fn dispatch(cli: Cli) -> Result<u8> {
    set_verbosity(&cli);
    // consistency-validate renders each --format into its text, JSON included.
    let json = cli.wants_json() && !matches!(cli.command, Command::ConsistencyValidate(_));
    let root = Root::resolve(cli.repo.as_deref());
    output::debug(|| format!("repository: {root}"));
    if cli.needs_repo() {
        root.require()?;
    }
    let ctx = Ctx { repo: root.path() };
    output::set_views(json, crate::job_summary::wanted());
    let report = run_command(&ctx, &cli.command)?;
    if let Some(markdown) = &report.summary {
        crate::job_summary::append(markdown);
    }
    output::debug(|| format!("exit code {}", report.exit_code));
    output::print_report(&report, json);
    Ok(report.exit_code)
}

/// `-q`/`-v`, else `PLATFORM_LOG`.
fn set_verbosity(cli: &Cli) {
    let env = std::env::var("PLATFORM_LOG").ok();
    let (verbosity, warning) =
        output::Verbosity::from_flags(cli.quiet, cli.verbose, env.as_deref());
    output::set_verbosity(verbosity);
    if let Some(w) = warning {
        output::progress(&w);
    }
}

fn run_command(ctx: &Ctx, command: &Command) -> Result<output::Report> {
    // Commands with subcommands last.
    match command {
        Command::ConsistencyValidate(a) => consistency_validate::run(ctx, a),
        Command::IntegrityValidate(a) => integrity_validate::run(ctx, a),
        Command::Orchestrator(a) => orchestrator::run(ctx, a),
        Command::AdminTopup(a) => admin_topup::run(ctx, a),
        Command::AdminAdjust(a) => admin_adjust::run(ctx, a),
        Command::Rerun(a) => rerun::run(ctx, a),
        Command::Publish(a) => publish::run(ctx, a),
        Command::Statement(a) => statement::run(ctx, a),
        Command::Balance(a) => balance::run(ctx, a),
        Command::Runs(a) => runs::run(ctx, a),
        Command::Schema(a) => schema::run(ctx, a),
        Command::Explain(a) => explain::run(ctx, a),
        Command::Init(a) => init::run(ctx, a),
        Command::Completions(a) => completions::run(ctx, a),
        Command::Man(a) => man::run(ctx, a),
        Command::Ledger(LedgerCommand::Merge(a)) => ledger_merge::run(ctx, a),
        Command::Ledger(LedgerCommand::Keygen(a)) => ledger_keygen::run(ctx, a),
        Command::State(StateCommand::Pull(a)) => state::pull(ctx, a),
        Command::State(StateCommand::Push(a)) => state::push(ctx, a),
        Command::Module(ModuleCommand::Test(a)) => module_test::run(ctx, a),
    }
}
