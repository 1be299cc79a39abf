//! Publishing release assets against a fake GitHub on loopback: draft → upload → verify →
//! publish, idempotent re-runs, failures that leave drafts, and which calls are retried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::fake_github;
use crate::support::fx::temp_dir;

use fake_github::{FakeGithub, Injected, TOKEN};
use platform::builtin::deliver_github_release::deliver_to_release;
use platform::github::publish::owner_line;
use platform::github::{
    AssetAction, GithubClient, GithubSettings, Purpose, ReleaseOwner, RetryPolicy,
};
use std::path::PathBuf;
use std::time::Duration;

const TAG: &str = "artifacts-t1-wo1-r1";

/// The run whose release is `TAG` under the default template.
fn owner() -> ReleaseOwner {
    ReleaseOwner::new("t1", "wo1", 1)
}

/// A release left by an earlier run of `owner()`, as the client would have created it.
fn seed_owned(fake: &FakeGithub, draft: bool, assets: &[(&str, &[u8])], starters: &[&str]) {
    fake.seed_release(TAG, draft, assets, starters);
    fake.set_body(TAG, &owner_line(&owner()));
}
fn settings(fake: &FakeGithub) -> GithubSettings {
    GithubSettings {
        api_url: fake.uri(),
        ..GithubSettings::for_repository("acme/artifacts")
    }
}

fn client(fake: &FakeGithub) -> GithubClient {
    GithubClient::new(&settings(fake), TOKEN, Purpose::Publish)
        .unwrap()
        .with_retry_policy(RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(10),
            max_wait: Duration::from_secs(5),
        })
}

/// Two files in a fresh temp dir (returned: it must outlive them): `a.zip` holding `a` and
/// its `SHA256SUMS`.
fn assets(a: &[u8]) -> (tempfile::TempDir, Vec<(String, PathBuf)>) {
    let dir = temp_dir();
    let pa = dir.path().join("a.zip");
    let ps = dir.path().join("SHA256SUMS");
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&ps, format!("{}  a.zip\n", platform::digest::sha256_hex(a))).unwrap();
    (dir, vec![("a.zip".into(), pa), ("SHA256SUMS".into(), ps)])
}

#[test]
fn first_publish_creates_a_draft_uploads_verifies_then_publishes() {
    let fake = FakeGithub::start();
    let (_dir, files) = assets(b"zip bytes");
    let result = client(&fake).publish_assets(&owner(), &files).unwrap();

    assert_eq!(
        fake.calls(),
        [
            "list releases",
            "create release",
            "list assets",
            "upload a.zip",
            "upload SHA256SUMS",
            "list assets",
            "publish release",
            "list assets",
        ]
    );
    let release = fake.release(TAG).unwrap();
    assert!(!release.draft, "published at the end");
    assert_eq!(fake.asset_data(TAG, "a.zip").unwrap(), b"zip bytes");
    assert!(!result.already_published);
    assert_eq!(result.repository, "acme/artifacts");
    assert_eq!(result.tag, TAG);
    assert_eq!(result.release_id, release.id);
    assert!(result
        .assets
        .iter()
        .all(|a| a.action == AssetAction::Uploaded));
    assert_eq!(
        result.assets[0].sha256,
        platform::digest::sha256_hex(b"zip bytes")
    );
    assert_eq!(result.assets[0].bytes, 9);
    assert!(
        result.assets[0]
            .url
            .ends_with(&format!("/releases/download/{TAG}/a.zip")),
        "{}",
        result.assets[0].url
    );
}

#[test]
fn a_rerun_uploads_nothing() {
    let fake = FakeGithub::start();
    let (_dir, files) = assets(b"zip bytes");
    let c = client(&fake);
    c.publish_assets(&owner(), &files).unwrap();
    fake.clear_calls();

    let again = c.publish_assets(&owner(), &files).unwrap();
    assert!(again.already_published);
    assert!(again.unchanged());
    assert_eq!(fake.calls(), ["list releases", "list assets"]);
}

