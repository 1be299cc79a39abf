//! `state push`: refuse local files that fail verification or do not extend, byte for byte, what the last pull recorded (unless `--restore`), upload the changed files, then heads.json signed last.
use super::record::{
    asset_digests, extends, head_of_file, read_pulled, write_pulled, Head, PulledState,
};
use super::remote::{is_copy_of, replace_asset, verify_pushed, RemoteHead, Snapshot};
use super::{
    audit, lock_ledger, seq_label, Signing, StateAction, StateFile, StateOutcome, PULLED_FILE,
    STATE_FILES,
};
use crate::audit::Action;
use crate::error::{Error, Kind, Result};
use crate::github::client::{GithubClient, Release};
use crate::heads::{
    self, Expected, Heads, Lack, RemoteState, SignedHeads, Signer, TrustedKey, HEADS_FILE,
};
use crate::ledger::VerifyReport;
use std::collections::BTreeMap;
use std::path::Path;

/// The signing key and whether to replace a release that fails verification.
#[derive(Debug, Default)]
pub struct PushOptions {
    /// From `PLATFORM_LEDGER_SIGNING_KEY`; required when config/ledger.yml lists keys.
    pub signer: Option<Signer>,
    /// `--restore`, by this actor (audited).
    pub restore_by: Option<String>,
    /// `--discard-unverified`: a restore may drop records of the release that no listed key
    /// signed (named in the audit record); signed ones are never dropped.
    pub discard_unverified: bool,
}

/// Push the state files from `dir`, then signed heads. Refused (exit 1, nothing written
/// remotely) when a local file fails verification, does not extend what the last pull (or
/// push) recorded, or the release changed since.
pub fn push_state(
    client: &GithubClient,
    dir: &Path,
    trust: &[TrustedKey],
    opts: &PushOptions,
) -> Result<StateOutcome> {
    if !dir.is_dir() {
        return Err(crate::ledger::missing_dir(dir));
    }
    let signer = signer_for(trust, opts)?;
    // From verifying the local files to recording the push: see `lock_ledger`.
    let mut lock = lock_ledger(dir)?;
    let notes = super::tidy(dir, false)?;
    let mut previous = read_pulled(dir, client)?;
    let what = format!("the local state in {}", dir.display());
    let mut report = heads::verify_chains(dir, &what).map_err(|e| refused(client, e))?;
    let snap = Snapshot::read(client, previous.as_ref().and_then(|p| p.release_id))?;
    refuse_published(client, &snap)?;
    let (restored, audit_key) = match &opts.restore_by {
        Some(actor) => {
            // The audit record's writer takes the lock itself; what is pushed is read and
            // verified again once it is back.
            drop(lock);
            let discard = opts.discard_unverified;
            let (why, key) = restore(client, dir, trust, &snap, actor, discard, &report)?;
            lock = lock_ledger(dir)?;
            previous = read_pulled(dir, client)?;
            report = heads::verify_chains(dir, &what)?;
            (Some(why), Some(key))
        }
        None => {
            if signer.is_some() {
                check_remote_heads(client, trust, &snap, previous.as_ref())?;
            }
            check_unchanged_since_pull(client, &snap.tag, dir, previous.as_ref(), &snap.files)?;
            check_extends_pull(client, dir, previous.as_ref())?;
            (None, None)
        }
    };
    let mut pushed = upload_files(client, dir, &snap, previous)?;
    pushed.outcome.restored = restored;
    pushed.outcome.audit_key = audit_key;
    pushed.outcome.notes = notes;
    crate::failpoint::hit("state_push_before_heads");
    if let Some(release) = &pushed.release {
        let (signing, uploaded) = match signer {
            Some(signer) => publish_heads(client, dir, release, &snap, signer, &report, trust)?,
            None => (
                drop_stale_heads(client, dir, release, &snap, &pushed.outcome)?,
                false,
            ),
        };
        pushed.outcome.signing = signing;
        pushed.outcome.heads_uploaded = uploaded;
    } else if signer.is_some() {
        // Nothing local and no release: there is nothing to sign yet.
        pushed.outcome.signing = Signing::Empty;
    }
    let confirmed = confirm(dir, pushed);
    drop(lock);
    confirmed
}

