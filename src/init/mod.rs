//! `platform init DIR`: a new platform repository from the templates in `template/` (config,
//! an example module, a draft tenant, workflows that install a pinned release, schemas).
use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::leftovers::Leftover;
use serde::Serialize;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where the workflows get `platform` from: this binary's version, from the releases of
/// `repository`, checked against `sha256` (the x86_64-unknown-linux-musl archive's).
#[derive(Debug, Clone, Default)]
pub struct Release {
    pub repository: Option<String>,
    pub sha256: Option<String>,
}

/// What `init` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct InitOutcome {
    pub dir: PathBuf,
    /// Every file written, relative to `dir`, in the order written.
    pub files: Vec<String>,
    pub platform_version: String,
    /// Whether the install action names both a release repository and a checksum; when it
    /// does not, the workflows stop at the install step with an error saying what to set.
    pub release_pinned: bool,
    /// The install action's settings still to set (`RELEASE_REPO`, `PLATFORM_SHA256`).
    #[serde(skip)]
    pub release_unset: Vec<&'static str>,
    /// Notes on what an interrupted init of the same folder left, removed.
    #[serde(skip)]
    pub stale: Vec<String>,
}

/// A template file: its path in the new repository, its text, whether it is a program.
struct Template {
    path: &'static str,
    text: &'static str,
    executable: bool,
}

const fn file(path: &'static str, text: &'static str) -> Template {
    Template {
        path,
        text,
        executable: false,
    }
}

const TEMPLATES: &[Template] = &[
    file(".gitignore", include_str!("template/dot-gitignore")),
    file("README.md", include_str!("template/README.md")),
    file("config/iam.yml", include_str!("template/config/iam.yml")),
    file(
        "config/ledger.yml",
        include_str!("template/config/ledger.yml"),
    ),
    file(
        "config/runtime_profile.local.yml",
        include_str!("template/config/runtime_profile.local.yml"),
    ),
    file(
        "config/runtime_profile.github.yml",
        include_str!("template/config/runtime_profile.github.yml"),
    ),
    file(
        "modules/hello/module.yml",
        include_str!("template/modules/hello/module.yml"),
    ),
    Template {
        path: "modules/hello/run.py",
        text: include_str!("template/modules/hello/run.py"),
        executable: true,
    },
    file(
        "tenants/example/tenant.yml",
        include_str!("template/tenants/example/tenant.yml"),
    ),
    file(
        "tenants/example/workorders/hello.yml",
        include_str!("template/tenants/example/workorders/hello.yml"),
    ),
    file(
        ".github/actions/install-platform/action.yml",
        include_str!("template/dot-github/actions/install-platform/action.yml"),
    ),
    file(
        ".github/workflows/validate.yml",
        include_str!("template/dot-github/workflows/validate.yml"),
    ),
    file(
        ".github/workflows/orchestrator.yml",
        include_str!("template/dot-github/workflows/orchestrator.yml"),
    ),
    file(
        ".github/workflows/admin-topup.yml",
        include_str!("template/dot-github/workflows/admin-topup.yml"),
    ),
    file(
        ".github/workflows/admin-adjust.yml",
        include_str!("template/dot-github/workflows/admin-adjust.yml"),
    ),
    file(
        ".github/workflows/rerun.yml",
        include_str!("template/dot-github/workflows/rerun.yml"),
    ),
];

/// Write a new platform repository into `dir`: a folder that does not exist yet, or an
/// empty one (nothing of an existing repository is ever overwritten).
pub fn init(dir: &Path, release: &Release) -> Result<InitOutcome> {
    let release = checked(release)?;
    refuse_inside_tenants(dir)?;
    let cleared = clear_interrupted(dir)?;
    refuse_non_empty(dir)?;
    let (target, parent, prefix) = placed(dir)?;
    crate::folder::create(&parent, "the folder of the new repository")?;
    // An init killed before its rename left its folder beside the target: nothing uses it.
    let stale = crate::leftovers::remove(
        &parent,
        &[Leftover {
            folder: true,
            ..Leftover::file(&prefix, "")
        }],
        "platform init",
    );
    // Built beside the target and renamed into place when complete: a killed init leaves
    // no partial repository that would pass consistency-validate (until 2026-12-04 it did).
    let building = tempfile::Builder::new()
        .prefix(&prefix)
        .permissions(std::fs::Permissions::from_mode(0o777))
        .tempdir_in(&parent)
        .map_err(|e| Error::io(&parent, &e))?;
    let mut outcome = write_all(building.path(), release)?;
    if target.is_dir() {
        // An existing (empty) folder is kept, not renamed over: a shell may be in it.
        move_into(building.path(), &target)?;
    } else {
        std::fs::rename(building.path(), &target).map_err(|e| {
            Error::io(&target, &e)
                .help("give init a new folder, or an empty one, and nothing else writing there")
        })?;
        // Renamed: nothing is left to remove.
        let _ = building.keep();
    }
    outcome.dir = dir.to_path_buf();
    outcome.stale = stale.into_iter().chain(cleared).collect();
    Ok(outcome)
}

