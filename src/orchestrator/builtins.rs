//! Runs the built-in modules in-process: package_std, deliver_local, deliver_email and
//! deliver_github_release, turning their results and receipts into step results.
use crate::beneath::Beneath;
use crate::builtin::deliver_email::{credentials_from_secrets, deliver_email, SmtpSettings};
use crate::builtin::deliver_local::deliver_local;
use crate::builtin::package::{build_package, PackSource};
use crate::builtin::receipt::{Receipt, StepFailure};
use crate::config::profile::RuntimeProfile;
use crate::contract::ModuleContract;
use crate::runner::outputs;
use crate::runner::redact::Redactor;
use crate::runner::StepResult;
use crate::workorder::bindings::{bound_file, output_beneath, Produced};
use crate::workorder::model::Step;
use std::collections::BTreeMap;
use std::path::Path;

/// Everything a built-in may use.
pub struct BuiltinCtx<'a> {
    pub name: &'a str,
    pub step: &'a Step,
    pub contract: &'a ModuleContract,
    pub inputs: &'a serde_json::Map<String, serde_json::Value>,
    pub produced: &'a BTreeMap<String, Produced<'a>>,
    pub step_dir: &'a Path,
    /// The step's folder beneath the runtime directory (asset copies are read through it).
    pub step_files: &'a Beneath,
    pub runtime_dir: &'a Path,
    pub tenant_id: &'a str,
    pub work_order_id: &'a str,
    pub run: u64,
    pub profile: &'a RuntimeProfile,
    pub redactor: &'a Redactor,
}

/// package_std's sources from `bound_outputs`; Err names the entry that cannot be used.
pub fn package_sources(
    step: &Step,
    produced: &BTreeMap<String, Produced>,
) -> Result<Vec<PackSource>, String> {
    let raw = step
        .raw_inputs
        .get("bound_outputs")
        .and_then(|v| v.as_array())
        .ok_or("input 'bound_outputs' must be a list of {from_step, output_id, as_path}")?;
    let mut out = Vec::new();
    for (i, entry) in raw.iter().enumerate() {
        let b: crate::workorder::model::BoundOutput = serde_json::from_value(entry.clone())
            .map_err(|e| format!("bound_outputs[{i}]: {e}"))?;
        let (source, _) = output_beneath(produced, &b.from_step, &b.output_id)
            .map_err(|e| format!("bound_outputs[{i}]: {e}"))?;
        out.push(PackSource {
            as_path: b.as_path,
            source,
        });
    }
    Ok(out)
}

fn from_receipt(r: Receipt) -> StepResult {
    let mut res = StepResult::completed();
    res.receipt = serde_json::to_value(&r).ok();
    res
}

fn from_failure(f: StepFailure, redactor: &Redactor) -> StepResult {
    StepResult::failed(&f.reason_slug, redactor.redact(&f.message))
}

/// The file bound to input `name`, to be opened beneath its folder (never by the path the
/// inputs hold, which a link swapped in later could redirect). It passed the same check
/// before the step was charged, so a failure now is a change since: refundable.
fn input_file(ctx: &BuiltinCtx, name: &str) -> Result<Option<Beneath>, StepFailure> {
    let inputs = ctx.step_files.join("inputs");
    bound_file(ctx.step, name, ctx.produced, &inputs).map_err(StepFailure::module_failed)
}

/// The required `package_zip` input of a delivery.
fn package_zip(ctx: &BuiltinCtx) -> Result<Beneath, StepFailure> {
    input_file(ctx, "package_zip")?
        .ok_or_else(|| StepFailure::input_invalid("input 'package_zip' is required"))
}

