//! The publisher (SPEC §5): purchased deliverables from the ledger → verified, deterministic ZIPs and SHA256SUMS in the dist directory → GitHub release assets → publish evidence. `flow` runs a whole publish (IAM with its audit, the lock); rendering is the command's.
pub mod artifact;
pub mod flow;
pub mod select;
pub mod sums;

use crate::error::{Error, Result};
use crate::github::{AssetAction, GithubClient, GithubSettings, PublishResult, ReleaseOwner};
use crate::ledger::{Ledger, Stream};
use crate::records::evidence::{publish_key, publish_key_in};
use crate::records::{Payload, Publish, PublishStatus};
use crate::repo::Repo;
use artifact::Packaged;
use chrono::{DateTime, Utc};
use select::{Candidate, LedgerView, Purchase};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use flow::{publish, Options, PublishError, PublishReport, DEFAULT_DIST_DIR};
pub use select::{parse_time, select};

/// Held in the billing-state directory for a whole publish: two publishers on one ledger would
/// otherwise race to create the same draft releases and upload the same assets.
pub const LOCK_NAME: &str = ".publish.lock";

/// Where the packages go.
pub enum Target {
    /// `--no-publish`: package and record `staged` evidence only.
    Stage,
    /// Upload to the profile's repository, one release per rendered `release_tag`.
    Release {
        client: Box<GithubClient>,
        settings: GithubSettings,
    },
}

impl Target {
    /// The repository uploads go to; None when staging.
    fn repository(&self) -> Option<&str> {
        match self {
            Target::Stage => None,
            Target::Release { settings, .. } => Some(&settings.repository),
        }
    }
}

/// Everything one publish needs besides the ledger.
pub struct Request<'a> {
    pub repo: &'a Repo,
    pub runtime_dir: &'a Path,
    pub dist_dir: &'a Path,
    pub since: Option<DateTime<Utc>>,
    pub target: &'a Target,
    /// The authorised actor: every publish record names it, and the ledger writes each
    /// record's audit record from it in the same commit (`records::PRIVILEGED`).
    pub actor: &'a str,
}

/// What happened to one artifact (the `status` of `--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Published,
    Staged,
    Skipped,
    Error,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Published => "published",
            Action::Staged => "staged",
            Action::Skipped => "skipped",
            Action::Error => "error",
        }
    }
}

/// One selected deliverable and what this run did with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactReport {
    #[serde(flatten)]
    pub purchase: Purchase,
    pub asset_name: String,
    /// The ZIP's path relative to the dist directory, when it was packaged by this run.
    pub file: Option<String>,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
    pub status: Action,
    pub release_tag: Option<String>,
    pub url: Option<String>,
    /// Why it was skipped, or what went wrong.
    pub detail: Option<String>,
}

impl ArtifactReport {
    fn new(c: &Candidate) -> ArtifactReport {
        ArtifactReport {
            purchase: c.purchase.clone(),
            asset_name: c.asset_name(),
            file: None,
            bytes: None,
            sha256: None,
            status: Action::Error,
            release_tag: None,
            url: None,
            detail: None,
        }
    }

    /// The ZIP's path in dist when it was packaged, else its asset name.
    pub fn display_name(&self) -> &str {
        self.file.as_deref().unwrap_or(&self.asset_name)
    }

    fn fail(&mut self, message: impl Into<String>) {
        self.status = Action::Error;
        self.detail = Some(message.into());
    }
}

/// The result of one publish.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// In selection order: tenant, work order, run, step, deliverable.
    pub artifacts: Vec<ArtifactReport>,
    /// `<dist-dir>/SHA256SUMS`, covering every ZIP this run wrote.
    pub sha256sums: PathBuf,
    /// Keys of the publish records this run appended.
    pub appended: Vec<String>,
}

impl Outcome {
    pub fn count(&self, action: Action) -> usize {
        self.artifacts.iter().filter(|a| a.status == action).count()
    }
}

/// A selected deliverable on its way through the run.
struct Item {
    candidate: Candidate,
    report: ArtifactReport,
    zip: Option<Packaged>,
    /// Packaged and not yet recorded: to upload (or to stage).
    pending: bool,
    /// The key its record takes when it is pending ([`Prior::key`]).
    key: String,
}

