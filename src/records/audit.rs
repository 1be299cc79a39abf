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

/// An audited denial keeps at most this many characters of each caller-supplied field, so
/// a flood of denied calls with huge arguments cannot grow audit.jsonl without bound.
pub const DENIAL_FIELD_MAX_CHARS: usize = 256;

impl Audit {
    /// The allowed audit record a privileged record needs (see `records::PRIVILEGED`): built
    /// from the record itself, so a writer can add it when a crash left the record without it.
    pub fn for_privileged(
        rule: &crate::records::Privileged,
        actor: &str,
        tenant_id: Option<&str>,
        record_key: &str,
    ) -> Audit {
        Audit {
            action: rule.action.into(),
            scope: rule.scope.into(),
            actor: actor.into(),
            decision: Decision::Allowed,
            reason: None,
            tenant_id: tenant_id.map(str::to_string),
            target: record_key.into(),
            // Kept out of the payload: audit records written before it existed must still
            // match their replays.
            command: None,
        }
    }

    /// The record with every caller-supplied field (actor, reason, tenant, target) cut to
    /// [`DENIAL_FIELD_MAX_CHARS`] characters; a cut field ends in `…`.
    pub fn capped(mut self) -> Audit {
        for field in [&mut self.actor, &mut self.target] {
            cap(field);
        }
        for field in [&mut self.reason, &mut self.tenant_id]
            .into_iter()
            .flatten()
        {
            cap(field);
        }
        self
    }

    /// The key of an allowed action; None for a denial (an event: see [`denied_key`]).
    pub fn key(&self) -> Option<String> {
        match self.decision {
            Decision::Allowed => Some(allowed_key(&self.action, &self.target)),
            Decision::Denied => None,
        }
    }
}

fn cap(s: &mut String) {
    if let Some((at, _)) = s.char_indices().nth(DENIAL_FIELD_MAX_CHARS - 1) {
        if s[at..].chars().count() > 1 {
            s.truncate(at);
            s.push('…');
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
        let huge = Audit {
            actor: "x".repeat(100_000),
            target: format!("topup/acme/{}", "é".repeat(100_000)),
            reason: Some("r".repeat(300)),
            tenant_id: Some("t".repeat(256)),
            ..a.clone()
        }
        .capped();
        for (field, len) in [
            (&huge.actor, 256),
            (&huge.target, 256),
            (huge.reason.as_ref().unwrap(), 256),
            (huge.tenant_id.as_ref().unwrap(), 256),
        ] {
            assert_eq!(field.chars().count(), len, "{field}");
        }
        assert!(huge.actor.ends_with('…'));
        assert_eq!(huge.tenant_id.as_deref(), Some("t".repeat(256).as_str()));
        assert_eq!(a.clone().capped(), a, "short fields are kept whole");
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(
            json["reason"],
            serde_json::Value::Null,
            "nullable fields are written as null"
        );
    }
}
