//! The runtime profile's `github:` block: repository, API base URL and release tag templates,
//! and the rules that keep the token on https and the state release out of a template's reach.
use super::guard::check_token_url;
use super::tag_template::{ReleaseOwner, TagTemplate, PLACEHOLDERS};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

pub const DEFAULT_API_URL: &str = "https://api.github.com";
pub const DEFAULT_RELEASE_TAG: &str = "artifacts-{tenant_id}-{work_order_id}-r{run}";
pub const DEFAULT_STATE_TAG: &str = "billing-state-v1";

/// Git refuses some tag names and GitHub rewrites odd characters; a conservative alphabet keeps
/// a tag the same in URLs, in `git tag` and in the evidence that names it.
const MAX_TAG_LEN: usize = 128;

/// `github: {repository, api_url, release_tag, state_tag}`; the key names are pinned by SPEC §2.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GithubSettings {
    /// `owner/name`.
    pub repository: String,
    /// REST base URL: `https://api.github.com`, `https://ghe.example.com/api/v3`, or a test server.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Template of the release that deliveries and the publisher upload to.
    #[serde(default = "default_release_tag")]
    pub release_tag: String,
    /// The (draft) release that holds the billing-state files.
    #[serde(default = "default_state_tag")]
    pub state_tag: String,
}

/// The variable GitHub Actions sets to the workflow's repository (`owner/name`).
pub const REPOSITORY_ENV: &str = "GITHUB_REPOSITORY";

/// The block with `repository` filled in from `default` when it names none (None when it
/// names none and there is no default). A value that is not an object is left for serde
/// to refuse.
fn with_repository(value: &serde_json::Value, default: Option<&str>) -> Option<serde_json::Value> {
    let Some(obj) = value.as_object() else {
        return Some(value.clone());
    };
    if obj.contains_key("repository") {
        return Some(value.clone());
    }
    let default = default.map(str::trim).filter(|d| !d.is_empty())?;
    let mut obj = obj.clone();
    obj.insert("repository".into(), default.into());
    Some(serde_json::Value::Object(obj))
}

fn default_api_url() -> String {
    DEFAULT_API_URL.to_string()
}
fn default_release_tag() -> String {
    DEFAULT_RELEASE_TAG.to_string()
}
fn default_state_tag() -> String {
    DEFAULT_STATE_TAG.to_string()
}

impl GithubSettings {
    /// Settings for `owner/name` with every other key at its default.
    pub fn for_repository(repository: impl Into<String>) -> Self {
        GithubSettings {
            repository: repository.into(),
            api_url: default_api_url(),
            release_tag: default_release_tag(),
            state_tag: default_state_tag(),
        }
    }

    /// Deserialise a profile's `github:` value (already parsed from YAML) and validate it;
    /// `file` names the profile in errors. A block without `repository` takes
    /// `$GITHUB_REPOSITORY` (set by GitHub Actions: a fork runs against itself unedited).
    pub fn from_value(value: &serde_json::Value, file: &str) -> Result<Self> {
        let env = std::env::var(REPOSITORY_ENV).ok();
        let Some(value) = with_repository(value, env.as_deref()) else {
            return Err(Error::input(format!(
                "github.repository is not set, and neither is {REPOSITORY_ENV}"
            ))
            .at(file.to_string())
            .help("name the repository in the profile (github: {repository: owner/name}), or run where GITHUB_REPOSITORY is set (GitHub Actions sets it)"));
        };
        Self::parse(&value, file)
    }

    /// [`Self::from_value`] for checking a profile before it is used: a block without
    /// `repository` is checked as if `$GITHUB_REPOSITORY` (or a stand-in) named one, since
    /// the variable is only set where the profile runs.
    pub fn check(value: &serde_json::Value, file: &str) -> Result<Self> {
        let env = std::env::var(REPOSITORY_ENV).ok();
        let value = with_repository(value, Some(env.as_deref().unwrap_or("owner/repository")))
            .unwrap_or_else(|| value.clone());
        Self::parse(&value, file)
    }