/// Left in an existing folder while init moves the new repository into it, removed last:
/// init and consistency-validate name an interrupted init by it.
pub const INCOMPLETE: &str = ".platform-init-incomplete";

/// Move the complete repository in `from` into the existing empty folder `to`, entry by
/// entry, under the [`INCOMPLETE`] marker.
fn move_into(from: &Path, to: &Path) -> Result<()> {
    let marker = to.join(INCOMPLETE);
    write_atomic(
        &marker,
        b"`platform init` was moving a new repository into this folder and stopped: run the same `platform init` again\n",
        true,
    )?;
    let mut names: Vec<_> = std::fs::read_dir(from)
        .map_err(|e| Error::io(from, &e))?
        .map(|e| {
            e.map(|e| e.file_name())
                .map_err(|err| Error::io(from, &err))
        })
        .collect::<Result<_>>()?;
    names.sort();
    for name in names {
        let dest = to.join(&name);
        std::fs::rename(from.join(&name), &dest).map_err(|e| Error::io(&dest, &e))?;
        crate::failpoint::hit("init_entry_moved");
    }
    std::fs::remove_file(&marker).map_err(|e| Error::io(&marker, &e))
}

/// The names init writes at the top of a repository.
fn top_level_names() -> std::collections::BTreeSet<&'static str> {
    TEMPLATES
        .iter()
        .filter_map(|t| t.path.split('/').next())
        .chain(["schemas", INCOMPLETE])
        .collect()
}

/// A folder holding an interrupted init (its marker) and nothing else init does not write:
/// emptied, with the note saying so. With anything else in it, what to do.
fn clear_interrupted(dir: &Path) -> Result<Option<String>> {
    let marker = dir.join(INCOMPLETE);
    if !marker.symlink_metadata().is_ok_and(|m| m.is_file()) {
        return Ok(None);
    }
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, &e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let ours = top_level_names();
    let foreign: Vec<&String> = names
        .iter()
        .filter(|n| !ours.contains(n.as_str()))
        .collect();
    if !foreign.is_empty() {
        return Err(interrupted(dir).help(format!(
            "it also holds files init does not write ({}): move them out, then run init again",
            foreign
                .iter()
                .map(|n| crate::output::untrusted(n).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for name in &names {
        // A link is removed, never followed.
        crate::beneath::remove_tree(&dir.join(name)).map_err(|e| Error::io(&dir.join(name), &e))?;
    }
    Ok(Some(format!(
        "note: removed the partial repository an interrupted `platform init` left in {}: {}",
        dir.display(),
        names.join(", ")
    )))
}

/// The error for a repository an init was still moving into place.
fn interrupted(dir: &Path) -> Error {
    Error::input(format!(
        "{} holds a repository that `platform init` was still moving into place when it stopped ({INCOMPLETE} is there)",
        dir.display()
    ))
    .at(dir.join(INCOMPLETE).display().to_string())
}

/// consistency-validate on a repository an init did not finish: what to do instead.
pub fn refuse_interrupted(repo: &Path) -> Result<()> {
    if repo.join(INCOMPLETE).symlink_metadata().is_err() {
        return Ok(());
    }
    Err(interrupted(repo).help(format!(
        "run `platform init {}` again: it removes what the interrupted one wrote and starts over",
        repo.display()
    )))
}

/// The target's real path (a link to an empty folder is written through), its parent, and
/// the name prefix of the folder an init of it builds in.
fn placed(dir: &Path) -> Result<(PathBuf, PathBuf, String)> {
    let target = match dir.symlink_metadata() {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(dir).map_err(|e| Error::io(dir, &e))?
        }
        _ => std::path::absolute(dir).map_err(|e| Error::io(dir, &e))?,
    };
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(Error::input(format!(
            "{} names no new folder: init writes a new repository into a folder",
            dir.display()
        ))
        .help("give init the name of a new folder"));
    };
    let prefix = format!(".{}.platform-init-", name.to_string_lossy());
    Ok((target.clone(), parent.to_path_buf(), prefix))
}

/// Every template file and schema into the new folder `dir`.
fn write_all(dir: &Path, release: Release) -> Result<InitOutcome> {
    let version = env!("CARGO_PKG_VERSION");
    let mut files = Vec::new();
    for t in TEMPLATES {
        let text = t
            .text
            .replace("{{PLATFORM_VERSION}}", version)
            .replace(
                "{{RELEASE_REPO}}",
                release.repository.as_deref().unwrap_or(""),
            )
            .replace(
                "{{RELEASE_SHA256}}",
                release.sha256.as_deref().unwrap_or(""),
            );
        write(&dir.join(t.path), &text, t.executable)?;
        files.push(t.path.to_string());
        crate::failpoint::hit("init_file_written");
    }
    // The schemas the files' yaml-language-server lines name, as `schema --write` writes them.
    for path in crate::schema::write_all(&dir.join("schemas"))? {
        let rel = path.strip_prefix(dir).unwrap_or(&path);
        files.push(rel.display().to_string());
    }
    Ok(InitOutcome {
        dir: dir.to_path_buf(),
        files,
        platform_version: version.to_string(),
        release_pinned: release.repository.is_some() && release.sha256.is_some(),
        release_unset: [
            ("RELEASE_REPO", release.repository.is_none()),
            ("PLATFORM_SHA256", release.sha256.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, unset)| unset.then_some(name))
        .collect(),
        stale: Vec::new(),
    })
}

/// The release flags, checked before anything is written: `owner/name` and 64 hex digits.
fn checked(release: &Release) -> Result<Release> {
    let repository = release.repository.as_deref().map(str::trim);
    if let Some(r) = repository {
        let ok = r.split_once('/').is_some_and(|(o, n)| {
            [o, n].iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            })
        });
        if !ok {
            return Err(Error::input(format!(
                "--release-repo '{}' is not of the form owner/name",
                crate::output::untrusted(r)
            ))
            .help("name the GitHub repository whose releases carry platform, e.g. acme/platform"));
        }
    }
    // A line of SHA256SUMS pasted whole (`<hex>  <file>`) gives its hash.
    let sha256 = release.sha256.as_deref().map(|s| {
        s.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    });
    if let Some(s) = &sha256 {
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(
                Error::input("--release-sha256 must be 64 hex digits (a SHA-256)")
                    .help("copy the hash (the first field) of the x86_64-unknown-linux-musl line of the release's SHA256SUMS"),
            );
        }
    }
    Ok(Release {
        repository: repository.map(String::from),
        sha256,
    })
}

