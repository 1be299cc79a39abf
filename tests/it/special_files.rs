//! A FIFO, or a link to /dev/zero, where the platform expects a file of config/, a runtime profile or a ledger file: every command refuses it naming the file (or passes over a stray one) without hanging or reading without end, and writes nothing.
use crate::support::fx::{Fx, Transcript, LEDGER_FILES};
use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

/// What is put where a file was.
#[derive(Debug, Clone, Copy)]
enum Special {
    Fifo,
    /// A link to /dev/zero: endless zeros to a reader that does not look.
    Zero,
}

impl Special {
    const ALL: [Special; 2] = [Special::Fifo, Special::Zero];

    /// How the refusal names it.
    fn named(self) -> &'static str {
        match self {
            Special::Fifo => "is a FIFO, not a regular file",
            Special::Zero => "is a device, not a regular file",
        }
    }

    /// Put it at `path` (whatever was there is removed).
    fn make(self, path: &Path) {
        let _ = std::fs::remove_file(path);
        match self {
            Special::Fifo => rustix::fs::mknodat(
                rustix::fs::CWD,
                path,
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o600),
                0,
            )
            .unwrap(),
            Special::Zero => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        }
    }
}

/// Run, failing the test if the command is still running after a minute or holds more than
/// 1 GiB (before the fix: blocked for good on a FIFO; 5 GB in 3 s on /dev/zero).
fn bounded(fx: &Fx, args: &[&str]) -> Output {
    fx.run_within(args, Duration::from_secs(60), 1 << 30)
}

/// The bytes of a regular file (None for anything else, which is never opened: reading the
/// special file itself would hang the test).
fn regular_bytes(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    meta.is_file().then(|| std::fs::read(path).unwrap())
}

/// The three ledger files as they are (None where not a regular file).
fn ledger(fx: &Fx) -> Vec<Option<Vec<u8>>> {
    LEDGER_FILES
        .iter()
        .map(|f| regular_bytes(&fx.state_file(f)))
        .collect()
}

/// The example repository with the demo's grants, acme topped up and one pass run: every
/// ledger file has records.
fn funded() -> Fx {
    static FX: OnceLock<Fx> = OnceLock::new();
    Fx::prepared(&FX, || {
        let fx = Fx::example();
        fx.use_demo_iam();
        fx.topup_as("acme", 100, "inv-1", "demo-admin").expect_ok();
        fx.run(&["orchestrator"]);
        for f in LEDGER_FILES {
            assert!(regular_bytes(&fx.state_file(f)).is_some_and(|b| !b.is_empty()));
        }
        fx
    })
}

const TOPUP: [&str; 11] = [
    "admin-topup",
    "--tenant-id",
    "acme",
    "--amount-credits",
    "5",
    "--topup-method-id",
    "invoice",
    "--reference",
    "inv-2",
    "--actor",
    "demo-admin",
];

/// Each file of config/ as a FIFO and as a link to /dev/zero: consistency-validate reports it
/// as an error at that file (exit 1); admin-topup, which needs iam.yml, registry.yml and the
/// local profile, refuses it naming the file (exit 2) and writes nothing; so do the readers
/// for the local profile.
#[test]
fn config_files_that_are_fifos_or_device_links_are_refused_naming_the_file() {
    let fx = funded();
    let files = [
        "config/registry.yml",
        "config/iam.yml",
        "config/catalog.yml",
        "config/ledger.yml",
        "config/runtime_profile.local.yml",
    ];
    for rel in files {
        let kept = fx.bytes(rel);
        for special in Special::ALL {
            let case = format!("{rel} {special:?}");
            special.make(&fx.path(rel));
            let out = bounded(&fx, &["consistency-validate", "--format", "json"]);
            out.expect_code(1);
            let errors = out.json()["errors"].as_array().unwrap().clone();
            assert!(
                errors.iter().any(|e| e["file"] == rel
                    && e["message"].as_str().unwrap().contains(special.named())),
                "{case}: {errors:?}"
            );
            let mut refused = vec![];
            if ["config/registry.yml", "config/iam.yml"].contains(&rel) {
                refused.push(TOPUP.to_vec());
            }
            if rel.ends_with("runtime_profile.local.yml") {
                refused.push(TOPUP.to_vec());
                refused.push(vec!["balance", "--tenant-id", "acme"]);
                refused.push(vec!["orchestrator"]);
            }
            for args in refused {
                let before = ledger(&fx);
                let out = bounded(&fx, &args);
                out.expect_code(2);
                let err = out.stderr_text();
                assert!(
                    err.contains(rel) && err.contains(special.named()),
                    "{case} {args:?}: {err}"
                );
                assert_eq!(ledger(&fx), before, "{case} {args:?}: nothing written");
            }
            std::fs::remove_file(fx.path(rel)).unwrap();
        }
        fx.write(rel, kept);
    }
    bounded(&fx, &["consistency-validate"]).expect_ok();
}

/// `--runtime-profile` naming a FIFO or a link to /dev/zero: refused, exit 2, naming it.
#[test]
fn a_runtime_profile_flag_naming_a_fifo_or_a_device_link_is_refused() {
    let fx = funded();
    let before = ledger(&fx);
    for special in Special::ALL {
        special.make(&fx.path("p.yml"));
        for cmd in [&["orchestrator"][..], &["state", "pull"]] {
            let mut args = cmd.to_vec();
            args.extend(["--runtime-profile", "p.yml"]);
            let out = bounded(&fx, &args);
            out.expect_code(2);
            let err = out.stderr_text();
            assert!(
                err.contains("p.yml") && err.contains(special.named()),
                "{special:?} {args:?}: {err}"
            );
        }
    }
    assert_eq!(ledger(&fx), before);
}

