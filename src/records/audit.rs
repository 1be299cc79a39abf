//! Audit records of audit.jsonl: every privileged mutation and every denial, and their keys.
use serde::{Deserialize, Serialize};

/// What IAM decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allowed,
    Denied,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Denied => "denied",
        }
    }
}

/// One privileged action (`billing.topup`, `artifacts.publish`) and its decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    /// e.g. `billing.topup`, `artifacts.publish`.
    pub action: String,
    /// The IAM scope the action needs.
    pub scope: String,
    pub actor: String,
    pub decision: Decision,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// What was acted on, e.g. the TOPUP's idempotency key.
    pub target: String,
    /// The command that acted, when the action names it (state operations do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl Audit {
    /// The key of an allowed action; None for a denial (an event: see [`denied_key`]).
    pub fn key(&self) -> Option<String> {
        match self.decision {
            Decision::Allowed => Some(allowed_key(&self.action, &self.target)),
            Decision::Denied => None,
        }
    }
}

/// `audit/{action}/{target}`: an allowed action is audited once, however often it is replayed.
pub fn allowed_key(action: &str, target: &str) -> String {
    format!("audit/{action}/{target}")
}

/// `audit/denied/{action}/{unique}`: every denial is its own event.
pub fn denied_key(action: &str, unique: &str) -> String {
    format!("audit/denied/{action}/{unique}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let mut a = Audit {
            action: "billing.topup".into(),
            scope: "billing.topup".into(),
            actor: "ops".into(),
            decision: Decision::Allowed,
            reason: None,
            tenant_id: Some("acme".into()),
            target: "topup/acme/INV-1".into(),
            command: None,
        };
        assert_eq!(
            a.key().as_deref(),
            Some("audit/billing.topup/topup/acme/INV-1")
        );
        a.decision = Decision::Denied;
        assert_eq!(a.key(), None);
        assert_eq!(
            denied_key("billing.topup", "x-1"),
            "audit/denied/billing.topup/x-1"
        );
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(
            json["reason"],
            serde_json::Value::Null,
            "nullable fields are written as null"
        );
    }
}
