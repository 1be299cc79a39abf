//! `platform module test <module_id>` as the real binary: a module's `self_test` run in a scratch folder, its verdict (exit 0 or 1, each difference named, the logs redacted) and every refusal (exit 2).
use crate::support::fx::{copy_tree, fixture_dir, Fx};
use serde_json::Value;
use std::process::Output;

fn module_test(fx: &Fx, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = fx.cmd();
    c.args(["module", "test"]).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

/// Set a fixture module's self_test, in place of the one it has (a key and its indented
/// lines).
fn set_self_test(fx: &Fx, module: &str, self_test: &str) {
    let path = fx.path(&format!("modules/{module}/module.yml"));
    let yaml = std::fs::read_to_string(&path).unwrap();
    let mut kept = String::new();
    let mut inside = false;
    for line in yaml.lines() {
        inside = line.starts_with("self_test:") || (inside && line.starts_with(' '));
        if !inside {
            kept.push_str(&format!("{line}\n"));
        }
    }
    kept.push_str(&format!("self_test: {self_test}\n"));
    std::fs::write(path, kept).unwrap();
}

#[test]
fn a_passing_self_test_reports_its_outputs_and_exits_0() {
    let fx = Fx::example();
    let out = module_test(&fx, &["uppercase", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = json(&out);
    assert_eq!(doc["passed"], true);
    assert_eq!(doc["status"], "COMPLETED");
    assert_eq!(doc["reason_slug"], Value::Null);
    assert_eq!(doc["problems"], serde_json::json!([]));
    assert_eq!(doc["outputs"][0]["path"], "upper.txt");
    assert_eq!(doc["outputs"][0]["sha256"].as_str().unwrap().len(), 64);
    let out = module_test(&fx, &["uppercase"], &[]);
    assert_eq!(text(&out.stdout), "module uppercase self-test: passed\n");

    // A file input is a path inside the module folder, handed over as an absolute path.
    let fx = Fx::new();
    let reads_a_file = "{inputs: {source: run.py}, expect: {files: [echoed.json]}}";
    set_self_test(&fx, "echo_inputs", reads_a_file);
    let out = module_test(&fx, &["echo_inputs", "--json"], &[]);
    assert_eq!(json(&out)["passed"], true, "{}", text(&out.stderr));
}

#[test]
fn a_failing_self_test_names_each_difference_and_shows_the_logs() {
    let fx = Fx::new();
    let expects_success = "{expect: {status: COMPLETED, files: [never.txt]}}";
    set_self_test(&fx, "fail", expects_success);
    let out = module_test(&fx, &["fail", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc = json(&out);
    assert_eq!(doc["passed"], false);
    assert_eq!(doc["status"], "FAILED");
    assert_eq!(doc["reason_slug"], "module_failed");
    assert_eq!(
        doc["problems"],
        serde_json::json!([
            "status FAILED (expected COMPLETED), reason module_failed: failed on purpose",
            "expected output file 'never.txt' is missing"
        ])
    );
    let out = module_test(&fx, &["fail"], &[]);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("module fail self-test: FAILED\n  - status FAILED"));
    assert!(
        stdout.contains("--- stderr.log\nfailing on purpose"),
        "{stdout}"
    );

    // The expected failure passes; the wrong reason does not.
    for (reason, code) in [("module_failed", 0), ("timeout", 1)] {
        let expect = format!("{{expect: {{status: FAILED, reason_slug: {reason}}}}}");
        set_self_test(&fx, "fail", &expect);
        let out = module_test(&fx, &["fail", "--json"], &[]);
        assert_eq!(out.status.code(), Some(code), "{}", text(&out.stdout));
        let problems = json(&out)["problems"].to_string();
        let named = problems.contains("(expected timeout)");
        assert_eq!(named, code == 1, "{problems}");
    }
}

#[test]
fn a_declared_secret_reaches_the_module_and_never_its_shown_logs() {
    let fx = Fx::new();
    set_self_test(
        &fx,
        "secretuser",
        "{expect: {files: [note.txt, absent.txt]}}",
    );
    let secret = "canary-4f1d9e2b";
    let out = module_test(&fx, &["secretuser"], &[("PLATFORM_SECRET_CANARY", secret)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("expected output file 'absent.txt' is missing"),
        "{stdout}"
    );
    assert!(!stdout.contains("'note.txt'"), "{stdout}");
    // The module printed its secret: the log shown has it masked.
    assert!(
        stdout.contains("--- stdout.log\nmy secret is [REDACTED]"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(secret) && !text(&out.stderr).contains(secret),
        "{stdout}"
    );
}

#[test]
fn refusals_are_input_errors_that_say_what_to_fix() {
    let fx = Fx::new();
    set_self_test(&fx, "secretuser", "{expect: {files: [note.txt]}}");
    set_self_test(&fx, "echo_inputs", "{inputs: {source: ../gen/run.py}}");
    set_self_test(&fx, "package_std", "{expect: {status: COMPLETED}}");
    // gen's self_test lacks the input gen requires.
    set_self_test(&fx, "gen", "{expect: {files: [lines.txt]}}");
    let cases: [(&str, &[&str]); 6] = [
        ("nope", &["module 'nope' not found", "known modules: "]),
        ("package_std", &["is a built-in"]),
        (
            "fail",
            &["module 'fail' has no self_test", "add self_test:"],
        ),
        (
            "secretuser",
            &["secret CANARY is not set", "PLATFORM_SECRET_CANARY"],
        ),
        ("echo_inputs", &["self_test.inputs.source"]),
        ("gen", &["self_test does not set required input 'text'"]),
    ];
    for (module, says) in cases {
        let out = module_test(&fx, &[module], &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{module}: {stderr}");
        for part in says {
            assert!(stderr.contains(part), "{module}: {stderr}");
        }
        assert!(out.stdout.is_empty(), "{module}: nothing ran");
    }
}

/// The orch fixture with the modules of tests/fixtures/self_test.
fn hostile() -> Fx {
    Fx::new().overlay("self_test", "")
}

/// Asserts a refusal: exit 2, nothing run, stderr saying each of `says` and none of `never`.
fn assert_refused(out: &Output, module: &str, says: &[&str], never: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{module}: {stderr}");
    assert!(out.stdout.is_empty(), "{module}: nothing ran");
    for part in says {
        assert!(stderr.contains(part), "{module}: lacks {part:?}: {stderr}");
    }
    for part in never {
        assert!(!stderr.contains(part), "{module}: says {part:?}: {stderr}");
    }
}

/// Until 2026-12-03 a module that writes nothing passed with `expect.files` naming a file of
/// the host (`/etc/passwd`), one beside its outputs (`../inputs.json`) or one behind a link
/// it left in its outputs, and wrongly typed or undeclared self_test inputs passed too.
#[test]
fn a_self_test_passes_only_on_files_its_module_wrote_beneath_its_outputs() {
    let fx = hostile();
    let cases: [(&str, &[&str]); 3] = [
        (
            "{expect: {status: COMPLETED, files: [\"/etc/passwd\"]}}",
            &["self_test.expect.files[0]", "'/etc/passwd' is absolute"],
        ),
        (
            "{expect: {status: COMPLETED, files: [../inputs.json]}}",
            &["self_test.expect.files[0]", "contains '..'"],
        ),
        (
            "{inputs: {n: \"not a number\", zzz: 1}, expect: {status: COMPLETED}}",
            &[
                "self_test input 'n' must be of type integer",
                "self_test.inputs.n: self_test input 'n'",
                "self_test.inputs.zzz: self_test sets input 'zzz', which the module does not declare",
                "has 2 errors",
            ],
        ),
    ];
    for (self_test, says) in cases {
        set_self_test(&fx, "nothing", self_test);
        let out = module_test(&fx, &["nothing"], &[]);
        let mut says = says.to_vec();
        says.extend([
            "module 'nothing' cannot be tested",
            "modules/nothing/module.yml:",
        ]);
        assert_refused(&out, self_test, &says, &[]);
        // consistency-validate names the same finding.
        let validate = fx.cmd().arg("consistency-validate").output().unwrap();
        assert_eq!(validate.status.code(), Some(1));
        assert!(text(&validate.stdout).contains(says[0]), "{self_test}");
    }

    // Links the module left in its outputs are not followed out of them.
    let out = module_test(&fx, &["linkout", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc = json(&out);
    assert_eq!(doc["passed"], false);
    let link = "is reached through a symbolic link";
    assert_eq!(
        doc["problems"],
        serde_json::json!([
            format!("expected output file 'passwd' {link}; links are never followed in tenant files or module outputs"),
            format!("expected output file 'up/inputs.json' {link}; links are never followed in tenant files or module outputs"),
        ])
    );
}

/// Until 2026-12-03 `module test` ran these programs and showed the spawn error (`entity not
/// found`, `No such file or directory (os error 2)`, `Permission denied`).
#[test]
fn a_program_that_cannot_start_is_refused_with_the_validators_finding() {
    let fx = hostile();
    let raw = [
        "os error",
        "entity not found",
        "Permission denied",
        "cannot start",
    ];
    let cases: [(&str, &[&str]); 3] = [
        ("crlf", &["Windows (CRLF) line endings", "sed -i"]),
        ("backslash", &["(a Windows path)", "write './run.sh'"]),
        (
            "noexec",
            &["is not executable", "chmod +x modules/noexec/./run.sh"],
        ),
    ];
    for (module, says) in cases {
        let out = module_test(&fx, &[module], &[]);
        let mut says = says.to_vec();
        says.push("runner.command[0]");
        assert_refused(&out, module, &says, &raw);
    }
}

/// Until 2026-12-03 a `dir` output named in `expect.files` was reported missing.
#[test]
fn a_dir_output_is_expected_as_a_folder_and_anything_else_as_a_file() {
    let fx = hostile();
    let out = module_test(&fx, &["dirout"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "module dirout self-test: passed\n");

    set_self_test(
        &fx,
        "dirout",
        "{expect: {files: [d, d/f.txt, loose, d/none.txt]}}",
    );
    let out = module_test(&fx, &["dirout", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        json(&out)["problems"],
        serde_json::json!([
            "expected output file 'loose' is a folder, not a file",
            "expected output file 'd/none.txt' is missing",
        ])
    );
}

/// Until 2026-12-03 a module.yml against its schema gave `module 'm' not found (or its
/// module.yml is invalid)` and `known modules: ` (empty when it was the only module).
#[test]
fn a_module_yml_against_its_schema_is_named_with_its_findings() {
    let fx = Fx::empty();
    copy_tree(
        &fixture_dir("self_test/modules/nothing"),
        &fx.path("modules/nothing"),
    );
    set_self_test(&fx, "nothing", "{expect: {status: completed}}");
    let out = module_test(&fx, &["nothing"], &[]);
    let says = [
        "module 'nothing' cannot be tested: modules/nothing/module.yml has 1 error",
        "modules/nothing/module.yml:9: self_test.expect.status: 'completed' is not allowed here",
        "--> modules/nothing/module.yml:9",
    ];
    assert_refused(&out, "nothing", &says, &["not found", "known modules"]);

    // A module that is not there lists those that are, or says there are none.
    let out = module_test(&fx, &["other"], &[]);
    let says = ["module 'other' not found", "known modules: none"];
    assert_refused(&out, "other", &says, &[]);
}

/// Until 2026-12-03 a reason was printed in Rust's debug form (`reason_slug Some("timeout")`,
/// `reason_slug None`), and a self_test expecting a reason of a COMPLETED run (which never
/// has one) was accepted, to fail every time.
#[test]
fn reasons_are_named_as_written_and_one_of_a_completed_run_is_refused() {
    let fx = hostile();
    set_self_test(
        &fx,
        "fail",
        "{expect: {status: FAILED, reason_slug: timeout}}",
    );
    set_self_test(
        &fx,
        "nothing",
        "{expect: {status: FAILED, reason_slug: module_failed}}",
    );
    let cases = [
        ("fail", vec!["reason_slug module_failed (expected timeout)"]),
        (
            "nothing",
            vec![
                "status COMPLETED (expected FAILED)",
                "no reason_slug (expected module_failed)",
            ],
        ),
    ];
    for (module, problems) in cases {
        let out = module_test(&fx, &[module, "--json"], &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert_eq!(json(&out)["problems"], serde_json::json!(problems));
        let out = module_test(&fx, &[module], &[]);
        let stdout = text(&out.stdout);
        for p in &problems {
            assert!(stdout.contains(&format!("  - {p}\n")), "{stdout}");
        }
        assert!(
            !stdout.contains("Some(") && !stdout.contains("None"),
            "{stdout}"
        );
    }

    for status in ["", "status: COMPLETED, "] {
        let expect = format!("{{expect: {{{status}reason_slug: timeout}}}}");
        set_self_test(&fx, "nothing", &expect);
        let out = module_test(&fx, &["nothing"], &[]);
        let says = [
            "self_test.expect.reason_slug",
            "expects reason 'timeout' of a COMPLETED run, which never has one",
            "set expect.status: FAILED",
        ];
        assert_refused(&out, &expect, &says, &[]);
    }
}

/// Until 2026-12-03 a built-in without a self_test got `help: add self_test: ...`, and with
/// one, the refusal as a built-in: a dead end.
#[test]
fn a_built_in_is_refused_with_where_it_is_tested_whether_or_not_it_has_a_self_test() {
    let fx = hostile();
    for self_test in [None, Some("{expect: {status: COMPLETED}}")] {
        if let Some(t) = self_test {
            set_self_test(&fx, "package_std", t);
        }
        let out = module_test(&fx, &["package_std"], &[]);
        let says = [
            "module 'package_std' is a built-in",
            "modules/package_std/module.yml",
            "tested by the platform's own test suite",
            "a self_test in its module.yml is never run",
        ];
        assert_refused(
            &out,
            "package_std",
            &says,
            &["add self_test", "has no self_test"],
        );
    }
}