#[test]
fn a_draft_left_by_a_failed_run_is_completed_and_stale_assets_replaced() {
    let fake = FakeGithub::start();
    let (_dir, files) = assets(b"new bytes");
    // A previous run left: an a.zip with other bytes and an incomplete SHA256SUMS.
    seed_owned(
        &fake,
        true,
        &[("a.zip", b"old"), ("SHA256SUMS", b"")],
        &["SHA256SUMS"],
    );

    let result = client(&fake).publish_assets(&owner(), &files).unwrap();
    assert_eq!(
        fake.calls(),
        [
            "list releases",
            "list assets",
            "delete a.zip",
            "upload a.zip",
            "delete SHA256SUMS",
            "upload SHA256SUMS",
            "list assets",
            "publish release",
            "list assets",
        ]
    );
    assert!(result
        .assets
        .iter()
        .all(|a| a.action == AssetAction::Replaced));
    assert_eq!(fake.asset_data(TAG, "a.zip").unwrap(), b"new bytes");
}

#[test]
fn identical_assets_on_a_draft_are_skipped_even_without_digests() {
    let fake = FakeGithub::start();
    fake.state().omit_digest = true;
    let (_dir, files) = assets(b"same");
    seed_owned(&fake, true, &[("a.zip", b"same")], &[]);

    let result = client(&fake).publish_assets(&owner(), &files).unwrap();
    assert_eq!(result.assets[0].action, AssetAction::Skipped);
    assert_eq!(result.assets[1].action, AssetAction::Uploaded);
    let calls = fake.calls();
    let downloads = |name: &str| {
        calls
            .iter()
            .filter(|c| **c == format!("download {name}"))
            .count()
    };
    // The kept asset is hashed by download once, not again when the release is verified;
    // the new upload is downloaded to verify it, as no digest says what landed.
    assert_eq!(downloads("a.zip"), 1, "{calls:?}");
    assert_eq!(downloads("SHA256SUMS"), 1, "{calls:?}");
    assert!(!calls.contains(&"upload a.zip".to_string()));
}

#[test]
fn a_failed_upload_leaves_the_release_a_draft_and_names_repo_tag_and_asset() {
    let fake = FakeGithub::start();
    fake.state().fail_upload = Some((2, 500, true));
    let (_dir, files) = assets(b"zip bytes");
    let c = client(&fake);

    let err = c.publish_assets(&owner(), &files).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    for part in [
        "acme/artifacts",
        TAG,
        "SHA256SUMS",
        "500",
        "injected upload failure",
    ] {
        assert!(
            err.message.contains(part),
            "{part} missing from: {}",
            err.message
        );
    }
    assert!(
        err.help
            .as_deref()
            .unwrap_or_default()
            .contains("stays a draft"),
        "{err}"
    );
    let release = fake.release(TAG).unwrap();
    assert!(release.draft, "never half-published");
    let calls = fake.calls();
    assert!(!calls.contains(&"publish release".to_string()), "{calls:?}");
    // Not re-sent blindly: one upload attempt for the file, then a fresh look and cleanup.
    assert_eq!(
        calls.iter().filter(|c| *c == "upload SHA256SUMS").count(),
        1,
        "{calls:?}"
    );
    assert!(
        calls.ends_with(&[
            "upload SHA256SUMS".into(),
            "list assets".into(),
            "delete SHA256SUMS".into()
        ]),
        "{calls:?}"
    );

    // The re-run keeps the finished upload and completes the rest.
    fake.clear_calls();
    let result = c.publish_assets(&owner(), &files).unwrap();
    assert_eq!(result.assets[0].action, AssetAction::Skipped);
    assert_eq!(result.assets[1].action, AssetAction::Uploaded);
    assert!(!fake.release(TAG).unwrap().draft);
}

#[test]
fn rate_limits_and_server_errors_on_gets_are_retried() {
    let fake = FakeGithub::start();
    {
        let mut st = fake.state();
        st.fail_gets.push_back(Injected::retry_now(429));
        st.fail_gets.push_back(Injected::retry_now(502));
    }
    let (_dir, files) = assets(b"zip bytes");
    client(&fake).publish_assets(&owner(), &files).unwrap();
    let calls = fake.calls();
    assert_eq!(
        calls[..3],
        [
            "injected 429 on GET /repos/acme/artifacts/releases",
            "injected 502 on GET /repos/acme/artifacts/releases",
            "list releases",
        ]
    );
    assert!(!fake.release(TAG).unwrap().draft);
}

