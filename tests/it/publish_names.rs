//! Names a work order's IDs give GitHub (SPEC §2 IDs of 1–64 characters, §5 asset names): a release tag or an asset name no release can hold, and a missing GITHUB_TOKEN, are refused before anything is charged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::find;
use crate::support::fake_github::{FakeGithub, TOKEN};
use crate::support::orch::{run_of, step_of};
use crate::support::{Fx, Transcript};
use serde_json::Value;

const PROFILE: &str = "config/runtime_profile.gh.yml";

/// make (gen, buys `data`) → pack → ship (deliver_github_release), or make alone.
fn ship_order(id: &str) -> String {
    format!(
        "work_order_id: {id}
steps:
  - step_id: make
    module_id: gen
    kind: transform
    inputs: {{text: a b c}}
  - step_id: pack
    module_id: package_std
    kind: packaging
    inputs:
      bound_outputs:
        - {{from_step: make, output_id: data_json, as_path: data.json}}
  - step_id: ship
    module_id: deliver_github_release
    kind: delivery
    inputs:
      package_zip: {{from_step: pack, output_id: package_zip}}
"
    )
}

fn buy_order(id: &str, step: &str, module: &str, deliverable: &str) -> String {
    format!(
        "work_order_id: {id}\nsteps:\n  - step_id: {step}\n    module_id: {module}\n    kind: transform\n    inputs: {{text: a b c}}\n    deliverables: [{deliverable}]\n"
    )
}

/// The orch fixture with deliver_github_release and a profile whose github: block uploads to
/// `fake` with `release_tag` (None: the default template).
fn github_fixture(fake: &FakeGithub, release_tag: Option<&str>) -> Fx {
    let fx = Fx::new();
    fx.add_shipped_module("deliver_github_release");
    let tag = release_tag
        .map(|t| format!(", release_tag: \"{t}\""))
        .unwrap_or_default();
    fx.write(
        PROFILE,
        format!(
            "profile_name: gh\ngithub: {{repository: acme/artifacts, api_url: \"{}\"{tag}}}\n",
            fake.uri()
        ),
    );
    fx
}

fn orchestrate_with_token(fx: &Fx) -> Value {
    fx.run_env(
        &["orchestrator", "--json", "--runtime-profile", PROFILE],
        &[("GITHUB_TOKEN", TOKEN)],
    )
    .json()
}

fn spends_of(fx: &Fx, tenant: &str) -> usize {
    fx.of_type("billing.jsonl", "SPEND")
        .iter()
        .filter(|r| r["tenant_id"] == tenant)
        .count()
}

