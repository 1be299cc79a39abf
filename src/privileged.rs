//! IAM authorisation with its audit in one place (SPEC §4): the actor granted a scope, or the denial recorded in audit.jsonl and returned as the exit-3 error.
use crate::audit::{self, Action, Subject};
use crate::config::iam::{resolve_actor, Iam, Scope};
use crate::error::{Error, Result};
use crate::ledger::{Ledger, Repair};
use crate::records::Decision;
use std::path::Path;

/// An actor IAM granted a scope; only [`authorize`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    pub actor: String,
    pub scope: Scope,
}

/// The acting identity (`--actor`, else `$GITHUB_ACTOR`) when IAM grants it `scope`. Else
/// the denial is appended to `dir`'s audit.jsonl (an event of its own, caller-supplied
/// fields capped at 256 characters) whatever else is wrong with the request, and the error
/// (exit 3) names the actor, the scope and every repair the ledger made on the way.
pub fn authorize(
    repo: &Path,
    dir: &Path,
    actor: Option<&str>,
    scope: Scope,
    subject: &Subject,
) -> Result<Authorized> {
    let actor = resolve_actor(actor)?;
    let iam = Iam::load_strict(repo)?;
    match iam.check(&actor, scope) {
        Ok(()) => Ok(Authorized { actor, scope }),
        Err(reason) => Err(deny(dir, &actor, scope, subject, reason)?),
    }
}

/// The audited denial, as the error to return; `Err` only when the ledger cannot be opened.
fn deny(dir: &Path, actor: &str, scope: Scope, subject: &Subject, reason: String) -> Result<Error> {
    let mut err = Error::denied(format!(
        "actor '{actor}' may not {}: {reason}",
        scope.what()
    ))
    .topic(crate::error::Topic::Denied)
    .help(format!(
        "grant the actor a role with scope {scope} in config/iam.yml"
    ));
    let (mut ledger, mut repairs) = Ledger::open(dir)?;
    let denial = audit::record(
        Action::Scoped(scope),
        actor,
        Decision::Denied,
        subject,
        Some(reason),
    );
    match ledger.audit(denial) {
        Ok(out) => repairs.extend(out.repairs),
        Err(e) => err.message.push_str(&format!(
            " (and the denial could not be audited: {})",
            e.message
        )),
    }
    Ok(Repair::reported_in(err, &repairs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::tests::audit_lines;

    fn repo_granting(actor: &str, scope: &str) -> tempfile::TempDir {
        let iam = format!("roles:\n  r: [{scope}]\nactors:\n  - id: {actor}\n    roles: [r]\n");
        crate::testing::tree(&[], &[("config/iam.yml", &iam)])
    }

    #[test]
    fn a_grant_writes_nothing_and_a_denial_is_audited_capped_and_exits_3() {
        let repo = repo_granting("ops", "billing.topup");
        let dir = repo.path().join("state");
        let subject = Subject {
            tenant_id: Some("t".repeat(300)),
            target: "topup/acme/INV-1".into(),
        };
        let ok = authorize(
            repo.path(),
            &dir,
            Some("ops"),
            Scope::BillingTopup,
            &subject,
        );
        assert_eq!(ok.unwrap().actor, "ops");
        assert!(
            audit_lines(&dir).is_empty(),
            "a grant is not an audit record"
        );

        let err = authorize(
            repo.path(),
            &dir,
            Some("ops"),
            Scope::ArtifactsPublish,
            &subject,
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(
            err.message.contains("may not publish artifacts"),
            "{}",
            err.message
        );
        assert!(err.help.unwrap().contains("artifacts.publish"));
        let lines = audit_lines(&dir);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["decision"], "denied");
        assert_eq!(lines[0]["scope"], "artifacts.publish");
        let tenant = lines[0]["tenant_id"].as_str().unwrap();
        assert_eq!(tenant.chars().count(), 256, "capped");
    }
}
