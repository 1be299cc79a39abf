//! Each built-in's own check runs before its step is charged (SPEC §4: an input error costs
//! nothing): a step whose built-in refuses its input fails `input_invalid`, with no SPEND and
//! the balance untouched.
use crate::support::orch::{run_of, step_of};
use crate::support::Fx;

/// A built-in step the check refuses: the module to add (a shipped one, or None for the
/// fixture's own), its inputs, and what the refusal must say.
struct Case {
    module_id: &'static str,
    shipped: bool,
    inputs: &'static str,
    says: &'static str,
}

/// (deliver_local's package and manifest of one file name, which its check also refuses, are
/// known from the work order and module.yml: consistency-validate finds them, see
/// `a_package_and_manifest_of_one_name_are_refused_before_anything_is_charged`.)
const CASES: [Case; 1] = [
    // The fixture's profile has no github: block: there is nowhere to upload to.
    Case {
        module_id: "deliver_github_release",
        shipped: true,
        inputs: "package_zip: {asset: a/pkg.zip}",
        says: "no github: block",
    },
];

/// `orchestrator --json` with a GITHUB_TOKEN (never sent: the check refuses first). Without
/// one, a run with deliver_github_release is refused `secrets_missing` before any step's check.
fn orchestrate_with_token(fx: &Fx) -> (i32, serde_json::Value, String) {
    use crate::support::Transcript;
    let out = fx.run_env(&["orchestrator", "--json"], &[("GITHUB_TOKEN", "unused")]);
    (
        out.status.code().unwrap_or(-1),
        out.json(),
        out.stderr_text(),
    )
}

#[test]
fn a_builtin_refuses_its_input_before_the_step_is_charged() {
    for case in CASES {
        let fx = Fx::new();
        if case.shipped {
            fx.add_shipped_module(case.module_id);
        }
        for dir in ["a", "b"] {
            fx.write(&format!("tenants/t1/assets/{dir}/pkg.zip"), b"PK package");
        }
        fx.workorder(
            "ship",
            &format!(
                "work_order_id: ship\nsteps:\n  - step_id: ship\n    module_id: {}\n    kind: delivery\n    inputs:\n      {}\n",
                case.module_id, case.inputs
            ),
        );
        fx.topup(10, "r1");
        let (code, sum, stderr) = orchestrate_with_token(&fx);
        let name = case.module_id;
        assert_eq!(code, 1, "{name}: its only step failed: {sum}\n{stderr}");
        let step = step_of(run_of(&sum, "ship"), "ship");
        assert_eq!(step["status"], "FAILED", "{name}: {sum}");
        assert_eq!(step["reason_slug"], "input_invalid", "{name}: {sum}");
        let message = step["message"].as_str().unwrap_or_default();
        assert!(message.contains(case.says), "{name}: {message}");
        assert_eq!(fx.of_type("billing.jsonl", "SPEND").len(), 0, "{name}");
        assert_eq!(
            fx.of_type("evidence.jsonl", "step_started").len(),
            0,
            "{name}"
        );
        assert_eq!(fx.balance(), 10, "{name}");
    }
}

#[test]
fn a_package_whose_name_github_would_rewrite_is_refused_before_the_charge() {
    // A github: block (never contacted: the check comes first) and an asset named with a
    // space, which GitHub would rewrite: the upload after a charge could only fail.
    let fx = Fx::new();
    fx.add_shipped_module("deliver_github_release");
    fx.write(
        "config/runtime_profile.local.yml",
        "profile_name: test\ngithub: {repository: acme/artifacts, api_url: \"http://127.0.0.1:9\"}\n",
    );
    fx.write("tenants/t1/assets/a b.zip", b"PK package");
    fx.workorder(
        "ship",
        "work_order_id: ship\nsteps:\n  - step_id: ship\n    module_id: deliver_github_release\n    kind: delivery\n    inputs:\n      package_zip: {asset: a b.zip}\n",
    );
    fx.topup(10, "r1");
    let (code, sum, stderr) = orchestrate_with_token(&fx);
    assert_eq!(code, 1, "{sum}\n{stderr}");
    let step = step_of(run_of(&sum, "ship"), "ship");
    assert_eq!(step["reason_slug"], "input_invalid", "{sum}");
    assert!(
        step["message"]
            .as_str()
            .unwrap_or_default()
            .contains("'a b.zip' is not allowed"),
        "{sum}"
    );
    assert_eq!(fx.of_type("billing.jsonl", "SPEND").len(), 0);
    assert_eq!(fx.balance(), 10);
}

/// deliver_local's package and manifest of one file name would overwrite each other in the
/// delivery folder, and both names are fixed by the work order (asset names) and module.yml
/// (output paths): consistency-validate reports it at the step's manifest_json (its file and
/// line), and the orchestrator does not run the work order, so nothing is charged, the
/// packaging step before the delivery included. Until 2026-12-03 (audit4 F3) the packaging
/// step was charged on every pass, and the delivery then failed `input_invalid`.
#[test]
fn a_package_and_manifest_of_one_name_are_refused_before_anything_is_charged() {
    use crate::support::check::find;
    use crate::support::Transcript;
    let fx = Fx::new();
    fx.write("tenants/t1/assets/b/package.zip", b"PK other");
    fx.workorder(
        "ship",
        "work_order_id: ship
steps:
  - step_id: make
    module_id: gen
    kind: transform
    inputs: {text: a b}
  - step_id: pack
    module_id: package_std
    kind: packaging
    inputs:
      bound_outputs: [{from_step: make, output_id: data_json, as_path: data.json}]
  - step_id: ship
    module_id: deliver_local
    kind: delivery
    inputs:
      package_zip: {from_step: pack, output_id: package_zip}
      manifest_json: {asset: b/package.zip}
",
    );
    fx.topup(10, "r1");
    let out = fx.run(&["consistency-validate", "--format", "json"]);
    let v = out.json();
    assert_eq!(out.status.code(), Some(1), "{v}");
    let f = find(&v["errors"], "file", "tenants/t1/workorders/ship.yml");
    assert_eq!(f["field"], "steps[2].inputs.manifest_json", "{v}");
    assert_eq!(f["line"], 17, "{v}");
    assert!(
        f["message"]
            .as_str()
            .is_some_and(|m| m.contains("have the same file name")),
        "{v}"
    );
    let (code, sum, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "an invalid work order: {sum}\n{stderr}");
    let invalid = find(&sum["invalid"], "work_order_id", "ship");
    assert!(
        invalid.to_string().contains("have the same file name"),
        "{invalid}"
    );
    assert!(fx.of_type("billing.jsonl", "SPEND").is_empty());
    assert!(!fx.path("runtime/runs").exists(), "nothing ran");
    assert_eq!(fx.balance(), 10);
}
