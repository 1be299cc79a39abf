//! The command line, as clap types only: no I/O, no domain logic (handlers convert at the edge).
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "platform",
    version,
    about = "Turns a Git repository into a multi-tenant work-order platform with an append-only ledger",
    propagate_version = true
)]
pub struct Cli {
    /// The platform repository (modules/, tenants/, config/)
    #[arg(long, global = true, default_value = ".", value_name = "DIR")]
    pub repo: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every module contract, tenant and work order; exit 1 on any error
    ConsistencyValidate(ConsistencyValidateArgs),
    /// Verify the ledger's hash chains, keys, balances and refunds; exit 1 on any problem
    IntegrityValidate(IntegrityValidateArgs),
    /// Run enabled work orders: charge, run steps, package, deliver, refund
    Orchestrator(OrchestratorArgs),
    /// Ledger maintenance (merge shard billing-state directories, make a signing key)
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Post a TOPUP for a tenant (scope billing.topup)
    AdminTopup(AdminTopupArgs),
    /// Post an ADJUST (a credit or a debit, with a reason) for a tenant (scope billing.adjust)
    AdminAdjust(AdminAdjustArgs),
    /// Ask the next orchestrator pass for a new run of a work order (scope orders.rerun)
    Rerun(RerunArgs),
    /// Package purchased deliverables and publish them as GitHub Release assets (scope artifacts.publish)
    Publish(PublishArgs),
    /// Pull or push the billing-state files kept on a GitHub release
    #[command(subcommand)]
    State(StateCommand),
    /// Every billing record of a tenant with the running balance
    Statement(StatementArgs),
    /// A tenant's balance in credits
    Balance(BalanceArgs),
    /// Runs recorded in the ledger, oldest first
    Runs(RunsArgs),
    /// Module tools
    #[command(subcommand)]
    Module(ModuleCommand),
    /// Print a built-in JSON Schema, or write them all as files for editors
    #[command(
        after_help = "Examples:\n  platform schema module            print the schema of module.yml\n  platform schema --write schemas   write every schema into schemas/ (what the\n                                    example files' yaml-language-server lines name)"
    )]
    Schema(SchemaArgs),
    /// What a reason slug, exit code, record type or command means, and what to do
    #[command(
        after_help = "Examples:\n  platform explain                 list every topic\n  platform explain timeout         a bare name, when only one kind has it\n  platform explain slug:not_enough_credits --json\n  platform explain exit:3"
    )]
    Explain(ExplainArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Github,
}

#[derive(Debug, Args)]
pub struct ConsistencyValidateArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print one JSON document
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ActorArg {
    /// Acting identity (default: $GITHUB_ACTOR)
    #[arg(long, value_name = "A")]
    pub actor: Option<String>,
}

#[derive(Debug, Args)]
pub struct StateDirArgs {
    /// Billing-state directory (default: the runtime profile's, else .billing-state)
    #[arg(long, value_name = "D")]
    pub billing_state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct IntegrityValidateArgs {
    #[command(flatten)]
    pub state: StateDirArgs,
    /// Runtime directory whose records are checked too (default: runtime)
    #[arg(long, value_name = "R")]
    pub runtime_dir: Option<PathBuf>,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Args)]
pub struct OrchestratorArgs {
    /// Runtime profile (default: config/runtime_profile.local.yml when it exists)
    #[arg(long, value_name = "F")]
    pub runtime_profile: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateDirArgs,
    /// Runtime directory (scratch space for outputs, logs, deliveries)
    #[arg(long, value_name = "R")]
    pub runtime_dir: Option<PathBuf>,
    /// Only this tenant
    #[arg(long, value_name = "T")]
    pub tenant_id: Option<String>,
    /// Only this work order
    #[arg(long, value_name = "W")]
    pub work_order_id: Option<String>,
    /// Run the failed and skipped steps of ended runs again, as the next attempt
    #[arg(long)]
    pub retry_failed: bool,
    /// Run only the tenants of shard K of N (1 <= K <= N)
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Seconds to wait for another orchestrator on the same billing-state directory
    #[arg(long, value_name = "S", default_value_t = 600)]
    pub lock_timeout: u64,
    /// Print the priced plan and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The pass's clock for scheduled work orders' periods (default: $PLATFORM_NOW, else now)
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Merge shard billing-state directories into one
    Merge(LedgerMergeArgs),
    /// Make an Ed25519 key pair for signing the state's heads (config/ledger.yml + secret)
    Keygen(LedgerKeygenArgs),
}

#[derive(Debug, Args)]
pub struct LedgerKeygenArgs {
    /// Print one JSON document: {"key_id", "public_key", "private_key"}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LedgerMergeArgs {
    /// Target billing-state directory
    #[arg(long, value_name = "D")]
    pub into: PathBuf,
    /// Shard billing-state directories
    #[arg(required = true, value_name = "SEGMENT_DIR")]
    pub segments: Vec<PathBuf>,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Args)]
pub struct AdminTopupArgs {
    #[arg(long, value_name = "T")]
    pub tenant_id: String,
    /// Credits to add (a positive integer)
    #[arg(long, value_name = "N")]
    pub amount_credits: i64,
    /// bank, bank-wire, card, manual, promo, or one from config/registry.yml
    #[arg(long, value_name = "M")]
    pub topup_method_id: String,
    /// External reference (invoice, wire id): the same reference twice is one top-up
    #[arg(long, value_name = "R")]
    pub reference: String,
    #[arg(long, value_name = "S")]
    pub note: Option<String>,
    #[command(flatten)]
    pub state: StateDirArgs,
    #[command(flatten)]
    pub acting: ActorArg,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Args)]