/// Select, package, upload (or stage) and record. Per-artifact problems are reported in the
/// outcome and the rest carries on; only problems with the dist directory itself are errors.
pub fn run(ledger: &mut Ledger, view: &LedgerView, req: &Request<'_>) -> Result<Outcome> {
    crate::folder::create(req.dist_dir, "--dist-dir")?;
    let candidates = select(view, &select::Listed::from_repo(req.repo), req.since);
    let names = dist_names(&candidates);
    let mut items: Vec<Item> = Vec::with_capacity(candidates.len());
    for (candidate, name) in candidates.into_iter().zip(names) {
        let mut item = Item {
            report: ArtifactReport::new(&candidate),
            candidate,
            zip: None,
            pending: false,
            key: String::new(),
        };
        match name {
            Ok(rel) => prepare(&mut item, &rel, view, req),
            Err(msg) => settled_or_fail(&mut item, view, req, &msg),
        }
        items.push(item);
    }
    claim_keys(&mut items);

    let sums: Vec<(String, String)> = items
        .iter()
        .filter_map(|i| Some((i.report.file.clone()?, i.zip.as_ref()?.sha256.clone())))
        .collect();
    let sha256sums = sums::write(req.dist_dir, &sums::render(&sums))?;

    let mut appended = Vec::new();
    match req.target {
        Target::Stage => stage(ledger, req.actor, &mut items, &mut appended),
        Target::Release { client, settings } => release(
            ledger,
            client,
            settings,
            req.actor,
            &mut items,
            &mut appended,
        ),
    }
    Ok(Outcome {
        artifacts: items.into_iter().map(|i| i.report).collect(),
        sha256sums,
        appended,
    })
}

/// The ZIP's path in the dist directory. Names carry no run number (SPEC §5), so when several
/// runs of one work order are selected the newest keeps `<name>` and older ones go to
/// `r<run>/<name>`: every purchase is still packaged, and SHA256SUMS lists each once. Two
/// different deliverables with one name (IDs may contain `__`) are refused.
fn dist_names(candidates: &[Candidate]) -> Vec<std::result::Result<String, String>> {
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, c) in candidates.iter().enumerate() {
        by_name.entry(c.asset_name()).or_default().push(i);
    }
    let mut out = vec![Ok(String::new()); candidates.len()];
    for (name, idx) in by_name {
        let owners: BTreeSet<(&str, &str, &str, &str)> = idx
            .iter()
            .map(|&i| {
                let c = &candidates[i];
                (
                    c.purchase.tenant_id.as_str(),
                    c.purchase.work_order_id.as_str(),
                    c.purchase.step_id.as_str(),
                    c.purchase.deliverable_id.as_str(),
                )
            })
            .collect();
        if owners.len() > 1 {
            let list: Vec<String> = owners
                .iter()
                .map(|(t, w, s, d)| format!("{t}/{w}/{s}/{d}"))
                .collect();
            for &i in &idx {
                out[i] = Err(format!(
                    "asset name '{name}' is shared by different deliverables ({}); rename a step or deliverable so the IDs do not run together",
                    list.join(", ")
                ));
            }
            continue;
        }
        let newest = idx
            .iter()
            .map(|&i| candidates[i].purchase.run)
            .max()
            .unwrap_or(0);
        for &i in &idx {
            let run = candidates[i].purchase.run;
            out[i] = Ok(if run == newest {
                name.clone()
            } else {
                format!("r{run}/{name}")
            });
        }
    }
    out
}

/// Package one artifact and decide whether it still needs publishing (or staging).
fn prepare(item: &mut Item, rel: &str, view: &LedgerView, req: &Request<'_>) {
    let staging = matches!(req.target, Target::Stage);
    let c = &item.candidate;
    let contract = req.repo.module(&c.module_id);
    let zip_path = req.dist_dir.join(rel);
    let packaged = match artifact::package(c, contract, req.runtime_dir, &zip_path) {
        Ok(p) => p,
        Err(msg) => {
            // Already delivered: the runtime dir is scratch space (a fresh CI runner has
            // none), so a purchase published earlier is not an error now.
            settled_or_fail(item, view, req, &msg);
            return;
        }
    };
    let r = &mut item.report;
    r.file = Some(rel.to_string());
    r.bytes = Some(packaged.bytes);
    r.sha256 = Some(packaged.sha256.clone());
    let prior = Prior::of(view, &r.asset_name, &packaged.sha256, req.target);
    // The key is the asset name and the bytes, and one name can be two purchases' (IDs may
    // contain `__`): a record under it is this purchase's only when it names this
    // deliverable. Another's is not "already published" (until 2026-12-03 it was: the second
    // tenant's purchase was reported skipped, pointing at the first tenant's release, and
    // never published); nor can this one be recorded under that key.
    let others = prior
        .records
        .iter()
        .find(|rec| !same_deliverable(&rec.purchase, &c.purchase));
    if let Some(rec) = others {
        let p = &rec.purchase;
        r.fail(format!(
            "asset name '{}' with this sha256 is already {} for another purchase, {}/{}/{}/{}{}: one asset name holds one purchase, so this one cannot be published under it; rename the tenant, work order, step or deliverable so the IDs do not run together (consistency-validate reports such names)",
            r.asset_name,
            rec.status.as_str(),
            p.tenant_id,
            p.work_order_id,
            p.step_id,
            p.deliverable_id,
            rec.release_tag
                .as_ref()
                .map(|t| format!(" (release {t})"))
                .unwrap_or_default()
        ));
    } else if let Some(rec) = prior.published {
        r.status = Action::Skipped;
        r.release_tag = rec.release_tag.clone();
        r.url = rec.url.clone();
        r.detail = Some(match (&rec.release_tag, &rec.repository) {
            (Some(tag), Some(repo)) => {
                format!("already published with this sha256 to release {tag} of {repo}")
            }
            (Some(tag), None) => format!("already published with this sha256 to release {tag}"),
            _ => "already published with this sha256".into(),
        });
    } else if staging && prior.staged {
        r.status = Action::Skipped;
        r.detail = Some("already staged with this sha256".into());
    } else {
        item.pending = true;
        item.key = prior.key;
    }
    item.zip = Some(packaged);
}

