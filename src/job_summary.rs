//! GitHub Actions job summary: Markdown views of command reports, appended to `$GITHUB_STEP_SUMMARY` below GitHub's 1 MiB cap; it never fails a command.
use crate::findings::Finding;
use crate::ledger::MergeReport;
use crate::orchestrator::notices::LowBalance;
use crate::orchestrator::plan::Plan;
use crate::orchestrator::report::RunReport;
use crate::orchestrator::{Invalid, Summary};
use crate::records::{RunStatus, StepStatus};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The variable GitHub Actions sets to the step's summary file.
pub const ENV: &str = "GITHUB_STEP_SUMMARY";

/// GitHub shows no summary at all for a step whose file grew past 1 MiB.
pub const GITHUB_LIMIT: u64 = 1024 * 1024;

/// How large we let the file grow: headroom below the limit, so that a `run:` line echoing
/// into the same file after the command does not push the step over it.
pub const CAP: u64 = GITHUB_LIMIT - 16 * 1024;

/// How many names a list in a summary shows before "and N more": the counts are what a
/// reader scans, and the full lists are in the step log and `--json`.
const LIST_MAX: usize = 50;

/// What [`append_capped`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    All,
    /// The first `shown` bytes of `total`, cut at a line end, and a note saying so.
    Truncated {
        shown: usize,
        total: usize,
    },
    /// The file had no room left even for the note.
    Nothing,
}

/// `$GITHUB_STEP_SUMMARY` names a file: a summary rendered now will be written.
pub fn wanted() -> bool {
    target().is_some()
}

fn target() -> Option<PathBuf> {
    std::env::var_os(ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// Append `markdown` to the file named by `$GITHUB_STEP_SUMMARY`, when it names one.
/// Failures become a note on stderr: a summary is a view, and losing it must not turn a
/// successful run (whose ledger records are already durable) into a failed one.
pub fn append(markdown: &str) {
    let Some(path) = target() else {
        return;
    };
    match append_capped(&path, markdown, CAP) {
        Ok(Appended::All) => {}
        Ok(Appended::Truncated { shown, total }) => crate::output::progress(&format!(
            "note: job summary truncated to {shown} of {total} bytes to stay under GitHub's 1 MiB limit ({})",
            path.display()
        )),
        Ok(Appended::Nothing) => crate::output::progress(&format!(
            "note: job summary {} is already near GitHub's 1 MiB limit; this command's summary was left out",
            path.display()
        )),
        Err(e) => crate::output::progress(&format!(
            "note: could not write the job summary {}: {e}; the command's outcome is unaffected",
            path.display()
        )),
    }
}

/// Append `markdown` to `path` so that the file stays at or below `cap` bytes; when it does
/// not fit, keep whole lines (a table cut between rows still renders) and add a note.
pub fn append_capped(path: &Path, markdown: &str, cap: u64) -> std::io::Result<Appended> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let used = file.metadata()?.len();
    let room = usize::try_from(cap.saturating_sub(used)).unwrap_or(usize::MAX);
    let total = markdown.len();
    let (text, outcome) = if total <= room {
        (markdown.to_string(), Appended::All)
    } else {
        // `shown <= total`, so the note with `total` twice is the longest it can be.
        let longest_note = truncation_note(total, total).len();
        let Some(budget) = room.checked_sub(longest_note) else {
            return Ok(Appended::Nothing);
        };
        let mut cut = budget.min(total);
        while !markdown.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(nl) = markdown[..cut].rfind('\n') {
            cut = nl + 1;
        }
        let mut text = markdown[..cut].to_string();
        text.push_str(&truncation_note(cut, total));
        (text, Appended::Truncated { shown: cut, total })
    };
    file.write_all(text.as_bytes())?;
    file.flush()?;
    Ok(outcome)
}

fn truncation_note(shown: usize, total: usize) -> String {
    format!(
        "\n> **Truncated**: {shown} of {total} bytes shown, to stay under GitHub's 1 MiB step-summary limit. The full report is in this step's log (or run the command with `--json`).\n"
    )
}

/// Column alignment in a Markdown table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Make text safe as Markdown outside a code span (a table cell, a line of prose): one line,
/// no column separator, and nothing GitHub would render rather than show. Module messages and
/// tenant data end up in summaries (SPEC §6): every ASCII punctuation character that Markdown
/// gives a meaning to (links, images, HTML, mentions, math, emphasis with `*`) is
/// backslash-escaped, which CommonMark renders as the character itself. `_` is left alone:
/// ids are full of it, and GitHub never emphasises within a word.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '!' | '|' | '~' | '<'
            | '>' | '&' | '@' | '$' => {
                out.push('\\');
                out.push(c);
            }
            // Shown as its `\u{...}` escape, itself escaped (its braces and backslash).
            c if reorders(c) => out.push_str(&escape(&visible(c))),
            c => one_line(c, &mut out),
        }
    }
    out
}

