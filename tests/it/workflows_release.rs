//! The release path and the dependency watch: release.yml builds every target from a tag and attests what it publishes, notes come from a dated changelog section, actions stay on their Node 24 releases, Dependabot and cargo-deny are wired in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::workflows::{jobs, load, name, root, run_text, steps, workflow_files};
use serde_json::Value;
use std::process::Command;

/// What release.yml must build: static Linux (musl) for both architectures, both macOS.
const TARGETS: [&str; 4] = [
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
    "aarch64-apple-darwin",
    "x86_64-apple-darwin",
];

fn release() -> Value {
    load(&root().join(".github/workflows/release.yml"))
}

fn job<'a>(wf: &'a Value, id: &str) -> &'a Value {
    jobs(wf)
        .into_iter()
        .find(|(k, _)| k == id)
        .unwrap_or_else(|| panic!("release.yml has no job {id}"))
        .1
}

/// Index of the first step of `job` whose `uses:` or `run:` contains `needle`.
fn step_index(job: &Value, needle: &str) -> usize {
    steps(job)
        .iter()
        .position(|s| {
            s.get("uses")
                .and_then(Value::as_str)
                .unwrap_or("")
                .contains(needle)
                || run_text(s).contains(needle)
        })
        .unwrap_or_else(|| panic!("no step with `{needle}`"))
}

/// A tag push, and nothing else, builds the four targets; the release job checksums them,
/// attests the checksummed files, and publishes only after the uploaded assets verify.
#[test]
fn release_builds_every_target_from_a_tag_and_attests_what_it_publishes() {
    let wf = release();
    let on = wf.get("on").expect("release.yml has no `on`");
    assert_eq!(on.as_object().unwrap().keys().collect::<Vec<_>>(), ["push"]);
    assert!(on.pointer("/push/tags").is_some() && on.pointer("/push/branches").is_none());

    let build = job(&wf, "build");
    let include = build
        .pointer("/strategy/matrix/include")
        .unwrap()
        .as_array()
        .unwrap();
    let mut targets: Vec<&str> = include
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    targets.sort();
    let mut want = TARGETS.to_vec();
    want.sort();
    assert_eq!(targets, want);
    assert!(
        build.get("permissions").is_none(),
        "build jobs keep the read-only default"
    );

    let rel = job(&wf, "release");
    assert_eq!(rel["needs"], "build");
    for (perm, level) in [
        ("contents", "write"),
        ("id-token", "write"),
        ("attestations", "write"),
    ] {
        assert_eq!(rel["permissions"][perm], level, "release job: {perm}");
    }
    let sums = step_index(rel, "sha256sum -- platform-*.tar.gz > SHA256SUMS");
    let attest = step_index(rel, "actions/attest-build-provenance@");
    let publish = step_index(rel, "gh release create");
    assert!(
        sums < attest && attest < publish,
        "checksum, then attest, then release"
    );
    assert_eq!(
        steps(rel)[attest]["with"]["subject-checksums"],
        "dist/SHA256SUMS"
    );
    let script = run_text(steps(rel)[publish]);
    let draft = script
        .find("--draft ")
        .expect("the release starts as a draft");
    let verify = script
        .find("sha256sum -c SHA256SUMS")
        .expect("assets verified");
    let live = script.find("--draft=false").expect("then published");
    assert!(draft < verify && verify < live, "{script}");
    let counted = format!("-ne {}", TARGETS.len());
    assert!(
        run_text(steps(rel)[sums]).contains(&counted),
        "the release counts every archive"
    );

    let text = std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap();
    assert!(
        !text.contains("actions/cache@"),
        "release builds never restore a cache"
    );
}