    fn parse(value: &serde_json::Value, file: &str) -> Result<Self> {
        let settings: GithubSettings = serde_json::from_value(value.clone()).map_err(|e| {
            Error::input(format!("invalid github: block: {e}"))
                .at(file.to_string())
                .help("expected github: {repository: owner/name, api_url, release_tag, state_tag} (see `platform schema runtime-profile`)")
        })?;
        settings.validate().map_err(|e| e.at(file.to_string()))?;
        Ok(settings)
    }

    /// `owner` and `name` of the repository (validated by `validate`).
    pub fn owner_and_name(&self) -> Result<(&str, &str)> {
        match self.repository.split_once('/') {
            Some((o, n)) if valid_repo_part(o) && valid_repo_part(n) => Ok((o, n)),
            _ => Err(Error::input(format!(
                "github.repository '{}' is not of the form owner/name",
                self.repository
            ))
            .help("set github.repository to e.g. acme/platform-artifacts")),
        }
    }

    /// Check every key; errors name the key and what is expected.
    pub fn validate(&self) -> Result<()> {
        self.owner_and_name()?;
        check_token_url(&self.api_url, "github.api_url")?;
        check_tag(&self.state_tag, "github.state_tag")
            .map_err(|e| e.help("use [A-Za-z0-9._-], e.g. billing-state-v1"))?;
        self.release_template().map(|_| ())
    }

    /// The parsed `release_tag`, checked: known placeholders only, the tag alphabet, the
    /// tenant in every tag (so no tenant writes a release named for another), and no run of
    /// any work order able to render `state_tag`.
    pub fn release_template(&self) -> Result<TagTemplate> {
        let template = TagTemplate::parse(&self.release_tag)?;
        check_tag(&template.probe(), "github.release_tag").map_err(|e| {
            e.help(format!(
                "use [A-Za-z0-9._-] and the placeholders {}",
                PLACEHOLDERS.join(" ")
            ))
        })?;
        if !template.uses_tenant_id() {
            return Err(Error::input(format!(
                "github.release_tag '{}' does not contain {{tenant_id}}: two tenants' work orders could write one release",
                self.release_tag
            ))
            .help("include {tenant_id}, e.g. artifacts-{tenant_id}-{work_order_id}-r{run}"));
        }
        if template.could_render(&self.state_tag) {
            return Err(Error::input(format!(
                "github.release_tag '{}' could render the state tag '{}' for some tenant, work order and run: a delivery could then write the billing state",
                self.release_tag, self.state_tag
            ))
            .help("give release_tag a fixed prefix that state_tag does not have, e.g. artifacts-{tenant_id}-{work_order_id}-r{run}"));
        }
        Ok(template)
    }

    /// The release tag of one run of one work order (IDs are `[A-Za-z0-9_-]`, so the result
    /// stays within the tag alphabet when the template does).
    pub fn render_release_tag(&self, owner: &ReleaseOwner) -> Result<String> {
        Ok(self.release_template()?.render(owner))
    }

    /// [`Self::render_release_tag`], refused unless the tag itself is one (`check_tag`): two
    /// IDs of up to 64 characters each can render a tag over 128. The one
    /// function the publisher, deliver_github_release's check before the charge and
    /// consistency-validate all call, so none accepts a tag another refuses.
    pub fn checked_release_tag(&self, owner: &ReleaseOwner) -> Result<String> {
        let tag = self.render_release_tag(owner)?;
        check_tag(&tag, "release tag").map_err(|e| {
            Error::input(format!("{} ({} characters)", e.message, tag.len())).help(
                "shorten the tenant or work order id, or the fixed text of the profile's github.release_tag",
            )
        })?;
        Ok(tag)
    }

    /// `https://github.com/owner/name` style link for messages; GHE hosts keep their host.
    pub fn web_url(&self) -> String {
        let api = self.api_url.trim_end_matches('/');
        if api == DEFAULT_API_URL {
            return format!("https://github.com/{}", self.repository);
        }
        let host = api.strip_suffix("/api/v3").unwrap_or(api);
        format!("{host}/{}", self.repository)
    }
}

