//! `platform module test <module_id>`: `crate::runner::self_test` runs the module's `self_test` in a scratch folder; renders what it found.
use super::Ctx;
use crate::cli::ModuleTestArgs;
use crate::error::Result;
use crate::output::{Report, View};
use crate::runner::self_test::{self_test, SelfTestReport};

pub fn run(ctx: &Ctx, args: &ModuleTestArgs) -> Result<Report> {
    Ok(Report::of(&self_test(ctx.repo(), &args.module_id)?))
}

impl View for SelfTestReport {
    fn text(&self) -> String {
        let verdict = if self.passed { "passed" } else { "FAILED" };
        let mut text = format!("module {} self-test: {verdict}\n", self.module_id);
        for p in &self.problems {
            text.push_str(&format!("  - {p}\n"));
        }
        for (name, log) in &self.logs {
            text.push_str(&format!("--- {name}\n{log}\n"));
        }
        text
    }

    fn exit_code(&self) -> u8 {
        u8::from(!self.passed)
    }
}