/// Text as a code span, in which GitHub renders nothing — no link, image, mention, autolink,
/// emphasis or HTML: for ids, paths and untrusted free text (a module's message, a finding).
/// A backtick becomes `'` (it would end the span); `|` stays escaped, as GitHub's tables
/// require even inside code spans.
pub fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('`');
    for c in text.chars() {
        match c {
            '`' => out.push('\''),
            '|' => out.push_str("\\|"),
            c => one_line(c, &mut out),
        }
    }
    out.push('`');
    if out.len() == 2 {
        out.clear();
    }
    out
}

/// A character of a one-line text: line breaks (Unicode's line and paragraph separators
/// too) and tabs become spaces, other control
/// characters are dropped, and a bidirectional override or isolate is shown as its escape
/// (`\u{202e}`), as on a terminal: applied, it would reorder what the operator reads.
fn one_line(c: char, out: &mut String) {
    match c {
        '\r' | '\n' | '\t' | '\u{2028}' | '\u{2029}' => out.push(' '),
        c if c.is_control() => {}
        c if reorders(c) => out.push_str(&visible(c)),
        c => out.push(c),
    }
}

/// A bidirectional override, isolate or mark (not a control character to Rust).
fn reorders(c: char) -> bool {
    !c.is_control() && crate::output::needs_escape(c)
}

fn visible(c: char) -> String {
    format!("\\u{{{:x}}}", c as u32)
}

