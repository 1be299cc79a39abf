//! `platform consistency-validate` end to end: fixture repositories copied to a temp dir, the real binary, every output format.
//!
//! Fixtures live in tests/fixtures/validate/: `base/` is a clean repository; each folder of
//! `cases/` holds files laid over a copy of it, an `expect.txt` (one expected finding a line:
//! `severity | file | field contains | message contains [| line[:column]]`) and optionally a
//! `symlinks.txt` (`link -> target`). A new case is a new folder; the loop below runs them all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::assert_has;
use crate::support::fx::{copy_tree, copy_tree_except, crate_root, fixture_dir, platform_in};
use crate::support::{Fx, Transcript};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    fixture_dir("validate")
}

/// Files of a case folder that describe the case rather than belong to the repository.
const CASE_META: [&str; 2] = ["expect.txt", "symlinks.txt"];

/// A temp copy of `base/` with the case folder (when it exists) laid over it and its symlinks made.
fn repo_for(case: &Path) -> Fx {
    let fx = Fx::empty();
    copy_tree(&fixtures().join("base"), fx.root());
    if case.is_dir() {
        copy_tree_except(case, fx.root(), |rel| {
            CASE_META.iter().any(|m| rel == Path::new(m))
        });
    }
    if let Ok(text) = std::fs::read_to_string(case.join("symlinks.txt")) {
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (link, target) = line.split_once("->").unwrap();
            let link = fx.path(link.trim());
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target.trim(), &link).unwrap();
        }
    }
    fx
}

/// The clean fixture on its own.
fn clean_repo() -> Fx {
    repo_for(&fixtures().join("base/__no_overlay__"))
}

/// Run `platform --repo <repo> consistency-validate <args>`: (exit code, stdout).
fn validate(repo: &Path, args: &[&str]) -> (i32, String) {
    let out = platform_in(crate_root())
        .arg("--repo")
        .arg(repo)
        .arg("consistency-validate")
        .args(args)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), out.stdout_text())
}

fn validate_json(repo: &Path) -> (i32, Value) {
    let (code, stdout) = validate(repo, &["--format", "json"]);
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"));
    (code, v)
}

#[derive(Debug)]
struct Expect {
    severity: String,
    file: String,
    field: String,
    message: String,
    line: Option<u64>,
    column: Option<u64>,
}

fn read_expectations(path: &Path) -> Vec<Expect> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let parts: Vec<&str> = l.split('|').map(str::trim).collect();
            assert!(
                parts.len() == 4 || parts.len() == 5,
                "{}: bad line {l:?}",
                path.display()
            );
            let (line, column) = match parts.get(4) {
                Some(lc) => {
                    let mut it = lc.split(':').map(|n| n.parse::<u64>().unwrap());
                    (it.next(), it.next())
                }
                None => (None, None),
            };
            Expect {
                severity: parts[0].to_string(),
                file: parts[1].to_string(),
                field: parts[2].to_string(),
                message: parts[3].to_string(),
                line,
                column,
            }
        })
        .collect()
}

fn matches(f: &Value, e: &Expect) -> bool {
    let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or_default();
    s("file") == e.file
        && s("field").contains(&e.field)
        && s("message").contains(&e.message)
        && e.line
            .is_none_or(|l| f.get("line").and_then(Value::as_u64) == Some(l))
        && e.column
            .is_none_or(|c| f.get("column").and_then(Value::as_u64) == Some(c))
}

/// Problems with one case's run, as lines for the failure message (empty: the case passed).
fn check_case(name: &str, repo: &Path, expect: &[Expect], exact: bool) -> Vec<String> {
    let (code, v) = validate_json(repo);
    let mut problems = Vec::new();
    let list = |k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (errors, warnings) = (list("errors"), list("warnings"));
    for e in expect {
        let pool = if e.severity == "warning" {
            &warnings
        } else {
            &errors
        };
        if !pool.iter().any(|f| matches(f, e)) {
            problems.push(format!("{name}: missing {e:?}"));
        }
    }
    if exact && errors.len() + warnings.len() != expect.len() {
        problems.push(format!(
            "{name}: expected {} findings, got {}",
            expect.len(),
            errors.len() + warnings.len()
        ));
    }
    let want_code = if expect.iter().any(|e| e.severity == "error") {
        1
    } else {
        0
    };
    if code != want_code {
        problems.push(format!("{name}: exit code {code}, expected {want_code}"));
    }
    if !problems.is_empty() {
        problems.push(format!(
            "{name}: output was {}",
            serde_json::to_string_pretty(&v).unwrap()
        ));
    }
    problems
}

#[test]
fn clean_fixture_passes_with_no_findings() {
    let repo = clean_repo();
    let (code, stdout) = validate(repo.root(), &["--format", "json"]);
    assert_eq!(code, 0, "{stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"errors": [], "warnings": [], "schema_version": 1})
    );
    let (code, text) = validate(repo.root(), &[]);
    assert_eq!(code, 0);
    assert_eq!(text.trim(), "0 errors, 0 warnings");
}

