//! `platform schema <name>` prints a built-in JSON Schema; `--write DIR` writes them all.
use super::Ctx;
use crate::cli::SchemaArgs;
use crate::error::{Error, Result};
use crate::output::Report;
use crate::schema;

pub fn run(_ctx: &Ctx, args: &SchemaArgs) -> Result<Report> {
    if let Some(dir) = &args.write {
        let written = schema::write_all(dir)?;
        let lines: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        let text = format!("wrote {} schemas:\n{}", lines.len(), lines.join("\n"));
        return Ok(Report::new(text, serde_json::json!({ "written": lines })));
    }
    let kind = match args.name {
        Some(kind) => kind,
        None => return Err(Error::input("name a schema, or give --write DIR")),
    };
    let text = kind.text();
    let json = serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
    Ok(Report::document(text, json))
}