#[test]
fn a_rate_limit_longer_than_the_cap_fails_at_once_with_a_clear_message() {
    let fake = FakeGithub::start();
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    fake.state().fail_gets.push_back(Injected {
        status: 403,
        headers: vec![
            ("x-ratelimit-remaining".into(), "0".into()),
            ("x-ratelimit-reset".into(), reset.to_string()),
        ],
    });
    let (_dir, files) = assets(b"zip bytes");
    let started = std::time::Instant::now();
    let err = client(&fake).publish_assets(&owner(), &files).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.message.contains("403"), "{err}");
    assert!(err.message.contains("wait"), "{err}");
    assert!(
        err.help
            .as_deref()
            .unwrap_or_default()
            .contains("rate limit"),
        "{err}"
    );
    assert_eq!(fake.calls().len(), 1);
}

#[test]
fn server_errors_keep_being_retried_only_up_to_the_bound() {
    let fake = FakeGithub::start();
    {
        let mut st = fake.state();
        for _ in 0..10 {
            st.fail_gets.push_back(Injected::retry_now(503));
        }
    }
    let (_dir, files) = assets(b"zip bytes");
    let err = client(&fake).publish_assets(&owner(), &files).unwrap_err();
    assert!(err.message.contains("503"), "{err}");
    assert!(err.message.contains("after 4 attempts"), "{err}");
    assert_eq!(fake.calls().len(), 4);
}

#[test]
fn a_5xx_on_create_is_reported_clearly_and_not_retried_blindly() {
    let fake = FakeGithub::start();
    fake.state().fail_creates.push_back(500);
    let (_dir, files) = assets(b"zip bytes");

    let err = client(&fake).publish_assets(&owner(), &files).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.message.contains("creating draft release"), "{err}");
    assert!(
        err.message.contains(TAG) && err.message.contains("acme/artifacts"),
        "{err}"
    );
    assert!(err.message.contains("HTTP 500"), "{err}");
    // One POST, then a fresh look to see whether it landed; nothing else.
    assert_eq!(
        fake.calls(),
        ["list releases", "create release", "list releases"]
    );
    assert!(fake.release(TAG).is_none());
}

#[test]
fn a_create_whose_answer_was_lost_is_found_by_listing_again() {
    let fake = FakeGithub::start();
    fake.state().lose_create_response = true;
    let (_dir, files) = assets(b"zip bytes");
    client(&fake).publish_assets(&owner(), &files).unwrap();
    let calls = fake.calls();
    assert_eq!(
        calls.iter().filter(|c| *c == "create release").count(),
        1,
        "{calls:?}"
    );
    assert_eq!(fake.state().releases.len(), 1);
    assert!(!fake.release(TAG).unwrap().draft);
}

#[test]
fn a_published_release_that_differs_is_an_error_and_is_not_touched() {
    let fake = FakeGithub::start();
    seed_owned(&fake, false, &[("a.zip", b"published bytes")], &[]);
    let (_dir, files) = assets(b"other bytes");

    let err = client(&fake).publish_assets(&owner(), &files).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.message.contains("immutable"), "{err}");
    assert!(err.message.contains("'a.zip' differs"), "{err}");
    assert!(err.message.contains("'SHA256SUMS' is missing"), "{err}");
    assert_eq!(fake.calls(), ["list releases", "list assets"]);
    assert_eq!(fake.asset_data(TAG, "a.zip").unwrap(), b"published bytes");
}

#[test]
fn bad_asset_names_and_missing_files_fail_before_any_request() {
    let fake = FakeGithub::start();
    let dir = temp_dir();
    let p = dir.path().join("x.zip");
    std::fs::write(&p, b"x").unwrap();
    let c = client(&fake);
    let err = c.publish_assets(&owner(), &[("a b.zip", &p)]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.message.contains("a b.zip"), "{err}");
    let err = c
        .publish_assets(&owner(), &[("gone.zip", dir.path().join("gone.zip"))])
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(fake.calls().is_empty());
}

#[test]
fn a_wrong_token_is_reported_with_what_to_do() {
    let fake = FakeGithub::start();
    let c = GithubClient::new(&settings(&fake), "wrong", Purpose::Publish).unwrap();
    let err = c.find_release(TAG).unwrap_err();
    assert!(
        err.message.contains("401") && err.message.contains("Bad credentials"),
        "{err}"
    );
    assert!(
        err.help
            .as_deref()
            .unwrap_or_default()
            .contains("GITHUB_TOKEN"),
        "{err}"
    );
}

