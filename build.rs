//! Build script: the commit and commit date that `platform --version` reports, from git when
//! the sources are a checkout, else from PLATFORM_BUILD_COMMIT / PLATFORM_BUILD_DATE (a
//! packager building a source tarball may set them), else none: the build never needs git.
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PLATFORM_BUILD_COMMIT");
    println!("cargo:rerun-if-env-changed=PLATFORM_BUILD_DATE");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let from_git = git(&dir, &["log", "-1", "--format=%h %cs"]);
    if from_git.is_some() {
        watch_head(&dir);
    }
    let (git_commit, git_date) = match from_git.as_deref().and_then(|s| s.split_once(' ')) {
        Some((c, d)) => (Some(c.to_string()), Some(d.to_string())),
        None => (None, None),
    };
    let commit = env_nonempty("PLATFORM_BUILD_COMMIT").or(git_commit);
    let date = env_nonempty("PLATFORM_BUILD_DATE").or(git_date);
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    // Always `X.Y.Z` first: release.yml checks that `--version` starts `platform X.Y.Z`.
    let line = match (commit, date) {
        (Some(c), Some(d)) => format!("{version} ({c} {d})"),
        (Some(c), None) => format!("{version} ({c})"),
        _ => version,
    };
    println!("cargo:rustc-env=PLATFORM_VERSION_LINE={line}");
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The trimmed stdout of `git -C dir args`, or None when git is missing or fails (no
/// repository: a source tarball).
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// Rebuild when HEAD moves: HEAD itself (a checkout), the branch it names (a commit) and
/// packed-refs (a `git gc`), in the git directory of a worktree or of the repository.
fn watch_head(dir: &Path) {
    let paths = git(
        dir,
        &[
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            "HEAD",
            "--git-common-dir",
            "--symbolic-full-name",
            "HEAD",
        ],
    );
    let lines: Vec<String> = paths
        .map(|p| p.lines().map(String::from).collect())
        .unwrap_or_default();
    if let [head, common, branch] = lines.as_slice() {
        let mut watched = vec![PathBuf::from(head), Path::new(common).join("packed-refs")];
        if branch.starts_with("refs/") {
            watched.push(Path::new(common).join(branch));
        }
        // A path that does not exist would make cargo rerun this script on every build.
        for path in watched.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
