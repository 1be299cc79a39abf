//! deliver_local against a real file system: copies, verifies, receipts and failures; through the orchestrator, runs that share its folder.
// Tests fail by panicking; expect() carries the context.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::assert_has;
use crate::support::fx::temp_dir;
use platform::beneath::Beneath;
use platform::builtin::deliver_local;
use platform::digest::sha256_hex;

/// A file beneath its own folder (the folder is the test's).
fn at(path: &std::path::Path) -> Beneath {
    Beneath::in_parent(path)
}

fn inputs(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let zip = dir.join("package.zip");
    let manifest = dir.join("manifest.json");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&zip, &data).unwrap();
    std::fs::write(&manifest, b"{\"files\": []}\n").unwrap();
    (zip, manifest)
}

#[test]
fn copies_package_and_manifest_and_verifies_them() {
    let tmp = temp_dir();
    let (zip, manifest) = inputs(tmp.path());
    let dest = tmp.path().join("runtime/deliveries/acme/wo-1/deliver");

    let receipt = deliver_local(&at(&zip), Some(&at(&manifest)), &at(&dest)).expect("delivered");

    let zip_bytes = std::fs::read(&zip).unwrap();
    let copied = std::fs::read(dest.join("package.zip")).unwrap();
    assert_eq!(copied, zip_bytes);
    assert_eq!(
        std::fs::read(dest.join("manifest.json")).unwrap(),
        std::fs::read(&manifest).unwrap()
    );
    assert_eq!(receipt.provider, "local");
    assert_eq!(receipt.verification_status, "verified");
    assert_eq!(receipt.bytes, zip_bytes.len() as u64);
    assert_eq!(receipt.sha256, sha256_hex(&zip_bytes));
    assert_eq!(receipt.object_id, None);
    let remote = std::path::Path::new(&receipt.remote_path);
    assert!(remote.is_absolute(), "{}", receipt.remote_path);
    assert_eq!(
        remote,
        std::fs::canonicalize(&dest).unwrap().join("package.zip")
    );

    // Only the two files: no temporary copies left behind.
    let mut names: Vec<String> = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["manifest.json", "package.zip"]);
}

#[test]
fn delivering_again_gives_the_same_receipt() {
    let tmp = temp_dir();
    let (zip, _) = inputs(tmp.path());
    let dest = tmp.path().join("out");
    let first = deliver_local(&at(&zip), None, &at(&dest)).unwrap();
    let second = deliver_local(&at(&zip), None, &at(&dest)).unwrap();
    assert_eq!(first, second);
    assert!(!dest.join("manifest.json").exists());
}

#[test]
fn a_missing_package_fails_module_failed() {
    let tmp = temp_dir();
    let failure = deliver_local(
        &at(&tmp.path().join("nope.zip")),
        None,
        &at(&tmp.path().join("out")),
    )
    .expect_err("missing package");
    assert_eq!(failure.reason_slug, "module_failed");
    assert_has(&failure.message, "nope.zip");
}

#[test]
fn an_unwritable_destination_fails_delivery_failed() {
    let tmp = temp_dir();
    let (zip, _) = inputs(tmp.path());
    let blocker = tmp.path().join("blocker");
    std::fs::write(&blocker, b"a file where a folder should be").unwrap();
    let failure =
        deliver_local(&at(&zip), None, &at(&blocker.join("out"))).expect_err("dest under a file");
    assert_eq!(failure.reason_slug, "delivery_failed");
    assert_has(&failure.message, "blocker");
}

