//! Checks what a step left in its outputs dir — at most 10,000 files and 4 GiB, no links,
//! hard-linked or special files, every declared output present — and records each `file`
//! output by its digest and each `dir` output once, by the digest of its manifest.
use super::FileRecord;
use crate::beneath::{self, Beneath, Kind, Meta};
use crate::contract::{Failure, ModuleContract, OutputType};
use crate::output_digest::{dir_manifest, file_digest, MAX_BYTES, MAX_FILES};
use crate::redact::Redactor;
use std::path::Path;

/// Why a step's outputs were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// `OutputsMissing` or `OutputsTooLarge`.
    pub reason: Failure,
    pub message: String,
}

impl Refused {
    fn missing(message: String) -> Self {
        Refused {
            reason: Failure::OutputsMissing,
            message,
        }
    }
    fn too_large(message: String) -> Self {
        Refused {
            reason: Failure::OutputsTooLarge,
            message,
        }
    }
}

/// Refuse more than the caps, then any symlink, special file or file with several links
/// under the outputs folder, itself reached through no link. Nothing is followed or opened
/// but folders: a module could otherwise point later steps, packages or deliveries at another
/// tenant's files (a symlink — the outputs folder itself swapped for one included — or a hard
/// link to them), and a FIFO would block whoever opens it. The caps come first: they bound
/// the walk itself. Paths named in a refusal are redacted, then shortened (`shown`).
pub fn survey(outputs: &Beneath, redactor: &Redactor) -> Result<(), Refused> {
    let (mut files, mut dirs, mut bytes) = (0u64, 0u64, 0u64);
    let mut first_problem: Option<Refused> = None;
    outputs
        .walk(|rel, meta| {
            if meta.kind == Kind::Folder {
                dirs += 1;
            } else {
                files += 1;
                bytes = bytes.saturating_add(meta.bytes);
                if first_problem.is_none() {
                    first_problem = not_a_plain_file(&shown(rel, redactor), meta);
                }
            }
            over_caps(files, dirs, bytes).map_err(Stop::Refused)
        })
        .map_err(|stop| match stop {
            Stop::Refused(r) => r,
            Stop::Unreadable(r) => Refused::missing(format!(
                "cannot read the outputs: {} {}",
                shown(&r.path, redactor),
                r.reason
            )),
        })?;
    first_problem.map_or(Ok(()), Err)
}

/// Why the walk of the outputs stopped: a refusal, or a folder it could not read (named by
/// the caller, which holds the redactor).
enum Stop {
    Refused(Refused),
    Unreadable(beneath::Refused),
}

impl From<beneath::Refused> for Stop {
    fn from(r: beneath::Refused) -> Stop {
        Stop::Unreadable(r)
    }
}

/// Characters of a path a refusal shows, at most: a tree nested past PATH_MAX has paths
/// longer than the message cap, which would cut the reason after them.
const PATH_SHOWN: usize = 600;

/// A path as a refusal shows it: redacted first (a cut secret would no longer match), then,
/// when longer than [`PATH_SHOWN`] characters, its beginning and its end around what is left
/// out.
fn shown(path: &Path, redactor: &Redactor) -> String {
    let text = redactor.redact(&path.display().to_string());
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= PATH_SHOWN {
        return text;
    }
    let (head, tail) = (PATH_SHOWN / 3, PATH_SHOWN * 2 / 3);
    format!(
        "{} … ({} characters left out) … {}",
        chars[..head].iter().collect::<String>(),
        chars.len() - head - tail,
        chars[chars.len() - tail..].iter().collect::<String>()
    )
}

fn over_caps(files: u64, dirs: u64, bytes: u64) -> Result<(), Refused> {
    if files > MAX_FILES || dirs > MAX_FILES {
        return Err(Refused::too_large(format!(
            "the outputs hold more than {MAX_FILES} {}; a step may leave at most {MAX_FILES} files (and {MAX_FILES} folders)",
            if files > MAX_FILES { "files" } else { "folders" }
        )));
    }
    if bytes > MAX_BYTES {
        return Err(Refused::too_large(format!(
            "the outputs hold more than {0} GiB; a step may leave at most {0} GiB",
            MAX_BYTES >> 30
        )));
    }
    Ok(())
}

/// Why an entry (`rel`, as shown) that is not a folder is not a plain output file, if it is not.
fn not_a_plain_file(rel: &str, meta: Meta) -> Option<Refused> {
    let why = match meta.kind {
        Kind::Symlink => "is a symlink",
        Kind::File if meta.links > 1 => {
            "has several hard links (another may be another tenant's file)"
        }
        Kind::File => return None,
        _ => "is not a regular file (a FIFO, socket or device)",
    };
    Some(Refused::missing(format!(
        "{rel} in the outputs {why}; outputs must be regular files with a single link"
    )))
}

