//! SPEC §5 "one release per run": deliver_github_release and `platform publish` each publish the release a run's tag names, so a work order with both, or with two release deliveries, is refused before anything is charged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::find;
use crate::support::fake_github::{FakeGithub, TOKEN};
use crate::support::orch::{run_of, step_of};
use crate::support::{Fx, Transcript};

const PROFILE: &str = "config/runtime_profile.gh.yml";

/// A purchase (gen's `data`, 3 credits) packaged and delivered to the run's release.
const BOTH: &str = "work_order_id: both
steps:
  - step_id: make
    module_id: gen
    kind: transform
    inputs: {text: a b c}
    deliverables: [data]
  - step_id: pack
    module_id: package_std
    kind: packaging
    inputs:
      bound_outputs:
        - {from_step: make, output_id: data_json, as_path: data.json}
  - step_id: ship
    module_id: deliver_github_release
    kind: delivery
    inputs:
      package_zip: {from_step: pack, output_id: package_zip}
";

/// Until 2026-12-03 this work order ran: `ship` published `artifacts-t1-both-r1`, and every
/// later `platform publish` exited 1 because the purchased `data` could not be added to a
/// published (immutable) release — 3 credits paid for a deliverable never published. Now the
/// orchestrator calls it invalid (nothing charged, no GitHub call for it), while a work
/// order that delivers to its release and purchases nothing still runs and publishes.
#[test]
fn a_work_order_with_a_github_release_delivery_and_purchases_is_refused_before_any_charge() {
    let (fake, _fx, _) = refused_beside_an_honest_delivery(Refused {
        id: "both",
        yaml: BOTH,
        field: "steps[2].module_id",
        line: 15,
        says: &[
            "step 'ship' runs deliver_github_release",
            "step 'make' (data) purchases",
            "artifacts-t1-both-r1",
            "deliver_local or deliver_email",
        ],
        invalid_says: "runs deliver_github_release",
    });
    let honest = fake.release("artifacts-t1-honest-r1").unwrap();
    assert!(!honest.draft);
    assert_eq!(
        fake.asset_data("artifacts-t1-honest-r1", "report.zip")
            .unwrap(),
        b"PK honest package"
    );
}

/// Two deliveries to the run's release: `ship1` uploads the package, `ship2` the raw JSON
/// under another file name.
const TWO: &str = "work_order_id: two
steps:
  - step_id: make
    module_id: gen
    kind: transform
    inputs: {text: a b c}
  - step_id: pack
    module_id: package_std
    kind: packaging
    inputs:
      bound_outputs:
        - {from_step: make, output_id: data_json, as_path: data.json}
  - step_id: ship1
    module_id: deliver_github_release
    kind: delivery
    inputs:
      package_zip: {from_step: pack, output_id: package_zip}
  - step_id: ship2
    module_id: deliver_github_release
    kind: delivery
    inputs:
      package_zip: {from_step: make, output_id: data_json}
";

/// Until 2026-12-04 this work order ran: the release tag names no step, so `ship1` published
/// `artifacts-t1-two-r1` and `ship2` failed `delivery_failed` (its file could not be added to
/// the published, immutable release) on every run and every `--retry-failed`, while `make`
/// and `pack` stayed charged; consistency-validate said nothing, and docs/github.md said
/// distinct file names fixed it. Now it is invalid: nothing charged, no GitHub call for it.
#[test]
fn two_github_release_deliveries_in_one_work_order_are_refused_before_any_charge() {
    let (_fake, fx, _) = refused_beside_an_honest_delivery(Refused {
        id: "two",
        yaml: TWO,
        field: "steps[3].module_id",
        line: 19,
        says: &[
            "step 'ship2' runs deliver_github_release, as step 'ship1' does",
            "artifacts-t1-two-r1",
            "whatever its package's file name",
            "one deliver_github_release step",
        ],
        invalid_says: "as step 'ship1' does",
    });

    // A second pass, and one with --retry-failed, charge nothing for it either.
    for extra in [&[][..], &["--retry-failed"][..]] {
        let args = [&["orchestrator", "--runtime-profile", PROFILE][..], extra].concat();
        fx.run_env(&args, &[("GITHUB_TOKEN", TOKEN)]).expect_code(1);
    }
    assert_eq!(fx.balance(), 100 - 2);
}

