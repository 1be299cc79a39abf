//! Runs a command module per SPEC's protocol: empty working dir, a clean environment (PATH,
//! PLATFORM_* and declared secrets only), its own process group killed at the timeout.
use super::outputs;
use super::redact::Redactor;
use super::{Status, StepResult};
use crate::contract::{ModuleContract, OutputType};
use crate::digest::sha256_file;
use crate::workorder::paths::check_relative;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Slugs only the platform may assign: a module reporting one fails closed as module_failed.
const PLATFORM_ONLY_SLUGS: &[&str] = &[
    "not_enough_credits",
    "secrets_missing",
    "upstream_failed",
    "fail_fast",
    "superseded",
];

/// Everything needed to run one command-module step.
pub struct CommandSpec<'a> {
    pub module_dir: &'a Path,
    pub contract: &'a ModuleContract,
    pub inputs: &'a serde_json::Value,
    /// The step's folder: outputs/, work/, inputs.json, result.json and logs go here.
    pub step_dir: &'a Path,
    /// PLATFORM_TENANT_ID, PLATFORM_WORK_ORDER_ID, PLATFORM_STEP_ID and the secrets (NAME=value).
    pub env: Vec<(String, String)>,
    pub redactor: &'a Redactor,
    /// Whether a slug is in the registry (unknown ones fail closed).
    pub known_reason: &'a dyn Fn(&str) -> bool,
}

/// Where the executable is: a relative argv[0] with `/` lives in the module folder.
fn resolve_program(module_dir: &Path, argv0: &str) -> Result<PathBuf, String> {
    if !argv0.contains('/') {
        return Ok(PathBuf::from(argv0));
    }
    if Path::new(argv0).is_absolute() {
        return Ok(PathBuf::from(argv0));
    }
    if let Some(why) = check_relative(argv0) {
        return Err(format!("runner.command[0]: {why}"));
    }
    Ok(module_dir.join(argv0))
}

fn io_fail(what: &str, e: impl std::fmt::Display) -> StepResult {
    StepResult::failed("module_failed", format!("{what}: {e}"))
}

/// Run the module and judge its outcome. Never panics; every problem is a FAILED result.
pub fn run(spec: &CommandSpec) -> StepResult {
    let Some(argv) = spec
        .contract
        .runner
        .command
        .as_ref()
        .filter(|a| !a.is_empty())
    else {
        return StepResult::failed("module_failed", "module has no runner.command");
    };
    let outputs_dir = spec.step_dir.join("outputs");
    let work_dir = spec.step_dir.join("work");
    for d in [&outputs_dir, &work_dir] {
        // A re-run (crash resume or retry) starts from empty folders, never from leftovers.
        if d.exists() {
            if let Err(e) = std::fs::remove_dir_all(d) {
                return io_fail(&format!("cannot clear {}", d.display()), e);
            }
        }
        if let Err(e) = std::fs::create_dir_all(d) {
            return io_fail(&format!("cannot create {}", d.display()), e);
        }
    }
    let inputs_path = spec.step_dir.join("inputs.json");
    let result_path = spec.step_dir.join("result.json");
    let _ = std::fs::remove_file(&result_path);
    let body = serde_json::to_vec_pretty(spec.inputs).unwrap_or_else(|_| b"{}".to_vec());
    // Renamed into place: a kill at any moment never leaves a half-written inputs.json.
    if let Err(e) = crate::atomic::write_atomic(&inputs_path, &body, false) {
        return io_fail("cannot write inputs.json", e.message);
    }
    let program = match resolve_program(spec.module_dir, &argv[0]) {
        Ok(p) => p,
        Err(why) => return StepResult::failed("module_failed", why),
    };
    let stdout_path = spec.step_dir.join("stdout.log");
    let stderr_path = spec.step_dir.join("stderr.log");
    let (stdout, stderr) = match (
        std::fs::File::create(&stdout_path),
        std::fs::File::create(&stderr_path),
    ) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => return io_fail("cannot create log files", e),
    };
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut cmd = Command::new(&program);
    cmd.args(&argv[1..])
        .current_dir(&work_dir)
        .env_clear()
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        )
        .env("PLATFORM_INPUTS", abs(&inputs_path))
        .env("PLATFORM_OUTPUTS_DIR", abs(&outputs_dir))
        .env("PLATFORM_RESULT", abs(&result_path))
        .env("PLATFORM_MODULE_DIR", abs(spec.module_dir))
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own process group, so a timeout kills the module and everything it started.
        cmd.process_group(0);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return StepResult::failed(
                "module_failed",
                format!("cannot start {}: {e}", program.display()),
            )
        }
    };
    let timeout = Duration::from_secs(spec.contract.timeout_seconds);
    let started = Instant::now();
    let mut timed_out = false;
    // Polled with a growing pause: a module that takes a millisecond is noticed within a
    // fraction of one (a fixed 2 ms pause added ~1-2 ms to every short step), a long one
    // costs a wake-up every 20 ms.
    let mut pause = Duration::from_micros(50);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(_) => break None,
        }
        if started.elapsed() >= timeout {
            timed_out = true;
            kill_group(child.id());
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(pause.min(timeout.saturating_sub(started.elapsed())));
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    // Whatever the group left behind must not outlive the step.
    kill_group(child.id());
    let logs = redact_logs(
        spec.redactor,
        &[("stdout", &stdout_path), ("stderr", &stderr_path)],
        spec.step_dir,
    );
    let mut result = judge(spec, status, timed_out, &result_path, &outputs_dir);
    result.logs = logs;
    if let Some(m) = result.message.take() {
        result.message = Some(spec.redactor.redact(&m));
    }
    if !spec.redactor.is_empty() {
        // Values are recorded in the ledger and result.json stays with the step's records:
        // neither may hold a secret (SPEC §6), whatever the module wrote.
        for v in result.values.values_mut() {
            redact_json(spec.redactor, v);
        }
        redact_result_file(spec.redactor, &result_path);
    }
    result
}