/// A stray FIFO and a link to /dev/zero among the files of config/ (whose every entry the
/// work-order cache digests): validation and passes go on as without them.
#[test]
fn stray_special_files_in_config_neither_hang_nor_balloon_a_command() {
    let fx = funded();
    let control = fx.run(&["orchestrator", "--dry-run", "--json"]);
    Special::Fifo.make(&fx.path("config/notes"));
    Special::Zero.make(&fx.path("config/zeros.yml.bak"));
    bounded(&fx, &["consistency-validate"]).expect_ok();
    let out = bounded(&fx, &["orchestrator", "--dry-run", "--json"]);
    assert_eq!(out.status.code(), control.status.code(), "{}", out.text());
    assert_eq!(out.json()["runs"], control.json()["runs"]);
    let passes = |what: &str| {
        let out = bounded(&fx, &["orchestrator"]);
        assert_eq!(
            out.status.code(),
            control.status.code(),
            "{what}: {}",
            out.text()
        );
        assert!(
            !out.stderr_text().contains("error:"),
            "{what}: {}",
            out.text()
        );
    };
    passes("a pass");
    passes("a pass reading the caches the first wrote beside them");
    // The caches in the runtime folder are scratch: one that is a FIFO or a link to /dev/zero
    // is rebuilt like a damaged one.
    let cache = fx.path("runtime/.cache");
    Special::Fifo.make(&cache.join("ledger.json"));
    Special::Zero.make(&cache.join("workorders.json"));
    passes("a pass with special files for caches");
}

/// Each ledger file as a FIFO and as a link to /dev/zero: every reader and writer exits 2
/// naming it and what it is, and the other files are left as they were (the special file
/// too: no writer replaces it).
#[test]
fn ledger_files_that_are_fifos_or_device_links_are_refused_and_nothing_is_written() {
    let fx = funded();
    let commands: [&[&str]; 9] = [
        &["balance", "--tenant-id", "acme"],
        &["statement", "--tenant-id", "acme"],
        &["runs"],
        &["integrity-validate"],
        &TOPUP,
        &[
            "admin-adjust",
            "--tenant-id",
            "acme",
            "--amount-credits",
            "5",
            "--reason-slug",
            "goodwill",
            "--reference",
            "adj-1",
            "--actor",
            "demo-admin",
        ],
        &[
            "rerun",
            "--tenant-id",
            "acme",
            "--work-order-id",
            "weekly-digest",
            "--reason",
            "again",
            "--actor",
            "demo-admin",
        ],
        &["orchestrator", "--dry-run"],
        &["orchestrator"],
    ];
    for file in LEDGER_FILES {
        let path = fx.state_file(file);
        let kept = std::fs::read(&path).unwrap();
        for special in Special::ALL {
            special.make(&path);
            let before = ledger(&fx);
            for args in commands {
                let out = bounded(&fx, args);
                let case = format!("{file} {special:?} {args:?}");
                out.expect_code(2);
                let err = out.stderr_text();
                assert!(
                    err.contains(&format!(".billing-state/{file} {}", special.named())),
                    "{case}: {err}"
                );
                assert_eq!(ledger(&fx), before, "{case}: nothing written");
            }
            // `ledger merge` of a segment holding it: refused, the target unchanged.
            let seg = fx.path("seg");
            std::fs::create_dir_all(&seg).unwrap();
            special.make(&seg.join(file));
            std::fs::remove_file(&path).unwrap();
            std::fs::write(&path, &kept).unwrap();
            let target = ledger(&fx);
            let out = bounded(&fx, &["ledger", "merge", "--into", ".billing-state", "seg"]);
            out.expect_code(2);
            assert!(
                out.stderr_text().contains(special.named()),
                "{}",
                out.text()
            );
            assert_eq!(
                ledger(&fx),
                target,
                "{file} {special:?}: merge wrote nothing"
            );
            std::fs::remove_dir_all(&seg).unwrap();
        }
    }
    fx.integrity().unwrap();
}

/// The ledger's lock file as a link to a ledger file, and as a FIFO: writers refuse it, exit 2,
/// naming it and saying to remove it, and the ledger is left as it was. Before 2026-12-03 the
/// link was followed and the holder's note (256 bytes) was written over the start of the file
/// it named: the first records of billing.jsonl.
#[test]
fn a_ledger_lock_file_that_is_a_link_or_a_fifo_is_refused_and_the_ledger_kept() {
    let fx = funded();
    let lock = fx.state_file(".ledger.lock");
    let before = ledger(&fx);
    for (what, make) in [("a symbolic link", None), ("a FIFO", Some(Special::Fifo))] {
        let _ = std::fs::remove_file(&lock);
        match make {
            Some(special) => special.make(&lock),
            None => std::os::unix::fs::symlink(fx.state_file("billing.jsonl"), &lock).unwrap(),
        }
        for args in [&TOPUP[..], &["orchestrator"]] {
            let out = bounded(&fx, args);
            let case = format!("{what} {args:?}");
            out.expect_code(2);
            let err = out.stderr_text();
            assert!(
                err.contains(&format!(".ledger.lock is {what}, not a regular file"))
                    && err.contains("remove"),
                "{case}: {err}"
            );
            assert_eq!(ledger(&fx), before, "{case}: the ledger is untouched");
        }
    }
    std::fs::remove_file(&lock).unwrap();
    bounded(&fx, &TOPUP).expect_ok();
    fx.integrity().unwrap();
}
