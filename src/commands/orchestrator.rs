//! `platform orchestrator` handler: parse flags into options, run a pass, render its summary as text, JSON and the job summary.
use super::Ctx;
use crate::cli::OrchestratorArgs;
use crate::error::{Error, Result};
use crate::orchestrator::{self, plan::Filter, Options, Summary};
use crate::output::{self, Report, View};
use std::time::Duration;

/// `K/N` with 1 <= K <= N.
pub fn parse_shard(s: &str) -> Result<(u64, u64)> {
    let bad = || {
        Error::input(format!("--shard '{s}' is not K/N"))
            .help("pass --shard K/N with whole numbers 1 <= K <= N, e.g. --shard 2/4")
    };
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let k: u64 = k.trim().parse().map_err(|_| bad())?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

pub fn run(ctx: &Ctx, args: &OrchestratorArgs) -> Result<Report> {
    for (flag, id) in [
        ("--tenant-id", &args.tenant_id),
        ("--work-order-id", &args.work_order_id),
    ] {
        if let Some(why) = id.as_deref().and_then(crate::ids::check) {
            return Err(Error::input(format!("{flag}: {why}")));
        }
    }
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    if let (Some((k, n)), Some(t)) = (shard, args.tenant_id.as_deref()) {
        let theirs = orchestrator::plan::tenant_shard(t, n);
        if theirs != k {
            // A pass that could select nothing is a mistake, as a mistyped id is.
            return Err(Error::input(format!(
                "--tenant-id {t} is in shard {theirs} of {n}, not {k}: this pass would run nothing"
            ))
            .help(format!(
                "drop --shard to run the tenant here, or pass --shard {theirs}/{n}"
            )));
        }
    }
    let opts = Options {
        runtime_profile: args.runtime_profile.clone(),
        billing_state_dir: args.state.billing_state_dir.clone(),
        runtime_dir: args.runtime_dir.clone(),
        filter: Filter {
            tenant_id: args.tenant_id.clone(),
            work_order_id: args.work_order_id.clone(),
            shard,
        },
        retry_failed: args.retry_failed,
        lock_timeout: Duration::from_secs(args.lock_timeout),
        dry_run: args.dry_run,
        jobs: args.jobs.map_or_else(default_jobs, |n| n as usize),
        now: crate::workorder::schedule::pass_clock(args.now.as_deref())?,
    };
    let bar = output::Progress::new("orchestrator");
    let summary = orchestrator::run_pass(ctx.repo(), &opts, &bar)?;
    drop(bar);
    Ok(Report::owned(summary))
}

/// `--jobs` when not given: the number of CPUs this process may use.
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl orchestrator::progress::Sink for output::Progress {
    fn line(&self, line: &str) {
        output::Progress::line(self, line);
    }

    fn status(&self, status: &str) {
        output::Progress::status(self, status);
    }
}

impl View for Summary {
    fn text(&self) -> String {
        orchestrator::summary::text(self)
    }

    fn exit_code(&self) -> u8 {
        Summary::exit_code(self)
    }

    fn summary(&self) -> Option<String> {
        Some(crate::job_summary::orchestrator_md(self))
    }
}