/// The push is complete: the pull record now names what was pushed, with nothing pending.
fn confirm(dir: &Path, pushed: Pushed) -> Result<StateOutcome> {
    let Pushed {
        outcome,
        mut record,
        release,
        local,
    } = pushed;
    record.release_id = release.as_ref().map(|r| r.id);
    record.heads = local
        .iter()
        .map(|(n, h)| (n.to_string(), h.clone()))
        .collect();
    record.assets = asset_digests(&record.heads);
    record.pending_push = None;
    // Signed state now carries heads.json; unsigned state needs no adoption.
    record.accepted_without_heads = false;
    write_pulled(dir, &record)?;
    Ok(outcome)
}

/// `--restore`: why the release may be replaced, and the audit record appended to say so.
fn restore(
    client: &GithubClient,
    dir: &Path,
    trust: &[TrustedKey],
    snap: &Snapshot,
    actor: &str,
    discard_unverified: bool,
    report: &VerifyReport,
) -> Result<(String, String)> {
    let why = restore_reason(client, dir, trust, snap, discard_unverified)?;
    let target = format!(
        "{}/{}/{}",
        client.repository(),
        snap.tag,
        seq_label(&seqs(report))
    );
    let key = audit(dir, Action::Restore, actor, target, &why)?;
    Ok((why, key))
}

/// The key to sign with: required (exit 2) when keys are listed, and must be one of them.
fn signer_for<'a>(trust: &[TrustedKey], opts: &'a PushOptions) -> Result<Option<&'a Signer>> {
    if trust.is_empty() {
        if opts.restore_by.is_some() {
            return Err(Error::input("state push --restore needs signed state, and config/ledger.yml lists no signing key")
                .help("make a key with `platform ledger keygen`, list its public half in config/ledger.yml and set PLATFORM_LEDGER_SIGNING_KEY"));
        }
        return Ok(None);
    }
    let Some(signer) = opts.signer.as_ref() else {
        return Err(Error::input(format!(
            "state push needs the signing key: config/ledger.yml lists signing keys and {} is not set",
            crate::secrets::LEDGER_SIGNING_KEY_ENV
        ))
        .help(format!(
            "set {} to the private key whose public half config/ledger.yml lists (in GitHub Actions: a secret of the Environment that pushes state); nothing was uploaded",
            crate::secrets::LEDGER_SIGNING_KEY_ENV
        )));
    };
    if !trust.iter().any(|k| k.key_id == signer.key_id()) {
        return Err(Error::input(format!(
            "the signing key in {} has key_id {}, which config/ledger.yml does not list",
            crate::secrets::LEDGER_SIGNING_KEY_ENV,
            signer.key_id()
        ))
        .help("list its public key in config/ledger.yml (rotation: list both keys, switch the secret, push once, remove the old key)"));
    }
    Ok(Some(signer))
}

fn seqs(report: &VerifyReport) -> BTreeMap<String, u64> {
    report
        .files
        .iter()
        .map(|f| (f.stream.file_name().to_string(), f.head_seq))
        .collect()
}

/// A local verification failure as a push refusal (exit 1, nothing uploaded).
fn refused(client: &GithubClient, e: Error) -> Error {
    if e.kind != Kind::Failure {
        return e;
    }
    Error::failure(format!(
        "state push to {} refused: {}; nothing was uploaded",
        client.repository(),
        e.message
    )).topic(crate::error::Topic::StateRefused)
    .help("run `platform integrity-validate` to list every problem; restore the damaged file from a good copy (`platform state pull` into a fresh directory) and merge your new records into it with `platform ledger merge`")
}

fn refuse_published(client: &GithubClient, snap: &Snapshot) -> Result<()> {
    match snap.release.as_ref().filter(|r| !r.draft) {
        None => Ok(()),
        Some(r) => Err(Error::failure(format!(
            "the state release '{}' of {} is published; its assets cannot be replaced (published releases are immutable)",
            snap.tag,
            client.repository()
        ))
        .help(format!(
            "state lives in a draft release: use a new github.state_tag, or turn release {} back into a draft on GitHub if immutable releases are off",
            r.html_url
        ))),
    }
}