#[test]
fn deliver_to_release_returns_the_receipt_data() {
    let fake = FakeGithub::start();
    let dir = temp_dir();
    let zip = dir.path().join("package.zip");
    std::fs::write(&zip, b"PK package").unwrap();
    let run = ReleaseOwner::new("t1", "wo-7", 2);
    let tag = "artifacts-t1-wo-7-r2";
    let c = client(&fake);

    let d = deliver_to_release(&c, &run, &zip).unwrap();
    assert_eq!(d.tag, "artifacts-t1-wo-7-r2");
    assert_eq!(d.asset_name, "package.zip");
    assert_eq!(d.bytes, 10);
    assert_eq!(d.sha256, platform::digest::sha256_hex(b"PK package"));
    assert!(!d.skipped);
    let release = fake.release(tag).unwrap();
    assert_eq!(d.release_id, release.id);
    assert_eq!(d.asset_id, release.assets[0].id);
    assert!(
        d.url
            .contains("/releases/download/artifacts-t1-wo-7-r2/package.zip"),
        "{}",
        d.url
    );

    let again = deliver_to_release(&c, &run, &zip).unwrap();
    assert!(again.skipped);
    assert_eq!(again.asset_id, d.asset_id);
}

#[test]
fn a_missing_token_is_an_input_error_saying_to_set_it() {
    // Only this test touches the variable in this binary's process.
    std::env::remove_var("GITHUB_TOKEN");
    let err = GithubClient::from_env(
        &GithubSettings::for_repository("acme/artifacts"),
        Purpose::Publish,
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.message.contains("GITHUB_TOKEN"), "{err}");
    assert!(
        err.help
            .as_deref()
            .unwrap_or_default()
            .contains("set GITHUB_TOKEN"),
        "{err}"
    );
}

/// audit4 F1, for deliver_github_release: octocrab's timeouts bound each request, not a step,
/// and the built-in ignored its module's `timeout_seconds`, so a server that took the upload
/// and held its answer (here 90 s) held the step, and the pass with the billing lock, that
/// long. Now every call ends at the step's deadline (3 s here): the step fails `timeout`,
/// refunded, the release stays a draft, and a retry against a prompt server completes it.
#[test]
fn a_release_delivery_ends_at_its_timeout_and_a_retry_completes_it() {
    use crate::support::fx::watched;
    use crate::support::orch::{run_of, step_of};
    use crate::support::{Fx, Transcript};
    let fake = FakeGithub::start();
    fake.state().delay_uploads = Some(Duration::from_secs(90));
    let fx = Fx::new();
    fx.add_shipped_module("deliver_github_release");
    let module = "modules/deliver_github_release/module.yml";
    fx.write(
        module,
        format!("{}timeout_seconds: 3\n", fx.read_text(module)),
    );
    let profile = "config/runtime_profile.gh.yml";
    fx.write(
        profile,
        format!(
            "profile_name: gh\ngithub: {{repository: acme/artifacts, api_url: \"{}\"}}\n",
            fake.uri()
        ),
    );
    fx.write("tenants/t1/assets/report.zip", b"PK package");
    fx.workorder(
        "ship",
        "work_order_id: ship\nsteps:\n  - step_id: up\n    module_id: deliver_github_release\n    kind: delivery\n    inputs:\n      package_zip: {asset: report.zip}\n",
    );
    fx.topup(10, "r1");
    let pass = |extra: &[&str]| {
        let mut c = fx.command();
        c.args(["orchestrator", "--json", "--runtime-profile", profile])
            .args(extra)
            .env("GITHUB_TOKEN", TOKEN);
        watched(c, Duration::from_secs(120))
    };

    let out = pass(&[]);
    let sum = out.json();
    let up = step_of(run_of(&sum, "ship"), "up");
    assert_eq!(up["reason_slug"], "timeout", "{sum}\n{}", out.stderr_text());
    assert!(
        up["message"]
            .as_str()
            .is_some_and(|m| m.contains("timeout_seconds = 3")),
        "{up}"
    );
    let refunds = fx.of_type("billing.jsonl", "REFUND");
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["reason_slug"], "timeout");
    assert_eq!(fx.balance(), 10);
    let tag = "artifacts-t1-ship-r1";
    assert!(fake.release(tag).is_some_and(|r| r.draft), "still a draft");

    fake.state().delay_uploads = None;
    let out = pass(&["--retry-failed"]);
    let sum = out.json();
    assert_eq!(run_of(&sum, "ship")["status"], "COMPLETED", "{sum}");
    assert!(fake.release(tag).is_some_and(|r| !r.draft), "published");
    assert_eq!(fx.of_type("evidence.jsonl", "delivery_receipt").len(), 1);
}
