//! Fuzzing of ZIP and manifest building (`builtin::package::build_package`) on random trees
//! with random names — non-UTF-8 bytes, control characters, backslashes, drive letters,
//! Unicode, long names, case collisions, symlinks — and random `as_path`s. It refuses or
//! succeeds, never panics, leaves nothing half-written, and what it builds is deterministic
//! (same bytes again, and from a copy of the tree elsewhere) and agrees with its manifests.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::fuzz;
use crate::support::fx::temp_dir;

use crate::support::fx::copy_tree;
use fuzz::fuzz_target;
use platform::beneath::Beneath;
use platform::builtin::package::{build_package, PackSource};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Outcomes of the timed loop: packages built, packages refused.
static BUILT: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone)]
struct Node {
    path: Vec<Vec<u8>>,
    content: Vec<u8>,
    link: bool,
}

#[derive(Debug, Clone)]
struct Source {
    pick: usize,
    whole: bool,
    as_path: String,
}

#[derive(Debug, Clone)]
struct Case {
    nodes: Vec<Node>,
    sources: Vec<Source>,
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => "[a-z0-9_-]{1,8}(\\.(txt|json|zip|png|gz|csv|TXT))?".prop_map(String::into_bytes),
        2 => "\\PC{1,10}".prop_map(String::into_bytes),
        3 => proptest::sample::select(vec![
            b"bad\xff.txt".to_vec(),
            b"\xc3\x28".to_vec(),
            b"bell\x07".to_vec(),
            b"tab\there".to_vec(),
            b"new\nline".to_vec(),
            b"back\\slash".to_vec(),
            b"C:".to_vec(),
            b"a:b".to_vec(),
            b" space ".to_vec(),
            b".hidden".to_vec(),
            b"...".to_vec(),
            b"A.txt".to_vec(),
            b"a.txt".to_vec(),
            "\u{202e}txt.exe".as_bytes().to_vec(),
            "caf\u{e9}".as_bytes().to_vec(),
            "cafe\u{301}".as_bytes().to_vec(),
            vec![b'n'; 255],
        ]),
    ]
    .prop_map(|mut n| {
        n.retain(|&b| b != b'/' && b != 0);
        if n.is_empty() || n == b"." || n == b".." {
            n = b"x".to_vec();
        }
        n
    })
}

fn as_path() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z]{1,6}(/[a-z]{1,6}){0,2}",
        2 => proptest::sample::select(vec![
            "", "/abs", "../x", "a/../b", "a//b", "a/", ".", "a/./b", "a\\b", "C:", "C:/x",
            "a:b", "x\u{7}y", "\u{e9}/\u{fc}", " lead", "trail ", "a/b/c/d/e/f/g", "same", "same",
            "same/sub", "-", "~",
        ])
        .prop_map(str::to_string),
        1 => "\\PC{0,12}",
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let node = (
        proptest::collection::vec(name(), 1..4),
        prop_oneof![
            3 => proptest::collection::vec(any::<u8>(), 0..64),
            1 => (any::<u8>(), 0..3000usize).prop_map(|(b, n)| vec![b; n]),
        ],
        proptest::bool::weighted(0.05),
    )
        .prop_map(|(path, content, link)| Node {
            path,
            content,
            link,
        });
    let source = (any::<usize>(), proptest::bool::weighted(0.2), as_path()).prop_map(
        |(pick, whole, as_path)| Source {
            pick,
            whole,
            as_path,
        },
    );
    (
        proptest::collection::vec(node, 0..10),
        proptest::collection::vec(source, 1..4),
    )
        .prop_map(|(nodes, sources)| Case { nodes, sources })
}

/// Create the tree (nodes that cannot exist next to earlier ones are skipped).
fn materialise(root: &Path, nodes: &[Node]) {
    std::fs::create_dir_all(root).unwrap();
    for n in nodes {
        let mut p = root.to_path_buf();
        for c in &n.path {
            p.push(OsStr::from_bytes(c));
        }
        if let Some(parent) = p.parent() {
            if std::fs::create_dir_all(parent).is_err() {
                continue;
            }
        }
        if p.exists() || p.symlink_metadata().is_ok() {
            continue;
        }
        if n.link {
            let _ = std::os::unix::fs::symlink("/etc/hostname", &p);
        } else {
            let _ = std::fs::write(&p, &n.content);
        }
    }
}

