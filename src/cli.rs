//! The command line, as clap types only: no I/O, no domain logic (handlers convert at the edge).
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

mod examples;
pub mod flag_as_value;

#[derive(Debug, Parser)]
#[command(
    name = "platform",
    version = env!("PLATFORM_VERSION_LINE"),
    about = "Turns a Git repository into a multi-tenant work-order platform with an append-only ledger",
    propagate_version = true,
    after_help = examples::of("platform")
)]
pub struct Cli {
    /// The platform repository (default: the nearest folder upwards, from the current one,
    /// with modules/ or tenants/)
    // Global flags are listed after each command's own (display_order), in every --help.
    #[arg(long, global = true, value_name = "DIR", display_order = 900)]
    pub repo: Option<PathBuf>,
    /// Print only the result and errors: no progress lines or notes on stderr
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        display_order = 901
    )]
    pub quiet: bool,
    /// Also print debug lines on stderr (as PLATFORM_LOG=debug does)
    #[arg(short, long, global = true, display_order = 902)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every module contract, tenant and work order; exit 1 on any error
    #[command(after_help = examples::of("consistency-validate"))]
    ConsistencyValidate(ConsistencyValidateArgs),
    /// Verify the ledger's hash chains, keys, balances and refunds; exit 1 on any problem
    #[command(after_help = examples::of("integrity-validate"))]
    IntegrityValidate(IntegrityValidateArgs),
    /// Run enabled work orders: charge, run steps, package, deliver, refund
    #[command(after_help = examples::of("orchestrator"))]
    Orchestrator(OrchestratorArgs),
    /// Ledger maintenance (merge shard billing-state directories, make a signing key)
    #[command(subcommand, after_help = examples::of("ledger"))]
    Ledger(LedgerCommand),
    /// Post a TOPUP for a tenant (scope billing.topup)
    #[command(after_help = examples::of("admin-topup"))]
    AdminTopup(AdminTopupArgs),
    /// Post an ADJUST (a credit or a debit, with a reason) for a tenant (scope billing.adjust)
    #[command(after_help = examples::of("admin-adjust"))]
    AdminAdjust(AdminAdjustArgs),
    /// Ask the next orchestrator pass for a new run of a work order (scope orders.rerun)
    #[command(after_help = examples::of("rerun"))]
    Rerun(RerunArgs),
    /// Package purchased deliverables and publish them as GitHub Release assets (scope artifacts.publish)
    #[command(after_help = examples::of("publish"))]
    Publish(PublishArgs),
    /// Pull or push the billing-state files kept on a GitHub release
    #[command(subcommand, after_help = examples::of("state"))]
    State(StateCommand),
    /// Every billing record of a tenant with the running balance
    #[command(after_help = examples::of("statement"))]
    Statement(StatementArgs),
    /// A tenant's balance in credits
    #[command(after_help = examples::of("balance"))]
    Balance(BalanceArgs),
    /// Runs recorded in the ledger, oldest first
    #[command(after_help = examples::of("runs"))]
    Runs(RunsArgs),
    /// Module tools
    #[command(subcommand, after_help = examples::of("module"))]
    Module(ModuleCommand),
    /// Print a built-in JSON Schema, or write them all as files for editors
    #[command(after_help = examples::of("schema"))]
    Schema(SchemaArgs),
    /// What a reason slug, exit code, record type or command means, and what to do
    #[command(after_help = examples::of("explain"))]
    Explain(ExplainArgs),
    /// A new platform repository in DIR: config, an example module, a draft tenant, workflows
    #[command(after_help = examples::of("init"))]
    Init(InitArgs),
    /// Print a shell completion script
    #[command(after_help = examples::of("completions"))]
    Completions(CompletionsArgs),
    /// Print the man page, or write one page per command into a folder
    #[command(after_help = examples::of("man"))]
    Man(ManArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Findings for people
    Text,
    /// One JSON document (as --json)
    Json,
    /// GitHub workflow annotations (::error file=...)
    Github,
}

#[derive(Debug, Args)]
pub struct ConsistencyValidateArgs {
    /// Output format
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
    pub format: Format,
    /// Print one JSON document (the same as --format json)
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

impl ConsistencyValidateArgs {
    /// The format asked for, `--json` included.
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            self.format
        }
    }
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print one JSON document on stdout (errors too)
    #[arg(long)]
    pub json: bool,
}

// Every flag whose value is an ID or free text takes a value starting with `-`: IDs may
// (SPEC §2, `-g` is a tenant), and so may notes and reasons (`--note "-5 credits"`).
#[derive(Debug, Args)]
pub struct ActorArg {
    /// Acting identity, checked against config/iam.yml (default: $GITHUB_ACTOR)
    #[arg(long, value_name = "ACTOR", allow_hyphen_values = true)]
    pub actor: Option<String>,
}

