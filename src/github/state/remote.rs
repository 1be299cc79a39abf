//! The state release as read and written by pull and push: one snapshot of its assets (state files' heads, heads.json), replacements that keep a complete copy of each file on the release at every moment (staged upload, check, delete, rename), and verification of what landed.
use super::record::{short, Head};
use super::STATE_FILES;
use crate::error::{Error, Result};
use crate::github::client::{Asset, GithubClient, Release};
use crate::heads::{HEADS_FILE, MAX_HEADS_BYTES};
use std::collections::BTreeMap;
use std::path::Path;

/// What the release holds for one state file.
#[derive(Debug, Clone)]
pub(super) enum RemoteHead {
    Absent,
    Present {
        bytes: u64,
        sha256: String,
        asset: Asset,
    },
    /// An upload that never finished (`starter`).
    Incomplete(Asset),
}

impl RemoteHead {
    pub(super) fn describe(&self) -> String {
        match self {
            RemoteHead::Absent => "absent".to_string(),
            RemoteHead::Present { bytes, sha256, .. } => {
                format!("{bytes} bytes, sha256 {}", short(sha256))
            }
            RemoteHead::Incomplete(a) => format!("an incomplete upload (state {})", a.state),
        }
    }
    /// The same bytes (length and SHA-256) as `local`, or both absent; an unfinished upload
    /// never matches.
    pub(super) fn holds(&self, local: &Head) -> bool {
        match self {
            RemoteHead::Absent => local.content().is_none(),
            RemoteHead::Present { bytes, sha256, .. } => {
                local.content() == Some((*bytes, sha256.as_str()))
            }
            RemoteHead::Incomplete(_) => false,
        }
    }
    pub(super) fn asset(&self) -> Option<&Asset> {
        match self {
            RemoteHead::Present { asset, .. } => Some(asset),
            _ => None,
        }
    }
    /// The copy is still under its staged name: a replacement stopped before its rename.
    pub(super) fn is_staged(&self) -> bool {
        self.asset()
            .is_some_and(|a| a.name.ends_with(STAGED_SUFFIX))
    }
}

/// A replacement is uploaded as `<name>.staged` and takes the file's name only once it has
/// landed and been checked, so the old copy is deleted only when a good new one exists.
const STAGED_SUFFIX: &str = ".staged";

fn staged_name(name: &str) -> String {
    format!("{name}{STAGED_SUFFIX}")
}

/// `a` is `name` or its staged copy, finished or not.
pub(super) fn is_copy_of(a: &Asset, name: &str) -> bool {
    a.name == name || a.name == staged_name(name)
}

/// The complete copy of `name` a reader takes: the asset of that name, else a complete staged
/// copy (a replacement that deleted the old copy and stopped before its rename: the staged
/// copy is the file then, never "absent").
fn current_copy<'a>(assets: &'a [Asset], name: &str) -> Option<&'a Asset> {
    let staged = staged_name(name);
    assets
        .iter()
        .find(|a| a.name == name && a.is_uploaded())
        .or_else(|| assets.iter().find(|a| a.name == staged && a.is_uploaded()))
}

/// One reading of the state release.
pub(super) struct Snapshot {
    pub tag: String,
    pub release: Option<Release>,
    pub assets: Vec<Asset>,
    /// Every state file, absent included.
    pub files: BTreeMap<&'static str, RemoteHead>,
    /// The bytes of heads.json, when the release has one.
    pub heads_json: Option<Vec<u8>>,
    /// That heads.json is still under its staged name (a push stopped before its rename).
    pub heads_staged: bool,
}

impl Snapshot {
    /// The release by `known_id` (recorded by this directory's last pull or push) while it
    /// carries the tag, else the one the listing finds.
    pub(super) fn read(client: &GithubClient, known_id: Option<u64>) -> Result<Snapshot> {
        let tag = client.settings().state_tag.clone();
        let release = client.find_state_release(&tag, known_id)?;
        let assets = match &release {
            Some(r) => client.list_assets(r)?,
            None => Vec::new(),
        };
        let mut files = BTreeMap::new();
        for name in STATE_FILES {
            files.insert(
                name,
                remote_head_full(client, release.as_ref(), &assets, name)?,
            );
        }
        let heads_json = read_heads_json(client, release.as_ref(), &assets)?;
        let heads_staged = current_copy(&assets, HEADS_FILE).is_some_and(|a| a.name != HEADS_FILE);
        Ok(Snapshot {
            tag,
            release,
            assets,
            files,
            heads_json,
            heads_staged,
        })
    }