fn valid_repo_part(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s != "." && s != ".." && safe_name_chars(s)
}

/// A tag (or a rendered template) must be non-empty, short and use the safe alphabet.
pub fn check_tag(tag: &str, field: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && !tag.starts_with('-')
        && !tag.starts_with('.')
        && !tag.ends_with('.')
        && !tag.contains("..")
        && safe_name_chars(tag);
    if ok {
        Ok(())
    } else {
        Err(Error::input(format!(
            "{field} '{tag}' is not a safe tag name (1-{MAX_TAG_LEN} characters of [A-Za-z0-9._-], not starting with '-' or '.', no '..')"
        )))
    }
}

/// Only `[A-Za-z0-9._-]`: what GitHub keeps as is in tag and asset names (and what travels
/// unencoded in a URL or query string).
pub(crate) fn safe_name_chars(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_render() {
        let v = serde_json::json!({"repository": "acme/artifacts"});
        let s = GithubSettings::from_value(&v, "p.yml").unwrap();
        assert_eq!(s.api_url, DEFAULT_API_URL);
        assert_eq!(s.state_tag, DEFAULT_STATE_TAG);
        assert_eq!(
            s.render_release_tag(&ReleaseOwner::new("t1", "wo-7", 3))
                .unwrap(),
            "artifacts-t1-wo-7-r3"
        );
        assert_eq!(s.web_url(), "https://github.com/acme/artifacts");
    }

    #[test]
    fn rejects_bad_values() {
        for v in [
            serde_json::json!({"repository": "acme"}),
            serde_json::json!({"repository": "a/b/c"}),
            serde_json::json!({"repository": "a/b", "api_url": "ftp://x"}),
            serde_json::json!({"repository": "a/b", "release_tag": "r-{nope}"}),
            serde_json::json!({"repository": "a/b", "state_tag": "a b"}),
            serde_json::json!({"repository": "a/b", "extra": 1}),
            serde_json::json!({"repository": "a/b", "api_url": "http://api.github.com"}),
            serde_json::json!({"repository": "a/b", "release_tag": "a-{work_order_id}-{run}"}),
            serde_json::json!({"repository": "a/b", "release_tag": "{tenant_id}"}),
            serde_json::json!({"repository": "a/b", "release_tag": "b-{tenant_id}", "state_tag": "B-state"}),
        ] {
            let err = GithubSettings::from_value(&v, "p.yml").unwrap_err();
            assert_eq!(err.exit_code(), 2, "{v}");
            assert_eq!(err.location.as_deref(), Some("p.yml"));
        }
    }

    #[test]
    fn a_block_without_repository_takes_the_default() {
        let v = serde_json::json!({"state_tag": "state-v2"});
        let filled = with_repository(&v, Some("fork-owner/platform")).unwrap();
        let s = GithubSettings::parse(&filled, "p.yml").unwrap();
        assert_eq!(s.repository, "fork-owner/platform");
        assert_eq!(s.state_tag, "state-v2");
        assert!(with_repository(&v, None).is_none());
        assert!(with_repository(&v, Some("  ")).is_none());
        let named = serde_json::json!({"repository": "own/repo"});
        assert_eq!(with_repository(&named, Some("x/y")).unwrap(), named);
    }

    #[test]
    fn loopback_http_and_unambiguous_templates_pass() {
        for v in [
            serde_json::json!({"repository": "a/b", "api_url": "http://127.0.0.1:9"}),
            serde_json::json!({"repository": "a/b", "release_tag": "{tenant_id}.{work_order_id}.{run}"}),
            serde_json::json!({"repository": "a/b", "release_tag": "{tenant_id}", "state_tag": "state.v1"}),
        ] {
            assert!(GithubSettings::from_value(&v, "p.yml").is_ok(), "{v}");
        }
    }
}
