//! Untrusted strings never reach a terminal or a GitHub log raw: a tenant's input and a
//! module's message carrying newlines, workflow commands (`::error`, `::add-mask::`,
//! `::stop-commands::`, and the older `##[error]` the runner obeys anywhere in a line) and
//! terminal escapes are printed escaped by every command.
use crate::support::check::assert_has;
use crate::support::orch::{run_of, step_of};
use crate::support::{Fx, Transcript};

/// What a hostile tenant puts in an input, and a hostile module echoes back as its message.
const EVIL_YAML: &str = r#""ok ##[error]legacy\n::error::pwned\n  ::add-mask::hunter2\n::stop-commands::tok\r\e[31mred""#;

/// Every line a GitHub runner would read from this output: none may start a workflow command
/// (other than the annotations `allowed` accepts), hold the older `##[command]` form anywhere
/// (the runner obeys it mid-line; until 2026-12-04 it was printed raw), or carry a raw
/// control character.
fn assert_inert(what: &str, bytes: &[u8], allowed: &dyn Fn(&str) -> bool) {
    let text = String::from_utf8_lossy(bytes);
    for line in text.lines() {
        assert!(
            !line.contains("##["),
            "{what}: a line holds a workflow command: {line:?}\n{text}"
        );
        let trimmed = line.trim_start();
        assert!(
            !trimmed.starts_with("::") || allowed(trimmed),
            "{what}: a line starts a workflow command: {line:?}\n{text}"
        );
        assert!(
            !line.chars().any(|c| c.is_control() && c != '\t'),
            "{what}: raw control character in {line:?}"
        );
        assert!(
            !line.chars().any(reorders),
            "{what}: raw bidirectional override or isolate in {line:?}"
        );
    }
}

