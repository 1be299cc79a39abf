//! A file of config/ that is there but leads to no file (a dangling link, a loop of links) or is saved as `.yaml`, and a config/ or tenants/ that is a file: an error naming it, never read as absent (before 2026-12-04 a catalog so made opened every module to every tenant, a ledger.yml so made meant unsigned state, and a tenants file made a silent empty pass).
use crate::support::fx::{Fx, Transcript};
use serde_json::Value;
use std::sync::OnceLock;

/// The example repository, acme on plan `basic` (no `render_report`, which its weekly-digest
/// runs) and topped up: with the intact catalog the pass refuses that work order.
fn basic_acme() -> Fx {
    static FX: OnceLock<Fx> = OnceLock::new();
    Fx::prepared(&FX, || {
        let fx = Fx::example();
        fx.use_demo_iam();
        let tenant = fx.read_text("tenants/acme/tenant.yml");
        fx.write(
            "tenants/acme/tenant.yml",
            tenant.replace("plan: standard", "plan: basic"),
        );
        fx.topup_as("acme", 100, "inv-1", "demo-admin").expect_ok();
        fx
    })
}

/// Replace config/`name` by what `how` names: a link to a file that is not there, a link to
/// itself, or the same file under `.yaml`. Returns the file the error must name, and how.
fn break_config(fx: &Fx, name: &str, how: &str) -> (String, &'static str) {
    let rel = format!("config/{name}.yml");
    let path = fx.path(&rel);
    match how {
        "dangling" => {
            std::fs::remove_file(&path).unwrap();
            std::os::unix::fs::symlink("../shared/catalog.yml", &path).unwrap();
            (rel, "which does not exist")
        }
        "loop" => {
            std::fs::remove_file(&path).unwrap();
            std::os::unix::fs::symlink(format!("{name}.yml"), &path).unwrap();
            (rel, "a loop of links")
        }
        _ => {
            let twin = format!("config/{name}.yaml");
            std::fs::rename(&path, fx.path(&twin)).unwrap();
            (twin, "rename it to")
        }
    }
}

/// Whether `errors` (a report's) hold one at `file` whose message says `says`.
fn names(errors: &Value, file: &str, says: &str) -> bool {
    let all = errors.as_array().cloned().unwrap_or_default();
    all.iter()
        .any(|e| e["file"] == file && e["message"].as_str().unwrap_or("").contains(says))
}

#[test]
fn a_catalog_that_is_a_dangling_link_a_loop_or_yaml_named_fails_closed() {
    for how in ["dangling", "loop", "yaml"] {
        let fx = basic_acme();
        let (file, says) = break_config(&fx, "catalog", how);
        let out = fx.run(&["consistency-validate", "--format", "json"]);
        out.expect_code(1);
        let report = out.json();
        assert!(names(&report["errors"], &file, says), "{how}: {report}");

        let billing = fx.bytes(".billing-state/billing.jsonl");
        let (code, summary, _) = fx.orchestrate(&[]);
        assert_eq!(code, 1, "{how}: {summary}");
        assert!(
            names(&summary["config_errors"], &file, says),
            "{how}: {summary}"
        );
        assert_eq!(summary["runs"], serde_json::json!([]), "{how}: {summary}");
        assert_eq!(summary["charged_credits"], 0, "{how}");
        assert_eq!(fx.bytes(".billing-state/billing.jsonl"), billing, "{how}");
        assert_eq!(fx.balance_of("acme"), 100, "{how}");
    }
}

/// config/ledger.yml unreadable: validation names it, and `state pull` (which verifies the
/// state against its keys) exits 2 naming it before anything else, instead of treating the
/// state as unsigned.
#[test]
fn a_ledger_yml_that_is_a_dangling_link_a_loop_or_yaml_named_is_an_error() {
    for how in ["dangling", "loop", "yaml"] {
        let fx = basic_acme();
        let (file, says) = break_config(&fx, "ledger", how);
        let out = fx.run(&["consistency-validate", "--format", "json"]);
        out.expect_code(1);
        let report = out.json();
        assert!(names(&report["errors"], &file, says), "{how}: {report}");

        let out = fx.run(&["state", "pull"]);
        out.expect_code(2);
        let err = out.stderr_text();
        assert!(err.contains(&file) && err.contains(says), "{how}: {err}");
    }
}

/// The default runtime profile as a dangling link: refused naming it (exit 2), not read as
/// "no profile" (the default billing-state folder).
#[test]
fn a_local_profile_that_is_a_dangling_link_is_refused() {
    let fx = basic_acme();
    let (file, says) = break_config(&fx, "runtime_profile.local", "dangling");
    let out = fx.run(&["balance", "--tenant-id", "acme"]);
    out.expect_code(2);
    let err = out.stderr_text();
    assert!(err.contains(&file) && err.contains(says), "{err}");
}

/// config/ as a file: validation names `config` as not a folder (it named only
/// config/registry.yml, a file that cannot exist); tenants/ as a file: the orchestrator exits
/// 2 naming it, where it ran an empty pass and exited 0.
#[test]
fn a_config_or_tenants_that_is_a_file_is_named() {
    let fx = basic_acme();
    std::fs::remove_dir_all(fx.path("config")).unwrap();
    fx.write("config", "x\n");
    let out = fx.run(&["consistency-validate", "--format", "json"]);
    out.expect_code(1);
    let report = out.json();
    assert!(
        names(
            &report["errors"],
            "config/catalog.yml",
            "config is not a folder"
        ),
        "{report}"
    );

    let fx = basic_acme();
    std::fs::remove_dir_all(fx.path("tenants")).unwrap();
    fx.write("tenants", "x\n");
    let billing = fx.bytes(".billing-state/billing.jsonl");
    for args in [&["orchestrator"][..], &["orchestrator", "--dry-run"]] {
        let out = fx.run(args);
        out.expect_code(2);
        let err = out.stderr_text();
        assert!(
            err.contains("tenants/") && err.contains("not a folder"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(fx.bytes(".billing-state/billing.jsonl"), billing);
}
