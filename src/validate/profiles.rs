//! Runtime profiles under config/: each `runtime_profile.<name>.yml` against its schema, its release-tag placeholders and the github block's own rules.
use crate::findings::{self, Finding};
use crate::github::settings::GithubSettings;
use crate::repo::{yaml, Repo};
use crate::schema::{self, SchemaKind};

/// The placeholders `github.release_tag` may use (SPEC §2).
const TAG_PLACEHOLDERS: [&str; 3] = ["tenant_id", "work_order_id", "run"];

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
        let violations = findings::from_violations(
            &doc,
            schema::validate(SchemaKind::RuntimeProfile, &doc.value),
        );
        if !violations.is_empty() {
            out.extend(violations);
            continue;
        }
        let before = out.len();
        if let Some(tag) = doc
            .value
            .pointer("/github/release_tag")
            .and_then(|v| v.as_str())
        {
            for name in placeholders(tag) {
                if !TAG_PLACEHOLDERS.contains(&name.as_str()) {
                    out.push(doc.finding(
                        "github.release_tag",
                        format!("release_tag uses unknown placeholder '{{{name}}}'; available: {{tenant_id}} {{work_order_id}} {{run}}"),
                    ));
                }
            }
        }
        // Then the checks the publisher and state commands run, so a profile that passes here
        // is one they accept (one finding per cause: skipped when a placeholder was wrong).
        if let (Some(github), true) = (doc.value.get("github"), out.len() == before) {
            if let Err(e) = GithubSettings::from_value(github, &doc.rel) {
                let field = e
                    .message
                    .split_whitespace()
                    .next()
                    .filter(|w| w.starts_with("github."))
                    .map(|w| w.trim_end_matches([':', ',']).to_string())
                    .unwrap_or_else(|| "github".to_string());
                let msg = match &e.help {
                    Some(h) => format!("{}; {h}", e.message),
                    None => e.message.clone(),
                };
                out.push(doc.finding(&field, msg));
            }
        }
    }
    out
}

/// The `{name}` placeholders of a template, in order.
fn placeholders(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                out.push(after[..end].to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}