/// A Markdown table; every cell is escaped.
pub fn table(columns: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let head: Vec<String> = columns.iter().map(|(h, _)| escape(h)).collect();
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let rule: Vec<&str> = columns
        .iter()
        .map(|(_, a)| match a {
            Align::Left => "---",
            Align::Right => "---:",
        })
        .collect();
    let _ = writeln!(out, "|{}|", rule.join("|"));
    for row in rows {
        let cells: Vec<String> = (0..columns.len())
            .map(|i| row.get(i).map(|c| escape(c)).unwrap_or_default())
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

/// `a, b, c and 12 more`, each in code style.
fn name_list(names: &[String]) -> String {
    let mut shown: Vec<String> = names.iter().take(LIST_MAX).map(|n| code(n)).collect();
    if names.len() > LIST_MAX {
        shown.push(format!("and {} more", names.len() - LIST_MAX));
    }
    shown.join(", ")
}

fn run_status(s: RunStatus) -> String {
    let mark = match s {
        RunStatus::Completed => "✅",
        RunStatus::Partial => "⚠️",
        RunStatus::Failed => "❌",
    };
    format!("{mark} {}", s.as_str())
}

/// The orchestrator's pass as a job summary: one row per run (work order, run, status,
/// credits charged and refunded), then the steps that did not complete, the invalid work
/// orders and the counts. A `--dry-run` pass shows its priced plan instead.
pub fn orchestrator_md(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### platform orchestrator: {}\n",
        code(&s.billing_state_dir)
    );
    out.push_str(&config_errors_md(&s.config_errors));
    if let Some(plan) = &s.plan {
        out.push_str("Dry run: nothing was written.\n\n");
        out.push_str(&plan_md(plan));
        out.push_str(&low_balance_md(&s.low_balance));
        return out;
    }
    if !s.runs.is_empty() {
        out.push_str(&runs_md(&s.runs));
        out.push_str(&usage_md(&s.runs));
        let problems = problems_md(&s.runs);
        if !problems.is_empty() {
            let _ = writeln!(
                out,
                "**Runs and steps that did not complete**\n\n{problems}"
            );
        }
    }
    out.push_str(&invalid_md(&s.invalid));
    let _ = writeln!(out, "{}.\n", s.counts("**"));
    if !s.up_to_date.is_empty() {
        let _ = writeln!(out, "Up to date: {}\n", name_list(&s.up_to_date));
    }
    for n in &s.notes {
        let _ = writeln!(out, "> {}\n", escape(n));
    }
    out.push_str(&low_balance_md(&s.low_balance));
    out
}

/// The metered usage the pass charged: a line per step that used any (nothing when none).
fn usage_md(runs: &[RunReport]) -> String {
    let mut out = String::new();
    for r in runs {
        for st in r.steps.iter().filter(|st| !st.usage.is_empty()) {
            let used = crate::orchestrator::summary::usage_text(&st.usage);
            let _ = writeln!(
                out,
                "- {} run {} step {}: {}",
                code(&format!("{}/{}", r.tenant_id, r.work_order_id)),
                r.run,
                code(&st.step_id),
                escape(&used)
            );
        }
    }
    if out.is_empty() {
        return out;
    }
    format!("**Metered usage**\n\n{out}\n")
}

/// The tenants to top up, as a table under a heading (nothing when there are none).
fn low_balance_md(list: &[LowBalance]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|l| {
            vec![
                l.tenant_id.clone(),
                l.balance_credits.to_string(),
                l.threshold.map_or("-".to_string(), |t| t.to_string()),
                l.reason.as_str().to_string(),
            ]
        })
        .collect();
    let columns = [
        ("tenant", Align::Left),
        ("balance", Align::Right),
        ("threshold", Align::Right),
        ("reason", Align::Left),
    ];
    let table = table_block(&columns, &rows);
    if table.is_empty() {
        return table;
    }
    format!("**Low balance**: top up with `platform admin-topup`\n\n{table}")
}

/// A table followed by a blank line, or nothing when it has no rows.
fn table_block(columns: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    table(columns, rows) + "\n"
}

