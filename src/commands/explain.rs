//! `platform explain [TOPIC] [--json]`: one topic, or the list of every topic.
use super::Ctx;
use crate::cli::{Cli, ExplainArgs};
use crate::config::registry::Registry;
use crate::error::Result;
use crate::explain::{self, Topic, TopicKind};
use crate::output::Report;
use clap::CommandFactory;
use serde_json::json;

pub fn run(ctx: &Ctx, args: &ExplainArgs) -> Result<Report> {
    // A repository's registry adds its own slugs; outside one, the built-ins still explain.
    let (registry, _) = Registry::load(ctx.repo());
    let topics = explain::catalog(&registry, command_topics());
    let Some(query) = &args.topic else {
        return Ok(Report::new(list_text(&topics), json!({ "topics": topics })));
    };
    let topic = explain::lookup(&topics, query)?;
    Ok(Report::new(topic_text(topic), json!(topic)))
}

/// Every command, from the CLI's own help: what it does and its usage line. A subcommand's
/// topic is its path as typed (`command:ledger merge`); clap's own `help` is not a topic
/// (`platform help --help` is no command).
fn command_topics() -> Vec<Topic> {
    fn walk(cmd: &mut clap::Command, prefix: &str, out: &mut Vec<Topic>) {
        for c in cmd.get_subcommands_mut().filter(|c| c.get_name() != "help") {
            let path = format!("{prefix}{}", c.get_name());
            let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
            let usage = c.render_usage().to_string();
            let todo = format!("{usage}; `platform {path} --help` lists every flag");
            out.push(Topic::new(TopicKind::Command, &path, &about, &todo));
            walk(c, &format!("{path} "), out);
        }
    }
    let mut cli = Cli::command();
    // Built, so each subcommand's usage line starts with `platform <path>`.
    cli.build();
    let mut out = Vec::new();
    walk(&mut cli, "", &mut out);
    out
}

fn topic_text(t: &Topic) -> String {
    let refund = match t.refundable {
        Some(true) => " (refunded when a step fails with it)",
        Some(false) => " (nothing is charged, or nothing refunded)",
        None => "",
    };
    format!(
        "{}{refund}\n  {}\nwhat to do: {}\n",
        t.topic, t.meaning, t.what_to_do
    )
}

fn list_text(topics: &[Topic]) -> String {
    let mut out = String::from("Topics (platform explain KIND:NAME, or a bare NAME):\n");
    for kind in TopicKind::ALL {
        let names: Vec<&str> = topics
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.name.as_str())
            .collect();
        if !names.is_empty() {
            out.push_str(&format!("  {}: {}\n", kind.as_str(), names.join(", ")));
        }
    }
    out
}
