//! `platform init DIR`: the new repository validates, runs the demo flow end to end (top-up, orchestrator, runs), and its workflows pass actionlint and install a pinned release instead of compiling.
use crate::support::check::assert_has;
use crate::support::fx::{platform_in, Fx, Topup};
use crate::support::workflows::{actionlint, jobs, load, steps};
use crate::support::Transcript;
use std::path::Path;
use std::process::Command;

const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// `platform init new` in an empty temp folder; the folder and the new repository's path.
fn init(extra: &[&str]) -> (Fx, std::path::PathBuf) {
    let fx = Fx::empty();
    let mut args = vec!["init", "new"];
    args.extend_from_slice(extra);
    let out = fx.run(&args);
    out.expect_ok();
    let repo = fx.path("new");
    (fx, repo)
}

fn run(dir: &Path, args: &[impl AsRef<std::ffi::OsStr>]) -> std::process::Output {
    platform_in(dir).args(args).output().unwrap()
}

/// The demo's top-up: 10 credits for the example tenant, by the actor `tester`.
fn topup_args() -> Vec<String> {
    Topup::new("example", "10", "first").args()
}

#[test]
fn init_output_validates_and_runs_the_demo_flow() {
    let (_fx, repo) = init(&[]);
    let out = run(&repo, &["consistency-validate", "--json"]);
    out.expect_ok();
    let doc = out.json();
    assert_eq!(doc["errors"], serde_json::json!([]), "{doc}");
    run(&repo, &["module", "test", "hello"]).expect_ok();
    // As shipped nobody may top up, and the example work order is a draft.
    let denied = run(&repo, &topup_args());
    denied.expect_code(3);
    let iam = std::fs::read_to_string(repo.join("config/iam.yml")).unwrap();
    std::fs::write(
        repo.join("config/iam.yml"),
        iam.replace("actors: []", "actors:\n  - {id: tester, roles: [admin]}"),
    )
    .unwrap();
    let wo = repo.join("tenants/example/workorders/hello.yml");
    let text = std::fs::read_to_string(&wo).unwrap();
    assert!(text.contains("enabled: false"));
    std::fs::write(&wo, text.replace("enabled: false", "enabled: true")).unwrap();
    run(&repo, &["consistency-validate"]).expect_ok();
    // The demo, run from a subfolder as a user in the tenant's folder would.
    let tenant = repo.join("tenants/example");
    run(&tenant, &topup_args()).expect_ok();
    let out = run(&tenant, &["orchestrator", "--json"]);
    out.expect_ok();
    let runs = run(&tenant, &["runs", "--json"]).expect_ok().json();
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs[0]["status"], "COMPLETED", "{runs}");
    assert_eq!(runs[0]["tenant_id"], "example");
    let balance = run(&tenant, &["balance", "--tenant-id", "example", "--json"])
        .expect_ok()
        .json();
    assert_eq!(
        balance["balance_credits"], 8,
        "10 less run_credits 1 and greeting 1"
    );
    let greeting = walkdir::WalkDir::new(repo.join("runtime"))
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_name() == "hello.txt")
        .expect("hello.txt among the outputs");
    assert_eq!(
        std::fs::read_to_string(greeting.path()).unwrap(),
        "Hello, Example!\n"
    );
    run(&repo, &["integrity-validate"]).expect_ok();
}

