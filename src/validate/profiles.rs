//! Runtime profiles under config/: each `runtime_profile.<name>.yml` against its schema, then its github block by the rules every GitHub command applies (https, tag templates).
use crate::findings::Finding;
use crate::github::settings::GithubSettings;
use crate::repo::Repo;
use crate::schema::SchemaKind;
use crate::yaml;

pub fn check(repo: &Repo) -> Vec<Finding> {
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
    let mut out = Vec::new();
    for file in files {
        let doc = match yaml::load(&repo.root, &file) {
            Ok(d) => d,
            Err(f) => {
                out.push(f);
                continue;
            }
        };
        // An empty profile means "all defaults", as the loader treats it.
        if doc.value.is_null() {
            continue;
        }
        let violations = doc.schema_findings(SchemaKind::RuntimeProfile);
        if !violations.is_empty() {
            out.extend(violations);
            continue;
        }
        // The checks the publisher, deliveries and state commands run (one parser: a profile
        // that passes here is one they accept).
        if let Some(github) = doc.value.get("github") {
            if let Err(e) = GithubSettings::check(github, &doc.rel) {
                out.push(doc.finding(&error_field(&e.message), with_help(&e)));
            }
        }
    }
    out
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