/// The publish records of one asset name and sha256 that decide what this publish does with
/// an artifact, and the key its own record would take.
struct Prior<'v> {
    /// The records under a key this artifact's record could take: another purchase's makes
    /// it an error.
    records: Vec<&'v Publish>,
    /// Already published, to the target's repository (when staging, to any).
    published: Option<&'v Publish>,
    /// Already staged (counts only when staging).
    staged: bool,
    key: String,
}

impl<'v> Prior<'v> {
    /// A record counts as published only to the repository it names: with a profile naming
    /// another `github.repository`, an artifact published to the old one is published to the
    /// new one too, and recorded under [`publish_key_in`] (the plain key holds the old
    /// repository's record). Until 2026-12-04 it was skipped as "already published", pointing
    /// at the old repository's release, and never reached the new one.
    fn of(view: &'v LedgerView, name: &str, sha256: &str, target: &Target) -> Prior<'v> {
        let plain = view
            .publishes
            .get(&publish_key(PublishStatus::Published, name, sha256));
        let staged = view
            .publishes
            .get(&publish_key(PublishStatus::Staged, name, sha256));
        let Some(repository) = target.repository() else {
            return Prior {
                records: plain.into_iter().chain(staged).collect(),
                published: plain,
                staged: staged.is_some(),
                key: publish_key(PublishStatus::Staged, name, sha256),
            };
        };
        let here = |rec: &&Publish| rec.published_to(repository);
        let elsewhere_key = publish_key_in(name, sha256, repository);
        let elsewhere = view.publishes.get(&elsewhere_key);
        let key = match plain {
            Some(rec) if !here(&rec) => elsewhere_key,
            _ => publish_key(PublishStatus::Published, name, sha256),
        };
        Prior {
            records: plain.into_iter().chain(elsewhere).collect(),
            published: plain.filter(here).or(elsewhere.filter(here)),
            staged: staged.is_some(),
            key,
        }
    }
}

/// An artifact that cannot be packaged now (`why`): skipped when this very purchase already has
/// its record (published, or staged when staging), else an error. Its outputs may be gone
/// (the runtime dir is scratch space), or its name shared with another purchase's: that one
/// being refused is no reason to report this one, recorded long ago, as failing on every run
/// (until 2026-12-03 both were).
fn settled_or_fail(item: &mut Item, view: &LedgerView, req: &Request<'_>, why: &str) {
    let Some(rec) = prior_record(view, &item.candidate.spend_key, req.target) else {
        item.report.fail(why);
        return;
    };
    let r = &mut item.report;
    r.status = Action::Skipped;
    r.bytes = Some(rec.bytes);
    r.sha256 = Some(rec.sha256.clone());
    r.release_tag = rec.release_tag.clone();
    r.url = rec.url.clone();
    let short = artifact::short(&rec.sha256);
    // Published to another repository than the profile's: said so, not passed off as
    // published here (it cannot be packaged to publish it here either).
    r.detail = Some(match req.target.repository() {
        Some(repo) if !rec.published_to(repo) => format!(
            "published to {} (sha256 {short}), not to {repo}; it cannot be packaged again to publish it there: {why}",
            rec.repository.as_deref().unwrap_or("another repository")
        ),
        _ => format!(
            "already {} (sha256 {short}); not packaged again: {why}",
            rec.status.as_str()
        ),
    });
}

/// Two runs of one work order can produce the same bytes under the same name, and so the same
/// publish key: the oldest run records it and the others are skipped, exactly as they would be
/// had the oldest been published by an earlier invocation. (Two payloads under one key would be
/// a ledger conflict.)
fn claim_keys(items: &mut [Item]) {
    let mut owners: BTreeMap<String, u64> = BTreeMap::new();
    for item in items.iter_mut().filter(|i| i.pending) {
        let key = item.key.clone();
        match owners.get(&key) {
            Some(run) => {
                item.pending = false;
                item.report.status = Action::Skipped;
                item.report.detail = Some(format!(
                    "same name and sha256 as run {run}'s artifact, which this publish records"
                ));
            }
            None => {
                owners.insert(key, item.candidate.purchase.run);
            }
        }
    }
}

/// Whether two purchases are of one deliverable of one step of one work order of one tenant
/// (runs and attempts aside: the same bytes from another run are the same artifact).
fn same_deliverable(a: &Purchase, b: &Purchase) -> bool {
    (
        &a.tenant_id,
        &a.work_order_id,
        &a.step_id,
        &a.deliverable_id,
    ) == (
        &b.tenant_id,
        &b.work_order_id,
        &b.step_id,
        &b.deliverable_id,
    )
}

/// The publish record that makes a purchase "done" for this mode: published always counts
/// (to the target's repository first); staged counts only when staging.
fn prior_record<'v>(view: &'v LedgerView, spend_key: &str, target: &Target) -> Option<&'v Publish> {
    let staging = matches!(target, Target::Stage);
    let here = |p: &Publish| target.repository().is_some_and(|r| p.published_to(r));
    let mut records: Vec<&Publish> = view
        .publishes
        .values()
        .filter(|p| p.spend_key == spend_key)
        .collect();
    records.sort_by_key(|p| (p.status != PublishStatus::Published, !here(p)));
    records
        .into_iter()
        .find(|p| p.status == PublishStatus::Published || staging)
}

