//! Runtime profiles under config/: each `runtime_profile.<name>.yml` against its schema, then its github block by the rules every GitHub command applies (https, tag templates); the blocks that pass are what work orders' release tags are rendered with.
use crate::findings::Finding;
use crate::github::settings::GithubSettings;
use crate::repo::Repo;
use crate::schema::SchemaKind;
use crate::yaml;

pub fn check(repo: &Repo) -> Vec<Finding> {
    let mut out = Vec::new();
    for file in profile_files(repo) {
        if let Err(found) = github_block(repo, &file) {
            out.extend(found);
        }
    }
    out
}

/// The `github:` block of each profile under config/ that passes [`check`], by file (relative
/// to the repository); when none has one, the defaults under the label "the default github:
/// block" (a block added later without `release_tag` renders its template). What
/// consistency-validate renders a work order's release tag with.
pub fn github_blocks(repo: &Repo) -> Vec<(String, GithubSettings)> {
    let mut out: Vec<(String, GithubSettings)> = profile_files(repo)
        .iter()
        .filter_map(|file| github_block(repo, file).ok().flatten())
        .collect();
    if out.is_empty() {
        out.push((
            "the default github: block".into(),
            GithubSettings::for_repository("owner/repository"),
        ));
    }
    out
}

/// Every `config/runtime_profile.<name>.yml` (or `.yaml`), sorted.
fn profile_files(repo: &Repo) -> Vec<std::path::PathBuf> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(repo.root.join("config"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.starts_with("runtime_profile.")
                            && (n.ends_with(".yml") || n.ends_with(".yaml"))
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// One profile's `github:` block (None when it has none), or its findings.
fn github_block(
    repo: &Repo,
    file: &std::path::Path,
) -> Result<Option<(String, GithubSettings)>, Vec<Finding>> {
    let doc = yaml::load(&repo.root, file).map_err(|f| vec![f])?;
    // An empty profile means "all defaults", as the loader treats it.
    if doc.value.is_null() {
        return Ok(None);
    }
    let violations = doc.schema_findings(SchemaKind::RuntimeProfile);
    if !violations.is_empty() {
        return Err(violations);
    }
    // The checks the publisher, deliveries and state commands run (one parser: a profile
    // that passes here is one they accept).
    let Some(github) = doc.value.get("github") else {
        return Ok(None);
    };
    match GithubSettings::check(github, &doc.rel) {
        Ok(settings) => Ok(Some((doc.rel.clone(), settings))),
        Err(e) => Err(vec![doc.finding(&error_field(&e.message), with_help(&e))]),
    }
}

/// The key an error of `GithubSettings` names first (`github.api_url ...`), else `github`.
fn error_field(message: &str) -> String {
    message
        .split_whitespace()
        .next()
        .filter(|w| w.starts_with("github."))
        .map(|w| w.trim_end_matches([':', ',']).to_string())
        .unwrap_or_else(|| "github".to_string())
}

fn with_help(e: &crate::error::Error) -> String {
    match &e.help {
        Some(h) => format!("{}; {h}", e.message),
        None => e.message.clone(),
    }
}
