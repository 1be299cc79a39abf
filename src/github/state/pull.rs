//! `state pull`: download the state files into a staging folder, accept them only when they verify (signed heads when config/ledger.yml lists keys), then move them into place; a refusal leaves the directory as it was.
use super::record::{
    asset_digests, extends, head_of_file, read_pulled, write_pulled, Head, PulledState,
};
use super::remote::Snapshot;
use super::{
    audit, lock_ledger, seq_label, Signing, StateAction, StateFile, StateOutcome, STATE_FILES,
};
use crate::audit::Action;
use crate::error::{Error, Kind, Result};
use crate::github::client::{Asset, GithubClient};
use crate::heads::{self, Expected, RemoteState, TrustedKey, HEADS_FILE};
use crate::ledger::LEDGER_LOCK;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// How far `state pull` may go beyond verified signed state.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `--adopt-unsigned`, by this actor: accept records no listed key signed (audited).
    pub adopt_unsigned_by: Option<String>,
}

/// One state file: download it, or keep the local copy (already the remote's bytes).
struct Planned {
    name: &'static str,
    download: Option<Asset>,
    local: Head,
}

/// What the verification decided.
enum Verdict {
    /// Move the staged files into place, then write (or remove) heads.json.
    Accept {
        signing: Signing,
        heads_json: Option<Vec<u8>>,
        /// The audit record's target and reason (adopting unsigned records).
        audit: Option<(String, String)>,
    },
    /// This directory's own interrupted push: change nothing, the next push completes it.
    KeepLocal { signing: Signing },
}

/// Pull the state files into `dir`. Files missing remotely stay missing (the ledger starts
/// empty); a local file with records the release lacks is never overwritten; nothing is
/// written unless the whole release verifies.
pub fn pull_state(
    client: &GithubClient,
    dir: &Path,
    trust: &[TrustedKey],
    opts: &PullOptions,
) -> Result<StateOutcome> {
    let existed = dir.exists();
    crate::folder::create(dir, "billing-state directory")?;
    let result = pull_into(client, dir, trust, opts);
    if result.is_err() && !existed {
        remove_created(dir);
    }
    result
}

/// Remove the directory this pull created, only while nothing but the lock file the pull
/// took is in it. That lock file goes with it: nobody else had the directory to lock it
/// (elsewhere a lock file is never deleted: ledger/lock.rs).
fn remove_created(dir: &Path) {
    let only_the_lock = std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .all(|e| e.file_name() == std::ffi::OsStr::new(LEDGER_LOCK))
    });
    if only_the_lock {
        let _ = std::fs::remove_file(dir.join(LEDGER_LOCK));
    }
    let _ = std::fs::remove_dir(dir);
}

fn pull_into(
    client: &GithubClient,
    dir: &Path,
    trust: &[TrustedKey],
    opts: &PullOptions,
) -> Result<StateOutcome> {
    // From reading what was pulled before to recording this pull: see `lock_ledger`.
    let lock = lock_ledger(dir)?;
    let notes = super::tidy(dir, true)?;
    let previous = read_pulled(dir, client)?;
    let snap = Snapshot::read(client, previous.as_ref().and_then(|p| p.release_id))?;
    if let Some((name, a)) = snap.incomplete() {
        return Err(Error::failure(format!(
            "the state release '{}' of {} holds an incomplete {name} (state {}): a push failed midway",
            snap.tag,
            client.repository(),
            a.state
        ))
        .help("re-run `platform state push` where that push failed; or, if that copy is lost, delete the asset on GitHub and push the most recent complete copy"));
    }
    let plan = plan(client, dir, previous.as_ref(), &snap)?;
    let staging = stage(client, dir, &snap, &plan)?;
    let verdict = extends_previous(dir, staging.path(), &plan, previous.as_ref())
        .and_then(|()| signed_seq_not_lower(client, trust, dir, &snap))
        .and_then(|()| {
            decide(
                client,
                trust,
                opts,
                staging.path(),
                &snap,
                &plan,
                previous.as_ref(),
            )
        })
        .map_err(|e| refused(client, dir, &notes, e))?;
    let (signing, audit_of, moved) = match verdict {
        Verdict::KeepLocal { signing } => {
            drop(staging);
            (signing, None, false)
        }
        Verdict::Accept {
            signing,
            heads_json,
            audit,
        } => {
            let accepted = Accepted {
                signing: &signing,
                heads_json: heads_json.as_deref(),
            };
            commit(client, dir, staging, &snap, &plan, accepted)?;
            (signing, audit, true)
        }
    };
    // The audit record's writer takes the lock itself.
    drop(lock);
    let audit_key = match (audit_of, &opts.adopt_unsigned_by) {
        (Some((target, reason)), Some(actor)) => {
            Some(audit(dir, Action::AdoptUnsigned, actor, target, &reason)?)
        }
        _ => None,
    };
    let mut done = outcome(client, dir, &snap, &plan, signing, audit_key, moved)?;
    done.notes = notes;
    Ok(done)
}

