//! Module contracts beyond their schema: secrets, the runner's program, built-in shapes, and the self-test block.
use crate::contract::builtin::Shape;
use crate::contract::{InputType, ModuleContract, OutputType};
use crate::findings::Finding;
use crate::repo::{LoadedModule, Repo};
use crate::workorder::paths::{check_relative, resolve_inside};
use std::collections::BTreeSet;
use std::path::Path;

/// Every contract finding of every loaded module.
pub fn check(repo: &Repo) -> Vec<Finding> {
    repo.modules
        .values()
        .flat_map(|m| module(repo, m))
        .collect()
}

/// The contract findings of one loaded module.
fn module(repo: &Repo, m: &LoadedModule) -> Vec<Finding> {
    let mut out = secrets(m);
    out.extend(runner(m));
    out.extend(builtin_shape(m));
    out.extend(self_test(repo, m));
    out.extend(usage_units(repo, m));
    out
}

/// Every finding `consistency-validate` reports in module `id`'s module.yml, in file order:
/// those of loading it (the only ones when it did not load: schema, `module_id`, ids, paths)
/// and its contract's. What `platform module test` refuses a module on, so that a self-test
/// never passes for a module the orchestrator would not run.
pub fn of_module(repo: &Repo, id: &str) -> Vec<Finding> {
    let file = format!("modules/{id}/module.yml");
    let loading = repo.findings.iter().filter(|f| f.file == file).cloned();
    let mut out: Vec<Finding> = loading.collect();
    if let Some(m) = repo.modules.get(id) {
        out.extend(module(repo, m));
    }
    super::report::sort(out)
}

/// Metered units come from the registry's usage units, never the fixed ones (a run or a
/// deliverable is charged as such), and never share a name with a deliverable of the
/// module: a usage SPEND is keyed `.../{unit}` beside the deliverables' `.../{deliverable}`.
/// A built-in is priced only on a unit it reports: another would be reserved by the credits
/// gate on every run and never charged (until 2026-12-04 it was accepted).
fn usage_units(repo: &Repo, m: &LoadedModule) -> Vec<Finding> {
    use crate::records::billing::{
        BUILTIN_REPORTED_UNITS, UNIT_CREDITS, UNIT_DELIVERABLE, UNIT_STEP_RUN,
    };
    let mut out = Vec::new();
    for unit in m.contract.pricing.usage.keys() {
        let field = format!("pricing.usage.{unit}");
        let why = if [UNIT_CREDITS, UNIT_STEP_RUN, UNIT_DELIVERABLE].contains(&unit.as_str()) {
            format!("'{unit}' is charged by the platform itself (run_credits, deliverables); meter another unit")
        } else if crate::records::billing::is_internal(unit) {
            format!("usage unit '{unit}': ids starting with '__' are reserved for the platform's own charges (the run charge is '__run__'); meter another unit")
        } else if !repo.registry.is_usage_unit(unit) {
            out.push(not_in_registry(
                repo,
                m,
                &field,
                &format!("usage unit '{unit}'"),
                "add it to usage_units in config/registry.yml",
            ));
            continue;
        } else if m.contract.deliverable(unit).is_some() {
            format!("usage unit '{unit}' is also a deliverable of this module; rename one (their charges would share a key)")
        } else if let Some(b) = m
            .contract
            .runner
            .builtin()
            .filter(|_| !BUILTIN_REPORTED_UNITS.contains(&unit.as_str()))
        {
            format!(
                "built-in '{}' never reports usage unit '{unit}', so it would be reserved on every run and never charged; built-ins report only {}: price one of those or remove {field}",
                b.name(),
                BUILTIN_REPORTED_UNITS.iter().map(|u| format!("'{u}'")).collect::<Vec<_>>().join(", ")
            )
        } else {
            continue;
        };
        out.push(m.doc.finding(&field, why));
    }
    out
}

/// `what` (an ID the module names) is not in the registry: an error saying `fix`, unless
/// config/registry.yml is invalid (read as built-ins only, or up to its error). Then it is a
/// warning that it could not be checked, pointing at the registry's errors: the module.yml is
/// not the file to fix, so it does not count as broken (`modules::broken_modules`).
fn not_in_registry(repo: &Repo, m: &LoadedModule, field: &str, what: &str, fix: &str) -> Finding {
    match repo.registry.invalid() {
        Some(note) => m
            .doc
            .finding(field, format!("{what} could not be checked: {note}"))
            .as_warning(),
        None => m
            .doc
            .finding(field, format!("{what} is not in the registry; {fix}")),
    }
}