/// IDs within SPEC's 64 characters each, but a tenant and work order of 60 make a release tag
/// of 134 characters under the default template. Until 2026-12-03 (audit5 F3)
/// consistency-validate passed them; every pass charged `make` and `pack`, then `ship` failed
/// `delivery_failed`, and `platform publish` failed the purchase on every run. Now both work
/// orders are validation errors at their `work_order_id`, naming the profile and the length,
/// and the orchestrator runs neither: nothing is charged, GitHub is not called.
#[test]
fn a_release_tag_over_128_characters_is_a_validation_error_and_nothing_is_charged() {
    let fake = FakeGithub::start();
    let fx = github_fixture(&fake, None);
    let tenant = "t".repeat(60);
    let (buys, ships) = ("w".repeat(60), format!("{}x", "w".repeat(60)));
    fx.add_tenant(&tenant);
    fx.workorder_for(&tenant, &buys, &buy_order(&buys, "make", "gen", "data"));
    fx.workorder_for(&tenant, &ships, &ship_order(&ships));
    fx.fund(&tenant, 100, "r1");

    let out = fx.run(&["consistency-validate", "--format", "json"]);
    let v = out.expect_code(1).json();
    assert_eq!(v["errors"].as_array().unwrap().len(), 2, "{v}");
    for (wo, says, len) in [
        (&buys, "step 'make' purchases deliverables", 134),
        (&ships, "step 'ship' runs deliver_github_release", 135),
    ] {
        let f = find(
            &v["errors"],
            "file",
            format!("tenants/{tenant}/workorders/{wo}.yml").as_str(),
        );
        assert_eq!(f["field"], "work_order_id", "{f}");
        assert_eq!(f["line"], 1, "{f}");
        let message = f["message"].as_str().unwrap();
        for part in [
            says,
            PROFILE,
            &format!("release tag 'artifacts-{tenant}-{wo}-r1' is not a safe tag name"),
            &format!("({len} characters)"),
            "shorten the tenant or work order id",
        ] {
            assert!(message.contains(part), "want {part:?} in {message}");
        }
    }

    let summary = orchestrate_with_token(&fx);
    for wo in [&buys, &ships] {
        let invalid = find(&summary["invalid"], "work_order_id", wo.as_str());
        assert!(
            invalid.to_string().contains("is not a safe tag name"),
            "{invalid}"
        );
    }
    assert_eq!(spends_of(&fx, &tenant), 0, "nothing charged");
    assert_eq!(fx.balance_of(&tenant), 100);
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

/// Four IDs of 64 characters make `<t>__<w>__<s>__<d>.zip` 266 bytes: no file system keeps the
/// dist ZIP ("File name too long") and no release the asset. The profile's template leaves
/// the work order out, so only the asset name is too long. Until 2026-12-03 (audit5 F3) the
/// purchase was charged and `platform publish` failed it on every run.
#[test]
fn an_asset_name_over_255_bytes_is_a_validation_error_and_nothing_is_charged() {
    let fake = FakeGithub::start();
    let fx = github_fixture(&fake, Some("a.{tenant_id}.r{run}"));
    let [tenant, wo, step, deliverable] = ['t', 'w', 's', 'd'].map(|c| c.to_string().repeat(64));
    // gen with a deliverable of 64 characters.
    let gen = fx.read_text("modules/gen/module.yml");
    fx.write(
        "modules/longd/module.yml",
        gen.replace("module_id: gen", "module_id: longd")
            .replace(
                "deliverable_id: data",
                &format!("deliverable_id: {deliverable}"),
            )
            .replace(
                "deliverables: {data: 3}",
                &format!("deliverables: {{{deliverable}: 3}}"),
            ),
    );
    std::fs::copy(
        fx.path("modules/gen/run.py"),
        fx.path("modules/longd/run.py"),
    )
    .unwrap();
    fx.add_tenant(&tenant);
    fx.workorder_for(&tenant, &wo, &buy_order(&wo, &step, "longd", &deliverable));
    fx.fund(&tenant, 100, "r1");

    let out = fx.run(&["consistency-validate", "--format", "json"]);
    let v = out.expect_code(1).json();
    assert_eq!(v["errors"].as_array().unwrap().len(), 1, "{v}");
    let f = &v["errors"][0];
    assert_eq!(
        f["file"],
        format!("tenants/{tenant}/workorders/{wo}.yml"),
        "{f}"
    );
    assert_eq!(f["field"], "steps[0].deliverables", "{f}");
    assert_eq!(f["line"], 7, "{f}");
    let message = f["message"].as_str().unwrap();
    for part in [
        &format!("purchases '{deliverable}'"),
        &format!("{tenant}__{wo}__{step}__{deliverable}.zip (266 bytes)"),
        "use 1-255 characters",
    ] {
        assert!(message.contains(part), "want {part:?} in {message}");
    }

    let summary = orchestrate_with_token(&fx);
    let invalid = find(&summary["invalid"], "work_order_id", wo.as_str());
    assert!(invalid.to_string().contains("266 bytes"), "{invalid}");
    assert_eq!(spends_of(&fx, &tenant), 0, "nothing charged");
    assert_eq!(fx.balance_of(&tenant), 100);
}

/// deliver_github_release uploads with the platform's GITHUB_TOKEN (SPEC §2). Without it the
/// run is refused `secrets_missing` before anything is charged, as for a module's declared
/// secret (SPEC §6), and runs on the next pass once the token is set. Until 2026-12-03 (audit5
/// F3) `make` and `pack` were charged and `ship` failed `delivery_failed` on every pass.
#[test]
fn a_github_delivery_without_github_token_is_refused_before_anything_is_charged() {
    let fake = FakeGithub::start();
    let fx = github_fixture(&fake, None);
    fx.workorder("ship", &ship_order("ship"));
    fx.topup(100, "r1");
    let billing = fx.bytes(".billing-state/billing.jsonl");

    let out = fx.run(&["orchestrator", "--json", "--runtime-profile", PROFILE]);
    let summary = out.expect_code(1).json();
    let run = run_of(&summary, "ship");
    for step in ["make", "pack", "ship"] {
        let s = step_of(run, step);
        assert_eq!(s["status"], "FAILED", "{summary}");
        assert_eq!(s["reason_slug"], "secrets_missing", "{summary}");
    }
    let refused = run["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains("secrets not set: GITHUB_TOKEN; set GITHUB_TOKEN"),
        "{refused}"
    );
    assert_eq!(
        fx.bytes(".billing-state/billing.jsonl"),
        billing,
        "nothing charged"
    );
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());

    let summary = orchestrate_with_token(&fx);
    assert_eq!(
        step_of(run_of(&summary, "ship"), "ship")["status"],
        "COMPLETED",
        "{summary}"
    );
    assert!(!fake.release("artifacts-t1-ship-r1").unwrap().draft);
}

