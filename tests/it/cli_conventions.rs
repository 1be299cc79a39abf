//! The CLI behaves like cargo and gh: completions and man pages, a version with its commit, the repository found upwards, `--json` (with `schema_version`) on every command with a result, help on every flag, clear errors for unknown tenants and negative top-ups, `-q`/`-v`/`PLATFORM_LOG`, and `GITHUB_REPOSITORY` as the default repository.
use crate::support::fx::{adjust_args, crate_root, platform_in, Topup};
use crate::support::state::{World, REPOSITORY};
use crate::support::{Fx, Transcript};
use clap::CommandFactory;
use serde_json::Value;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

/// Every leaf command's path (`["ledger", "merge"]`), from clap's own definition.
fn leaf_commands() -> Vec<Vec<String>> {
    commands()
        .into_iter()
        .filter(|path| !command_at(path).has_subcommands())
        .collect()
}

/// Every visible command path: a group (`ledger`) before its subcommands (`ledger merge`).
fn commands() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_string());
            out.push(path.clone());
            walk(sub, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(&platform::cli::Cli::command(), &[], &mut out);
    out
}

/// The clap command at `path`.
fn command_at(path: &[String]) -> clap::Command {
    let mut cmd = platform::cli::Cli::command();
    for name in path {
        cmd = cmd.find_subcommand(name).unwrap().clone();
    }
    cmd
}

/// Commands that print a generated file rather than a result: no `--json`.
const NO_RESULT: [&str; 2] = ["completions", "man"];

#[test]
fn completions_render_for_every_shell() {
    let fx = Fx::empty();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = fx.run(&["completions", shell]);
        out.expect_ok();
        let script = out.stdout_text();
        for word in [
            "orchestrator",
            "admin-topup",
            "tenant-id",
            "consistency-validate",
        ] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    // bash parses the script it would source.
    let script = fx.run(&["completions", "bash"]).stdout;
    fx.write("platform.bash", &script);
    let check = Command::new("bash")
        .args(["-n", "platform.bash"])
        .current_dir(fx.root())
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", check.text());
    let bad = fx.run(&["completions", "tcsh"]);
    bad.expect_code(2);
}

