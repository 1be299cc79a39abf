//! Built-in modules (SPEC §2), run in-process by the runner: each in its own file with its
//! pre-charge check and its run; no CLI, no ledger. The names are `contract::Builtin`.
pub mod deadline;
pub mod deliver_email;
pub mod deliver_github_release;
pub mod deliver_local;
pub mod package;
pub mod package_std;
pub mod receipt;

pub use deadline::Deadline;
pub use deliver_email::{
    deliver_email, deliver_email_as_read, SmtpSettings, SmtpTls, EMAIL_MAX_PACKAGE_BYTES,
};
pub use deliver_local::{deliver_local, deliver_local_as_read};
pub use package::{build_package, ManifestEntry, PackSource, PackageSummary};
pub use receipt::{Receipt, StepFailure};

use crate::beneath::Beneath;
use crate::config::profile::RuntimeProfile;
use crate::contract::{Builtin, ModuleContract};
use crate::workorder::bindings::{bound_file, Produced};
use crate::workorder::model::Step;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything a built-in may use: the step, its resolved inputs, what earlier steps left.
pub struct BuiltinStep<'a> {
    pub step: &'a Step,
    pub contract: &'a ModuleContract,
    pub inputs: &'a serde_json::Map<String, serde_json::Value>,
    pub produced: &'a BTreeMap<String, Produced<'a>>,
    /// The step's folder beneath the runtime directory (asset copies are read through it).
    pub files: &'a Beneath,
    pub runtime_dir: &'a Path,
    pub tenant_id: &'a str,
    pub work_order_id: &'a str,
    pub run: u64,
    pub profile: &'a RuntimeProfile,
    /// The module's `timeout_seconds` from the start of the run: the built-ins that wait on a
    /// server end by then, FAILED `timeout` (SPEC §2), as a command module is killed.
    pub deadline: Deadline,
}

/// One built-in's code.
pub trait Implementation {
    /// Everything about its input that can be refused before the step is charged (SPEC §4:
    /// an input error costs nothing). Err says why. It must not touch anything outside.
    fn precheck(&self, s: &BuiltinStep) -> Result<(), String>;
    /// Run it, writing any outputs to `<step>/outputs/` (empty on entry; the runner records
    /// them afterwards). A delivery hands back its receipt.
    fn run(&self, s: &BuiltinStep) -> Result<Option<Receipt>, StepFailure>;
}

/// The code of a built-in.
pub fn implementation(b: Builtin) -> &'static dyn Implementation {
    match b {
        Builtin::PackageStd => &package_std::PackageStd,
        Builtin::DeliverLocal => &deliver_local::DeliverLocal,
        Builtin::DeliverEmail => &deliver_email::DeliverEmail,
        Builtin::DeliverGithubRelease => &deliver_github_release::DeliverGithubRelease,
    }
}

impl BuiltinStep<'_> {
    /// The step's outputs folder.
    pub fn outputs_dir(&self) -> PathBuf {
        self.files.path().join("outputs")
    }

    /// The file bound to input `name`, to be opened beneath its folder (never by the path
    /// the inputs hold, which a link swapped in later could redirect). It passed the same
    /// check before the step was charged, so a failure now is a change since: refundable.
    pub fn input_file(&self, name: &str) -> Result<Option<Beneath>, StepFailure> {
        let inputs = self.files.join("inputs");
        bound_file(self.step, name, self.produced, &inputs).map_err(StepFailure::module_failed)
    }

    /// For input `name` bound to an earlier step's file output: the bytes just read from it
    /// (`bytes`, `sha256`, hashed as they were read) must be the ones that step's outcome
    /// recorded. The binding was checked before the step ran; a file swapped between that
    /// check and this read would otherwise be delivered as the tenant's, under a receipt
    /// naming its digest. Checked where the bytes are read anyway: no extra pass over them.
    pub fn check_as_read(&self, name: &str, bytes: u64, sha256: &str) -> Result<(), StepFailure> {
        let Some(crate::workorder::model::InputValue::Output {
            from_step,
            output_id,
        }) = self.step.inputs.get(name)
        else {
            return Ok(());
        };
        let recorded = self.produced.get(from_step).and_then(|p| {
            p.recorded
                .iter()
                .find(|r| &r.output_id == output_id && r.files.is_none())
        });
        match recorded {
            Some(r) if r.bytes == bytes && r.sha256 == sha256 => Ok(()),
            Some(r) => Err(StepFailure::module_failed(format!(
                "input '{name}' (output '{output_id}' of step '{from_step}') changed while it was read: {bytes} bytes, sha256 {}; step '{from_step}' recorded {} bytes, sha256 {}; nothing of it was delivered as the tenant's",
                crate::digest::short(sha256),
                r.bytes,
                crate::digest::short(&r.sha256)
            ))),
            None => Err(StepFailure::module_failed(format!(
                "input '{name}': step '{from_step}' records no file output '{output_id}'"
            ))),
        }
    }

    /// Which delivery this step is: tenant, work order, run and step, one per line (IDs hold
    /// no newline). Not the attempt: a retry or a re-send after a crash is the same delivery.
    pub fn delivery_id(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}",
            self.tenant_id, self.work_order_id, self.run, self.step.step_id
        )
    }

    /// The required `package_zip` input of a delivery.
    pub fn package_zip(&self) -> Result<Beneath, StepFailure> {
        self.input_file("package_zip")?
            .ok_or_else(|| StepFailure::input_invalid("input 'package_zip' is required"))
    }

    /// A string input (empty when absent: the module's schema makes it required).
    pub fn text(&self, name: &str) -> &str {
        self.inputs
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
    }
}