/// The evidence record of one artifact. Every field is derived from the ledger, the ZIP, the
/// release and the actor, never from the clock, so a replay posts the same payload (a no-op).
fn record(
    item: &Item,
    actor: &str,
    status: PublishStatus,
    release: Option<(&str, &str, &str)>,
) -> Option<Payload> {
    let zip = item.zip.as_ref()?;
    let p = &item.candidate.purchase;
    Some(Payload::with_key(
        item.key.clone(),
        Publish {
            purchase: p.clone(),
            spend_key: item.candidate.spend_key.clone(),
            asset_name: item.report.asset_name.clone(),
            bytes: zip.bytes,
            sha256: zip.sha256.clone(),
            status,
            repository: release.map(|r| r.0.to_string()),
            release_tag: release.map(|r| r.1.to_string()),
            url: release.map(|r| r.2.to_string()),
            actor: Some(actor.to_string()),
        },
    ))
}

/// Append records as one batch (the ledger writes their audit records in the same commit,
/// after them); keys already in the ledger are left out (the
/// whole batch would otherwise be refused as partly recorded). Returns the keys written.
fn append(ledger: &mut Ledger, payloads: Vec<Payload>) -> Result<Vec<String>> {
    let fresh: Vec<Payload> = payloads
        .into_iter()
        .filter(|p| !ledger.contains(Stream::Evidence, &p.idempotency_key))
        .collect();
    if fresh.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = fresh.iter().map(|p| p.idempotency_key.clone()).collect();
    let out = ledger.append(Stream::Evidence, fresh)?;
    Ok(if out.appended() { keys } else { Vec::new() })
}

fn stage(ledger: &mut Ledger, actor: &str, items: &mut [Item], appended: &mut Vec<String>) {
    let idx: Vec<usize> = (0..items.len()).filter(|&i| items[i].pending).collect();
    let payloads: Vec<Payload> = idx
        .iter()
        .filter_map(|&i| record(&items[i], actor, PublishStatus::Staged, None))
        .collect();
    match append(ledger, payloads) {
        Ok(keys) => {
            for &i in &idx {
                let r = &mut items[i].report;
                r.status = Action::Staged;
                r.detail = None;
            }
            appended.extend(keys);
        }
        Err(e) => {
            for &i in &idx {
                items[i].report.fail(format!(
                    "packaged, but the staged record could not be written: {}",
                    describe(&e)
                ));
            }
        }
    }
}

