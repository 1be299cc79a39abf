//! Which folders under tenants/ are tenants, and loading them: a tenant is a real folder (no
//! link) named by a valid id, whose tenant.yml and workorders/ are no links either; everything
//! of it is read beneath the repository through no link (SPEC §2, §6).
use super::{load_work_order, LoadedTenant, LoadedWorkOrder, TenantSettings};
use crate::beneath::{Beneath, Kind, Reason};
use crate::error::{Error, Result};
use crate::findings::Finding;
use crate::schema::SchemaKind;
use crate::yaml::{self, Doc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A folder (or link) under tenants/ that is not a tenant: nothing in it is loaded.
#[derive(Debug, Clone)]
pub struct RejectedTenant {
    /// Its name, escaped for display (it may hold anything a file name can).
    pub folder: String,
    pub finding: Finding,
}

/// A folder name as findings show it: control characters escaped, the rest as is (the
/// name is whatever a tenant could create; it must not drive a terminal or a log).
fn printable(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn folder_rel(folder: &str) -> PathBuf {
    Path::new("tenants").join(folder)
}

/// Why `tenants/<folder>` is not a tenant (a finding), or None when it is one. Loading and
/// every command that names a tenant ask this, so they refuse the same folders. A missing
/// tenant.yml is not a reason here: loading reports it as a finding of the tenant.
pub fn not_a_tenant(root: &Path, folder: &str) -> Option<Finding> {
    let shown = printable(folder);
    let file = |name: &str| format!("tenants/{shown}{name}");
    if let Some(why) = crate::ids::check(folder) {
        return Some(Finding::error(
            file("/tenant.yml"),
            "tenant_id",
            format!(
                "tenant folder name: {}; it is not a tenant, so nothing in it is run or billed",
                printable(&why)
            ),
        ));
    }
    let dir = Beneath::new(root, folder_rel(folder));
    let kind = |b: &Beneath| b.metadata().map(|m| m.kind).map_err(|r| r.reason);
    let problem = match kind(&dir) {
        Err(Reason::Symlink) => Some(("", "the tenant folder is a symbolic link".to_string())),
        Err(Reason::Missing) => Some(("", "there is no such folder".to_string())),
        Err(other) => Some(("", format!("the tenant folder {other}"))),
        Ok(Kind::Folder) => None,
        Ok(other) => Some((
            "",
            format!("tenants/{shown} is {}, not a folder", other.describe()),
        )),
    }
    .or_else(|| match dir.join("tenant.yml").metadata() {
        Err(r) if r.reason == Reason::Missing => None,
        Err(r) => Some(("/tenant.yml", format!("tenant.yml {}", r.reason))),
        Ok(m) => dir
            .join("tenant.yml")
            .check_file(m)
            .err()
            .map(|r| ("/tenant.yml", format!("tenant.yml {}", r.reason))),
    })
    .or_else(|| match kind(&dir.join("workorders")) {
        Ok(Kind::Folder) | Err(Reason::Missing) => None,
        Ok(other) => Some((
            "/workorders",
            format!("workorders is {}, not a folder", other.describe()),
        )),
        Err(other) => Some(("/workorders", format!("workorders {other}"))),
    });
    problem.map(|(at, why)| {
        Finding::error(
            file(at),
            "",
            format!("{why}: tenants/{shown} is not a tenant, so nothing in it is loaded, run or billed; make it a real folder with a real tenant.yml and workorders/ (no links)"),
        )
    })
}

/// For a command that names a tenant to bill or re-run (`--tenant-id`): Ok when tenants/<id>
/// is a tenant with a valid tenant.yml; otherwise an input error (exit 2) saying why.
pub fn check_tenant(root: &Path, tenant_id: &str) -> Result<()> {
    let shown = printable(tenant_id);
    // Only an error lists the tenants: the folder is read then, never on the way to Ok.
    let known = || crate::known_ids::known_tenants_help(root, tenant_id, &[]);
    let unknown = |what: &str, help: String| {
        Err(
            Error::input(format!("--tenant-id: unknown tenant '{shown}' (no {what})"))
                .topic(crate::error::Topic::UnknownTenant)
                .help(help),
        )
    };
    let missing = |rel: PathBuf| {
        Beneath::new(root, rel)
            .metadata()
            .is_err_and(|r| r.reason == Reason::Missing)
    };
    if crate::ids::is_valid(tenant_id) && missing(folder_rel(tenant_id)) {
        return unknown(
            &format!("tenants/{tenant_id}/"),
            format!(
                "{}; name an existing tenant, or add tenants/<tenant_id>/tenant.yml first",
                known()
            ),
        );
    }
    if let Some(f) = not_a_tenant(root, tenant_id) {
        return Err(Error::input(format!("--tenant-id: {}", f.message))
            .at(f.file)
            .help("name a tenant of this repository (a real folder tenants/<tenant_id>/ with tenant.yml)"));
    }
    if missing(folder_rel(tenant_id).join("tenant.yml")) {
        // The folder is there: the tenant lacks its file rather than being mistyped, so the
        // help says so first (and `known` never names the input back).
        return unknown(
            &format!("tenants/{shown}/tenant.yml"),
            format!("the folder tenants/{shown}/ has no tenant.yml: add tenants/{shown}/tenant.yml (`platform schema tenant` prints its schema), or name another tenant; {}", known()),
        );
    }
    // An invalid tenant runs nothing: crediting it, or asking it to run again, would act on
    // a tenant the orchestrator refuses.
    let (_, errors) = read_tenant_yml(root, tenant_id);
    if let Some(first) = errors.first() {
        let more = match errors.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return Err(Error::input(format!(
            "--tenant-id: tenant '{tenant_id}' is invalid, so nothing is recorded for it: {}{more}",
            printable(&first.message)
        ))
        .at(first.location())
        .help(format!(
            "fix tenants/{tenant_id}/tenant.yml (`platform consistency-validate` lists its problems), then run this again"
        )));
    }
    Ok(())
}

/// `--work-order-id` names a work-order file of the tenant (checked first with
/// [`check_tenant`]): `tenants/<tenant>/workorders/<id>.yml` (or `.yaml`), a regular file
/// reached through no link, whose path (relative to the repository) it returns; anything
/// else is an input error (exit 2).
pub fn check_work_order(root: &Path, tenant_id: &str, work_order_id: &str) -> Result<PathBuf> {
    if let Some(why) = crate::ids::check(work_order_id) {
        return Err(Error::input(format!("--work-order-id: {why}")));
    }
    let found = ["yml", "yaml"].iter().find_map(|ext| {
        let rel = folder_rel(tenant_id)
            .join("workorders")
            .join(format!("{work_order_id}.{ext}"));
        Beneath::new(root, &rel)
            .metadata()
            .is_ok_and(|m| m.kind == Kind::File)
            .then_some(rel)
    });
    if let Some(rel) = found {
        return Ok(rel);
    }
    Err(Error::input(format!(
        "--work-order-id: tenant {tenant_id} has no work order '{work_order_id}' (no tenants/{tenant_id}/workorders/{work_order_id}.yml)"
    ))
    .help({
        let ids = crate::known_ids::work_order_file_ids(root, Some(tenant_id));
        let hint = crate::suggest::hint(work_order_id, ids.iter().map(String::as_str));
        format!("{hint}name an existing work order of the tenant (platform runs lists those that ran)")
    }))
}

/// Every folder under tenants/: the tenants, loaded, and the folders that are not tenants.
/// `deferred`: work-order files are listed, not read (`Repo::judge` reads them one by one).
pub fn load(
    root: &Path,
    findings: &mut Vec<Finding>,
    deferred: bool,
) -> (BTreeMap<String, LoadedTenant>, Vec<RejectedTenant>) {
    let mut tenants = BTreeMap::new();
    let mut rejected = Vec::new();
    let entries = match Beneath::new(root, "tenants").list_dir() {
        Ok(e) => e,
        Err(r) if r.reason == Reason::Missing => Vec::new(),
        Err(r) => {
            findings.push(Finding::error(
                "tenants",
                "",
                format!("tenants/ {}; no tenant is loaded", r.reason),
            ));
            Vec::new()
        }
    };
    for e in entries {
        // Files beside the tenant folders (a README) are not tenants and not a problem.
        if !matches!(e.meta.kind, Kind::Folder | Kind::Symlink) {
            continue;
        }
        let folder = e.name.to_string_lossy().into_owned();
        match not_a_tenant(root, &folder) {
            Some(finding) => {
                findings.push(finding.clone());
                rejected.push(RejectedTenant {
                    folder: printable(&folder),
                    finding,
                });
            }
            None => {
                let t = load_tenant(root, &folder, findings, deferred);
                tenants.insert(folder, t);
            }
        }
    }
    (tenants, rejected)
}

fn load_tenant(
    root: &Path,
    folder: &str,
    findings: &mut Vec<Finding>,
    deferred: bool,
) -> LoadedTenant {
    let rel = folder_rel(folder);
    let (doc, errors) = read_tenant_yml(root, folder);
    // An invalid tenant runs nothing, so nothing of its tenant.yml is taken (a plan, a threshold).
    let settings = match &doc {
        Some(d) if errors.is_empty() => TenantSettings::read(d),
        _ => TenantSettings::default(),
    };
    findings.extend(errors.iter().cloned());
    LoadedTenant {
        tenant_id: folder.to_string(),
        dir: root.join(&rel),
        doc,
        settings,
        errors,
        work_orders: load_work_orders(root, &rel.join("workorders"), folder, findings, deferred),
    }
}

/// The tenant.yml of tenants/<folder> (a tenant: see [`not_a_tenant`]) as far as it parses,
/// and its errors: missing, not YAML, against its schema, or naming another tenant_id. A
/// tenant with any of them is invalid: none of its work orders runs (SPEC §2: tenant_id is
/// required), and the commands that bill or re-run it refuse it ([`check_tenant`]).
pub fn read_tenant_yml(root: &Path, folder: &str) -> (Option<Doc>, Vec<Finding>) {
    let yml = folder_rel(folder).join("tenant.yml");
    let missing = Beneath::new(root, &yml)
        .metadata()
        .is_err_and(|r| r.reason == Reason::Missing);
    let doc = match yaml::load_beneath(root, &yml) {
        Err(_) if missing => {
            let f = Finding::error(
                format!("tenants/{folder}/tenant.yml"),
                "tenant_id",
                "tenant folder has no tenant.yml; add one with tenant_id",
            );
            return (None, vec![f]);
        }
        Err(f) => return (None, vec![f]),
        Ok(doc) => doc,
    };
    let mut errors = doc.schema_findings(SchemaKind::Tenant);
    if errors.is_empty() {
        let id = doc
            .value
            .get("tenant_id")
            .and_then(|x| x.as_str())
            .unwrap_or_default();
        if id != folder {
            errors.push(doc.finding(
                "tenant_id",
                format!("tenant_id '{id}' must equal its folder name '{folder}'"),
            ));
        }
    }
    (Some(doc), errors)
}

/// The work orders of one tenant, listed and read beneath the repository through no link.
/// A warning on a file of workorders/ that looks meant as a work order but is never read: an
/// upper-case extension (`weekly.YML`) or no name before it (`.yml`). Without it the tenant's
/// work order silently never ran.
fn misnamed_work_order(wdir: &Path, name: &std::ffi::OsStr) -> Option<Finding> {
    let name = name.to_string_lossy();
    let (stem, ext) = name.rsplit_once('.')?;
    let yaml = ext.eq_ignore_ascii_case("yml") || ext.eq_ignore_ascii_case("yaml");
    if !yaml || (!stem.is_empty() && (ext == "yml" || ext == "yaml")) {
        return None;
    }
    let why = if stem.is_empty() {
        format!("'{name}' has no name before its extension")
    } else {
        format!("'{name}' ends in .{ext}, and only .yml and .yaml (lower case) are read")
    };
    let rel = wdir.join(name.as_ref());
    Some(
        Finding::error(
            rel.to_string_lossy(),
            "",
            format!("not read as a work order: {why}; rename it to <work_order_id>.yml"),
        )
        .as_warning(),
    )
}

fn load_work_orders(
    root: &Path,
    wdir: &Path,
    tenant_id: &str,
    findings: &mut Vec<Finding>,
    deferred: bool,
) -> Vec<LoadedWorkOrder> {
    let entries = match Beneath::new(root, wdir).list_dir() {
        Ok(e) => e,
        Err(r) if r.reason == Reason::Missing => Vec::new(),
        Err(r) => {
            let at = format!("tenants/{tenant_id}/workorders");
            findings.push(Finding::error(
                at,
                "",
                format!(
                    "workorders/ {}; no work order of this tenant is loaded",
                    r.reason
                ),
            ));
            Vec::new()
        }
    };
    for e in &entries {
        if let Some(warning) = misnamed_work_order(wdir, &e.name) {
            findings.push(warning);
        }
    }
    entries
        .into_iter()
        .filter(|e| {
            Path::new(&e.name)
                .extension()
                .is_some_and(|x| x == "yml" || x == "yaml")
        })
        .map(|e| {
            let rel = wdir.join(&e.name);
            if e.meta.kind == Kind::Symlink {
                return LoadedWorkOrder::refused(
                    root,
                    &rel,
                    tenant_id,
                    "work-order files must not be symlinks (they could point at another tenant's files)",
                );
            }
            if deferred {
                return LoadedWorkOrder::deferred(root, &rel, tenant_id);
            }
            load_work_order(root, &rel, tenant_id)
        })
        .collect()
}
