//! `platform man`: the man page clap_mangen renders from the CLI's own definition, or one page per command written into a folder.
use super::Ctx;
use crate::cli::{Cli, ManArgs};
use crate::error::{Error, Result};
use crate::output::Report;
use clap::CommandFactory;
use std::path::{Path, PathBuf};

pub fn run(_ctx: &Ctx, args: &ManArgs) -> Result<Report> {
    let cli = Cli::command();
    let Some(dir) = &args.dir else {
        return Ok(Report::verbatim(render(cli)?));
    };
    let help = "give --dir a folder this user can create and write, e.g. --dir ./man (or run `platform man` without --dir to print the page)";
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, &e).help(help))?;
    let written = write_pages(dir, cli).map_err(|e| match e.help {
        None => e.help(help),
        Some(_) => e,
    })?;
    let lines: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    let text = format!("wrote {} man pages:\n{}", lines.len(), lines.join("\n"));
    Ok(Report::new(text, serde_json::json!({ "written": lines })))
}

fn render(cmd: clap::Command) -> Result<String> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .map_err(|e| Error::failure(format!("rendering the man page: {e}")))?;
    String::from_utf8(page).map_err(|e| Error::failure(format!("the man page is not UTF-8: {e}")))
}

/// `platform.1`, then `platform-<command>.1` for every command and nested command (the
/// names `man platform-orchestrator` finds), each written whole or not at all.
fn write_pages(dir: &Path, cli: clap::Command) -> Result<Vec<PathBuf>> {
    let mut cli = cli;
    // Built, so each subcommand knows its full name (`platform-ledger-merge`) and usage.
    cli.build();
    let mut pages = vec![(cli.get_name().to_string(), cli.clone())];
    collect(&cli, cli.get_name(), &mut pages);
    let mut written = Vec::new();
    for (name, cmd) in pages {
        let path = dir.join(format!("{name}.1"));
        let text = render(cmd)?;
        crate::atomic::write_atomic(&path, text.as_bytes(), false)?;
        written.push(path);
    }
    Ok(written)
}

fn collect(cmd: &clap::Command, prefix: &str, pages: &mut Vec<(String, clap::Command)>) {
    // clap's generated `help` subcommands are not commands of their own.
    let subs = cmd.get_subcommands();
    for sub in subs.filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        let name = format!("{prefix}-{}", sub.get_name());
        pages.push((name.clone(), sub.clone()));
        collect(sub, &name, pages);
    }
}
