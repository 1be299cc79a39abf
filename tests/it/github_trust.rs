//! SPEC §6 "Trust model", GitHub side, attacked for real: a work order aiming a delivery at the
//! state release with a forged, re-chained ledger; two tenants whose IDs render one release
//! tag; an http:// API off this machine; and the client's own guard, whatever its caller asks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::find;
use crate::support::fake_github::{FakeGithub, TOKEN};
use crate::support::fx::temp_dir;
use crate::support::fx::{crate_root, LEDGER_FILES};
use crate::support::orch::{run_of, step_of};
use crate::support::state::World;
use crate::support::{Fx, Transcript};
use platform::github::publish::owner_line;
use platform::github::{GithubClient, GithubSettings, Purpose, ReleaseOwner};
use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const STATE_TAG: &str = "billing-state-v1";
const PROFILE: &str = "config/runtime_profile.gh.yml";

/// The orchestrator fixture with the shipped deliver_github_release contract and a profile
/// whose API is the fake.
fn fixture(fake: &FakeGithub) -> Fx {
    let fx = Fx::new();
    fx.add_shipped_module("deliver_github_release");
    fx.write(
        PROFILE,
        format!(
            "profile_name: gh\ngithub: {{repository: acme/artifacts, api_url: \"{}\", state_tag: {STATE_TAG}}}\n",
            fake.uri()
        ),
    );
    fx
}

fn with_token(fx: &Fx, args: &[&str]) -> std::process::Output {
    fx.run_env(args, &[("GITHUB_TOKEN", TOKEN)])
}

/// What an attacker would upload: a billing.jsonl whose chain verifies and whose only record
/// credits t1 with 99,999,999 (made by the real binary in a scratch copy).
fn forged_billing() -> Vec<u8> {
    let scratch = Fx::new();
    scratch.topup(99_999_999, "forged");
    scratch.bytes(".billing-state/billing.jsonl")
}

/// `balance --tenant-id t1` over the three files as the state release holds them.
fn remote_balance(fx: &Fx, fake: &FakeGithub) -> i64 {
    for f in LEDGER_FILES {
        let bytes = fake.asset_data(STATE_TAG, f).unwrap_or_default();
        fx.write(&format!("remote-state/{f}"), bytes);
    }
    let out = fx.run(&[
        "balance",
        "--tenant-id",
        "t1",
        "--json",
        "--billing-state-dir",
        "remote-state",
    ]);
    out.expect_ok().json()["balance_credits"].as_i64().unwrap()
}