/// A dry run's plan: per work order its action, new charges and metered-usage reserve (both
/// counted in "balance after"), per tenant the balance.
fn plan_md(plan: &Plan) -> String {
    let rows: Vec<Vec<String>> = plan
        .work_orders
        .iter()
        .map(|w| {
            vec![
                format!("{}/{}", w.tenant_id, w.work_order_id),
                w.action.as_str().to_string(),
                if w.run > 0 {
                    w.run.to_string()
                } else {
                    String::new()
                },
                w.new_charges.to_string(),
                w.usage_reserve.to_string(),
                w.refused
                    .as_ref()
                    .map(|r| format!("{}: {}", r.reason(), r.message()))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let balances: Vec<Vec<String>> = plan
        .tenants
        .iter()
        .map(|t| {
            vec![
                t.tenant_id.clone(),
                t.balance_before.to_string(),
                t.balance_after.to_string(),
            ]
        })
        .collect();
    let work_orders = table_block(
        &[
            ("work order", Align::Left),
            ("action", Align::Left),
            ("run", Align::Right),
            ("new charges", Align::Right),
            ("usage reserve", Align::Right),
            ("refused", Align::Left),
        ],
        &rows,
    );
    let tenants = table_block(
        &[
            ("tenant", Align::Left),
            ("balance before", Align::Right),
            ("balance after", Align::Right),
        ],
        &balances,
    );
    work_orders + &tenants
}

/// One row per run: work order, run, status, credits charged and refunded; and a period
/// column after the run when any run of the pass belongs to a scheduled work order.
fn runs_md(runs: &[RunReport]) -> String {
    let periods = runs.iter().any(|r| r.period.is_some());
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let mut row = vec![
                format!("{}/{}", r.tenant_id, r.work_order_id),
                r.run.to_string(),
                run_status(r.status),
                r.charged_credits.to_string(),
                r.refunded_credits.to_string(),
            ];
            if periods {
                row.insert(2, r.period.clone().unwrap_or_else(|| "-".into()));
            }
            row
        })
        .collect();
    let mut columns = vec![
        ("work order", Align::Left),
        ("run", Align::Right),
        ("status", Align::Left),
        ("charged", Align::Right),
        ("refunded", Align::Right),
    ];
    if periods {
        columns.insert(2, ("period", Align::Left));
    }
    table_block(&columns, &rows)
}

/// A line per refused run, per run the pass stopped on (and why), and per step that did
/// not complete.
fn problems_md(runs: &[RunReport]) -> String {
    let mut out = String::new();
    for r in runs {
        let run = format!(
            "{} run {}",
            code(&format!("{}/{}", r.tenant_id, r.work_order_id)),
            r.run
        );
        if let Some(why) = &r.refused {
            let _ = writeln!(out, "- {run}: refused: {}", code(why));
            continue;
        }
        if let Some(why) = &r.error {
            let _ = writeln!(out, "- {run}: stopped: {}", code(why));
        }
        for st in r
            .steps
            .iter()
            .filter(|st| st.status != StepStatus::Completed)
        {
            let _ = writeln!(
                out,
                "- {run} step {}: {} {}{}",
                code(&st.step_id),
                st.status.as_str(),
                escape(st.reason_slug.as_deref().unwrap_or("")),
                st.message
                    .as_deref()
                    .map(|m| format!(": {}", code(m)))
                    .unwrap_or_default()
            );
        }
    }
    out
}

/// The errors of config/registry.yml and config/catalog.yml, each with its location and field
/// (nothing when there are none): why every work order of the pass is invalid.
fn config_errors_md(errors: &[Finding]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "**Config has errors: nothing was run, charged or refunded** (see `platform consistency-validate`)\n\n",
    );
    for f in errors {
        let _ = writeln!(
            out,
            "- {} {}: {}",
            code(&f.location()),
            code(&f.field),
            code(&f.message)
        );
    }
    out.push('\n');
    out
}

