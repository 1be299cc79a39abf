//! `platform state pull|push` end to end: the real binary against a fake GitHub on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::fake_github;

use assert_cmd::Command;
use fake_github::{FakeGithub, TOKEN};
use std::path::{Path, PathBuf};

const STATE_TAG: &str = "billing-state-v1";

struct World {
    fake: FakeGithub,
    root: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let fake = FakeGithub::start_for("acme/state");
        let root = tempfile::tempdir().unwrap();
        let profile = format!(
            "profile_name: dev_github\nbilling_state_dir: .billing-state\ngithub:\n  repository: acme/state\n  api_url: {}\n",
            fake.uri()
        );
        std::fs::write(root.path().join("profile.yml"), profile).unwrap();
        World { fake, root }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// `platform --repo <root> state <verb> --runtime-profile <root>/profile.yml --billing-state-dir <dir>`
    fn state(&self, verb: &str, dir: &str) -> assert_cmd::assert::Assert {
        self.state_with(verb, dir, &[])
    }

    fn state_with(&self, verb: &str, dir: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
        Command::cargo_bin("platform")
            .unwrap()
            .env("GITHUB_TOKEN", TOKEN)
            .arg("--repo")
            .arg(self.root.path())
            .args(["state", verb, "--runtime-profile"])
            .arg(self.root.path().join("profile.yml"))
            .arg("--billing-state-dir")
            .arg(self.dir(dir))
            .args(extra)
            .assert()
    }

    fn remote(&self, name: &str) -> Option<Vec<u8>> {
        self.fake.asset_data(STATE_TAG, name)
    }
}

fn append(dir: &Path, name: &str, line: &str) {
    use std::io::Write;
    std::fs::create_dir_all(dir).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn writes(calls: &[String]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| {
            c.starts_with("upload")
                || c.starts_with("delete")
                || c.starts_with("create")
                || c.starts_with("publish")
        })
        .cloned()
        .collect()
}

