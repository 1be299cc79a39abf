//! Release-backed billing state (SPEC §5): pull the ledger files from the draft release
//! `state_tag`, push them back only when the remote head is still the one that was pulled.
use super::client::{Asset, GithubClient, Release};
use crate::digest::hex;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The files that persist between CI runs (SPEC §4); nothing else is pulled or pushed.
pub const STATE_FILES: [&str; 3] = ["billing.jsonl", "evidence.jsonl", "audit.jsonl"];

/// Written into the billing-state directory by `pull` and `push`: what the remote held.
pub const PULLED_FILE: &str = ".state-pulled.json";

/// The "head" of a ledger file: enough to tell whether anyone appended since.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Head {
    Absent,
    Present {
        bytes: u64,
        sha256: String,
        /// SHA-256 of the last line without its newline: which record the file ends with.
        last_line_sha256: String,
    },
}

impl Head {
    /// Length and SHA-256, or None when absent: what "same content" compares.
    fn content(&self) -> Option<(u64, &str)> {
        match self {
            Head::Absent => None,
            Head::Present { bytes, sha256, .. } => Some((*bytes, sha256.as_str())),
        }
    }
    /// Same bytes (length and SHA-256), or both absent; an unfinished upload never matches.
    fn same_as(&self, remote: &RemoteHead) -> bool {
        match remote {
            RemoteHead::Absent => self.content().is_none(),
            RemoteHead::Present { bytes, sha256, .. } => {
                self.content() == Some((*bytes, sha256.as_str()))
            }
            RemoteHead::Incomplete(_) => false,
        }
    }
    fn same_content(&self, other: &Head) -> bool {
        self.content() == other.content()
    }
    fn describe(&self) -> String {
        match self {
            Head::Absent => "absent".to_string(),
            Head::Present { bytes, sha256, .. } => {
                format!("{bytes} bytes, sha256 {}", short(sha256))
            }
        }
    }
}

/// `.state-pulled.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PulledState {
    pub repository: String,
    pub tag: String,
    /// None when the state release did not exist at pull time.
    pub release_id: Option<u64>,
    /// SHA-256 of each asset that was on the release.
    pub assets: BTreeMap<String, String>,
    /// The head of each state file as the remote held it (absent included).
    pub heads: BTreeMap<String, Head>,
    /// Heads of a push that started and has not been confirmed: a retry after a failed push
    /// accepts the remote holding these (our own half-finished upload) as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_push: Option<BTreeMap<String, Head>>,
}

/// What happened to one state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateAction {
    /// Pulled from the release.
    Downloaded,
    /// Local copy already identical to the remote.
    Unchanged,
    /// Not on the release (pull: the ledger starts without it; push: nothing local either).
    Absent,
    /// Pushed to the release.
    Uploaded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateFile {
    pub name: String,
    pub action: StateAction,
    pub head: Head,
}

/// The outcome of a pull or a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateOutcome {
    pub repository: String,
    pub tag: String,
    pub release_id: Option<u64>,
    /// Pull: the release did not exist (start empty). Push: it was created.
    pub release_missing: bool,
    pub release_created: bool,
    pub dir: PathBuf,
    pub files: Vec<StateFile>,
}

/// What the release holds for one state file.
#[derive(Debug, Clone)]
enum RemoteHead {
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
    fn describe(&self) -> String {
        match self {
            RemoteHead::Absent => "absent".to_string(),
            RemoteHead::Present { bytes, sha256, .. } => {
                format!("{bytes} bytes, sha256 {}", short(sha256))
            }
            RemoteHead::Incomplete(a) => format!("an incomplete upload (state {})", a.state),
        }
    }
}

