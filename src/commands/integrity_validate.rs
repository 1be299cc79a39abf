//! `platform integrity-validate`: the checks of `crate::integrity`; every problem as `file:line: message`, exit 1 on any.
use super::Ctx;
use crate::cli::IntegrityValidateArgs;
use crate::error::Result;
use crate::integrity::{self, Integrity};
use crate::output::{Report, View};

pub fn run(ctx: &Ctx, args: &IntegrityValidateArgs) -> Result<Report> {
    let dir = ctx.state_dir(&args.state)?;
    let runtime = crate::dirs::runtime(ctx.repo(), None, args.runtime_dir.as_deref())?;
    // A file there would be "no runtime directory", and the check would pass unsaid.
    if let Some(e) = crate::folder::not_a_folder(&runtime, "runtime directory") {
        return Err(e);
    }
    Ok(Report::of(&integrity::check(ctx.repo(), &dir, &runtime)?))
}

impl View for Integrity {
    fn text(&self) -> String {
        let mut text = String::new();
        for p in &self.problems {
            text.push_str(&format!("{p}\n"));
        }
        let summary: Vec<String> = self
            .files
            .iter()
            .map(|f| format!("{} {} record(s)", f.stream.file_name(), f.records))
            .collect();
        text.push_str(&format!(
            "{}: {} in {}",
            if self.ok { "ok" } else { "FAILED" },
            summary.join(", "),
            self.billing_state_dir
        ));
        if let Some(s) = &self.signed_heads {
            text.push_str(&format!("; {}", s.summary()));
        }
        if self.runtime.files_checked > 0 {
            text.push_str(&format!(
                "; {} runtime record file(s) in {}",
                self.runtime.files_checked, self.runtime.dir
            ));
        }
        let r = &self.runtime;
        if r.outputs_checked + r.outputs_absent > 0 {
            text.push_str(&format!(
                "; {} recorded step output(s) compared, {} absent from the runtime directory (not checked)",
                r.outputs_checked, r.outputs_absent
            ));
        }
        if r.deliveries_checked + r.deliveries_absent > 0 {
            text.push_str(&format!(
                "; {} local delivery copies compared with their receipts, {} absent (not checked)",
                r.deliveries_checked, r.deliveries_absent
            ));
        }
        if !self.ok {
            text.push_str(&format!("\n{} problem(s)", self.problems.len()));
        }
        text
    }

    fn exit_code(&self) -> u8 {
        u8::from(!self.ok)
    }
}
