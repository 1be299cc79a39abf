//! `platform publish`: IAM (audited either way), flags and profile to a publish request, then the publisher in `crate::publish`; renders its outcome as text, JSON and a job summary.
use super::Ctx;
use crate::cli::PublishArgs;
use crate::config::iam::{resolve_actor, Iam};
use crate::config::profile::{RuntimeProfile, DEFAULT_BILLING_STATE_DIR};
use crate::digest::sha256_hex;
use crate::error::{Error, Result};
use crate::github::{GithubClient, GithubSettings, Purpose};
use crate::job_summary::{self, Align};
use crate::ledger::{DirLock, Ledger};
use crate::output::Report;
use crate::publish::select::LedgerView;
use crate::publish::{self, artifact::short, Action, Outcome, Request, Target};
use crate::records::{Audit, Decision};
use crate::repo::Repo;
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

const SCOPE: &str = "artifacts.publish";

/// Default dist directory, under the repository.
pub const DEFAULT_DIST_DIR: &str = "dist";

/// How long a publish waits for another one on the same billing-state directory.
const LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// Rows of the job summary table; the rest is counted (the full list is in the log and --json).
const SUMMARY_ROWS: usize = 200;

pub fn run(ctx: &Ctx, args: &PublishArgs) -> Result<Report> {
    let actor = resolve_actor(args.actor.as_deref())?;
    let iam = Iam::load_strict(ctx.repo())?;
    let profile = RuntimeProfile::load(ctx.repo(), args.runtime_profile.as_deref());
    let state_dir = match (&args.state.billing_state_dir, &profile) {
        (Some(dir), _) => dir.clone(),
        (None, Ok(p)) => p.billing_state_dir(None),
        // A broken profile is reported below; the denial still needs a place to be audited.
        (None, Err(_)) => ctx.repo().join(DEFAULT_BILLING_STATE_DIR),
    };
    let dist_dir = args
        .dist_dir
        .clone()
        .unwrap_or_else(|| ctx.repo().join(DEFAULT_DIST_DIR));

    // Every denial is audited, whatever else is wrong with the request; --no-publish needs the
    // scope too, because it appends evidence.
    if let Err(reason) = iam.check(&actor, SCOPE) {
        let (mut ledger, _) = Ledger::open(&state_dir)?;
        let recorded = ledger.audit(Audit {
            action: SCOPE.into(),
            scope: SCOPE.into(),
            actor: actor.clone(),
            decision: Decision::Denied,
            reason: Some(reason.clone()),
            tenant_id: None,
            target: dist_dir.display().to_string(),
            command: None,
        });
        let mut err = Error::denied(format!(
            "actor '{actor}' may not publish artifacts: {reason}"
        ))
        .help("grant the actor a role with scope artifacts.publish in config/iam.yml");
        if let Err(e) = recorded {
            err.message.push_str(&format!(
                " (and the denial could not be audited: {})",
                e.message
            ));
        }
        return Err(err);
    }

    let profile = profile?;
    let since = match args.since.as_deref() {
        None => None,
        Some(s) => Some(publish::parse_time(s).map_err(|why| {
            Error::input(format!("--since '{s}' is not an RFC 3339 time ({why})"))
                .help("expected e.g. 2025-01-31T00:00:00Z or 2025-01-31T09:00:00+09:00")
        })?),
    };
    if !state_dir.is_dir() {
        return Err(Error::input(format!(
            "billing-state directory {} does not exist",
            state_dir.display()
        ))
        .at(state_dir.display().to_string())
        .help("pass the --billing-state-dir the orchestrator wrote to (or run `platform state pull` first)"));
    }
    let runtime_dir = profile.runtime_dir(args.runtime_dir.as_deref());
    let target = if args.no_publish {
        Target::Stage
    } else {
        release_target(&profile)?
    };

    let _lock = DirLock::acquire(&state_dir, publish::LOCK_NAME, LOCK_TIMEOUT, |w| {
        crate::output::progress(&format!(
            "waiting for another publish on {} ({}, {:.0} s so far)",
            w.path.display(),
            if w.holder.is_empty() {
                "unknown holder"
            } else {
                w.holder.trim()
            },
            w.waited.as_secs_f64()
        ))
    })?;
    let (mut ledger, repairs) = Ledger::open(&state_dir)?;
    let view = LedgerView::load(&state_dir)?;
    let repo = Repo::load(ctx.repo())?;
    let outcome = publish::run(
        &mut ledger,
        &view,
        &Request {
            repo: &repo,
            runtime_dir: &runtime_dir,
            dist_dir: &dist_dir,
            since,
            target: &target,
        },
    )?;

    // Audited only when something was recorded, under a key derived from what was recorded:
    // a re-run that appends nothing adds no audit line either.
    let mut audit_error = None;
    if !outcome.appended.is_empty() {
        let mut keys = outcome.appended.clone();
        keys.sort();
        let tenants: std::collections::BTreeSet<&str> = outcome
            .artifacts
            .iter()
            .filter(|a| matches!(a.status, Action::Published | Action::Staged))
            .map(|a| a.tenant_id.as_str())
            .collect();
        let audit = Audit {
            action: SCOPE.into(),
            scope: SCOPE.into(),
            actor: actor.clone(),
            decision: Decision::Allowed,
            reason: None,
            tenant_id: match tenants.len() {
                1 => tenants.first().map(|t| t.to_string()),
                _ => None,
            },
            target: format!("publish-set/{}", sha256_hex(keys.join("\n").as_bytes())),
            command: None,
        };
        if let Err(e) = ledger.audit(audit) {
            audit_error = Some(format!(
                "the publish records were written, but the audit record could not be: {}",
                e.message
            ));
        }
    }

    job_summary::append(&summary_md(&outcome, &dist_dir));
    let mut report = render(&outcome, args.no_publish, since.is_some(), audit_error);
    for r in repairs {
        report = report.note(format!("note: {r}"));
    }
    Ok(report)
}