/// Decide every file before writing anything: a local file is replaced only when it holds
/// nothing the release lacks (absent, or unchanged since the last pull).
fn plan(
    client: &GithubClient,
    dir: &Path,
    previous: Option<&PulledState>,
    snap: &Snapshot,
) -> Result<Vec<Planned>> {
    let mut plan = Vec::new();
    let mut refusals = Vec::new();
    for name in STATE_FILES {
        let remote = &snap.files[name];
        let local = head_of_file(&dir.join(name))?;
        if remote.holds(&local) {
            plan.push(Planned {
                name,
                download: None,
                local,
            });
            continue;
        }
        let pulled_before = previous
            .and_then(|p| p.heads.get(name))
            .is_some_and(|h| h.same_content(&local));
        let local_is_safe = matches!(local, Head::Absent) || pulled_before;
        match remote.asset() {
            Some(asset) if local_is_safe => plan.push(Planned {
                name,
                download: Some(asset.clone()),
                local,
            }),
            _ => refusals.push(format!(
                "{name} (local: {}; remote: {})",
                local.describe(),
                remote.describe()
            )),
        }
    }
    if refusals.is_empty() {
        return Ok(plan);
    }
    Err(Error::failure(format!(
        "state pull into {} would overwrite local records that are not in the state release '{}' of {}: {}",
        dir.display(),
        snap.tag,
        client.repository(),
        refusals.join("; ")
    )).topic(crate::error::Topic::StateRefused)
    .help(format!(
        "push them first (`platform state push`); or pull into an empty directory and merge: `platform state pull --billing-state-dir <fresh>` then `platform ledger merge --into <fresh> {}`",
        dir.display()
    )))
}

/// The release's files side by side in a staging folder inside `dir` (removed when dropped):
/// downloads, and hard links (or copies) of local files that already hold the remote bytes.
fn stage(
    client: &GithubClient,
    dir: &Path,
    snap: &Snapshot,
    plan: &[Planned],
) -> Result<tempfile::TempDir> {
    let staging = tempfile::Builder::new()
        .prefix(super::PULL_TEMPS[0].prefix)
        .tempdir_in(dir)
        .map_err(|e| Error::io(dir, &e))?;
    for p in plan {
        let to = staging.path().join(p.name);
        match (&p.download, &snap.release) {
            (Some(asset), Some(release)) => {
                client.download_asset(release, asset, &to)?;
            }
            _ if matches!(p.local, Head::Present { .. }) => {
                let from = dir.join(p.name);
                if std::fs::hard_link(&from, &to).is_err() {
                    std::fs::copy(&from, &to).map_err(|e| Error::io(&from, &e))?;
                }
            }
            _ => {}
        }
    }
    Ok(staging)
}

/// A file is replaced only by one that starts with the bytes this directory last pulled or
/// pushed (`.state-pulled.json`): a release cut back, re-chained or rolled back to older
/// (even validly signed) state would otherwise silently take records that only this
/// directory may still hold, and the runs they paid for would be charged again.
fn extends_previous(
    dir: &Path,
    staging: &Path,
    plan: &[Planned],
    previous: Option<&PulledState>,
) -> Result<()> {
    let Some(previous) = previous else {
        return Ok(());
    };
    let mut shorter = Vec::new();
    for p in plan.iter().filter(|p| p.download.is_some()) {
        let Some(known) = previous.heads.get(p.name) else {
            continue;
        };
        let staged = staging.join(p.name);
        if !extends(&staged, known)? {
            shorter.push(format!(
                "{} (release: {}; last pulled or pushed here: {})",
                p.name,
                head_of_file(&staged)?.describe(),
                known.describe()
            ));
        }
    }
    if shorter.is_empty() {
        return Ok(());
    }
    Err(rolled_back(
        dir,
        format!(
            "the state release does not start with what this directory last pulled or pushed: {}; it was cut back, re-chained or rolled back, and taking it would drop those records",
            shorter.join("; ")
        ),
    ))
}