    /// The first state file left incomplete by a failed upload, if any.
    pub(super) fn incomplete(&self) -> Option<(&'static str, &Asset)> {
        self.files.iter().find_map(|(name, h)| match h {
            RemoteHead::Incomplete(a) => Some((*name, a)),
            _ => None,
        })
    }
}

/// heads.json's bytes (None when the release has none); larger than any real one is refused.
fn read_heads_json(
    client: &GithubClient,
    release: Option<&Release>,
    assets: &[Asset],
) -> Result<Option<Vec<u8>>> {
    let (Some(release), Some(asset)) = (release, current_copy(assets, HEADS_FILE)) else {
        return Ok(None);
    };
    if asset.size > MAX_HEADS_BYTES {
        return Err(Error::failure(format!(
            "the state release '{}' of {} holds a heads.json of {} bytes; a real one is under {MAX_HEADS_BYTES}",
            release.tag_name,
            client.repository(),
            asset.size
        ))
        .help("the release was tampered with: restore it from a good copy with `platform state push --restore`"));
    }
    let tmp = tempfile::tempdir()
        .map_err(|e| Error::failure(format!("cannot create a temporary directory: {e}")))?;
    let path = tmp.path().join(HEADS_FILE);
    client.download_asset(release, asset, &path)?;
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, &e))?;
    Ok(Some(bytes))
}

/// The remote head from the listing alone (the digest when GitHub gives one).
fn remote_head_cheap(assets: &[Asset], name: &str) -> RemoteHead {
    if let Some(a) = current_copy(assets, name) {
        return RemoteHead::Present {
            bytes: a.size,
            sha256: a.sha256().unwrap_or_default().to_string(),
            asset: a.clone(),
        };
    }
    match assets.iter().find(|a| a.name == name) {
        Some(a) => RemoteHead::Incomplete(a.clone()),
        None => RemoteHead::Absent,
    }
}

/// The remote head, downloading and hashing the asset when GitHub reports no digest.
fn remote_head_full(
    client: &GithubClient,
    release: Option<&Release>,
    assets: &[Asset],
    name: &str,
) -> Result<RemoteHead> {
    let head = remote_head_cheap(assets, name);
    match (&head, release) {
        (RemoteHead::Present { asset, .. }, Some(r)) if asset.sha256().is_none() => {
            let tmp = tempfile::tempdir()
                .map_err(|e| Error::failure(format!("cannot create a temporary directory: {e}")))?;
            let got = client.download_asset(r, asset, &tmp.path().join(name))?;
            Ok(RemoteHead::Present {
                bytes: got.bytes,
                sha256: got.sha256,
                asset: asset.clone(),
            })
        }
        _ => Ok(head),
    }
}

/// Replace the asset `name` with the file at `path` (whose head is `head`) so that the release
/// holds a complete copy of it at every moment, whatever step fails or is killed: upload it as
/// `<name>.staged`, check its size and SHA-256, delete the old copy, rename the staged one.
/// Works from a fresh listing, so a retry picks up where an interrupted replacement stopped.
pub(super) fn replace_asset(
    client: &GithubClient,
    release: &Release,
    name: &str,
    path: &Path,
    head: &Head,
) -> Result<()> {
    let mut assets = client.list_assets(release)?;
    if let Some(staged) = current_copy(&assets, name)
        .filter(|a| a.name != name)
        .cloned()
    {
        // The only copy is a staged one: finish its rename before anything else, so that it
        // is never deleted below as a leftover.
        promote(client, release, &assets, &staged, name, path)?;
        if has_bytes(client, release, &staged, head)? {
            return Ok(());
        }
        assets = client.list_assets(release)?;
    }
    let staged_name = staged_name(name);
    let reusable = assets
        .iter()
        .find(|a| a.name == staged_name && a.is_uploaded());
    let staged = match reusable {
        // A staged copy of these very bytes from an interrupted attempt.
        Some(a) if has_bytes(client, release, a, head)? => a.clone(),
        _ => {
            for stale in assets.iter().filter(|a| a.name == staged_name) {
                client.delete_asset(release, stale)?;
            }
            let up = upload_state_file(client, release, &staged_name, path, head)?;
            if !has_bytes(client, release, &up, head)? {
                let _ = client.delete_asset(release, &up);
                return Err(Error::failure(format!(
                    "uploading {name} to release '{}' of {}: the uploaded copy does not have the size and SHA-256 of {} ({})",
                    release.tag_name,
                    client.repository(),
                    path.display(),
                    head.describe()
                ))
                .help(retry_help(path)));
            }
            up
        }
    };
    crate::failpoint::hit("state_push_staged");
    promote(client, release, &assets, &staged, name, path)
}

