//! The JSON Schemas shipped in the binary (`platform schema <name>`, `--write DIR`) and validation against them.
use std::sync::OnceLock;

mod write;
pub use write::write_all;

/// The prefix of every schema's `$id`: a name, never fetched (docs/formats.md "Editors").
/// The `.invalid` host cannot resolve, so no tool downloads a schema from somewhere else;
/// `v1` changes only when the file formats do.
pub const ID_BASE: &str = "https://platform.invalid/schemas/v1/";

/// The files the platform reads, each with a schema; `platform schema <name>` names them
/// in kebab case (`runtime-profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum SchemaKind {
    Module,
    Workorder,
    Tenant,
    Registry,
    Iam,
    RuntimeProfile,
    Ledger,
    Catalog,
}

impl SchemaKind {
    pub const ALL: [SchemaKind; 8] = [
        SchemaKind::Module,
        SchemaKind::Workorder,
        SchemaKind::Tenant,
        SchemaKind::Registry,
        SchemaKind::Iam,
        SchemaKind::RuntimeProfile,
        SchemaKind::Ledger,
        SchemaKind::Catalog,
    ];

    /// The schema document's text, as printed by `platform schema`. The sources are the
    /// repository's schemas/ folder, which the example files' yaml-language-server lines name.
    pub fn text(self) -> &'static str {
        match self {
            SchemaKind::Module => include_str!("../../schemas/module.schema.json"),
            SchemaKind::Workorder => include_str!("../../schemas/workorder.schema.json"),
            SchemaKind::Tenant => include_str!("../../schemas/tenant.schema.json"),
            SchemaKind::Registry => include_str!("../../schemas/registry.schema.json"),
            SchemaKind::Iam => include_str!("../../schemas/iam.schema.json"),
            SchemaKind::RuntimeProfile => include_str!("../../schemas/runtime-profile.schema.json"),
            SchemaKind::Ledger => include_str!("../../schemas/ledger.schema.json"),
            SchemaKind::Catalog => include_str!("../../schemas/catalog.schema.json"),
        }
    }

    /// The file `platform schema --write` writes; its `$id` is [`ID_BASE`] + this name.
    pub fn file_name(self) -> &'static str {
        match self {
            SchemaKind::Module => "module.schema.json",
            SchemaKind::Workorder => "workorder.schema.json",
            SchemaKind::Tenant => "tenant.schema.json",
            SchemaKind::Registry => "registry.schema.json",
            SchemaKind::Iam => "iam.schema.json",
            SchemaKind::RuntimeProfile => "runtime-profile.schema.json",
            SchemaKind::Ledger => "ledger.schema.json",
            SchemaKind::Catalog => "catalog.schema.json",
        }
    }

    fn index(self) -> usize {
        match self {
            SchemaKind::Module => 0,
            SchemaKind::Workorder => 1,
            SchemaKind::Tenant => 2,
            SchemaKind::Registry => 3,
            SchemaKind::Iam => 4,
            SchemaKind::RuntimeProfile => 5,
            SchemaKind::Ledger => 6,
            SchemaKind::Catalog => 7,
        }
    }
}

/// One schema violation: a JSON pointer into the instance and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub pointer: String,
    pub message: String,
}

type Compiled = Result<jsonschema::Validator, String>;

fn validators() -> &'static [Compiled; 8] {
    static CELL: OnceLock<[Compiled; 8]> = OnceLock::new();
    CELL.get_or_init(|| {
        SchemaKind::ALL.map(|k| {
            let schema: serde_json::Value =
                serde_json::from_str(k.text()).map_err(|e| format!("built-in schema: {e}"))?;
            jsonschema::validator_for(&schema).map_err(|e| format!("built-in schema: {e}"))
        })
    })
}

/// Every violation of `kind`'s schema in `instance` (empty when valid).
pub fn validate(kind: SchemaKind, instance: &serde_json::Value) -> Vec<Violation> {
    match &validators()[kind.index()] {
        Ok(v) => v
            .iter_errors(instance)
            .map(|e| Violation {
                pointer: e.instance_path().to_string(),
                message: e.to_string(),
            })
            .collect(),
        Err(msg) => vec![Violation {
            pointer: String::new(),
            message: msg.clone(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_schema_compiles() {
        for k in SchemaKind::ALL {
            let v = validate(k, &serde_json::json!({}));
            assert!(
                v.iter().all(|v| !v.message.starts_with("built-in schema")),
                "{k:?}: {v:?}"
            );
        }
    }

    #[test]
    fn every_id_names_the_file_it_is_written_to() {
        for k in SchemaKind::ALL {
            let doc: serde_json::Value = serde_json::from_str(k.text()).unwrap_or_default();
            let want = format!("{ID_BASE}{}", k.file_name());
            assert_eq!(doc["$id"].as_str(), Some(want.as_str()), "{k:?}");
        }
    }

    /// The published schema (editors read it from schemas/) lists the built-ins by name, so
    /// it must list exactly `contract::Builtin`'s: a new built-in fails here until it does.
    #[test]
    fn the_module_schema_lists_exactly_the_builtins() {
        use crate::contract::Builtin;
        let doc: serde_json::Value = serde_json::from_str(SchemaKind::Module.text()).unwrap();
        let listed = &doc["properties"]["runner"]["oneOf"][0]["properties"]["builtin"]["enum"];
        let names: Vec<&str> = Builtin::ALL.iter().map(|b| b.name()).collect();
        assert_eq!(listed, &serde_json::json!(names));
        let module = |b: &str| serde_json::json!({"module_id": "m", "version": "1", "kind": "delivery", "runner": {"builtin": b}});
        for b in Builtin::ALL {
            assert_eq!(
                validate(SchemaKind::Module, &module(b.name())),
                vec![],
                "{b}"
            );
        }
        let v = validate(SchemaKind::Module, &module("deliver_ftp"));
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].pointer, "/runner");
    }

    #[test]
    fn reports_pointer() {
        let v = validate(
            SchemaKind::Workorder,
            &serde_json::json!({"work_order_id": "w", "steps": [{"step_id": "a", "module_id": "m", "kind": "bogus"}]}),
        );
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].pointer, "/steps/0/kind");
    }
}
