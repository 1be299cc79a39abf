//! deliver_github_release: uploads a package as an asset of the release the profile's
//! `release_tag` template derives for this run — the work order chooses nothing but the
//! package (SPEC §6) — through the publisher's `publish_assets`, with a client that cannot
//! write the state release.
use super::{BuiltinStep, Implementation, Receipt, StepFailure};
use crate::error::{Error, Result};
use crate::github::{AssetAction, GithubClient, GithubSettings, Purpose, ReleaseOwner};
use serde::Serialize;
use std::path::Path;

/// The receipt data of a `deliver_github_release` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GithubDelivery {
    pub repository: String,
    pub tag: String,
    pub release_id: u64,
    pub asset_id: u64,
    pub asset_name: String,
    pub url: String,
    pub bytes: u64,
    pub sha256: String,
    /// The asset was already on the release with the same content (a re-run).
    pub skipped: bool,
}

/// Upload a package as an asset named after the file to the release of `owner` (the tag the
/// profile's `release_tag` renders for it), through `publish_assets`. The asset name must
/// already be in `[A-Za-z0-9._-]`. Re-delivering the same bytes is a no-op; different bytes
/// to a published release is an error (immutable releases).
pub fn deliver_to_release(
    client: &GithubClient,
    owner: &ReleaseOwner,
    package_zip: &Path,
) -> Result<GithubDelivery> {
    let name = package_zip
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            Error::input(format!("{} has no usable file name", package_zip.display()))
                .at(package_zip.display().to_string())
        })?
        .to_string();
    let result = client.publish_assets(owner, &[(name.as_str(), package_zip)])?;
    let asset = result
        .assets
        .into_iter()
        .next()
        .ok_or_else(|| Error::failure("internal: publishing returned no asset"))?;
    Ok(GithubDelivery {
        repository: result.repository,
        tag: result.tag,
        release_id: result.release_id,
        asset_id: asset.asset_id,
        asset_name: asset.name,
        url: asset.url,
        bytes: asset.bytes,
        sha256: asset.sha256,
        skipped: asset.action == AssetAction::Skipped,
    })
}

/// deliver_github_release as a step.
pub struct DeliverGithubRelease;

/// The runtime profile's `github:` block, which says where releases go.
fn settings(s: &BuiltinStep) -> std::result::Result<GithubSettings, StepFailure> {
    let file = s
        .profile
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let Some(gh) = &s.profile.github else {
        return Err(StepFailure::input_invalid(
            "the runtime profile has no github: block; pass --runtime-profile with one",
        ));
    };
    GithubSettings::from_value(gh, &file).map_err(|e| StepFailure::input_invalid(e.message))
}

impl Implementation for DeliverGithubRelease {
    /// The profile says where releases go, the tag it renders for this run is one GitHub
    /// keeps, the token is set, and a package is given.
    fn precheck(&self, s: &BuiltinStep) -> std::result::Result<(), String> {
        let settings = settings(s).map_err(|f| f.message)?;
        // The tag the upload would render, by the same function: two long IDs (or a long run
        // number) can make one over 128 characters, which no upload could ever use.
        let owner = ReleaseOwner::new(s.tenant_id, s.work_order_id, s.run);
        settings
            .checked_release_tag(&owner)
            .map_err(|e| format!("{}; {}", e.message, e.help.unwrap_or_default()))?;
        // The planner refuses such a run `secrets_missing` before anything is charged; this
        // keeps the built-in's own check whole for any other caller.
        if !crate::secrets::has_github_token() {
            return Err(format!(
                "{} is not set: deliver_github_release uploads with the platform's token; set it in the orchestrator's environment",
                crate::secrets::GITHUB_TOKEN
            ));
        }
        let zip = s.package_zip().map_err(|f| f.message)?;
        // The asset is named after the file: a name GitHub would not keep is refused before
        // the charge, not by the upload after it.
        let name = zip.file_name().unwrap_or_default().to_string_lossy();
        crate::github::client::validate_asset_name(&name).map_err(|e| {
            format!(
                "input 'package_zip': {}; {}",
                e.message,
                e.help.unwrap_or_default()
            )
        })
    }

    fn run(&self, s: &BuiltinStep) -> std::result::Result<Option<Receipt>, StepFailure> {
        let zip = s.package_zip()?;
        let settings = settings(s)?;
        let owner = ReleaseOwner::new(s.tenant_id, s.work_order_id, s.run);
        let client = GithubClient::from_env(&settings, Purpose::Delivery)
            .map_err(|e| StepFailure::delivery_failed(e.message))?
            .with_deadline(s.deadline.at());
        // The uploader reads by path: it gets a copy made from the opened file, in this
        // step's own folder, so no link swapped in afterwards can redirect the upload.
        let staged = s.files.path().join("upload");
        let _ = std::fs::remove_dir_all(&staged);
        let copy = staged.join(zip.file_name().unwrap_or_default());
        zip.open_file()
            .map_err(|r| r.to_string())
            .and_then(|mut f| crate::beneath::copy_opened(&mut f, &copy).map_err(|e| e.to_string()))
            .map_err(|why| StepFailure::module_failed(format!("input 'package_zip': {why}")))?;
        // What is uploaded is this copy: its bytes must be the ones the package's step
        // recorded (a swap between the binding's check and the copy is caught here).
        let (sha256, bytes) = crate::digest::sha256_file(&copy)
            .map_err(|e| StepFailure::module_failed(format!("input 'package_zip': {e}")))?;
        if let Err(refused) = s.check_as_read("package_zip", bytes, &sha256) {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(refused);
        }
        let delivered = deliver_to_release(&client, &owner, &copy);
        let _ = std::fs::remove_dir_all(&staged);
        let d = delivered.map_err(|e| {
            // Past the deadline every call fails at once: the deadline is why, whatever failed.
            if s.deadline.passed() {
                s.deadline.exceeded(&format!(
                    "delivering {} to the release on {} (the call under way was cut off: {})",
                    copy.file_name().unwrap_or_default().to_string_lossy(),
                    settings.repository,
                    e.message
                ))
            } else {
                StepFailure::delivery_failed(e.message)
            }
        })?;
        Ok(Some(Receipt {
            provider: "github_release".into(),
            remote_path: d.url,
            object_id: Some(d.asset_id.to_string()),
            bytes: d.bytes,
            sha256: d.sha256,
            verification_status: "verified".into(),
        }))
    }
}