/// Give the checked staged copy the name `name`: delete the old copies first (GitHub refuses
/// a name in use), then rename. Until the rename, readers take the staged copy as the file.
fn promote(
    client: &GithubClient,
    release: &Release,
    assets: &[Asset],
    staged: &Asset,
    name: &str,
    path: &Path,
) -> Result<()> {
    for old in assets.iter().filter(|a| a.name == name) {
        client.delete_asset(release, old)?;
    }
    crate::failpoint::hit("state_push_old_deleted");
    let err = match client.rename_asset(release, staged, name) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    // The PATCH may have landed although its answer was lost.
    if let Ok(after) = client.list_assets(release) {
        if after.iter().any(|a| a.id == staged.id && a.name == name) {
            return Ok(());
        }
    }
    Err(err.help(retry_help(path)))
}

/// Whether `asset` is complete and holds exactly the bytes `head` describes: by GitHub's
/// digest, or by downloading and hashing it when the server reports none.
fn has_bytes(client: &GithubClient, release: &Release, asset: &Asset, head: &Head) -> Result<bool> {
    let Head::Present { bytes, sha256, .. } = head else {
        return Ok(false);
    };
    if !asset.is_uploaded() || asset.size != *bytes {
        return Ok(false);
    }
    if let Some(digest) = asset.sha256() {
        return Ok(digest == sha256);
    }
    let tmp = tempfile::tempdir()
        .map_err(|e| Error::failure(format!("cannot create a temporary directory: {e}")))?;
    let got = client.download_asset(release, asset, &tmp.path().join("check"))?;
    Ok(got.bytes == *bytes && got.sha256 == *sha256)
}

/// Upload one file; a failed POST is checked against a fresh listing, never re-sent. A copy
/// that did not land is deleted: it only ever carries a staged name, never the file's.
fn upload_state_file(
    client: &GithubClient,
    release: &Release,
    name: &str,
    path: &Path,
    head: &Head,
) -> Result<Asset> {
    let err = match client.upload_asset(release, name, path) {
        Ok(a) => return Ok(a),
        Err(e) => e,
    };
    if let (Ok(after), Head::Present { bytes, sha256, .. }) = (client.list_assets(release), head) {
        if let Some(a) = after.iter().find(|a| landed(a, name, *bytes, sha256)) {
            return Ok(a.clone());
        }
        for leftover in after.iter().filter(|a| a.name == name && !a.is_uploaded()) {
            let _ = client.delete_asset(release, leftover);
        }
    }
    Err(err.help(retry_help(path)))
}

fn retry_help(path: &Path) -> String {
    format!(
        "the state release still holds a complete copy of every file (the old one until the new one is in place); re-run `platform state push` from {}: the interrupted push is recorded in {}, so the retry is accepted and finishes it",
        path.parent().map(|p| p.display().to_string()).unwrap_or_default(),
        super::PULLED_FILE
    )
}

fn landed(a: &Asset, name: &str, bytes: u64, sha256: &str) -> bool {
    a.name == name && a.is_uploaded() && a.size == bytes && a.sha256().is_none_or(|d| d == sha256)
}

/// Every file of `expected` is on the release with its size and digest.
pub(super) fn verify_pushed(
    client: &GithubClient,
    release: &Release,
    expected: &BTreeMap<&str, Head>,
) -> Result<()> {
    let assets = client.list_assets(release)?;
    let mut problems = Vec::new();
    for (name, head) in expected {
        if let Head::Present { bytes, sha256, .. } = head {
            if !assets.iter().any(|a| landed(a, name, *bytes, sha256)) {
                problems.push(name.to_string());
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::failure(format!(
        "state push to release '{}' of {} could not be verified: {} not uploaded with the expected size and digest",
        release.tag_name,
        client.repository(),
        problems.join(", ")
    ))
    .help("re-run `platform state push`"))
}
