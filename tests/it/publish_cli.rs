//! `platform publish` end to end on a copy of the example repository, through the real binary: staging, checksums, idempotent re-runs, `--since`, IAM, refunds, tampering, and a fake GitHub.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::{assert_has, strs};
use crate::support::fake_github;

use crate::support::{Fx, Transcript};
use fake_github::{FakeGithub, TOKEN};
use serde_json::Value;
use std::process::Output;
use std::sync::OnceLock;

/// A work order whose only step fails (`empty_input`, refundable): its purchased deliverable
/// is charged and refunded, so it must never be published.
const REFUNDED_WO: &str = "\
work_order_id: empty-stats
enabled: true
steps:
  - step_id: stats
    module_id: text_stats
    kind: transform
    inputs:
      text: \"   \"
    deliverables: [stats]
";

/// What the example repository's two enabled work orders purchase.
const STAGED: [&str; 4] = [
    "acme__weekly-digest__pack__package.zip",
    "acme__weekly-digest__report__report.zip",
    "acme__weekly-digest__stats__stats.zip",
    "globex__memo-pack__shout__upper.zip",
];
const REFUNDED: &str = "globex__empty-stats__stats__stats.zip";

/// The example repository after top-ups and one orchestrator pass, made once (the
/// orchestrator runs Python modules and takes a while) and copied for each test.
fn fixture() -> Fx {
    static TEMPLATE: OnceLock<Fx> = OnceLock::new();
    Fx::prepared(&TEMPLATE, || {
        let fx = Fx::example();
        fx.use_demo_iam();
        fx.write("tenants/globex/workorders/empty-stats.yml", REFUNDED_WO);
        for tenant in ["acme", "globex"] {
            fx.topup_as(tenant, 100, "r1", "demo-admin").expect_ok();
        }
        // Exit 1: the empty-stats run fails on purpose.
        fx.run(&["orchestrator"]).expect_code(1);
        fx
    })
}

/// `publish` of the default state and runtime directories, with `extra` and `env`.
fn publish_env(fx: &Fx, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let dirs = [
        "publish",
        "--billing-state-dir",
        ".billing-state",
        "--runtime-dir",
        "runtime",
    ];
    fx.run_env(&[&dirs[..], extra].concat(), env)
}

fn publish(fx: &Fx, extra: &[&str]) -> Output {
    publish_env(fx, extra, &[])
}

fn publish_records(fx: &Fx) -> Vec<Value> {
    fx.of_type("evidence.jsonl", "publish")
}

/// The audit records of publishing (allowed and denied).
fn publish_audits(fx: &Fx) -> Vec<Value> {
    let audits = fx.lines("audit.jsonl").into_iter();
    audits
        .filter(|a| a["action"] == "artifacts.publish")
        .collect()
}

/// Each publish record has exactly one allowed audit record, keyed by its key, naming its
/// actor and tenant (and publish writes no other allowed audit record).
fn assert_audited(fx: &Fx, records: &[Value]) {
    let allowed: Vec<Value> = publish_audits(fx)
        .into_iter()
        .filter(|a| a["decision"] == "allowed")
        .collect();
    assert_eq!(allowed.len(), records.len(), "{allowed:?}");
    for r in records {
        let key = r["idempotency_key"].as_str().unwrap();
        let audit = allowed
            .iter()
            .find(|a| a["target"] == key)
            .unwrap_or_else(|| panic!("no audit record of {key}: {allowed:?}"));
        assert_eq!(
            audit["idempotency_key"],
            format!("audit/artifacts.publish/{key}")
        );
        assert_eq!(audit["scope"], "artifacts.publish");
        assert_eq!(audit["actor"], r["actor"]);
        assert_eq!(audit["tenant_id"], r["tenant_id"]);
    }
}

/// `sha256sum -c SHA256SUMS` in a dist folder passes.
fn sums_verify(fx: &Fx, dist: &str) {
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(fx.path(dist))
        .output()
        .unwrap();
    check.expect_ok();
}

/// A fixture whose profile config/runtime_profile.gh.yml points at a fresh fake GitHub
/// (repository o/r).
fn with_github() -> (FakeGithub, Fx) {
    let fake = FakeGithub::start_for("o/r");
    let fx = fixture();
    fx.write(
        "config/runtime_profile.gh.yml",
        format!(
            "profile_name: gh\ngithub:\n  repository: o/r\n  api_url: {}\n",
            fake.uri()
        ),
    );
    (fake, fx)
}

/// Publish to the fake GitHub of `with_github` as demo-admin, with the token.
fn to_github(fx: &Fx, extra: &[&str]) -> Output {
    to_github_env(fx, extra, &[])
}

/// `to_github` with more environment variables.
fn to_github_env(fx: &Fx, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let to_github = [
        "--actor",
        "demo-admin",
        "--runtime-profile",
        "config/runtime_profile.gh.yml",
        "--json",
    ];
    publish_env(
        fx,
        &[&to_github[..], extra].concat(),
        &[&[("GITHUB_TOKEN", TOKEN)][..], env].concat(),
    )
}

