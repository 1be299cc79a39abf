//! The JSON Schemas shipped in the binary (`platform schema <name>`, `--write DIR`) and validation against them.
use std::sync::OnceLock;

mod messages;
mod whole;
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

    /// The name `platform schema <name>` takes (`runtime-profile`).
    pub fn name(self) -> &'static str {
        let file = self.file_name();
        file.strip_suffix(".schema.json").unwrap_or(file)
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

/// One schema violation, as JSON pointers into the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The offending field: an unexpected or missing key itself, else the value at fault.
    pub pointer: String,
    /// Where the problem is written: the field itself, or for a missing key the object
    /// that lacks it (`""`: the document).
    pub at: String,
    /// What was expected and what to do, in the platform's words.
    pub message: String,
    /// An unexpected key (`additionalProperties`). The platform's models read only the keys
    /// they know, so without such keys they see what they would in a valid file.
    pub unknown_key: bool,
}

/// `value` without the unexpected keys `violations` name: what a model that refuses unknown
/// keys (serde's `deny_unknown_fields`) can read, to check the rest of a file.
pub fn without_unknown_keys(
    value: &serde_json::Value,
    violations: &[Violation],
) -> serde_json::Value {
    let mut out = value.clone();
    for v in violations.iter().filter(|v| v.unknown_key) {
        let Some((parent, key)) = v.pointer.rsplit_once('/') else {
            continue;
        };
        let key = key.replace("~1", "/").replace("~0", "~");
        if let Some(map) = out.pointer_mut(parent).and_then(|p| p.as_object_mut()) {
            map.remove(&key);
        }
    }
    out
}

/// A compiled schema with its document (messages read what the failed keyword's object
/// declares: the keys it allows, a value's description).
type Compiled = Result<(jsonschema::Validator, serde_json::Value), String>;

fn validators() -> &'static [Compiled; 8] {
    static CELL: OnceLock<[Compiled; 8]> = OnceLock::new();
    CELL.get_or_init(|| {
        SchemaKind::ALL.map(|k| {
            let schema: serde_json::Value =
                serde_json::from_str(k.text()).map_err(|e| format!("built-in schema: {e}"))?;
            let mut marked = schema.clone();
            whole::mark(&mut marked);
            let v = whole::register(jsonschema::options())
                .build(&marked)
                .map_err(|e| format!("built-in schema: {e}"))?;
            Ok((v, schema))
        })
    })
}

/// Every violation of `kind`'s schema in `instance` (empty when valid).
pub fn validate(kind: SchemaKind, instance: &serde_json::Value) -> Vec<Violation> {
    match &validators()[kind.index()] {
        Ok((v, schema)) => v
            .iter_errors(instance)
            .flat_map(|e| messages::violations(kind, schema, &e))
            .collect(),
        Err(msg) => vec![Violation {
            pointer: String::new(),
            at: String::new(),
            message: msg.clone(),
            unknown_key: false,
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
    fn an_unknown_or_missing_key_is_the_field_itself() {
        let v = validate(
            SchemaKind::Workorder,
            &serde_json::json!({"bogus": 1, "steps": [{"step_id": "a", "kind": "other", "wat": 2}]}),
        );
        let got: Vec<(&str, &str, bool)> = v
            .iter()
            .map(|v| (v.pointer.as_str(), v.at.as_str(), v.unknown_key))
            .collect();
        assert_eq!(
            got,
            [
                ("/work_order_id", "", false),
                ("/steps/0/module_id", "/steps/0", false),
                ("/steps/0/wat", "/steps/0/wat", true),
                ("/bogus", "/bogus", true),
            ],
            "{v:?}"
        );
        assert!(
            v[3].message.starts_with(
                "unknown key 'bogus'; the keys allowed here are: artifacts_requested, description,"
            ),
            "{v:?}"
        );
        assert!(
            v[0].message
                .starts_with("'work_order_id' is required; add it"),
            "{v:?}"
        );
    }

    #[test]
    fn a_bad_key_name_is_the_field_itself() {
        let v = validate(
            SchemaKind::Catalog,
            &serde_json::json!({"plans": {"a b": []}}),
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].pointer, "/plans/a b");
        assert!(
            v[0].message
                .starts_with("key 'a b' is not a valid name here: 'a b' does not match"),
            "{v:?}"
        );
    }

    #[test]
    fn messages_say_what_was_expected() {
        let v = validate(
            SchemaKind::Workorder,
            &serde_json::json!({"work_order_id": "w", "enabled": "yes", "steps": [{"step_id": "a", "module_id": "m", "kind": "transfrom"}]}),
        );
        let m: Vec<&str> = v.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(
            m,
            [
                "expected true or false, found the string 'yes'; write true or false here",
                "'transfrom' is not allowed here (did you mean 'transform'?); use one of: transform, packaging, delivery, other",
            ]
        );
    }

    #[test]
    fn without_unknown_keys_removes_exactly_them() {
        let doc = serde_json::json!({"module_id": "m", "version": "1", "kind": "other", "runner": {"builtin": "package_std"}, "wat": 1, "self_test": {"expect": {"x/y": 2}}});
        let v = validate(SchemaKind::Module, &doc);
        assert_eq!(v.len(), 2, "{v:?}");
        let clean = without_unknown_keys(&doc, &v);
        assert_eq!(clean.get("wat"), None);
        assert_eq!(clean["self_test"]["expect"], serde_json::json!({}));
        assert_eq!(clean["module_id"], "m");
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
