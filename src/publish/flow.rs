//! A whole `platform publish` as a library call: IAM with its audited denial, the directories and the target, the publish lock, and the publisher (whose records carry the actor, so the ledger writes their audit records with them); one report.
use super::select::LedgerView;
use super::{parse_time, run, Action, ArtifactReport, Outcome, Request, Target, LOCK_NAME};
use crate::audit::Subject;
use crate::config::iam::Scope;
use crate::config::profile::RuntimeProfile;
use crate::error::{Error, Result};
use crate::github::{GithubClient, GithubSettings, Purpose};
use crate::ledger::{DirLock, Ledger, Repair};
use crate::privileged::{self, Authorized};
use crate::repo::Repo;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default dist directory, under the repository.
pub const DEFAULT_DIST_DIR: &str = "dist";

/// How long a publish waits for another one on the same billing-state directory.
const LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// A publish as the command line asks for it (paths as given; defaults are resolved here).
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    pub billing_state_dir: Option<&'a Path>,
    pub runtime_dir: Option<&'a Path>,
    pub runtime_profile: Option<&'a Path>,
    /// `--since`, RFC 3339.
    pub since: Option<&'a str>,
    pub dist_dir: Option<&'a Path>,
    /// `--no-publish`: package and record `staged` evidence only.
    pub stage_only: bool,
    /// `--actor`, else `$GITHUB_ACTOR`.
    pub actor: Option<&'a str>,
}

/// What a publish did (the `--json` document); exit 1 when `errors` is not empty.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    /// In selection order: tenant, work order, run, step, deliverable.
    pub artifacts: Vec<ArtifactReport>,
    /// `<dist-dir>/SHA256SUMS`.
    pub sha256sums: String,
    pub published: usize,
    pub staged: usize,
    pub skipped: usize,
    /// Every artifact that failed. (Audit records are written in the publish records'
    /// commit; one a crash cut off is added by the next writer, not reported here.)
    pub errors: Vec<PublishError>,
    #[serde(skip)]
    pub stage_only: bool,
    /// Whether `--since` narrowed the selection.
    #[serde(skip)]
    pub since: bool,
    #[serde(skip)]
    pub dist_dir: PathBuf,
    /// What the ledger repaired on the way (reported as notes).
    #[serde(skip)]
    pub repairs: Vec<Repair>,
    /// Notes on temp files a killed publish left in the dist directory, removed first.
    #[serde(skip)]
    pub leftovers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishError {
    /// The artifact's asset name. Always set since publish records carry their audit
    /// records (until 2026-12-03 None named a publish-set audit record that failed).
    pub asset_name: Option<String>,
    pub message: String,
}

/// Everything checked before the lock is taken.
struct Prepared {
    who: Authorized,
    state_dir: PathBuf,
    runtime_dir: PathBuf,
    dist_dir: PathBuf,
    since: Option<DateTime<Utc>>,
    target: Target,
}

/// Authorise, then select, package, upload (or stage) and record under the publish lock.
pub fn publish(repo: &Path, opts: &Options<'_>) -> Result<PublishReport> {
    let p = prepare(repo, opts)?;
    let _lock = DirLock::acquire(&p.state_dir, LOCK_NAME, LOCK_TIMEOUT, |w| {
        let holder = match w.holder.trim() {
            "" => "unknown holder",
            h => h,
        };
        crate::output::progress(&format!(
            "waiting for another publish on {} ({holder}, {:.0} s so far)",
            w.path.display(),
            w.waited.as_secs_f64()
        ))
    })?;
    let leftovers = dist_leftovers(&p.dist_dir);
    let (mut ledger, repairs) = Ledger::open(&p.state_dir)?;
    let outcome = (|| {
        let view = LedgerView::load(&p.state_dir)?;
        let loaded = Repo::load(repo)?;
        run(
            &mut ledger,
            &view,
            &Request {
                repo: &loaded,
                runtime_dir: &p.runtime_dir,
                dist_dir: &p.dist_dir,
                since: p.since,
                target: &p.target,
                actor: &p.who.actor,
            },
        )
    })()
    .map_err(|e| Repair::reported_in(e, &repairs))?;
    let mut report = PublishReport::new(outcome, &p, opts.stage_only, repairs);
    report.leftovers = leftovers;
    Ok(report)
}

/// Remove the ZIPs and SHA256SUMS a killed publish left half-written in `dist` and its
/// `r<run>` folders (the only places it writes; a link there is not followed), under the
/// publish lock; the notes.
fn dist_leftovers(dist: &Path) -> Vec<String> {
    let temps = [crate::builtin::package::ZIP_TEMP, super::sums::SUMS_TEMP];
    let mut folders = vec![dist.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dist) {
        let runs = entries.flatten().filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let numbered = name
                .strip_prefix('r')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            numbered && e.file_type().is_ok_and(|t| t.is_dir())
        });
        folders.extend(runs.map(|e| e.path()));
    }
    folders
        .iter()
        .filter_map(|f| crate::leftovers::remove(f, &temps, "platform publish"))
        .collect()
}

/// IAM first: every denial is audited, whatever else is wrong with the request, and
/// `--no-publish` needs the scope too (it appends evidence). Then the flags and the profile.
fn prepare(repo: &Path, opts: &Options<'_>) -> Result<Prepared> {
    let profile = RuntimeProfile::load(repo, opts.runtime_profile);
    let state_dir =
        crate::dirs::billing_state_of(repo, profile.as_ref().ok(), opts.billing_state_dir);
    let dist_dir = opts
        .dist_dir
        .map_or_else(|| repo.join(DEFAULT_DIST_DIR), Path::to_path_buf);
    let subject = Subject {
        tenant_id: None,
        target: dist_dir.display().to_string(),
    };
    let who = privileged::authorize(
        repo,
        &state_dir,
        opts.actor,
        Scope::ArtifactsPublish,
        &subject,
    )?;
    let profile = profile?;
    let since = opts.since.map(parse_since).transpose()?;
    crate::dirs::existing(&state_dir)?;
    let target = if opts.stage_only {
        Target::Stage
    } else {
        release_target(&profile)?
    };
    Ok(Prepared {
        who,
        runtime_dir: profile.runtime_dir(opts.runtime_dir),
        state_dir,
        dist_dir,
        since,
        target,
    })
}

fn parse_since(s: &str) -> Result<DateTime<Utc>> {
    parse_time(s).map_err(|why| {
        Error::input(format!("--since '{s}' is not an RFC 3339 time ({why})"))
            .help("expected e.g. 2025-01-31T00:00:00Z or 2025-01-31T09:00:00+09:00")
    })
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

impl PublishReport {
    fn new(
        outcome: Outcome,
        p: &Prepared,
        stage_only: bool,
        repairs: Vec<Repair>,
    ) -> PublishReport {
        let failed = outcome
            .artifacts
            .iter()
            .filter(|a| a.status == Action::Error);
        let errors: Vec<PublishError> = failed
            .map(|a| PublishError {
                asset_name: Some(a.asset_name.clone()),
                message: a.detail.clone().unwrap_or_default(),
            })
            .collect();
        PublishReport {
            published: outcome.count(Action::Published),
            staged: outcome.count(Action::Staged),
            skipped: outcome.count(Action::Skipped),
            sha256sums: outcome.sha256sums.display().to_string(),
            artifacts: outcome.artifacts,
            errors,
            stage_only,
            since: p.since.is_some(),
            dist_dir: p.dist_dir.clone(),
            repairs,
            leftovers: Vec::new(),
        }
    }

    pub fn count(&self, action: Action) -> usize {
        self.artifacts.iter().filter(|a| a.status == action).count()
    }
}