/// The profile's `github:` block and a client with the token from `GITHUB_TOKEN`; checked
/// before anything is packaged, so a misconfigured publish fails fast.
fn release_target(profile: &RuntimeProfile) -> Result<Target> {
    let file = profile
        .path
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(no runtime profile)".into());
    let Some(value) = profile.github.as_ref() else {
        return Err(Error::input(format!(
            "the runtime profile {file} has no github: block, so there is no release to publish to"
        ))
        .help("pass --runtime-profile with a github: {repository: owner/name} block (e.g. config/runtime_profile.dev_github.yml), or --no-publish to package and stage only"));
    };
    let settings = GithubSettings::from_value(value, &file)?;
    let client = GithubClient::from_env(&settings, Purpose::Publish)?;
    Ok(Target::Release {
        client: Box::new(client),
        settings,
    })
}

fn render(outcome: &Outcome, staging: bool, since: bool, audit_error: Option<String>) -> Report {
    let (published, staged, skipped) = (
        outcome.count(Action::Published),
        outcome.count(Action::Staged),
        outcome.count(Action::Skipped),
    );
    let mut errors: Vec<serde_json::Value> = outcome
        .artifacts
        .iter()
        .filter(|a| a.status == Action::Error)
        .map(|a| json!({"asset_name": a.asset_name, "message": a.detail.clone().unwrap_or_default()}))
        .collect();
    if let Some(msg) = &audit_error {
        errors.push(json!({"asset_name": null, "message": msg}));
    }

    let mut text = String::new();
    if outcome.artifacts.is_empty() {
        let _ = writeln!(
            text,
            "nothing to publish: no completed, unrefunded purchased deliverables{}",
            if since { " since --since" } else { "" }
        );
    } else {
        let width = outcome
            .artifacts
            .iter()
            .map(|a| display_name(a).len())
            .max()
            .unwrap_or(0)
            .max("artifact".len());
        let _ = writeln!(
            text,
            "{:<width$}  {:>10}  {:<12}  action",
            "artifact", "bytes", "sha256"
        );
        for a in &outcome.artifacts {
            let _ = writeln!(
                text,
                "{:<width$}  {:>10}  {:<12}  {}",
                display_name(a),
                a.bytes.map(|b| b.to_string()).unwrap_or_else(|| "-".into()),
                a.sha256.as_deref().map(short).unwrap_or("-"),
                a.status.as_str()
            );
        }
        for a in &outcome.artifacts {
            match (&a.detail, a.status) {
                (Some(d), Action::Error) => {
                    let _ = writeln!(text, "error: {}: {d}", a.asset_name);
                }
                (Some(d), _) => {
                    let _ = writeln!(text, "  {}: {d}", a.asset_name);
                }
                (None, _) => {}
            }
        }
    }
    if let Some(msg) = &audit_error {
        let _ = writeln!(text, "error: {msg}");
    }
    let _ = write!(
        text,
        "{} {}, {skipped} skipped, {} error(s); checksums in {}",
        if staging { staged } else { published },
        if staging { "staged" } else { "published" },
        errors.len(),
        outcome.sha256sums.display()
    );

    let artifacts: Vec<serde_json::Value> = outcome
        .artifacts
        .iter()
        .map(|a| serde_json::to_value(a).unwrap_or(serde_json::Value::Null))
        .collect();
    let failed = !errors.is_empty();
    let report = Report::new(
        text,
        json!({
            "artifacts": artifacts,
            "sha256sums": outcome.sha256sums.display().to_string(),
            "published": published,
            "staged": staged,
            "skipped": skipped,
            "errors": errors,
        }),
    );
    if failed {
        report.exit(1)
    } else {
        report
    }
}

/// The ZIP's path in dist when it was packaged, else its asset name.
fn display_name(a: &publish::ArtifactReport) -> &str {
    a.file.as_deref().unwrap_or(&a.asset_name)
}

fn summary_md(outcome: &Outcome, dist_dir: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### platform publish\n");
    let _ = writeln!(
        out,
        "{} published, {} staged, {} skipped, {} error(s); packages in `{}`\n",
        outcome.count(Action::Published),
        outcome.count(Action::Staged),
        outcome.count(Action::Skipped),
        outcome.count(Action::Error),
        job_summary::escape(&dist_dir.display().to_string())
    );
    if outcome.artifacts.is_empty() {
        out.push_str("Nothing to publish.\n");
        return out;
    }
    let rows: Vec<Vec<String>> = outcome
        .artifacts
        .iter()
        .take(SUMMARY_ROWS)
        .map(|a| {
            vec![
                display_name(a).to_string(),
                a.bytes.map(|b| b.to_string()).unwrap_or_default(),
                a.sha256
                    .as_deref()
                    .map(short)
                    .unwrap_or_default()
                    .to_string(),
                a.status.as_str().to_string(),
                a.url.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&job_summary::table(
        &[
            ("artifact", Align::Left),
            ("bytes", Align::Right),
            ("sha256", Align::Left),
            ("action", Align::Left),
            ("url", Align::Left),
        ],
        &rows,
    ));
    if outcome.artifacts.len() > SUMMARY_ROWS {
        let _ = writeln!(
            out,
            "\n…and {} more (see the step log or `--json`).",
            outcome.artifacts.len() - SUMMARY_ROWS
        );
    }
    out
}
