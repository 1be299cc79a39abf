//! `platform state pull|push`: flags to `crate::state_sync` (profile, client, directory, keys, audited actor; then `github::state`); renders the outcome.
use super::Ctx;
use crate::cli::{StateArgs, StatePullArgs, StatePushArgs};
use crate::error::Result;
use crate::github::{self, Signing, StateAction, StateFile, StateOutcome};
use crate::output::{Report, View};
use crate::state_sync::{sync, Direction, StateRequest};
use serde::Serialize;
use std::collections::BTreeMap;

pub fn pull(ctx: &Ctx, args: &StatePullArgs) -> Result<Report> {
    let req = request(&args.common, args.adopt_unsigned);
    run(ctx, Direction::Pull, &req)
}

pub fn push(ctx: &Ctx, args: &StatePushArgs) -> Result<Report> {
    let req = StateRequest {
        discard_unverified: args.discard_unverified,
        ..request(&args.common, args.restore)
    };
    run(ctx, Direction::Push, &req)
}

fn request(args: &StateArgs, audited: bool) -> StateRequest<'_> {
    StateRequest {
        runtime_profile: args.runtime_profile.as_deref(),
        billing_state_dir: args.state.billing_state_dir.as_deref(),
        actor: args.actor.as_deref(),
        audited,
        discard_unverified: false,
    }
}

fn run(ctx: &Ctx, direction: Direction, req: &StateRequest<'_>) -> Result<Report> {
    let outcome = sync(ctx.repo(), direction, req)?;
    Ok(Report::of(&Rendered::new(direction, &outcome)))
}

/// The `--json` document of a pull or push, and the outcome every view renders from.
#[derive(Serialize)]
struct Rendered<'a> {
    command: String,
    repository: &'a str,
    tag: &'a str,
    release_id: Option<u64>,
    release_missing: bool,
    release_created: bool,
    billing_state_dir: String,
    files: &'a [StateFile],
    signing: &'a Signing,
    heads_uploaded: bool,
    restored: &'a Option<String>,
    audit_key: &'a Option<String>,
    /// The notes printed on stderr: an interrupted pull finished, temp files removed.
    notes: &'a [String],
    #[serde(skip)]
    direction: Direction,
    #[serde(skip)]
    outcome: &'a StateOutcome,
}

impl<'a> Rendered<'a> {
    fn new(direction: Direction, o: &'a StateOutcome) -> Self {
        Rendered {
            command: format!("state {}", direction.as_str()),
            repository: &o.repository,
            tag: &o.tag,
            release_id: o.release_id,
            release_missing: o.release_missing,
            release_created: o.release_created,
            billing_state_dir: o.dir.display().to_string(),
            files: &o.files,
            signing: &o.signing,
            heads_uploaded: o.heads_uploaded,
            restored: &o.restored,
            audit_key: &o.audit_key,
            notes: &o.notes,
            direction,
            outcome: o,
        }
    }
}

impl View for Rendered<'_> {
    fn notes(&self) -> Vec<String> {
        self.notes.to_vec()
    }

    fn text(&self) -> String {
        let o = self.outcome;
        let mut text = headline(self.direction, o);
        for f in &o.files {
            let what = match (f.action, self.direction) {
                (StateAction::Downloaded, _) => format!("downloaded ({})", describe(&f.head)),
                (StateAction::Uploaded, _) => format!("uploaded ({})", describe(&f.head)),
                (StateAction::Unchanged, _) => format!("unchanged ({})", describe(&f.head)),
                (StateAction::Absent, Direction::Pull) => {
                    "not in the release: starts empty".to_string()
                }
                (StateAction::Absent, Direction::Push) => "absent locally and remotely".to_string(),
            };
            text.push_str(&format!("  {:<16} {what}\n", f.name));
        }
        text.push_str(&signing_line(self.direction, o));
        if let Some(why) = &o.restored {
            text.push_str(&format!("  restored: {why}\n"));
        }
        if let Some(key) = &o.audit_key {
            text.push_str(&format!("  audited: {key} (audit.jsonl)\n"));
        }
        text
    }
}

fn headline(direction: Direction, o: &StateOutcome) -> String {
    let release = match o.release_id {
        Some(id) => format!("release '{}' (id {id})", o.tag),
        None => format!("release '{}'", o.tag),
    };
    let (dir, repository) = (o.dir.display(), &o.repository);
    match direction {
        Direction::Pull if o.release_missing => format!(
            "state pull: {repository} has no {release} yet: starting with an empty ledger in {dir}\n"
        ),
        Direction::Pull => format!("state pull: {repository} {release} -> {dir}\n"),
        Direction::Push if o.release_created => {
            format!("state push: {dir} -> {repository} {release} (created as a draft)\n")
        }
        Direction::Push => format!("state push: {dir} -> {repository} {release}\n"),
    }
}

/// One line on what was verified or signed; each says what to do when something is left.
fn signing_line(direction: Direction, o: &StateOutcome) -> String {
    let seqs = |files: &BTreeMap<String, u64>| {
        let parts: Vec<String> = files.iter().map(|(f, n)| format!("{f} +{n}")).collect();
        parts.join(", ")
    };
    match &o.signing {
        Signing::NotConfigured => "  heads            not signed (config/ledger.yml lists no signing key); chains verified\n".into(),
        Signing::Empty => "  heads            none yet (the release holds no state)\n".into(),
        Signing::Signed { key_id, signed_at, files } => {
            let at: Vec<String> = files.iter().map(|(f, h)| format!("{f} seq {}", h.seq)).collect();
            let how = match (direction, o.heads_uploaded) {
                (Direction::Pull, _) => "verified",
                (Direction::Push, true) => "signed and uploaded",
                (Direction::Push, false) => "already current",
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
