//! deliver_local against a real file system: copies, verifies, receipts and failures.
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
