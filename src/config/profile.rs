//! Runtime profiles (config/runtime_profile.<name>.yml): where state lives, SMTP and GitHub
//! settings. The smtp/github blocks stay JSON here and are typed by the modules that use them;
//! the github block is checked at load all the same (SPEC §6: https, safe tag templates).
use crate::error::{Error, Result};
use crate::github::GithubSettings;
use crate::schema::SchemaKind;
use crate::yaml;
use std::path::{Path, PathBuf};

pub const DEFAULT_PROFILE: &str = "config/runtime_profile.local.yml";
pub const DEFAULT_BILLING_STATE_DIR: &str = ".billing-state";
pub const DEFAULT_RUNTIME_DIR: &str = "runtime";

#[derive(Debug, Clone, Default)]
pub struct RuntimeProfile {
    /// The repository root: relative paths in the profile, and the defaults, are under it.
    pub repo: PathBuf,
    pub path: Option<PathBuf>,
    pub profile_name: Option<String>,
    pub billing_state_dir: Option<String>,
    pub runtime_dir: Option<String>,
    pub smtp: Option<serde_json::Value>,
    pub github: Option<serde_json::Value>,
}

impl RuntimeProfile {
    /// `--runtime-profile F` when given (must exist), else the repo's local profile when it
    /// exists, else an empty profile (all defaults).
    pub fn load(repo: &Path, flag: Option<&Path>) -> Result<RuntimeProfile> {
        let path = match flag {
            Some(p) => {
                if !present(p)? {
                    return Err(Error::input(format!("runtime profile {} does not exist", p.display()))
                        .help("pass an existing file to --runtime-profile, e.g. config/runtime_profile.local.yml"));
                }
                // yaml::load's advice for a folder in place of a config file ("replace it
                // with the YAML file itself (or remove it)") would have the operator delete
                // the folder the flag named by mistake.
                if let Err(crate::beneath::Refused {
                    reason: crate::beneath::Reason::NotAFile(kind),
                    ..
                }) = crate::beneath::open_trusted(p)
                {
                    return Err(Error::input(format!(
                        "--runtime-profile {} is {}, not a regular file",
                        p.display(),
                        kind.describe()
                    ))
                    .help("pass a runtime profile's YAML file to --runtime-profile, e.g. config/runtime_profile.local.yml"));
                }
                p.to_path_buf()
            }
            None => {
                if let Some(twin) = super::yaml_twin(repo, DEFAULT_PROFILE) {
                    return Err(twin.into_error());
                }
                let p = repo.join(DEFAULT_PROFILE);
                if !present(&p)? {
                    return Ok(RuntimeProfile {
                        repo: repo.to_path_buf(),
                        ..Default::default()
                    });
                }
                p
            }
        };
        let base = if path.starts_with(repo) {
            repo
        } else {
            Path::new("")
        };
        crate::output::debug(|| format!("runtime profile: {}", path.display()));
        let doc = yaml::load(base, &path).map_err(|f| f.into_error())?;
        if doc.value.is_null() {
            return Ok(RuntimeProfile {
                repo: repo.to_path_buf(),
                path: Some(path),
                ..Default::default()
            });
        }
        let violations = doc.schema_findings(SchemaKind::RuntimeProfile);
        if let Some(f) = violations.into_iter().next() {
            return Err(f.into_error().help("see `platform schema runtime-profile`"));
        }
        // Refused here, before any command uses it: an http:// API off this machine, or a
        // release_tag that could name the state release (the client checks again).
        if let Some(github) = doc.value.get("github") {
            GithubSettings::check(github, &doc.rel)?;
        }
        let s = |k: &str| doc.value.get(k).and_then(|v| v.as_str()).map(String::from);
        Ok(RuntimeProfile {
            repo: repo.to_path_buf(),
            path: Some(path),
            profile_name: s("profile_name"),
            billing_state_dir: s("billing_state_dir"),
            runtime_dir: s("runtime_dir"),
            smtp: doc.value.get("smtp").cloned(),
            github: doc.value.get("github").cloned(),
        })
    }

    /// The billing-state directory: the flag (relative to the current directory), else the
    /// profile's, else `.billing-state` (both relative to the repository).
    pub fn billing_state_dir(&self, flag: Option<&Path>) -> PathBuf {
        self.pick(
            flag,
            self.billing_state_dir.as_deref(),
            DEFAULT_BILLING_STATE_DIR,
        )
    }

    /// The runtime directory, resolved like `billing_state_dir`; default `runtime`.
    pub fn runtime_dir(&self, flag: Option<&Path>) -> PathBuf {
        self.pick(flag, self.runtime_dir.as_deref(), DEFAULT_RUNTIME_DIR)
    }

    fn pick(&self, flag: Option<&Path>, profile: Option<&str>, default: &str) -> PathBuf {
        match flag {
            Some(f) => f.to_path_buf(),
            None => self.repo.join(profile.unwrap_or(default)),
        }
    }
}

/// Whether a profile is there: a link that leads to no file is, and is refused when read,
/// so it never silently means the defaults.
fn present(path: &Path) -> Result<bool> {
    yaml::entry_exists(path)
        .map_err(|e| Error::input(format!("runtime profile {}: {e}", path.display())))
}
