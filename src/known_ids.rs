//! Whether a `--tenant-id` or `--work-order-id` names a tenant or work order of the repository or the ledger: anything else is a typo, an input error with the closest ids, never a quiet zero.
use crate::error::{Error, Result};
use std::path::Path;

/// Ok when `tenant_id` is an ID and a tenant folder of `repo` or among `recorded` (the
/// tenants the ledger names); else an input error with the closest known tenants.
pub fn require_known<'a>(
    repo: &Path,
    tenant_id: &str,
    recorded: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    // First: `''` and `..` join to tenants/ and the repository, folders both.
    check_tenant_id(tenant_id)?;
    let tenants = repo.join("tenants");
    // A link is not a tenant (SPEC §6), so it does not make an id known either.
    let is_folder = std::fs::symlink_metadata(tenants.join(tenant_id)).is_ok_and(|m| m.is_dir());
    let recorded: Vec<&str> = recorded.into_iter().collect();
    if is_folder || recorded.contains(&tenant_id) {
        return Ok(());
    }
    Err(Error::input(format!(
        "unknown tenant '{tenant_id}': no folder {} and no record of it in the ledger",
        tenants.join(tenant_id).display()
    ))
    .topic(crate::error::Topic::UnknownTenant)
    .help(known_tenants_help(repo, tenant_id, &recorded)))
}

/// `--tenant-id` as an ID (SPEC: 1-64 characters of `[A-Za-z0-9_-]`).
pub fn check_tenant_id(tenant_id: &str) -> Result<()> {
    match crate::ids::check(tenant_id) {
        None => Ok(()),
        Some(why) => Err(Error::input(format!("--tenant-id: {why}"))
            .help("tenant IDs are 1-64 characters of [A-Za-z0-9_-]")),
    }
}

/// `did you mean 'x'? (known tenants: ...)` for a mistyped `tenant_id`: the tenant folders of
/// `repo` and the `recorded` tenants, the closest first named.
pub fn known_tenants_help(repo: &Path, tenant_id: &str, recorded: &[&str]) -> String {
    let mut known = folder_names(&repo.join("tenants"));
    known.extend(recorded.iter().map(|s| s.to_string()));
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    closest_and_known(tenant_id, known, "known tenants")
}

/// Ok when `wo` is among `known` (the ids of work-order files and of work orders with runs,
/// of `tenant` when given); else an input error with the closest known ones.
pub fn require_known_work_order<'a>(
    wo: &str,
    tenant: Option<&str>,
    known: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    let known: Vec<&str> = known.into_iter().collect();
    if known.contains(&wo) {
        return Ok(());
    }
    let whose = tenant.map_or("any tenant".to_string(), |t| format!("tenant {t}"));
    Err(Error::input(format!(
        "--work-order-id: unknown work order '{wo}': no work-order file of {whose} has that id, and the ledger has no run of it"
    ))
    .help(closest_and_known(wo, known, "known")))
}

/// The work orders `history` has runs of (of `tenant`, when given).
pub fn with_runs<'a>(
    history: &'a crate::runs::history::History,
    tenant: Option<&'a str>,
) -> impl Iterator<Item = &'a str> {
    history
        .work_orders
        .keys()
        .filter(move |(t, _)| tenant.is_none_or(|x| x == t))
        .map(|(_, w)| w.as_str())
}

/// `did you mean 'x'? (<label>: a, b, ...)`: the closest of `known` to `query`, then the known
/// ids (sorted, at most ten named). `query` itself is neither suggested nor listed: where it
/// is among `known` (a tenant folder without tenant.yml), naming it back is no help.
fn closest_and_known(query: &str, mut known: Vec<&str>, label: &str) -> String {
    known.retain(|k| *k != query);
    known.sort_unstable();
    known.dedup();
    let listed = match known.len() {
        0 => "none".to_string(),
        n if n > 10 => format!("{} and {} more", known[..10].join(", "), n - 10),
        _ => known.join(", "),
    };
    format!(
        "{}({label}: {listed})",
        crate::suggest::hint(query, known.iter().copied())
    )
}

/// The ids of the work-order files (`tenants/<t>/workorders/<id>.yml` or `.yaml`) of
/// `tenant`, or of every tenant: names only, nothing is read.
pub fn work_order_file_ids(repo: &Path, tenant: Option<&str>) -> Vec<String> {
    let tenants = repo.join("tenants");
    let folders = match tenant {
        Some(t) => vec![t.to_string()],
        None => folder_names(&tenants),
    };
    let mut ids = Vec::new();
    for t in folders {
        let Ok(entries) = std::fs::read_dir(tenants.join(t).join("workorders")) else {
            continue;
        };
        ids.extend(entries.filter_map(|e| e.ok()).filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (id, ext) = name.rsplit_once('.')?;
            // A file name is the tenant's to choose: only an id is shown back.
            (matches!(ext, "yml" | "yaml") && crate::ids::check(id).is_none())
                .then(|| id.to_string())
        }));
    }
    ids
}

fn folder_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| crate::ids::check(n).is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_or_ledger_makes_a_tenant_known() {
        let t = crate::testing::tree(&["tenants/acme"], &[]);
        assert!(require_known(t.path(), "acme", []).is_ok());
        assert!(require_known(t.path(), "gone", ["gone"]).is_ok());
        let err = require_known(t.path(), "acm", ["gone"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.help.unwrap().contains("did you mean 'acme'?"));
    }
}