/// consistency-validate renders the tags of config/'s profiles for run 1; the profile a pass
/// uses (here one outside config/, with a longer template) or a later run's longer number can
/// still make the tag too long. deliver_github_release's own check renders the tag the upload
/// would use and refuses it before its charge: `input_invalid`, no SPEND. Until 2026-12-03
/// (audit5 F3) the step was charged, then failed `delivery_failed` and was refunded, on every
/// pass.
#[test]
fn a_release_tag_too_long_for_the_pass_is_refused_before_the_delivery_is_charged() {
    let fake = FakeGithub::start();
    let fx = github_fixture(&fake, None);
    let long = format!(
        "{}-{{tenant_id}}-{{work_order_id}}-r{{run}}",
        "x".repeat(120)
    );
    fx.write(
        "elsewhere/profile.yml",
        format!(
            "profile_name: long\ngithub: {{repository: acme/artifacts, api_url: \"{}\", release_tag: \"{long}\"}}\n",
            fake.uri()
        ),
    );
    fx.write("tenants/t1/assets/pkg.zip", b"PK package");
    fx.workorder(
        "ship",
        "work_order_id: ship\nsteps:\n  - step_id: ship\n    module_id: deliver_github_release\n    kind: delivery\n    inputs:\n      package_zip: {asset: pkg.zip}\n",
    );
    fx.topup(10, "r1");
    fx.run(&["consistency-validate"]).expect_ok();

    let out = fx.run_env(
        &[
            "orchestrator",
            "--json",
            "--runtime-profile",
            "elsewhere/profile.yml",
        ],
        &[("GITHUB_TOKEN", TOKEN)],
    );
    let summary = out.expect_code(1).json();
    let step = step_of(run_of(&summary, "ship"), "ship");
    assert_eq!(step["reason_slug"], "input_invalid", "{summary}");
    let message = step["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("is not a safe tag name") && message.contains("(131 characters)"),
        "{message}"
    );
    assert_eq!(fx.of_type("billing.jsonl", "SPEND").len(), 0);
    assert_eq!(fx.balance(), 10);
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

/// `platform publish --runtime-profile PROFILE --actor tester --json <extra>` with the token.
fn publish_json(fx: &Fx, extra: &[&str]) -> (i32, Value) {
    let args = [
        &[
            "publish",
            "--runtime-profile",
            PROFILE,
            "--actor",
            "tester",
            "--json",
        ][..],
        extra,
    ]
    .concat();
    let out = fx.run_env(&args, &[("GITHUB_TOKEN", TOKEN)]);
    (out.status.code().unwrap_or(-1), out.json())
}

/// Tenant `a` with work order `b__c` and tenant `a__b` with work order `c`: both purchases of
/// step `make`'s `data` are published as `a__b__c__make__data.zip`.
fn colliding_tenants(fx: &Fx) {
    for (tenant, wo) in [("a", "b__c"), ("a__b", "c")] {
        fx.add_tenant(tenant);
        fx.workorder_for(tenant, wo, &buy_order(wo, "make", "gen", "data"));
        fx.fund(tenant, 100, "r1");
    }
}

/// SPEC §5 names an artifact `<tenant>__<work_order>__<step>__<deliverable>.zip`, and IDs may
/// contain `__`: two tenants' purchases can share a name, and one name can hold one purchase
/// (its publish record is keyed by name and bytes). consistency-validate reports both work
/// orders, each naming the other's file, and the orchestrator runs neither: nothing is charged
/// for a purchase that could never be published. Until 2026-12-03 (audit5 F4) both passed.
#[test]
fn purchases_of_two_tenants_with_one_asset_name_are_validation_errors() {
    let fake = FakeGithub::start();
    let fx = github_fixture(&fake, None);
    colliding_tenants(&fx);

    let v = fx
        .run(&["consistency-validate", "--format", "json"])
        .expect_code(1)
        .json();
    assert_eq!(v["errors"].as_array().unwrap().len(), 2, "{v}");
    for (file, other) in [
        (
            "tenants/a/workorders/b__c.yml",
            "tenants/a__b/workorders/c.yml (tenant 'a__b', work order 'c')",
        ),
        (
            "tenants/a__b/workorders/c.yml",
            "tenants/a/workorders/b__c.yml (tenant 'a', work order 'b__c')",
        ),
    ] {
        let f = find(&v["errors"], "file", file);
        assert_eq!(f["field"], "steps[0].deliverables", "{f}");
        assert_eq!(f["line"], 7, "{f}");
        let message = f["message"].as_str().unwrap();
        for part in [
            "step 'make' purchases 'data', which `platform publish` names a__b__c__make__data.zip",
            &format!("so does step 'make' ('data') of {other}"),
            "One asset name holds one purchase",
        ] {
            assert!(message.contains(part), "want {part:?} in {message}");
        }
    }

    let summary = orchestrate_with_token(&fx);
    for wo in ["b__c", "c"] {
        find(&summary["invalid"], "work_order_id", wo);
    }
    assert!(
        fx.of_type("billing.jsonl", "SPEND").is_empty(),
        "nothing charged"
    );
    // The work-order cache does not hide it: the rule spans files, checked on every load.
    let summary = orchestrate_with_token(&fx);
    assert_eq!(summary["invalid"].as_array().unwrap().len(), 2, "{summary}");
    assert!(fx.of_type("billing.jsonl", "SPEND").is_empty());
}

/// Within one work order too: step `x` buying `b__data` and step `x__b` buying `data` are
/// both `t1__both__x__b__data.zip`.
#[test]
fn purchases_of_one_work_order_with_one_asset_name_are_validation_errors() {
    let fx = Fx::new();
    let gen = fx.read_text("modules/gen/module.yml");
    fx.write(
        "modules/gen2/module.yml",
        gen.replace("module_id: gen", "module_id: gen2")
            .replace("deliverable_id: data", "deliverable_id: b__data")
            .replace("deliverables: {data: 3}", "deliverables: {b__data: 3}"),
    );
    std::fs::copy(
        fx.path("modules/gen/run.py"),
        fx.path("modules/gen2/run.py"),
    )
    .unwrap();
    fx.workorder(
        "both",
        "work_order_id: both\nsteps:\n  - {step_id: x, module_id: gen2, kind: transform, inputs: {text: a}, deliverables: [b__data]}\n  - {step_id: x__b, module_id: gen, kind: transform, inputs: {text: a}, deliverables: [data]}\n",
    );
    let v = fx
        .run(&["consistency-validate", "--format", "json"])
        .expect_code(1)
        .json();
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{v}");
    for (i, (me, other)) in [
        ("'x' purchases 'b__data'", "step 'x__b' ('data')"),
        ("'x__b' purchases 'data'", "step 'x' ('b__data')"),
    ]
    .iter()
    .enumerate()
    {
        let f = find(
            &v["errors"],
            "field",
            format!("steps[{i}].deliverables").as_str(),
        );
        let message = f["message"].as_str().unwrap();
        let theirs = format!("{other} of this work order");
        for part in [*me, theirs.as_str(), "t1__both__x__b__data.zip"] {
            assert!(message.contains(part), "want {part:?} in {message}");
        }
    }
}

/// A publish record is keyed by asset name and SHA-256, and names its purchase. Tenant `a`'s
/// work order `b__c` was published, then disabled (its purchase stays in the ledger; a draft's
/// clash is only a warning); tenant `a__b`'s `c` then bought the same bytes under the same
/// name. Until 2026-12-03 (audit5 F4) publish reported a__b's purchase "skipped: already
/// published" with tenant a's release and URL, exit 0: charged, never published. Now it is an
/// error naming the other purchase, nothing is uploaded for it, and without `--since` tenant
/// a's purchase, recorded long ago, is reported skipped rather than failing with it.
#[test]
fn a_publish_record_of_another_purchase_under_the_same_name_is_not_this_ones() {
    let fake = FakeGithub::start();
    let fx = github_fixture(&fake, None);
    fx.add_tenant("a");
    fx.workorder_for("a", "b__c", &buy_order("b__c", "make", "gen", "data"));
    fx.fund("a", 100, "r1");
    orchestrate_with_token(&fx);
    let (code, first) = publish_json(&fx, &[]);
    assert_eq!(code, 0, "{first}");
    assert_eq!(first["artifacts"][0]["status"], "published", "{first}");

    fx.workorder_for(
        "a",
        "b__c",
        &buy_order("b__c", "make", "gen", "data").replace("steps:", "enabled: false\nsteps:"),
    );
    fx.add_tenant("a__b");
    fx.workorder_for("a__b", "c", &buy_order("c", "make", "gen", "data"));
    fx.fund("a__b", 100, "r1");
    let v = fx
        .run(&["consistency-validate", "--format", "json"])
        .expect_ok()
        .json();
    let warning = find(&v["warnings"], "file", "tenants/a/workorders/b__c.yml");
    assert!(
        warning
            .to_string()
            .contains("tenants/a__b/workorders/c.yml"),
        "{warning}"
    );
    let since = fx.of_type("billing.jsonl", "TOPUP").last().unwrap()["recorded_at"]
        .as_str()
        .unwrap()
        .to_string();
    let summary = orchestrate_with_token(&fx);
    assert_eq!(run_of(&summary, "c")["status"], "COMPLETED", "{summary}");
    fake.clear_calls();

    let (code, v) = publish_json(&fx, &["--since", &since]);
    assert_eq!(code, 1, "{v}");
    let row = find(&v["artifacts"], "tenant_id", "a__b");
    assert_eq!(row["status"], "error", "{v}");
    assert_eq!(row["asset_name"], "a__b__c__make__data.zip");
    let detail = row["detail"].as_str().unwrap();
    assert!(
        detail.contains("is already published for another purchase, a/b__c/make/data (release artifacts-a-b__c-r1)"),
        "{detail}"
    );
    assert!(row["url"].is_null(), "not the other tenant's URL: {row}");
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
    assert!(fake.release("artifacts-a__b-c-r1").is_none());
    let records = fx.of_type("evidence.jsonl", "publish");
    assert_eq!(records.len(), 1, "nothing recorded for a__b: {records:?}");
    assert_eq!(records[0]["tenant_id"], "a");

    let (code, v) = publish_json(&fx, &[]);
    assert_eq!(code, 1, "{v}");
    let a = find(&v["artifacts"], "tenant_id", "a");
    assert_eq!(a["status"], "skipped", "{v}");
    assert!(
        a["detail"].as_str().unwrap().contains("already published"),
        "{a}"
    );
    let a_b = find(&v["artifacts"], "tenant_id", "a__b");
    assert_eq!(a_b["status"], "error", "{v}");
    assert!(
        a_b["detail"]
            .as_str()
            .unwrap()
            .contains("is shared by different deliverables"),
        "{a_b}"
    );
}