/// Why `--restore` may replace the release, with what it drops named. The release's records
/// the local state lacks decide (`heads::lacking`): signed ones (up to verified signed heads)
/// are never dropped; unverified ones (no verified heads, past them, or damaged) only with
/// `--discard-unverified`; only those the signed heads refute go without asking. Until
/// 2026-12-04 any release that failed verification (a tampered heads.json, records past
/// its heads) was replaced, whatever records of it the local state lacked.
fn restore_reason(
    client: &GithubClient,
    dir: &Path,
    trust: &[TrustedKey],
    snap: &Snapshot,
    discard_unverified: bool,
) -> Result<String> {
    let staging = tempfile::tempdir()
        .map_err(|e| Error::failure(format!("cannot create a temporary directory: {e}")))?;
    for (name, remote) in &snap.files {
        if let (Some(asset), Some(release)) = (remote.asset(), &snap.release) {
            client.download_asset(release, asset, &staging.path().join(name))?;
        }
    }
    let expected = Expected {
        repository: client.repository(),
        state_tag: &snap.tag,
    };
    let why = why_replaced(trust, staging.path(), snap, expected)?;
    let signed = snap
        .heads_json
        .as_deref()
        .and_then(|bytes| heads::check_signed(trust, bytes, expected).ok());
    let lacking = heads::lacking(staging.path(), dir, signed.as_ref().map(|s| &s.heads))?;
    let named = |kinds: &[Lack]| -> Vec<String> {
        lacking
            .iter()
            .filter(|l| kinds.contains(&l.lack))
            .map(|l| l.to_string())
            .collect()
    };
    let (kept, unverified) = (
        named(&[Lack::Signed]),
        named(&[Lack::Unverified, Lack::Damaged]),
    );
    if let Some(signed) = signed.as_ref().filter(|_| !kept.is_empty()) {
        return Err(discards_signed(dir, &signed.heads, &kept, &unverified));
    }
    if !unverified.is_empty() && !discard_unverified {
        let relist = snap
            .heads_json
            .as_deref()
            .and_then(|bytes| heads::unlisted_key(trust, bytes));
        return Err(discards_unverified(
            dir,
            &unverified,
            &why,
            relist.as_deref(),
        ));
    }
    let dropped = named(&[Lack::Refuted, Lack::Unverified, Lack::Damaged]);
    Ok(match dropped.is_empty() {
        true => why,
        // First: the audit record keeps 256 characters of it.
        false => format!("discarded {}; {why}", dropped.join(", ")),
    })
}

/// Why the release (downloaded into `staging`) may be replaced at all: how it fails
/// verification, or that the local state extends it.
fn why_replaced(
    trust: &[TrustedKey],
    staging: &Path,
    snap: &Snapshot,
    expected: Expected<'_>,
) -> Result<String> {
    Ok(
        match heads::judge(trust, staging, snap.heads_json.as_deref(), expected) {
            Err(e) if e.kind == Kind::Failure => e.message,
            Err(e) => return Err(e),
            Ok((RemoteState::Empty, _)) => "the state release held no state".to_string(),
            Ok((RemoteState::Unsigned, _)) => "the state release had no heads.json".to_string(),
            Ok((RemoteState::Signed { heads, standings }, _)) => {
                let h = &heads.heads;
                let at = format!("heads signed at {} by key {}", h.signed_at, h.key_id);
                match heads::past_head(&standings).is_empty() {
                    true => format!("the local state extends the state release ({at})"),
                    false => format!("the state release had records past its signed heads ({at})"),
                }
            }
        },
    )
}

/// A restore that would drop records the release's verified heads.json signs: refused,
/// whatever the flags.
fn discards_signed(dir: &Path, signed: &Heads, kept: &[String], unverified: &[String]) -> Error {
    let past = match unverified.is_empty() {
        true => String::new(),
        false => format!(" (and records no key signed: {})", unverified.join(", ")),
    };
    Error::failure(format!(
        "state push --restore refused: the state release's heads.json verifies (signed at {} by key {}) and {} lacks records it signs: {}{past}; restoring would discard signed records; nothing was uploaded",
        signed.signed_at, signed.key_id, dir.display(), kept.join(", ")
    ))
    .topic(crate::error::Topic::StateRefused)
    .help(format!("pull it into a fresh directory (`platform state pull --billing-state-dir <fresh>`; add `--adopt-unsigned --actor <you>` for records past the signed heads that you recognise, such as a push that did not finish), merge your records with `platform ledger merge --into <fresh> {}`, then push from <fresh>", dir.display()))
}

