//! `state pull|push` from the command's flags: the runtime profile's GitHub block, a client made for the one purpose, the billing-state directory, the trusted keys, the signing key and the audited actor; then `crate::github::state` does the transfer.
use crate::config::iam::resolve_actor;
use crate::config::ledger::{signer_from_env, LedgerConfig};
use crate::config::profile::{RuntimeProfile, DEFAULT_PROFILE};
use crate::error::{Error, Result};
use crate::github::StateOutcome;
use crate::github::{self, GithubClient, GithubSettings, PullOptions, Purpose, PushOptions};
use std::path::{Path, PathBuf};

/// Which way the state goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Pull,
    Push,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Pull => "pull",
            Direction::Push => "push",
        }
    }
}

/// A pull or push as the command line asks for it.
#[derive(Debug, Clone, Copy, Default)]
pub struct StateRequest<'a> {
    pub runtime_profile: Option<&'a Path>,
    pub billing_state_dir: Option<&'a Path>,
    /// `--actor`, else `$GITHUB_ACTOR`: needed only by the audited operations.
    pub actor: Option<&'a str>,
    /// Pull: `--adopt-unsigned`; push: `--restore` (both audited).
    pub audited: bool,
    /// Push: `--discard-unverified` (with `--restore`).
    pub discard_unverified: bool,
}

/// Pull or push the billing state of the profile's repository.
pub fn sync(repo: &Path, direction: Direction, req: &StateRequest<'_>) -> Result<StateOutcome> {
    let trust = LedgerConfig::load_strict(repo)?;
    match direction {
        Direction::Pull => {
            let opts = PullOptions {
                adopt_unsigned_by: audited_actor(req)?,
            };
            let (client, dir) = prepare(repo, req, Purpose::StatePull)?;
            github::pull_state(&client, &dir, &trust.signing_keys, &opts)
        }
        Direction::Push => {
            let opts = PushOptions {
                signer: signer_from_env()?,
                restore_by: audited_actor(req)?,
                discard_unverified: req.discard_unverified,
            };
            let (client, dir) = prepare(repo, req, Purpose::StatePush)?;
            github::push_state(&client, &dir, &trust.signing_keys, &opts)
        }
    }
}

/// The actor of an audited operation, when one is asked for.
fn audited_actor(req: &StateRequest<'_>) -> Result<Option<String>> {
    if req.audited {
        resolve_actor(req.actor).map(Some)
    } else {
        Ok(None)
    }
}

/// The profile's `github:` block (required here), a client made for `purpose` (only a push
/// client may write, and only the state release) and the billing-state directory.
fn prepare(
    repo: &Path,
    req: &StateRequest<'_>,
    purpose: Purpose,
) -> Result<(GithubClient, PathBuf)> {
    let profile = RuntimeProfile::load(repo, req.runtime_profile)?;
    let Some(block) = profile.github.as_ref().filter(|v| !v.is_null()) else {
        return Err(no_github_block(&profile));
    };
    let file = profile
        .path
        .as_ref()
        .map_or_else(|| DEFAULT_PROFILE.to_string(), |p| p.display().to_string());
    let settings = GithubSettings::from_value(block, &file)?;
    let dir = crate::dirs::billing_state_of(repo, Some(&profile), req.billing_state_dir);
    let client = GithubClient::from_env(&settings, purpose)?;
    Ok((client, dir))
}

fn no_github_block(profile: &RuntimeProfile) -> Error {
    let err = match &profile.path {
        Some(p) => Error::input(format!(
            "runtime profile {} has no github: block",
            p.display()
        ))
        .at(p.display().to_string()),
        None => Error::input(format!(
            "no runtime profile: {DEFAULT_PROFILE} does not exist and --runtime-profile was not given"
        )),
    };
    err.help(
        "state pull/push keep the billing state in a GitHub release: pass --runtime-profile F whose github: block names the repository (github: {repository: owner/name})",
    )
}
