//! docs/security.md names the test that proves each boundary: every test it names exists (a renamed or deleted test fails here until the page follows).
use crate::support::fx::crate_root;
use std::path::Path;

/// The Rust source files under `dir`, with their text.
fn sources(dir: &Path) -> Vec<(String, String)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            (e.path().display().to_string(), text)
        })
        .collect()
}

/// `a::b::name` paths written in backticks: the page's way of naming a test.
fn named_tests(doc: &str) -> Vec<String> {
    doc.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.contains("::")
                && s.split("::").all(|p| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                })
        })
        .map(String::from)
        .collect()
}

#[test]
fn every_test_security_md_names_exists() {
    let root = crate_root();
    let doc = std::fs::read_to_string(root.join("docs/security.md")).unwrap();
    let mut all = sources(&root.join("tests/it"));
    all.extend(sources(&root.join("src")));
    let names = named_tests(&doc);
    assert!(names.len() >= 50, "the page names {} tests", names.len());
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| {
            let last = n.rsplit("::").next().unwrap_or_default();
            // A test fn, a macro-generated one (named as an argument), or a module path.
            let as_fn = format!("fn {last}(");
            let as_arg = format!("{last},");
            let as_mod = format!("mod {last}");
            !all.iter()
                .any(|(_, t)| t.contains(&as_fn) || t.contains(&as_arg) || t.contains(&as_mod))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/security.md names tests that do not exist: {missing:?}"
    );
}
