//! `platform publish` end to end on a copy of the example repository, through the real binary: staging, checksums, idempotent re-runs, `--since`, IAM, refunds, tampering, and a fake GitHub.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::fake_github;

use fake_github::{FakeGithub, TOKEN};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
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

fn copy_dir(src: &Path, dst: &Path) {
    for e in walkdir::WalkDir::new(src) {
        let e = e.unwrap();
        let to = dst.join(e.path().strip_prefix(src).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

fn platform(dir: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("platform").unwrap();
    c.current_dir(dir)
        .env_remove("GITHUB_ACTOR")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_STEP_SUMMARY");
    c
}

/// The example repository after top-ups and one orchestrator pass (built once, copied per test:
/// the orchestrator runs Python modules and takes a while).
fn template() -> &'static Path {
    static T: OnceLock<tempfile::TempDir> = OnceLock::new();
    T.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for d in ["modules", "tenants", "config"] {
            copy_dir(&root.join(d), &t.path().join(d));
        }
        crate::support::orch::use_demo_iam(t.path());
        std::fs::write(
            t.path().join("tenants/globex/workorders/empty-stats.yml"),
            REFUNDED_WO,
        )
        .unwrap();
        for tenant in ["acme", "globex"] {
            let out = platform(t.path())
                .args([
                    "admin-topup",
                    "--tenant-id",
                    tenant,
                    "--amount-credits",
                    "100",
                ])
                .args(["--topup-method-id", "manual", "--reference", "r1"])
                .args(["--actor", "demo-admin"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Exit 1: the empty-stats run fails on purpose.
        let out = platform(t.path()).arg("orchestrator").output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        t
    })
    .path()
}

struct Fx {
    dir: tempfile::TempDir,
}

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template(), dir.path());
        Fx { dir }
    }
    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }
    fn publish(&self, extra: &[&str]) -> Output {
        self.publish_with(extra, |_| {})
    }
    fn publish_with(&self, extra: &[&str], f: impl FnOnce(&mut assert_cmd::Command)) -> Output {
        let mut c = platform(self.root());
        c.args(["publish", "--billing-state-dir", ".billing-state"])
            .args(["--runtime-dir", "runtime"])
            .args(extra);
        f(&mut c);
        c.output().unwrap()
    }
    fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_default()
    }
    fn lines(&self, file: &str) -> Vec<Map<String, Value>> {
        String::from_utf8(self.read(&format!(".billing-state/{file}")))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
    fn publish_records(&self) -> Vec<Map<String, Value>> {
        self.lines("evidence.jsonl")
            .into_iter()
            .filter(|r| r["type"] == "publish")
            .collect()
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
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
    let fx = Fx::new();
    let summary = fx.path("step-summary.md");
    let out = fx.publish_with(
        &[
            "--no-publish",
            "--actor",
            "demo-admin",
            "--dist-dir",
            "dist",
            "--json",
        ],
        |c| {
            c.env("GITHUB_STEP_SUMMARY", &summary);
        },
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
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
    let sums = String::from_utf8(fx.read("dist/SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 4, "{sums}");
    assert!(sums.ends_with('\n') && !sums.contains('\r'));
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(fx.path("dist"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));

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

    // One staged record per artifact, and one audit record of the allowed publish.
    let records = fx.publish_records();
    assert_eq!(records.len(), 4);
    for r in &records {
        assert_eq!(r["status"], "staged");
        assert_eq!(r["repository"], Value::Null);
        assert_eq!(r["url"], Value::Null);
        assert!(r["spend_key"].as_str().unwrap().starts_with("spend/"));
    }
    let audits: Vec<_> = fx
        .lines("audit.jsonl")
        .into_iter()
        .filter(|a| a["action"] == "artifacts.publish")
        .collect();
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0]["decision"], "allowed");
    assert_eq!(audits[0]["actor"], "demo-admin");

    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("### platform publish"), "{md}");
    assert!(md.contains("globex__memo-pack__shout__upper.zip"), "{md}");

    // Second run over the same ledger: every file is byte-identical, packages included.
    let before: Vec<Vec<u8>> = ["billing.jsonl", "evidence.jsonl", "audit.jsonl"]
        .iter()
        .map(|f| fx.read(&format!(".billing-state/{f}")))
        .collect();
    let zips: Vec<Vec<u8>> = STAGED
        .iter()
        .map(|n| fx.read(&format!("dist/{n}")))
        .collect();
    let out = fx.publish(&[
        "--no-publish",
        "--actor",
        "demo-admin",
        "--dist-dir",
        "dist2",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(names_with(&report, "skipped"), STAGED);
    assert_eq!(report["staged"], 0);
    let after: Vec<Vec<u8>> = ["billing.jsonl", "evidence.jsonl", "audit.jsonl"]
        .iter()
        .map(|f| fx.read(&format!(".billing-state/{f}")))
        .collect();
    assert!(before == after, "a second run changed the ledger");
    let again: Vec<Vec<u8>> = STAGED
        .iter()
        .map(|n| fx.read(&format!("dist2/{n}")))
        .collect();
    assert!(zips == again, "packages differ between runs");
    assert_eq!(fx.read("dist/SHA256SUMS"), fx.read("dist2/SHA256SUMS"));

    let ok = platform(fx.root())
        .arg("integrity-validate")
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", text(&ok));
}

#[test]
fn default_dist_dir_is_dist_under_the_repo_and_text_output_is_a_table() {
    let fx = Fx::new();
    let out = fx.publish(&["--no-publish", "--actor", "demo-admin"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("artifact"), "{stdout}");
    for name in STAGED {
        assert!(stdout.contains(name), "{stdout}");
        assert!(fx.path(&format!("dist/{name}")).is_file());
    }
    assert!(stdout.contains("4 staged"), "{stdout}");
}

#[test]
fn since_selects_by_spend_time() {
    let fx = Fx::new();
    let evidence = fx.read(".billing-state/evidence.jsonl");
    let out = fx.publish(&[
        "--no-publish",
        "--actor",
        "demo-admin",
        "--since",
        "2999-01-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["artifacts"], Value::Array(vec![]));
    assert_eq!(report["staged"], 0);
    assert_eq!(fx.read(".billing-state/evidence.jsonl"), evidence);
    assert_eq!(fx.read("dist/SHA256SUMS"), b"");

    let out = fx.publish(&[
        "--no-publish",
        "--actor",
        "demo-admin",
        "--since",
        "2000-01-01T00:00:00+02:00",
        "--json",
    ]);
    assert_eq!(json(&out)["staged"], 4, "{}", text(&out));

    let out = fx.publish(&[
        "--no-publish",
        "--actor",
        "demo-admin",
        "--since",
        "yesterday",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("RFC 3339") && stderr.contains("2025-01-31T00:00:00Z"),
        "{stderr}"
    );
}

#[test]
fn a_denied_actor_exits_3_and_is_audited_even_with_no_publish() {
    let fx = Fx::new();
    let evidence = fx.read(".billing-state/evidence.jsonl");
    let out = fx.publish(&["--no-publish", "--actor", "mallory"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    // The actor comes from GITHUB_ACTOR when --actor is absent.
    let out = fx.publish_with(&["--no-publish"], |c| {
        c.env("GITHUB_ACTOR", "octocat");
    });
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let denials: Vec<_> = fx
        .lines("audit.jsonl")
        .into_iter()
        .filter(|a| a["action"] == "artifacts.publish")
        .collect();
    assert_eq!(denials.len(), 2);
    assert_eq!(denials[0]["decision"], "denied");
    assert_eq!(denials[0]["actor"], "mallory");
    assert_eq!(denials[1]["actor"], "octocat");
    assert_ne!(denials[0]["idempotency_key"], denials[1]["idempotency_key"]);
    assert_eq!(fx.read(".billing-state/evidence.jsonl"), evidence);
    assert!(!fx.path("dist").exists());
}

#[test]
fn a_refunded_deliverable_is_not_published() {
    let fx = Fx::new();
    let refund = fx
        .lines("billing.jsonl")
        .into_iter()
        .find(|r| r["type"] == "REFUND" && r["deliverable_id"] == "stats")
        .expect("the empty-stats purchase was refunded");
    assert_eq!(refund["work_order_id"], "empty-stats");
    let out = fx.publish(&["--no-publish", "--actor", "demo-admin", "--json"]);
    let report = json(&out);
    let all: Vec<&str> = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["asset_name"].as_str().unwrap())
        .collect();
    assert!(!all.contains(&REFUNDED), "{all:?}");
    assert!(fx
        .publish_records()
        .iter()
        .all(|r| r["work_order_id"] != "empty-stats"));
}

#[test]
fn outputs_that_differ_from_the_ledger_are_never_packaged() {
    let fx = Fx::new();
    let run_dir = std::fs::read_dir(fx.path("runtime/runs/globex/memo-pack"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(run_dir.join("shout/outputs/upper.txt"), "TAMPERED\n").unwrap();
    let out = fx.publish(&["--no-publish", "--actor", "demo-admin", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = json(&out);
    assert_eq!(
        names_with(&report, "error"),
        ["globex__memo-pack__shout__upper.zip"]
    );
    assert_eq!(report["staged"], 3);
    let msg = report["errors"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("differs from what step 'shout' attempt 1 recorded"),
        "{msg}"
    );
    assert!(!fx.path("dist/globex__memo-pack__shout__upper.zip").exists());
    let sums = String::from_utf8(fx.read("dist/SHA256SUMS")).unwrap();
    assert!(!sums.contains("globex"), "{sums}");
    assert!(fx
        .publish_records()
        .iter()
        .all(|r| r["tenant_id"] != "globex"));
}

#[test]
fn a_missing_runtime_dir_is_an_error_until_recorded_then_a_skip() {
    let fx = Fx::new();
    let away = |gone: bool| {
        let (from, to) = if gone {
            ("runtime", "runtime.away")
        } else {
            ("runtime.away", "runtime")
        };
        std::fs::rename(fx.path(from), fx.path(to)).unwrap();
    };
    away(true);
    let out = fx.publish(&["--no-publish", "--actor", "demo-admin", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = json(&out);
    assert_eq!(names_with(&report, "error").len(), 4);
    let msg = report["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("not in the runtime directory"), "{msg}");
    assert!(fx.publish_records().is_empty());

    // Once staged, a runner without the runtime dir (a fresh CI machine) skips them.
    away(false);
    let out = fx.publish(&["--no-publish", "--actor", "demo-admin"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let evidence = fx.read(".billing-state/evidence.jsonl");
    away(true);
    let out = fx.publish(&["--no-publish", "--actor", "demo-admin", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(names_with(&report, "skipped"), STAGED);
    assert!(report["artifacts"][0]["sha256"].is_string());
    assert_eq!(fx.read(".billing-state/evidence.jsonl"), evidence);
}

#[test]
fn publishing_needs_a_github_block_and_a_token() {
    let fx = Fx::new();
    let out = fx.publish(&["--actor", "demo-admin"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no github: block"));
    let out = fx.publish(&[
        "--actor",
        "demo-admin",
        "--runtime-profile",
        "config/runtime_profile.dev_github.yml",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GITHUB_TOKEN is not set"));
    assert!(fx.publish_records().is_empty());
}

#[test]
fn publishing_to_a_fake_github_uploads_once_and_records_once() {
    let fake = FakeGithub::start_for("o/r");
    let fx = Fx::new();
    std::fs::write(
        fx.path("config/runtime_profile.gh.yml"),
        format!(
            "profile_name: gh\ngithub:\n  repository: o/r\n  api_url: {}\n",
            fake.uri()
        ),
    )
    .unwrap();
    let publish = |dist: &str| {
        fx.publish_with(
            &[
                "--actor",
                "demo-admin",
                "--runtime-profile",
                "config/runtime_profile.gh.yml",
                "--dist-dir",
                dist,
                "--json",
            ],
            |c| {
                c.env("GITHUB_TOKEN", TOKEN);
            },
        )
    };

    // Staging first does not count as published.
    let out = fx.publish(&["--no-publish", "--actor", "demo-admin"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = publish("dist");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
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
            fx.read(&format!("dist/{name}")),
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

    let published: Vec<_> = fx
        .publish_records()
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
    let ledger: Vec<Vec<u8>> = ["evidence.jsonl", "audit.jsonl"]
        .iter()
        .map(|f| fx.read(&format!(".billing-state/{f}")))
        .collect();
    fake.clear_calls();
    let out = publish("dist2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(names_with(&report, "skipped"), STAGED);
    let calls = fake.calls();
    assert!(calls.is_empty(), "a re-run talked to GitHub: {calls:?}");
    let again: Vec<Vec<u8>> = ["evidence.jsonl", "audit.jsonl"]
        .iter()
        .map(|f| fx.read(&format!(".billing-state/{f}")))
        .collect();
    assert!(ledger == again, "a second run changed the ledger");
    for name in STAGED {
        assert_eq!(
            fx.read(&format!("dist/{name}")),
            fx.read(&format!("dist2/{name}"))
        );
    }
}

#[test]
fn an_interrupted_publish_is_recorded_by_the_next_run_without_uploading_again() {
    let fake = FakeGithub::start_for("o/r");
    let fx = Fx::new();
    std::fs::write(
        fx.path("config/runtime_profile.gh.yml"),
        format!("github: {{repository: o/r, api_url: \"{}\"}}\n", fake.uri()),
    )
    .unwrap();
    let publish = || {
        fx.publish_with(
            &[
                "--actor",
                "demo-admin",
                "--runtime-profile",
                "config/runtime_profile.gh.yml",
                "--json",
            ],
            |c| {
                c.env("GITHUB_TOKEN", TOKEN);
            },
        )
    };
    let evidence = fx.read(".billing-state/evidence.jsonl");
    let out = publish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // As if the process died after publishing the releases and before recording them.
    std::fs::write(fx.path(".billing-state/evidence.jsonl"), &evidence).unwrap();
    fake.clear_calls();
    let out = publish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["published"], 4);
    let calls = fake.calls();
    assert!(!calls.iter().any(|c| c.starts_with("upload")), "{calls:?}");
    assert_eq!(fx.publish_records().len(), 4);
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
    let out = platform(fx.root()).arg("orchestrator").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("globex/memo-pack") && stdout.contains(" 2 start"),
        "{}",
        text(&out)
    );
}

#[test]
fn two_runs_of_one_work_order_are_both_packaged_the_newest_under_the_plain_name() {
    let fx = Fx::new();
    second_run(&fx, Some("a different memo\n"));
    let out = fx.publish(&["--no-publish", "--actor", "demo-admin", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["staged"], 5);
    let files: Vec<(u64, &str)> = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["work_order_id"] == "memo-pack")
        .map(|a| (a["run"].as_u64().unwrap(), a["file"].as_str().unwrap()))
        .collect();
    assert_eq!(
        files,
        [
            (1, "r1/globex__memo-pack__shout__upper.zip"),
            (2, "globex__memo-pack__shout__upper.zip")
        ]
    );
    let sums = String::from_utf8(fx.read("dist/SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 5, "{sums}");
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(fx.path("dist"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
}

#[test]
fn identical_bytes_from_two_runs_are_recorded_once() {
    let fx = Fx::new();
    second_run(&fx, None);
    let out = fx.publish(&["--no-publish", "--actor", "demo-admin", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["staged"], 4);
    let memo: Vec<(u64, &str)> = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["work_order_id"] == "memo-pack")
        .map(|a| (a["run"].as_u64().unwrap(), a["status"].as_str().unwrap()))
        .collect();
    assert_eq!(memo, [(1, "staged"), (2, "skipped")]);
    let records: Vec<_> = fx
        .publish_records()
        .into_iter()
        .filter(|r| r["work_order_id"] == "memo-pack")
        .collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["run"], 1);
}

#[test]
fn a_failed_upload_leaves_a_draft_records_nothing_for_it_and_the_next_run_finishes() {
    let fake = FakeGithub::start_for("o/r");
    let fx = Fx::new();
    std::fs::write(
        fx.path("config/runtime_profile.gh.yml"),
        format!("github: {{repository: o/r, api_url: \"{}\"}}\n", fake.uri()),
    )
    .unwrap();
    let publish = || {
        fx.publish_with(
            &[
                "--actor",
                "demo-admin",
                "--runtime-profile",
                "config/runtime_profile.gh.yml",
                "--json",
            ],
            |c| {
                c.env("GITHUB_TOKEN", TOKEN);
            },
        )
    };
    // The first upload (of the acme release, taken first) fails.
    fake.state().fail_upload = Some((1, 500, false));
    let out = publish();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = json(&out);
    assert_eq!(names_with(&report, "error"), STAGED[..3]);
    assert_eq!(names_with(&report, "published"), STAGED[3..]);
    let msg = report["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("stays a draft"), "{msg}");
    assert!(
        fake.release("artifacts-acme-weekly-digest-r1")
            .unwrap()
            .draft
    );
    let recorded: Vec<_> = fx
        .publish_records()
        .into_iter()
        .map(|r| r["asset_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(recorded, STAGED[3..]);

    let out = publish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(names_with(&report, "published"), STAGED[..3]);
    assert_eq!(names_with(&report, "skipped"), STAGED[3..]);
    assert!(
        !fake
            .release("artifacts-acme-weekly-digest-r1")
            .unwrap()
            .draft
    );
    assert_eq!(fx.publish_records().len(), 4);
}