/// Pull the state files into `dir`. Files missing remotely stay missing (the ledger starts
/// empty); a local file with records the release lacks is never overwritten.
pub fn pull_state(client: &GithubClient, dir: &Path) -> Result<StateOutcome> {
    let tag = client.settings().state_tag.clone();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, &e))?;
    let previous = read_pulled(dir, client)?;
    let release = client.find_release(&tag)?;
    let assets = match &release {
        Some(r) => client.list_assets(r)?,
        None => Vec::new(),
    };

    // Decide every file before writing anything, so a refusal leaves the directory as it was.
    let mut plan: Vec<(&str, Option<Asset>, Head)> = Vec::new();
    let mut refusals = Vec::new();
    for name in STATE_FILES {
        let remote = remote_head_full(client, release.as_ref(), &assets, name)?;
        let local = head_of_file(&dir.join(name))?;
        if let RemoteHead::Incomplete(a) = &remote {
            return Err(Error::failure(format!(
                "the state release '{tag}' of {} holds an incomplete {name} (state {}): a push failed midway",
                client.repository(),
                a.state
            ))
            .help("re-run `platform state push` where that push failed; or, if that copy is lost, delete the asset on GitHub and push the most recent complete copy"));
        }
        let remote_asset = match &remote {
            RemoteHead::Present { asset, .. } => Some(asset.clone()),
            _ => None,
        };
        if local.same_as(&remote) {
            plan.push((name, None, local));
            continue;
        }
        let pulled_before = previous
            .as_ref()
            .and_then(|p| p.heads.get(name))
            .is_some_and(|h| h.same_content(&local));
        let local_is_safe = matches!(local, Head::Absent) || pulled_before;
        if !local_is_safe || remote_asset.is_none() {
            refusals.push(format!(
                "{name} (local: {}; remote: {})",
                local.describe(),
                remote.describe()
            ));
            continue;
        }
        plan.push((name, remote_asset, local));
    }
    if !refusals.is_empty() {
        return Err(Error::failure(format!(
            "state pull into {} would overwrite local records that are not in the state release '{tag}' of {}: {}",
            dir.display(),
            client.repository(),
            refusals.join("; ")
        ))
        .help(format!(
            "push them first (`platform state push`); or pull into an empty directory and merge: `platform state pull --billing-state-dir <fresh>` then `platform ledger merge --into <fresh> {}`",
            dir.display()
        )));
    }

    // Download into temporary names first; only when all arrived are they renamed into place.
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut files = Vec::new();
    let release_ref = release.as_ref();
    for (name, asset, local) in &plan {
        match (asset, release_ref) {
            (Some(asset), Some(r)) => {
                let tmp = dir.join(format!(".{name}.pulling"));
                if let Err(e) = client.download_asset(r, asset, &tmp) {
                    for (t, _) in &staged {
                        let _ = std::fs::remove_file(t);
                    }
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
                staged.push((tmp, dir.join(name)));
                files.push((name.to_string(), StateAction::Downloaded));
            }
            _ => {
                let action = if matches!(local, Head::Absent) {
                    StateAction::Absent
                } else {
                    StateAction::Unchanged
                };
                files.push((name.to_string(), action));
            }
        }
    }
    for (tmp, dest) in &staged {
        std::fs::rename(tmp, dest).map_err(|e| Error::io(dest, &e))?;
    }

    let mut heads = BTreeMap::new();
    let mut report = Vec::new();
    for (name, action) in files {
        let head = head_of_file(&dir.join(&name))?;
        heads.insert(name.clone(), head.clone());
        report.push(StateFile { name, action, head });
    }
    let record = PulledState {
        repository: client.repository().to_string(),
        tag: tag.clone(),
        release_id: release.as_ref().map(|r| r.id),
        assets: asset_digests(&heads),
        heads,
        pending_push: None,
    };
    write_pulled(dir, &record)?;
    Ok(StateOutcome {
        repository: client.repository().to_string(),
        tag,
        release_id: release.as_ref().map(|r| r.id),
        release_missing: release.is_none(),
        release_created: false,
        dir: dir.to_path_buf(),
        files: report,
    })
}