/// A work order the validation refuses, beside one that delivers an asset to its release.
struct Refused<'a> {
    id: &'a str,
    yaml: &'a str,
    field: &'a str,
    line: u64,
    says: &'a [&'a str],
    invalid_says: &'a str,
}

/// Validation names the refused work order's error (and only that one), the orchestrator
/// lists it invalid and charges and calls GitHub for nothing of it (every call is one of the
/// honest delivery's), and the honest work order's delivery completes: 2 of 100 credits
/// charged. Returns the pass's summary.
fn refused_beside_an_honest_delivery(r: Refused<'_>) -> (FakeGithub, Fx, serde_json::Value) {
    let fake = FakeGithub::start();
    let fx = Fx::new();
    fx.add_shipped_module("deliver_github_release");
    fx.write(
        PROFILE,
        format!(
            "profile_name: gh\ngithub: {{repository: acme/artifacts, api_url: \"{}\"}}\n",
            fake.uri()
        ),
    );
    fx.write("tenants/t1/assets/report.zip", b"PK honest package");
    fx.workorder(r.id, r.yaml);
    fx.workorder(
        "honest",
        "work_order_id: honest\nsteps:\n  - step_id: ship\n    module_id: deliver_github_release\n    kind: delivery\n    inputs:\n      package_zip: {asset: report.zip}\n",
    );
    fx.topup(100, "r1");

    let out = fx.run(&["consistency-validate", "--format", "json"]);
    let v = out.expect_code(1).json();
    let file = format!("tenants/t1/workorders/{}.yml", r.id);
    let f = find(&v["errors"], "file", file.as_str());
    assert_eq!(f["field"], r.field, "{v}");
    assert_eq!(f["line"], r.line, "{v}");
    let message = f["message"].as_str().unwrap();
    for part in r.says {
        assert!(message.contains(part), "want {part:?} in {message}");
    }
    assert_eq!(v["errors"].as_array().unwrap().len(), 1, "{v}");

    let out = fx.run_env(
        &["orchestrator", "--json", "--runtime-profile", PROFILE],
        &[("GITHUB_TOKEN", TOKEN)],
    );
    let summary = out.expect_code(1).json();
    let invalid = find(&summary["invalid"], "work_order_id", r.id);
    assert!(invalid.to_string().contains(r.invalid_says), "{invalid}");
    assert!(
        summary["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|run| run["work_order_id"] != r.id),
        "{summary}"
    );
    let quoted = format!("\"{}\"", r.id);
    assert!(
        !fx.billing()
            .iter()
            .any(|rec| rec.to_string().contains(&quoted)),
        "nothing of '{}' is in billing.jsonl",
        r.id
    );
    assert_eq!(
        fx.balance(),
        100 - 2,
        "only honest's delivery (2) is charged"
    );
    let tag = format!("artifacts-t1-{}-r1", r.id);
    assert!(fake.release(&tag).is_none());
    // The calls of one delivery, honest's: a delivery of the refused work order would add
    // its own (the fake's call strings name no tag, so only their number tells).
    assert_eq!(
        fake.calls(),
        [
            "list releases",
            "create release",
            "list assets",
            "upload report.zip",
            "list assets",
            "publish release",
            "list assets"
        ],
        "GitHub is called for honest's delivery only"
    );
    assert_eq!(
        step_of(run_of(&summary, "honest"), "ship")["status"],
        "COMPLETED",
        "{summary}"
    );
    (fake, fx, summary)
}
