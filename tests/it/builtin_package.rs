//! package_std's core against real files: determinism, layout, manifests and the refusals.
// Tests fail by panicking; expect() carries the context.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::assert_has;
use crate::support::fx::temp_dir;
use platform::beneath::Beneath;
use platform::builtin::package::validate_as_path;
use platform::builtin::{build_package, PackSource, PackageSummary};
use platform::digest::sha256_hex;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Names chosen to catch sorting by anything but bytes: case, '-' < '.' < '/', non-ASCII,
/// an empty file, a stored (already-compressed) file and one that spans deflate blocks.
fn sample_tree(root: &Path) {
    let big: Vec<u8> = (0..300_000u32)
        .flat_map(|i| format!("row {i},{}\n", i % 97).into_bytes())
        .collect();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("B.txt", b"upper\n".to_vec()),
        ("a.txt", b"lower\n".to_vec()),
        ("a-b.txt", b"dash\n".to_vec()),
        ("a/inner.csv", b"x,y\n1,2\n".to_vec()),
        ("a/deeper/z.json", b"{\"k\": 1}\n".to_vec()),
        ("\u{e9}t\u{e9}.txt", "\u{e9}\n".as_bytes().to_vec()),
        ("empty.txt", Vec::new()),
        ("image.PNG", vec![0x89, b'P', b'N', b'G', 1, 2, 3, 4]),
        ("big.csv", big),
    ];
    for (path, bytes) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

fn sources(dir: &Path, report: &Path) -> Vec<PackSource> {
    vec![
        PackSource {
            as_path: "results".into(),
            source: Beneath::in_parent(dir),
        },
        PackSource {
            as_path: "report.md".into(),
            source: Beneath::in_parent(report),
        },
    ]
}

struct Built {
    summary: PackageSummary,
    zip: Vec<u8>,
    json: Vec<u8>,
    csv: String,
    _out: tempfile::TempDir,
}

fn build(srcs: &[PackSource]) -> Built {
    let out = temp_dir();
    let zip = out.path().join("package.zip");
    let json = out.path().join("manifest.json");
    let csv = out.path().join("manifest.csv");
    let summary = build_package(srcs, &zip, Some(&json), Some(&csv)).expect("package builds");
    Built {
        summary,
        zip: std::fs::read(&zip).unwrap(),
        json: std::fs::read(&json).unwrap(),
        csv: std::fs::read_to_string(&csv).unwrap(),
        _out: out,
    }
}

fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = temp_dir();
    let dir = tmp.path().join("outputs");
    sample_tree(&dir);
    let report = tmp.path().join("report.md");
    std::fs::write(&report, "# Report\n").unwrap();
    (tmp, dir, report)
}

#[test]
fn same_inputs_give_the_same_bytes_seconds_apart_and_from_another_folder() {
    let (_tmp, dir, report) = fixture();
    let first = build(&sources(&dir, &report));
    // Past the 2-second resolution of ZIP timestamps, so a leaked clock would show.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let second = build(&sources(&dir, &report));
    assert_eq!(first.zip, second.zip, "zip bytes differ between builds");
    assert_eq!(first.json, second.json);
    assert_eq!(first.csv, second.csv);

    // The same tree copied elsewhere (new inodes, new mtimes) packs to the same bytes.
    let (_tmp2, dir2, report2) = fixture();
    let third = build(&sources(&dir2, &report2));
    assert_eq!(
        first.zip, third.zip,
        "zip bytes depend on the source folder"
    );

    assert_eq!(first.summary.zip_bytes, first.zip.len() as u64);
    assert_eq!(first.summary.zip_sha256, sha256_hex(&first.zip));
}

#[test]
fn a_content_change_changes_the_bytes() {
    let (_tmp, dir, report) = fixture();
    let before = build(&sources(&dir, &report));
    std::fs::write(dir.join("a/inner.csv"), b"x,y\n1,3\n").unwrap();
    let after = build(&sources(&dir, &report));
    assert_ne!(before.zip, after.zip);
    assert_ne!(before.summary.zip_sha256, after.summary.zip_sha256);
}

