//! `platform state pull|push`: resolves the profile, directory, trusted keys, signing key and actor, then hands over to `github::state`, which owns the release-backed state logic; renders the outcome.
use super::Ctx;
use crate::cli::{StateArgs, StatePullArgs, StatePushArgs};
use crate::config::iam::resolve_actor;
use crate::config::ledger::{signer_from_env, LedgerConfig};
use crate::config::profile::RuntimeProfile;
use crate::error::{Error, Result};
use crate::github::{
    self, GithubClient, GithubSettings, PullOptions, Purpose, PushOptions, Signing, StateAction,
    StateOutcome,
};
use crate::output::Report;
use std::path::PathBuf;

pub fn pull(ctx: &Ctx, args: &StatePullArgs) -> Result<Report> {
    let trust = LedgerConfig::load_strict(ctx.repo())?;
    let opts = PullOptions {
        adopt_unsigned_by: actor_if(args.adopt_unsigned, &args.common)?,
    };
    let (client, dir) = prepare(ctx, &args.common, Purpose::StatePull)?;
    let outcome = github::pull_state(&client, &dir, &trust.signing_keys, &opts)?;
    Ok(render("pull", &outcome))
}

pub fn push(ctx: &Ctx, args: &StatePushArgs) -> Result<Report> {
    let trust = LedgerConfig::load_strict(ctx.repo())?;
    let opts = PushOptions {
        signer: signer_from_env()?,
        restore_by: actor_if(args.restore, &args.common)?,
    };
    let (client, dir) = prepare(ctx, &args.common, Purpose::StatePush)?;
    let outcome = github::push_state(&client, &dir, &trust.signing_keys, &opts)?;
    Ok(render("push", &outcome))
}

/// The actor of an audited operation (`--actor`, else `$GITHUB_ACTOR`), when it is asked for.
fn actor_if(asked: bool, args: &StateArgs) -> Result<Option<String>> {
    if asked {
        resolve_actor(args.actor.as_deref()).map(Some)
    } else {
        Ok(None)
    }
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
    let mut text = headline(verb, o);
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
    text.push_str(&signing_line(verb, o));
    if let Some(why) = &o.restored {
        text.push_str(&format!("  restored: {why}\n"));
    }
    if let Some(key) = &o.audit_key {
        text.push_str(&format!("  audited: {key} (audit.jsonl)\n"));
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
        "signing": o.signing,
        "heads_uploaded": o.heads_uploaded,
        "restored": o.restored,
        "audit_key": o.audit_key,
    });
    Report::new(text, json)
}

fn headline(verb: &str, o: &StateOutcome) -> String {
    let release = match o.release_id {
        Some(id) => format!("release '{}' (id {id})", o.tag),
        None => format!("release '{}'", o.tag),
    };
    let dir = o.dir.display();
    match verb {
        "pull" if o.release_missing => format!(
            "state pull: {} has no {release} yet: starting with an empty ledger in {dir}\n",
            o.repository
        ),
        "pull" => format!("state pull: {} {release} -> {dir}\n", o.repository),
        _ if o.release_created => format!(
            "state push: {dir} -> {} {release} (created as a draft)\n",
            o.repository
        ),
        _ => format!("state push: {dir} -> {} {release}\n", o.repository),
    }
}

/// One line on what was verified or signed; each says what to do when something is left.
fn signing_line(verb: &str, o: &StateOutcome) -> String {
    let seqs = |files: &std::collections::BTreeMap<String, u64>| {
        files
            .iter()
            .map(|(f, n)| format!("{f} +{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &o.signing {
        Signing::NotConfigured => "  heads            not signed (config/ledger.yml lists no signing key); chains verified\n".into(),
        Signing::Empty => "  heads            none yet (the release holds no state)\n".into(),
        Signing::Signed { key_id, signed_at, files } => {
            let at: Vec<String> = files.iter().map(|(f, h)| format!("{f} seq {}", h.seq)).collect();
            let how = match (verb, o.heads_uploaded) {
                ("pull", _) => "verified",
                (_, true) => "signed and uploaded",
                _ => "already current",
            };
            format!("  heads.json       {how}: key {key_id}, signed at {signed_at}; {}\n", at.join(", "))
        }
        Signing::AdoptedUnsigned { had_heads: false, past_signed_head } => format!(
            "  heads            ADOPTED unsigned state ({}): `platform state push` signs it\n",
            seqs(past_signed_head)
        ),
        Signing::AdoptedUnsigned { past_signed_head, .. } => format!(
            "  heads            ADOPTED records past the signed heads ({}): `platform state push` signs them\n",
            seqs(past_signed_head)
        ),
        Signing::UnfinishedPush { past_signed_head } => format!(
            "  heads            the release is past its signed heads by this directory's own interrupted push ({}); nothing changed: run `platform state push` to finish it\n",
            seqs(past_signed_head)
        ),
    }
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
