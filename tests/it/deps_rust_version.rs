//! Cargo.toml's `rust-version` is true: it equals the highest `rust-version` among the packages Cargo.lock pins, read from their registry sources.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// A `[[package]]` entry of Cargo.lock.
struct Locked {
    name: String,
    version: String,
    from_registry: bool,
    /// `name` or `name version` (the lock's spelling when two versions are locked).
    dependencies: Vec<String>,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn quoted(value: &str) -> String {
    value.trim().trim_matches('"').to_string()
}

/// Cargo.lock is generated TOML of one shape: `[[package]]` tables of `key = "value"` lines
/// and a multi-line `dependencies = [ "...", ]` array.
fn parse_lock(text: &str) -> Vec<Locked> {
    let mut out: Vec<Locked> = Vec::new();
    let mut in_deps = false;
    for line in text.lines().map(str::trim) {
        if line == "[[package]]" {
            out.push(Locked {
                name: String::new(),
                version: String::new(),
                from_registry: false,
                dependencies: Vec::new(),
            });
            in_deps = false;
            continue;
        }
        let Some(pkg) = out.last_mut() else { continue };
        if in_deps {
            if line == "]" {
                in_deps = false;
            } else {
                pkg.dependencies.push(quoted(line.trim_end_matches(',')));
            }
            continue;
        }
        match line.split_once(" = ") {
            Some(("name", v)) => pkg.name = quoted(v),
            Some(("version", v)) => pkg.version = quoted(v),
            Some(("source", v)) => pkg.from_registry = quoted(v).starts_with("registry+"),
            Some(("dependencies", "[")) => in_deps = true,
            _ => {}
        }
    }
    out
}

/// The `rust-version` of a manifest's `[package]` table (published manifests are normalised:
/// never inherited from a workspace).
fn rust_version(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            if let Some(("rust-version", v)) = line.split_once(" = ") {
                return Some(quoted(v));
            }
        }
    }
    None
}

/// "1.91" and "1.91.0" compare equal; a malformed version fails the test with its text.
fn numeric(version: &str) -> (u32, u32, u32) {
    let mut parts = version.split('.').map(|p| {
        p.parse::<u32>()
            .unwrap_or_else(|_| panic!("rust-version `{version}` is not N.N[.N]"))
    });
    let major = parts.next().unwrap_or(0);
    (major, parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Every `registry/src/<registry>/` folder of the Cargo home: sources are unpacked there for
/// each package this machine built.
fn registry_sources() -> Vec<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .expect("neither CARGO_HOME nor HOME is set");
    let src = home.join("registry/src");
    let dirs = std::fs::read_dir(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    dirs.map(|e| e.unwrap().path()).collect()
}

fn manifest_of(pkg: &Locked, sources: &[PathBuf]) -> Option<String> {
    let dir = format!("{}-{}", pkg.name, pkg.version);
    sources
        .iter()
        .find_map(|s| std::fs::read_to_string(s.join(&dir).join("Cargo.toml")).ok())
}

/// The minimum Rust a locked tree needs is the highest minimum among its packages; a lower
/// `rust-version` lets Cargo's MSRV-aware resolver and packagers pick a toolchain that fails.
/// Packages of other targets (Windows, macOS, wasm) are never unpacked here and so are not
/// read; every direct dependency must be, so the check never passes on an empty registry.
#[test]
fn rust_version_is_the_highest_among_the_locked_packages() {
    let declared = rust_version(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap())
        .expect("Cargo.toml declares no rust-version");
    let lock = parse_lock(&std::fs::read_to_string(root().join("Cargo.lock")).unwrap());
    let sources = registry_sources();
    let mut read = Vec::new();
    let mut unread = Vec::new();
    for pkg in lock.iter().filter(|p| p.from_registry) {
        match manifest_of(pkg, &sources) {
            Some(manifest) => read.push((pkg, rust_version(&manifest))),
            None => unread.push(format!("{} {}", pkg.name, pkg.version)),
        }
    }
    let own = lock
        .iter()
        .find(|p| p.name == "platform" && !p.from_registry);
    for dep in &own
        .expect("Cargo.lock has no platform package")
        .dependencies
    {
        let name = dep.split(' ').next().unwrap_or(dep);
        assert!(
            read.iter().any(|(p, _)| p.name == name),
            "direct dependency `{dep}` has no unpacked source under {sources:?}: run `cargo fetch --locked` (scripts/setup-test-deps.sh does)"
        );
    }
    let highest = read
        .iter()
        .filter_map(|(_, rv)| rv.as_deref())
        .max_by_key(|rv| numeric(rv))
        .expect("no locked package declares a rust-version");
    let setters: Vec<String> = read
        .iter()
        .filter(|(_, rv)| rv.as_deref().map(numeric) == Some(numeric(highest)))
        .map(|(p, _)| format!("{} {}", p.name, p.version))
        .collect();
    assert_eq!(
        numeric(&declared),
        numeric(highest),
        "Cargo.toml says rust-version = \"{declared}\"; the locked tree needs {highest} ({}). \
         Packages not unpacked here (other targets): {unread:?}",
        setters.join(", ")
    );
}

/// The parsers above read what Cargo writes, not a shape they invented.
#[test]
fn lock_and_manifest_parsers_read_cargo_s_shapes() {
    let lock = parse_lock(
        "version = 4\n\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n\
         source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\
         checksum = \"00\"\ndependencies = [\n \"b 0.2.0\",\n \"c\",\n]\n\n\
         [[package]]\nname = \"me\"\nversion = \"0.1.0\"\n",
    );
    assert_eq!(lock.len(), 2);
    assert_eq!(
        (lock[0].name.as_str(), lock[0].version.as_str()),
        ("a", "1.0.0")
    );
    assert!(lock[0].from_registry && !lock[1].from_registry);
    assert_eq!(lock[0].dependencies, ["b 0.2.0", "c"]);
    let manifest = "[package]\nname = \"a\"\nrust-version = \"1.91\"\n[dependencies.x]\n\
                    rust-version = \"9.9\"\n";
    assert_eq!(rust_version(manifest).as_deref(), Some("1.91"));
    assert_eq!(
        rust_version("[dependencies]\nrust-version = \"1.0\"\n"),
        None
    );
    assert!(numeric("1.91") == numeric("1.91.0") && numeric("1.91") > numeric("1.89.3"));
}
