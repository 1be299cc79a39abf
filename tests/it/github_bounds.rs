//! What a GitHub client reads is bounded: a published release older than the listing is
//! still found (by its tag), an answer far longer than any real one is refused, and a
//! download longer than its asset stops there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::fake_github::{FakeGithub, TOKEN};
use crate::support::fx::temp_dir;
use crate::support::long_answers::LongAnswers;

use platform::github::publish::owner_line;
use platform::github::{GithubClient, GithubSettings, Purpose, ReleaseOwner, RetryPolicy};
use std::time::Duration;

const TAG: &str = "artifacts-t1-wo1-r1";

fn client(fake: &FakeGithub) -> GithubClient {
    client_at(&fake.uri())
}

/// A client of `acme/artifacts` whose API is at `api_url`, retrying once.
fn client_at(api_url: &str) -> GithubClient {
    let settings = GithubSettings {
        api_url: api_url.to_string(),
        ..GithubSettings::for_repository("acme/artifacts")
    };
    GithubClient::new(&settings, TOKEN, Purpose::Publish)
        .unwrap()
        .with_retry_policy(RetryPolicy {
            attempts: 2,
            first_delay: Duration::from_millis(10),
            max_wait: Duration::from_secs(5),
        })
}

/// Until 2026-12-04 a publish looked for its release among the 2,000 newest only: a run's
/// release published before 2,500 others was not found, a new draft was refused by GitHub
/// (the tag is taken) and the re-run failed instead of "already published". A published
/// release past the listing is now fetched by its tag.
#[test]
fn a_published_release_behind_thousands_of_newer_ones_is_found_by_its_tag() {
    let fake = FakeGithub::start();
    let dir = temp_dir();
    let zip = dir.path().join("a.zip");
    std::fs::write(&zip, b"zip bytes").unwrap();
    let files = vec![("a.zip".to_string(), zip)];
    let owner = ReleaseOwner::new("t1", "wo1", 1);
    let c = client(&fake);
    c.publish_assets(&owner, &files).unwrap();
    fake.set_body(TAG, &owner_line(&owner));
    fake.seed_releases("artifacts-t2-wo-r", 2_500);
    fake.clear_calls();

    let again = c.publish_assets(&owner, &files).unwrap();
    assert!(again.already_published, "{again:?}");
    assert!(again.unchanged());
    let calls = fake.calls();
    assert_eq!(calls.iter().filter(|c| *c == "list releases").count(), 20);
    assert!(
        calls.contains(&format!("get release by tag {TAG}")),
        "{calls:?}"
    );
    assert!(!calls.iter().any(|c| c == "create release"), "{calls:?}");
    assert_eq!(fake.releases_tagged(TAG), 1);
}

/// Until 2026-12-04 an answer was read whole, whatever its length: a listing of 600 MB from
/// a broken or hostile api_url took 620 MB of memory. Answers past 64 MiB are refused.
#[test]
fn an_answer_far_longer_than_any_real_one_is_refused_naming_the_api_url() {
    let fake = FakeGithub::start();
    fake.state().huge_listing = Some(80 << 20);
    let err = client(&fake).find_release(TAG).unwrap_err();
    assert_eq!(err.exit_code(), 1, "{err}");
    assert!(
        err.message.contains("longer than 64 MiB") && err.to_string().contains("api_url"),
        "{err}"
    );
}

/// A download is cut off as soon as it passes the asset's listed size (it was checked only
/// at the end, so a server streaming without end filled the disk first). The server here
/// streams 256 MiB for a 9-byte asset and counts what it wrote: the client hangs up long
/// before the end (what it wrote is bounded by the socket buffers, not by the stream).
#[test]
fn a_download_longer_than_its_asset_stops_at_the_listed_size() {
    let fake = FakeGithub::start();
    fake.seed_release(TAG, false, &[("a.zip", b"zip bytes")], &[]);
    let c = client(&fake);
    let release = c.find_release(TAG).unwrap().unwrap();
    let assets = c.list_assets(&release).unwrap();
    const STREAM: u64 = 256 << 20;
    let long = LongAnswers::start(STREAM);
    let dir = temp_dir();
    let dest = dir.path().join("a.zip");
    let err = client_at(&long.uri())
        .download_asset(&release, &assets[0], &dest)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("received more than the 9 bytes GitHub lists for the asset"),
        "{err}"
    );
    let sent = long.sent_once_all_ended(Duration::from_secs(60));
    assert!(!sent.is_empty());
    for s in &sent {
        assert!(
            s.hung_up && s.bytes < STREAM / 4,
            "the client took the stream to its end or near it: {sent:?}"
        );
    }
    assert!(!dest.exists());
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "no temporary file is left: {left:?}");
}