#[test]
fn every_case_reports_its_findings() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures().join("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 40,
        "expected the whole table of cases, found {}",
        cases.len()
    );
    let mut problems = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expect = read_expectations(&case.join("expect.txt"));
        assert!(!expect.is_empty(), "{name}: expect.txt lists nothing");
        let repo = repo_for(case);
        problems.extend(check_case(&name, repo.root(), &expect, true));
    }
    assert!(
        problems.is_empty(),
        "{} case problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn thirteen_broken_things_are_all_reported_in_one_run() {
    let dir = fixtures().join("thirteen");
    let expect = read_expectations(&dir.join("expect.txt"));
    assert!(expect.len() >= 13);
    let repo = repo_for(&dir);
    let problems = check_case("thirteen", repo.root(), &expect, false);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let (_, v) = validate_json(repo.root());
    let n = v["errors"].as_array().map(Vec::len).unwrap_or(0);
    assert!(n >= 13, "only {n} errors");
}

#[test]
fn drafts_only_warn_and_exit_zero() {
    let repo = repo_for(&fixtures().join("cases/draft_only_warns"));
    let (code, v) = validate_json(repo.root());
    assert_eq!(code, 0);
    assert_eq!(v["errors"], serde_json::json!([]));
    assert!(!v["warnings"].as_array().unwrap().is_empty());
    let (code, text) = validate(repo.root(), &[]);
    assert_eq!(code, 0);
    assert_has(&text, "warning: step 'make' runs module 'nope'");
    assert!(text.trim_end().ends_with("0 errors, 3 warnings"), "{text}");
}

#[test]
fn yaml_syntax_error_reports_line_and_column() {
    let repo = repo_for(&fixtures().join("cases/yaml_syntax_error"));
    let (code, v) = validate_json(repo.root());
    assert_eq!(code, 1);
    let f = &v["errors"][0];
    assert_eq!(f["file"], "tenants/t1/workorders/bad.yml");
    assert!(
        f["line"].as_u64().is_some() && f["column"].as_u64().is_some(),
        "{f}"
    );
    let (_, text) = validate(repo.root(), &[]);
    let loc = format!(
        "--> tenants/t1/workorders/bad.yml:{}:{}",
        f["line"], f["column"]
    );
    assert_has(&text, &loc);
}

/// Until 2026-12-03 a YAML syntax error said what the parser found and not what to do, and
/// `orchestrator --dry-run` printed it with a dangling `: ` for the field it does not have.
#[test]
fn yaml_syntax_errors_say_what_to_do_and_print_no_empty_field() {
    let repo = repo_for(&fixtures().join("cases/yaml_syntax_error"));
    let (_, text) = validate(repo.root(), &[]);
    assert_has(&text, "; check the indentation and quoting at this line");
    let out = repo.run(&["orchestrator", "--dry-run"]);
    let stdout = out.stdout_text();
    assert_has(&stdout, "unclosed bracket");
    assert_has(&stdout, "(tenants/t1/workorders/bad.yml:4:3)");
    assert!(!stdout.contains(": )"), "{stdout}");
    repo.write(
        "tenants/t1/workorders/bad.yml",
        "work_order_id: bad\nsteps:\n\t- step_id: greet\n\t  module_id: produce\n",
    );
    let (_, text) = validate(repo.root(), &[]);
    assert_has(&text, "indent with spaces: YAML does not allow tabs");
    // A key twice: the parser's option name is not the fix, and no tab is involved (until
    // 2026-12-03 the tab hint matched the parser's word "acceptable").
    repo.write(
        "tenants/t1/workorders/bad.yml",
        "work_order_id: bad\nwork_order_id: bad\nsteps: []\n",
    );
    let (_, text) = validate(repo.root(), &[]);
    assert_has(
        &text,
        "the key 'work_order_id' appears twice in one mapping",
    );
    assert!(!text.contains("DuplicateKeyPolicy"), "{text}");
    assert!(!text.contains("tabs"), "{text}");
    // Other messages that named the parser's API (`from_str_multiple`, `Option<String>`).
    for (yaml, says) in [
        (
            "work_order_id: bad\nsteps: []\n---\na: 1\n",
            "a second YAML document starts here",
        ),
        (
            "~: 1\nwork_order_id: bad\n",
            "a null (`~`, `null` or nothing) where text is expected",
        ),
        ("a: &x [*x]\n", "an alias refers to its own anchor"),
    ] {
        repo.write("tenants/t1/workorders/bad.yml", yaml);
        let (_, text) = validate(repo.root(), &[]);
        assert_has(&text, says);
        for api in ["from_str_multiple", "Option<", "weak recursion"] {
            assert!(!text.contains(api), "{text}");
        }
    }
}