/// The reported attack: `tag: billing-state-v1` on a delivery of a forged billing.jsonl
/// replaced the state release's ledger and published it. Now `tag` is an unknown input, that
/// work order does not run, and the state release keeps its bytes and stays a draft; the
/// honest delivery beside it goes to the release its template derives.
#[test]
fn a_work_order_cannot_aim_a_delivery_at_the_state_release() {
    let fake = FakeGithub::start();
    let fx = fixture(&fake);
    fx.topup(100, "r1");
    with_token(&fx, &["state", "push", "--runtime-profile", PROFILE]).expect_ok();
    let state_before = fake.asset_data(STATE_TAG, "billing.jsonl").unwrap();
    assert_eq!(remote_balance(&fx, &fake), 100);

    std::fs::write(fx.path("tenants/t1/assets/billing.jsonl"), forged_billing()).unwrap();
    std::fs::write(
        fx.path("tenants/t1/assets/report.zip"),
        b"PK honest package",
    )
    .unwrap();
    fx.workorder(
        "steal",
        "work_order_id: steal\nsteps:\n  - step_id: ship\n    module_id: deliver_github_release\n    kind: delivery\n    inputs:\n      package_zip: {asset: billing.jsonl}\n      tag: billing-state-v1\n",
    );
    fx.workorder(
        "honest",
        "work_order_id: honest\nsteps:\n  - step_id: ship\n    module_id: deliver_github_release\n    kind: delivery\n    inputs:\n      package_zip: {asset: report.zip}\n",
    );
    fake.clear_calls();
    let out = with_token(
        &fx,
        &["orchestrator", "--json", "--runtime-profile", PROFILE],
    );
    let summary = out.expect_code(1).json();
    assert!(
        summary.to_string().contains("does not declare"),
        "the tag input is an unknown input now: {summary}"
    );
    assert!(
        summary["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["work_order_id"] != "steal"),
        "{summary}"
    );
    assert_eq!(
        step_of(run_of(&summary, "honest"), "ship")["status"],
        "COMPLETED"
    );

    let state = fake.release(STATE_TAG).unwrap();
    assert!(state.draft, "the state release was published");
    assert_eq!(
        fake.asset_data(STATE_TAG, "billing.jsonl").unwrap(),
        state_before
    );
    assert_eq!(remote_balance(&fx, &fake), 100);
    let honest = fake.release("artifacts-t1-honest-r1").unwrap();
    assert!(!honest.draft);
    assert_eq!(
        fake.asset_data("artifacts-t1-honest-r1", "report.zip")
            .unwrap(),
        b"PK honest package"
    );
    assert!(honest
        .body
        .contains(&owner_line(&ReleaseOwner::new("t1", "honest", 1))));
    assert_eq!(fake.state().releases.len(), 2, "no other release was made");
}

/// IDs may contain '-', so `t1` + `x-report` and `t1-x` + `report` render one tag under the
/// default template. The first run owns the release; the other tenant's delivery is refused
/// (and refunded) instead of adding to it or recording it as its own.
#[test]
fn a_tenant_cannot_write_or_claim_a_release_of_another_tenant() {
    let fake = FakeGithub::start();
    let fx = fixture(&fake);
    std::fs::create_dir_all(fx.path("tenants/t1-x/assets")).unwrap();
    std::fs::create_dir_all(fx.path("tenants/t1-x/workorders")).unwrap();
    std::fs::write(fx.path("tenants/t1-x/tenant.yml"), "tenant_id: t1-x\n").unwrap();
    std::fs::write(fx.path("tenants/t1/assets/one.zip"), b"PK from t1").unwrap();
    std::fs::write(fx.path("tenants/t1-x/assets/one.zip"), b"PK from t1-x").unwrap();
    let wo = |id: &str| {
        format!("work_order_id: {id}\nsteps:\n  - step_id: ship\n    module_id: deliver_github_release\n    kind: delivery\n    inputs:\n      package_zip: {{asset: one.zip}}\n")
    };
    fx.workorder("x-report", &wo("x-report"));
    std::fs::write(fx.path("tenants/t1-x/workorders/report.yml"), wo("report")).unwrap();
    fx.topup(100, "r1");
    fx.fund("t1-x", 100, "r1");

    // One work order at a time, so "first" is t1's (with --jobs the other may win the tag:
    // then t1's delivery is the one refused).
    let out = with_token(
        &fx,
        &[
            "orchestrator",
            "--json",
            "--jobs",
            "1",
            "--runtime-profile",
            PROFILE,
        ],
    );
    let summary = out.expect_code(1).json();
    let first = find(&summary["runs"], "tenant_id", "t1");
    assert_eq!(step_of(first, "ship")["status"], "COMPLETED", "{summary}");
    let second = find(&summary["runs"], "tenant_id", "t1-x");
    let step = step_of(second, "ship");
    assert_eq!(step["reason_slug"], "delivery_failed", "{summary}");
    assert!(
        step["message"]
            .as_str()
            .unwrap()
            .contains("belongs to t1/x-report/1"),
        "{step}"
    );
    let release = fake.release("artifacts-t1-x-report-r1").unwrap();
    assert_eq!(release.assets.len(), 1);
    assert_eq!(
        fake.asset_data("artifacts-t1-x-report-r1", "one.zip")
            .unwrap(),
        b"PK from t1"
    );
    // The refused delivery was refunded: t1-x paid nothing for it.
    assert_eq!(fx.balance_of("t1-x"), 100);
}

/// A plain-HTTP server that counts connections: what a client ignoring the https rule would
/// hand the token to.
struct Listener {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Listener {
    fn start() -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        std::thread::spawn(move || {
            for stream in l.incoming() {
                seen.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut s) = stream {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf);
                }
            }
        });
        Listener { port, connections }
    }
    fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// `http://[::ffff:127.0.0.1]:PORT` reaches the listener (checked first), but is not one of
