//! package_std's `bound_outputs`: a literal list of `{from_step, output_id, as_path}` naming earlier file/dir outputs at distinct relative paths.
use super::{input_field, list_or_none, Wo};
use crate::contract::{Builtin, OutputType};
use crate::findings::Finding;
use crate::repo::Repo;
use crate::workorder::model::{InputValue, Step};
use crate::workorder::paths::{check_relative, nested, normalise};

const KEYS: [&str; 3] = ["from_step", "output_id", "as_path"];

pub fn check(repo: &Repo, w: &Wo<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, step) in w.wo.steps.iter().enumerate() {
        let is_package_std = repo
            .module(&step.module_id)
            .is_some_and(|m| m.runner.builtin() == Some(Builtin::PackageStd));
        if !is_package_std {
            continue;
        }
        let field = input_field(i, "bound_outputs");
        match step.inputs.get("bound_outputs") {
            // Absent: the required-inputs check says so.
            None => {}
            Some(InputValue::Literal(serde_json::Value::Array(items))) => {
                out.extend(check_items(repo, w, i, step, &field, items));
            }
            // Another literal type is the inputs check's type finding.
            Some(InputValue::Literal(_)) => {}
            Some(_) => out.push(w.finding(
                &field,
                format!(
                    "step '{}': bound_outputs must be written out as a list of {{from_step, output_id, as_path}}, not bound to another step",
                    step.step_id
                ),
            )),
        }
    }
    out
}

fn check_items(
    repo: &Repo,
    w: &Wo<'_>,
    index: usize,
    step: &Step,
    field: &str,
    items: &[serde_json::Value],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let sid = &step.step_id;
    if items.is_empty() {
        out.push(w.finding(field, format!("step '{sid}': bound_outputs is empty; list at least one {{from_step, output_id, as_path}} to package")));
    }
    // (normalised as_path, entry index) of the entries seen so far.
    let mut placed: Vec<(String, usize)> = Vec::new();
    for (j, item) in items.iter().enumerate() {
        let ef = format!("{field}[{j}]");
        let Some(map) = item.as_object() else {
            out.push(w.finding(&ef, format!("step '{sid}': bound_outputs[{j}] must be a mapping {{from_step, output_id, as_path}}")));
            continue;
        };
        let unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !KEYS.contains(k))
            .collect();
        if !unknown.is_empty() {
            out.push(w.finding(
                &ef,
                format!(
                    "step '{sid}': bound_outputs[{j}] has unknown keys {}; allowed: {}",
                    unknown.join(", "),
                    KEYS.join(", ")
                ),
            ));
        }
        let get = |k: &str| map.get(k).and_then(|v| v.as_str());
        let missing: Vec<&str> = KEYS.iter().copied().filter(|k| get(k).is_none()).collect();
        if !missing.is_empty() {
            out.push(w.finding(
                &ef,
                format!(
                    "step '{sid}': bound_outputs[{j}] needs string values for {}",
                    missing.join(", ")
                ),
            ));
        }
        if let (Some(from_step), Some(output_id)) = (get("from_step"), get("output_id")) {
            match w.source_step(index, from_step, &format!("output '{output_id}'")) {
                Err(msg) => out.push(w.finding(&format!("{ef}.from_step"), msg)),
                Ok((_, src)) => {
                    if let Some(m) = repo.module(&src.module_id) {
                        match m.output(output_id).map(|o| o.ty) {
                            None => out.push(w.finding(
                                &format!("{ef}.output_id"),
                                format!(
                                    "step '{sid}' packages output '{output_id}' of step '{from_step}', but module '{}' declares no such output; declared outputs: {}",
                                    src.module_id,
                                    list_or_none(m.outputs.iter().map(|o| o.id.as_str()))
                                ),
                            )),
                            Some(OutputType::Value) => out.push(w.finding(
                                &format!("{ef}.output_id"),
                                format!(
                                    "step '{sid}' packages output '{output_id}' of step '{from_step}', which is a value, not a file; package a file or dir output"
                                ),
                            )),
                            Some(_) => {}
                        }
                    }
                }
            }
        }
        if let Some(as_path) = get("as_path") {
            if let Some(why) = check_relative(as_path) {
                out.push(w.finding(
                    &format!("{ef}.as_path"),
                    format!("step '{sid}': as_path {why} (inside the package)"),
                ));
                continue;
            }
            // What the packer itself refuses ('.' or empty components, backslashes, control
            // characters, drive names) is found here, before any run is charged.
            if let Err(e) = crate::builtin::package::validate_as_path(as_path) {
                out.push(w.finding(
                    &format!("{ef}.as_path"),
                    match &e.help {
                        Some(help) => format!("step '{sid}': {}; {help}", e.message),
                        None => format!("step '{sid}': {}", e.message),
                    },
                ));
                continue;
            }
            let norm = normalise(as_path);
            if norm.is_empty() {
                out.push(w.finding(&format!("{ef}.as_path"), format!("step '{sid}': as_path '{as_path}' names the package root; give a file or folder name")));
                continue;
            }
            if let Some((_, k)) = placed.iter().find(|(p, _)| *p == norm) {
                out.push(w.finding(
                    &format!("{ef}.as_path"),
                    format!("step '{sid}': as_path '{as_path}' is already used by bound_outputs[{k}]; each entry needs its own path in the package"),
                ));
            } else if let Some((p, k)) = placed
                .iter()
                .find(|(p, _)| nested(p, &norm) || nested(&norm, p))
            {
                out.push(w.finding(
                    &format!("{ef}.as_path"),
                    format!(
                        "step '{sid}': as_path '{as_path}' overlaps '{p}' of bound_outputs[{k}] (one would sit inside the other); use separate paths"
                    ),
                ));
            } else {
                placed.push((norm, j));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_compare_as_the_package_holds_them() {
        assert_eq!(normalise("./a//b/"), "a/b");
        assert!(nested("a", "a/b"));
        assert!(!nested("a", "ab"));
        assert!(!nested("a", "a"));
    }
}