pub struct AdminAdjustArgs {
    #[arg(long, value_name = "T")]
    pub tenant_id: String,
    /// Credits to add (positive) or take away (negative, e.g. -5); never below a zero balance
    #[arg(long, value_name = "±N", allow_negative_numbers = true)]
    pub amount_credits: i64,
    /// goodwill, correction, chargeback, or one from config/registry.yml's adjust_reasons
    #[arg(long, value_name = "R")]
    pub reason_slug: String,
    /// The case's reference (ticket, credit note, dispute): the same reference twice is one adjustment
    #[arg(long, value_name = "REF")]
    pub reference: String,
    #[arg(long, value_name = "S")]
    pub note: Option<String>,
    #[command(flatten)]
    pub state: StateDirArgs,
    #[command(flatten)]
    pub acting: ActorArg,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    #[arg(long, value_name = "T")]
    pub tenant_id: String,
    #[arg(long, value_name = "W")]
    pub work_order_id: String,
    /// Why (recorded with the request; one line, at most 1,000 characters)
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    #[command(flatten)]
    pub state: StateDirArgs,
    #[command(flatten)]
    pub acting: ActorArg,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub state: StateDirArgs,
    #[arg(long, value_name = "R")]
    pub runtime_dir: Option<PathBuf>,
    #[arg(long, value_name = "F")]
    pub runtime_profile: Option<PathBuf>,
    /// Only purchases recorded at or after this RFC 3339 time
    #[arg(long, value_name = "RFC3339")]
    pub since: Option<String>,
    /// Where packages and SHA256SUMS are written (default: dist)
    #[arg(long, value_name = "DIR")]
    pub dist_dir: Option<PathBuf>,
    /// Stage packages and evidence without uploading
    #[arg(long)]
    pub no_publish: bool,
    #[command(flatten)]
    pub acting: ActorArg,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Download and verify the billing-state files and signed heads from the state release
    Pull(StatePullArgs),
    /// Verify, upload the billing-state files, then signed heads; refused when the remote moved since the pull
    Push(StatePushArgs),
}

#[derive(Debug, Args)]
pub struct StatePullArgs {
    #[command(flatten)]
    pub common: StateArgs,
    /// Accept a state release without signed heads (or with records past them), audited:
    /// the upgrade path from unsigned state
    #[arg(long)]
    pub adopt_unsigned: bool,
}

#[derive(Debug, Args)]
pub struct StatePushArgs {
    #[command(flatten)]
    pub common: StateArgs,
    /// Replace a state release that fails verification with the local state (needs the
    /// signing key; audited)
    #[arg(long)]
    pub restore: bool,
}

#[derive(Debug, Args)]
pub struct StateArgs {
    #[arg(long, value_name = "F")]
    pub runtime_profile: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateDirArgs,
    /// Acting identity for the audit record of --adopt-unsigned or --restore (default: $GITHUB_ACTOR)
    #[arg(long, value_name = "A")]
    pub actor: Option<String>,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Args)]
pub struct StatementArgs {
    #[arg(long, value_name = "T")]
    pub tenant_id: String,
    #[command(flatten)]
    pub state: StateDirArgs,
    /// Only records at or after this RFC 3339 time (the running balance still counts earlier ones)
    #[arg(long, value_name = "RFC3339")]
    pub since: Option<String>,
    /// Print one JSON document
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct BalanceArgs {
    #[arg(long, value_name = "T")]
    pub tenant_id: String,
    #[command(flatten)]
    pub state: StateDirArgs,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(flatten)]
    pub state: StateDirArgs,
    #[arg(long, value_name = "T")]
    pub tenant_id: Option<String>,
    #[arg(long, value_name = "W")]
    pub work_order_id: Option<String>,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// Run a module's self_test
    Test(ModuleTestArgs),
}

#[derive(Debug, Args)]
pub struct ModuleTestArgs {
    pub module_id: String,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaName {
    Module,
    Workorder,
    Tenant,
    Registry,
    Iam,
    RuntimeProfile,
    Ledger,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The schema to print
    #[arg(value_enum, value_name = "NAME", required_unless_present = "write")]
    pub name: Option<SchemaName>,
    /// Write every schema into DIR as <name>.schema.json (created if missing; files replaced)
    #[arg(long, value_name = "DIR", conflicts_with = "name")]
    pub write: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A topic `kind:name` (kinds: slug, exit, record, command, error), or a bare name; none
    /// lists every topic
    #[arg(value_name = "TOPIC")]
    pub topic: Option<String>,
    #[command(flatten)]
    pub output: JsonArg,
}

impl Cli {
    /// Whether the user asked for one JSON document on stdout (errors then come as JSON too).
    pub fn wants_json(&self) -> bool {
        match &self.command {
            Command::ConsistencyValidate(a) => a.format == Format::Json,
            Command::IntegrityValidate(a) => a.output.json,
            Command::Orchestrator(a) => a.output.json,
            Command::Ledger(LedgerCommand::Merge(a)) => a.output.json,
            Command::Ledger(LedgerCommand::Keygen(a)) => a.json,
            Command::AdminTopup(a) => a.output.json,
            Command::AdminAdjust(a) => a.output.json,
            Command::Rerun(a) => a.output.json,
            Command::Publish(a) => a.output.json,
            Command::State(StateCommand::Pull(a)) => a.common.output.json,
            Command::State(StateCommand::Push(a)) => a.common.output.json,
            Command::Statement(a) => a.json,
            Command::Balance(a) => a.output.json,
            Command::Runs(a) => a.output.json,
            Command::Module(ModuleCommand::Test(a)) => a.output.json,
            Command::Schema(_) => false,
            Command::Explain(a) => a.output.json,
        }
    }
}