/// Secret names become environment variables of the module: they must look like one, and
/// must not replace the protocol's own variables.
fn secrets(m: &LoadedModule) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, name) in m.contract.secrets.iter().enumerate() {
        let field = format!("secrets[{i}]");
        let env_like = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !env_like {
            out.push(m.doc.finding(
                &field,
                format!("secret '{name}' is not an environment-variable name; use upper-case letters, digits and '_' (e.g. SMTP_PASSWORD)"),
            ));
        }
        if name == "PATH" || name.starts_with("PLATFORM_") {
            out.push(m.doc.finding(
                &field,
                format!("secret '{name}' would replace a variable the platform sets for the module (PATH, PLATFORM_*); choose another name"),
            ));
        }
        if !seen.insert(name) {
            out.push(m.doc.finding(
                &field,
                format!("secret '{name}' is declared twice; list it once"),
            ));
        }
    }
    out
}

/// A relative program path is resolved against the module folder: it must be there,
/// stay there, and be executable, or every run of the module would fail.
fn runner(m: &LoadedModule) -> Vec<Finding> {
    let Some(argv) = m.contract.runner.command() else {
        return Vec::new();
    };
    let Some(prog) = argv.first() else {
        return Vec::new();
    };
    let field = "runner.command[0]";
    if prog.contains('\\') {
        // Without a '/' it would be a bare name looked up on PATH, and no program is named
        // `.\run.py`: a Windows path, failing every run with "not found".
        return vec![m.doc.finding(
            field,
            format!(
                "program '{prog}' separates folders with '\\' (a Windows path), so it would be looked up on PATH and never found; write '{}'",
                prog.replace('\\', "/")
            ),
        )];
    }
    if !prog.contains('/') || prog.starts_with('/') {
        // A bare name is looked up on PATH at run time; an absolute path is the operator's choice.
        return Vec::new();
    }
    let real = match resolve_inside(&m.dir, prog) {
        Ok(p) => p,
        Err(why) => {
            let msg = if why.contains("does not exist") {
                format!("program '{prog}' does not exist in the module folder {}; add it or fix runner.command", rel_dir(m))
            } else {
                format!("program '{prog}': {why}; it must be a file inside the module folder")
            };
            return vec![m.doc.finding(field, msg)];
        }
    };
    if !real.is_file() {
        return vec![m
            .doc
            .finding(field, format!("program '{prog}' is not a file"))];
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&real)
            .map(|md| md.permissions().mode())
            .unwrap_or(0);
        if mode & 0o111 == 0 {
            return vec![m.doc.finding(
                field,
                format!("program '{prog}' is not executable; run `chmod +x {}/{prog}` (and commit the mode)", rel_dir(m)),
            )];
        }
    }
    first_line(m, field, prog, &real).into_iter().collect()
}

/// The program's first line, as the kernel reads it: a `#!` line ending in CR (a file with
/// Windows line endings) names an interpreter that does not exist (`python3\r`), so every
/// run fails; a file with neither `#!` nor a binary format runs under /bin/sh (the runner's
/// ENOEXEC fallback, src/runner/spawn.rs), which is right only for a shell script.
fn first_line(m: &LoadedModule, field: &str, prog: &str, real: &Path) -> Option<Finding> {
    use std::io::Read;
    let mut head = Vec::with_capacity(256);
    // The kernel reads at most 256 bytes of a `#!` line.
    let file = std::fs::File::open(real).ok()?;
    file.take(256).read_to_end(&mut head).ok()?;
    let shown = format!("{}/{}", rel_dir(m), prog.trim_start_matches("./"));
    if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
        if line.ends_with(b"\r") {
            return Some(m.doc.finding(
                field,
                format!(
                    "program '{prog}' has Windows (CRLF) line endings: its `#!` line names an interpreter ending in a carriage return, which does not exist, so every run fails; convert it to LF (`sed -i 's/\\r$//' {shown}`, or `dos2unix {shown}`)"
                ),
            ));
        }
        return None;
    }
    // A compiled program (ELF) needs no `#!`; nor does anything holding a NUL byte.
    if head.starts_with(b"\x7fELF") || head.contains(&0) {
        return None;
    }
    Some(
        m.doc
            .finding(
                field,
                format!(
                    "program '{prog}' has no `#!` line, so it runs under /bin/sh; unless it is a shell script, make its first line `#!/usr/bin/env python3` (or its own interpreter's) in {shown}"
                ),
            )
            .as_warning(),
    )
}

fn rel_dir(m: &LoadedModule) -> String {
    m.doc
        .rel
        .strip_suffix("/module.yml")
        .unwrap_or(&m.doc.rel)
        .to_string()
}

