//! Publishing files as release assets (SPEC §5): draft → upload → verify → publish, idempotent
//! and never half-published, to the release the profile's template names for one owner (one
//! run of one work order) and to no release of another owner. The publisher and the
//! `deliver_github_release` built-in both upload through it.
use super::client::{validate_asset_name, Asset, GithubClient, Release, MAX_ASSET_BYTES};
use super::tag_template::ReleaseOwner;
use crate::digest::sha256_file;
use crate::error::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What happened to one asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetAction {
    /// Not on the release before: uploaded.
    Uploaded,
    /// On the draft with other content, or incomplete: deleted and uploaded again.
    Replaced,
    /// Already there with the same name, size and SHA-256.
    Skipped,
}

/// One asset of a published release, as verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedAsset {
    pub name: String,
    pub asset_id: u64,
    pub bytes: u64,
    pub sha256: String,
    /// The browser download URL GitHub reports once the release is published.
    pub url: String,
    pub action: AssetAction,
}

/// The outcome of `publish_assets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishResult {
    pub repository: String,
    pub tag: String,
    pub release_id: u64,
    pub release_url: String,
    /// In the order the files were given.
    pub assets: Vec<PublishedAsset>,
    /// The release was published before this call and already held every file: nothing changed.
    pub already_published: bool,
}

impl PublishResult {
    /// True when nothing was uploaded or replaced.
    pub fn unchanged(&self) -> bool {
        self.assets.iter().all(|a| a.action == AssetAction::Skipped)
    }
}

/// A file to publish, hashed once up front.
struct LocalFile {
    name: String,
    path: PathBuf,
    sha256: String,
    bytes: u64,
}

/// The line an artifact release's body carries, naming the run it belongs to. Releases of
/// two owners can share a tag when IDs contain the template's separators (`a-b` + `c` and
/// `a` + `b-c`); this line keeps one owner from writing into, or recording, the other's.
pub fn owner_line(owner: &ReleaseOwner) -> String {
    format!("platform-release-owner: {}", owner.describe())
}

impl GithubClient {
    /// Publish `files` (`(asset name, path)`) to the release the profile's `release_tag`
    /// renders for `owner`, per SPEC §5: find or create a draft; skip assets already there
    /// with the same name, size and SHA-256; replace differing or incomplete ones while the
    /// release is a draft; verify every expected asset is `uploaded` with the right size and
    /// SHA-256 (downloaded and hashed when GitHub reports no digest); then publish. A
    /// published release is immutable: it is verified, and anything missing or different is
    /// an error. Any failure before the final publish leaves the release a draft. A release
    /// that belongs to another owner is never touched.
    pub fn publish_assets<N: AsRef<str>, P: AsRef<Path>>(
        &self,
        owner: &ReleaseOwner,
        files: &[(N, P)],
    ) -> Result<PublishResult> {
        let tag = self.settings().checked_release_tag(owner)?;
        let locals = hash_locals(files)?;
        let release = self.find_release(&tag)?;
        if let Some(r) = &release {
            self.check_owner(r, owner)?;
        }
        if let Some(r) = release.as_ref().filter(|r| !r.draft) {
            return self.verify_published(r, &locals);
        }
        let release = match release {
            Some(r) => r,
            None => self.create_draft_with_body(&tag, &owned_body(owner))?,
        };
        let before = self.list_assets(&release)?;
        let mut actions = Vec::with_capacity(locals.len());
        // Kept assets whose content was just compared: verifying need not download them again.
        let mut compared = Vec::new();
        for local in &locals {
            let same_name: Vec<&Asset> = before.iter().filter(|a| a.name == local.name).collect();
            let mut keep = false;
            if let [only] = same_name.as_slice() {
                keep = self.same_content(&release, only, local)?;
                if keep {
                    compared.push(only.id);
                }
            }
            if keep {
                actions.push(AssetAction::Skipped);
                continue;
            }
            for stale in &same_name {
                self.delete_asset(&release, stale)?;
            }
            self.upload_checked(&release, local)?;
            actions.push(if same_name.is_empty() {
                AssetAction::Uploaded
            } else {
                AssetAction::Replaced
            });
        }
        let verified = self.verify_complete(&release, &locals, &compared)?;
        let published = self.publish_release(&release)?;
        // Download URLs change from the draft's `untagged-…` path once the tag exists.
        let after = self.list_assets(&published).unwrap_or(verified);
        Ok(self.result(&published, &locals, &after, actions, false))
    }