/// A folder under a repository's `tenants/` is a tenant's, never a repository (docs/cli.md):
/// one made there would be checked by nobody, its commands finding the enclosing repository.
fn refuse_inside_tenants(dir: &Path) -> Result<()> {
    // Where it really is: the nearest existing folder with its links resolved, then the rest.
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let real = abs
        .ancestors()
        .find_map(|a| {
            let rest = abs.strip_prefix(a).ok()?;
            std::fs::canonicalize(a).ok().map(|c| c.join(rest))
        })
        .unwrap_or(abs);
    // A `tenants/` folder makes its parent a repository (docs/cli.md): whatever is beside it.
    let enclosing = real
        .ancestors()
        .skip(1)
        .find(|a| a.file_name().is_some_and(|n| n == "tenants"));
    match enclosing {
        Some(tenants) => Err(Error::input(format!(
            "{} is inside {}, the tenant folders of a platform repository: a repository made there would be taken for a tenant's files",
            dir.display(),
            tenants.display()
        ))
        .at(dir.display().to_string())
        .help("give init a folder outside any platform repository's tenants/")),
        None => Ok(()),
    }
}

fn refuse_non_empty(dir: &Path) -> Result<()> {
    if dir
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
        && !dir.exists()
    {
        return Err(Error::input(format!(
            "{} is a symbolic link to nothing: init writes a new repository into a folder",
            dir.display()
        ))
        .at(dir.display().to_string())
        .help("remove the link, or give init the name of a new folder"));
    }
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::input(format!(
                    "{} is not empty: init writes a new repository and overwrites nothing",
                    dir.display()
                ))
                .at(dir.display().to_string())
                .help("give init a new folder, or an empty one"));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(Error::input(format!(
            "{} is a file, not a folder: init writes a new repository into a folder",
            dir.display()
        ))
        .at(dir.display().to_string())
        .help("give init the name of a new folder, or of an empty one")),
        Err(e) => Err(Error::io(dir, &e)
            .help("give init a new folder, or an empty one this user can read and write")),
    }
}

fn write(path: &Path, text: &str, executable: bool) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, &e))?;
    }
    write_atomic(path, text.as_bytes(), false)?;
    if executable {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(path, &e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_flags_are_checked_before_writing() {
        let (_t, dir) = crate::testing::scratch("new");
        let bad_repo = Release {
            repository: Some("no-slash".into()),
            sha256: None,
        };
        assert_eq!(init(&dir, &bad_repo).unwrap_err().exit_code(), 2);
        let bad_sum = Release {
            repository: None,
            sha256: Some("abc".into()),
        };
        assert_eq!(init(&dir, &bad_sum).unwrap_err().exit_code(), 2);
        assert!(!dir.exists(), "nothing written");
    }

    #[test]
    fn a_non_empty_folder_is_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("keep.txt"), "mine").unwrap();
        let err = init(t.path(), &Release::default()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            std::fs::read_to_string(t.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }
}