/// What a built-in reads and writes is fixed by its code, so its module.yml must say the same.
fn builtin_shape(m: &LoadedModule) -> Vec<Finding> {
    let c = &m.contract;
    let Some(builtin) = c.runner.builtin() else {
        return Vec::new();
    };
    let Shape {
        kind,
        inputs,
        outputs,
    } = builtin.shape();
    let mut out = Vec::new();
    if c.kind != kind {
        out.push(m.doc.finding(
            "kind",
            format!(
                "builtin '{builtin}' is a {} module; set kind: {}",
                kind.as_str(),
                kind.as_str()
            ),
        ));
    }
    for (id, ty) in inputs {
        match c.input(id) {
            Some(spec) if spec.ty == *ty => {}
            Some(_) | None => out.push(m.doc.finding(
                "inputs",
                format!(
                    "builtin '{builtin}' reads input '{id}' of type {}; declare it under inputs",
                    ty.as_str()
                ),
            )),
        }
    }
    for (id, ty) in outputs {
        let declared = c.output(id).map(|o| o.ty);
        if declared != Some(*ty) {
            out.push(m.doc.finding(
                "outputs",
                format!(
                    "builtin '{builtin}' writes output '{id}' (a {}); declare it under outputs",
                    output_type(*ty)
                ),
            ));
        }
    }
    out
}

fn output_type(t: OutputType) -> &'static str {
    match t {
        OutputType::File => "file",
        OutputType::Dir => "dir",
        OutputType::Value => "value",
    }
}

/// `self_test` feeds the module like a step would: known inputs of the right types; file
/// inputs are paths relative to the module folder; expected files relative to its outputs.
fn self_test(repo: &Repo, m: &LoadedModule) -> Vec<Finding> {
    let c: &ModuleContract = &m.contract;
    let Some(t) = &c.self_test else {
        return Vec::new();
    };
    if c.runner.builtin().is_some() {
        // `module test` refuses a built-in (the platform's own tests cover it): a self_test
        // here would read as a test that passes when it never runs.
        return vec![m
            .doc
            .finding(
                "self_test",
                "a built-in module's self_test is never run: `platform module test` refuses built-ins, which the platform's own test suite covers; remove it".to_string(),
            )
            .as_warning()];
    }
    let mut out = Vec::new();
    for (name, v) in &t.inputs {
        let field = format!("self_test.inputs.{name}");
        let Some(spec) = c.input(name) else {
            out.push(m.doc.finding(
                &field,
                format!("self_test sets input '{name}', which the module does not declare"),
            ));
            continue;
        };
        if spec.ty.is_path() {
            let paths: Vec<&serde_json::Value> = match (spec.ty, v) {
                (InputType::Files, serde_json::Value::Array(a)) => a.iter().collect(),
                _ => vec![v],
            };
            for p in paths {
                match p.as_str() {
                    None => out.push(m.doc.finding(
                        &field,
                        format!("self_test input '{name}' is a file: give a path relative to the module folder"),
                    )),
                    Some(rel) => {
                        if let Err(why) = resolve_inside(&m.dir, rel) {
                            out.push(m.doc.finding(
                                &field,
                                format!("self_test input '{name}': {why}; test files live in the module folder"),
                            ));
                        }
                    }
                }
            }
        } else if !spec.ty.accepts(v) {
            out.push(m.doc.finding(
                &field,
                format!(
                    "self_test input '{name}' must be of type {}",
                    spec.ty.as_str()
                ),
            ));
        }
    }
    for spec in &c.inputs {
        if spec.required && spec.default.is_none() && !t.inputs.contains_key(&spec.id) {
            out.push(m.doc.finding(
                "self_test.inputs",
                format!(
                    "self_test does not set required input '{}'; add it",
                    spec.id
                ),
            ));
        }
    }
    for (i, f) in t.expect.files.iter().enumerate() {
        if let Some(why) = check_relative(f) {
            out.push(m.doc.finding(
                &format!("self_test.expect.files[{i}]"),
                format!("expected file {why} (relative to the outputs folder)"),
            ));
        }
    }
    if let Some(slug) = &t.expect.reason_slug {
        // The runner gives a reason to FAILED runs only: the self-test could never pass.
        if t.expect.status.as_deref().unwrap_or("COMPLETED") == "COMPLETED" {
            out.push(m.doc.finding(
                "self_test.expect.reason_slug",
                format!("self_test expects reason '{slug}' of a COMPLETED run, which never has one, so it can never pass; set expect.status: FAILED, or remove reason_slug"),
            ));
        }
        if !repo.registry.is_known_reason(slug) {
            out.push(not_in_registry(
                repo,
                m,
                "self_test.expect.reason_slug",
                &format!("reason slug '{slug}'"),
                "use a built-in slug or add it to config/registry.yml",
            ));
        }
    }
    out
}
