//! Audited actions (SPEC §4, §7): the names audit.jsonl records (the IAM scopes of the privileged commands, the state operations) and the allowed record of what was done; denials are `crate::privileged`'s.
use crate::error::Result;
use crate::ledger::Ledger;
use crate::records::{Audit, Decision};
use serde::Serialize;

/// An IAM scope: what config/iam.yml's roles grant, one per privileged action (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Scope {
    #[serde(rename = "billing.topup")]
    BillingTopup,
    #[serde(rename = "billing.adjust")]
    BillingAdjust,
    #[serde(rename = "orders.rerun")]
    OrdersRerun,
    #[serde(rename = "artifacts.publish")]
    ArtifactsPublish,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::BillingTopup,
        Scope::BillingAdjust,
        Scope::OrdersRerun,
        Scope::ArtifactsPublish,
    ];

    /// The name in config/iam.yml and in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::BillingTopup => "billing.topup",
            Scope::BillingAdjust => "billing.adjust",
            Scope::OrdersRerun => "orders.rerun",
            Scope::ArtifactsPublish => "artifacts.publish",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// What the scope lets an actor do, for the denial's message.
    pub fn what(self) -> &'static str {
        match self {
            Scope::BillingTopup => "top up credits",
            Scope::BillingAdjust => "adjust balances",
            Scope::OrdersRerun => "request re-runs",
            Scope::ArtifactsPublish => "publish artifacts",
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every action audit.jsonl records by name: the privileged commands, each needing the IAM
/// scope of the same name, and the state operations that only key holders can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Scoped(Scope),
    /// `state pull --adopt-unsigned`: records no listed key signed were taken in.
    AdoptUnsigned,
    /// `state push --restore`: a release that failed verification was replaced.
    Restore,
}

impl Action {
    /// The `action` (and `scope`) field of its audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Scoped(scope) => scope.as_str(),
            Action::AdoptUnsigned => "state.adopt_unsigned",
            Action::Restore => "state.restore",
        }
    }

    /// The command line the record names. The scoped actions name none: their records were
    /// written before the field existed, and a replay must post the same payload.
    fn command(self) -> Option<&'static str> {
        match self {
            Action::Scoped(_) => None,
            Action::AdoptUnsigned => Some("platform state pull --adopt-unsigned"),
            Action::Restore => Some("platform state push --restore"),
        }
    }
}

/// What an action was done to, as its audit record names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub tenant_id: Option<String>,
    /// e.g. the TOPUP's key, the dist directory (a denied publish).
    pub target: String,
}

/// Append the allowed audit record of `action` by `actor`; returns its key. The key is
/// `audit/{action}/{target}`, so a replay of the same action is recorded once.
pub fn record_allowed(
    ledger: &mut Ledger,
    action: Action,
    actor: &str,
    subject: &Subject,
    reason: Option<String>,
) -> Result<String> {
    let allowed = record(action, actor, Decision::Allowed, subject, reason);
    let key = allowed.key().unwrap_or_default();
    ledger.audit(allowed)?;
    Ok(key)
}

pub(crate) fn record(
    action: Action,
    actor: &str,
    decision: Decision,
    subject: &Subject,
    reason: Option<String>,
) -> Audit {
    Audit {
        action: action.as_str().into(),
        scope: action.as_str().into(),
        actor: actor.to_string(),
        decision,
        reason,
        tenant_id: subject.tenant_id.clone(),
        target: subject.target.clone(),
        command: action.command().map(str::to_string),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The records of `dir`'s audit.jsonl.
    pub(crate) fn audit_lines(dir: &std::path::Path) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn an_allowed_action_is_recorded_once_under_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ledger, _) = Ledger::open(dir.path()).unwrap();
        let subject = Subject {
            tenant_id: None,
            target: "b1-e2-a3".into(),
        };
        for _ in 0..2 {
            let key = record_allowed(
                &mut ledger,
                Action::Restore,
                "ops",
                &subject,
                Some("why".into()),
            )
            .unwrap();
            assert_eq!(key, "audit/state.restore/b1-e2-a3");
        }
        let lines = audit_lines(dir.path());
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["command"], "platform state push --restore");
        assert_eq!(lines[0]["decision"], "allowed");
    }
}