/// `publish --no-publish --actor demo-admin --json <extra>`: its exit code must be `code`;
/// the report.
fn stage(fx: &Fx, extra: &[&str], code: i32) -> Value {
    let staging = ["--no-publish", "--actor", "demo-admin", "--json"];
    publish(fx, &[&staging[..], extra].concat())
        .expect_code(code)
        .json()
}

/// (run, `field`) of each artifact of a work order in a report.
fn artifacts_of<'a>(report: &'a Value, wo: &str, field: &str) -> Vec<(u64, &'a str)> {
    report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["work_order_id"] == wo)
        .map(|a| (a["run"].as_u64().unwrap(), a[field].as_str().unwrap()))
        .collect()
}

fn names_with(report: &Value, status: &str) -> Vec<String> {
    report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == status)
        .map(|a| a["asset_name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn no_publish_stages_verifiable_packages_and_a_second_run_appends_nothing() {
    let fx = fixture();
    let summary = fx.path("step-summary.md");
    let report = publish_env(
        &fx,
        &[
            "--no-publish",
            "--actor",
            "demo-admin",
            "--dist-dir",
            "dist",
            "--json",
        ],
        &[("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())],
    )
    .expect_code(0)
    .json();
    assert_eq!(names_with(&report, "staged"), STAGED);
    assert_eq!(report["staged"], 4);
    assert_eq!(report["published"], 0);
    assert_eq!(report["skipped"], 0);
    assert_eq!(report["errors"], Value::Array(vec![]));
    assert!(report["sha256sums"]
        .as_str()
        .unwrap()
        .ends_with("dist/SHA256SUMS"));
    let first = &report["artifacts"][0];
    for key in [
        "tenant_id",
        "work_order_id",
        "run",
        "step_id",
        "deliverable_id",
        "asset_name",
        "bytes",
        "sha256",
        "status",
        "url",
    ] {
        assert!(first.get(key).is_some(), "missing {key} in {first}");
    }
    assert_eq!(first["url"], Value::Null);

    // The packages exist under their pinned names, and SHA256SUMS verifies with coreutils.
    for name in STAGED {
        assert!(fx.path(&format!("dist/{name}")).is_file(), "{name}");
    }
    assert!(!fx.path(&format!("dist/{REFUNDED}")).exists());
    let sums = String::from_utf8(fx.bytes("dist/SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 4, "{sums}");
    assert!(sums.ends_with('\n') && !sums.contains('\r'));
    sums_verify(&fx, "dist");

    // Entries are named by the outputs' declared paths.
    let zip = std::fs::File::open(fx.path("dist/acme__weekly-digest__report__report.zip")).unwrap();
    let mut archive = zip::ZipArchive::new(zip).unwrap();
    let names: Vec<String> = (0..archive.len())
        .map(|i| archive.by_index(i).unwrap().name().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["report.md", "report/summary.txt", "report/top_words.csv"]
    );

    // One staged record per artifact, naming its actor, and the allowed audit record of
    // each (written with it: `audit/artifacts.publish/{its key}`).
    let records = publish_records(&fx);
    assert_eq!(records.len(), 4);
    for r in &records {
        assert_eq!(r["status"], "staged");
        assert_eq!(r["repository"], Value::Null);
        assert_eq!(r["url"], Value::Null);
        assert_eq!(r["actor"], "demo-admin");
        assert!(r["spend_key"].as_str().unwrap().starts_with("spend/"));
    }
    assert_audited(&fx, &records);

    let md = std::fs::read_to_string(&summary).unwrap();
    assert_has(&md, "### platform publish");
    assert_has(&md, "globex__memo-pack__shout__upper.zip");

    // Second run over the same ledger: every file is byte-identical, packages included.
    let before = fx.ledger_bytes(".billing-state");
    let zips: Vec<Vec<u8>> = STAGED
        .iter()
        .map(|n| fx.bytes(&format!("dist/{n}")))
        .collect();
    let report = publish(
        &fx,
        &[
            "--no-publish",
            "--actor",
            "demo-admin",
            "--dist-dir",
            "dist2",
            "--json",
        ],
    )
    .expect_code(0)
    .json();
    assert_eq!(names_with(&report, "skipped"), STAGED);
    assert_eq!(report["staged"], 0);
    let after = fx.ledger_bytes(".billing-state");
    assert!(before == after, "a second run changed the ledger");
    let again: Vec<Vec<u8>> = STAGED
        .iter()
        .map(|n| fx.bytes(&format!("dist2/{n}")))
        .collect();
    assert!(zips == again, "packages differ between runs");
    assert_eq!(fx.bytes("dist/SHA256SUMS"), fx.bytes("dist2/SHA256SUMS"));

    fx.integrity().unwrap();
}

#[test]
fn default_dist_dir_is_dist_under_the_repo_and_text_output_is_a_table() {
    let fx = fixture();
    let stdout = publish(&fx, &["--no-publish", "--actor", "demo-admin"])
        .expect_code(0)
        .stdout_text();
    assert_has(&stdout, "artifact");
    for name in STAGED {
        assert_has(&stdout, name);
        assert!(fx.path(&format!("dist/{name}")).is_file());
    }
    assert_has(&stdout, "4 staged");
}

#[test]
fn since_selects_by_spend_time() {
    let fx = fixture();
    let evidence = fx.bytes(".billing-state/evidence.jsonl");
    let report = stage(&fx, &["--since", "2999-01-01T00:00:00Z"], 0);
    assert_eq!(report["artifacts"], Value::Array(vec![]));
    assert_eq!(report["staged"], 0);
    assert_eq!(fx.bytes(".billing-state/evidence.jsonl"), evidence);
    assert_eq!(fx.bytes("dist/SHA256SUMS"), b"");

    let report = stage(&fx, &["--since", "2000-01-01T00:00:00+02:00"], 0);
    assert_eq!(report["staged"], 4, "{report}");

    let out = publish(
        &fx,
        &[
            "--no-publish",
            "--actor",
            "demo-admin",
            "--since",
            "yesterday",
        ],
    );
    let stderr = out.expect_code(2).stderr_text();
    assert!(
        stderr.contains("RFC 3339") && stderr.contains("2025-01-31T00:00:00Z"),
        "{stderr}"
    );
}

#[test]
fn a_denied_actor_exits_3_and_is_audited_even_with_no_publish() {
    let fx = fixture();
    let evidence = fx.bytes(".billing-state/evidence.jsonl");
    publish(&fx, &["--no-publish", "--actor", "mallory"]).expect_code(3);
    // The actor comes from GITHUB_ACTOR when --actor is absent.
    publish_env(&fx, &["--no-publish"], &[("GITHUB_ACTOR", "octocat")]).expect_code(3);
    let denials = publish_audits(&fx);
    assert_eq!(denials.len(), 2);
    assert_eq!(denials[0]["decision"], "denied");
    assert_eq!(denials[0]["actor"], "mallory");
    assert_eq!(denials[1]["actor"], "octocat");
    assert_ne!(denials[0]["idempotency_key"], denials[1]["idempotency_key"]);
    assert_eq!(fx.bytes(".billing-state/evidence.jsonl"), evidence);
    assert!(!fx.path("dist").exists());
}

#[test]
fn metered_usage_is_not_a_deliverable_and_is_never_published() {
    // line_count charges 1 credit a line it read (SPEC §10): a SPEND whose deliverable_id is
    // the unit, `lines`. It bought nothing to publish.
    let fx = fixture();
    fx.write(
        "tenants/acme/workorders/count.yml",
        "work_order_id: count\nsteps:\n  - {step_id: count, module_id: line_count, kind: transform, inputs: {source: {asset: headline.txt}}}\n",
    );
    // The gate reserves 500 lines: more than the fixture's top-up left.
    fx.topup_as("acme", 500, "r2", "demo-admin").expect_ok();
    fx.run(&["orchestrator", "--work-order-id", "count"])
        .expect_ok();
    let usage: Vec<Value> = fx
        .of_type("billing.jsonl", "SPEND")
        .into_iter()
        .filter(|s| s["usage_unit"] == "lines")
        .collect();
    assert_eq!(usage.len(), 1, "line_count was charged its usage");
    let report = stage(&fx, &[], 0);
    assert_eq!(report["errors"], Value::Array(vec![]), "{report}");
    assert_eq!(
        names_with(&report, "staged"),
        STAGED,
        "the purchases, and nothing else, are staged"
    );
}

#[test]
fn a_refunded_deliverable_is_not_published() {
    let fx = fixture();
    let refund = fx
        .lines("billing.jsonl")
        .into_iter()
        .find(|r| r["type"] == "REFUND" && r["deliverable_id"] == "stats")
        .expect("the empty-stats purchase was refunded");
    assert_eq!(refund["work_order_id"], "empty-stats");
    let report = stage(&fx, &[], 0);
    let all = strs(&report["artifacts"], "asset_name");
    assert!(!all.contains(&REFUNDED), "{all:?}");
    assert!(publish_records(&fx)
        .iter()
        .all(|r| r["work_order_id"] != "empty-stats"));
}

#[test]
fn outputs_that_differ_from_the_ledger_are_never_packaged() {
    let fx = fixture();
    let run_dir = std::fs::read_dir(fx.path("runtime/runs/globex/memo-pack"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(run_dir.join("shout/outputs/upper.txt"), "TAMPERED\n").unwrap();
    let report = stage(&fx, &[], 1);
    assert_eq!(
        names_with(&report, "error"),
        ["globex__memo-pack__shout__upper.zip"]
    );
    assert_eq!(report["staged"], 3);
    let msg = report["errors"][0]["message"].as_str().unwrap();
    assert_has(msg, "differs from what step 'shout' attempt 1 recorded");
    assert!(!fx.path("dist/globex__memo-pack__shout__upper.zip").exists());
    let sums = String::from_utf8(fx.bytes("dist/SHA256SUMS")).unwrap();
    assert!(!sums.contains("globex"), "{sums}");
    assert!(publish_records(&fx)
        .iter()
        .all(|r| r["tenant_id"] != "globex"));
}

#[test]
fn a_missing_runtime_dir_is_an_error_until_recorded_then_a_skip() {
    let fx = fixture();
    let away = |gone: bool| {
        let (from, to) = if gone {
            ("runtime", "runtime.away")
        } else {
            ("runtime.away", "runtime")
        };
        std::fs::rename(fx.path(from), fx.path(to)).unwrap();
    };
    away(true);
    let report = stage(&fx, &[], 1);
    assert_eq!(names_with(&report, "error").len(), 4);
    let msg = report["errors"][0]["message"].as_str().unwrap();
    assert_has(msg, "not in the runtime directory");
    assert!(publish_records(&fx).is_empty());

    // Once staged, a runner without the runtime dir (a fresh CI machine) skips them.
    away(false);
    publish(&fx, &["--no-publish", "--actor", "demo-admin"]).expect_code(0);
    let evidence = fx.bytes(".billing-state/evidence.jsonl");
    away(true);
    let report = stage(&fx, &[], 0);
    assert_eq!(names_with(&report, "skipped"), STAGED);
    assert!(report["artifacts"][0]["sha256"].is_string());
    assert_eq!(fx.bytes(".billing-state/evidence.jsonl"), evidence);
}

#[test]
fn publishing_needs_a_github_block_and_a_token() {
    let fx = fixture();
    let out = publish(&fx, &["--actor", "demo-admin"]);
    assert!(out
        .expect_code(2)
        .stderr_text()
        .contains("no github: block"));
    let dev_github = [
        "--actor",
        "demo-admin",
        "--runtime-profile",
        "config/runtime_profile.dev_github.yml",
    ];
    // The shipped profile names no repository: GitHub Actions' GITHUB_REPOSITORY does.
    let out = publish(&fx, &dev_github);
    assert!(out
        .expect_code(2)
        .stderr_text()
        .contains("neither is GITHUB_REPOSITORY"));
    let out = publish_env(&fx, &dev_github, &[("GITHUB_REPOSITORY", "acme/platform")]);
    assert!(out
        .expect_code(2)
        .stderr_text()
        .contains("GITHUB_TOKEN is not set"));
    assert!(publish_records(&fx).is_empty());
}

#[test]
fn publishing_to_a_fake_github_uploads_once_and_records_once() {
    let (fake, fx) = with_github();
    let publish_into = |dist: &str| to_github(&fx, &["--dist-dir", dist]);

    // Staging first does not count as published.
    publish(&fx, &["--no-publish", "--actor", "demo-admin"]).expect_code(0);

    let report = publish_into("dist").expect_code(0).json();
    assert_eq!(names_with(&report, "published"), STAGED);
    assert_eq!(report["published"], 4);

    let acme = fake.release("artifacts-acme-weekly-digest-r1").unwrap();
    assert!(!acme.draft, "the release is published after verification");
    let mut assets: Vec<&str> = acme.assets.iter().map(|a| a.name.as_str()).collect();
    assets.sort();
    assert_eq!(assets, ["SHA256SUMS", STAGED[0], STAGED[1], STAGED[2]]);
    let globex = fake.release("artifacts-globex-memo-pack-r1").unwrap();
    assert!(!globex.draft);
    assert_eq!(globex.assets.len(), 2);
    for name in STAGED {
        let tag = if name.starts_with("acme") {
            "artifacts-acme-weekly-digest-r1"
        } else {
            "artifacts-globex-memo-pack-r1"
        };
        assert_eq!(
            fake.asset_data(tag, name).unwrap(),
            fx.bytes(&format!("dist/{name}")),
            "{name}"
        );
    }
    // The release's own SHA256SUMS lists its ZIPs only.
    let sums = String::from_utf8(
        fake.asset_data("artifacts-globex-memo-pack-r1", "SHA256SUMS")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(sums.lines().count(), 1);
    assert!(
        sums.ends_with("  globex__memo-pack__shout__upper.zip\n"),
        "{sums}"
    );

    let published: Vec<_> = publish_records(&fx)
        .into_iter()
        .filter(|r| r["status"] == "published")
        .collect();
    assert_eq!(published.len(), 4);
    for r in &published {
        assert_eq!(r["repository"], "o/r");
        assert!(r["release_tag"].as_str().unwrap().starts_with("artifacts-"));
        assert!(r["url"]
            .as_str()
            .unwrap()
            .ends_with(r["asset_name"].as_str().unwrap()));
    }

    // A second run uploads nothing and appends nothing; the packages are byte-identical.
    let ledger = fx.ledger_bytes(".billing-state");
    fake.clear_calls();
    let report = publish_into("dist2").expect_code(0).json();
    assert_eq!(names_with(&report, "skipped"), STAGED);
    let calls = fake.calls();
    assert!(calls.is_empty(), "a re-run talked to GitHub: {calls:?}");
    let again = fx.ledger_bytes(".billing-state");
    assert!(ledger == again, "a second run changed the ledger");
    for name in STAGED {
        assert_eq!(
            fx.bytes(&format!("dist/{name}")),
            fx.bytes(&format!("dist2/{name}"))
        );
    }
}

/// Point config/runtime_profile.gh.yml at `fake`, naming `repository`.
fn profile_for(fx: &Fx, fake: &FakeGithub, repository: &str) {
    fx.write(
        "config/runtime_profile.gh.yml",
        format!(
            "profile_name: gh\ngithub:\n  repository: {repository}\n  api_url: {}\n",
            fake.uri()
        ),
    );
}

/// A publish record counts as "already published" only for the repository it names. Until
/// 2026-12-04 a profile naming another `github.repository` skipped every artifact published
/// to the old one ("already published", the old release's URL), so none reached the new
/// repository. Now they are published there and recorded under
/// `publish/published/<name>/<sha256>/<repository>` (the plain key holds the first
/// repository's record), and each repository's re-run is a no-op again.
#[test]
fn a_profile_naming_another_repository_publishes_there_too() {
    let (old, fx) = with_github();
    to_github(&fx, &[]).expect_code(0);
    assert_eq!(publish_records(&fx).len(), 4);

    let new = FakeGithub::start_for("o/new");
    profile_for(&fx, &new, "o/new");
    let report = to_github(&fx, &["--dist-dir", "dist-new"])
        .expect_code(0)
        .json();
    assert_eq!(names_with(&report, "published"), STAGED, "{report}");
    for name in STAGED {
        let tag = if name.starts_with("acme") {
            "artifacts-acme-weekly-digest-r1"
        } else {
            "artifacts-globex-memo-pack-r1"
        };
        assert!(!new.release(tag).unwrap().draft, "{tag} is published");
        assert_eq!(
            new.asset_data(tag, name).unwrap(),
            fx.bytes(&format!("dist-new/{name}")),
            "{name}"
        );
    }
    let records = publish_records(&fx);
    assert_eq!(records.len(), 8);
    for r in records.iter().filter(|r| r["repository"] == "o/new") {
        let key = r["idempotency_key"].as_str().unwrap();
        assert_eq!(
            key,
            format!(
                "publish/published/{}/{}/o/new",
                r["asset_name"].as_str().unwrap(),
                r["sha256"].as_str().unwrap()
            )
        );
        assert!(r["url"].as_str().unwrap().contains("o/new"), "{r}");
    }
    assert_eq!(
        records.iter().filter(|r| r["repository"] == "o/r").count(),
        4,
        "the first repository's records are untouched"
    );
    assert_audited(&fx, &records);
    fx.run(&["integrity-validate"]).expect_ok();

    // Each repository's re-run talks to GitHub not at all and appends nothing (the name's
    // case aside: GitHub's repository names ignore it).
    let ledger = fx.ledger_bytes(".billing-state");
    for (fake, repository) in [(&new, "o/new"), (&old, "O/R")] {
        profile_for(&fx, fake, repository);
        fake.clear_calls();
        let report = to_github(&fx, &["--dist-dir", "dist-again"])
            .expect_code(0)
            .json();
        assert_eq!(names_with(&report, "skipped"), STAGED, "{report}");
        assert_has(
            report["artifacts"][0]["detail"].as_str().unwrap(),
            &format!("of {}", repository.to_lowercase()),
        );
        assert!(fake.calls().is_empty(), "{:?}", fake.calls());
    }
    assert!(ledger == fx.ledger_bytes(".billing-state"));

    // Without the outputs (a fresh runner), a third repository cannot get them: skipped, and
    // the report says where they went instead of calling them published there.
    std::fs::rename(fx.path("runtime"), fx.path("runtime.away")).unwrap();
    let third = FakeGithub::start_for("o/third");
    profile_for(&fx, &third, "o/third");
    let report = to_github(&fx, &[]).expect_code(0).json();
    assert_eq!(names_with(&report, "skipped"), STAGED, "{report}");
    assert_has(
        report["artifacts"][0]["detail"].as_str().unwrap(),
        ", not to o/third; it cannot be packaged again to publish it there",
    );
    assert!(third.calls().is_empty(), "{:?}", third.calls());
    assert!(ledger == fx.ledger_bytes(".billing-state"));
}

#[test]
fn an_interrupted_publish_is_recorded_by_the_next_run_without_uploading_again() {
    let (fake, fx) = with_github();
    let publish = || to_github(&fx, &[]);
    let evidence = fx.bytes(".billing-state/evidence.jsonl");
    let audit = fx.bytes(".billing-state/audit.jsonl");
    publish().expect_code(0);
    // As if the process died after publishing the releases and before recording them (the
    // records first, their audit records after them).
    std::fs::write(fx.path(".billing-state/evidence.jsonl"), &evidence).unwrap();
    std::fs::write(fx.path(".billing-state/audit.jsonl"), &audit).unwrap();
    fake.clear_calls();
    let report = publish().expect_code(0).json();
    assert_eq!(report["published"], 4);
    let calls = fake.calls();
    assert!(!calls.iter().any(|c| c.starts_with("upload")), "{calls:?}");
    assert_eq!(publish_records(&fx).len(), 4);
}

/// SPEC §7: a publish killed between its publish records and their audit records (the
/// same group commit, evidence.jsonl written first) leaves records that carry their actor:
/// `integrity-validate` names each unaudited one, and the next writer (here the next
/// publish) adds the audit records and says so. Until 2026-12-03 the gap was permanent and
/// unreported. A publish record written before records carried an actor is legacy: it
/// verifies without an audit record of its own, and nothing repairs it.
#[test]
fn a_publish_killed_before_its_audit_records_is_reported_then_repaired_by_the_next_writer() {
    let fx = fixture();
    let audits = fx.lines("audit.jsonl").len();
    let killed = publish_env(
        &fx,
        &["--no-publish", "--actor", "demo-admin"],
        &[("PLATFORM_FAILPOINT", "ledger_after_write@1")],
    );
    assert!(!killed.status.success(), "{}", killed.text());
    let records = publish_records(&fx);
    assert_eq!(records.len(), 4);
    assert_eq!(fx.lines("audit.jsonl").len(), audits, "no audit record yet");

    let report = fx.run(&["integrity-validate"]);
    let text = report.expect_code(1).text();
    assert_has(&text, "4 problem(s)");
    for r in &records {
        let key = r["idempotency_key"].as_str().unwrap();
        assert_has(&text, &format!("publish {key} has no audit record"));
    }

    // The next publish has nothing to append, and still repairs: opening the ledger does.
    let again = publish(&fx, &["--no-publish", "--actor", "demo-admin"]);
    let stderr = again.expect_code(0).stderr_text();
    for r in &records {
        let key = r["idempotency_key"].as_str().unwrap();
        assert_has(&stderr, &format!("the audit record of publish {key}"));
    }
    assert_eq!(publish_records(&fx).len(), 4, "nothing published twice");
    assert_audited(&fx, &records);
    fx.integrity().unwrap();

    // Legacy: strip the actor from one record and drop its audit record (what a publish by
    // an older build left, audited by a `publish-set/...` record instead).
    let legacy = records[0]["idempotency_key"].as_str().unwrap().to_string();
    crate::support::ledger_fixtures::forge(&fx.state_file("evidence.jsonl"), |recs| {
        for r in recs
            .iter_mut()
            .filter(|r| r["idempotency_key"] == legacy.as_str())
        {
            r.remove("actor");
        }
    });
    crate::support::ledger_fixtures::forge(&fx.state_file("audit.jsonl"), |recs| {
        recs.retain(|a| a["target"] != legacy.as_str());
    });
    fx.integrity().unwrap();
    let ledger = fx.ledger_bytes(".billing-state");
    let stderr = publish(&fx, &["--no-publish", "--actor", "demo-admin"])
        .expect_code(0)
        .stderr_text();
    assert!(!stderr.contains("repaired"), "{stderr}");
    assert!(
        ledger == fx.ledger_bytes(".billing-state"),
        "a legacy record was repaired"
    );
}

/// The same window for a real publish, in the middle of it: the first release is published
/// and recorded, its audit records are not, the second release is untouched. Any writer
/// (here the orchestrator) adds the missing audit records; the next publish finishes.
#[test]
fn a_real_publish_killed_before_its_audit_records_is_repaired_by_any_writer() {
    let (fake, fx) = with_github();
    let killed = to_github_env(&fx, &[], &[("PLATFORM_FAILPOINT", "ledger_after_write@1")]);
    assert!(!killed.status.success(), "{}", killed.text());
    let acme = fake.release("artifacts-acme-weekly-digest-r1").unwrap();
    assert!(!acme.draft, "the first release was published");
    let records = publish_records(&fx);
    assert_eq!(records.len(), 3, "the first release's records");
    assert!(publish_audits(&fx).is_empty());
    let text = fx.run(&["integrity-validate"]).expect_code(1).text();
    assert_has(&text, "3 problem(s)");

    let out = fx.run(&["orchestrator"]).text();
    for r in &records {
        let key = r["idempotency_key"].as_str().unwrap();
        assert_has(&out, &format!("the audit record of publish {key}"));
    }
    assert_audited(&fx, &records);
    fx.integrity().unwrap();

    let report = to_github(&fx, &[]).expect_code(0).json();
    assert_eq!(report["published"], 1, "{report}");
    assert_audited(&fx, &publish_records(&fx));
    fx.integrity().unwrap();
}

/// Change the memo-pack work order (a comment is enough: runs are keyed by the file's digest)
/// and, when asked, its asset, then run the orchestrator again: run 2.
fn second_run(fx: &Fx, new_memo: Option<&str>) {
    let wo = fx.path("tenants/globex/workorders/memo-pack.yml");
    let mut yaml = std::fs::read_to_string(&wo).unwrap();
    yaml.push_str("# changed\n");
    std::fs::write(&wo, yaml).unwrap();
    if let Some(memo) = new_memo {
        std::fs::write(fx.path("tenants/globex/assets/memo.txt"), memo).unwrap();
    }
    let out = fx.run(&["orchestrator"]);
    let stdout = out.stdout_text();
    assert!(
        stdout.contains("globex/memo-pack") && stdout.contains(" 2 start"),
        "{}",
        out.text()
    );
}

#[test]
fn two_runs_of_one_work_order_are_both_packaged_the_newest_under_the_plain_name() {
    let fx = fixture();
    second_run(&fx, Some("a different memo\n"));
    let report = stage(&fx, &[], 0);
    assert_eq!(report["staged"], 5);
    assert_eq!(
        artifacts_of(&report, "memo-pack", "file"),
        [
            (1, "r1/globex__memo-pack__shout__upper.zip"),
            (2, "globex__memo-pack__shout__upper.zip")
        ]
    );
    let sums = String::from_utf8(fx.bytes("dist/SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 5, "{sums}");
    sums_verify(&fx, "dist");
}

#[test]
fn identical_bytes_from_two_runs_are_recorded_once() {
    let fx = fixture();
    second_run(&fx, None);
    let report = stage(&fx, &[], 0);
    assert_eq!(report["staged"], 4);
    assert_eq!(
        artifacts_of(&report, "memo-pack", "status"),
        [(1, "staged"), (2, "skipped")]
    );
    let records: Vec<_> = publish_records(&fx)
        .into_iter()
        .filter(|r| r["work_order_id"] == "memo-pack")
        .collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["run"], 1);
}

#[test]
fn a_failed_upload_leaves_a_draft_records_nothing_for_it_and_the_next_run_finishes() {
    let (fake, fx) = with_github();
    let publish = || to_github(&fx, &[]);
    // The first upload (of the acme release, taken first) fails.
    fake.state().fail_upload = Some((1, 500, false));
    let report = publish().expect_code(1).json();
    assert_eq!(names_with(&report, "error"), STAGED[..3]);
    assert_eq!(names_with(&report, "published"), STAGED[3..]);
    let msg = report["errors"][0]["message"].as_str().unwrap();
    assert_has(msg, "stays a draft");
    assert!(
        fake.release("artifacts-acme-weekly-digest-r1")
            .unwrap()
            .draft
    );
    let recorded: Vec<_> = publish_records(&fx)
        .into_iter()
        .map(|r| r["asset_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(recorded, STAGED[3..]);

    let report = publish().expect_code(0).json();
    assert_eq!(names_with(&report, "published"), STAGED[..3]);
    assert_eq!(names_with(&report, "skipped"), STAGED[3..]);
    assert!(
        !fake
            .release("artifacts-acme-weekly-digest-r1")
            .unwrap()
            .draft
    );
    assert_eq!(publish_records(&fx).len(), 4);
}

/// How many times the fake was asked for the content of the asset `name` (any release).
fn downloads_of(fake: &FakeGithub, name: &str) -> usize {
    let call = format!("download {name}");
    fake.calls().iter().filter(|c| **c == call).count()
}

#[test]
fn without_digests_a_same_size_corrupted_upload_is_caught_and_the_release_stays_a_draft() {
    // Older GitHub Enterprise Server reports no digest: the size matches, the bytes do not.
    let (fake, fx) = with_github();
    fake.state().omit_digest = true;
    let corrupted = STAGED[1];
    fake.corrupt_next_upload(corrupted);
    let report = to_github(&fx, &["--dist-dir", "dist"])
        .expect_code(1)
        .json();
    assert_eq!(names_with(&report, "error"), STAGED[..3]);
    assert_eq!(names_with(&report, "published"), STAGED[3..]);
    let msg = report["errors"][0]["message"].as_str().unwrap();
    assert_has(msg, corrupted);
    assert_has(msg, "content downloaded from the release");
    assert_has(msg, "stays a draft and nothing was published");
    assert_has(msg, "re-run publish");
    let acme = "artifacts-acme-weekly-digest-r1";
    assert!(fake.release(acme).unwrap().draft, "never published");
    let local = fx.bytes(&format!("dist/{corrupted}"));
    let remote = fake.asset_data(acme, corrupted).unwrap();
    assert_eq!(remote.len(), local.len());
    assert_ne!(remote, local, "the fake corrupted the upload");
    assert_eq!(downloads_of(&fake, corrupted), 1);
    let recorded: Vec<_> = publish_records(&fx)
        .into_iter()
        .map(|r| r["asset_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        recorded,
        STAGED[3..],
        "nothing claims the draft was published"
    );

    // The re-run the message asks for replaces the bad asset, verifies it and publishes.
    let report = to_github(&fx, &["--dist-dir", "dist"])
        .expect_code(0)
        .json();
    assert_eq!(names_with(&report, "published"), STAGED[..3]);
    assert!(!fake.release(acme).unwrap().draft);
    assert_eq!(fake.asset_data(acme, corrupted).unwrap(), local);
    assert_eq!(publish_records(&fx).len(), 4);
}

#[test]
fn without_digests_each_upload_is_downloaded_once_to_verify_it_then_published() {
    let (fake, fx) = with_github();
    fake.state().omit_digest = true;
    let report = to_github(&fx, &["--dist-dir", "dist"])
        .expect_code(0)
        .json();
    assert_eq!(names_with(&report, "published"), STAGED);
    for name in STAGED {
        assert_eq!(downloads_of(&fake, name), 1, "{name}: {:?}", fake.calls());
    }
    // Each of the two releases has its own SHA256SUMS.
    assert_eq!(downloads_of(&fake, "SHA256SUMS"), 2);
    // Each release's assets are downloaded before that release is published (acme's first).
    let calls = fake.calls();
    let between: Vec<&[String]> = calls.split(|c| c == "publish release").collect();
    assert_eq!(between.len(), 3, "{calls:?}");
    for (i, names) in [&STAGED[..3], &STAGED[3..], &[]].iter().enumerate() {
        let got: Vec<&str> = between[i]
            .iter()
            .filter_map(|c| c.strip_prefix("download "))
            .filter(|n| *n != "SHA256SUMS")
            .collect();
        assert_eq!(got, *names, "{calls:?}");
    }
    for tag in [
        "artifacts-acme-weekly-digest-r1",
        "artifacts-globex-memo-pack-r1",
    ] {
        assert!(!fake.release(tag).unwrap().draft, "{tag}");
    }
    let published = publish_records(&fx)
        .into_iter()
        .filter(|r| r["status"] == "published")
        .count();
    assert_eq!(published, 4);
}

/// Until 2026-12-04 a `publish` killed while writing a ZIP (or SHA256SUMS) left the partial
/// file (`.package-*.tmp`) in the dist directory for good. Its next run removes them, in
/// dist and its `r<run>` folders, and says so.
#[test]
fn publish_removes_the_partial_zips_a_killed_publish_left() {
    let fx = fixture();
    fx.write("dist/.package-Ab12Cd.tmp", b"PK partial");
    fx.write("dist/r2/.package-Ef34Gh.tmp", b"PK partial");
    fx.write("dist/.SHA256SUMS-Ij56Kl", b"partial");
    fx.write("dist/.package-keep", b"not a temp ZIP");
    let out = publish(
        &fx,
        &[
            "--no-publish",
            "--actor",
            "demo-admin",
            "--dist-dir",
            "dist",
        ],
    );
    out.expect_code(0);
    let stderr = out.stderr_text();
    assert_has(
        &stderr,
        "removed what an interrupted `platform publish` left in",
    );
    assert_has(&stderr, ".SHA256SUMS-Ij56Kl, .package-Ab12Cd.tmp");
    assert_has(&stderr, ".package-Ef34Gh.tmp");
    for gone in [
        "dist/.package-Ab12Cd.tmp",
        "dist/r2/.package-Ef34Gh.tmp",
        "dist/.SHA256SUMS-Ij56Kl",
    ] {
        assert!(!fx.path(gone).exists(), "{gone}");
    }
    assert!(fx.path("dist/.package-keep").exists());
}

/// A deliverable priced 0 is purchased all the same (the work order lists it) but charged no
/// SPEND (SPEC §4: a SPEND is negative): it is found through the work-order file the run ran
/// (its SHA-256 in `run_started`) and published when its step completed, never when it
/// failed. Its record's `spend_key` is the key its SPEND would have had. Until 2026-12-04
/// publish found purchases through their SPENDs only: "nothing to publish".
#[test]
fn a_purchased_deliverable_priced_0_is_published_when_its_step_completed() {
    let fx = Fx::new();
    for (module, price) in [("gen", "data: 3"), ("slow", "result: 1")] {
        let rel = format!("modules/{module}/module.yml");
        let free = price.replace(|c: char| c.is_ascii_digit(), "0");
        fx.write(&rel, fx.read_text(&rel).replace(price, &free));
    }
    fx.workorder(
        "w",
        "work_order_id: w\nsteps:\n  - {step_id: a, module_id: gen, kind: transform, inputs: {text: a b}, deliverables: [data]}\n  - {step_id: b, module_id: slow, kind: transform, inputs: {text: x, delay_ms: 10, fail: true}, deliverables: [result]}\n",
    );
    fx.topup(10, "r1");
    // PARTIAL: a completed, b failed (and its run charge refunded).
    fx.run(&["orchestrator"]).expect_code(0);
    let spends = fx.of_type("billing.jsonl", "SPEND");
    assert!(
        spends.iter().all(|s| s["deliverable_id"] == "__run__"),
        "the deliverables are free: {spends:?}"
    );
    let staging = ["publish", "--no-publish", "--actor", "tester", "--json"];
    let report = fx.run(&staging).expect_code(0).json();
    assert_eq!(
        names_with(&report, "staged"),
        ["t1__w__a__data.zip"],
        "b failed: its free deliverable is not published: {report}"
    );
    assert!(fx.path("dist/t1__w__a__data.zip").is_file());
    let records = publish_records(&fx);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["spend_key"], "spend/t1/w/r1/a/a1/data");
    assert_eq!(records[0]["attempt"], 1);
    // Once staged, it is skipped: nothing appended.
    let before = fx.ledger_bytes(".billing-state");
    let report = fx.run(&staging).expect_code(0).json();
    assert_eq!(names_with(&report, "skipped"), ["t1__w__a__data.zip"]);
    assert!(fx.ledger_bytes(".billing-state") == before);
    // `--since` places it at its step_started.
    let started = fx
        .of_type("evidence.jsonl", "step_started")
        .into_iter()
        .find(|r| r["step_id"] == "a")
        .expect("step a started");
    let at = started["recorded_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let since = |t: &str| {
        let mut args = staging.to_vec();
        args.extend(["--dist-dir", "dist2", "--since", t]);
        fx.run(&args).expect_code(0).json()["artifacts"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(since(&at), 1, "the bound is inclusive");
    assert_eq!(since("2999-01-01T00:00:00Z"), 0);
    fx.integrity().unwrap();
}
