//! Loads one work-order file into the typed model; a problem (syntax, schema, a malformed binding) is a finding on it, never fatal.
use super::LoadedWorkOrder;
use crate::contract::Kind;
use crate::findings::Finding;
use crate::schema::SchemaKind;
use crate::workorder::model::{InputValue, Mode, Step, WorkOrder};
use crate::workorder::schedule::Every;
use crate::yaml::{self, Doc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

impl LoadedWorkOrder {
    /// A work order of file `rel` (beneath `root`) with nothing parsed yet.
    fn empty(root: &Path, rel: &Path, tenant_id: &str) -> LoadedWorkOrder {
        LoadedWorkOrder {
            tenant_id: tenant_id.to_string(),
            stem: rel
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            doc: None,
            rel: yaml::rel_string(root, &root.join(rel)),
            work_order: None,
            enabled: true,
            findings: Vec::new(),
            vouched: false,
            kept: false,
            verdict: None,
        }
    }

    /// A work-order file listed and not read yet: a placeholder with its name only.
    pub fn deferred(root: &Path, rel: &Path, tenant_id: &str) -> LoadedWorkOrder {
        let mut lw = LoadedWorkOrder::empty(root, rel, tenant_id);
        lw.vouched = true;
        lw
    }

    /// A work-order file that is not read at all, for `why`.
    pub fn refused(root: &Path, rel: &Path, tenant_id: &str, why: &str) -> LoadedWorkOrder {
        let mut lw = LoadedWorkOrder::empty(root, rel, tenant_id);
        lw.findings.push(Finding::error(&lw.rel, "", why));
        lw
    }
}

/// Load one work-order file, `rel` beneath `root`, read through no link; problems are
/// recorded on it, never fatal.
pub fn load_work_order(root: &Path, rel: &Path, tenant_id: &str) -> LoadedWorkOrder {
    match yaml::read_beneath(root, rel) {
        Ok(raw) => from_raw(root, rel, tenant_id, raw),
        Err(f) => {
            let mut lw = LoadedWorkOrder::empty(root, rel, tenant_id);
            lw.findings.push(f);
            lw
        }
    }
}

/// A work order from its file's text, read already.
pub fn from_raw(root: &Path, rel: &Path, tenant_id: &str, raw: yaml::Raw) -> LoadedWorkOrder {
    let mut lw = LoadedWorkOrder::empty(root, rel, tenant_id);
    let mut doc = match raw.parse() {
        Ok(d) => d,
        Err(f) => {
            lw.findings.push(f);
            return lw;
        }
    };
    lw.enabled = doc
        .value
        .get("enabled")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    if let Some(why) = crate::ids::check(&lw.stem) {
        lw.findings
            .push(doc.finding("work_order_id", format!("file name: {why}")));
    }
    let violations = crate::schema::validate(SchemaKind::Workorder, &doc.value);
    // The model reads only the keys it knows: with nothing wrong but unknown keys, the checks
    // see what they would without them, and report the file's other problems too. Any other
    // violation (a missing key, a value of the wrong type) leaves defaults in the model (""
    // for a missing module_id, kind `other`, no steps), and the checks would only restate it
    // ("runs module '' which does not exist"), so they do not run.
    let model_reads_it = violations.iter().all(|v| v.unknown_key);
    lw.findings
        .extend(violations.into_iter().map(|v| doc.schema_finding(v)));
    if model_reads_it {
        lw.work_order = Some(work_order(&mut doc, lw.enabled, &mut lw.findings));
    }
    lw.doc = Some(doc);
    lw
}

/// The model of a document that passed its schema but for unknown keys. It takes the parsed values over: a
/// `serde_json::Value` per file (a B-tree node of ~640 bytes per mapping) was most of a large
/// repository's memory, and nothing reads a parsed work order's `doc.value` again.
fn work_order(doc: &mut Doc, enabled: bool, findings: &mut Vec<Finding>) -> WorkOrder {
    let mut value = std::mem::take(&mut doc.value);
    let metadata = match value.get_mut("metadata") {
        Some(Value::Object(m)) => std::mem::take(m),
        _ => Map::new(),
    };
    let mut raw_steps = match value.get_mut("steps") {
        Some(Value::Array(a)) => std::mem::take(a),
        _ => Vec::new(),
    };
    let steps = raw_steps
        .iter_mut()
        .enumerate()
        .map(|(i, st)| step(doc, i, st, findings))
        .collect();
    let mode = match value.get("mode").and_then(|x| x.as_str()) {
        Some("FAIL_FAST") => Mode::FailFast,
        _ => Mode::PartialAllowed,
    };
    WorkOrder {
        work_order_id: text(&value, "work_order_id"),
        enabled,
        artifacts_requested: value
            .get("artifacts_requested")
            .and_then(|x| x.as_bool())
            .unwrap_or(false),
        mode,
        schedule: value
            .pointer("/schedule/every")
            .and_then(Value::as_str)
            .and_then(Every::from_name),
        metadata,
        steps,
    }
}

/// Step `i`, its raw value taken over; a malformed binding is a finding at its field.
fn step(doc: &Doc, i: usize, st: &mut Value, findings: &mut Vec<Finding>) -> Step {
    let inputs_given = st.get("inputs").is_some();
    let raw_inputs = match st.get_mut("inputs") {
        Some(Value::Object(m)) => std::mem::take(m),
        _ => Map::new(),
    };
    let mut inputs = BTreeMap::new();
    let mut malformed = BTreeMap::new();
    for (k, val) in &raw_inputs {
        match InputValue::parse(val) {
            Ok(iv) => {
                inputs.insert(k.clone(), iv);
            }
            Err(bad) => {
                let input = format!("steps[{i}].inputs.{k}");
                for e in bad.errors {
                    findings.push(doc.finding(&e.field(&input), e.message));
                }
                if let Some(refs) = bad.refs {
                    malformed.insert(k.clone(), refs);
                }
            }
        }
    }
    let kind: Kind = match st.get("kind").cloned().map(serde_json::from_value) {
        Some(Ok(k)) => k,
        _ => Kind::Other,
    };
    let deliverables = yaml::strings(st, "deliverables");
    Step {
        step_id: text(st, "step_id"),
        module_id: text(st, "module_id"),
        kind,
        inputs,
        raw_inputs,
        inputs_given,
        malformed,
        deliverables,
    }
}

/// A string field, or empty (the schema already reported a missing one).
fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(|x| x.as_str())
        .unwrap_or_default()
        .to_string()
}
