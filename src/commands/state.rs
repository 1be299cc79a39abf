//! `platform state pull|push`: resolves the profile and directory, then hands over to
//! `github::state`, which owns the release-backed state logic; renders the outcome.
use super::Ctx;
use crate::cli::StateArgs;
use crate::config::profile::RuntimeProfile;
use crate::error::{Error, Result};
use crate::github::{self, GithubClient, GithubSettings, Purpose, StateAction, StateOutcome};
use crate::output::Report;
use std::path::PathBuf;

pub fn pull(ctx: &Ctx, args: &StateArgs) -> Result<Report> {
    let (client, dir) = prepare(ctx, args, Purpose::StatePull)?;
    let outcome = github::pull_state(&client, &dir)?;
    Ok(render("pull", &outcome))
}

pub fn push(ctx: &Ctx, args: &StateArgs) -> Result<Report> {
    let (client, dir) = prepare(ctx, args, Purpose::StatePush)?;
    let outcome = github::push_state(&client, &dir)?;
    Ok(render("push", &outcome))
}

/// The profile's `github:` block (required here), a client made for `purpose` (only a push
/// client may write, and only the state release) and the billing-state directory.
fn prepare(ctx: &Ctx, args: &StateArgs, purpose: Purpose) -> Result<(GithubClient, PathBuf)> {
    let profile = RuntimeProfile::load(ctx.repo(), args.runtime_profile.as_deref())?;
    let file = profile
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| crate::config::profile::DEFAULT_PROFILE.to_string());
    let Some(block) = profile.github.as_ref().filter(|v| !v.is_null()) else {
        let err = match &profile.path {
            Some(p) => Error::input(format!(
                "runtime profile {} has no github: block",
                p.display()
            ))
            .at(p.display().to_string()),
            None => Error::input(format!(
                "no runtime profile: {} does not exist and --runtime-profile was not given",
                crate::config::profile::DEFAULT_PROFILE
            )),
        };
        return Err(err.help(
            "state pull/push keep the billing state in a GitHub release: pass --runtime-profile F whose github: block names the repository (github: {repository: owner/name})",
        ));
    };
    let settings = GithubSettings::from_value(block, &file)?;
    let dir = profile.billing_state_dir(args.state.billing_state_dir.as_deref());
    let client = GithubClient::from_env(&settings, purpose)?;
    Ok((client, dir))
}

fn render(verb: &str, o: &StateOutcome) -> Report {
    let mut text = String::new();
    let release = match o.release_id {
        Some(id) => format!("release '{}' (id {id})", o.tag),
        None => format!("release '{}'", o.tag),
    };
    let head = match verb {
        "pull" if o.release_missing => format!(
            "state pull: {} has no {release} yet: starting with an empty ledger in {}\n",
            o.repository,
            o.dir.display()
        ),
        "pull" => format!(
            "state pull: {} {release} -> {}\n",
            o.repository,
            o.dir.display()
        ),
        _ if o.release_created => format!(
            "state push: {} -> {} {release} (created as a draft)\n",
            o.dir.display(),
            o.repository
        ),
        _ => format!(
            "state push: {} -> {} {release}\n",
            o.dir.display(),
            o.repository
        ),
    };
    text.push_str(&head);
    for f in &o.files {
        let what = match (f.action, &f.head) {
            (StateAction::Downloaded, h) => format!("downloaded ({})", describe(h)),
            (StateAction::Uploaded, h) => format!("uploaded ({})", describe(h)),
            (StateAction::Unchanged, h) => format!("unchanged ({})", describe(h)),
            (StateAction::Absent, _) if verb == "pull" => {
                "not in the release: starts empty".to_string()
            }
            (StateAction::Absent, _) => "absent locally and remotely".to_string(),
        };
        text.push_str(&format!("  {:<16} {what}\n", f.name));
    }
    let json = serde_json::json!({
        "command": format!("state {verb}"),
        "repository": o.repository,
        "tag": o.tag,
        "release_id": o.release_id,
        "release_missing": o.release_missing,
        "release_created": o.release_created,
        "billing_state_dir": o.dir.display().to_string(),
        "files": o.files,
    });
    Report::new(text, json)
}

fn describe(h: &github::Head) -> String {
    match h {
        github::Head::Absent => "absent".to_string(),
        github::Head::Present { bytes, sha256, .. } => {
            format!(
                "{bytes} bytes, sha256 {}",
                sha256.get(..12).unwrap_or(sha256)
            )
        }
    }
}