/// Run one built-in. Never panics; every problem is a FAILED result with a reason slug.
pub fn run(ctx: &BuiltinCtx) -> StepResult {
    let outputs_dir = ctx.step_dir.join("outputs");
    if outputs_dir.exists() {
        let _ = std::fs::remove_dir_all(&outputs_dir);
    }
    if let Err(e) = std::fs::create_dir_all(&outputs_dir) {
        return StepResult::failed(
            "module_failed",
            format!("cannot create {}: {e}", outputs_dir.display()),
        );
    }
    match ctx.name {
        "package_std" => package_std(ctx, &outputs_dir),
        "deliver_local" => {
            let (zip, manifest) = match (package_zip(ctx), input_file(ctx, "manifest_json")) {
                (Ok(z), Ok(m)) => (z, m),
                (Err(f), _) | (_, Err(f)) => return from_failure(f, ctx.redactor),
            };
            let dest = ctx
                .runtime_dir
                .join("deliveries")
                .join(ctx.tenant_id)
                .join(ctx.work_order_id)
                .join(&ctx.step.step_id);
            match deliver_local(&zip, manifest.as_ref(), &dest) {
                Ok(r) => from_receipt(r),
                Err(f) => from_failure(f, ctx.redactor),
            }
        }
        "deliver_email" => {
            let zip = match package_zip(ctx) {
                Ok(z) => z,
                Err(f) => return from_failure(f, ctx.redactor),
            };
            let settings = match SmtpSettings::from_profile(ctx.profile.smtp.as_ref()) {
                Ok(s) => s,
                Err(e) => return StepResult::failed("input_invalid", e),
            };
            let creds = credentials_from_secrets();
            let s = |k: &str| {
                ctx.inputs
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            match deliver_email(&settings, creds, &zip, &s("recipient_email"), &s("subject")) {
                Ok(r) => from_receipt(r),
                Err(f) => from_failure(f, ctx.redactor),
            }
        }
        "deliver_github_release" => deliver_github(ctx),
        other => StepResult::failed("module_failed", format!("unknown built-in '{other}'")),
    }
}

fn package_std(ctx: &BuiltinCtx, outputs_dir: &Path) -> StepResult {
    // Checked before the step was charged; a failure now is a change since: refundable.
    let sources = match package_sources(ctx.step, ctx.produced) {
        Ok(s) => s,
        Err(why) => return StepResult::failed("module_failed", why),
    };
    let path = |id: &str, default: &str| {
        outputs_dir.join(
            ctx.contract
                .output_path(id)
                .unwrap_or_else(|| default.to_string()),
        )
    };
    let zip = path("package_zip", "package.zip");
    let mj = path("manifest_json", "manifest.json");
    let mc = path("manifest_csv", "manifest.csv");
    for p in [&zip, &mj, &mc] {
        if let Some(parent) = p.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
    }
    if let Err(e) = build_package(&sources, &zip, Some(&mj), Some(&mc)) {
        return StepResult::failed("module_failed", ctx.redactor.redact(&e.message));
    }
    let mut res = StepResult::completed();
    match outputs::collect(ctx.contract, outputs_dir) {
        Ok(files) => res.outputs = files,
        Err(r) => return StepResult::failed(r.slug, r.message),
    }
    res
}

/// Uploads to the release the profile's template derives for this run: the work order
/// chooses nothing but the package (SPEC §6), and the client it uses cannot write the state
/// release.
fn deliver_github(ctx: &BuiltinCtx) -> StepResult {
    use crate::github::{deliver_to_release, GithubClient, GithubSettings, Purpose, ReleaseOwner};
    let zip = match package_zip(ctx) {
        Ok(z) => z,
        Err(f) => return from_failure(f, ctx.redactor),
    };
    let file = ctx
        .profile
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let Some(gh) = &ctx.profile.github else {
        return StepResult::failed(
            "input_invalid",
            "the runtime profile has no github: block; pass --runtime-profile with one",
        );
    };
    let settings = match GithubSettings::from_value(gh, &file) {
        Ok(s) => s,
        Err(e) => return StepResult::failed("input_invalid", e.message),
    };
    let owner = ReleaseOwner::new(ctx.tenant_id, ctx.work_order_id, ctx.run);
    let client = match GithubClient::from_env(&settings, Purpose::Delivery) {
        Ok(c) => c,
        Err(e) => return StepResult::failed("delivery_failed", e.message),
    };
    // The uploader reads by path: it gets a copy made from the opened file, in this step's
    // own folder, so no link swapped in afterwards can redirect the upload.
    let staged = ctx.step_dir.join("upload");
    let _ = std::fs::remove_dir_all(&staged);
    let name = zip.file_name().unwrap_or_default();
    let copy = staged.join(name);
    if let Err(why) = zip
        .open_file()
        .map_err(|r| r.to_string())
        .and_then(|mut f| crate::beneath::copy_opened(&mut f, &copy).map_err(|e| e.to_string()))
    {
        return StepResult::failed("module_failed", format!("input 'package_zip': {why}"));
    }
    let delivered = deliver_to_release(&client, &owner, &copy);
    let _ = std::fs::remove_dir_all(&staged);
    match delivered {
        Ok(d) => from_receipt(Receipt {
            provider: "github_release".into(),
            remote_path: d.url.clone(),
            object_id: Some(d.asset_id.to_string()),
            bytes: d.bytes,
            sha256: d.sha256,
            verification_status: "verified".into(),
        }),
        Err(e) => StepResult::failed("delivery_failed", ctx.redactor.redact(&e.message)),
    }
}