/// A link planted on the way to the destination (a module of another step can write in the
/// runtime directory): the delivery fails and nothing lands where the link points.
#[cfg(unix)]
#[test]
fn a_link_on_the_way_to_the_destination_fails_and_nothing_lands_behind_it() {
    let tmp = temp_dir();
    let (zip, _) = inputs(tmp.path());
    let runtime = tmp.path().join("runtime");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(runtime.join("deliveries")).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, runtime.join("deliveries/acme")).unwrap();
    let dest = Beneath::new(&runtime, "deliveries/acme/wo-1/deliver");
    let failure = deliver_local(&at(&zip), None, &dest).expect_err("through a link");
    assert_eq!(failure.reason_slug, "delivery_failed");
    assert_has(&failure.message, "symbolic link");
    assert!(!elsewhere.join("wo-1/deliver/package.zip").exists());
}

/// A deliver_local step of one step, delivering tenant assets (its work order's `inputs`).
fn delivery_order(inputs: &str) -> String {
    format!(
        "work_order_id: w\nsteps:\n  - step_id: deliver\n    module_id: deliver_local\n    kind: delivery\n    inputs: {inputs}\n"
    )
}

const FOLDER: &str = "runtime/deliveries/t1/w/deliver";

/// The names in the step's delivery folder, sorted.
fn delivered_names(fx: &crate::support::Fx) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fx.path(FOLDER))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// audit4 F2 (a, b): every run of a step delivers into the same folder (SPEC §2), and files
/// were copied one by one: a run that delivered no manifest, or a package of another name,
/// left the earlier run's files beside its own (a manifest naming another package's digest).
/// Now a delivery replaces the folder's content as a set: the earlier run's package and
/// manifest, and a staged copy a crash left, are removed; a link (its target untouched) and a
/// folder, which the platform never puts there, are left alone. integrity-validate counts the
/// earlier receipt's file as absent, not as a problem.
#[test]
fn a_later_runs_delivery_replaces_the_folder_and_leaves_nothing_of_the_earlier_one() {
    use crate::support::orch::{run_of, step_of};
    use crate::support::Transcript;
    let fx = crate::support::Fx::new();
    fx.write("tenants/t1/assets/a.zip", b"PK run one");
    fx.write(
        "tenants/t1/assets/manifest.json",
        b"{\"package\": \"a.zip\"}\n",
    );
    fx.write("tenants/t1/assets/b.zip", b"PK run two");
    fx.topup(10, "r1");
    fx.workorder(
        "w",
        &delivery_order("{package_zip: {asset: a.zip}, manifest_json: {asset: manifest.json}}"),
    );
    let (code, sum, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}\n{stderr}");
    assert_eq!(delivered_names(&fx), ["a.zip", "manifest.json"]);

    fx.write(
        &format!("{FOLDER}/.delivery-left.tmp"),
        b"a crash's staged copy",
    );
    fx.write("elsewhere/target.txt", b"not the platform's");
    std::os::unix::fs::symlink(
        fx.path("elsewhere/target.txt"),
        fx.path(&format!("{FOLDER}/a-link")),
    )
    .unwrap();
    std::fs::create_dir(fx.path(&format!("{FOLDER}/a-folder"))).unwrap();
    fx.workorder("w", &delivery_order("{package_zip: {asset: b.zip}}"));
    let (code, sum, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}\n{stderr}");
    let run = run_of(&sum, "w");
    assert_eq!(run["run"], 2, "{sum}");
    assert_eq!(step_of(run, "deliver")["status"], "COMPLETED", "{sum}");
    assert_eq!(delivered_names(&fx), ["a-folder", "a-link", "b.zip"]);
    assert_eq!(fx.bytes(&format!("{FOLDER}/b.zip")), b"PK run two");
    assert_eq!(fx.bytes("elsewhere/target.txt"), b"not the platform's");

    let out = fx.run(&["integrity-validate", "--json"]);
    let report = out.json();
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["runtime"]["deliveries_checked"], 1, "{report}");
    assert_eq!(report["runtime"]["deliveries_absent"], 1, "{report}");
}

