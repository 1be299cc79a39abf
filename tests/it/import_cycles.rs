//! No import cycles in src/: neither between files nor between top-level folders (ARCHITECTURE.md: data flows one way).
//!
//! An edge is a `use crate::…`, `use super::…` or `use self::…` item, or an inline
//! `crate::a::b` / `super::x` path, resolved to the longest file module it names. A folder's
//! own `mod`/re-export of its children is how Rust spells a folder, so a parent's bare
//! `mod x; pub use x::Y;` is not an edge; `#[cfg(test)]` code is left out.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;
type Graph = BTreeMap<Module, BTreeSet<Module>>;

/// Every `.rs` file below `src` as its module path (`ledger/mod.rs` → `[ledger]`) and text.
fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(src).sort_by_file_name() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(src).unwrap().with_extension("");
        let mut parts: Module = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts
            .last()
            .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
        {
            parts.pop();
        }
        out.insert(parts, std::fs::read_to_string(path).unwrap());
    }
    out
}

/// The code a build without tests compiles, without comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each path a `use` item names, its groups (`a::{b, c::{d}}`) expanded.
fn use_paths(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let plain = tree.split(" as ").next().unwrap_or(tree).trim();
        return vec![plain.trim_end_matches("::self").to_string()];
    };
    let prefix = tree[..open].trim_end_matches("::");
    // Text that only looks like a `use` item ("...; use one of: {}" in a string) may have
    // no closing brace after its opening one.
    let inner = match tree.rfind('}') {
        Some(close) if close > open => &tree[open + 1..close],
        _ => &tree[open + 1..],
    };
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    let items = items.into_iter().filter(|s| !s.trim().is_empty());
    items
        .flat_map(use_paths)
        .map(|p| match p.as_str() {
            "self" => prefix.to_string(),
            _ => format!("{prefix}::{p}"),
        })
        .collect()
}

/// Every path (`crate::a::b`, `super::x`, `self::y`) the code of one file names.
fn named_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for item in code.split(';') {
        let item = item.trim_start();
        // `pub use`, `pub(crate) use`, `pub(super) use`, ...
        let item = match item.strip_prefix("pub") {
            Some(rest) if rest.starts_with('(') => rest.split_once(')').map_or(rest, |r| r.1),
            Some(rest) => rest,
            None => item,
        };
        if let Some(tree) = item.trim_start().strip_prefix("use ") {
            out.extend(use_paths(tree).into_iter().filter(|p| {
                p.starts_with("crate::") || p.starts_with("super::") || p.starts_with("self::")
            }));
        }
    }
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    for (i, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        let before = code[..i].chars().next_back();
        if before.is_none_or(|c| !word(c)) {
            let end = code[i..]
                .find(|c: char| !word(c))
                .map_or(code.len(), |e| i + e);
            out.push(code[i..end].trim_end_matches(':').to_string());
        }
    }
    out
}

/// The file module a path from module `from` lands in: its longest prefix that is a file.
fn resolve(from: &Module, path: &str, files: &BTreeSet<Module>) -> Option<Module> {
    let mut segs = path.split("::").filter(|s| !s.is_empty());
    let mut full: Module = match segs.next()? {
        "crate" => Vec::new(),
        "self" => from.clone(),
        "super" => from[..from.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    for s in segs {
        match s {
            "super" => drop(full.pop()),
            _ => full.push(s.to_string()),
        }
    }
    (1..=full.len())
        .rev()
        .map(|n| full[..n].to_vec())
        .find(|m| files.contains(m))
}

/// Which file modules each file module names (itself and the crate root left out).
fn file_graph(src: &Path) -> Graph {
    let mods = modules(src);
    let files: BTreeSet<Module> = mods.keys().cloned().collect();
    let mut graph = Graph::new();
    for (m, text) in &mods {
        let targets = named_paths(&code(text))
            .iter()
            .filter_map(|p| resolve(m, p, &files))
            .filter(|t| t != m && !t.is_empty())
            .collect();
        graph.insert(m.clone(), targets);
    }
    graph
}

/// The same graph between top-level folders (and files) of src/.
fn folder_graph(files: &Graph) -> Graph {
    let mut graph = Graph::new();
    for (from, targets) in files {
        let Some(top) = from.first() else { continue };
        for t in targets {
            if t[0] != *top {
                let edges = graph.entry(vec![top.clone()]).or_default();
                edges.insert(vec![t[0].clone()]);
            }
        }
    }
    graph
}

/// Every cycle as its members: the modules that reach each other, from a reachability
/// closure per module (src/ has a few hundred files: no need for Tarjan's algorithm).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let reach = |from: &Module| {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![from.clone()]);
        while let Some(m) = todo.pop() {
            for t in graph.get(&m).into_iter().flatten() {
                if seen.insert(t.clone()) {
                    todo.push(t.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&Module, BTreeSet<Module>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut out: BTreeSet<Vec<String>> = BTreeSet::new();
    for (m, r) in &reached {
        let mut members: Vec<String> = r
            .iter()
            .filter(|o| reached.get(o).is_some_and(|back| back.contains(*m)))
            .map(|o| o.join("/"))
            .collect();
        if members.len() > 1 {
            members.sort();
            out.insert(members);
        }
    }
    out.into_iter().collect()
}

#[test]
fn src_has_no_import_cycle_between_files_or_folders() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = file_graph(&src);
    assert!(files.len() > 100, "src/ was read: {} files", files.len());
    let by_file = cycles(&files);
    let by_folder = cycles(&folder_graph(&files));
    assert!(
        by_file.is_empty() && by_folder.is_empty(),
        "import cycles: files {by_file:?}, folders {by_folder:?}; move what both sides need into a module both can use"
    );
}

#[test]
fn a_planted_cycle_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |rel: &str, text: &str| {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("lib.rs", "pub mod a;\npub mod b;\n");
    write("a/mod.rs", "pub mod x;\npub mod y;\n");
    write(
        "a/x.rs",
        "pub(super) use super::y::{self, Y};\n// use crate::b::B;\n",
    );
    write("a/y.rs", "pub fn f() { crate::a::x::g(); }\n");
    write(
        "b/mod.rs",
        "use crate::{a::y::Y as Z, c};\n#[cfg(test)]\nuse crate::a::x;\n",
    );
    let files = file_graph(src);
    assert_eq!(
        cycles(&files),
        vec![vec!["a/x".to_string(), "a/y".to_string()]]
    );
    assert!(cycles(&folder_graph(&files)).is_empty(), "b → a only");
    // a/x → b/p and b/q → a/y: no file reaches itself, but the folders do.
    write("a/x.rs", "pub fn g() { let _ = crate::b::p::P; }\n");
    write("a/y.rs", "pub struct Y;\n");
    write("b/mod.rs", "pub mod p;\npub mod q;\n");
    write("b/p.rs", "pub struct P;\n");
    write("b/q.rs", "pub use crate::a::y::Y;\n");
    let files = file_graph(src);
    assert!(cycles(&files).is_empty(), "{:?}", cycles(&files));
    let folders = cycles(&folder_graph(&files));
    assert_eq!(folders, vec![vec!["a".to_string(), "b".to_string()]]);
}
