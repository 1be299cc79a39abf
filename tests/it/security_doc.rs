//! The docs name the test that proves each claim: every test any docs/*.md names exists where the name says (a renamed, moved or deleted test fails here until the page follows).
use crate::support::fx::crate_root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The Rust source files under `dir`, by path relative to the crate root, with their text.
fn sources(root: &Path, dir: &str) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(root.join(dir))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let rel = e.path().strip_prefix(root).unwrap_or(e.path());
            (rel.display().to_string(), text)
        })
        .collect()
}

/// The tests of a source file: each `fn` that a `#[test]` (and perhaps more attributes)
/// precedes, and the two tests each `fuzz_target!` invocation makes.
fn tests_in(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        if *line != "#[test]" {
            continue;
        }
        let after = lines[i + 1..].iter().take(8);
        let signature = after
            .map(|l| l.trim_start_matches("pub "))
            .find(|l| !(l.starts_with("#[") || l.starts_with("//") || l.starts_with("#!")));
        if let Some(name) = signature.and_then(|l| l.strip_prefix("fn ")) {
            found.insert(ident_prefix(name).to_string());
        }
    }
    for call in text.split("fuzz_target!(").skip(1) {
        let mut args = call.split(',').map(str::trim);
        found.extend(args.by_ref().take(2).map(String::from));
    }
    found
}

/// The identifier `text` starts with.
fn ident_prefix(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// Every inline code span of a Markdown page (opened and closed by runs of as many
/// backticks, so spans that wrap across lines count), with the line it starts on.
fn code_spans(doc: &str) -> Vec<(String, usize)> {
    let bytes = doc.as_bytes();
    let run_at = |i: usize| bytes[i..].iter().take_while(|b| **b == b'`').count();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let run = run_at(i);
        let start = i + run;
        let mut close = None;
        let mut j = start;
        while j < bytes.len() {
            if bytes[j] == b'`' {
                let r = run_at(j);
                if r == run {
                    close = Some(j);
                    break;
                }
                j += r;
            } else {
                j += 1;
            }
        }
        let Some(end) = close else {
            i = start;
            continue;
        };
        let line = doc[..i].matches('\n').count() + 1;
        spans.push((doc[start..end].to_string(), line));
        i = end + run;
    }
    spans
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Names with four or more words that the docs cite bare and that are no test of this
/// repository: kernel symbols of the profiles in performance.md.
const OUTSIDE: [&str; 3] = [
    "_raw_spin_unlock_irqrestore",
    "find_get_block_common",
    "ext4_get_group_desc",
];

/// What is wrong with one name a page cites, if anything. A qualified name is a test
/// citation when it goes through `tests` (`a::b::tests::name`: a test of src/a/b.rs,
/// src/a/b/mod.rs or src/a/b/tests.rs) or starts with a file of tests/it (`file::name`: a
/// test of tests/it/file.rs); other qualified names are code. A bare name is checked when it
/// has four words or more: a test anywhere, else another thing this repository defines (a
/// function, a string literal such as a failpoint or a reason slug, a validate case).
fn problem(
    cited: &str,
    src: &BTreeMap<String, String>,
    tests: &BTreeMap<String, BTreeSet<String>>,
    root: &Path,
) -> Option<String> {
    let parts: Vec<&str> = cited.split("::").collect();
    let name = parts[parts.len() - 1];
    let is_test_of = |file: &str| tests.get(file).is_some_and(|t| t.contains(name));
    if let Some(at) = parts.iter().position(|p| *p == "tests") {
        let base = format!("src/{}", parts[..at].join("/"));
        let files = [
            format!("{base}.rs"),
            format!("{base}/mod.rs"),
            format!("{base}/tests.rs"),
        ];
        if at == parts.len() - 1 {
            // The tests module itself.
            let has = files[..2]
                .iter()
                .any(|f| src.get(f).is_some_and(|t| t.contains("mod tests")));
            return (!has).then(|| format!("no `mod tests` in {base}.rs or {base}/mod.rs"));
        }
        let has = files.iter().any(|f| is_test_of(f));
        return (!has).then(|| format!("no test {name} in {}", files.join(", ")));
    }
    if parts.len() >= 2 {
        let file = format!("tests/it/{}.rs", parts[0]);
        if !src.contains_key(&file) {
            return None;
        }
        let has = parts.len() == 2 && is_test_of(&file);
        return (!has).then(|| format!("no test {name} in {file}"));
    }
    if name.split('_').filter(|w| !w.is_empty()).count() < 4
        || tests.values().any(|t| t.contains(name))
    {
        return None;
    }
    let as_fn = format!("fn {name}(");
    let as_literal = format!("\"{name}\"");
    let defined = OUTSIDE.contains(&name)
        || src
            .values()
            .any(|t| t.contains(&as_fn) || t.contains(&as_literal))
        || root
            .join("tests/fixtures/validate/cases")
            .join(name)
            .is_dir();
    (!defined).then(|| format!("no test, function, string or validate case named {name}"))
}

#[test]
fn every_test_the_docs_name_exists_where_they_say() {
    let root = crate_root();
    let mut src = sources(root, "tests");
    src.extend(sources(root, "src"));
    let tests: BTreeMap<String, BTreeSet<String>> =
        src.iter().map(|(f, t)| (f.clone(), tests_in(t))).collect();
    let all_tests: BTreeSet<&String> = tests.values().flatten().collect();
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    let (mut wrong, mut cited) = (Vec::new(), BTreeMap::<String, usize>::new());
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        let page = doc.file_name().unwrap().to_string_lossy().into_owned();
        for (span, line) in code_spans(&text) {
            if !span.split("::").all(is_ident) {
                continue;
            }
            match problem(&span, &src, &tests, root) {
                Some(why) => wrong.push(format!("docs/{page}:{line}: `{span}`: {why}")),
                None if all_tests.contains(&span.rsplit("::").next().unwrap().to_string()) => {
                    *cited.entry(page.clone()).or_default() += 1;
                }
                None => {}
            }
        }
    }
    // The parser found what the pages cite (security.md alone cites tests over 200 times).
    assert!(
        cited.get("security.md").is_some_and(|n| *n >= 200),
        "{cited:?}"
    );
    assert!(cited.len() >= 5, "pages citing tests: {cited:?}");
    assert!(
        wrong.is_empty(),
        "the docs name tests that do not exist where they say:\n{}",
        wrong.join("\n")
    );
}
