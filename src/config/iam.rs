//! config/iam.yml: actors, roles and scopes for privileged commands. Unknown roles or scopes
//! fail closed; a missing file grants nothing.
pub use crate::audit::Scope;
use crate::error::{Error, Result};
use crate::findings::Finding;
use crate::schema::SchemaKind;
use crate::yaml::Doc;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

pub const IAM_FILE: &str = "config/iam.yml";

#[derive(Debug, Clone, Default)]
pub struct Iam {
    roles: BTreeMap<String, Vec<Scope>>,
    actors: BTreeMap<String, Vec<String>>,
}

/// config/iam.yml as its schema describes it.
#[derive(Deserialize)]
struct IamFile {
    roles: BTreeMap<String, Vec<String>>,
    actors: Vec<ActorEntry>,
}

#[derive(Deserialize)]
struct ActorEntry {
    id: String,
    roles: Vec<String>,
}

impl Iam {
    /// Parse and check config/iam.yml; a missing file is an empty IAM (every request denied).
    pub fn load(root: &Path) -> (Iam, Vec<Finding>) {
        let doc = match super::load_checked(root, IAM_FILE, SchemaKind::Iam, false) {
            Ok(None) => return (Iam::default(), Vec::new()),
            Ok(Some(doc)) => doc,
            Err(findings) => return (Iam::default(), findings),
        };
        // The schema has checked the shape; a mismatch here is a finding all the same.
        let file: IamFile = match serde_json::from_value(doc.value.clone()) {
            Ok(f) => f,
            Err(e) => return (Iam::default(), vec![doc.finding("", e.to_string())]),
        };
        let mut out = Vec::new();
        let mut iam = Iam {
            roles: roles(&doc, file.roles, &mut out),
            actors: BTreeMap::new(),
        };
        for (i, actor) in file.actors.into_iter().enumerate() {
            iam.add_actor(&doc, i, actor, &mut out);
        }
        (iam, out)
    }

    /// An actor whose roles are all defined; each problem is a finding at its field.
    fn add_actor(&mut self, doc: &Doc, i: usize, actor: ActorEntry, out: &mut Vec<Finding>) {
        let id = actor.id;
        for (j, r) in actor.roles.iter().enumerate() {
            if !self.roles.contains_key(r) {
                out.push(doc.finding(
                    &format!("actors[{i}].roles[{j}]"),
                    format!("actor '{id}' has unknown role '{r}'; define it under roles:"),
                ));
            }
        }
        if self.actors.insert(id.clone(), actor.roles).is_some() {
            out.push(doc.finding(
                &format!("actors[{i}].id"),
                format!("actor '{id}' is listed twice"),
            ));
        }
    }

    /// Load, failing closed on any problem in the file.
    pub fn load_strict(root: &Path) -> Result<Iam> {
        let help = "fix config/iam.yml (see `platform schema iam`)";
        crate::findings::fail_closed(Iam::load(root), help)
    }

    /// Ok when `actor` holds `scope` through one of its roles; Err(reason) otherwise.
    pub fn check(&self, actor: &str, scope: Scope) -> std::result::Result<(), String> {
        let Some(roles) = self.actors.get(actor) else {
            return Err(format!("actor '{actor}' is not listed in {IAM_FILE}"));
        };
        let granted = roles
            .iter()
            .any(|r| self.roles.get(r).is_some_and(|s| s.contains(&scope)));
        if granted {
            Ok(())
        } else {
            Err(format!(
                "actor '{actor}' has no role granting scope '{scope}'"
            ))
        }
    }
}

/// Each role's scopes; an unknown scope is a finding (and grants nothing).
fn roles(
    doc: &Doc,
    roles: BTreeMap<String, Vec<String>>,
    out: &mut Vec<Finding>,
) -> BTreeMap<String, Vec<Scope>> {
    let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    let mut granted = BTreeMap::new();
    for (role, names) in roles {
        let mut scopes = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            match Scope::parse(name) {
                Some(scope) => scopes.push(scope),
                None => out.push(doc.finding(
                    &format!("roles.{role}[{i}]"),
                    format!("unknown scope '{name}' (known: {})", known.join(", ")),
                )),
            }
        }
        granted.insert(role, scopes);
    }
    granted
}

/// The acting identity: `--actor`, else `$GITHUB_ACTOR`, else an input error.
pub fn resolve_actor(flag: Option<&str>) -> Result<String> {
    if let Some(a) = flag.filter(|a| !a.trim().is_empty()) {
        return Ok(a.to_string());
    }
    let help = "pass --actor ID, or give GITHUB_ACTOR a UTF-8 value";
    match crate::env_text::read("GITHUB_ACTOR", help)? {
        Some(a) => Ok(a),
        None => Err(
            Error::input("no actor: this command needs an acting identity")
                .help("pass --actor ID, or set GITHUB_ACTOR (GitHub Actions sets it)"),
        ),
    }
}