/// Push the state files from `dir`. Refused (exit 1, nothing written remotely) when the
/// release's files are not the ones recorded by the last pull (or push) from `dir`.
pub fn push_state(client: &GithubClient, dir: &Path) -> Result<StateOutcome> {
    let tag = client.settings().state_tag.clone();
    if !dir.is_dir() {
        return Err(Error::input(format!(
            "billing-state directory {} does not exist",
            dir.display()
        ))
        .help("pass --billing-state-dir, or run `platform state pull` first"));
    }
    let previous = read_pulled(dir, client)?;
    let release = client.find_release(&tag)?;
    if let Some(r) = release.as_ref().filter(|r| !r.draft) {
        return Err(Error::failure(format!(
            "the state release '{tag}' of {} is published; its assets cannot be replaced (published releases are immutable)",
            client.repository()
        ))
        .help(format!(
            "state lives in a draft release: use a new github.state_tag, or turn release {} back into a draft on GitHub if immutable releases are off",
            r.html_url
        )));
    }
    let assets = match &release {
        Some(r) => client.list_assets(r)?,
        None => Vec::new(),
    };

    let mut remote = BTreeMap::new();
    for name in STATE_FILES {
        remote.insert(
            name,
            remote_head_full(client, release.as_ref(), &assets, name)?,
        );
    }
    check_unchanged_since_pull(client, &tag, dir, previous.as_ref(), &remote)?;

    let mut local = BTreeMap::new();
    for name in STATE_FILES {
        let head = head_of_file(&dir.join(name))?;
        if matches!(head, Head::Absent) && !matches!(remote[name], RemoteHead::Absent) {
            return Err(Error::input(format!(
                "{} is missing locally but the state release '{tag}' of {} holds it",
                dir.join(name).display(),
                client.repository()
            ))
            .help("the ledger is append-only: pull again (`platform state pull`) instead of deleting files"));
        }
        local.insert(name, head);
    }

    // Remember what we are about to upload, so a retry after a failure midway is accepted.
    let mut record = previous.unwrap_or_else(|| PulledState {
        repository: client.repository().to_string(),
        tag: tag.clone(),
        release_id: release.as_ref().map(|r| r.id),
        assets: BTreeMap::new(),
        heads: STATE_FILES
            .iter()
            .map(|n| (n.to_string(), Head::Absent))
            .collect(),
        pending_push: None,
    });
    record.pending_push = Some(
        local
            .iter()
            .map(|(n, h)| (n.to_string(), h.clone()))
            .collect(),
    );
    write_pulled(dir, &record)?;

    let needs_upload = |name: &str| !local[name].same_as(&remote[name]);
    let created = release.is_none() && STATE_FILES.iter().any(|n| needs_upload(n));
    let release = match release {
        Some(r) => Some(r),
        None if created => Some(client.create_draft_release(&tag)?),
        None => None,
    };
    let mut report = Vec::new();
    for name in STATE_FILES {
        let head = local[name].clone();
        let action = match (&release, needs_upload(name)) {
            (Some(release), true) => {
                for stale in assets.iter().filter(|a| a.name == name) {
                    client.delete_asset(release, stale)?;
                }
                upload_state_file(client, release, name, &dir.join(name), &head)?;
                StateAction::Uploaded
            }
            _ if matches!(head, Head::Absent) => StateAction::Absent,
            _ => StateAction::Unchanged,
        };
        report.push(StateFile {
            name: name.to_string(),
            action,
            head,
        });
    }
    if let Some(r) = &release {
        verify_pushed(client, r, &local)?;
    }

    record.release_id = release.as_ref().map(|r| r.id);
    record.heads = local
        .iter()
        .map(|(n, h)| (n.to_string(), h.clone()))
        .collect();
    record.assets = asset_digests(&record.heads);
    record.pending_push = None;
    write_pulled(dir, &record)?;
    Ok(StateOutcome {
        repository: client.repository().to_string(),
        tag,
        release_id: release.as_ref().map(|r| r.id),
        release_missing: release.is_none(),
        release_created: created,
        dir: dir.to_path_buf(),
        files: report,
    })
}

fn check_unchanged_since_pull(
    client: &GithubClient,
    tag: &str,
    dir: &Path,
    previous: Option<&PulledState>,
    remote: &BTreeMap<&str, RemoteHead>,
) -> Result<()> {
    let mut moved = Vec::new();
    for name in STATE_FILES {
        let now = &remote[name];
        let ok = match previous {
            // Without a pull, only an empty remote may be written: anything else would be lost.
            None => matches!(now, RemoteHead::Absent),
            Some(p) => {
                let pulled = p.heads.get(name).cloned().unwrap_or(Head::Absent);
                let pending = p.pending_push.as_ref().and_then(|m| m.get(name));
                pulled.same_as(now)
                    || pending
                        .is_some_and(|h| h.same_as(now) || matches!(now, RemoteHead::Incomplete(_)))
            }
        };
        if !ok {
            let was = match previous {
                None => "no pull recorded".to_string(),
                Some(p) => format!(
                    "pulled {}",
                    p.heads
                        .get(name)
                        .cloned()
                        .unwrap_or(Head::Absent)
                        .describe()
                ),
            };
            moved.push(format!("{name} ({was}; now {})", now.describe()));
        }
    }
    if moved.is_empty() {
        return Ok(());
    }
    let why = if previous.is_none() {
        format!(
            "{} has no {PULLED_FILE} (no pull was made into it) and the state release is not empty",
            dir.display()
        )
    } else {
        "someone pushed since your pull".to_string()
    };
    Err(Error::failure(format!(
        "state push refused: {why}: the state release '{tag}' of {} changed: {}; nothing was uploaded",
        client.repository(),
        moved.join("; ")
    ))
    .help(format!(
        "pull into a fresh directory (`platform state pull --billing-state-dir <fresh>`), merge your records with `platform ledger merge --into <fresh> {}`, then push again from <fresh>",
        dir.display()
    )))
}

/// Upload one state file; a failed POST is checked against a fresh listing, never re-sent.
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
        let landed = after.iter().any(|a| {
            a.name == name
                && a.is_uploaded()
                && a.size == *bytes
                && a.sha256().is_none_or(|d| d == sha256)
        });
        if landed {
            return Ok(());
        }
        for leftover in after.iter().filter(|a| a.name == name && !a.is_uploaded()) {
            let _ = client.delete_asset(release, leftover);
        }
    }
    let mut err = err;
    err.help = Some(format!(
        "the state release stays a draft; re-run `platform state push` from {}: the interrupted push is recorded in {PULLED_FILE}, so the retry is accepted",
        path.parent().map(|p| p.display().to_string()).unwrap_or_default()
    ));
    Err(err)
}

