//! Bindings between steps: they name earlier steps and declared outputs; `from_file` paths are well formed (a `json_path` is parsed with the work order: `workorder::json_path`).
use super::{input_field, list_or_none, Wo};
use crate::findings::Finding;
use crate::repo::Repo;
use crate::workorder::model::InputValue;
use crate::workorder::paths::check_relative;

pub fn check(repo: &Repo, w: &Wo<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, step) in w.wo.steps.iter().enumerate() {
        // A malformed binding's references too: its other problems are findings already.
        for (name, value) in step.inputs.iter().chain(&step.malformed) {
            let field = input_field(i, name);
            match value {
                InputValue::Output {
                    from_step,
                    output_id,
                } => {
                    let what = format!("output '{output_id}'");
                    match w.source_step(i, from_step, &what) {
                        Err(msg) => out.push(w.finding(&format!("{field}.from_step"), msg)),
                        Ok((_, src)) => {
                            if let Some(m) = repo.module(&src.module_id) {
                                if m.output(output_id).is_none() {
                                    out.push(w.finding(
                                        &format!("{field}.output_id"),
                                        format!(
                                            "step '{}' binds output '{output_id}' of step '{from_step}', but module '{}' declares no such output; declared outputs: {}",
                                            step.step_id,
                                            src.module_id,
                                            list_or_none(m.outputs.iter().map(|o| o.id.as_str()))
                                        ),
                                    ));
                                }
                            }
                        }
                    }
                }
                InputValue::File {
                    from_step,
                    from_file,
                    ..
                } => {
                    let what = format!("file '{from_file}'");
                    if let Err(msg) = w.source_step(i, from_step, &what) {
                        out.push(w.finding(&format!("{field}.from_step"), msg));
                    }
                    if let Some(why) = check_relative(from_file) {
                        out.push(w.finding(
                            &format!("{field}.from_file"),
                            format!("step '{}' input '{name}': from_file {why} (relative to that step's outputs folder)", step.step_id),
                        ));
                    }
                }
                InputValue::Literal(_) | InputValue::Asset(_) => {}
            }
        }
    }
    out
}
