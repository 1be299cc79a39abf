//! Loads modules/<id>/module.yml into contracts, with the checks of a contract beyond its schema (ids declared once, paths relative, priced deliverables declared, built-ins run themselves).
use super::{name_of, subdirs, LoadedModule};
use crate::contract::{Builtin, ModuleContract};
use crate::findings::Finding;
use crate::schema::{SchemaKind, Violation};
use crate::yaml::{self, Doc};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module folder that loads; the problems of the others become findings.
pub(super) fn load(root: &Path, findings: &mut Vec<Finding>) -> BTreeMap<String, LoadedModule> {
    let mut out = BTreeMap::new();
    for dir in subdirs(&root.join("modules")) {
        let folder = name_of(&dir);
        let (doc, violations) = match load_contract(root, &dir) {
            Ok(loaded) => loaded,
            Err(problem) => {
                findings.push(problem);
                continue;
            }
        };
        // Unknown keys are left out of what serde reads (the contract refuses them), so one
        // does not hide the contract's other problems.
        let value = if violations.is_empty() {
            doc.value.clone()
        } else {
            crate::schema::without_unknown_keys(&doc.value, &violations)
        };
        let contract = serde_json::from_value::<ModuleContract>(value);
        if violations.is_empty() {
            let contract = match contract {
                Ok(c) => c,
                Err(e) => {
                    findings.push(doc.finding("", format!("invalid module contract: {e}")));
                    continue;
                }
            };
            let mut bad = contract_findings(&doc, &contract, &folder);
            let fatal = bad.iter().any(|f| f.field == "module_id");
            findings.append(&mut bad);
            if !fatal {
                out.insert(folder, LoadedModule { dir, doc, contract });
            }
            continue;
        }
        // Against its schema, the module is not loaded. Its contract's own checks still run
        // when serde can read it (every value of the right type), less those on a field the
        // schema reported, which would restate that.
        let schema: Vec<Finding> = violations
            .into_iter()
            .map(|v| doc.schema_finding(v))
            .collect();
        let restates = |f: &Finding| {
            schema
                .iter()
                .any(|s| crate::yaml::locate::overlaps(&s.field, &f.field))
        };
        let more: Vec<Finding> = match contract {
            Ok(c) => contract_findings(&doc, &c, &folder)
                .into_iter()
                .filter(|f| !restates(f))
                .collect(),
            // serde's error would restate the schema's.
            Err(_) => Vec::new(),
        };
        findings.extend(schema);
        findings.extend(more);
    }
    out
}

/// One folder's module.yml, parsed, with its violations of the module schema.
fn load_contract(root: &Path, dir: &Path) -> Result<(Doc, Vec<Violation>), Finding> {
    let file = dir.join("module.yml");
    if !file.is_file() {
        let rel = yaml::rel_string(root, &file);
        let why = "module folder has no module.yml; add one or remove the folder";
        return Err(Finding::error(rel, "", why));
    }
    let doc = yaml::load(root, &file)?;
    let violations = crate::schema::validate(SchemaKind::Module, &doc.value);
    Ok((doc, violations))
}

/// Checks of one contract beyond its schema.
fn contract_findings(doc: &Doc, c: &ModuleContract, folder: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    if c.module_id != folder {
        out.push(doc.finding(
            "module_id",
            format!(
                "module_id '{}' must equal its folder name '{folder}'",
                c.module_id
            ),
        ));
    }
    input_findings(doc, c, &mut out);
    output_findings(doc, c, &mut out);
    deliverable_findings(doc, c, &mut out);
    // A module named after a built-in is that built-in: it cannot run another one.
    if let (Some(b), Some(own)) = (c.runner.builtin(), Builtin::from_name(&c.module_id)) {
        if b != own {
            out.push(doc.finding(
                "runner.builtin",
                format!("module '{}' must run builtin '{own}'", c.module_id),
            ));
        }
    }
    out
}

/// A finding at `field(i)` for each id that repeats an earlier one.
fn declared_twice<'a>(
    doc: &Doc,
    ids: impl Iterator<Item = &'a str>,
    field: impl Fn(usize) -> String,
    what: &str,
    out: &mut Vec<Finding>,
) {
    let mut seen = BTreeSet::new();
    for (i, id) in ids.enumerate() {
        if !seen.insert(id) {
            out.push(doc.finding(&field(i), format!("{what} '{id}' is declared twice")));
        }
    }
}