/// A restore that would drop records no listed key signed, without `--discard-unverified`:
/// refused, naming them; `unlisted` is the key of a heads.json config/ledger.yml does not list.
fn discards_unverified(
    dir: &Path,
    unverified: &[String],
    why: &str,
    unlisted: Option<&str>,
) -> Error {
    let help = format!(
        "restore from a copy that holds them (the directory that pushed them); records past verified signed heads can also be adopted: `platform state pull --adopt-unsigned --actor <you> --billing-state-dir <fresh>`, `platform ledger merge --into <fresh> {d}`, then push from <fresh>; only once you have checked that they are not genuine, drop them with `platform state push --restore --discard-unverified --actor <you>` (audited: the state.restore record names them)",
        d = dir.display()
    );
    Error::failure(format!(
        "state push --restore refused: {} lacks records of the state release that no listed key signed: {}; {why}; they may be genuine (a push that did not finish, or whose heads.json was lost or tampered with), and restoring would discard them; nothing was uploaded",
        dir.display(),
        unverified.join(", ")
    ))
    .topic(crate::error::Topic::StateRefused)
    .help(match unlisted {
        Some(key_id) => format!("{}; otherwise {help}", heads::relist_hint(key_id)),
        None => help,
    })
}

/// Without `--restore`, a signed push goes only onto a release whose heads.json verifies (a
/// listed key, this repository and release), or onto one without heads.json that is empty or
/// that the last pull accepted as such (an audited adoption, or this directory's own first
/// push, interrupted): replacing anything else would erase the evidence of tampering, unaudited.
fn check_remote_heads(
    client: &GithubClient,
    trust: &[TrustedKey],
    snap: &Snapshot,
    previous: Option<&PulledState>,
) -> Result<()> {
    let expected = Expected {
        repository: client.repository(),
        state_tag: &snap.tag,
    };
    let (problem, adopt, known) = match &snap.heads_json {
        Some(bytes) => match heads::check_signed(trust, bytes, expected) {
            Ok(_) => return Ok(()),
            // An unknown key says its own way out (a key rotation done out of order).
            Err(e) => (e.message, "", e.help),
        },
        None if snap.files.values().all(|h| matches!(h, RemoteHead::Absent)) => return Ok(()),
        None if previous.is_some_and(|p| p.accepted_without_heads) => return Ok(()),
        None => (
            "it has ledger files but no heads.json, and the last pull into this directory did not adopt them".to_string(),
            "if config/ledger.yml has just listed its first key, adopt the unsigned state first with `platform state pull --adopt-unsigned` (audited); otherwise ",
            None,
        ),
    };
    Err(Error::failure(format!(
        "state push to {} refused: the state release '{}' fails verification: {problem}; nothing was uploaded",
        client.repository(),
        snap.tag
    ))
    .topic(crate::error::Topic::StateRefused)
    .help(known.unwrap_or_else(|| format!(
        "{adopt}find out who changed the release (its assets' upload times on GitHub); to replace it with this directory's verified state, run `platform state push --restore --actor <you>` (audited: a state.restore record in audit.jsonl)"
    ))))
}