/// The invalid work orders, each with its first finding.
fn invalid_md(invalid: &[Invalid]) -> String {
    if invalid.is_empty() {
        return String::new();
    }
    let mut out = String::from("**Invalid, not run** (see `platform consistency-validate`)\n\n");
    for inv in invalid {
        let first = inv
            .findings
            .first()
            .map(|f| format!(": {}", code(&f.message)))
            .unwrap_or_default();
        let more = match inv.findings.len() {
            0 | 1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        let _ = writeln!(
            out,
            "- {} in {}{first}{more}",
            code(&format!("{}/{}", inv.tenant_id, inv.work_order_id)),
            code(&inv.file)
        );
    }
    out.push('\n');
    out
}

/// A `ledger merge` as a job summary: the segments and, per ledger file, how many records
/// were added and how many were already present.
pub fn merge_md(r: &MergeReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### platform ledger merge into {}\n",
        code(&r.into.display().to_string())
    );
    let segments: Vec<String> = r.segments.iter().map(|s| s.display().to_string()).collect();
    let _ = writeln!(
        out,
        "**{}** segment(s): {}\n",
        segments.len(),
        name_list(&segments)
    );
    let rows: Vec<Vec<String>> = r
        .files
        .iter()
        .map(|f| {
            vec![
                f.stream.file_name().to_string(),
                f.added.to_string(),
                f.already_present.to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            ("file", Align::Left),
            ("added", Align::Right),
            ("already present", Align::Right),
        ],
        &rows,
    ));
    out.push('\n');
    let added: u64 = r.files.iter().map(|f| f.added).sum();
    let _ = writeln!(out, "**{added}** record(s) added.\n");
    for rep in &r.repairs {
        let _ = writeln!(
            out,
            "> Repaired the target before merging: {}: removed {} line(s) from line {} ({})\n",
            escape(&rep.file),
            rep.lines_removed,
            rep.from_line,
            escape(&rep.reason)
        );
    }
    for t in &r.skipped {
        let _ = writeln!(
            out,
            "> Skipped an interrupted write at the end of {}: {} line(s) from line {}, not merged ({})\n",
            escape(&t.file),
            t.lines,
            t.from_line,
            escape(&t.message)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_whole_text_when_it_fits() {
        let (_dir, p) = crate::testing::scratch("summary.md");
        std::fs::write(&p, "before\n").unwrap();
        assert_eq!(append_capped(&p, "| a |\n", 1000).unwrap(), Appended::All);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "before\n| a |\n");
    }

    #[test]
    fn truncates_at_a_line_end_and_stays_under_the_cap() {
        let (_dir, p) = crate::testing::scratch("summary.md");
        std::fs::write(&p, "x".repeat(100)).unwrap();
        let md: String = (0..200).map(|i| format!("| row {i} | é |\n")).collect();
        let cap = 1500;
        let got = append_capped(&p, &md, cap).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.len() as u64 <= cap, "{} > {cap}", text.len());
        let Appended::Truncated { shown, total } = got else {
            panic!("expected truncation, got {got:?}");
        };
        assert_eq!(total, md.len());
        assert!(md[..shown].ends_with('\n'));
        assert!(text.contains("**Truncated**"));
        assert!(text.contains(&format!("{shown} of {total} bytes")));
    }

    #[test]
    fn full_file_gets_nothing() {
        let (_dir, p) = crate::testing::scratch("summary.md");
        std::fs::write(&p, "x".repeat(1000)).unwrap();
        assert_eq!(
            append_capped(&p, "more text\n", 1005).unwrap(),
            Appended::Nothing
        );
        assert_eq!(std::fs::read(&p).unwrap().len(), 1000);
    }

    #[test]
    fn unwritable_target_is_an_error_not_a_panic() {
        let (_dir, p) = crate::testing::scratch("no-such-dir/summary.md");
        assert!(append_capped(&p, "x", CAP).is_err());
    }

    #[test]
    fn cells_cannot_break_the_table() {
        let t = table(
            &[("a", Align::Left), ("b", Align::Right)],
            &[vec!["x|y\nz".into(), "<b>&".into()]],
        );
        assert_eq!(t, "| a | b |\n|---|---:|\n| x\\|y z | \\<b\\>\\& |\n");
    }

    #[test]
    fn untrusted_text_renders_no_link_image_mention_or_html() {
        let hostile = "a `x` [click](https://evil.example) ![i](https://evil.example/t.png) @octocat <img src=x> *b* | $m$";
        assert_eq!(
            escape(hostile),
            "a \\`x\\` \\[click\\]\\(https://evil.example\\) \\!\\[i\\]\\(https://evil.example/t.png\\) \\@octocat \\<img src=x\\> \\*b\\* \\| \\$m\\$"
        );
        assert_eq!(
            code(hostile),
            "`a 'x' [click](https://evil.example) ![i](https://evil.example/t.png) @octocat <img src=x> *b* \\| $m$`"
        );
        assert_eq!(code("two\nlines\u{1b}[31m"), "`two lines[31m`");
        assert_eq!(code(""), "");
    }

    #[test]
    fn bidirectional_overrides_are_shown_never_applied() {
        let hostile = "pay \u{202e}evil\u{2066} x";
        assert_eq!(code(hostile), "`pay \\u{202e}evil\\u{2066} x`");
        assert_eq!(escape(hostile), "pay \\\\u\\{202e\\}evil\\\\u\\{2066\\} x");
        // Direction marks are escaped, a paragraph separator becomes a space (docs/security.md).
        assert_eq!(
            code("a\u{200e}\u{200f}\u{61c}\u{2029}b"),
            "`a\\u{200e}\\u{200f}\\u{61c} b`"
        );
    }
}