#[test]
fn entries_are_sorted_pinned_and_hold_the_source_bytes() {
    let (_tmp, dir, report) = fixture();
    let built = build(&sources(&dir, &report));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(built.zip.clone())).unwrap();
    assert!(archive.comment().is_empty());

    let names: Vec<String> = archive
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are not in byte order");
    assert_eq!(
        names,
        [
            "report.md",
            "results/B.txt",
            "results/a-b.txt",
            "results/a.txt",
            "results/a/deeper/z.json",
            "results/a/inner.csv",
            "results/big.csv",
            "results/empty.txt",
            "results/image.PNG",
            "results/\u{e9}t\u{e9}.txt",
        ]
    );

    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        assert!(!entry.is_dir(), "{name}: directory entry");
        let when = entry.last_modified().unwrap();
        assert_eq!(
            (
                when.year(),
                when.month(),
                when.day(),
                when.hour(),
                when.minute(),
                when.second()
            ),
            (1980, 1, 1, 0, 0, 0),
            "{name}: timestamp"
        );
        assert_eq!(entry.system(), zip::System::Unix, "{name}");
        assert_eq!(entry.unix_mode().map(|m| m & 0o7777), Some(0o644), "{name}");
        assert!(
            entry.extra_data().is_none_or(|d| d.is_empty()),
            "{name}: extra field"
        );
        assert!(entry.comment().is_empty(), "{name}: comment");
        let expected_method = if name.ends_with(".PNG") || name.ends_with("empty.txt") {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        assert_eq!(entry.compression(), expected_method, "{name}");

        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        let source = match name.strip_prefix("results/") {
            Some(rel) => dir.join(rel),
            None => report.clone(),
        };
        assert_eq!(
            data,
            std::fs::read(&source).unwrap(),
            "{name}: bytes differ"
        );
    }
}

#[test]
fn manifests_list_every_file_with_size_and_digest() {
    let (_tmp, dir, report) = fixture();
    let built = build(&sources(&dir, &report));

    let json: serde_json::Value = serde_json::from_slice(&built.json).unwrap();
    let files = json["files"].as_array().unwrap();
    assert_eq!(files.len(), built.summary.files.len());
    for (row, entry) in files.iter().zip(&built.summary.files) {
        assert_eq!(row["path"], entry.path.as_str());
        assert_eq!(row["bytes"], entry.bytes);
        assert_eq!(row["sha256"], entry.sha256.as_str());
        let source = match entry.path.strip_prefix("results/") {
            Some(rel) => dir.join(rel),
            None => report.clone(),
        };
        let bytes = std::fs::read(source).unwrap();
        assert_eq!(entry.bytes, bytes.len() as u64, "{}", entry.path);
        assert_eq!(entry.sha256, sha256_hex(&bytes), "{}", entry.path);
    }
    assert_eq!(json["package"]["file"], "package.zip");
    assert_eq!(json["package"]["bytes"], built.summary.zip_bytes);
    assert_eq!(json["package"]["sha256"], built.summary.zip_sha256.as_str());

    let mut lines = built.csv.lines();
    assert_eq!(lines.next(), Some("path,bytes,sha256"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), built.summary.files.len());
    for (row, entry) in rows.iter().zip(&built.summary.files) {
        assert_eq!(
            *row,
            format!("{},{},{}", entry.path, entry.bytes, entry.sha256)
        );
    }
}

#[test]
fn csv_quotes_paths_that_need_it() {
    let tmp = temp_dir();
    let dir = tmp.path().join("d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a,b \"c\".txt"), b"1").unwrap();
    let built = build(&[PackSource {
        as_path: "x".into(),
        source: Beneath::in_parent(&dir),
    }]);
    let row = built.csv.lines().nth(1).unwrap();
    assert!(row.starts_with("\"x/a,b \"\"c\"\".txt\",1,"), "{row}");
}

#[test]
fn a_directory_is_added_recursively_under_its_as_path() {
    let tmp = temp_dir();
    let dir = tmp.path().join("out");
    std::fs::create_dir_all(dir.join("sub/deep")).unwrap();
    std::fs::create_dir_all(dir.join("empty-dir")).unwrap();
    std::fs::write(dir.join("top.txt"), b"t").unwrap();
    std::fs::write(dir.join("sub/deep/leaf.txt"), b"l").unwrap();
    let built = build(&[PackSource {
        as_path: "deliverable/data".into(),
        source: Beneath::in_parent(&dir),
    }]);
    let paths: Vec<&str> = built
        .summary
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "deliverable/data/sub/deep/leaf.txt",
            "deliverable/data/top.txt"
        ]
    );
}