#[test]
fn json_format_has_exactly_the_pinned_shape() {
    let repo = repo_for(&fixtures().join("thirteen"));
    let (code, v) = validate_json(repo.root());
    assert_eq!(code, 1);
    let top: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(top, ["errors", "schema_version", "warnings"]);
    let root = repo.root().to_string_lossy().into_owned();
    for f in v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v["warnings"].as_array().unwrap())
    {
        let obj = f.as_object().unwrap();
        for k in ["file", "field", "message"] {
            assert!(
                obj.get(k).is_some_and(Value::is_string),
                "{k} missing in {f}"
            );
        }
        for k in obj.keys() {
            assert!(
                ["file", "field", "message", "line", "column"].contains(&k.as_str()),
                "extra key {k} in {f}"
            );
        }
        let file = obj["file"].as_str().unwrap();
        assert!(
            !file.starts_with('/') && !file.contains(&root) && !file.contains('\\'),
            "{file} is not repo-relative"
        );
    }
}

#[test]
fn text_format_blocks_and_summary() {
    let repo = repo_for(&fixtures().join("cases/binding_to_later_step"));
    let (code, text) = validate(repo.root(), &["--format", "text"]);
    assert_eq!(code, 1);
    let block = "error: step 'use' binds file 'out.txt' of step 'make', which runs later; bind to an earlier step or move 'make' before 'use'\n  --> tenants/t1/workorders/bad.yml:8\n   field: steps[0].inputs.title.from_step\n";
    assert_has(&text, block);
    assert!(text.trim_end().ends_with("1 errors, 0 warnings"), "{text}");
}

#[test]
fn github_format_prints_escaped_annotations() {
    let repo = repo_for(&fixtures().join("cases/draft_only_warns"));
    // A comma in a file name must be escaped inside the annotation's properties.
    repo.write(
        "tenants/t1/workorders/a,b.yml",
        "work_order_id: a\nsteps:\n  - {step_id: s, module_id: produce, kind: transform, inputs: {text: hi}}\n",
    );
    let (code, out) = validate(repo.root(), &["--format", "github"]);
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.iter().any(|l| l
            .starts_with("::error file=tenants/t1/workorders/a%2Cb.yml,line=1::work_order_id: ")),
        "{out}"
    );
    assert!(
        lines.iter().any(
            |l| l.starts_with("::warning file=tenants/t1/workorders/bad.yml,line=")
                && l.contains("::steps[0].module_id: step 'make' runs module 'nope'")
        ),
        "{out}"
    );
    for l in &lines[..lines.len() - 1] {
        assert!(
            l.starts_with("::error ") || l.starts_with("::warning "),
            "{l}"
        );
    }
}

/// Schema findings name the offending key with its line (a missing root key: line 1), so
/// every annotation lands on a line of the file; a binding's problems are all reported.
#[test]
fn github_annotations_of_schema_and_binding_findings_carry_their_line() {
    let cases = [
        ("schema_root_unknown_key", 2),
        ("schema_unknown_key", 1),
        ("schema_root_required_missing", 1),
        ("schema_nested_required_missing", 1),
        ("module_unknown_key", 3),
        ("profile_unknown_key", 1),
        ("binding_two_problems", 2),
    ];
    for (case, count) in cases {
        let repo = repo_for(&fixtures().join("cases").join(case));
        let (code, out) = validate(repo.root(), &["--format", "github"]);
        assert_eq!(code, 1, "{case}: {out}");
        let annotations: Vec<&str> = out.lines().filter(|l| l.starts_with("::")).collect();
        assert_eq!(annotations.len(), count, "{case}: {out}");
        for a in annotations {
            assert!(a.starts_with("::error file="), "{case}: {a}");
            let line = a
                .split_once(",line=")
                .and_then(|(_, rest)| rest.split_once("::"))
                .map(|(n, _)| n);
            assert!(
                line.is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n >= 1)),
                "{case}: no line in {a}"
            );
        }
    }
    let repo = repo_for(&fixtures().join("cases/schema_root_required_missing"));
    let (_, out) = validate(repo.root(), &["--format", "github"]);
    assert_has(
        &out,
        "::error file=tenants/t1/workorders/bad.yml,line=1::work_order_id: 'work_order_id' is required; add it",
    );
}

#[test]
fn repo_option_works_after_the_command() {
    let repo = clean_repo();
    platform_in(crate_root())
        .args(["consistency-validate", "--repo"])
        .arg(repo.root())
        .output()
        .unwrap()
        .expect_ok();
}

#[test]
fn missing_or_empty_repository_is_exit_2() {
    let tmp = Fx::empty();
    let (code, _) = validate(&tmp.path("nope"), &[]);
    assert_eq!(code, 2);
    let (code, _) = validate(tmp.root(), &[]);
    assert_eq!(
        code, 2,
        "a folder with neither modules/ nor tenants/ is not a platform repository"
    );
}

#[test]
fn example_repository_at_the_crate_root_passes() {
    let (code, v) = validate_json(crate_root());
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["errors"], serde_json::json!([]));
    // The draft is unfinished on purpose, to show a warning that does not fail the run.
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{v:#}");
    assert_eq!(
        warnings[0]["file"],
        "tenants/globex/workorders/quarterly-email.yml"
    );
}
