//! Secrets come from the orchestrator's environment as PLATFORM_SECRET_<NAME> (SPEC §6).

pub const PREFIX: &str = "PLATFORM_SECRET_";

/// NAME → value for every non-empty PLATFORM_SECRET_NAME.
pub fn from_env() -> std::collections::BTreeMap<String, String> {
    std::env::vars()
        .filter_map(|(k, v)| k.strip_prefix(PREFIX).map(|n| (n.to_string(), v)))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// PLATFORM_SECRET_<NAME>, when set and non-empty.
pub fn get(name: &str) -> Option<String> {
    std::env::var(format!("{PREFIX}{name}"))
        .ok()
        .filter(|v| !v.is_empty())
}

/// The private key that signs the state's heads (SPEC §7): a platform credential, read only
/// by `state push`, never handed to a module.
pub const LEDGER_SIGNING_KEY_ENV: &str = "PLATFORM_LEDGER_SIGNING_KEY";

/// PLATFORM_LEDGER_SIGNING_KEY, when set and non-empty.
pub fn ledger_signing_key() -> Option<String> {
    std::env::var(LEDGER_SIGNING_KEY_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
}