/// the loopback names the rule accepts: it stands for any http:// host off this machine.
#[test]
fn an_http_api_url_is_refused_before_the_token_leaves() {
    let listener = Listener::start();
    let url = format!("http://[::ffff:127.0.0.1]:{}", listener.port);
    std::net::TcpStream::connect(("::ffff:127.0.0.1", listener.port))
        .expect("the test address must reach the listener");
    let control = 1;
    while listener.count() < control {
        std::thread::yield_now();
    }
    let fx = Fx::new();
    fx.write(
        PROFILE,
        format!("profile_name: gh\ngithub: {{repository: acme/artifacts, api_url: \"{url}\"}}\n"),
    );
    for args in [
        &["state", "pull", "--runtime-profile", PROFILE][..],
        &["state", "push", "--runtime-profile", PROFILE],
        &["orchestrator", "--runtime-profile", PROFILE],
        &[
            "publish",
            "--runtime-profile",
            PROFILE,
            "--billing-state-dir",
            ".billing-state",
            "--runtime-dir",
            "runtime",
            "--actor",
            "tester",
        ],
    ] {
        let out = with_token(&fx, args);
        let err = out.expect_code(2).text();
        assert!(err.contains("clear text"), "{args:?}: {err}");
        assert!(err.contains(PROFILE), "names the profile: {err}");
    }
    let validate = fx.run(&["consistency-validate", "--format", "json"]);
    assert!(validate.expect_code(1).text().contains("github.api_url"));
    assert_eq!(
        listener.count(),
        control,
        "a request reached the http:// host"
    );
}

fn settings(fake: &FakeGithub) -> GithubSettings {
    GithubSettings {
        api_url: fake.uri(),
        ..GithubSettings::for_repository("acme/artifacts")
    }
}

/// Whatever its caller passes, a client made for publishing or delivery cannot create,
/// upload to, delete from or publish the state release; a state-pull client writes nothing;
/// a state-push client writes nothing else and never publishes the state release.
#[test]
fn the_client_refuses_state_release_writes_unless_made_for_state_push() {
    let fake = FakeGithub::start();
    fake.seed_release(STATE_TAG, true, &[("billing.jsonl", b"real")], &[]);
    fake.seed_release("artifacts-t1-wo-r1", true, &[("a.zip", b"a")], &[]);
    let dir = temp_dir();
    let forged = dir.path().join("billing.jsonl");
    std::fs::write(&forged, b"forged").unwrap();
    for purpose in [Purpose::Publish, Purpose::Delivery, Purpose::StatePull] {
        let c = GithubClient::new(&settings(&fake), TOKEN, purpose).unwrap();
        let state = c.find_release(STATE_TAG).unwrap().unwrap();
        let asset = c.list_assets(&state).unwrap().remove(0);
        for err in [
            c.create_draft_release(STATE_TAG).unwrap_err(),
            c.create_draft_release("Billing-State-V1").unwrap_err(),
            c.upload_asset(&state, "billing.jsonl", &forged)
                .unwrap_err(),
            c.delete_asset(&state, &asset).unwrap_err(),
            c.publish_release(&state).unwrap_err(),
        ] {
            assert!(err.message.starts_with("refused:"), "{purpose:?}: {err}");
        }
    }
    let push = GithubClient::new(&settings(&fake), TOKEN, Purpose::StatePush).unwrap();
    let state = push.find_release(STATE_TAG).unwrap().unwrap();
    let other = push.find_release("artifacts-t1-wo-r1").unwrap().unwrap();
    let err = push.publish_release(&state).unwrap_err();
    assert!(err.message.contains("stays a draft"), "{err}");
    assert!(push.upload_asset(&other, "x.zip", &forged).is_err());
    assert!(push.create_draft_release("artifacts-t1-wo-r2").is_err());
    assert_eq!(fake.writes(), Vec::<String>::new());
    assert_eq!(
        fake.asset_data(STATE_TAG, "billing.jsonl").unwrap(),
        b"real"
    );
    assert!(fake.release(STATE_TAG).unwrap().draft);
}

/// A release whose body names another run (or none: made by hand) is neither written nor
/// recorded by publish_assets; nothing is sent but the lookups.
#[test]
fn publish_assets_never_writes_a_release_of_another_owner() {
    let fake = FakeGithub::start();
    let tag = "artifacts-t1-wo-r1";
    fake.seed_release(tag, true, &[], &[]);
    let dir = temp_dir();
    let zip = dir.path().join("a.zip");
    std::fs::write(&zip, b"PK").unwrap();
    let c = GithubClient::new(&settings(&fake), TOKEN, Purpose::Publish).unwrap();
    let me = ReleaseOwner::new("t1", "wo", 1);
    for body in [
        String::new(),
        owner_line(&ReleaseOwner::new("t1-wo", "x", 1)),
    ] {
        fake.set_body(tag, &body);
        let err = c.publish_assets(&me, &[("a.zip", &zip)]).unwrap_err();
        assert!(err.message.contains("not to t1/wo/1"), "{err}");
    }
    assert_eq!(fake.writes(), Vec::<String>::new());
    fake.set_body(tag, &owner_line(&me));
    c.publish_assets(&me, &[("a.zip", &zip)]).unwrap();
    assert!(!fake.release(tag).unwrap().draft);
}