    /// The release's body names `owner`; anything else (another owner, or a release made by
    /// hand or by an older version) is refused before any write.
    fn check_owner(&self, release: &Release, owner: &ReleaseOwner) -> Result<()> {
        let body = release.body.as_deref().unwrap_or_default();
        let found = body
            .lines()
            .find_map(|l| l.trim().strip_prefix("platform-release-owner:"))
            .map(str::trim);
        if found == Some(owner.describe().as_str()) {
            return Ok(());
        }
        let whose = match found {
            Some(other) => format!("belongs to {other} (tenant/work order/run)"),
            None => "was not created by platform for a work order run (its body has no owner line)"
                .to_string(),
        };
        Err(Error::failure(format!(
            "release '{}' of {} {whose}, not to {}: nothing was uploaded or recorded",
            release.tag_name,
            self.repository(),
            owner.describe()
        ))
        .help("the release_tag template renders one tag for two owners: separate its placeholders with '.', which IDs cannot contain (e.g. artifacts-{tenant_id}.{work_order_id}.r{run}), or delete the release if it is a leftover"))
    }

    /// Upload one file; on failure, look again before deciding, since the POST may have
    /// landed or left a `starter` asset. Never re-sent blindly.
    fn upload_checked(&self, release: &Release, local: &LocalFile) -> Result<Asset> {
        let err = match self.upload_asset(release, &local.name, &local.path) {
            Ok(asset) => return Ok(asset),
            Err(e) => e,
        };
        let draft_note = self.draft_note(release);
        let after = match self.list_assets(release) {
            Ok(a) => a,
            Err(_) => return Err(with_help(err, &draft_note)),
        };
        // Without a digest this is a size check only; `verify_complete` then downloads it.
        if let Some(landed) = after
            .iter()
            .find(|a| a.name == local.name && matches_without_download(a, local))
        {
            return Ok(landed.clone());
        }
        for leftover in after.iter().filter(|a| a.name == local.name) {
            // Best effort: the next run deletes a leftover anyway.
            let _ = self.delete_asset(release, leftover);
        }
        Err(with_help(err, &draft_note))
    }

    /// The help of an error that leaves `release` a draft.
    fn draft_note(&self, release: &Release) -> String {
        format!(
            "release '{}' of {} stays a draft and nothing was published; re-run to resume (finished uploads are verified and kept)",
            release.tag_name,
            self.repository()
        )
    }

    /// Same name is given; same size and SHA-256 (GitHub's digest, else downloaded and hashed).
    fn same_content(&self, release: &Release, remote: &Asset, local: &LocalFile) -> Result<bool> {
        if !remote.is_uploaded() || remote.size != local.bytes {
            return Ok(false);
        }
        Ok(self.remote_sha256(release, remote)? == local.sha256)
    }

    /// The SHA-256 of an uploaded asset: GitHub's digest, or, from servers that report none
    /// (older GitHub Enterprise Server), the asset downloaded and hashed, since a size alone
    /// does not catch a corrupted upload.
    fn remote_sha256(&self, release: &Release, remote: &Asset) -> Result<String> {
        if let Some(d) = remote.sha256() {
            return Ok(d.to_string());
        }
        let tmp = tempfile::tempdir()
            .map_err(|e| Error::failure(format!("cannot create a temporary directory: {e}")))?;
        let got = self.download_asset(release, remote, &tmp.path().join(&remote.name))?;
        Ok(got.sha256)
    }

    /// Every expected asset is `uploaded`, with the right size and SHA-256: GitHub's digest,
    /// else the downloaded asset's, unless its id is in `compared` (kept after a comparison
    /// of its content in this call, and unchanged since, as an asset's id changes with it).
    fn verify_complete(
        &self,
        release: &Release,
        locals: &[LocalFile],
        compared: &[u64],
    ) -> Result<Vec<Asset>> {
        let assets = self.list_assets(release)?;
        let mut problems = Vec::new();
        for local in locals {
            let found: Vec<&Asset> = assets.iter().filter(|a| a.name == local.name).collect();
            match found.as_slice() {
                [a] if matches_without_download(a, local) => {
                    if a.sha256().is_some() || compared.contains(&a.id) {
                        continue;
                    }
                    let got = self
                        .remote_sha256(release, a)
                        .map_err(|e| with_help(e, &self.draft_note(release)))?;
                    if got != local.sha256 {
                        problems.push(format!(
                            "'{}' has the right size ({} bytes), but its content downloaded from the release has sha256:{}, expected sha256:{} (the server reports no digest, so the upload was downloaded to check it)",
                            local.name, a.size, got, local.sha256
                        ));
                    }
                }
                [] => problems.push(format!("'{}' is missing", local.name)),
                [a] => problems.push(format!(
                    "'{}' is {} with {} bytes (digest {}), expected uploaded with {} bytes (sha256:{})",
                    local.name,
                    a.state,
                    a.size,
                    a.digest.as_deref().unwrap_or("not reported"),
                    local.bytes,
                    local.sha256
                )),
                more => problems.push(format!("'{}' appears {} times", local.name, more.len())),
            }
        }
        if problems.is_empty() {
            return Ok(assets);
        }
        Err(Error::failure(format!(
            "release '{}' of {} failed verification before publishing: {}",
            release.tag_name,
            self.repository(),
            problems.join("; ")
        ))
        .help("the release stays a draft and nothing was published; re-run publish to replace the incomplete or differing assets"))
    }