#[derive(Debug, Args)]
pub struct StateDirArgs {
    /// Billing-state directory (default: the runtime profile's, else .billing-state)
    #[arg(long, value_name = "DIR")]
    pub billing_state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct IntegrityValidateArgs {
    #[command(flatten)]
    pub state: StateDirArgs,
    /// Runtime directory whose records are checked too (default: the profile's, else runtime)
    #[arg(long, value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Args)]
pub struct OrchestratorArgs {
    /// Runtime profile (default: config/runtime_profile.local.yml when it exists)
    #[arg(long, value_name = "FILE")]
    pub runtime_profile: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateDirArgs,
    /// Runtime directory (scratch space for outputs, logs, deliveries)
    #[arg(long, value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
    /// Only this tenant
    #[arg(long, value_name = "TENANT", allow_hyphen_values = true)]
    pub tenant_id: Option<String>,
    /// Only this work order
    #[arg(long, value_name = "WORK_ORDER", allow_hyphen_values = true)]
    pub work_order_id: Option<String>,
    /// Run the failed and skipped steps of ended runs again, as the next attempt
    #[arg(long)]
    pub retry_failed: bool,
    /// Run only the tenants of shard K of N (1 <= K <= N)
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Seconds to wait for another orchestrator on the same billing-state directory
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub lock_timeout: u64,
    /// Print the priced plan and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Work orders to run at once, 1 or more (default: the number of CPUs)
    #[arg(long, value_name = "COUNT", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// The pass's clock for scheduled work orders' periods (default: $PLATFORM_NOW, else now)
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Merge shard billing-state directories into one
    #[command(after_help = examples::of("ledger merge"))]
    Merge(LedgerMergeArgs),
    /// Make an Ed25519 key pair for signing the state's heads (config/ledger.yml + secret)
    #[command(after_help = examples::of("ledger keygen"))]
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
    #[arg(long, value_name = "DIR")]
    pub into: PathBuf,
    /// Shard billing-state directories
    #[arg(required = true, value_name = "SEGMENT_DIR")]
    pub segments: Vec<PathBuf>,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Args)]
pub struct AdminTopupArgs {
    /// The tenant credited (a folder of tenants/)
    #[arg(long, value_name = "TENANT", allow_hyphen_values = true)]
    pub tenant_id: String,
    /// Credits to add (a positive integer, at most 10^12)
    // Negative numbers parse, so `-5` gets the error below instead of "unexpected argument".
    #[arg(long, value_name = "CREDITS", allow_negative_numbers = true, value_parser = positive_credits)]
    pub amount_credits: i64,
    /// bank, bank-wire, card, manual, promo, or one from config/registry.yml
    #[arg(long, value_name = "METHOD", allow_hyphen_values = true)]
    pub topup_method_id: String,
    /// External reference (invoice, wire id): the same reference twice is one top-up
    #[arg(long, value_name = "REFERENCE", allow_hyphen_values = true)]
    pub reference: String,
    /// A note kept on the record (at most 1,000 characters)
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub note: Option<String>,
    #[command(flatten)]
    pub state: StateDirArgs,
    #[command(flatten)]
    pub acting: ActorArg,
    #[command(flatten)]
    pub output: JsonArg,
}

/// `--amount-credits` of a top-up: an integer above zero (the ledger checks the upper bound).
fn positive_credits(s: &str) -> Result<i64, String> {
    let n = whole_credits(s, "a top-up adds 1 to 10^12 credits")?;
    if n <= 0 {
        return Err(format!(
            "a top-up adds credits: give a positive number (1 to 10^12), not {n}"
        ));
    }
    Ok(n)
}

/// `--amount-credits` of an adjustment: any integer (the ledger checks zero and the bound).
fn adjust_credits(s: &str) -> Result<i64, String> {
    whole_credits(s, "an adjustment is -10^12 to 10^12 credits, not 0")
}

/// A whole number of credits; one too long for any amount (beyond i64) is named out of
/// `range`, not "not a whole number".
fn whole_credits(s: &str, range: &str) -> Result<i64, String> {
    use std::num::IntErrorKind;
    s.trim()
        .parse()
        .map_err(|e: std::num::ParseIntError| match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
                format!("'{s}' is out of range: {range}")
            }
            _ => format!("'{s}' is not a whole number of credits"),
        })
}