/// audit4 F2 (c): the package was copied into place, then the manifest's copy failed (here a
/// folder sits at its name): the step failed `delivery_failed`, refunded, yet the previous
/// delivery's package was already replaced. Now every file is staged first and nothing is
/// renamed until all are: the previous delivery stays whole, and no staged copy is left.
#[test]
fn a_delivery_that_fails_partway_leaves_the_previous_one_whole_and_is_refunded() {
    use crate::support::orch::{run_of, step_of};
    let fx = crate::support::Fx::new();
    fx.write("tenants/t1/assets/a.zip", b"PK run one");
    fx.write("tenants/t1/assets/v2/a.zip", b"PK run two");
    fx.write("tenants/t1/assets/manifest.json", b"{}\n");
    fx.topup(10, "r1");
    fx.workorder(
        "w",
        &delivery_order("{package_zip: {asset: a.zip}, manifest_json: {asset: manifest.json}}"),
    );
    assert_eq!(fx.orchestrate(&[]).0, 0);
    std::fs::remove_file(fx.path(&format!("{FOLDER}/manifest.json"))).unwrap();
    std::fs::create_dir_all(fx.path(&format!("{FOLDER}/manifest.json/x"))).unwrap();

    fx.workorder(
        "w",
        &delivery_order("{package_zip: {asset: v2/a.zip}, manifest_json: {asset: manifest.json}}"),
    );
    let (code, sum, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 1, "its only step failed: {sum}\n{stderr}");
    let deliver = step_of(run_of(&sum, "w"), "deliver");
    assert_eq!(deliver["reason_slug"], "delivery_failed", "{sum}");
    assert_has(
        deliver["message"].as_str().unwrap_or_default(),
        "is a folder",
    );
    assert_eq!(fx.bytes(&format!("{FOLDER}/a.zip")), b"PK run one");
    assert_eq!(delivered_names(&fx), ["a.zip", "manifest.json"]);
    let refunds = fx.of_type("billing.jsonl", "REFUND");
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["reason_slug"], "delivery_failed");
    assert_eq!(fx.of_type("evidence.jsonl", "delivery_receipt").len(), 1);
}

/// The bytes read for each copy go to `as_read` before anything is renamed into place: the
/// step refuses bytes its producing step did not record (a package swapped after the
/// binding's check), and then the previous delivery stays whole and no staged file is left.
/// (The raced version against the real binary: hostile_tenants::a_package_swapped_while_it_is_delivered_is_delivered_only_as_recorded.)
#[test]
fn bytes_refused_as_read_are_never_renamed_into_place() {
    let tmp = temp_dir();
    let (zip, manifest) = inputs(tmp.path());
    let dest = tmp.path().join("deliveries/acme/wo-1/deliver");
    deliver_local(&at(&zip), None, &at(&dest)).expect("first delivery");
    let before = std::fs::read(dest.join("package.zip")).unwrap();
    std::fs::write(&zip, b"other bytes").unwrap();
    let want = sha256_hex(b"other bytes");
    let seen = std::cell::RefCell::new(Vec::new());
    let as_read = |input: &str, bytes: u64, sha256: &str| {
        seen.borrow_mut()
            .push((input.to_string(), bytes, sha256.to_string()));
        if input == "manifest_json" {
            Err(platform::builtin::StepFailure::module_failed(
                "not as recorded",
            ))
        } else {
            Ok(())
        }
    };
    let failure = platform::builtin::deliver_local_as_read(
        &at(&zip),
        Some(&at(&manifest)),
        &at(&dest),
        &as_read,
    )
    .expect_err("refused");
    assert_has(&failure.message, "not as recorded");
    let seen = seen.into_inner();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[0].0.as_str(), seen[0].1, seen[0].2.as_str()),
        ("package_zip", 11, want.as_str())
    );
    assert_eq!(seen[1].0, "manifest_json");
    // Nothing of the refused delivery is in the folder: the first one is whole.
    let names: Vec<String> = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["package.zip"], "{names:?}");
    assert_eq!(std::fs::read(dest.join("package.zip")).unwrap(), before);
}
