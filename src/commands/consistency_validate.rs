//! `platform consistency-validate`: the findings of `crate::validate::report`, rendered as text, JSON or GitHub annotations; exit 1 on any error.
use super::Ctx;
use crate::cli::{ConsistencyValidateArgs, Format};
use crate::error::Result;
use crate::findings::Finding;
use crate::output::{untrusted, Report, View};
use crate::validate::report::{check_repository, Findings};
use serde::Serialize;

pub fn run(ctx: &Ctx, args: &ConsistencyValidateArgs) -> Result<Report> {
    crate::init::refuse_interrupted(ctx.repo())?;
    let findings = check_repository(ctx.repo())?;
    let report = Report::of(&Rendered {
        findings,
        format: args.format(),
    });
    Ok(match args.format() {
        Format::Github => report.annotations(),
        _ => report,
    })
}

/// The findings and the format asked for: the dispatcher prints `text`, so each format
/// renders into it, from the same findings.
#[derive(Serialize)]
struct Rendered {
    #[serde(flatten)]
    findings: Findings,
    #[serde(skip)]
    format: Format,
}

impl View for Rendered {
    fn text(&self) -> String {
        let Findings { errors, warnings } = &self.findings;
        let mut out = match self.format {
            // As every `--json` document: keys sorted, versioned.
            Format::Json => return crate::output::json_document(&self.findings),
            Format::Text => render_text(errors, warnings),
            Format::Github => render_github(errors, warnings),
        };
        out.push_str(&format!(
            "{} errors, {} warnings\n",
            errors.len(),
            warnings.len()
        ));
        out
    }

    fn exit_code(&self) -> u8 {
        u8::from(!self.findings.errors.is_empty())
    }
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