    /// A published release can only be checked, never changed.
    fn verify_published(&self, release: &Release, locals: &[LocalFile]) -> Result<PublishResult> {
        let assets = self.list_assets(release)?;
        let mut problems = Vec::new();
        for local in locals {
            match assets.iter().find(|a| a.name == local.name) {
                None => problems.push(format!("'{}' is missing", local.name)),
                Some(a) => {
                    if !self.same_content(release, a, local)? {
                        problems.push(format!(
                            "'{}' differs ({} bytes, digest {}; local {} bytes, sha256:{})",
                            local.name,
                            a.size,
                            a.digest.as_deref().unwrap_or("not reported"),
                            local.bytes,
                            local.sha256
                        ));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::failure(format!(
                "release '{}' of {} is already published, and published releases are immutable: {}; nothing was changed",
                release.tag_name,
                self.repository(),
                problems.join("; ")
            ))
            .help("publish to a new tag (the default release_tag includes the run number {run}), or delete the release on GitHub if immutable releases are off"));
        }
        let actions = vec![AssetAction::Skipped; locals.len()];
        Ok(self.result(release, locals, &assets, actions, true))
    }

    fn result(
        &self,
        release: &Release,
        locals: &[LocalFile],
        assets: &[Asset],
        actions: Vec<AssetAction>,
        already_published: bool,
    ) -> PublishResult {
        let web = self.settings().web_url();
        let out = locals
            .iter()
            .zip(actions)
            .map(|(local, action)| {
                let remote = assets.iter().find(|a| a.name == local.name);
                PublishedAsset {
                    name: local.name.clone(),
                    asset_id: remote.map(|a| a.id).unwrap_or_default(),
                    bytes: local.bytes,
                    sha256: local.sha256.clone(),
                    url: remote
                        .map(|a| a.browser_download_url.clone())
                        .filter(|u| !u.is_empty())
                        .unwrap_or_else(|| {
                            format!(
                                "{web}/releases/download/{}/{}",
                                release.tag_name, local.name
                            )
                        }),
                    action,
                }
            })
            .collect();
        PublishResult {
            repository: self.repository().to_string(),
            tag: release.tag_name.clone(),
            release_id: release.id,
            release_url: release.html_url.clone(),
            assets: out,
            already_published,
        }
    }
}

/// Uploaded, same size, and same digest when GitHub reports one.
fn matches_without_download(remote: &Asset, local: &LocalFile) -> bool {
    remote.is_uploaded()
        && remote.size == local.bytes
        && remote.sha256().is_none_or(|d| d == local.sha256)
}

fn with_help(mut err: Error, help: &str) -> Error {
    err.help = Some(match err.help.take() {
        Some(h) => format!("{help}; {h}"),
        None => help.to_string(),
    });
    err
}

/// Validate names (allowed characters, no duplicates) and sizes, and hash every file, before
/// anything is sent.
fn hash_locals<N: AsRef<str>, P: AsRef<Path>>(files: &[(N, P)]) -> Result<Vec<LocalFile>> {
    if files.is_empty() {
        return Err(Error::input("nothing to publish: no files were given"));
    }
    let mut out: Vec<LocalFile> = Vec::with_capacity(files.len());
    for (name, path) in files {
        let (name, path) = (name.as_ref(), path.as_ref());
        validate_asset_name(name)?;
        if out.iter().any(|l| l.name == name) {
            return Err(Error::input(format!("asset name '{name}' is given twice"))
                .help("every file of a release needs its own name"));
        }
        let (sha256, bytes) = sha256_file(path)?;
        if bytes > MAX_ASSET_BYTES {
            return Err(Error::input(format!(
                "{} is {bytes} bytes; GitHub release assets must be under 2 GiB",
                path.display()
            ))
            .at(path.display().to_string())
            .help("split the deliverable or deliver it another way"));
        }
        out.push(LocalFile {
            name: name.to_string(),
            path: path.to_path_buf(),
            sha256,
            bytes,
        });
    }
    Ok(out)
}

/// The body of an artifact release: what it is, and its owner line.
fn owned_body(owner: &ReleaseOwner) -> String {
    format!(
        "Artifacts of tenant {}, work order {}, run {}, uploaded by platform. Assets are uploaded and verified while this release is a draft; it is published only when all of them are complete.\n\n{}\n",
        owner.tenant_id,
        owner.work_order_id,
        owner.run,
        owner_line(owner)
    )
}