/// A bidirectional override, isolate or mark (a reader sees text in another order), or a
/// Unicode line or paragraph separator (a browser or a line splitter breaks the line there).
fn reorders(c: char) -> bool {
    matches!(
        c,
        '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{061c}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

fn no_commands(_: &str) -> bool {
    false
}

fn evil_work_order(fx: &Fx) {
    fx.workorder(
        "evil",
        &format!(
            "work_order_id: evil\nsteps:\n  - step_id: say\n    module_id: announcer\n    kind: transform\n    inputs: {{text: {EVIL_YAML}}}\n"
        ),
    );
}

#[test]
fn a_module_message_with_workflow_commands_is_printed_escaped() {
    let fx = Fx::new();
    fx.topup(10, "escape-1");
    evil_work_order(&fx);
    let out = fx.run(&["orchestrator"]);
    assert_eq!(out.status.code(), Some(1), "the run fails on purpose");
    assert_inert("orchestrator stdout", &out.stdout, &no_commands);
    assert_inert("orchestrator stderr", &out.stderr, &no_commands);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The message is still there for the operator, visibly escaped on one line.
    assert_has(
        &stdout,
        r"ok ##\[error]legacy\n::error::pwned\n  ::add-mask::hunter2",
    );
    // The JSON form keeps the exact string: serde escapes it, and the `[` of `##[` is
    // written `\u005b`, the same value.
    let out = fx.run(&["orchestrator", "--json", "--retry-failed"]);
    assert_inert("orchestrator --json stdout", &out.stdout, &no_commands);
    assert_inert("orchestrator --json stderr", &out.stderr, &no_commands);
    let json = out.json();
    let run = run_of(&json, "evil");
    let msg = step_of(run, "say")["message"].as_str().unwrap().to_string();
    assert_has(&msg, "ok ##[error]legacy\n::error::pwned\n");
}

#[test]
fn validation_findings_with_untrusted_values_are_printed_escaped() {
    let fx = Fx::new();
    // A binding to a step id that carries newlines and a workflow command.
    fx.workorder(
        "evil",
        "work_order_id: evil\nsteps:\n  - step_id: say\n    module_id: announcer\n    kind: transform\n    inputs:\n      text: {from_step: \"x\\n::error::pwned\\n::add-mask::y ##[error]legacy\", output_id: o}\n",
    );
    let text = fx.run(&["consistency-validate"]);
    assert_eq!(text.status.code(), Some(1));
    assert_inert("validate text", &text.stdout, &no_commands);
    assert_inert("validate text stderr", &text.stderr, &no_commands);
    let github = fx.run(&["consistency-validate", "--format", "github"]);
    assert_eq!(github.status.code(), Some(1));
    let annotation = |l: &str| l.starts_with("::error file=") || l.starts_with("::warning file=");
    assert_inert("validate github", &github.stdout, &annotation);
    let stdout = String::from_utf8_lossy(&github.stdout);
    assert_has(&stdout, "%0A::error::pwned%0A");
    let orch = fx.run(&["orchestrator"]);
    assert_eq!(
        orch.status.code(),
        Some(1),
        "the invalid work order is reported"
    );
    assert_inert("orchestrator stdout", &orch.stdout, &no_commands);
    assert_inert("orchestrator stderr", &orch.stderr, &no_commands);
}

#[test]
fn a_module_message_with_markdown_renders_nothing_in_the_job_summary() {
    // A link, an image, a mention and HTML in a module's message: in the job summary they
    // sit in a code span, where GitHub renders none of them.
    let fx = Fx::new();
    fx.topup(10, "escape-3");
    fx.workorder(
        "md",
        "work_order_id: md\nsteps:\n  - step_id: say\n    module_id: announcer\n    kind: transform\n    inputs: {text: \"see [click me](https://evil.example/login) ![t](https://evil.example/t.png) @octocat <img src=x> `tick`\"}\n",
    );
    let summary = fx.path("step-summary.md");
    let out = fx.run_env(
        &["orchestrator"],
        &[("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1), "the run fails on purpose");
    let md = std::fs::read_to_string(&summary).unwrap();
    let lines: Vec<&str> = md.lines().filter(|l| l.contains("evil.example")).collect();
    assert!(!lines.is_empty(), "the message is in the summary:\n{md}");
    for line in lines {
        // Outside code spans (the even pieces between backticks) nothing of it is left.
        for (i, piece) in line.split('`').enumerate() {
            if i % 2 == 0 {
                for bad in ["evil.example", "@octocat", "<img", "]("] {
                    assert!(!piece.contains(bad), "{bad} outside a code span: {line}");
                }
            }
        }
        assert_has(line, "`see [click me](https://evil.example/login) ![t](https://evil.example/t.png) @octocat <img src=x> 'tick'`");
    }
}

/// A module's message with bidirectional overrides and isolates (U+202E, U+2066), which make
/// a reader see `pay xlive` for `pay evil x`, direction marks (U+200E, U+200F, U+061C), the
/// paragraph separator (U+2029) and a Unicode line separator (U+2028), at which
/// a browser breaks the line to show a forged row: on stdout and in the job summary they are
/// shown as escapes (the separator as a space in the summary), never applied; a note holding
/// one is refused. Until 2026-12-03 the job summary carried them raw, and stdout the
/// separator.
#[test]
fn bidirectional_overrides_in_a_module_message_are_shown_never_applied() {
    let fx = Fx::new();
    fx.topup(10, "escape-4");
    fx.workorder(
        "bidi",
        "work_order_id: bidi\nsteps:\n  - step_id: say\n    module_id: announcer\n    kind: transform\n    inputs: {text: \"pay \\u202Eevil\\u2066 x\\u2028t2/forged COMPLETED marks\\u200E\\u200F\\u061C\\u2029end\"}\n",
    );
    let summary = fx.path("step-summary.md");
    let out = fx.run_env(
        &["orchestrator"],
        &[("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1), "the run fails on purpose");
    assert_inert("orchestrator stdout", &out.stdout, &no_commands);
    assert_inert("orchestrator stderr", &out.stderr, &no_commands);
    assert_has(
        &out.stdout_text(),
        r"pay \u{202e}evil\u{2066} x\u{2028}t2/forged COMPLETED marks\u{200e}\u{200f}\u{61c}\u{2029}end",
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert_inert("job summary", md.as_bytes(), &no_commands);
    assert_has(
        &md,
        r"`pay \u{202e}evil\u{2066} x t2/forged COMPLETED marks\u{200e}\u{200f}\u{61c} end`",
    );
    let note = fx
        .topup_cmd("5", "sep-1")
        .args(["--note", "paid\u{2028}TOPUP 1000000"])
        .output()
        .unwrap();
    note.expect_code(2);
    assert_has(&note.stderr_text(), "holds the line separator U+2028");
}

/// A work order whose file name holds a newline and a forged plan line: `orchestrator
/// --dry-run` and the pass's "invalid, not run" line print the id escaped, so no line of their
/// output is the tenant's. Before 2026-12-04 the id was printed raw and the forged line stood
/// on its own.
#[test]
fn a_newline_in_a_work_order_file_name_forges_no_line() {
    let fx = Fx::new();
    let forged = "    REFUSED not_enough_credits: top up 5000 credits now";
    fx.workorder(
        &format!("x\n{forged}"),
        "work_order_id: x\nsteps:\n  - step_id: s\n    module_id: gen\n    kind: transform\n",
    );
    for args in [&["orchestrator", "--dry-run"][..], &["orchestrator"]] {
        let out = fx.run(args);
        out.expect_code(1);
        let text = out.text();
        assert!(
            !text.lines().any(|l| l.starts_with(forged.trim_end())),
            "{args:?}: a forged line:\n{text}"
        );
        assert_has(&text, &format!("t1/x\\n{forged}"));
    }
}