/// A release older than what `dir` holds: exit 1, and what to do.
fn rolled_back(dir: &Path, message: String) -> Error {
    Error::failure(message)
        .topic(crate::error::Topic::StateRefused)
        .help(format!(
            "inspect the release first (who replaced its assets, and when: their upload times on GitHub); to keep the records of {d}, pull into a fresh directory and merge it in (`platform state pull --billing-state-dir <fresh>`, `platform ledger merge --into <fresh> {d}`, then push from <fresh>), or with signing keys run `platform state push --restore` from {d}; to take the release as it is, pull into a fresh directory",
            d = dir.display()
        ))
}

/// With listed keys, the directory's own heads.json (when one verifies for this release) is
/// evidence of how far the state had got: a release signed at a lower `seq` for any file was
/// rolled back to older signed state. A release heads.json that does not verify is left to
/// `decide`, which refuses it.
fn signed_seq_not_lower(
    client: &GithubClient,
    trust: &[TrustedKey],
    dir: &Path,
    snap: &Snapshot,
) -> Result<()> {
    let expected = Expected {
        repository: client.repository(),
        state_tag: &snap.tag,
    };
    let release = match (&snap.heads_json, trust.is_empty()) {
        (Some(bytes), false) => match heads::check_signed(trust, bytes, expected) {
            Ok(signed) => signed.heads,
            Err(_) => return Ok(()),
        },
        _ => return Ok(()),
    };
    let Some(local) = local_heads(dir, trust, expected)? else {
        return Ok(());
    };
    let lower: Vec<String> = local
        .heads
        .files
        .iter()
        .filter_map(|(name, here)| {
            let there = release.files.get(name)?;
            (there.seq < here.seq).then(|| {
                format!(
                    "{name} (release signed at seq {}; this directory's heads.json at seq {})",
                    there.seq, here.seq
                )
            })
        })
        .collect();
    if lower.is_empty() {
        return Ok(());
    }
    Err(rolled_back(dir, format!(
        "the state release's heads.json (signed at {} by key {}) is older than this directory's {HEADS_FILE} (signed at {}): {}; the release was rolled back to older signed state, and taking it would drop those records",
        release.signed_at,
        release.key_id,
        local.heads.signed_at,
        lower.join("; ")
    )))
}