#[test]
fn init_workflows_pass_actionlint_and_install_a_pinned_release() {
    let (_fx, repo) = init(&["--release-repo", "acme/platform", "--release-sha256", SHA]);
    // actionlint finds the project by its .git folder.
    let git = Command::new("git")
        .args(["init", "-q"])
        .current_dir(&repo)
        .status()
        .unwrap();
    assert!(git.success());
    let bin = actionlint();
    assert!(bin.exists(), "actionlint not found at {}", bin.display());
    let out = Command::new(&bin)
        .arg("-no-color")
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "actionlint found problems:\n{}",
        out.text()
    );

    let action =
        std::fs::read_to_string(repo.join(".github/actions/install-platform/action.yml")).unwrap();
    let version = format!("PLATFORM_VERSION: \"{}\"", env!("CARGO_PKG_VERSION"));
    for pinned in [
        version.as_str(),
        &format!("PLATFORM_SHA256: \"{SHA}\""),
        "RELEASE_REPO: \"acme/platform\"",
        "sha256sum -c",
    ] {
        assert!(
            action.contains(pinned),
            "install action lacks {pinned}:\n{action}"
        );
    }
    let dir = repo.join(".github/workflows");
    let mut runs_platform = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("cargo"),
            "{}: compiles instead of installing",
            path.display()
        );
        let wf = load(&path);
        for (name, job) in jobs(&wf) {
            let steps = steps(job);
            let uses: Vec<&str> = steps.iter().filter_map(|s| s["uses"].as_str()).collect();
            if steps
                .iter()
                .any(|s| s["run"].as_str().is_some_and(|r| r.contains("platform ")))
            {
                runs_platform += 1;
                assert!(
                    uses.contains(&"./.github/actions/install-platform"),
                    "{name} runs platform without installing it"
                );
            }
            for u in uses.iter().filter(|u| !u.starts_with("./")) {
                let sha = u.rsplit_once('@').map(|(_, s)| s).unwrap_or("");
                assert!(
                    sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{name}: {u} is not pinned by SHA"
                );
            }
        }
    }
    assert!(
        runs_platform >= 5,
        "validate, orchestrator, admin-topup, admin-adjust and rerun run platform"
    );
}

#[test]
fn init_without_a_checksum_says_what_to_set_and_the_install_step_refuses() {
    let fx = Fx::empty();
    let out = fx.run(&["init", "new", "--json"]);
    out.expect_ok();
    let doc = out.json();
    assert_eq!(doc["release_pinned"], false, "{doc}");
    assert_eq!(doc["schema_version"], 1);
    assert!(
        out.stderr_text().contains("PLATFORM_SHA256"),
        "{}",
        out.text()
    );
    let action = fx.read_text("new/.github/actions/install-platform/action.yml");
    assert!(action.contains("PLATFORM_SHA256: \"\""), "{action}");
    assert!(
        action.contains("if [ -z \"$PLATFORM_SHA256\" ]"),
        "{action}"
    );
}

#[test]
fn init_refuses_a_folder_that_is_not_empty_and_bad_release_flags() {
    let fx = Fx::empty();
    fx.write("taken/notes.txt", "mine");
    let out = fx.run(&["init", "taken"]);
    out.expect_code(2);
    assert!(out.stderr_text().contains("is not empty"), "{}", out.text());
    assert_eq!(fx.read_text("taken/notes.txt"), "mine");
    assert_eq!(std::fs::read_dir(fx.path("taken")).unwrap().count(), 1);
    let out = fx.run(&["init", "fresh", "--release-sha256", "not-hex"]);
    out.expect_code(2);
    assert!(!fx.path("fresh").exists());
}