fn build_err(srcs: &[PackSource]) -> platform::Error {
    let out = temp_dir();
    let zip = out.path().join("package.zip");
    let err = build_package(srcs, &zip, None, None).expect_err("package must be refused");
    assert!(!zip.exists(), "a refused package left {}", zip.display());
    err
}

#[test]
fn parent_and_absolute_as_paths_are_refused() {
    let (_tmp, _dir, report) = fixture();
    for bad in [
        "../escape.md",
        "/etc/report.md",
        "a/../../b",
        "a//b",
        "a/./b",
        "",
        "a\\b",
    ] {
        let err = build_err(&[PackSource {
            as_path: bad.into(),
            source: Beneath::in_parent(&report.clone()),
        }]);
        assert!(err.message.contains("as_path"), "{bad:?}: {}", err.message);
        assert!(validate_as_path(bad).is_err());
    }
}

#[test]
fn a_symlink_in_a_source_tree_is_refused_and_named() {
    let (tmp, dir, report) = fixture();
    let link = dir.join("a/link.txt");
    std::os::unix::fs::symlink(&report, &link).unwrap();
    let err = build_err(&sources(&dir, &report));
    assert_has(&err.message, "symbolic link");
    assert!(
        err.message.contains(&link.display().to_string()),
        "{}",
        err.message
    );

    // A source that is itself a link is refused too, even to a file inside the tree.
    let top_link = tmp.path().join("top-link");
    std::os::unix::fs::symlink(&report, &top_link).unwrap();
    let err = build_err(&[PackSource {
        as_path: "r.md".into(),
        source: Beneath::in_parent(&top_link),
    }]);
    assert_has(&err.message, "symbolic link");
}

#[test]
fn two_files_at_one_name_are_refused_naming_both_sources() {
    let (_tmp, dir, report) = fixture();
    let clash = PackSource {
        as_path: "results/a.txt".into(),
        source: Beneath::in_parent(&report.clone()),
    };
    let mut srcs = sources(&dir, &report);
    srcs.push(clash);
    let err = build_err(&srcs);
    assert_has(&err.message, "'results/a.txt'");
    assert!(
        err.message
            .contains(&dir.join("a.txt").display().to_string()),
        "{}",
        err.message
    );
    assert!(
        err.message.contains(&report.display().to_string()),
        "{}",
        err.message
    );
}

#[test]
fn a_name_that_is_both_file_and_directory_is_refused() {
    let (_tmp, dir, report) = fixture();
    let err = build_err(&[
        PackSource {
            as_path: "results".into(),
            source: Beneath::in_parent(&dir.clone()),
        },
        PackSource {
            as_path: "results/a".into(),
            source: Beneath::in_parent(&report.clone()),
        },
    ]);
    assert_has(&err.message, "both a file");
}

#[test]
fn a_package_inside_its_own_source_is_refused() {
    let (_tmp, dir, report) = fixture();
    let zip = dir.join("package.zip");
    let err = build_package(&sources(&dir, &report), &zip, None, None)
        .expect_err("package inside its source");
    assert_has(&err.message, "inside its own source");
}

#[test]
fn an_empty_source_list_makes_an_empty_but_valid_zip() {
    let built = build(&[]);
    let archive = zip::ZipArchive::new(std::io::Cursor::new(built.zip.clone())).unwrap();
    assert_eq!(archive.len(), 0);
    assert_eq!(
        built.summary.zip_bytes, 22,
        "just the end-of-central-directory record"
    );
    assert!(built.summary.files.is_empty());
}

/// Pins the bytes themselves, not just their stability: if a zip, flate2 or zlib-rs
/// upgrade (or a change here) alters the output, every package's digest changes and the
/// publisher would see "new" artifacts. Update the constant only on purpose, and say so
/// in docs/delivery.md.
#[test]
fn the_format_is_pinned_across_builds_of_the_platform() {
    let tmp = temp_dir();
    let dir = tmp.path().join("d");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a.txt"), "hello, package\n".repeat(100)).unwrap();
    std::fs::write(dir.join("sub/b.csv"), "x,y\n1,2\n").unwrap();
    std::fs::write(dir.join("empty"), b"").unwrap();
    std::fs::write(dir.join("pic.png"), [0x89, b'P', b'N', b'G']).unwrap();
    let built = build(&[PackSource {
        as_path: "out".into(),
        source: Beneath::in_parent(&dir),
    }]);
    assert_eq!(
        built.summary.zip_sha256,
        "ad85528a599538ffd95336527aa5c0643154047329b05e1747a49b7330801766",
        "package bytes changed ({} bytes)",
        built.summary.zip_bytes
    );
}