fn sources(root: &Path, c: &Case) -> Vec<PackSource> {
    let mut top: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    top.sort();
    c.sources
        .iter()
        .map(|s| PackSource {
            as_path: s.as_path.clone(),
            source: Beneath::in_parent(&if s.whole || top.is_empty() {
                root.to_path_buf()
            } else {
                top[s.pick % top.len()].clone()
            }),
        })
        .collect()
}

struct Built {
    zip: Vec<u8>,
    json: Vec<u8>,
    csv: Vec<u8>,
}

fn build(
    srcs: &[PackSource],
    out: &Path,
) -> Result<(Built, platform::builtin::PackageSummary), String> {
    std::fs::create_dir_all(out).unwrap();
    let zip = out.join("package.zip");
    let json = out.join("manifest.json");
    let csv = out.join("manifest.csv");
    match build_package(srcs, &zip, Some(&json), Some(&csv)) {
        Ok(summary) => Ok((
            Built {
                zip: std::fs::read(&zip).unwrap(),
                json: std::fs::read(&json).unwrap(),
                csv: std::fs::read(&csv).unwrap(),
            },
            summary,
        )),
        Err(e) => {
            assert!(!e.message.is_empty());
            let left: Vec<_> = std::fs::read_dir(out)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(
                left.is_empty(),
                "a refused package left {left:?} ({})",
                e.message
            );
            Err(e.message)
        }
    }
}

fn check(c: &Case) {
    let t = temp_dir();
    let tree = t.path().join("tree");
    materialise(&tree, &c.nodes);
    let srcs = sources(&tree, c);
    let first = build(&srcs, &t.path().join("out1"));
    let again = build(&srcs, &t.path().join("out2"));
    let elsewhere = t.path().join("elsewhere/deeper/tree");
    copy_tree(&tree, &elsewhere);
    let moved: Vec<PackSource> = sources(&elsewhere, c);
    let moved = build(&moved, &t.path().join("out3"));
    match (first, again, moved) {
        (Ok((a, summary)), Ok((b, _)), Ok((m, _))) => {
            assert!(
                a.zip == b.zip && a.json == b.json && a.csv == b.csv,
                "not deterministic"
            );
            assert!(
                a.zip == m.zip,
                "the package depends on where its sources are"
            );
            check_zip(&a, &summary);
            BUILT.fetch_add(1, Ordering::Relaxed);
        }
        (Err(a), Err(b), Err(_)) => {
            assert_eq!(a, b);
            REFUSED.fetch_add(1, Ordering::Relaxed);
        }
        (a, b, m) => panic!(
            "the same sources gave different answers: {:?} / {:?} / {:?}",
            a.err(),
            b.err(),
            m.err()
        ),
    }
}

fn check_zip(b: &Built, summary: &platform::builtin::PackageSummary) {
    assert_eq!(summary.zip_bytes, b.zip.len() as u64);
    assert_eq!(summary.zip_sha256, hex(&Sha256::digest(&b.zip)));
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(b.zip.clone())).unwrap();
    assert_eq!(z.len(), summary.files.len());
    let mut prev: Option<String> = None;
    for (i, f) in summary.files.iter().enumerate() {
        let mut e = z.by_index(i).unwrap();
        let name = e.name().unwrap().to_string();
        assert_eq!(name, f.path);
        assert!(
            prev.as_deref().is_none_or(|p| p < name.as_str()),
            "entries sorted and unique"
        );
        for part in name.split('/') {
            assert!(!part.is_empty() && part != "." && part != "..", "{name:?}");
            assert!(
                !part.contains('\\') && !part.chars().any(char::is_control),
                "{name:?}"
            );
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        assert_eq!(data.len() as u64, f.bytes);
        assert_eq!(hex(&Sha256::digest(&data)), f.sha256);
        prev = Some(name);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&b.json).unwrap();
    assert_eq!(
        manifest["files"].as_array().unwrap().len(),
        summary.files.len()
    );
    assert_eq!(
        String::from_utf8(b.csv.clone()).unwrap().lines().count(),
        summary.files.len() + 1
    );
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

const CASES: u32 = 256;

fuzz_target!(
    packaging_random_trees_refuses_or_succeeds_deterministically,
    packaging_timed,
    "zip_manifest_build",
    CASES,
    case(),
    check,
    then: || eprintln!(
        "fuzz: zip_manifest_build: {} built, {} refused (both sides exercised)",
        BUILT.load(Ordering::Relaxed),
        REFUSED.load(Ordering::Relaxed)
    )
);
