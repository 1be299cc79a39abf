//! The JSON Schemas for editors: `platform schema --write DIR` writes each with its stable `$id` and a description on every property, and every example file names the schema it follows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::fx::{crate_root, platform_in, temp_dir};
use crate::support::Transcript;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The `$id` prefix (docs/formats.md "Editors"): a name, never fetched.
const ID_BASE: &str = "https://platform.invalid/schemas/v1/";

/// Each `platform schema` name and the file `--write` writes it to.
const SCHEMAS: [(&str, &str); 8] = [
    ("module", "module.schema.json"),
    ("workorder", "workorder.schema.json"),
    ("tenant", "tenant.schema.json"),
    ("registry", "registry.schema.json"),
    ("iam", "iam.schema.json"),
    ("runtime-profile", "runtime-profile.schema.json"),
    ("ledger", "ledger.schema.json"),
    ("catalog", "catalog.schema.json"),
];

fn root() -> &'static Path {
    crate_root()
}

fn platform(args: &[&str]) -> Output {
    platform_in(root()).args(args).output().unwrap()
}

fn write_schemas(dir: &Path) -> Output {
    platform(&["schema", "--write", dir.to_str().unwrap()])
}

/// Every property schema under every `properties` map of `doc`, by JSON pointer.
fn properties(doc: &Value, pointer: &str, out: &mut Vec<(String, Value)>) {
    match doc {
        Value::Object(map) => {
            for (key, value) in map {
                let here = format!("{pointer}/{key}");
                if key == "properties" {
                    if let Value::Object(props) = value {
                        for (name, prop) in props {
                            out.push((format!("{here}/{name}"), prop.clone()));
                        }
                    }
                }
                properties(value, &here, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                properties(item, &format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn has_description(schema: &Value) -> bool {
    schema
        .get("description")
        .and_then(Value::as_str)
        .is_some_and(|d| !d.trim().is_empty())
}

/// `--write` into a folder that does not exist yet: the seven files and nothing else, each
/// the bytes `platform schema <name>` prints, a schema that compiles, with its own `$id`
/// and a description on itself and on every property at every depth.
#[test]
fn schema_write_writes_every_schema_with_its_id_and_described_properties() {
    let tmp = temp_dir();
    let dir = tmp.path().join("editor/schemas");
    write_schemas(&dir).expect_ok();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<&str> = SCHEMAS.iter().map(|(_, f)| *f).collect();
    want.sort();
    assert_eq!(names, want);

    let mut undescribed = Vec::new();
    let mut checked = 0;
    for (name, file) in SCHEMAS {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let printed = platform(&["schema", name]);
        assert_eq!(printed.status.code(), Some(0));
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap().trim_end(),
            String::from_utf8(printed.stdout).unwrap().trim_end(),
            "{file} differs from `platform schema {name}`"
        );
        let doc: Value =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
        jsonschema::validator_for(&doc).unwrap_or_else(|e| panic!("{file} does not compile: {e}"));
        assert_eq!(doc["$id"], format!("{ID_BASE}{file}"), "{file}: $id");
        assert!(
            doc["title"].is_string() && has_description(&doc),
            "{file}: title, description"
        );
        let mut props = Vec::new();
        properties(&doc, "", &mut props);
        checked += props.len();
        undescribed.extend(
            props
                .iter()
                .filter(|(_, p)| !has_description(p))
                .map(|(at, _)| format!("{file}#{at}")),
        );
    }
    assert!(
        undescribed.is_empty(),
        "properties without a description: {undescribed:#?}"
    );
    assert!(
        checked >= 60,
        "only {checked} properties found: the walk is broken"
    );
}

/// Writing again replaces the files whole (an edited copy is put back), and a path that
/// cannot be a folder is an input error naming it, with nothing half-written.
#[test]
fn schema_write_replaces_stale_files_and_refuses_a_file_as_the_folder() {
    let tmp = temp_dir();
    let dir = tmp.path().join("schemas");
    write_schemas(&dir).expect_ok();
    let module = dir.join("module.schema.json");
    let fresh = std::fs::read(&module).unwrap();
    std::fs::write(&module, "{\"stale\": true}").unwrap();
    write_schemas(&dir).expect_ok();
    assert_eq!(std::fs::read(&module).unwrap(), fresh);

    let file = tmp.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let stderr = write_schemas(&file).expect_code(2).stderr_text();
    assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a folder");

    platform(&["schema"]).expect_code(2);
}

/// The schema a repository file follows, from where it is.
fn expected_schema(rel: &str) -> Option<&'static str> {
    let parts: Vec<&str> = rel.split('/').collect();
    let file = match parts.as_slice() {
        ["modules", _, "module.yml"] => "module.schema.json",
        ["tenants", _, "tenant.yml"] => "tenant.schema.json",
        ["tenants", _, "workorders", _] => "workorder.schema.json",
        ["config", "iam.yml"] | ["scripts", "demo-iam.yml"] => "iam.schema.json",
        ["config", "registry.yml"] => "registry.schema.json",
        ["config", "ledger.yml"] => "ledger.schema.json",
        ["config", "catalog.yml"] => "catalog.schema.json",
        ["config", f] if f.starts_with("runtime_profile.") => "runtime-profile.schema.json",
        _ => return None,
    };
    Some(file)
}

fn example_files() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for top in ["modules", "tenants", "config", "scripts"] {
        for entry in walkdir::WalkDir::new(root().join(top)).sort_by_file_name() {
            let path = entry.unwrap().into_path();
            if path.extension().and_then(|e| e.to_str()) != Some("yml") {
                continue;
            }
            let rel = path
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((rel, path));
        }
    }
    out
}

/// Every example file opens with a `# yaml-language-server: $schema=` line whose relative
/// path reaches the schemas/ folder's copy of its own kind, which `--write` reproduces byte
/// for byte, and the file validates against it (what an editor will check as you type).
#[test]
fn every_example_file_names_its_written_schema_and_follows_it() {
    let tmp = temp_dir();
    write_schemas(tmp.path()).expect_ok();
    let files = example_files();
    assert!(files.len() >= 15, "{files:?}");
    for (rel, path) in files {
        let want = expected_schema(&rel).unwrap_or_else(|| panic!("{rel}: which schema?"));
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap_or("");
        let target = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{rel}: first line `{first}` names no schema"));
        let schema_path = path.parent().unwrap().join(target);
        assert_eq!(
            schema_path.canonicalize().unwrap(),
            root().join("schemas").join(want).canonicalize().unwrap(),
            "{rel}: names {target}, not schemas/{want}"
        );
        let committed = std::fs::read(&schema_path).unwrap();
        assert_eq!(
            committed,
            std::fs::read(tmp.path().join(want)).unwrap(),
            "schemas/{want} is stale"
        );
        let schema: Value = serde_json::from_slice(&committed).unwrap();
        let doc: Value = serde_saphyr::from_str(&text).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{rel} fails {want}: {errors:?}");
    }
}

/// Until 2026-12-03 README.md's command table and docs/formats.md left `catalog` out of
/// `platform schema <...>`.
#[test]
fn the_docs_name_every_schema_the_binary_prints() {
    let help = platform(&["schema", "--help"]);
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let possible: Vec<&str> = help
        .split("[possible values: ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("no possible values in:\n{help}"))
        .split(", ")
        .collect();
    let names: Vec<&str> = SCHEMAS.iter().map(|(n, _)| *n).collect();
    assert_eq!(possible, names);
    // README.md's list sits in a table, where `|` is escaped.
    for (file, separator) in [("README.md", "\\|"), ("docs/formats.md", "|")] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        let listed: Vec<&str> = text
            .split("`platform schema <")
            .nth(1)
            .and_then(|rest| rest.split(">`").next())
            .unwrap_or_else(|| panic!("{file} has no `platform schema <...>`"))
            .split(separator)
            .collect();
        assert_eq!(listed, possible, "{file}'s schema names vs the binary's");
    }
}