/// `build_package_as_recorded` packs the recorded files or nothing: a file whose bytes, size
/// or presence differ from its recorded entry fails the build, and neither the ZIP (nor its
/// temporary file) nor a manifest is left; the recorded files themselves give the very bytes
/// `build_package` gives.
#[test]
fn only_the_recorded_files_are_packed_or_nothing_is_kept() {
    use platform::builtin::package::build_package_as_recorded;
    use platform::builtin::ManifestEntry;
    let (_tmp, dir, report) = fixture();
    let srcs = sources(&dir, &report);
    let good = build(&srcs);
    let attempt = |recorded: &[ManifestEntry]| {
        let out = temp_dir();
        let (zip, json) = (out.path().join("package.zip"), out.path().join("m.json"));
        let built = build_package_as_recorded(&srcs, recorded, &zip, Some(&json), None);
        let left: Vec<_> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let zip_bytes = std::fs::read(&zip).ok();
        (built, left, zip_bytes)
    };
    // In another order than the ZIP's: the entries are compared by name.
    let mut recorded = good.summary.files.clone();
    recorded.reverse();
    let (built, _, zip) = attempt(&recorded);
    assert_eq!(built.unwrap(), good.summary);
    assert_eq!(zip.unwrap(), good.zip);
    type Change = fn(&mut Vec<ManifestEntry>);
    let cases: [(&str, Change, &str); 4] = [
        (
            "digest",
            |r| r[0].sha256 = sha256_hex(b"other bytes"),
            "changed after it was checked",
        ),
        ("size", |r| r[0].bytes += 1, "its step recorded"),
        (
            "unrecorded",
            |r| drop(r.remove(0)),
            "was recorded by no step",
        ),
        (
            "missing",
            |r| {
                r.push(ManifestEntry {
                    path: "results/zzz.txt".into(),
                    bytes: 1,
                    sha256: sha256_hex(b"z"),
                })
            },
            "is no longer there",
        ),
    ];
    for (what, change, says) in cases {
        let mut recorded = good.summary.files.clone();
        change(&mut recorded);
        let (built, left, _) = attempt(&recorded);
        let err = built.expect_err(what);
        assert_has(&err.message, says);
        assert_has(&err.message, "nothing was packaged");
        assert!(left.is_empty(), "{what}: left {left:?}");
    }
}

/// The bound package_std compares with the 4 GiB cap before its step is charged is never
/// below what is then written (ZIP and both manifests), for incompressible data that deflate
/// grows, stored and empty files, many small files and long names; and it stays close.
#[test]
fn the_size_bound_known_before_packing_is_never_below_the_package() {
    use platform::builtin::package::max_package_bytes;
    let tmp = temp_dir();
    let dir = tmp.path().join("d");
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut noise = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    };
    let long = "n".repeat(200);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("noise.bin".into(), noise(3_000_000)),
        ("noise.zip".into(), noise(1_000_000)),
        ("empty.txt".into(), Vec::new()),
        (format!("{long}/{long}.csv"), b"a,b\n".repeat(1000)),
    ];
    for i in 0..300 {
        files.push((format!("small/{i}.json"), noise(i)));
    }
    for (path, bytes) in &files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let built = build(&[PackSource {
        as_path: "out".into(),
        source: Beneath::in_parent(&dir),
    }]);
    let written = (built.zip.len() + built.json.len() + built.csv.len()) as u64;
    let bound = max_package_bytes(&built.summary.files, Path::new("package.zip"));
    assert!(written <= bound, "{written} written, bound {bound}");
    // The margins: 148 bytes of headers and 1 KiB of deflate a file, 1/2048 of the data.
    let slack = 304 * (148 + 1024) + 4_000_000 / 2048 + 100_000;
    assert!(bound - written < slack, "{written} written, bound {bound}");
}