/// Record every declared file/dir output of the outputs folder (beneath a trusted folder:
/// reached through no link), after the survey; Err names what is wrong.
pub fn collect(
    contract: &ModuleContract,
    outputs: &Beneath,
    redactor: &Redactor,
) -> Result<Vec<FileRecord>, Refused> {
    survey(outputs, redactor)?;
    let mut records = Vec::new();
    let mut missing = Vec::new();
    for out in &contract.outputs {
        if out.ty == OutputType::Value {
            continue;
        }
        let rel = out.path.clone().unwrap_or_else(|| out.id.clone());
        let at = outputs.join(&rel);
        let is = |want: Kind| at.metadata().is_ok_and(|m| m.kind == want);
        let record = match out.ty {
            // Opened first: what is not a regular file is then told apart from a file
            // that cannot be read (one `stat` less per output).
            OutputType::File => file_digest(&at)
                .map(|(sha, bytes)| FileRecord {
                    id: out.id.clone(),
                    path: rel.clone(),
                    bytes,
                    sha256: sha,
                    files: None,
                })
                .map_err(|why| if is(Kind::File) { why } else { String::new() }),
            OutputType::Dir if is(Kind::Folder) => dir_manifest(&at).map(|m| FileRecord {
                id: out.id.clone(),
                path: rel.clone(),
                bytes: m.bytes,
                sha256: m.sha256,
                files: Some(m.files.len() as u64),
            }),
            _ => Err(String::new()),
        };
        match record {
            Ok(r) => records.push(r),
            Err(why) if why.is_empty() => missing.push(rel),
            Err(why) => missing.push(format!("{rel} ({why})")),
        }
    }
    if missing.is_empty() {
        Ok(records)
    } else {
        Err(Refused::missing(format!(
            "declared outputs missing: {}",
            missing.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn links_and_fifos_are_refused_without_being_opened() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("link")).unwrap();
        assert_eq!(
            survey(&Beneath::new(d.path(), ""), &Redactor::default())
                .unwrap_err()
                .reason,
            Failure::OutputsMissing
        );
        std::fs::remove_file(d.path().join("link")).unwrap();
        let fifo = std::ffi::CString::new(d.path().join("fifo").to_str().unwrap()).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: mkfifo reads a NUL-terminated path we own.
        unsafe {
            libc::mkfifo(fifo.as_ptr(), 0o600);
        }
        assert_eq!(
            survey(&Beneath::new(d.path(), ""), &Redactor::default())
                .unwrap_err()
                .reason,
            Failure::OutputsMissing
        );
        assert!(dir_manifest(&Beneath::new(d.path(), "")).is_err());
    }

    #[test]
    fn a_long_path_is_shown_redacted_then_shortened_to_its_ends() {
        let r = Redactor::new(vec!["s3cret-name".to_string()]);
        let long = format!("/runs/{}s3cret-name/last", "d/".repeat(2000));
        let got = shown(Path::new(&long), &r);
        assert!(got.chars().count() < PATH_SHOWN + 50, "{got}");
        assert!(got.starts_with("/runs/d/d/"), "{got}");
        assert!(got.contains(" … (3421 characters left out) … "), "{got}");
        assert!(got.ends_with("d/[REDACTED]/last"), "{got}");
        assert_eq!(
            shown(Path::new("/runs/s3cret-name"), &r),
            "/runs/[REDACTED]"
        );
    }

    #[cfg(unix)]
    #[test]
    fn an_outputs_folder_that_is_a_link_is_refused_and_not_walked() {
        let d = tempfile::tempdir().unwrap();
        let elsewhere = d.path().join("elsewhere");
        std::fs::create_dir_all(elsewhere.join("sub")).unwrap();
        std::fs::write(elsewhere.join("sub/a.txt"), "a").unwrap();
        std::os::unix::fs::symlink(&elsewhere, d.path().join("outputs")).unwrap();
        let refused = survey(&Beneath::new(d.path(), "outputs"), &Redactor::default()).unwrap_err();
        assert_eq!(refused.reason, Failure::OutputsMissing);
        assert!(
            refused.message.contains("symbolic link"),
            "{}",
            refused.message
        );
        // The same tree as a real folder passes, its folder and file counted.
        std::fs::remove_file(d.path().join("outputs")).unwrap();
        std::fs::rename(&elsewhere, d.path().join("outputs")).unwrap();
        assert_eq!(
            survey(&Beneath::new(d.path(), "outputs"), &Redactor::default()),
            Ok(())
        );
    }
}
