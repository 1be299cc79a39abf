//! `platform module test <module_id>` as the real binary: a module's `self_test` run in a scratch folder, its verdict (exit 0 or 1, each difference named, the logs redacted) and every refusal (exit 2).
use crate::support::fx::Fx;
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
        ("gen", &["self_test.inputs lacks required input 'text'"]),
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