fn verify_pushed(
    client: &GithubClient,
    release: &Release,
    local: &BTreeMap<&str, Head>,
) -> Result<()> {
    let assets = client.list_assets(release)?;
    let mut problems = Vec::new();
    for (name, head) in local {
        if let Head::Present { bytes, sha256, .. } = head {
            let ok = assets.iter().any(|a| {
                a.name == *name
                    && a.is_uploaded()
                    && a.size == *bytes
                    && a.sha256().is_none_or(|d| d == sha256)
            });
            if !ok {
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

fn asset_digests(heads: &BTreeMap<String, Head>) -> BTreeMap<String, String> {
    heads
        .iter()
        .filter_map(|(n, h)| match h {
            Head::Present { sha256, .. } => Some((n.clone(), sha256.clone())),
            Head::Absent => None,
        })
        .collect()
}

/// Length, SHA-256 and last-line SHA-256 of a file, streamed; `Absent` when it does not exist.
pub fn head_of_file(path: &Path) -> Result<Head> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Head::Absent),
        Err(e) => return Err(Error::io(path, &e)),
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    // Lines are kept only until the next newline, so memory is bounded by the longest line.
    let mut current: Vec<u8> = Vec::new();
    let mut last_complete: Vec<u8> = Vec::new();
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, &e))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        hasher.update(chunk);
        bytes += n as u64;
        let mut parts = chunk.split(|b| *b == b'\n').peekable();
        while let Some(part) = parts.next() {
            current.extend_from_slice(part);
            if parts.peek().is_some() {
                last_complete = std::mem::take(&mut current);
            }
        }
    }
    // A file whose last line lacks its newline (a torn write) ends with that fragment.
    let last = if current.is_empty() {
        last_complete
    } else {
        current
    };
    Ok(Head::Present {
        bytes,
        sha256: hex(&hasher.finalize()),
        last_line_sha256: hex(&Sha256::digest(&last)),
    })
}

fn read_pulled(dir: &Path, client: &GithubClient) -> Result<Option<PulledState>> {
    let path = dir.join(PULLED_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, &e)),
    };
    let state: PulledState = serde_json::from_str(&text).map_err(|e| {
        Error::input(format!(
            "{} is not a valid pull record: {e}",
            path.display()
        ))
        .at(path.display().to_string())
        .help("delete it and run `platform state pull` into an empty directory")
    })?;
    let tag = &client.settings().state_tag;
    if state.repository != client.repository() || &state.tag != tag {
        return Err(Error::input(format!(
            "{} records a pull from {} release '{}', but the profile names {} release '{tag}'",
            path.display(),
            state.repository,
            state.tag,
            client.repository()
        ))
        .at(path.display().to_string())
        .help("use a billing-state directory pulled with this profile"));
    }
    Ok(Some(state))
}

fn write_pulled(dir: &Path, state: &PulledState) -> Result<()> {
    let path = dir.join(PULLED_FILE);
    let mut text = serde_json::to_string_pretty(state)
        .map_err(|e| Error::failure(format!("cannot encode {}: {e}", path.display())))?;
    text.push('\n');
    // Written beside and renamed, so a crash never leaves a half-written record.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, &e))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(|e| Error::io(&path, &e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(&path, &e))?;
    tmp.persist(&path).map_err(|e| Error::io(&path, &e.error))?;
    Ok(())
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::digest::sha256_hex;

    #[test]
    fn heads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.jsonl");
        assert_eq!(head_of_file(&p).unwrap(), Head::Absent);
        std::fs::write(&p, b"{\"a\":1}\n{\"b\":2}\n").unwrap();
        match head_of_file(&p).unwrap() {
            Head::Present {
                bytes,
                sha256,
                last_line_sha256,
            } => {
                assert_eq!(bytes, 16);
                assert_eq!(sha256, sha256_hex(b"{\"a\":1}\n{\"b\":2}\n"));
                assert_eq!(last_line_sha256, sha256_hex(b"{\"b\":2}"));
            }
            Head::Absent => panic!("present"),
        }
        std::fs::write(&p, b"x\ntorn").unwrap();
        match head_of_file(&p).unwrap() {
            Head::Present {
                last_line_sha256, ..
            } => assert_eq!(last_line_sha256, sha256_hex(b"torn")),
            Head::Absent => panic!("present"),
        }
        let json = serde_json::to_string(&Head::Absent).unwrap();
        assert_eq!(json, r#"{"state":"absent"}"#);
    }
}
