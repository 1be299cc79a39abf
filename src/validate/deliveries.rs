//! What a delivery step's check before the charge refuses, found here where the work order fixes it: a literal `recipient_email` deliver_email would refuse, and deliver_local's package and manifest of one file name (module.yml paths, asset names).
use super::{input_field, Wo};
use crate::beneath::Beneath;
use crate::builtin::deliver_email::{self, Mail, SmtpSettings};
use crate::builtin::deliver_local::distinct_names;
use crate::contract::{Builtin, OutputType};
use crate::findings::Finding;
use crate::repo::Repo;
use crate::workorder::model::{InputValue, Step};
use std::path::{Path, PathBuf};

/// Each finding runs the built-in's own check, the one the orchestrator runs before charging,
/// on what is known statically. Left to that check, such a step failed `input_invalid` on
/// every pass, after its upstream steps were charged.
pub fn check(repo: &Repo, w: &Wo<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, step) in w.wo.steps.iter().enumerate() {
        match repo
            .module(&step.module_id)
            .and_then(|m| m.runner.builtin())
        {
            Some(Builtin::DeliverEmail) => out.extend(recipient(w, i, step)),
            Some(Builtin::DeliverLocal) => out.extend(file_names(repo, w, i, step)),
            _ => {}
        }
    }
    out
}

/// A literal recipient, through `deliver_email::precheck` with the default SMTP settings and a
/// stand-in package and delivery: only the recipient can fail it then (the profile's own
/// settings, and the package, are checked before the charge as before).
fn recipient(w: &Wo<'_>, index: usize, step: &Step) -> Option<Finding> {
    let literal = |name: &str| match step.inputs.get(name) {
        Some(InputValue::Literal(serde_json::Value::String(s))) => Some(s.as_str()),
        _ => None,
    };
    let to = literal("recipient_email")?;
    let stand_in = Beneath::new(".", "package.zip");
    let mail = Mail {
        package_zip: &stand_in,
        recipient: to,
        subject: literal("subject").unwrap_or_default(),
        delivery: "",
    };
    let refused = deliver_email::precheck(&SmtpSettings::default(), false, &mail).err()?;
    Some(w.finding(
        &input_field(index, "recipient_email"),
        format!(
            "step '{}': {}; every run would fail input_invalid after the steps before it were charged",
            step.step_id, refused.message
        ),
    ))
}

/// deliver_local's package and manifest, when both file names are known here, through
/// `deliver_local::distinct_names`.
fn file_names(repo: &Repo, w: &Wo<'_>, index: usize, step: &Step) -> Option<Finding> {
    let zip = static_file(repo, w, index, step, "package_zip")?;
    let manifest = static_file(repo, w, index, step, "manifest_json")?;
    let dest = Path::new("deliveries")
        .join(&w.lw.tenant_id)
        .join(&w.wo.work_order_id)
        .join(&step.step_id);
    let refused = distinct_names(&zip, Some(&manifest), &dest).err()?;
    Some(w.finding(
        &input_field(index, "manifest_json"),
        format!(
            "step '{}': {}; bind files of different names (an output's name is its path in module.yml), or drop manifest_json",
            step.step_id, refused.message
        ),
    ))
}

/// Where the file bound to input `name` will be, as far as its name goes: a tenant asset, or a
/// file output of an earlier step at its module.yml path (`<run_id>` stands for the run).
/// None when it is not known here (or another check reports the binding).
fn static_file(repo: &Repo, w: &Wo<'_>, index: usize, step: &Step, name: &str) -> Option<Beneath> {
    match step.inputs.get(name)? {
        InputValue::Asset(rel) => {
            let assets = Path::new("tenants").join(&w.lw.tenant_id).join("assets");
            Some(Beneath::new(assets, rel))
        }
        InputValue::Output {
            from_step,
            output_id,
        } => {
            let (_, src) = w.source_step(index, from_step, "").ok()?;
            let module = repo.module(&src.module_id)?;
            if module.output(output_id)?.ty != OutputType::File {
                return None;
            }
            let outputs: PathBuf = ["runs", &w.lw.tenant_id, &w.wo.work_order_id, "<run_id>"]
                .iter()
                .collect::<PathBuf>()
                .join(from_step)
                .join("outputs");
            Some(Beneath::new(outputs, module.output_path(output_id)?))
        }
        _ => None,
    }
}
