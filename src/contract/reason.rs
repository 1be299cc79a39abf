//! Reason slugs as the code names them — why a step failed, why it was skipped (SPEC §3, §4);
//! the slug is only their wire form. Whether a failure is refunded is the registry's call.
use serde::{Deserialize, Serialize};

/// Why a step was skipped: it did not run and nothing was charged (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// A step it reads from did not complete.
    UpstreamFailed,
    /// An earlier step failed and the work order is FAIL_FAST.
    FailFast,
}

impl Skip {
    pub const ALL: [Skip; 2] = [Skip::UpstreamFailed, Skip::FailFast];

    /// Its serde name.
    pub fn slug(self) -> &'static str {
        match self {
            Skip::UpstreamFailed => "upstream_failed",
            Skip::FailFast => "fail_fast",
        }
    }

    pub fn from_slug(slug: &str) -> Option<Skip> {
        Skip::ALL.into_iter().find(|s| s.slug() == slug)
    }
}

/// Why a step failed: the platform's own reasons by name, and a slug a module reported
/// (one config/registry.yml declares) as itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum Failure {
    ModuleFailed,
    Timeout,
    OutputsMissing,
    OutputsTooLarge,
    DeliveryFailed,
    PackageTooLargeForEmail,
    InputInvalid,
    NotEnoughCredits,
    SecretsMissing,
    Superseded,
    /// The tenant's plan does not allow a module of the run (SPEC §10).
    NotEntitled,
    /// The module's usage report is not one its pricing allows (SPEC §10): refunded.
    UsageInvalid,
    /// A slug the platform does not name itself; the registry says whether it is known.
    Registered(String),
}

impl Failure {
    /// Every reason the platform names itself.
    pub const NAMED: [Failure; 12] = [
        Failure::ModuleFailed,
        Failure::Timeout,
        Failure::OutputsMissing,
        Failure::OutputsTooLarge,
        Failure::DeliveryFailed,
        Failure::PackageTooLargeForEmail,
        Failure::InputInvalid,
        Failure::NotEnoughCredits,
        Failure::SecretsMissing,
        Failure::Superseded,
        Failure::NotEntitled,
        Failure::UsageInvalid,
    ];

    pub fn slug(&self) -> &str {
        match self {
            Failure::ModuleFailed => "module_failed",
            Failure::Timeout => "timeout",
            Failure::OutputsMissing => "outputs_missing",
            Failure::OutputsTooLarge => "outputs_too_large",
            Failure::DeliveryFailed => "delivery_failed",
            Failure::PackageTooLargeForEmail => "package_too_large_for_email",
            Failure::InputInvalid => "input_invalid",
            Failure::NotEnoughCredits => "not_enough_credits",
            Failure::SecretsMissing => "secrets_missing",
            Failure::Superseded => "superseded",
            Failure::NotEntitled => "not_entitled",
            Failure::UsageInvalid => "usage_invalid",
            Failure::Registered(slug) => slug,
        }
    }

    /// The named reason of `slug`, else the slug as a registered one.
    pub fn from_slug(slug: &str) -> Failure {
        Failure::NAMED
            .into_iter()
            .find(|f| f.slug() == slug)
            .unwrap_or_else(|| Failure::Registered(slug.to_string()))
    }

    /// Only the platform decides it (a refusal, a closing): a module cannot report it.
    fn platform_only(&self) -> bool {
        self.before_charging() || matches!(self, Failure::Superseded | Failure::UsageInvalid)
    }

    /// Found before the step was charged, so nothing was (SPEC §4): never the outcome of a
    /// step that ran, which was charged and is refunded if it fails.
    pub fn before_charging(&self) -> bool {
        matches!(
            self,
            Failure::NotEnoughCredits
                | Failure::SecretsMissing
                | Failure::NotEntitled
                | Failure::InputInvalid
        )
    }
}

/// Whether a module may report `slug` as its reason (given the registry knows it): never a
/// skip or a reason only the platform decides, which would fail closed as `module_failed`.
pub fn module_may_report(slug: &str) -> bool {
    Skip::from_slug(slug).is_none() && !Failure::from_slug(slug).platform_only()
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.slug())
    }
}

/// A reason compares equal to its slug, as the records hold it.
impl PartialEq<&str> for Failure {
    fn eq(&self, slug: &&str) -> bool {
        self.slug() == *slug
    }
}

impl From<Failure> for String {
    fn from(f: Failure) -> String {
        f.slug().to_string()
    }
}

impl From<String> for Failure {
    fn from(slug: String) -> Failure {
        Failure::from_slug(&slug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_round_trip_through_serde() {
        let named = |slug: &str| Some(Failure::from_slug(slug));
        crate::testing::assert_wire_names(Failure::NAMED, |f| f.slug(), named);
        let custom: Failure = serde_json::from_str("\"quota_exceeded\"").unwrap();
        assert_eq!(custom, Failure::Registered("quota_exceeded".into()));
        assert_eq!(
            serde_json::to_string(&custom).unwrap(),
            "\"quota_exceeded\""
        );
        crate::testing::assert_wire_names(Skip::ALL, |s| s.slug(), Skip::from_slug);
        assert!(serde_json::from_str::<Skip>("\"timeout\"").is_err());
    }

    #[test]
    fn a_named_slug_is_never_a_registered_one() {
        assert_eq!(Failure::from_slug("timeout"), Failure::Timeout);
        assert_eq!(Failure::from_slug("module_failed"), "module_failed");
    }

    #[test]
    fn modules_cannot_report_what_only_the_platform_decides() {
        for slug in [
            "not_enough_credits",
            "secrets_missing",
            "upstream_failed",
            "fail_fast",
            "superseded",
            "not_entitled",
            "usage_invalid",
            // Found before charging: a module that ran was charged (SPEC §4).
            "input_invalid",
        ] {
            assert!(!module_may_report(slug), "{slug}");
        }
        for slug in ["module_failed", "timeout", "quota_exceeded"] {
            assert!(module_may_report(slug), "{slug}");
        }
    }
}
