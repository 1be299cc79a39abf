//! `platform consistency-validate`: every finding of the repository, rendered as text, JSON or GitHub annotations; exit 1 on any error.
use super::Ctx;
use crate::cli::{ConsistencyValidateArgs, Format};
use crate::error::{Error, Result};
use crate::findings::Finding;
use crate::output::untrusted;
use crate::output::Report;
use crate::repo::Repo;
use crate::validate;
use serde_json::json;

pub fn run(ctx: &Ctx, args: &ConsistencyValidateArgs) -> Result<Report> {
    let root = ctx.repo();
    // A missing or unreadable repository is an input error (exit 2), not "0 findings".
    if let Err(e) = std::fs::read_dir(root) {
        return Err(
            Error::input(format!("cannot read repository {}: {e}", root.display())).help(
                "pass --repo DIR pointing at a platform repository (modules/, tenants/, config/)",
            ),
        );
    }
    if !root.join("modules").is_dir() && !root.join("tenants").is_dir() {
        return Err(Error::input(format!(
            "{} is not a platform repository: it has neither modules/ nor tenants/",
            root.display()
        ))
        .help("run this in the repository root, or pass --repo DIR"));
    }
    let repo = Repo::load(root)?;
    let (errors, warnings) = validate::split(sort(validate::repository(&repo)));
    let code = if errors.is_empty() { 0 } else { 1 };
    let doc = json!({
        "errors": errors.iter().map(to_json).collect::<Vec<_>>(),
        "warnings": warnings.iter().map(to_json).collect::<Vec<_>>(),
    });
    // The dispatcher prints `text`: each format renders into it, from the same findings.
    let text = match args.format {
        Format::Text => render_text(&errors, &warnings),
        Format::Json => serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into()),
        Format::Github => render_github(&errors, &warnings),
    };
    let report = Report::new(text, doc).exit(code);
    Ok(match args.format {
        Format::Github => report.annotations(),
        _ => report,
    })
}

/// Group by file, then by line, keeping each file's findings in the order the checks found them.
fn sort(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by(|a, b| {
        a.file
            .cmp(&b.file)
            .then(a.line.unwrap_or(0).cmp(&b.line.unwrap_or(0)))
    });
    findings
}

/// `{"file", "field", "message"}`, plus `line` and `column` when known.
fn to_json(f: &Finding) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    o.insert("file".into(), json!(f.file));
    o.insert("field".into(), json!(f.field));
    o.insert("message".into(), json!(f.message));
    if let Some(l) = f.line {
        o.insert("line".into(), json!(l));
    }
    if let Some(c) = f.column {
        o.insert("column".into(), json!(c));
    }
    serde_json::Value::Object(o)
}

fn render_text(errors: &[Finding], warnings: &[Finding]) -> String {
    let mut out = String::new();
    for (label, list) in [("error", errors), ("warning", warnings)] {
        for f in list {
            out.push_str(&format!(
                "{label}: {}\n  --> {}\n",
                untrusted(&f.message),
                untrusted(&f.location())
            ));
            if !f.field.is_empty() {
                out.push_str(&format!("   field: {}\n", untrusted(&f.field)));
            }
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "{} errors, {} warnings\n",
        errors.len(),
        warnings.len()
    ));
    out
}

fn render_github(errors: &[Finding], warnings: &[Finding]) -> String {
    let mut out = String::new();
    for (label, list) in [("error", errors), ("warning", warnings)] {
        for f in list {
            let mut props = format!("file={}", escape_property(&f.file));
            if let Some(l) = f.line {
                props.push_str(&format!(",line={l}"));
            }
            if let Some(c) = f.column {
                props.push_str(&format!(",col={c}"));
            }
            let body = if f.field.is_empty() {
                f.message.clone()
            } else {
                format!("{}: {}", f.field, f.message)
            };
            out.push_str(&format!("::{label} {props}::{}\n", escape_data(&body)));
        }
    }
    out.push_str(&format!(
        "{} errors, {} warnings\n",
        errors.len(),
        warnings.len()
    ));
    out
}

/// GitHub workflow-command escaping of a message.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// GitHub workflow-command escaping of a property value (also `:` and `,`, its separators).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_escaping() {
        assert_eq!(escape_data("50%\r\nx"), "50%25%0D%0Ax");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }
}