/// Input ids are declared once; a default has the input's type.
fn input_findings(doc: &Doc, c: &ModuleContract, out: &mut Vec<Finding>) {
    let ids = c.inputs.iter().map(|x| x.id.as_str());
    declared_twice(doc, ids, |i| format!("inputs[{i}].id"), "input id", out);
    for (i, inp) in c.inputs.iter().enumerate() {
        let Some(d) = &inp.default else { continue };
        if !inp.ty.is_path() && !inp.ty.accepts(d) {
            out.push(doc.finding(
                &format!("inputs[{i}].default"),
                format!(
                    "default of input '{}' is not of type {}",
                    inp.id,
                    inp.ty.as_str()
                ),
            ));
        }
    }
}

/// Output ids are declared once; a path is relative and stays inside the outputs folder.
fn output_findings(doc: &Doc, c: &ModuleContract, out: &mut Vec<Finding>) {
    let ids = c.outputs.iter().map(|x| x.id.as_str());
    declared_twice(doc, ids, |i| format!("outputs[{i}].id"), "output id", out);
    for (i, o) in c.outputs.iter().enumerate() {
        let why = o
            .path
            .as_deref()
            .and_then(crate::workorder::paths::check_relative);
        if let Some(why) = why {
            out.push(doc.finding(&format!("outputs[{i}].path"), why));
        }
    }
    overlapping_paths(doc, c, out);
}

/// Two outputs at one path, or one inside the other (`stats.json` and `stats.json/words.txt`):
/// no module can leave both, so every run would fail `outputs_missing`.
fn overlapping_paths(doc: &Doc, c: &ModuleContract, out: &mut Vec<Finding>) {
    use crate::workorder::paths::{nested, normalise};
    let mut placed: Vec<(String, usize)> = Vec::new();
    for (i, o) in c.outputs.iter().enumerate() {
        let Some(path) = o.path.as_deref() else {
            continue;
        };
        let norm = normalise(path);
        let clash = placed
            .iter()
            .find(|(p, _)| *p == norm || nested(p, &norm) || nested(&norm, p));
        if let Some((p, k)) = clash {
            let other = &c.outputs[*k].id;
            let clash = if *p == norm {
                format!(
                    "output '{}' has path '{path}', as output '{other}' (outputs[{k}]) has",
                    o.id
                )
            } else {
                format!("output '{}' path '{path}' and output '{other}' path '{p}' (outputs[{k}]) lie one inside the other", o.id)
            };
            let message = format!(
                "{clash}; no module can leave both, so every run would fail outputs_missing: give each output a path of its own, neither inside the other"
            );
            out.push(doc.finding(&format!("outputs[{i}].path"), message));
        } else {
            placed.push((norm, i));
        }
    }
}

/// Deliverable ids are declared once and not reserved; they name declared outputs; every
/// priced deliverable is declared.
fn deliverable_findings(doc: &Doc, c: &ModuleContract, out: &mut Vec<Finding>) {
    let ids = c.deliverables.iter().map(|x| x.deliverable_id.as_str());
    let field = |i| format!("deliverables[{i}].deliverable_id");
    declared_twice(doc, ids, field, "deliverable", out);
    for (i, d) in c.deliverables.iter().enumerate() {
        if crate::records::billing::is_internal(&d.deliverable_id) {
            let field = field(i);
            let why = "deliverable ids starting with '__' are reserved for the platform";
            out.push(doc.finding(&field, why));
        }
        for (j, o) in d.outputs.iter().enumerate() {
            if c.output(o).is_none() {
                out.push(doc.finding(
                    &format!("deliverables[{i}].outputs[{j}]"),
                    format!(
                        "deliverable '{}' names output '{o}', which the module does not declare",
                        d.deliverable_id
                    ),
                ));
            }
        }
    }
    for id in c.pricing.deliverables.keys() {
        if c.deliverable(id).is_none() {
            out.push(doc.finding(
                &format!("pricing.deliverables.{id}"),
                format!("price for deliverable '{id}', which the module does not declare"),
            ));
        }
    }
}