/// Every target release.yml builds is one cargo-deny checks the tree for.
#[test]
fn cargo_deny_checks_the_release_targets_and_explains_each_ignore() {
    let deny = std::fs::read_to_string(root().join("deny.toml")).unwrap();
    for target in TARGETS {
        assert!(
            deny.contains(&format!("\"{target}\"")),
            "deny.toml [graph] lacks {target}"
        );
    }
    let ignores: Vec<&str> = deny
        .lines()
        .filter(|l| l.contains("id = \"RUSTSEC-"))
        .collect();
    assert!(
        !ignores.is_empty(),
        "the lettre advisory is recorded as ignored"
    );
    for line in ignores {
        assert!(
            line.contains("reason = \""),
            "an ignore without a reason: {line}"
        );
    }

    let ci = load(&root().join(".github/workflows/ci.yml"));
    let runs_deny = jobs(&ci).iter().any(|(_, j)| {
        steps(j)
            .iter()
            .any(|s| run_text(s).contains("cargo-deny\" --locked check"))
    });
    assert!(runs_deny, "ci.yml runs cargo deny check");
    assert!(
        ci.pointer("/on/schedule").is_some(),
        "advisories appear without a push: weekly run"
    );

    let bot = load(&root().join(".github/dependabot.yml"));
    let mut ecosystems: Vec<&str> = bot["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["package-ecosystem"].as_str().unwrap())
        .collect();
    ecosystems.sort();
    assert_eq!(ecosystems, ["cargo", "github-actions"]);
}

/// The first major of each action that runs on Node 24 (read from each one's action.yml and
/// release notes; docs/operations.md lists the pins). GitHub's runners drop Node 20.
fn node24_major(action: &str) -> Option<u32> {
    Some(match action {
        "actions/checkout" => 5,
        "actions/upload-artifact" => 6,
        "actions/download-artifact" => 7,
        "actions/cache" => 5,
        "actions/setup-python" => 6,
        "actions/attest-build-provenance" => 4,
        _ => return None,
    })
}

#[test]
fn every_action_is_pinned_to_a_node_24_release() {
    let mut seen = 0;
    for path in workflow_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let Some((_, reference)) = line.split_once("uses: ") else {
                continue;
            };
            if reference.starts_with("./") {
                continue;
            }
            let action = reference.split('@').next().unwrap();
            let version = reference.split("# v").nth(1).unwrap_or("");
            let major: u32 = version.split('.').next().unwrap_or("").parse().unwrap_or(0);
            let min = node24_major(action).unwrap_or_else(|| {
                panic!(
                    "{}: {action}: read its action.yml and add its first Node 24 major here",
                    name(&path)
                )
            });
            assert!(
                major >= min,
                "{}: {action} v{version} runs on Node 20; use v{min} or later",
                name(&path)
            );
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} pinned actions found");
}

fn notes(changelog: &str, version: &str) -> std::process::Output {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("CHANGELOG.md");
    std::fs::write(&file, changelog).unwrap();
    Command::new(root().join("scripts/release-notes.sh"))
        .arg(version)
        .arg(&file)
        .output()
        .unwrap()
}

/// The notes are the body of the version's dated section; an undated or missing section
/// stops the release; the changelog has a section for the version Cargo.toml carries.
#[test]
fn release_notes_come_from_a_dated_changelog_section() {
    let log = "# Changelog\n\n## [0.3.0] - unreleased\n\n- next\n\n\
               ## [0.2.0] - 2026-09-01\n\n### Ledger\n- faster\n\n## [0.1.0] - 2026-08-01\n\n- first\n";
    let out = notes(log, "0.2.0");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "\n### Ledger\n- faster\n\n"
    );

    let undated = notes(log, "0.3.0");
    assert_eq!(undated.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&undated.stderr).contains("dated \"unreleased\""));
    let missing = notes(log, "0.2");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no section"));

    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap();
    let changelog = std::fs::read_to_string(root().join("CHANGELOG.md")).unwrap();
    assert!(
        changelog.contains(&format!("\n## [{version}] - ")),
        "CHANGELOG.md lacks {version}"
    );
}