/// `dir`'s heads.json when it verifies with a listed key for this release; anything else
/// (none, unreadable, another key or release) is no evidence either way.
fn local_heads(
    dir: &Path,
    trust: &[TrustedKey],
    expected: Expected<'_>,
) -> Result<Option<heads::SignedHeads>> {
    let path = dir.join(HEADS_FILE);
    let Some(file) = crate::ledger::open_existing(&path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.take(heads::MAX_HEADS_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(&path, &e))?;
    Ok(heads::check_signed(trust, &bytes, expected).ok())
}

/// Verify the staged release: chains always; with listed keys, heads.json too.
fn decide(
    client: &GithubClient,
    trust: &[TrustedKey],
    opts: &PullOptions,
    staging: &Path,
    snap: &Snapshot,
    plan: &[Planned],
    previous: Option<&PulledState>,
) -> Result<Verdict> {
    if trust.is_empty() {
        heads::verify_chains(staging, "the state release")?;
        return Ok(accept(Signing::NotConfigured, None, None));
    }
    let expected = Expected {
        repository: client.repository(),
        state_tag: &snap.tag,
    };
    let heads_json = snap.heads_json.as_deref();
    let (state, report) = heads::judge(trust, staging, heads_json, expected)?;
    let seqs: BTreeMap<String, u64> = report
        .files
        .iter()
        .map(|f| (f.stream.file_name().to_string(), f.head_seq))
        .collect();
    let beyond = Beyond {
        target: format!("{}/{}/{}", client.repository(), snap.tag, seq_label(&seqs)),
        adopt: opts.adopt_unsigned_by.is_some(),
        // This directory's own push, interrupted before heads.json landed (the old heads, or
        // none while the new one replaced them): the local files are the release's files.
        own_push: plan.iter().all(|p| p.download.is_none())
            && previous.is_some_and(|p| p.pending_push.is_some()),
    };
    match state {
        RemoteState::Empty => Ok(accept(Signing::Empty, None, None)),
        RemoteState::Unsigned => unsigned(beyond, seqs),
        RemoteState::Signed { heads, standings } => {
            signed(beyond, &heads, heads::past_head(&standings), snap)
        }
    }
}

/// What may be accepted beyond verified signed state, and the audit target if it is.
struct Beyond {
    target: String,
    adopt: bool,
    own_push: bool,
}

fn accept(
    signing: Signing,
    heads_json: Option<Vec<u8>>,
    audit: Option<(String, String)>,
) -> Verdict {
    Verdict::Accept {
        signing,
        heads_json,
        audit,
    }
}

/// A release with ledger files and no heads.json.
fn unsigned(beyond: Beyond, seqs: BTreeMap<String, u64>) -> Result<Verdict> {
    if beyond.own_push {
        let signing = Signing::UnfinishedPush {
            past_signed_head: seqs,
        };
        return Ok(Verdict::KeepLocal { signing });
    }
    if beyond.adopt {
        let signing = Signing::AdoptedUnsigned {
            had_heads: false,
            past_signed_head: seqs,
        };
        let audit = (beyond.target, "the state release had no heads.json".into());
        return Ok(accept(signing, None, Some(audit)));
    }
    Err(Error::failure(
        "the state release has ledger files but no heads.json (unsigned state, or a push that was interrupted while replacing heads.json)",
    ).topic(crate::error::Topic::StateRefused)
    .help("if config/ledger.yml has just listed its first key, adopt the unsigned state once: `platform state pull --adopt-unsigned` (audited), then `platform state push` signs it; otherwise restore it from a good copy with `platform state push --restore`"))
}

/// A release whose heads.json verifies, at or past its heads.
fn signed(
    beyond: Beyond,
    heads: &heads::SignedHeads,
    past: BTreeMap<String, u64>,
    snap: &Snapshot,
) -> Result<Verdict> {
    let h = &heads.heads;
    if past.is_empty() {
        let signing = Signing::Signed {
            key_id: h.key_id.clone(),
            signed_at: h.signed_at.clone(),
            files: h.files.clone(),
        };
        return Ok(accept(signing, snap.heads_json.clone(), None));
    }
    if beyond.own_push {
        let signing = Signing::UnfinishedPush {
            past_signed_head: past,
        };
        return Ok(Verdict::KeepLocal { signing });
    }
    let list = past_list(&past);
    let signed_by = format!("signed at {} by key {}", h.signed_at, h.key_id);
    if beyond.adopt {
        let reason = format!("records past the heads {signed_by}: {list}");
        let signing = Signing::AdoptedUnsigned {
            had_heads: true,
            past_signed_head: past,
        };
        return Ok(accept(
            signing,
            snap.heads_json.clone(),
            Some((beyond.target, reason)),
        ));
    }
    Err(Error::failure(format!(
        "the state release has records past its signed heads ({signed_by}): {list}; they were written without the signing key, or by a push that did not finish"
    )).topic(crate::error::Topic::StateRefused)
    .help("if your own push was interrupted, re-run `platform state push` from that directory; otherwise inspect the records and adopt them with `platform state pull --adopt-unsigned` (audited), or replace the release from a good copy with `platform state push --restore`"))
}

fn past_list(past: &BTreeMap<String, u64>) -> String {
    past.iter()
        .map(|(f, n)| format!("{f} +{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A verification failure as a refusal: exit 1, and nothing of the release was installed;
/// the directory is as it was, or as `tidied` says (an interrupted pull finished first).
fn refused(client: &GithubClient, dir: &Path, tidied: &[String], e: Error) -> Error {
    if e.kind != Kind::Failure {
        return e;
    }
    let help = e.help.clone().unwrap_or_else(|| {
        // A push uploads its files one by one, heads.json last: a pull in between sees a
        // release that does not verify yet, and must not be told to overwrite it first.
        "if a `platform state push` may be running elsewhere (another job, another machine), pull again once it has finished; otherwise find out who wrote the release (its assets' upload times on GitHub) and restore it from a copy that holds all of its records with `platform state push --restore` (needs the signing key; it refuses to drop records of the release that the copy lacks)".into()
    });
    let left = match tidied.is_empty() {
        true => format!("{} was left as it was", dir.display()),
        // Until 2026-12-04 this said "left as it was" after the pull had moved files in.
        false => format!(
            "nothing of it was installed in {}, where this pull first finished earlier work: {}",
            dir.display(),
            tidied
                .iter()
                .map(|n| n.trim_start_matches("note: "))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    Error::failure(format!(
        "state pull from {} refused: {}; {left}",
        client.repository(),
        e.message,
    ))
    .topic(crate::error::Topic::StateRefused)
    .help(help)
}

/// What the verification accepted: how it is signed, and the heads.json to install.
struct Accepted<'a> {
    signing: &'a Signing,
    heads_json: Option<&'a [u8]>,
}

/// Move the verified files into place with heads.json and the pull record, as one install
/// (`ledger::install`): everything goes into the staging folder first, which becomes the
/// install folder in one rename; a crash after that leaves a move that the next writer,
/// pull or push finishes (until 2026-12-04 a pull killed between its renames left a
/// directory that could neither pull nor push once a writer had run).
fn commit(
    client: &GithubClient,
    dir: &Path,
    staging: tempfile::TempDir,
    snap: &Snapshot,
    plan: &[Planned],
    accepted: Accepted<'_>,
) -> Result<()> {
    // With listed keys, a release accepted without heads.json (empty, or adopted) is one the
    // next push may sign; unsigned state (`NotConfigured`) was never judged against heads.
    let accepted_without_heads = matches!(
        accepted.signing,
        Signing::Empty
            | Signing::AdoptedUnsigned {
                had_heads: false,
                ..
            }
    );
    let staged = staging.path();
    let mut heads = BTreeMap::new();
    for p in plan {
        heads.insert(p.name.to_string(), head_of_file(&staged.join(p.name))?);
        if p.download.is_none() {
            // The local file already holds these bytes (staged for verification only).
            remove_staged(&staged.join(p.name))?;
        }
    }
    let heads_path = dir.join(HEADS_FILE);
    match accepted.heads_json {
        Some(bytes) => crate::atomic::write_atomic(&staged.join(HEADS_FILE), bytes, true)?,
        // Before the install: a crash in between leaves the old files without heads, which
        // the pull run again replaces.
        None => remove_staged(&heads_path)?,
    }
    write_pulled(
        staged,
        &PulledState {
            repository: client.repository().to_string(),
            tag: snap.tag.clone(),
            release_id: snap.release.as_ref().map(|r| r.id),
            assets: asset_digests(&heads),
            heads,
            pending_push: None,
            accepted_without_heads,
        },
    )?;
    // From here the folder is the install's: no longer removed when dropped.
    let staged = staging.keep();
    crate::ledger::install::install(dir, &staged)?;
    Ok(())
}

/// Remove a file if it is there.
fn remove_staged(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, &e)),
        _ => Ok(()),
    }
}

fn outcome(
    client: &GithubClient,
    dir: &Path,
    snap: &Snapshot,
    plan: &[Planned],
    signing: Signing,
    audit_key: Option<String>,
    moved: bool,
) -> Result<StateOutcome> {
    let mut files = Vec::new();
    for p in plan {
        let action = match (&p.download, &p.local) {
            (Some(_), _) if moved => StateAction::Downloaded,
            (_, Head::Absent) => StateAction::Absent,
            _ => StateAction::Unchanged,
        };
        let head = head_of_file(&dir.join(p.name))?;
        files.push(StateFile {
            name: p.name.to_string(),
            action,
            head,
        });
    }
    Ok(StateOutcome {
        repository: client.repository().to_string(),
        tag: snap.tag.clone(),
        release_id: snap.release.as_ref().map(|r| r.id),
        release_missing: snap.release.is_none(),
        release_created: false,
        dir: dir.to_path_buf(),
        files,
        signing,
        heads_uploaded: false,
        restored: None,
        audit_key,
        notes: Vec::new(),
    })
}