/// An upload URL that GitHub's answer points at another origin gets no request at all (the
/// token would go with it).
#[test]
fn the_token_is_not_sent_to_an_upload_url_on_another_origin() {
    let fake = FakeGithub::start();
    let elsewhere = Listener::start();
    fake.state().upload_base = Some(format!("http://127.0.0.1:{}", elsewhere.port));
    let dir = temp_dir();
    let zip = dir.path().join("a.zip");
    std::fs::write(&zip, b"PK").unwrap();
    let c = GithubClient::new(&settings(&fake), TOKEN, Purpose::Publish).unwrap();
    let err = c
        .publish_assets(&ReleaseOwner::new("t1", "wo", 1), &[("a.zip", &zip)])
        .unwrap_err();
    assert!(
        err.message.contains("refused to send the GitHub token"),
        "{err}"
    );
    assert_eq!(elsewhere.count(), 0);
    assert!(fake.release("artifacts-t1-wo-r1").unwrap().draft);
}

/// As shipped, config/iam.yml grants no privileged role to anyone: on a copy of this
/// repository a top-up as the demo's admin and a publish as the workflow bot are denied
/// (exit 3) and audited. The demo gets its grants from scripts/demo-iam.yml instead.
#[test]
fn the_shipped_iam_grants_nobody() {
    let iam: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(crate_root().join("config/iam.yml")).unwrap(),
    )
    .unwrap();
    for actor in iam["actors"].as_array().unwrap() {
        assert_eq!(actor["roles"], serde_json::json!([]), "{actor}");
    }
    let fx = Fx::example();
    fx.topup_as("acme", 100, "r1", "demo-admin").expect_code(3);
    let publish = fx.run(&[
        "publish",
        "--billing-state-dir",
        ".billing-state",
        "--runtime-dir",
        "runtime",
        "--no-publish",
        "--actor",
        "github-actions[bot]",
    ]);
    publish.expect_code(3);
    let audit = String::from_utf8(fx.bytes(".billing-state/audit.jsonl")).unwrap();
    assert_eq!(
        audit.lines().count(),
        2,
        "both denials are audited: {audit}"
    );
    assert!(fx.billing().is_empty(), "nothing was credited");
}

/// Until 2026-12-03 a server that quoted the request in its error message (a proxy or a
/// front end answering 401 with "sent: Bearer <token>") had the token printed by `publish`
/// (text and `--json`) and by `state pull` and `state push`. The client masks every secret
/// in what a server says, and every command's error output is masked as well.
#[test]
fn a_token_a_server_echoes_back_is_never_printed() {
    let w = World::new();
    w.state("pull", "a", &[]).success();
    w.seed("a");
    w.state("push", "a", &[]).success();
    w.topup("a", 5, "UNPUSHED");
    w.fake.state().echo_every_authorization = true;

    let publish = [
        "publish",
        "--runtime-profile",
        "profile.yml",
        "--actor",
        "tester",
        "--runtime-dir",
        "runtime",
    ];
    let json = [&publish[..], &["--json"]].concat();
    let state = |verb| vec!["state", verb, "--runtime-profile", "profile.yml"];
    for args in [publish.to_vec(), json, state("pull"), state("push")] {
        w.fake.clear_calls();
        let out = w
            .cmd()
            .args(&args)
            .arg("--billing-state-dir")
            .arg(w.dir("a"))
            .output()
            .unwrap();
        let all = format!("{}\n{}", out.stdout_text(), out.stderr_text());
        assert_eq!(out.status.code(), Some(1), "{args:?}: {all}");
        assert!(
            w.fake.calls().iter().any(|c| c.starts_with("echoed")),
            "{args:?}: the server was asked"
        );
        assert!(!all.contains(TOKEN), "{args:?} printed the token: {all}");
        assert!(
            all.contains("Bad credentials (sent: Bearer [REDACTED])"),
            "{args:?}: {all}"
        );
    }
    // Any command's error is masked too, whatever it quotes (here its own argument).
    let out = w
        .cmd()
        .args([
            "balance",
            "--json",
            "--tenant-id",
            TOKEN,
            "--billing-state-dir",
        ])
        .arg(w.dir("a"))
        .output()
        .unwrap();
    let all = format!("{}\n{}", out.stdout_text(), out.stderr_text());
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(!all.contains(TOKEN), "{all}");
    assert_eq!(
        all.matches("unknown tenant '[REDACTED]'").count(),
        2,
        "{all}"
    );
}