/// Every local file still starts with the bytes the last pull (or push) recorded.
fn check_extends_pull(
    client: &GithubClient,
    dir: &Path,
    previous: Option<&PulledState>,
) -> Result<()> {
    let Some(p) = previous else {
        return Ok(());
    };
    let mut changed = Vec::new();
    for name in STATE_FILES {
        let pulled = p.heads.get(name).cloned().unwrap_or(Head::Absent);
        if !extends(&dir.join(name), &pulled)? {
            changed.push(format!("{name} (pulled {})", pulled.describe()));
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    Err(Error::failure(format!(
        "state push to {} refused: {} no longer start(s) with the bytes pulled from the state release: records were changed or removed since the pull (the ledger is append-only); nothing was uploaded",
        client.repository(),
        changed.join("; ")
    )).topic(crate::error::Topic::StateRefused)
    .at(dir.join(PULLED_FILE).display().to_string())
    .help(format!(
        "pull into a fresh directory (`platform state pull --billing-state-dir <fresh>`) and compare; new records of {} can be merged with `platform ledger merge --into <fresh> {}`",
        dir.display(),
        dir.display()
    )))
}

pub(super) fn check_unchanged_since_pull(
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
                // This directory's own push may have stopped anywhere in the file's
                // replacement: the release then holds the old bytes, the new ones (perhaps
                // still under the staged name), an incomplete upload, or, after an older
                // version of this command deleted the old copy first, nothing. The local
                // file extends what was pulled, so uploading it loses nothing.
                now.holds(&pulled)
                    || pending.is_some_and(|h| {
                        now.holds(h)
                            || matches!(now, RemoteHead::Incomplete(_) | RemoteHead::Absent)
                    })
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
    )).topic(crate::error::Topic::StateRefused)
    .help(format!(
        "pull into a fresh directory (`platform state pull --billing-state-dir <fresh>`), merge your records with `platform ledger merge --into <fresh> {}`, then push again from <fresh>",
        dir.display()
    )))
}

/// What the file uploads left: the outcome so far, the release, the pull record (with the
/// pending push) and the heads that were pushed.
struct Pushed {
    outcome: StateOutcome,
    release: Option<Release>,
    record: PulledState,
    local: BTreeMap<&'static str, Head>,
}

/// Upload every state file whose content differs from the release's, creating the draft
/// release on the first push; the heads about to be uploaded are recorded first as
/// `pending_push`, so a retry after a failure midway is accepted.
fn upload_files(
    client: &GithubClient,
    dir: &Path,
    snap: &Snapshot,
    previous: Option<PulledState>,
) -> Result<Pushed> {
    let local = local_heads(client, dir, snap)?;
    let record = record_pending(client, dir, snap, previous, &local)?;
    let needs_upload =
        |name: &str| !snap.files[name].holds(&local[name]) || snap.files[name].is_staged();
    let created = snap.release.is_none() && STATE_FILES.iter().any(|n| needs_upload(n));
    let release = match &snap.release {
        Some(r) => Some(r.clone()),
        None if created => Some(client.create_draft_release(&snap.tag)?),
        None => None,
    };
    let mut files = Vec::new();
    for name in STATE_FILES {
        let head = local[name].clone();
        let action = match (&release, needs_upload(name)) {
            (Some(release), true) => {
                replace_asset(client, release, name, &dir.join(name), &head)?;
                StateAction::Uploaded
            }
            _ if matches!(head, Head::Absent) => StateAction::Absent,
            _ => StateAction::Unchanged,
        };
        files.push(StateFile {
            name: name.to_string(),
            action,
            head,
        });
    }
    if let Some(r) = &release {
        verify_pushed(client, r, &local)?;
    }
    let outcome = StateOutcome {
        repository: client.repository().to_string(),
        tag: snap.tag.clone(),
        release_id: release.as_ref().map(|r| r.id),
        release_missing: release.is_none(),
        release_created: created,
        dir: dir.to_path_buf(),
        files,
        signing: Signing::NotConfigured,
        heads_uploaded: false,
        restored: None,
        audit_key: None,
        notes: Vec::new(),
    };
    Ok(Pushed {
        outcome,
        release,
        record,
        local,
    })
}

/// Remember what is about to be uploaded (`pending_push`), so a retry after a failure midway
/// is accepted; written before the first upload.
fn record_pending(
    client: &GithubClient,
    dir: &Path,
    snap: &Snapshot,
    previous: Option<PulledState>,
    local: &BTreeMap<&'static str, Head>,
) -> Result<PulledState> {
    let mut record = previous.unwrap_or_else(|| PulledState {
        repository: client.repository().to_string(),
        tag: snap.tag.clone(),
        release_id: snap.release.as_ref().map(|r| r.id),
        assets: BTreeMap::new(),
        heads: STATE_FILES
            .iter()
            .map(|n| (n.to_string(), Head::Absent))
            .collect(),
        pending_push: None,
        // Without a pull only an empty release is written (checked above): a retry of this
        // first push finds its own files there, without heads.json.
        accepted_without_heads: snap.heads_json.is_none(),
    });
    record.pending_push = Some(
        local
            .iter()
            .map(|(n, h)| (n.to_string(), h.clone()))
            .collect(),
    );
    write_pulled(dir, &record)?;
    Ok(record)
}

