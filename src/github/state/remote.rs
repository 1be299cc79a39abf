//! The state release as read and written by pull and push: one snapshot of its assets (state files' heads, heads.json), uploads checked against a fresh listing, and verification of what landed.
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
}

impl Snapshot {
    pub(super) fn read(client: &GithubClient) -> Result<Snapshot> {
        let tag = client.settings().state_tag.clone();
        let release = client.find_release(&tag)?;
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
        Ok(Snapshot {
            tag,
            release,
            assets,
            files,
            heads_json,
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
    let (Some(release), Some(asset)) = (
        release,
        assets
            .iter()
            .find(|a| a.name == HEADS_FILE && a.is_uploaded()),
    ) else {
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
    let mut same: Vec<&Asset> = assets.iter().filter(|a| a.name == name).collect();
    same.sort_by_key(|a| !a.is_uploaded());
    match same.first() {
        None => RemoteHead::Absent,
        Some(a) if !a.is_uploaded() => RemoteHead::Incomplete((*a).clone()),
        Some(a) => RemoteHead::Present {
            bytes: a.size,
            sha256: a.sha256().unwrap_or_default().to_string(),
            asset: (*a).clone(),
        },
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

/// Replace the asset `name` (every copy of it, finished or not) with the file at `path`.
pub(super) fn replace_asset(
    client: &GithubClient,
    release: &Release,
    assets: &[Asset],
    name: &str,
    path: &Path,
    head: &Head,
) -> Result<()> {
    for stale in assets.iter().filter(|a| a.name == name) {
        client.delete_asset(release, stale)?;
    }
    upload_state_file(client, release, name, path, head)
}

/// Upload one file; a failed POST is checked against a fresh listing, never re-sent.
fn upload_state_file(
    client: &GithubClient,
    release: &Release,
    name: &str,
    path: &Path,
    head: &Head,
) -> Result<()> {
    let err = match client.upload_asset(release, name, path) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    if let (Ok(after), Head::Present { bytes, sha256, .. }) = (client.list_assets(release), head) {
        if after.iter().any(|a| landed(a, name, *bytes, sha256)) {
            return Ok(());
        }
        for leftover in after.iter().filter(|a| a.name == name && !a.is_uploaded()) {
            let _ = client.delete_asset(release, leftover);
        }
    }
    let mut err = err;
    err.help = Some(format!(
        "the state release stays a draft; re-run `platform state push` from {}: the interrupted push is recorded in {}, so the retry is accepted",
        path.parent().map(|p| p.display().to_string()).unwrap_or_default(),
        super::PULLED_FILE
    ));
    Err(err)
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
