//! `platform explain` (SPEC §10): every reason slug and exit code has a text, unknown topics
//! exit 2 with the closest ones, and docs/ list the same slugs, exit codes and record types as
//! the built-in texts (one source).
use crate::support::check::assert_has;
use crate::support::fx::crate_root;
use crate::support::{Fx, Transcript};
use platform::config::registry::{BUILTIN_ADJUST_REASONS, BUILTIN_REASONS};
use platform::explain::texts;
use platform::records::RecordType;
use serde_json::Value;

fn explain(fx: &Fx, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["explain", "--json"];
    all.extend_from_slice(args);
    let out = fx.run(&all);
    (out.status.code().unwrap_or(-1), out.json())
}

#[test]
fn every_reason_slug_and_exit_code_has_a_text() {
    let fx = Fx::new();
    // A registry of the repository's own adds a slug, with its description as the text.
    std::fs::write(
        fx.path("config/registry.yml"),
        "reason_slugs:\n  - {slug: quota_exhausted, refundable: true, description: The upstream quota ran out.}\n",
    )
    .unwrap();
    let (code, doc) = explain(&fx, &[]);
    assert_eq!(code, 0);
    let topics = doc["topics"].as_array().unwrap();
    let of = |kind: &str| -> Vec<String> {
        topics
            .iter()
            .filter(|t| t["kind"] == kind)
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let mut slugs: Vec<&str> = BUILTIN_REASONS.iter().map(|(s, _)| *s).collect();
    slugs.push("quota_exhausted");
    for slug in &slugs {
        let (code, t) = explain(&fx, &[&format!("slug:{slug}")]);
        assert_eq!(code, 0, "{slug}");
        assert!(!t["meaning"].as_str().unwrap().is_empty(), "{slug}");
        assert!(!t["what_to_do"].as_str().unwrap().is_empty(), "{slug}");
        let refundable = BUILTIN_REASONS
            .iter()
            .find(|(s, _)| s == slug)
            .is_none_or(|(_, r)| *r);
        assert_eq!(t["refundable"], refundable, "{slug}");
    }
    assert_eq!(of("slug").len(), slugs.len());
    let (_, custom) = explain(&fx, &["quota_exhausted"]);
    assert_eq!(custom["meaning"], "The upstream quota ran out.");
    assert_eq!(of("exit"), ["0", "1", "2", "3"]);
    for code in ["0", "1", "2", "3"] {
        let (c, t) = explain(&fx, &[code]);
        assert_eq!(c, 0);
        assert_eq!(t["topic"], format!("exit:{code}"));
    }
    assert!(of("command").contains(&"publish".to_string()));
    let (_, publish) = explain(&fx, &["command:publish"]);
    assert!(publish["what_to_do"]
        .as_str()
        .unwrap()
        .contains("platform publish"));
}

#[test]
fn an_unknown_topic_exits_2_naming_the_closest_ones() {
    let fx = Fx::new();
    let stderr = fx.run(&["explain", "timout"]).expect_code(2).stderr_text();
    assert_has(&stderr, "slug:timeout");
    let (code, doc) = explain(&fx, &["record:SPNED"]);
    assert_eq!(code, 2);
    assert!(doc["error"]["help"]
        .as_str()
        .unwrap()
        .contains("record:SPEND"));
    // A topic missing a word of its name: until 2026-12-03 nothing was suggested.
    for (typed, meant) in [
        ("command:topup", "command:admin-topup"),
        ("error:conflict", "error:ledger_conflict"),
    ] {
        let stderr = fx.run(&["explain", typed]).expect_code(2).stderr_text();
        assert_has(&stderr, meant);
    }
}

/// Until 2026-12-03 `explain goodwill` found no topic, though ADJUST records and statements
/// show it as `reason_slug`; and `error:nosuch` was told of `command:module`.
#[test]
fn adjust_reasons_are_topics_and_a_kind_narrows_the_suggestions() {
    let fx = Fx::new();
    std::fs::write(
        fx.path("config/registry.yml"),
        "adjust_reasons:\n  - {id: migration}\n",
    )
    .unwrap();
    let explained: Vec<&str> = texts::ADJUST_REASONS.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(explained, BUILTIN_ADJUST_REASONS);
    for reason in BUILTIN_ADJUST_REASONS.iter().chain(&["migration"]) {
        let (code, t) = explain(&fx, &[reason]);
        assert_eq!(code, 0, "{reason}: {t}");
        assert_eq!(t["topic"], format!("adjust:{reason}"));
        assert_has(t["meaning"].as_str().unwrap(), "ADJUST");
        assert!(!t["what_to_do"].as_str().unwrap().is_empty(), "{reason}");
    }
    let (code, doc) = explain(&fx, &["error:nosuch"]);
    assert_eq!(code, 2);
    let help = doc["error"]["help"].as_str().unwrap();
    assert!(!help.contains("command:"), "{help}");
    // The registry's own description of a reason it adds is what explain shows (until
    // 2026-12-03 a generic text replaced it, as it still does for a reason without one).
    std::fs::write(
        fx.path("config/registry.yml"),
        "adjust_reasons:\n  - {id: migration}\n  - {id: sla_credit, description: Credits for a missed SLA}\n",
    )
    .unwrap();
    let (code, t) = explain(&fx, &["adjust:sla_credit"]);
    assert_eq!(code, 0, "{t}");
    assert_eq!(t["meaning"], "Credits for a missed SLA", "{t}");
    let (_, t) = explain(&fx, &["adjust:migration"]);
    assert_has(
        t["meaning"].as_str().unwrap(),
        "added by config/registry.yml",
    );
}

fn doc(name: &str) -> String {
    std::fs::read_to_string(crate_root().join("docs").join(name)).unwrap()
}

#[test]
fn docs_list_the_same_slugs_exit_codes_and_record_types_as_explain() {
    let exit_codes = doc("exit-codes.md");
    let listed: Vec<&str> = exit_codes
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|c| c.chars().all(|ch| ch.is_ascii_digit()))
        .collect();
    let known: Vec<&str> = texts::EXIT_CODES.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(listed, known, "docs/exit-codes.md's table vs explain");
    let kinds: Vec<&str> = exit_codes
        .lines()
        .filter_map(|l| l.strip_prefix("| `error:"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let explained: Vec<&str> = texts::ERRORS.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(
        kinds, explained,
        "docs/exit-codes.md's error kinds vs explain"
    );
    let records = doc("records.md");
    let explained: Vec<&str> = texts::RECORD_TYPES.iter().map(|(t, _, _)| *t).collect();
    let types: Vec<&str> = RecordType::ALL.iter().map(|t| t.name()).collect();
    assert_eq!(
        explained, types,
        "explain's record types vs records::RecordType"
    );
    for (ty, _, _) in texts::RECORD_TYPES {
        let named = records.contains(&format!("`{ty}`")) || records.contains(&format!("### {ty} "));
        assert!(named, "docs/records.md does not describe record type {ty}");
    }
    let formats = doc("formats.md");
    for (slug, _) in BUILTIN_REASONS {
        assert!(
            formats.contains(slug),
            "docs/formats.md does not list the built-in slug {slug}"
        );
        assert!(
            texts::SLUGS.iter().any(|(s, _, _)| s == slug),
            "explain has no built-in text for {slug}"
        );
    }
}

/// The topic an error's help line names (`platform explain <topic>`), if any.
fn topic_named(stderr: &str) -> Option<String> {
    let help = stderr.lines().find(|l| l.starts_with("help: "))?;
    let rest = help.split("`platform explain ").nth(1)?;
    rest.split('`').next().map(String::from)
}

#[test]
fn errors_name_their_topic_on_the_help_line_and_every_error_topic_explains() {
    let fx = Fx::new();
    // Denied: an actor without billing.topup.
    let out = fx.topup_as("t1", 5, "r1", "nobody");
    assert_eq!(out.status.code(), Some(3), "{}", out.text());
    assert_eq!(
        topic_named(&out.stderr_text()).as_deref(),
        Some("error:denied")
    );
    // An unknown tenant, in text and in the JSON error document.
    let out = fx.run(&["balance", "--tenant-id", "t9"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        topic_named(&out.stderr_text()).as_deref(),
        Some("error:unknown_tenant")
    );
    let out = fx.run(&["balance", "--tenant-id", "t9", "--json"]);
    assert_eq!(out.json()["error"]["topic"], "error:unknown_tenant");
    // A reused reference with another amount: a ledger conflict.
    fx.topup(5, "r1");
    let out = fx.topup_as("t1", 6, "r1", "tester");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        topic_named(&out.stderr_text()).as_deref(),
        Some("error:ledger_conflict")
    );
    // An error of no kind of its own names its exit code's topic, on the help line and in the
    // JSON document (SPEC §10); until 2026-12-04 these named none (`"topic": null`).
    for args in [
        &[
            "admin-topup",
            "--tenant-id",
            "t1",
            "--amount-credits",
            "5",
            "--topup-method-id",
            "bitcoin",
            "--reference",
            "X",
            "--actor",
            "tester",
        ][..],
        &[
            "admin-adjust",
            "--tenant-id",
            "t1",
            "--amount-credits",
            "5",
            "--reason-slug",
            "bogus",
            "--reference",
            "X",
            "--actor",
            "tester",
        ],
        &[
            "rerun",
            "--tenant-id",
            "t1",
            "--work-order-id",
            "nope",
            "--reason",
            "x",
            "--actor",
            "tester",
        ],
        &["orchestrator", "--shard", "0/3"],
        &["balance", "--no-such-flag"],
    ] {
        let out = fx.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.text());
        assert_eq!(
            topic_named(&out.stderr_text()).as_deref(),
            Some("exit:2"),
            "{args:?}: {}",
            out.text()
        );
        let out = fx.run(&[args, &["--json"]].concat());
        assert_eq!(out.json()["error"]["topic"], "exit:2", "{args:?}");
        assert_has(
            out.json()["error"]["help"].as_str().unwrap_or(""),
            "`platform explain exit:2` says more",
        );
        let (code, _) = explain(&fx, &["exit:2"]);
        assert_eq!(code, 0);
    }
    // Every error topic is one `explain` knows.
    for (name, _, _) in texts::ERRORS {
        let (code, doc) = explain(&fx, &[&format!("error:{name}")]);
        assert_eq!(code, 0, "error:{name}");
        assert_eq!(doc["kind"], "error");
        assert!(!doc["what_to_do"].as_str().unwrap_or("").is_empty());
    }
}

/// Until 2026-12-03 `command:help` told to run `platform help --help` (exit 2), and the
/// subcommands (`ledger merge`, `state pull`, `module test`, ...) had no topic.
#[test]
fn every_command_and_subcommand_is_a_topic_whose_help_command_works() {
    let fx = Fx::new();
    let (code, doc) = explain(&fx, &[]);
    assert_eq!(code, 0);
    let commands: Vec<String> = doc["topics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "command")
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    for path in [
        "ledger",
        "ledger merge",
        "ledger keygen",
        "state pull",
        "state push",
        "module test",
        "orchestrator",
    ] {
        assert!(commands.iter().any(|c| c == path), "{path}: {commands:?}");
    }
    assert!(!commands.iter().any(|c| c.split(' ').any(|w| w == "help")));
    for path in &commands {
        let (code, t) = explain(&fx, &[&format!("command:{path}")]);
        assert_eq!(code, 0, "{path}: {t}");
        // What the topic says to run, run: it lists the flags and exits 0.
        let todo = t["what_to_do"].as_str().unwrap();
        let named = todo
            .split('`')
            .find(|s| s.starts_with("platform ") && s.ends_with(" --help"))
            .unwrap_or_else(|| panic!("{path}: {todo}"));
        assert_eq!(named, format!("platform {path} --help"));
        let args: Vec<&str> = named.split(' ').skip(1).collect();
        fx.run(&args).expect_ok();
        assert_has(todo, &format!("Usage: platform {path} "));
    }
    // The other obvious spellings name the same topic.
    for query in [
        "command:ledger-merge",
        "command:ledger:merge",
        "command:merge",
        "ledger merge",
        "ledger-merge",
        "merge",
    ] {
        let (code, t) = explain(&fx, &[query]);
        assert_eq!(code, 0, "{query}: {t}");
        assert_eq!(t["topic"], "command:ledger merge", "{query}");
    }
    let (code, doc) = explain(&fx, &["command:help"]);
    assert_eq!(code, 2, "{doc}");
}

/// `record:SPEND` explains every kind of SPEND a statement shows, metered usage included (a
/// row `SPEND -12 … lines 4`: SPEC §10). Until 2026-12-04 it named only the run and
/// deliverable charges.
#[test]
fn record_spend_explains_metered_usage_charges_too() {
    let fx = Fx::new();
    let text = fx
        .run(&["explain", "record:SPEND"])
        .expect_ok()
        .stdout_text();
    for part in [
        "a purchased deliverable",
        "metered usage of one unit",
        "`usage_unit` the unit, `quantity` how many it used",
        "posted after the step COMPLETED",
        "usage with its quantity",
        "at most credits × max_units",
    ] {
        assert_has(&text, part);
    }
    let (code, t) = explain(&fx, &["SPEND"]);
    assert_eq!(
        (code, t["topic"].as_str()),
        (0, Some("record:SPEND")),
        "{t}"
    );
    assert_has(t["meaning"].as_str().unwrap_or_default(), "metered usage");
    assert_has(t["what_to_do"].as_str().unwrap_or_default(), "quantity");
}