/// The content head of each local file; a file the release holds may not be missing.
fn local_heads(
    client: &GithubClient,
    dir: &Path,
    snap: &Snapshot,
) -> Result<BTreeMap<&'static str, Head>> {
    let mut local = BTreeMap::new();
    for name in STATE_FILES {
        let head = head_of_file(&dir.join(name))?;
        if matches!(head, Head::Absent) && !matches!(snap.files[name], RemoteHead::Absent) {
            return Err(Error::input(format!(
                "{} is missing locally but the state release '{}' of {} holds it",
                dir.join(name).display(),
                snap.tag,
                client.repository()
            ))
            .help("the ledger is append-only: pull again (`platform state pull`) instead of deleting files"));
        }
        local.insert(name, head);
    }
    Ok(local)
}

/// Sign the local heads and upload heads.json, last; skipped when the release's heads.json
/// already signs these very heads with this key (only renamed into place when an interrupted
/// push left it staged). The local copy is written once it landed.
fn publish_heads(
    client: &GithubClient,
    dir: &Path,
    release: &Release,
    snap: &Snapshot,
    signer: &Signer,
    report: &VerifyReport,
    trust: &[TrustedKey],
) -> Result<(Signing, bool)> {
    let heads = Heads::of_report(report, client.repository(), &snap.tag, signer.key_id());
    let path = dir.join(HEADS_FILE);
    let current = snap.heads_json.as_ref().and_then(|bytes| {
        let current = SignedHeads::parse(bytes).ok()?;
        let same = current.heads.key_id == signer.key_id()
            && current.heads.same_state(&heads)
            && current.verify(trust).is_ok();
        same.then(|| (current, bytes.clone()))
    });
    let (signed, bytes) = match current {
        Some((current, bytes)) if !snap.heads_staged => {
            crate::atomic::persist(heads_temp(dir, &path, &bytes)?, &path)?;
            return Ok((signing_of(&current.heads), false));
        }
        Some(staged) => staged,
        None => {
            let signed = SignedHeads::sign(heads, signer)
                .map_err(|e| Error::failure(format!("cannot sign the heads: {e}")))?;
            let bytes = signed
                .to_bytes()
                .map_err(|e| Error::failure(format!("cannot encode the heads: {e}")))?;
            (signed, bytes)
        }
    };
    let tmp = heads_temp(dir, &path, &bytes)?;
    let head = head_of_file(tmp.path())?;
    replace_asset(client, release, HEADS_FILE, tmp.path(), &head)?;
    verify_pushed(client, release, &BTreeMap::from([(HEADS_FILE, head)]))?;
    crate::atomic::persist(tmp, &path)?;
    Ok((signing_of(&signed.heads), true))
}

/// heads.json's bytes in a flushed temp file beside it (named as `tidy` removes it when a
/// killed push leaves it).
fn heads_temp(dir: &Path, path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let mut tmp = tempfile::Builder::new()
        .prefix(super::PUSH_TEMPS[0].prefix)
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, &e))?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(|e| Error::io(path, &e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, &e))?;
    Ok(tmp)
}

fn signing_of(heads: &Heads) -> Signing {
    Signing::Signed {
        key_id: heads.key_id.clone(),
        signed_at: heads.signed_at.clone(),
        files: heads.files.clone(),
    }
}

/// Without keys nothing is signed: a heads.json left on the release (or locally) from
/// signed days would no longer match the files once they changed, so it goes.
fn drop_stale_heads(
    client: &GithubClient,
    dir: &Path,
    release: &Release,
    snap: &Snapshot,
    outcome: &StateOutcome,
) -> Result<Signing> {
    let uploaded = outcome
        .files
        .iter()
        .any(|f| f.action == StateAction::Uploaded);
    if uploaded {
        for stale in snap.assets.iter().filter(|a| is_copy_of(a, HEADS_FILE)) {
            client.delete_asset(release, stale)?;
        }
    }
    let path = dir.join(HEADS_FILE);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path, &e)),
        _ => Ok(Signing::NotConfigured),
    }
}