#[test]
fn pull_then_push_round_trip() {
    let w = World::new();

    // Nothing remote yet: start empty, and say so.
    let out = w.state("pull", "a").success();
    let stdout = text(&out.get_output().stdout);
    assert!(stdout.contains("starting with an empty ledger"), "{stdout}");
    let pulled: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.dir("a/.state-pulled.json")).unwrap()).unwrap();
    assert_eq!(pulled["tag"], STATE_TAG);
    assert_eq!(pulled["release_id"], serde_json::Value::Null);
    assert_eq!(pulled["heads"]["billing.jsonl"]["state"], "absent");

    // First push creates the draft state release and uploads what exists.
    append(&w.dir("a"), "billing.jsonl", r#"{"seq":1}"#);
    append(&w.dir("a"), "evidence.jsonl", r#"{"seq":1,"e":1}"#);
    let out = w.state("push", "a").success();
    let stdout = text(&out.get_output().stdout);
    assert!(stdout.contains("created as a draft"), "{stdout}");
    let release = w.fake.release(STATE_TAG).unwrap();
    assert!(release.draft, "the state release stays a draft");
    assert_eq!(w.remote("billing.jsonl").unwrap(), b"{\"seq\":1}\n");
    assert!(w.remote("audit.jsonl").is_none());

    // Another machine pulls, appends, pushes (replacing the asset; still a draft).
    w.state("pull", "b").success();
    assert_eq!(
        std::fs::read(w.dir("b/billing.jsonl")).unwrap(),
        b"{\"seq\":1}\n"
    );
    assert_eq!(
        std::fs::read(w.dir("b/evidence.jsonl")).unwrap(),
        std::fs::read(w.dir("a/evidence.jsonl")).unwrap()
    );
    append(&w.dir("b"), "billing.jsonl", r#"{"seq":2}"#);
    append(&w.dir("b"), "audit.jsonl", r#"{"seq":1,"a":1}"#);
    w.fake.clear_calls();
    let out = w.state_with("push", "b", &["--json"]).success();
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json["files"][0]["name"], "billing.jsonl");
    assert_eq!(json["files"][0]["action"], "uploaded");
    assert_eq!(json["files"][1]["action"], "unchanged");
    assert_eq!(
        writes(&w.fake.calls()),
        [
            "delete billing.jsonl",
            "upload billing.jsonl",
            "upload audit.jsonl"
        ]
    );
    assert!(w.fake.release(STATE_TAG).unwrap().draft);
    assert_eq!(
        w.remote("billing.jsonl").unwrap(),
        b"{\"seq\":1}\n{\"seq\":2}\n"
    );

    // A push with nothing new uploads nothing.
    w.fake.clear_calls();
    w.state("push", "b").success();
    assert!(writes(&w.fake.calls()).is_empty());

    // Machine A pulls again: its copy is unchanged since its pull, so it fast-forwards.
    w.state("pull", "a").success();
    assert_eq!(
        std::fs::read(w.dir("a/billing.jsonl")).unwrap(),
        b"{\"seq\":1}\n{\"seq\":2}\n"
    );
    assert!(!w.dir("a/.billing.jsonl.pulling").exists());
}

#[test]
fn a_push_after_someone_elses_push_is_refused_and_writes_nothing_remote() {
    let w = World::new();
    w.state("pull", "a").success();
    w.state("pull", "b").success();
    append(&w.dir("b"), "billing.jsonl", r#"{"seq":1,"by":"b"}"#);
    w.state("push", "b").success();

    append(&w.dir("a"), "billing.jsonl", r#"{"seq":1,"by":"a"}"#);
    w.fake.clear_calls();
    let out = w.state("push", "a").failure().code(1);
    let stderr = text(&out.get_output().stderr);
    assert!(
        stderr.contains("someone pushed since your pull"),
        "{stderr}"
    );
    assert!(stderr.contains("platform ledger merge"), "{stderr}");
    assert!(stderr.contains("billing.jsonl"), "{stderr}");
    assert!(writes(&w.fake.calls()).is_empty(), "{:?}", w.fake.calls());
    assert_eq!(
        w.remote("billing.jsonl").unwrap(),
        b"{\"seq\":1,\"by\":\"b\"}\n"
    );

    // And pulling into A would overwrite A's unpushed record: refused too, nothing changed.
    let out = w.state("pull", "a").failure().code(1);
    let stderr = text(&out.get_output().stderr);
    assert!(stderr.contains("would overwrite local records"), "{stderr}");
    assert_eq!(
        std::fs::read(w.dir("a/billing.jsonl")).unwrap(),
        b"{\"seq\":1,\"by\":\"a\"}\n"
    );
}

#[test]
fn a_push_without_a_pull_is_allowed_only_onto_an_empty_remote() {
    let w = World::new();
    append(&w.dir("a"), "billing.jsonl", r#"{"seq":1}"#);
    w.state("push", "a").success();
    assert!(w.remote("billing.jsonl").is_some());

    append(&w.dir("c"), "billing.jsonl", r#"{"seq":1,"other":true}"#);
    w.fake.clear_calls();
    let out = w.state("push", "c").failure().code(1);
    let stderr = text(&out.get_output().stderr);
    assert!(stderr.contains("no pull was made"), "{stderr}");
    assert!(writes(&w.fake.calls()).is_empty());
}

#[test]
fn a_push_interrupted_by_a_failed_upload_can_be_retried() {
    let w = World::new();
    w.state("pull", "a").success();
    append(&w.dir("a"), "billing.jsonl", r#"{"seq":1}"#);
    append(&w.dir("a"), "evidence.jsonl", r#"{"seq":1}"#);
    // billing.jsonl goes up, evidence.jsonl fails and leaves an incomplete asset.
    w.fake.state().fail_upload = Some((2, 502, true));
    let out = w.state("push", "a").failure().code(1);
    let stderr = text(&out.get_output().stderr);
    assert!(
        stderr.contains("evidence.jsonl") && stderr.contains("502"),
        "{stderr}"
    );
    assert!(
        stderr.contains("acme/state") && stderr.contains(STATE_TAG),
        "{stderr}"
    );

    w.state("push", "a").success();
    assert_eq!(w.remote("evidence.jsonl").unwrap(), b"{\"seq\":1}\n");
    assert!(w.fake.release(STATE_TAG).unwrap().draft);
}

#[test]
fn without_a_token_state_commands_say_to_set_it() {
    let w = World::new();
    let out = Command::cargo_bin("platform")
        .unwrap()
        .env_remove("GITHUB_TOKEN")
        .arg("--repo")
        .arg(w.root.path())
        .args(["state", "pull", "--runtime-profile"])
        .arg(w.root.path().join("profile.yml"))
        .assert()
        .failure()
        .code(2);
    let stderr = text(&out.get_output().stderr);
    assert!(stderr.contains("GITHUB_TOKEN is not set"), "{stderr}");
    assert!(w.fake.calls().is_empty());
}

#[test]
fn the_profile_default_directory_is_used() {
    let w = World::new();
    Command::cargo_bin("platform")
        .unwrap()
        .env("GITHUB_TOKEN", TOKEN)
        .arg("--repo")
        .arg(w.root.path())
        .args(["state", "pull", "--runtime-profile"])
        .arg(w.root.path().join("profile.yml"))
        .assert()
        .success();
    assert!(w
        .root
        .path()
        .join(".billing-state/.state-pulled.json")
        .exists());
}