/// One release per owner (one run of one work order): the client renders its tag from the
/// profile's template and refuses a release that belongs to another owner.
fn release(
    ledger: &mut Ledger,
    client: &GithubClient,
    settings: &GithubSettings,
    actor: &str,
    items: &mut [Item],
    appended: &mut Vec<String>,
) {
    let mut by_owner: BTreeMap<ReleaseOwner, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate().filter(|(_, it)| it.pending) {
        let c = &item.candidate;
        let owner = ReleaseOwner::new(
            &c.purchase.tenant_id,
            &c.purchase.work_order_id,
            c.purchase.run,
        );
        by_owner.entry(owner).or_default().push(i);
    }
    for (owner, idx) in by_owner {
        let outcome = settings
            .checked_release_tag(&owner)
            .map_err(|e| describe(&e))
            .and_then(|tag| {
                for &i in &idx {
                    items[i].report.release_tag = Some(tag.clone());
                }
                let release = Release {
                    client,
                    owner: &owner,
                    tag: &tag,
                    actor,
                };
                publish_release(ledger, &release, items, &idx)
            });
        match outcome {
            Ok(keys) => appended.extend(keys),
            Err(msg) => {
                for &i in &idx {
                    items[i].report.fail(msg.clone());
                }
            }
        }
    }
}

/// One release being published, and by whom.
struct Release<'a> {
    client: &'a GithubClient,
    owner: &'a ReleaseOwner,
    tag: &'a str,
    actor: &'a str,
}

/// Upload one release's ZIPs and its own SHA256SUMS, then record them. The release's checksum
/// file lists only that release's ZIPs, so it stays the same when the publish is repeated.
fn publish_release(
    ledger: &mut Ledger,
    release: &Release<'_>,
    items: &mut [Item],
    idx: &[usize],
) -> std::result::Result<Vec<String>, String> {
    let Release {
        client, owner, tag, ..
    } = *release;
    let tmp =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let files = release_files(items, idx, tmp.path())?;
    crate::output::progress(&format!(
        "publishing {} asset(s) and {} to release {tag} of {}",
        idx.len(),
        sums::FILE_NAME,
        client.repository()
    ));
    let result = client
        .publish_assets(owner, &files)
        .map_err(|e| describe(&e))?;
    let payloads = published(items, idx, &result, release.actor)?;
    let keys = append(ledger, payloads).map_err(|e| {
        format!(
            "published to release {tag}, but the publish records could not be written: {}; re-run publish to record them (the release is verified, nothing is uploaded twice)",
            describe(&e)
        )
    })?;
    for &i in idx {
        items[i].report.status = Action::Published;
    }
    Ok(keys)
}

/// The release's assets: each ZIP under its asset name, then a SHA256SUMS of them written
/// to `tmp`.
fn release_files(
    items: &[Item],
    idx: &[usize],
    tmp: &Path,
) -> std::result::Result<Vec<(String, PathBuf)>, String> {
    let mut files: Vec<(String, PathBuf)> = Vec::with_capacity(idx.len() + 1);
    let mut sums = Vec::with_capacity(idx.len());
    for &i in idx {
        let zip = items[i]
            .zip
            .as_ref()
            .ok_or_else(|| "internal: a pending artifact has no package".to_string())?;
        files.push((items[i].report.asset_name.clone(), zip.path.clone()));
        sums.push((items[i].report.asset_name.clone(), zip.sha256.clone()));
    }
    let sums_path = sums::write(tmp, &sums::render(&sums)).map_err(|e| describe(&e))?;
    files.push((sums::FILE_NAME.to_string(), sums_path));
    Ok(files)
}

/// Each uploaded asset's URL and tag in its report, and the publish records to append.
fn published(
    items: &mut [Item],
    idx: &[usize],
    result: &PublishResult,
    actor: &str,
) -> std::result::Result<Vec<Payload>, String> {
    let mut payloads = Vec::with_capacity(idx.len());
    for &i in idx {
        let name = items[i].report.asset_name.clone();
        let asset = result
            .assets
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| {
                format!(
                    "internal: release {} did not report asset {name}",
                    result.tag
                )
            })?;
        let r = &mut items[i].report;
        r.url = Some(asset.url.clone());
        r.release_tag = Some(result.tag.clone());
        r.detail = (asset.action == AssetAction::Skipped).then(|| {
            "was already on the release (an earlier publish was interrupted); recorded now"
                .to_string()
        });
        payloads.extend(record(
            &items[i],
            actor,
            PublishStatus::Published,
            Some((&result.repository, &result.tag, &asset.url)),
        ));
    }
    Ok(payloads)
}

/// An error as one line: message, then the hint.
fn describe(e: &Error) -> String {
    match &e.help {
        Some(h) => format!("{} (help: {h})", e.message),
        None => e.message.clone(),
    }
}
