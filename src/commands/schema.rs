//! `platform schema <name>`: prints a built-in JSON Schema.
use super::Ctx;
use crate::cli::{SchemaArgs, SchemaName};
use crate::error::Result;
use crate::output::Report;
use crate::schema::SchemaKind;

pub fn run(_ctx: &Ctx, args: &SchemaArgs) -> Result<Report> {
    let kind = match args.name {
        SchemaName::Module => SchemaKind::Module,
        SchemaName::Workorder => SchemaKind::Workorder,
        SchemaName::Tenant => SchemaKind::Tenant,
        SchemaName::Registry => SchemaKind::Registry,
        SchemaName::Iam => SchemaKind::Iam,
        SchemaName::RuntimeProfile => SchemaKind::RuntimeProfile,
        SchemaName::Ledger => SchemaKind::Ledger,
    };
    let text = kind.text();
    let json = serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
    Ok(Report::new(text, json))
}
