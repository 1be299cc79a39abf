//! `platform explain` (SPEC §10): topics `kind:name` over reason slugs, adjust reasons, exit
//! codes, record types, commands and error kinds, from the registry and the built-in texts.
pub mod texts;

use crate::config::registry::Registry;
use crate::error::{Error, Result};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicKind {
    Slug,
    /// An ADJUST record's `reason_slug` (the registry's `adjust_reasons`).
    Adjust,
    Exit,
    Record,
    Command,
    Error,
}

impl TopicKind {
    pub const ALL: [TopicKind; 6] = [
        TopicKind::Slug,
        TopicKind::Adjust,
        TopicKind::Exit,
        TopicKind::Record,
        TopicKind::Command,
        TopicKind::Error,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            TopicKind::Slug => "slug",
            TopicKind::Adjust => "adjust",
            TopicKind::Exit => "exit",
            TopicKind::Record => "record",
            TopicKind::Command => "command",
            TopicKind::Error => "error",
        }
    }
    fn parse(s: &str) -> Option<TopicKind> {
        TopicKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One thing `explain` can explain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topic {
    /// `kind:name`, as typed.
    pub topic: String,
    pub kind: TopicKind,
    pub name: String,
    pub meaning: String,
    pub what_to_do: String,
    /// Reason slugs only: whether a step failing with it is refunded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refundable: Option<bool>,
}

impl Topic {
    pub fn new(kind: TopicKind, name: &str, meaning: &str, what_to_do: &str) -> Topic {
        Topic {
            topic: format!("{}:{name}", kind.as_str()),
            kind,
            name: name.to_string(),
            meaning: meaning.to_string(),
            what_to_do: what_to_do.to_string(),
            refundable: None,
        }
    }

    /// Whether `name` names this topic: its name, or for a subcommand (`ledger merge`) the
    /// obvious other spellings: `ledger-merge`, `ledger:merge`, or `merge` alone (an ambiguous
    /// name is refused by [`lookup`], naming each topic).
    fn is_named(&self, name: &str) -> bool {
        if self.name == name {
            return true;
        }
        let words: Vec<&str> = self.name.split(' ').collect();
        if self.kind != TopicKind::Command || words.len() < 2 {
            return false;
        }
        name.split_whitespace().eq(words.iter().copied())
            || words.join("-") == name
            || words.join(":") == name
            || words.last() == Some(&name)
    }
}

/// Every topic: the registry's reason slugs (built-in texts, or a registry entry's own
/// description), its adjust reasons, exit codes, record types, then `extra` (commands, from
/// the CLI's help).
pub fn catalog(registry: &Registry, extra: Vec<Topic>) -> Vec<Topic> {
    let mut out: Vec<Topic> = registry
        .reasons()
        .map(|(slug, refundable, description)| {
            let builtin = texts::SLUGS.iter().find(|(n, _, _)| *n == slug);
            let (meaning, todo) = match builtin {
                Some((_, m, t)) => (*m, *t),
                None => (
                    description.unwrap_or("A reason slug added by config/registry.yml."),
                    "See the module that reports it.",
                ),
            };
            let mut t = Topic::new(TopicKind::Slug, slug, meaning, todo);
            t.refundable = Some(refundable);
            t
        })
        .collect();
    // ADJUST records show these in `reason_slug` too (statement), so they are explained.
    out.extend(registry.adjust_reasons().iter().map(|id| {
        match texts::ADJUST_REASONS.iter().find(|(n, _, _)| n == id) {
            Some((n, m, t)) => Topic::new(TopicKind::Adjust, n, m, t),
            None => Topic::new(
                TopicKind::Adjust,
                id,
                registry.adjust_description(id).unwrap_or(
                    "An ADJUST record's reason added by config/registry.yml's adjust_reasons: an operator's correction of a balance (admin-adjust) recorded with this reason.",
                ),
                "See the ADJUST record's reference and note (platform statement) for the case.",
            ),
        }
    }));
    for (kind, table) in [
        (TopicKind::Exit, texts::EXIT_CODES),
        (TopicKind::Record, texts::RECORD_TYPES),
        (TopicKind::Error, texts::ERRORS),
    ] {
        out.extend(table.iter().map(|(n, m, t)| Topic::new(kind, n, m, t)));
    }
    out.extend(extra);
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    out
}

/// The topic a query names: `kind:name`, or a bare name that only one kind has. An unknown
/// or ambiguous query is an input error listing the closest topics.
pub fn lookup<'a>(catalog: &'a [Topic], query: &str) -> Result<&'a Topic> {
    let query = query.trim();
    let matches: Vec<&Topic> = match query.split_once(':') {
        Some((kind, name)) if TopicKind::parse(kind).is_some() => catalog
            .iter()
            .filter(|t| t.kind.as_str() == kind && t.is_named(name))
            .collect(),
        _ => catalog.iter().filter(|t| t.is_named(query)).collect(),
    };
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(
            Error::input(format!("no topic '{}'", crate::output::untrusted(query)))
                .help(suggest(catalog, query)),
        ),
        many => Err(Error::input(format!(
            "'{}' is the name of several topics",
            crate::output::untrusted(query)
        ))
        .help(format!(
            "name one: {}",
            many.iter()
                .map(|t| t.topic.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// "did you mean" for an unknown topic: the closest few by edit distance over names.
fn suggest(catalog: &[Topic], query: &str) -> String {
    // `error:nosuch` is closest to topics of its own kind, whatever other names are near.
    let (kind, bare) = match query.split_once(':') {
        Some((k, n)) => (TopicKind::parse(k), n),
        None => (None, query),
    };
    let of_kind = |t: &&Topic| kind.is_none_or(|k| t.kind == k);
    let names: Vec<&str> = catalog
        .iter()
        .filter(of_kind)
        .map(|t| t.name.as_str())
        .collect();
    let close: Vec<&str> = crate::suggest::closest(bare, names, usize::MAX)
        .into_iter()
        .flat_map(|name| {
            catalog
                .iter()
                .filter(of_kind)
                .filter(move |t| t.name == name)
        })
        .map(|t| t.topic.as_str())
        .take(5)
        .collect();
    if close.is_empty() {
        "run `platform explain` to list every topic".to_string()
    } else {
        format!(
            "closest topics: {} (run `platform explain` to list every topic)",
            close.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_topic_has_a_text_and_every_text_a_topic() {
        let named: Vec<&str> = crate::error::Topic::ALL.iter().map(|t| t.name()).collect();
        let texts: Vec<&str> = texts::ERRORS.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(named, texts);
    }
}