#[test]
fn man_page_renders_and_a_page_per_command_is_written() {
    let fx = Fx::empty();
    let out = fx.run(&["man"]);
    out.expect_ok();
    let page = out.stdout_text();
    assert!(page.contains(".TH platform 1"), "{page}");
    assert!(page.contains("consistency\\-validate"), "{page}");
    let out = fx.run(&["man", "--dir", "man1", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "man has no --json: {}",
        out.text()
    );
    fx.run(&["man", "--dir", "man1"]).expect_ok();
    for name in [
        "platform",
        "platform-orchestrator",
        "platform-ledger-merge",
        "platform-state-push",
    ] {
        let text = fx.read_text(&format!("man1/{name}.1"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{name}: {text}"
        );
    }
    // One page for platform, one per command and per command group (ledger, state, module).
    let groups = platform::cli::Cli::command()
        .get_subcommands()
        .filter(|s| s.has_subcommands())
        .count();
    let mut pages: Vec<String> = std::fs::read_dir(fx.path("man1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    assert_eq!(pages.len(), 1 + groups + leaf_commands().len(), "{pages:?}");
    assert!(!pages.iter().any(|p| p.contains("-help")), "{pages:?}");
}

#[test]
fn version_names_a_commit_of_this_repository_and_its_date() {
    let out = Fx::empty().run(&["--version"]);
    out.expect_ok();
    let line = out.stdout_text();
    let rest = line
        .trim()
        .strip_prefix(&format!("platform {} (", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("release.yml needs `platform X.Y.Z` first: {line}"));
    let (commit, date) = rest.trim_end_matches(')').split_once(' ').unwrap();
    assert!(
        commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "{line}"
    );
    assert!(
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
        "{line}"
    );
    let known = Command::new("git")
        .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .current_dir(crate_root())
        .status()
        .unwrap();
    assert!(
        known.success(),
        "{commit} is not a commit of this repository"
    );
}

/// The build script, compiled on its own and run as cargo would in an unpacked source
/// tarball (no git): the version alone, or what a packager passes.
#[test]
fn a_build_without_git_still_has_a_version() {
    let fx = Fx::empty();
    let script = fx.path("build-script");
    let rustc = Command::new("rustc")
        .args(["--edition", "2021", "-o"])
        .arg(&script)
        .arg(crate_root().join("build.rs"))
        .output()
        .unwrap();
    assert!(rustc.status.success(), "{}", rustc.text());
    let tarball = fx.path("platform-9.9.9");
    std::fs::create_dir_all(&tarball).unwrap();
    let run = |env: &[(&str, &str)]| {
        let mut c = Command::new(&script);
        // Git must not find a repository around the temp folder either.
        c.env("CARGO_MANIFEST_DIR", &tarball)
            .env("GIT_CEILING_DIRECTORIES", fx.root())
            .env("CARGO_PKG_VERSION", "9.9.9")
            .env_remove("PLATFORM_BUILD_COMMIT")
            .env_remove("PLATFORM_BUILD_DATE")
            .envs(env.iter().copied());
        let out = c.output().unwrap();
        out.expect_ok();
        out.stdout_text()
    };
    assert!(
        run(&[]).contains("cargo:rustc-env=PLATFORM_VERSION_LINE=9.9.9\n"),
        "{}",
        run(&[])
    );
    let packaged = run(&[
        ("PLATFORM_BUILD_COMMIT", "abc1234"),
        ("PLATFORM_BUILD_DATE", "2026-11-30"),
    ]);
    assert!(
        packaged.contains("PLATFORM_VERSION_LINE=9.9.9 (abc1234 2026-11-30)\n"),
        "{packaged}"
    );
}

#[test]
fn the_repository_is_found_from_a_subfolder_and_repo_still_wins() {
    let fx = Fx::new();
    fx.topup(100, "INV-1");
    let sub = fx.path("tenants/t1/workorders");
    std::fs::create_dir_all(&sub).unwrap();
    let out = platform_in(&sub)
        .args(["balance", "--tenant-id", "t1", "--json"])
        .output()
        .unwrap();
    out.expect_ok();
    assert_eq!(out.json()["balance_credits"], 100);
    let out = platform_in(&sub)
        .args(Topup::new("t1", "5", "INV-2").args())
        .output()
        .unwrap();
    out.expect_ok();
    assert_eq!(
        fx.balance(),
        105,
        "the top-up went to the repository's ledger"
    );
    // A tenant (untrusted) commits a modules/ and a profile of its own under its folder: the
    // operator working in it still gets the repository, its ledger and its modules.
    fx.write("tenants/t1/modules/evil/module.yml", "module_id: evil\n");
    fx.write(
        "tenants/t1/config/runtime_profile.local.yml",
        "billing_state_dir: planted\n",
    );
    std::fs::create_dir_all(fx.path("tenants/t1/planted")).unwrap();
    let out = platform_in(&sub)
        .args(["balance", "--tenant-id", "t1", "--json"])
        .output()
        .unwrap();
    out.expect_ok();
    assert_eq!(out.json()["balance_credits"], 105, "{}", out.text());
    // --repo names another repository: it wins over the one around the current folder.
    let other = Fx::new();
    let out = platform_in(&sub)
        .arg("--repo")
        .arg(other.root())
        .args(["balance", "--tenant-id", "t1"])
        .output()
        .unwrap();
    out.expect_code(2);
    assert!(
        out.stderr_text().contains("does not exist"),
        "{}",
        out.text()
    );
    // No repository anywhere above: the error says what was looked for.
    let empty = Fx::empty();
    let out = empty.run(&["consistency-validate"]);
    out.expect_code(2);
    let err = out.stderr_text();
    assert!(
        err.contains("modules/ or tenants/") && err.contains("every folder above"),
        "{err}"
    );
}

/// Arguments that make each command produce its result (or a JSON error) in the fixture.
fn json_case(path: &[&str]) -> Option<(Vec<&'static str>, i32)> {
    let topup = Topup::new("t1", "7", "INV-json").args();
    let topup: Vec<&'static str> = topup.into_iter().map(|s| &*s.leak()).collect();
    Some(match path {
        ["consistency-validate"] => (vec![], 0),
        ["integrity-validate"] => (vec![], 0),
        ["orchestrator"] => (vec!["--dry-run"], 0),
        ["ledger", "merge"] => (vec!["--into", "merged", ".billing-state"], 0),
        ["ledger", "keygen"] => (vec![], 0),
        ["admin-topup"] => (topup[1..].to_vec(), 0),
        ["admin-adjust"] => {
            let mut argv = adjust_args("-5", "correction", "CASE-json");
            argv.extend(["--actor".to_string(), "tester".to_string()]);
            (argv.into_iter().skip(1).map(|s| &*s.leak()).collect(), 0)
        }
        // The fixture's t1 has no work orders: an input error, as one JSON document.
        ["rerun"] => (
            vec![
                "--tenant-id",
                "t1",
                "--work-order-id",
                "missing",
                "--reason",
                "why",
                "--actor",
                "tester",
            ],
            2,
        ),
        ["publish"] => (vec!["--no-publish", "--actor", "tester"], 0),
        // No github: block in the fixture's profile: an input error, as one JSON document.
        ["state", "pull"] | ["state", "push"] => (vec![], 2),
        ["statement"] => (vec!["--tenant-id", "t1"], 0),
        ["balance"] => (vec!["--tenant-id", "t1"], 0),
        ["runs"] => (vec![], 0),
        ["module", "test"] => (vec!["gen"], 0),
        ["schema"] => (vec!["--write", "schemas-out"], 0),
        ["explain"] => (vec!["exit:3"], 0),
        ["init"] => (vec!["new-platform"], 0),
        _ => return None,
    })
}

#[test]
fn every_command_with_a_result_accepts_json() {
    let fx = Fx::new();
    fx.topup(100, "INV-1");
    for path in leaf_commands() {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let has_json = command_at(&path.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .get_arguments()
            .any(|a| a.get_id() == "json");
        if NO_RESULT.contains(&path[0]) {
            assert!(!has_json, "{path:?} prints a file, not a result");
            continue;
        }
        assert!(has_json, "{path:?} has no --json");
        let (args, code) = json_case(&path)
            .unwrap_or_else(|| panic!("{path:?}: add arguments for it to json_case"));
        let mut argv = path.clone();
        argv.extend(args);
        argv.push("--json");
        let out = fx.run(&argv);
        out.expect_code(code);
        let doc = out.json();
        match &doc {
            Value::Array(_) => assert_eq!(path, ["runs"], "only runs prints an array (SPEC)"),
            Value::Object(o) => assert_eq!(o["schema_version"], 1, "{argv:?}: {doc}"),
            other => panic!("{argv:?} printed {other}"),
        }
    }
}

/// A reader that went away (`platform … | head -c 10`) is no error of the command: an error,
/// a parse error and a result, each printed to a stdout and a stderr whose readers are gone
/// before anything is written, keep their own exit codes (a panic would exit 101).
#[test]
fn a_closed_stdout_or_stderr_keeps_the_commands_exit_code() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let fx = Fx::new();
    fx.topup(100, "INV-1");
    let cases: [(&[&str], i32); 4] = [
        (&["balance", "--tenant-id", "nosuch", "--json"], 2),
        (&["orchestrator", "--jobs", "0", "--json"], 2),
        (&["balance", "--tenant-id", "t1", "--json"], 0),
        (&["balance", "--tenant-id", "nosuch"], 2),
    ];
    for (args, code) in cases {
        let broken = || {
            let mut fds = [0; 2];
            // SAFETY: pipe(2) fills both descriptors, each then owned once.
            #[allow(unsafe_code)]
            let (r, w) = unsafe {
                assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
                (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
            };
            drop(r);
            w
        };
        let status = platform_in(fx.root())
            .args(args)
            .stdout(broken())
            .stderr(broken())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(code), "{args:?}");
    }
}

#[test]
fn consistency_validate_json_is_format_json() {
    let fx = Fx::new();
    let a = fx.run(&["consistency-validate", "--json"]);
    let b = fx.run(&["consistency-validate", "--format", "json"]);
    assert_eq!(a.status.code(), b.status.code());
    assert_eq!(a.stdout, b.stdout);
    let both = fx.run(&["consistency-validate", "--json", "--format", "text"]);
    both.expect_code(2);
}

#[test]
fn every_flag_has_help_and_a_real_value_name_and_every_command_examples() {
    let root = platform::cli::Cli::command();
    let fx = Fx::empty();
    // Every command, groups (`ledger`, `state`, `module`) and the top level included, as
    // README.md and docs/cli.md say: until 2026-12-03 the groups' help had no examples.
    for path in std::iter::once(Vec::new()).chain(commands()) {
        let cmd = command_at(&path);
        let examples = cmd
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(
            examples.contains("Examples:\n  platform "),
            "{path:?}: no examples"
        );
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = fx.run(&args);
        out.expect_ok();
        let help = out.stdout_text();
        assert!(
            help.contains("\nExamples:\n  platform "),
            "`platform {}` shows no examples:\n{help}",
            args.join(" ")
        );
    }
    for path in leaf_commands() {
        let cmd = command_at(&path);
        for arg in cmd.get_arguments().chain(root.get_arguments()) {
            let id = arg.get_id().as_str();
            assert!(arg.get_help().is_some(), "{path:?} --{id} has no help");
            for name in arg.get_value_names().unwrap_or_default() {
                assert!(name.len() > 1, "{path:?} --{id} has value name <{name}>");
            }
        }
    }
}

#[test]
fn enum_values_and_commands_suggest_the_closest() {
    let fx = Fx::new();
    let out = fx.run(&["consistency-validate", "--format", "jsn"]);
    out.expect_code(2);
    assert!(out.stderr_text().contains("'json'"), "{}", out.text());
    let out = fx.run(&["balanse", "--tenant-id", "t1"]);
    out.expect_code(2);
    assert!(out.stderr_text().contains("'balance'"), "{}", out.text());
    let out = fx.run(&["schema", "modul"]);
    out.expect_code(2);
    assert!(out.stderr_text().contains("'module'"), "{}", out.text());
    // Values from the registry (not clap enums) suggest too, and write nothing.
    let typo = Topup {
        method: "bnak",
        ..Topup::new("t1", "5", "INV-9")
    };
    let out = fx.command().args(typo.args()).output().unwrap();
    out.expect_code(2);
    assert!(
        out.stderr_text().contains("did you mean 'bank'?"),
        "{}",
        out.text()
    );
    assert!(!fx.path(".billing-state/billing.jsonl").exists());
}

#[test]
fn an_unknown_tenant_exits_2_with_the_closest_ones() {
    let fx = Fx::new();
    fx.topup(100, "INV-1");
    for cmd in ["balance", "statement", "runs", "orchestrator"] {
        let out = fx.run(&[cmd, "--tenant-id", "nosuch"]);
        out.expect_code(2);
        assert!(
            out.stderr_text().contains("unknown tenant 'nosuch'"),
            "{}",
            out.text()
        );
        assert!(
            out.stdout.is_empty(),
            "{cmd} printed figures: {}",
            out.text()
        );
        let out = fx.run(&[cmd, "--tenant-id", "t2"]);
        out.expect_code(2);
        assert!(
            out.stderr_text().contains("did you mean 't1'?"),
            "{}",
            out.text()
        );
    }
    let out = fx.run(&["balance", "--tenant-id", "nosuch", "--json"]);
    out.expect_code(2);
    assert_eq!(out.json()["error"]["exit_code"], 2);
    // A tenant removed from the repository keeps its history: the ledger knows it.
    std::fs::remove_dir_all(fx.path("tenants/t1")).unwrap();
    let out = fx.run(&["balance", "--tenant-id", "t1", "--json"]);
    out.expect_ok();
    assert_eq!(out.json()["balance_credits"], 100);
}

#[test]
fn a_negative_top_up_is_a_clear_error_and_writes_nothing() {
    let fx = Fx::new();
    fx.topup(100, "INV-1");
    let before = fx.bytes(".billing-state/billing.jsonl");
    let out = fx.topup_cmd("-5", "INV-2").output().unwrap();
    out.expect_code(2);
    let err = out.stderr_text();
    assert!(
        err.contains("positive") && !err.contains("unexpected argument"),
        "{err}"
    );
    let zero = fx.topup_cmd("0", "INV-3").output().unwrap();
    zero.expect_code(2);
    assert_eq!(fx.bytes(".billing-state/billing.jsonl"), before);
}

#[test]
fn quiet_verbose_and_platform_log() {
    let fx = Fx::new();
    fx.topup(100, "INV-1");
    fx.workorder(
        "one",
        "work_order_id: one\nsteps:\n  - {step_id: gen, module_id: gen, kind: transform, inputs: {text: a b}, deliverables: [data]}\n",
    );
    let q = fx.fork();
    let normal = fx.run(&["orchestrator"]);
    normal.expect_ok();
    assert!(
        normal.stderr_text().contains("[t1/one r1]"),
        "{}",
        normal.text()
    );
    assert!(
        !normal.stderr_text().contains("debug:"),
        "{}",
        normal.text()
    );
    let quiet = q.run(&["-q", "orchestrator"]);
    quiet.expect_ok();
    assert_eq!(quiet.stderr_text(), "", "{}", quiet.text());
    assert!(
        quiet.stdout_text().contains("1 run(s)"),
        "the result still prints: {}",
        quiet.text()
    );
    let verbose = fx.run(&["runs", "-v"]);
    assert!(
        verbose.stderr_text().contains("debug: repository: . ("),
        "{}",
        verbose.text()
    );
    let by_env = fx.run_env(&["runs"], &[("PLATFORM_LOG", "debug")]);
    assert!(
        by_env.stderr_text().contains("debug: exit code 0"),
        "{}",
        by_env.text()
    );
    let typo = fx.run_env(&["runs"], &[("PLATFORM_LOG", "degub")]);
    typo.expect_ok();
    assert!(
        typo.stderr_text()
            .contains("PLATFORM_LOG=degub is not one of"),
        "{}",
        typo.text()
    );
    let errors_stay = fx.run(&["-q", "balance", "--tenant-id", "nosuch"]);
    assert!(
        errors_stay.stderr_text().contains("unknown tenant"),
        "{}",
        errors_stay.text()
    );
}

#[test]
fn github_repository_is_the_default_repository() {
    let w = World::new();
    let profile = format!(
        "profile_name: dev_github\nbilling_state_dir: .billing-state\ngithub:\n  api_url: {}\n",
        w.fake.uri()
    );
    w.fx.write("profile.yml", profile);
    w.seed("local");
    let push = |repo: Option<&str>| {
        let mut c = w.cmd();
        c.env_remove("GITHUB_REPOSITORY");
        if let Some(r) = repo {
            c.env("GITHUB_REPOSITORY", r);
        }
        c.args([
            "state",
            "push",
            "--runtime-profile",
            "profile.yml",
            "--billing-state-dir",
        ])
        .arg(w.dir("local"))
        .output()
        .unwrap()
    };
    let none = push(None);
    none.expect_code(2);
    assert!(
        none.stderr_text().contains("GITHUB_REPOSITORY"),
        "{}",
        none.text()
    );
    assert!(w.remote("billing.jsonl").is_none());
    let out = push(Some(REPOSITORY));
    out.expect_ok();
    assert!(
        out.stdout_text()
            .contains(&format!("-> {REPOSITORY} release")),
        "{}",
        out.text()
    );
    assert_eq!(
        w.remote("billing.jsonl").unwrap(),
        std::fs::read(w.dir("local/billing.jsonl")).unwrap()
    );
    // consistency-validate accepts the profile without a repository, with or without the variable.
    w.fx.write(
        "config/runtime_profile.ci.yml",
        "github:\n  state_tag: billing-state-v1\n",
    );
    let out = w.fx.run(&["consistency-validate", "--json"]);
    let doc = out.json();
    let about_profile = doc["errors"].as_array().unwrap().iter().any(|f| {
        f["file"]
            .as_str()
            .unwrap_or("")
            .contains("runtime_profile.ci")
    });
    assert!(!about_profile, "{doc}");
}

#[test]
fn a_flag_the_parser_refuses_still_gives_one_json_document_with_json() {
    let fx = Fx::new();
    for args in [
        &["orchestrator", "--jobs", "0", "--json"][..],
        &["orchestrator", "--json", "--lock-timeout", "abc"],
        &["balance", "--json", "--tenant-id", "t1", "--bogus"],
        &["consistency-validate", "--format", "json", "--bogus"],
    ] {
        let out = fx.run(args);
        out.expect_code(2);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: stdout is not one JSON document ({e}): {}",
                out.text()
            )
        });
        assert_eq!(doc["error"]["exit_code"], 2, "{args:?}: {doc}");
        assert!(
            !doc["error"]["message"].as_str().unwrap().is_empty(),
            "{doc}"
        );
        // clap's own message, with its tips, stays on stderr.
        assert!(out.stderr_text().contains("error:"), "{}", out.text());
    }
    // Without --json, stdout stays empty; help and version still print and exit 0.
    let out = fx.run(&["orchestrator", "--jobs", "0"]);
    out.expect_code(2);
    assert!(out.stdout.is_empty(), "{}", out.text());
    fx.run(&["--version"]).expect_ok();
    assert!(fx
        .run(&["balance", "--help"])
        .expect_ok()
        .stdout_text()
        .contains("--tenant-id"));
}

/// Until 2026-12-03 these errors had no `help:` line (docs/exit-codes.md: every error says
/// what to do).
#[test]
fn init_man_and_note_errors_say_what_to_do() {
    let fx = Fx::new();
    fx.write("afile", "");
    let out = fx.run(&["init", "afile"]);
    out.expect_code(2);
    assert!(
        out.stderr_text().contains("afile is a file, not a folder"),
        "{}",
        out.text()
    );
    assert!(
        out.stderr_text()
            .contains("help: give init the name of a new folder"),
        "{}",
        out.text()
    );
    let out = fx.run(&["man", "--dir", "/proc/nope"]);
    out.expect_code(2);
    assert!(
        out.stderr_text()
            .contains("help: give --dir a folder this user can create and write"),
        "{}",
        out.text()
    );
    let out = fx
        .topup_cmd("5", "p4")
        .args(["--note", "a\nb"])
        .output()
        .unwrap();
    out.expect_code(2);
    assert!(
        out.stderr_text()
            .contains("help: write --note as one line of at most 1000 characters"),
        "{}",
        out.text()
    );
    assert!(!fx.path(".billing-state/billing.jsonl").exists());
}

/// A folder flag given a file: every command exits 2 saying it is a file, and nothing is
/// written. Until 2026-12-03 `orchestrator --runtime-dir FILE` recorded a FAILED run (its
/// steps "a module swapped it for a link?"), readers said the directory "does not exist" and
/// writers printed "File exists (os error 17)".
#[test]
fn a_file_where_a_folder_is_expected_exits_2_saying_so_and_writes_nothing() {
    let fx = Fx::new();
    fx.topup(10, "r1");
    fx.workorder("w", "work_order_id: w\nsteps: []\n");
    fx.write("typo.txt", "x");
    let before = (fx.lines("billing.jsonl"), fx.lines("evidence.jsonl"));
    for args in [
        &["orchestrator", "--runtime-dir", "typo.txt"][..],
        &["orchestrator", "--billing-state-dir", "typo.txt"],
        &["orchestrator", "--billing-state-dir", "typo.txt/state"],
        &[
            "balance",
            "--tenant-id",
            "t1",
            "--billing-state-dir",
            "typo.txt",
        ],
        &["ledger", "merge", "--into", "typo.txt", ".billing-state"],
        &["integrity-validate", "--billing-state-dir", "typo.txt"],
        &["integrity-validate", "--runtime-dir", "typo.txt"],
        &[
            "orchestrator",
            "--dry-run",
            "--billing-state-dir",
            "typo.txt/state",
        ],
        &[
            "publish",
            "--no-publish",
            "--actor",
            "tester",
            "--billing-state-dir",
            ".billing-state",
            "--runtime-dir",
            "runtime",
            "--dist-dir",
            "typo.txt",
        ],
    ] {
        let out = fx.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.text());
        let text = out.text();
        assert!(text.contains("typo.txt is a file"), "{args:?}: {text}");
        assert!(text.contains("help: pass a folder"), "{args:?}: {text}");
    }
    let out = fx
        .topup_cmd("5", "r2")
        .args(["--billing-state-dir", "typo.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(out.text().contains("typo.txt is a file"), "{}", out.text());
    assert_eq!(
        (fx.lines("billing.jsonl"), fx.lines("evidence.jsonl")),
        before
    );
    assert_eq!(std::fs::read(fx.path("typo.txt")).unwrap(), b"x");
}

/// An argument that is not UTF-8 never panics. A Latin-1 folder name is a valid path: every
/// writer takes it (the lock's holder note shows it lossily); an argument clap refuses exits 2
/// (with the JSON document under --json), and nothing is written. Until 2026-12-04 every writer
/// and every refused command line holding such an argument panicked (exit 101).
#[test]
fn an_argument_that_is_not_utf8_never_panics() {
    let fx = Fx::new();
    fx.workorder(
        "w",
        "work_order_id: w\nsteps:\n  - {step_id: gen, module_id: gen, kind: transform, inputs: {text: a b}, deliverables: [data]}\n",
    );
    let latin1 = OsStr::from_bytes(b"state-caf\xe9");
    let run = |args: &[&OsStr]| fx.command().args(args).output().unwrap();
    let with_dir = |args: Vec<String>| {
        let mut argv: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        argv.extend([OsStr::new("--billing-state-dir"), latin1]);
        run(&argv)
    };
    with_dir(Topup::new("t1", "50", "r1").args()).expect_ok();
    let mut adjust = adjust_args("-5", "goodwill", "a1");
    adjust.extend(["--actor".into(), "tester".into()]);
    with_dir(adjust).expect_ok();
    let rerun = ["rerun", "--tenant-id", "t1", "--work-order-id", "w"];
    let mut rerun: Vec<String> = rerun.map(String::from).to_vec();
    rerun.extend(["--reason", "again", "--actor", "tester"].map(String::from));
    with_dir(rerun).expect_ok();
    let out = with_dir(vec![
        "balance".into(),
        "--tenant-id".into(),
        "t1".into(),
        "--json".into(),
    ]);
    assert_eq!(
        out.expect_ok().json()["balance_credits"],
        45,
        "{}",
        out.text()
    );
    with_dir(vec!["orchestrator".into()]).expect_ok();
    let merged = OsStr::from_bytes(b"merged-caf\xe9");
    let merge = [
        OsStr::new("ledger"),
        OsStr::new("merge"),
        OsStr::new("--into"),
    ];
    run(&[&merge[..], &[merged, latin1]].concat()).expect_ok();
    assert!(fx.root().join(merged).join("billing.jsonl").is_file());
    // Arguments clap refuses: exit 2, never a panic, nothing written.
    let before = fx.all_bytes_under("");
    let bad_tenant = OsStr::from_bytes(b"t\xe9");
    for args in [
        &[OsStr::new("balance"), OsStr::new("--tenant-id"), bad_tenant][..],
        &[OsStr::new("schema"), OsStr::from_bytes(b"modul\xe9")],
        &[
            OsStr::new("consistency-validate"),
            OsStr::new("--format"),
            OsStr::from_bytes(b"\xff"),
        ],
        &[
            OsStr::new("admin-topup"),
            OsStr::new("--tenant-id"),
            bad_tenant,
            OsStr::new("--amount-credits"),
            OsStr::new("5"),
            OsStr::new("--topup-method-id"),
            OsStr::new("manual"),
            OsStr::new("--reference"),
            OsStr::new("r2"),
            OsStr::new("--actor"),
            OsStr::new("tester"),
        ],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.text());
        assert!(!out.stderr_text().contains("panicked"), "{}", out.text());
        assert!(
            out.stderr_text().starts_with("error: invalid"),
            "{args:?}: {}",
            out.text()
        );
    }
    let out = run(&[
        OsStr::new("balance"),
        OsStr::new("--json"),
        OsStr::new("--tenant-id"),
        bad_tenant,
    ]);
    assert_eq!(out.expect_code(2).json()["error"]["exit_code"], 2);
    assert_eq!(fx.all_bytes_under(""), before);
}

/// IDs may start with `-` (SPEC §2: `[A-Za-z0-9_-]{1,64}`), and notes and reasons may too:
/// `--tenant-id -g` and `--note "-5 credits"` are values, as the workflows pass them. Until
/// 2026-12-04 the parser refused them (`unexpected argument '-g' found`; for `--note --x`, "a
/// value is required"), so such a tenant could not be topped up through admin-topup.yml.
#[test]
fn values_that_start_with_a_dash_are_values() {
    let fx = Fx::new();
    fx.add_tenant("-g");
    fx.workorder_for(
        "-g",
        "w",
        "work_order_id: w\nsteps:\n  - {step_id: gen, module_id: gen, kind: transform, inputs: {text: a b}, deliverables: [data]}\n",
    );
    let run = |args: &[&str]| {
        let out = fx.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", out.text());
        out
    };
    // A reference may not start with '-': now the platform says so, not the parser.
    let out = fx.run(
        &Topup::new("-g", "50", "-r1")
            .args()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    out.expect_code(2);
    assert!(
        out.stderr_text()
            .contains("--reference must start with a letter or digit"),
        "{}",
        out.text()
    );
    let topup = Topup::new("-g", "50", "r1").args();
    let mut topup: Vec<&str> = topup.iter().map(String::as_str).collect();
    run(&[&topup[..], &["--note", "-5 credits, see ticket"]].concat());
    topup[8] = "r2";
    run(&[&topup[..], &["--note", "--x"]].concat());
    run(&[
        "admin-adjust",
        "--tenant-id",
        "-g",
        "--amount-credits",
        "-5",
        "--reason-slug",
        "goodwill",
        "--reference",
        "a1",
        "--note",
        "- customer asked",
        "--actor",
        "tester",
    ]);
    let reason = ["--reason", "- customer asked", "--actor", "tester"];
    run(&[
        &["rerun", "--tenant-id", "-g", "--work-order-id", "w"][..],
        &reason,
    ]
    .concat());
    let balance = run(&["balance", "--tenant-id", "-g", "--json"]);
    assert_eq!(balance.json()["balance_credits"], 95, "{}", balance.text());
    let notes: Vec<Value> = fx.billing().iter().map(|r| r["note"].clone()).collect();
    for note in ["-5 credits, see ticket", "--x", "- customer asked"] {
        assert!(notes.contains(&Value::from(note)), "{note}: {notes:?}");
    }
    run(&["statement", "--tenant-id", "-g"]);
    run(&["orchestrator", "--tenant-id", "-g", "--work-order-id", "w"]);
    let runs = run(&["runs", "--tenant-id", "-g", "--json"]).json();
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
    // Every flag whose value is an ID or free text takes such a value: a new one too.
    for path in leaf_commands() {
        for arg in command_at(&path).get_arguments() {
            let names = arg.get_value_names().unwrap_or_default();
            let text = [
                "TENANT",
                "WORK_ORDER",
                "TEXT",
                "REFERENCE",
                "METHOD",
                "REASON",
                "ACTOR",
            ];
            if names.iter().any(|n| text.contains(&n.as_str())) {
                assert!(
                    arg.is_allow_hyphen_values_set(),
                    "{path:?} --{} refuses a value starting with '-'",
                    arg.get_id()
                );
            }
        }
    }
}

/// A command's own flag where a value goes is a forgotten value, not the value: until
/// 2026-12-04 `balance --tenant-id --json` looked up a tenant "--json", and `--note --quiet`
/// recorded the note "--quiet". Written `--note=--quiet`, it is still that value.
#[test]
fn a_flag_given_where_a_value_goes_is_refused_naming_both() {
    let fx = Fx::new();
    fx.topup(10, "r1");
    let before = fx.billing().len();
    let out = fx.run(&["balance", "--tenant-id", "--json"]);
    let json = out.expect_code(2).json();
    let message = json["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("--tenant-id takes a value, but the word after it, `--json`"),
        "{}",
        out.text()
    );
    assert!(
        json["error"]["help"]
            .as_str()
            .unwrap_or_default()
            .contains("`--tenant-id=--json`"),
        "{}",
        out.text()
    );
    let topup = Topup::new("t1", "5", "r2").args();
    let topup: Vec<&str> = topup.iter().map(String::as_str).collect();
    let out = fx.run(&[&topup[..], &["--note", "--quiet"]].concat());
    out.expect_code(2);
    assert!(
        out.stderr_text().contains("--note takes a value"),
        "{}",
        out.text()
    );
    assert_eq!(fx.billing().len(), before, "nothing is written");
    // Short flags too (`-q`, `-v`): until they were checked, `--note -q` recorded "-q".
    for short in ["-q", "-v"] {
        let out = fx.run(&[&topup[..], &["--note", short]].concat());
        out.expect_code(2);
        assert!(
            out.stderr_text()
                .contains(&format!("the word after it, `{short}`")),
            "{}",
            out.text()
        );
    }
    assert_eq!(fx.billing().len(), before, "nothing is written");
    fx.run(&[&topup[..], &["--note=--quiet"]].concat())
        .expect_code(0);
    // `--flag=value` words hold their value: the next word is the next flag.
    let out = fx.run(&["balance", "--tenant-id=t1", "--json"]);
    assert_eq!(out.expect_code(0).json()["balance_credits"], 15);
    let notes: Vec<Value> = fx.billing().iter().map(|r| r["note"].clone()).collect();
    assert!(notes.contains(&Value::from("--quiet")), "{notes:?}");
    // A flag of another command is a value here: `runs` has no --note.
    let out = fx.run(&["runs", "--tenant-id", "--note"]);
    assert!(
        !out.stderr_text().contains("takes a value"),
        "{}",
        out.text()
    );
}

/// Small input mistakes exit 2 and say what to do. Until 2026-12-04: `runs --tenant-id ''`
/// (and `..`) printed "no runs of tenant  recorded" with exit 0; `--runtime-profile` naming a
/// folder advised "(or remove it)"; a `PLATFORM_NOW` that is not UTF-8 was taken for unset
/// (the system clock planned the pass), and such a `GITHUB_ACTOR` got "set GITHUB_ACTOR".
#[test]
fn small_input_mistakes_exit_2_and_say_what_to_do() {
    let fx = Fx::new();
    fx.topup(10, "r1");
    for cmd in ["runs", "balance", "statement", "orchestrator"] {
        for (id, why) in [("", "an ID must not be empty"), ("..", "--tenant-id")] {
            let out = fx.run(&[cmd, "--tenant-id", id]);
            assert_eq!(out.status.code(), Some(2), "{cmd} {id:?}: {}", out.text());
            assert!(
                out.stderr_text().contains(why),
                "{cmd} {id:?}: {}",
                out.text()
            );
            assert!(out.stdout.is_empty(), "{cmd} {id:?}: {}", out.text());
        }
    }
    std::fs::create_dir(fx.path("profiles")).unwrap();
    let out = fx.run(&["orchestrator", "--dry-run", "--runtime-profile", "profiles"]);
    out.expect_code(2);
    let err = out.stderr_text();
    assert!(
        err.contains("--runtime-profile profiles is a folder, not a regular file"),
        "{err}"
    );
    assert!(
        err.contains("help: pass a runtime profile's YAML file"),
        "{err}"
    );
    assert!(!err.contains("remove it"), "{err}");
    let before = fx.all_bytes_under("");
    let now = OsStr::from_bytes(b"2027-03-01T00:00:00Z\xff");
    let out = fx
        .command()
        .args(["orchestrator", "--dry-run"])
        .env("PLATFORM_NOW", now)
        .output()
        .unwrap();
    out.expect_code(2);
    assert!(
        out.stderr_text()
            .contains("PLATFORM_NOW is not valid UTF-8"),
        "{}",
        out.text()
    );
    let actor = OsStr::from_bytes(b"ali\xe9");
    let mut topup = fx.cmd();
    topup.args(
        Topup {
            actor: None,
            ..Topup::new("t1", "5", "r2")
        }
        .args(),
    );
    let out = topup.env("GITHUB_ACTOR", actor).output().unwrap();
    out.expect_code(2);
    assert!(
        out.stderr_text()
            .contains("GITHUB_ACTOR is not valid UTF-8"),
        "{}",
        out.text()
    );
    assert!(
        !out.stderr_text().contains("set GITHUB_ACTOR"),
        "{}",
        out.text()
    );
    assert_eq!(fx.all_bytes_under(""), before);
}