/// Redact every string (and key) inside a JSON value.
fn redact_json(redactor: &Redactor, v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => *s = redactor.redact(s),
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| redact_json(redactor, x)),
        serde_json::Value::Object(m) => {
            let entries = std::mem::take(m);
            for (k, mut x) in entries {
                redact_json(redactor, &mut x);
                m.insert(redactor.redact(&k), x);
            }
        }
        _ => {}
    }
}

/// Rewrite the module's result file without secrets: strings are redacted as parsed JSON
/// (a secret may be JSON-escaped there), then the bytes (whatever did not parse).
fn redact_result_file(redactor: &Redactor, path: &Path) {
    let Ok(data) = std::fs::read(path) else {
        return;
    };
    let mut out = data.clone();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&data) {
        let mut clean = v.clone();
        redact_json(redactor, &mut clean);
        if clean != v {
            out = serde_json::to_vec(&clean).unwrap_or_default();
        }
    }
    let out = redactor.redact_bytes(&out);
    if out != data {
        let _ = std::fs::write(path, out);
    }
}

fn judge(
    spec: &CommandSpec,
    status: Option<std::process::ExitStatus>,
    timed_out: bool,
    result_path: &Path,
    outputs_dir: &Path,
) -> StepResult {
    if timed_out {
        return StepResult::failed(
            "timeout",
            format!(
                "killed after timeout_seconds = {}",
                spec.contract.timeout_seconds
            ),
        );
    }
    let reported = match read_result(result_path) {
        Ok(r) => r,
        Err(why) => return StepResult::failed("module_failed", why),
    };
    let success = status.is_some_and(|s| s.success());
    let said_failed = reported
        .as_ref()
        .is_some_and(|r| r.get("status").and_then(|s| s.as_str()) == Some("FAILED"));
    let field = |k: &str| {
        reported
            .as_ref()
            .and_then(|r| r.get(k))
            .and_then(|v| v.as_str())
            .map(String::from)
    };
    if !success || said_failed {
        let slug = field("reason_slug")
            .filter(|s| (spec.known_reason)(s) && !PLATFORM_ONLY_SLUGS.contains(&s.as_str()))
            .unwrap_or_else(|| "module_failed".to_string());
        let msg = field("message").unwrap_or_else(|| match status {
            Some(s) => format!("module exited with {s}"),
            None => "module could not be waited for".to_string(),
        });
        return StepResult::failed(&slug, msg);
    }
    let mut res = StepResult::completed();
    res.message = field("message");
    match outputs::collect(spec.contract, outputs_dir) {
        Ok(files) => res.outputs = files,
        Err(why) => return StepResult::failed("outputs_missing", why),
    }
    if let Some(values) = reported
        .as_ref()
        .and_then(|r| r.get("values"))
        .and_then(|v| v.as_object())
    {
        for out in &spec.contract.outputs {
            if out.ty == OutputType::Value {
                if let Some(v) = values.get(&out.id) {
                    res.values.insert(out.id.clone(), v.clone());
                }
            }
        }
    }
    res.status = Status::Completed;
    res
}

/// The optional result file; Err when present but not a JSON object.
fn read_result(path: &Path) -> Result<Option<serde_json::Map<String, serde_json::Value>>, String> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(None);
    };
    if bytes.len() > 4 * 1024 * 1024 {
        return Err("PLATFORM_RESULT file is larger than 4 MiB".into());
    }
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err("PLATFORM_RESULT file is not a JSON object".into()),
        Err(e) => Err(format!("PLATFORM_RESULT file is not valid JSON: {e}")),
    }
}

/// Rewrite logs with secrets redacted and record their digests.
fn redact_logs(redactor: &Redactor, logs: &[(&str, &Path)], base: &Path) -> Vec<super::FileRecord> {
    let mut out = Vec::new();
    for (name, path) in logs {
        if !redactor.is_empty() {
            if let Ok(data) = std::fs::read(path) {
                let clean = redactor.redact_bytes(&data);
                if clean != data {
                    let _ = std::fs::write(path, clean);
                }
            }
        }
        if let Ok((sha, bytes)) = sha256_file(path) {
            let rel = path
                .strip_prefix(base)
                .unwrap_or(path)
                .display()
                .to_string();
            out.push(super::FileRecord {
                id: name.to_string(),
                path: rel,
                bytes,
                sha256: sha,
            });
        }
    }
    out
}

/// SIGKILL the whole process group led by `pid` (ignored when it is already gone).
#[cfg(unix)]
#[allow(unsafe_code)]
fn kill_group(pid: u32) {
    let Ok(pgid) = i32::try_from(pid) else { return };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is shared.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

#[cfg(not(unix))]
fn kill_group(_pid: u32) {}
