//! `platform completions <shell>`: the shell completion script clap_complete writes from the CLI's own definition.
use super::Ctx;
use crate::cli::{Cli, CompletionsArgs};
use crate::error::{Error, Result};
use crate::output::Report;
use clap::CommandFactory;

pub fn run(_ctx: &Ctx, args: &CompletionsArgs) -> Result<Report> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "platform", &mut script);
    let text = String::from_utf8(script)
        .map_err(|e| Error::failure(format!("the completion script is not UTF-8: {e}")))?;
    Ok(Report::verbatim(text))
}
