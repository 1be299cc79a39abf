//! Step inputs against the module's declared inputs: no unknown names, required ones present, and every value or binding of the declared type.
use super::{input_field, list_or_none, step_field, Wo};
use crate::contract::{InputSpec, InputType, ModuleContract, OutputType};
use crate::findings::Finding;
use crate::repo::Repo;
use crate::workorder::bindings::json_type;
use crate::workorder::model::{InputValue, Selector, Step};

pub fn check(repo: &Repo, w: &Wo<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, step) in w.wo.steps.iter().enumerate() {
        // A missing module is reported by the modules check; nothing to compare against here.
        let Some(module) = repo.module(&step.module_id) else {
            continue;
        };
        // Raw keys, not parsed ones: an input whose binding failed to parse is still present.
        for name in step.raw_inputs.keys() {
            if module.input(name).is_none() {
                out.push(w.finding(
                    &input_field(i, name),
                    format!(
                        "step '{}' sets input '{name}', which module '{}' does not declare; declared inputs: {}",
                        step.step_id,
                        step.module_id,
                        list_or_none(module.inputs.iter().map(|x| x.id.as_str()))
                    ),
                ));
            }
        }
        for spec in &module.inputs {
            if spec.required && spec.default.is_none() && !step.raw_inputs.contains_key(&spec.id) {
                let field = if step.inputs_given {
                    format!("{}.inputs", step_field(i))
                } else {
                    step_field(i)
                };
                out.push(w.finding(
                    &field,
                    format!(
                        "step '{}' does not set required input '{}' ({}) of module '{}'; add it under inputs",
                        step.step_id,
                        spec.id,
                        spec.ty.as_str(),
                        step.module_id
                    ),
                ));
            }
        }
        for (name, value) in &step.inputs {
            let Some(spec) = module.input(name) else {
                continue;
            };
            if let Some(msg) = type_problem(repo, w, i, step, module, spec, value) {
                out.push(w.finding(&input_field(i, name), msg));
            }
        }
    }
    out
}

/// Why `value` cannot feed input `spec`, or None when it can (as far as is known statically).
fn type_problem(
    repo: &Repo,
    w: &Wo<'_>,
    index: usize,
    step: &Step,
    module: &ModuleContract,
    spec: &InputSpec,
    value: &InputValue,
) -> Option<String> {
    let (step_id, input_id, module_id) = (&step.step_id, &spec.id, &module.module_id);
    let head = format!("step '{step_id}' input '{input_id}' of module '{module_id}'");
    let want = article(spec.ty.as_str());
    match value {
        InputValue::Literal(v) => {
            if spec.ty.is_path() {
                Some(format!(
                    "{head} takes a file, not a literal value; bind it to an earlier step's file output with {{from_step, output_id}}, or to a tenant asset with {{asset: path}}"
                ))
            } else if !spec.ty.accepts(v) {
                Some(format!(
                    "{head} must be {want}, but the value is {}; write {want} here",
                    json_type(v)
                ))
            } else {
                None
            }
        }
        InputValue::Asset(_) => {
            if spec.ty.is_path() {
                None
            } else {
                Some(format!(
                    "{head} takes a value, but an asset is a file path; read the value from a step's file with {{from_step, from_file, selector}}, or write it literally"
                ))
            }
        }
        InputValue::Output {
            from_step,
            output_id,
        } => {
            // Bad step or output names are the bindings check's findings; only types here.
            let (_, src) = w.source_step(index, from_step, "").ok()?;
            let out_ty = repo.module(&src.module_id)?.output(output_id)?.ty;
            match (out_ty, spec.ty) {
                (OutputType::File, InputType::File | InputType::Files) => None,
                (OutputType::Dir, InputType::Files) => None,
                (OutputType::Value, t) if !t.is_path() => None,
                (OutputType::Dir, InputType::File) => Some(format!(
                    "{head} takes one file, but output '{output_id}' of step '{from_step}' is a directory; bind a file output, or declare the input as files"
                )),
                (OutputType::Value, _) => Some(format!(
                    "{head} takes a file, but output '{output_id}' of step '{from_step}' is a value; bind a file output of that step instead"
                )),
                (OutputType::File, _) => Some(format!(
                    "{head} takes a value, but output '{output_id}' of step '{from_step}' is a file; read it with {{from_step: {from_step}, from_file: <its path>, selector: text|lines|json|jsonl_first}}"
                )),
                (OutputType::Dir, _) => Some(format!(
                    "{head} takes a value, but output '{output_id}' of step '{from_step}' is a directory; read one of its files with {{from_step, from_file, selector}}"
                )),
            }
        }
        InputValue::File { selector, .. } => {
            if spec.ty.is_path() {
                return Some(format!(
                    "{head} takes a file, but from_file with a selector reads a file's contents as a value; bind the file itself with {{from_step, output_id}}"
                ));
            }
            match selector {
                Selector::Text if spec.ty != InputType::String => Some(format!(
                    "{head} needs {want}, but selector 'text' gives a string; use {}",
                    better_selector(spec.ty)
                )),
                Selector::Lines if spec.ty != InputType::Array => Some(format!(
                    "{head} needs {want}, but selector 'lines' gives an array of strings; use {}",
                    better_selector(spec.ty)
                )),
                // json and jsonl_first may yield any JSON type: checked when the step runs.
                _ => None,
            }
        }
    }
}

/// "an integer", "a string": the type with its article, for messages.
fn article(ty: &str) -> String {
    let an = ty.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {ty}", if an { "an" } else { "a" })
}

/// The selector that yields a value of this type.
fn better_selector(ty: InputType) -> &'static str {
    match ty {
        InputType::String => "selector text",
        InputType::Array => "selector lines (one string per line), or json for other arrays",
        _ => "selector json or jsonl_first (with json_path to pick a field)",
    }
}