/// What a new user pastes works, and what init says to run is what they should run. Until
/// 2026-12-03: a SHA256SUMS line pasted whole was refused (the help said to copy "the line");
/// `--release-repo` alone was still told to set RELEASE_REPO; the `next:` hint printed a
/// folder with a space or `;` unquoted; a folder inside another repository's `tenants/`
/// was made, and its next steps validated the enclosing repository; a dangling link got
/// "File exists (os error 17)".
#[test]
fn init_takes_a_pasted_checksum_line_quotes_its_hint_and_refuses_a_tenant_folder() {
    let line = format!("{SHA}  platform-0.1.0-x86_64-unknown-linux-musl.tar.gz");
    let (fx, repo) = init(&[
        "--release-repo",
        "owner/platform",
        "--release-sha256",
        &line,
    ]);
    let action =
        std::fs::read_to_string(repo.join(".github/actions/install-platform/action.yml")).unwrap();
    assert!(
        action.contains(&format!("PLATFORM_SHA256: \"{SHA}\"")),
        "{action}"
    );

    let out = fx.run(&["init", "only-repo", "--release-repo", "owner/platform"]);
    out.expect_ok();
    let note = out.stderr_text();
    assert!(note.contains("set PLATFORM_SHA256 in"), "{note}");
    assert!(!note.contains("RELEASE_REPO"), "{note}");

    let out = fx.run(&["init", "my dir;x"]);
    out.expect_ok();
    assert!(
        out.stdout_text().contains("cd 'my dir;x' && git init"),
        "{}",
        out.text()
    );

    // `new` is a platform repository: a folder under its tenants/ is a tenant's.
    let out = fx.run(&["init", "new/tenants/example/mine"]);
    out.expect_code(2);
    assert!(
        out.stderr_text()
            .contains("the tenant folders of a platform repository"),
        "{}",
        out.text()
    );
    assert!(!fx.path("new/tenants/example/mine").exists());

    // ... also when reached through a link.
    std::os::unix::fs::symlink(fx.path("new/tenants"), fx.path("tlink")).unwrap();
    let out = fx.run(&["init", "tlink/newco"]);
    out.expect_code(2);
    assert!(!fx.path("new/tenants/newco").exists());
    let out = fx.run(&["init", "--", "-y"]);
    out.expect_ok();
    assert!(
        out.stdout_text().contains("cd ./-y && git init"),
        "{}",
        out.text()
    );

    std::os::unix::fs::symlink("nowhere", fx.path("dangling")).unwrap();
    let out = fx.run(&["init", "dangling"]);
    out.expect_code(2);
    assert!(
        out.stderr_text().contains("a symbolic link to nothing"),
        "{}",
        out.text()
    );
}

/// Until 2026-12-04 `platform init` wrote the files one by one into the target: killed
/// part-way it left a partial repository that consistency-validate passed, and `init` again
/// only said "not empty". Now it builds beside the target and renames the whole folder into
/// place (a new folder), or moves it into an existing empty one under a marker that
/// consistency-validate and init name: killed, init again succeeds, removing what the killed
/// one left and saying so.
#[test]
fn init_killed_part_way_leaves_no_partial_repository_and_init_again_succeeds() {
    let cases = [
        ("new", "init_file_written@5"),
        ("empty", "init_file_written@5"),
        ("empty", "init_entry_moved@5"),
    ];
    for (target, failpoint) in cases {
        let label = format!("{target} {failpoint}");
        let fx = Fx::empty();
        if target == "empty" {
            std::fs::create_dir(fx.path("empty")).unwrap();
        }
        let out = fx.run_env(&["init", target], &[("PLATFORM_FAILPOINT", failpoint)]);
        assert!(!out.status.success(), "{label}: init was not stopped");
        assert_has(&out.stderr_text(), "failpoint init_");
        let repo = fx.path(target);
        let partial: Vec<String> = std::fs::read_dir(fx.path(""))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!(".{target}.platform-init-")))
            .collect();
        assert_eq!(partial.len(), 1, "{label}: {partial:?}");
        let leftover = match (target, failpoint) {
            ("new", _) => {
                assert!(!repo.exists(), "{label}: a partial repository");
                partial[0].clone()
            }
            (_, "init_file_written@5") => {
                assert_eq!(std::fs::read_dir(&repo).unwrap().count(), 0, "{label}");
                partial[0].clone()
            }
            _ => {
                // Moving into the existing folder: consistency-validate names the marker.
                let out = run(&repo, &["consistency-validate"]);
                out.expect_code(2);
                assert_has(&out.stderr_text(), ".platform-init-incomplete");
                assert_has(&out.stderr_text(), "run `platform init");
                "the partial repository".to_string()
            }
        };

        let out = fx.run(&["init", target]);
        out.expect_ok();
        assert_has(&out.stderr_text(), "an interrupted `platform init` left in");
        assert_has(&out.stderr_text(), &leftover);
        assert!(!fx.path(&partial[0]).exists(), "{label}");
        assert!(!repo.join(".platform-init-incomplete").exists(), "{label}");
        run(&repo, &["consistency-validate"]).expect_ok();
        assert!(repo.join("schemas").is_dir(), "{label}");
    }
}
