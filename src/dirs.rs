//! The directories a command works on, each found one way for every command (flag, else the runtime profile's, else the default), and the billing-state directory refused one way when a reader needs it to exist.
use crate::config::profile::RuntimeProfile;
use crate::error::Result;
use std::path::{Path, PathBuf};

/// The billing-state directory. `flag` is `--billing-state-dir` as given (relative to the
/// current directory); without it, the runtime profile (`profile` is `--runtime-profile`,
/// else the repository's local one) decides, relative to the repository, else
/// `.billing-state`. The profile is read only when the flag is absent, so a command that
/// names its directory is not stopped by a profile it does not need.
pub fn billing_state(repo: &Path, profile: Option<&Path>, flag: Option<&Path>) -> Result<PathBuf> {
    let dir = flag_or_profile(repo, profile, flag, |p| p.billing_state_dir(None))?;
    crate::output::debug(|| format!("billing-state directory: {}", dir.display()));
    Ok(dir)
}

/// The runtime directory, found like [`billing_state`]; default `runtime`.
pub fn runtime(repo: &Path, profile: Option<&Path>, flag: Option<&Path>) -> Result<PathBuf> {
    let dir = flag_or_profile(repo, profile, flag, |p| p.runtime_dir(None))?;
    crate::output::debug(|| format!("runtime directory: {}", dir.display()));
    Ok(dir)
}

/// The flag's directory, else the profile's (read only then).
fn flag_or_profile(
    repo: &Path,
    profile: Option<&Path>,
    flag: Option<&Path>,
    of_profile: impl FnOnce(&RuntimeProfile) -> PathBuf,
) -> Result<PathBuf> {
    match flag {
        Some(dir) => Ok(dir.to_path_buf()),
        None => Ok(of_profile(&RuntimeProfile::load(repo, profile)?)),
    }
}

/// As [`billing_state`], with the profile already loaded, or `None` for one that failed to
/// load (the command reports that later): a denial still finds a directory to be audited in.
pub fn billing_state_of(
    repo: &Path,
    profile: Option<&RuntimeProfile>,
    flag: Option<&Path>,
) -> PathBuf {
    match profile {
        Some(p) => p.billing_state_dir(flag),
        None => RuntimeProfile {
            repo: repo.to_path_buf(),
            ..RuntimeProfile::default()
        }
        .billing_state_dir(flag),
    }
}

/// For a command that reads the billing-state directory: a missing one is an input error
/// (exit 2), never a silent empty ledger.
pub fn existing(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(crate::ledger::missing_dir(dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_then_profile_then_default() {
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path();
        let flag = Path::new("elsewhere/state");
        assert_eq!(billing_state(root, None, Some(flag)).unwrap(), flag);
        assert_eq!(
            billing_state(root, None, None).unwrap(),
            root.join(".billing-state")
        );
        assert_eq!(runtime(root, None, None).unwrap(), root.join("runtime"));
        std::fs::create_dir_all(root.join("config")).unwrap();
        std::fs::write(
            root.join("config/runtime_profile.local.yml"),
            "billing_state_dir: ledger-here\nruntime_dir: scratch\n",
        )
        .unwrap();
        assert_eq!(
            billing_state(root, None, None).unwrap(),
            root.join("ledger-here")
        );
        assert_eq!(runtime(root, None, None).unwrap(), root.join("scratch"));
        assert_eq!(billing_state(root, None, Some(flag)).unwrap(), flag);
        assert_eq!(
            billing_state_of(root, None, None),
            root.join(".billing-state")
        );
        let err = existing(&root.join("missing")).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.message.contains("does not exist"), "{}", err.message);
    }
}