#[derive(Debug, Args)]
pub struct AdminAdjustArgs {
    /// The tenant whose balance is corrected (a folder of tenants/)
    #[arg(long, value_name = "TENANT", allow_hyphen_values = true)]
    pub tenant_id: String,
    /// Credits to add (positive) or take away (negative, e.g. -5), at most 10^12 either way;
    /// never below a zero balance
    #[arg(long, value_name = "CREDITS", allow_negative_numbers = true, value_parser = adjust_credits)]
    pub amount_credits: i64,
    /// goodwill, correction, chargeback, or one from config/registry.yml's adjust_reasons
    #[arg(long, value_name = "REASON", allow_hyphen_values = true)]
    pub reason_slug: String,
    /// The case's reference (ticket, credit note, dispute): the same reference twice is one adjustment
    #[arg(long, value_name = "REFERENCE", allow_hyphen_values = true)]
    pub reference: String,
    /// A note kept on the record (at most 1,000 characters)
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
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
    /// The tenant of the work order (a folder of tenants/)
    #[arg(long, value_name = "TENANT", allow_hyphen_values = true)]
    pub tenant_id: String,
    /// The work order to run again (tenants/<TENANT>/workorders/<WORK_ORDER>.yml)
    #[arg(long, value_name = "WORK_ORDER", allow_hyphen_values = true)]
    pub work_order_id: String,
    /// Why (recorded with the request; one line, at most 1,000 characters)
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
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
    /// Runtime directory holding the runs' outputs (default: the profile's, else runtime)
    #[arg(long, value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
    /// Runtime profile with the github: block (default: config/runtime_profile.local.yml)
    #[arg(long, value_name = "FILE")]
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
    #[command(after_help = examples::of("state pull"))]
    Pull(StatePullArgs),
    /// Verify, upload the billing-state files, then signed heads; refused when the remote moved since the pull
    #[command(after_help = examples::of("state push"))]
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
    /// With --restore: also drop the release's records that no listed key signed and the
    /// local state lacks (named in the audit record); signed records are never dropped
    #[arg(long, requires = "restore")]
    pub discard_unverified: bool,
}

#[derive(Debug, Args)]
pub struct StateArgs {
    /// Runtime profile with the github: block (default: config/runtime_profile.local.yml)
    #[arg(long, value_name = "FILE")]
    pub runtime_profile: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateDirArgs,
    /// Acting identity for the audit record of --adopt-unsigned or --restore (default: $GITHUB_ACTOR)
    #[arg(long, value_name = "ACTOR", allow_hyphen_values = true)]
    pub actor: Option<String>,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Args)]
pub struct StatementArgs {
    /// The tenant whose records are listed
    #[arg(long, value_name = "TENANT", allow_hyphen_values = true)]
    pub tenant_id: String,
    #[command(flatten)]
    pub state: StateDirArgs,
    /// Only records at or after this RFC 3339 time (the running balance still counts earlier ones)
    #[arg(long, value_name = "RFC3339")]
    pub since: Option<String>,
    /// Print one JSON document on stdout (errors too)
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct BalanceArgs {
    /// The tenant whose balance is shown
    #[arg(long, value_name = "TENANT", allow_hyphen_values = true)]
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
    /// Only this tenant's runs
    #[arg(long, value_name = "TENANT", allow_hyphen_values = true)]
    pub tenant_id: Option<String>,
    /// Only this work order's runs
    #[arg(long, value_name = "WORK_ORDER", allow_hyphen_values = true)]
    pub work_order_id: Option<String>,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// Run a module's self_test
    #[command(after_help = examples::of("module test"))]
    Test(ModuleTestArgs),
}

#[derive(Debug, Args)]
pub struct ModuleTestArgs {
    /// The module (a folder of modules/)
    #[arg(value_name = "MODULE")]
    pub module_id: String,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The schema to print
    #[arg(value_enum, value_name = "NAME", required_unless_present = "write")]
    pub name: Option<crate::schema::SchemaKind>,
    /// Write every schema into DIR as <name>.schema.json (created if missing; files replaced)
    #[arg(long, value_name = "DIR", conflicts_with = "name")]
    pub write: Option<PathBuf>,
    /// Print one JSON document (a schema is one already; with --write, the files written)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A topic `kind:name` (kinds: slug, adjust, exit, record, command, error), or a bare name; none
    /// lists every topic
    #[arg(value_name = "TOPIC")]
    pub topic: Option<String>,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to create (it may exist if it is empty)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The repository whose releases the workflows install platform from
    #[arg(long, value_name = "OWNER/NAME")]
    pub release_repo: Option<String>,
    /// SHA-256 of this version's x86_64-unknown-linux-musl archive (the hash on its line of SHA256SUMS, or the line)
    #[arg(long, value_name = "HEX")]
    pub release_sha256: Option<String>,
    #[command(flatten)]
    pub output: JsonArg,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write platform.1 and a page per command (platform-<command>.1) into DIR instead
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl Cli {
    /// Whether the user asked for one JSON document on stdout (errors then come as JSON too).
    pub fn wants_json(&self) -> bool {
        match &self.command {
            Command::ConsistencyValidate(a) => a.format() == Format::Json,
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
            Command::Schema(a) => a.json,
            Command::Explain(a) => a.output.json,
            Command::Init(a) => a.output.json,
            Command::Completions(_) | Command::Man(_) => false,
        }
    }

    /// Whether the command works on a platform repository, so that not finding one is an
    /// error; the others run anywhere (a repository only adds to what they know).
    pub fn needs_repo(&self) -> bool {
        matches!(
            self.command,
            Command::ConsistencyValidate(_)
                | Command::Orchestrator(_)
                | Command::AdminTopup(_)
                | Command::AdminAdjust(_)
                | Command::Rerun(_)
                | Command::Publish(_)
                | Command::Module(_)
        )
    }
}
