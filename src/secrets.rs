//! The process-wide secret store: every PLATFORM_SECRET_<NAME>, GITHUB_TOKEN and
//! PLATFORM_LEDGER_SIGNING_KEY captured once at start-up, then scrubbed from the process.
//!
//! `main` calls [`capture_and_scrub`] before any thread starts: the values move into the
//! store, the bytes of the initial environment block (what `/proc/PID/environ` shows,
//! whatever `unsetenv` does later) are overwritten in place, the variables are removed, and on
//! Linux the process is made non-dumpable (same-uid, non-root processes can no longer read
//! its `/proc/PID/{environ,mem}`). A module process therefore finds no secret in its own
//! environment nor in the orchestrator's. Library callers that never ran the capture (unit
//! tests, other tools) read the live environment instead.
use std::collections::BTreeMap;
use std::sync::OnceLock;

pub const PREFIX: &str = "PLATFORM_SECRET_";
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
/// The private key that signs the state's heads (SPEC §7): a platform credential, read only
/// by `state push`, never handed to a module.
pub const LEDGER_SIGNING_KEY_ENV: &str = "PLATFORM_LEDGER_SIGNING_KEY";

/// What was captured at start-up: non-empty values by variable name.
#[derive(Debug, Default)]
struct Store {
    vars: BTreeMap<String, String>,
}

static STORE: OnceLock<Store> = OnceLock::new();

/// Whether a variable of the environment is a secret the store takes.
fn is_secret_var(name: &str) -> bool {
    name.starts_with(PREFIX) || name == GITHUB_TOKEN || name == LEDGER_SIGNING_KEY_ENV
}

/// A captured variable, or (without a capture) the live environment's; empty counts as unset.
fn var(name: &str) -> Option<String> {
    match STORE.get() {
        Some(store) => store.vars.get(name).cloned(),
        None => std::env::var(name).ok().filter(|v| !v.is_empty()),
    }
}

/// Move every secret variable into the store and wipe it from the process. Call first thing
/// in `main`, while the process has one thread (the environment is not thread-safe).
pub fn capture_and_scrub() {
    let mut vars = BTreeMap::new();
    for (k, v) in std::env::vars_os() {
        let (Some(k), Some(v)) = (k.to_str(), v.to_str()) else {
            continue;
        };
        if is_secret_var(k) && !v.is_empty() {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    let _ = STORE.set(Store { vars });
    #[cfg(unix)]
    wipe_initial_block();
    let names: Vec<_> = std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| k.to_str().is_some_and(is_secret_var))
        .collect();
    for k in names {
        std::env::remove_var(k);
    }
    deny_inspection();
}

/// Overwrite, in place, the value bytes of every secret variable that `environ` still points
/// at. Before any `setenv`, those strings are the kernel's initial block on the stack, which
/// is what `/proc/PID/environ` reads; removing the variable alone would leave them there.
#[cfg(unix)]
#[allow(unsafe_code)]
fn wipe_initial_block() {
    extern "C" {
        static mut environ: *mut *mut libc::c_char;
    }
    // SAFETY: single-threaded start-up (documented precondition); `environ` is the
    // NULL-terminated array of NUL-terminated strings the C runtime set up, and each string
    // is writable (the initial block lives on the stack). Only bytes before each string's
    // terminating NUL are written, so every string keeps its length and terminator.
    unsafe {
        let mut p = std::ptr::addr_of!(environ).read();
        if p.is_null() {
            return;
        }
        while !(*p).is_null() {
            let entry = *p;
            let bytes = std::ffi::CStr::from_ptr(entry).to_bytes();
            if let Some(eq) = bytes.iter().position(|b| *b == b'=') {
                let name_is_secret = std::str::from_utf8(&bytes[..eq]).is_ok_and(is_secret_var);
                if name_is_secret {
                    let len = bytes.len();
                    for i in eq + 1..len {
                        *entry.add(i) = b'x' as libc::c_char;
                    }
                }
            }
            p = p.add(1);
        }
    }
}

/// Linux: not dumpable, so `/proc/PID/{environ,mem,maps}` of this process are closed to other
/// processes of the same (non-root) user and it cannot be ptrace-attached by them.
#[allow(unsafe_code)]
fn deny_inspection() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) changes a flag of this process; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// NAME → value for every non-empty PLATFORM_SECRET_NAME.
pub fn from_env() -> BTreeMap<String, String> {
    match STORE.get() {
        Some(store) => store
            .vars
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(PREFIX).map(|n| (n.to_string(), v.clone())))
            .collect(),
        None => std::env::vars()
            .filter_map(|(k, v)| k.strip_prefix(PREFIX).map(|n| (n.to_string(), v)))
            .filter(|(_, v)| !v.is_empty())
            .collect(),
    }
}

/// PLATFORM_SECRET_<NAME>, when set and non-empty.
pub fn get(name: &str) -> Option<String> {
    var(&format!("{PREFIX}{name}"))
}

/// The platform's GitHub token (`GITHUB_TOKEN`), when set and non-empty.
pub fn github_token() -> Option<String> {
    var(GITHUB_TOKEN)
}

/// Whether a GitHub client could be made: the token is set and not blank (what
/// `GithubClient::from_env` requires). The orchestrator refuses a run with a
/// deliver_github_release step before charging anything without it.
pub fn has_github_token() -> bool {
    github_token().is_some_and(|t| !t.trim().is_empty())
}

/// The ledger signing key (`PLATFORM_LEDGER_SIGNING_KEY`), when set and not blank.
pub fn ledger_signing_key() -> Option<String> {
    var(LEDGER_SIGNING_KEY_ENV).filter(|v| !v.trim().is_empty())
}

/// Every secret value the process holds, for redaction: module secrets, the GitHub token
/// and the signing key.
pub fn all_values() -> Vec<String> {
    let mut out: Vec<String> = from_env().into_values().collect();
    out.extend(github_token());
    out.extend(ledger_signing_key());
    out
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::process::Command;

    /// A secret put in the initial environment of the probe process.
    const PROBE_VAR: &str = "PLATFORM_SECRET_SCRUB_PROBE";
    const PROBE_VALUE: &str = "scrub-probe-value-5e1f93";
    const PROBE: &str = "secrets::tests::scrub_probe";

    /// Not a test on its own: the body of the process the next test starts (this binary
    /// again, the secret in its initial environment, as `main` is started). It scrubs as
    /// `main` does, then reads its own `/proc/self/environ`: the block root, or any reader
    /// the non-dumpable flag did not stop, would read from `/proc/<orchestrator>/environ`.
    /// Non-dumpable, the file is root's; made dumpable again here (this process only), any
    /// user reads it, so the scrub itself is checked without root.
    #[test]
    #[ignore = "the body of the process the_initial_environment_block_keeps_no_secret_value_after_the_scrub starts"]
    #[allow(unsafe_code)]
    fn scrub_probe() {
        assert_eq!(
            std::env::var(PROBE_VAR).as_deref(),
            Ok(PROBE_VALUE),
            "run only by the_initial_environment_block_keeps_no_secret_value_after_the_scrub"
        );
        super::capture_and_scrub();
        // SAFETY: prctl(PR_GET_DUMPABLE / PR_SET_DUMPABLE) reads or changes a flag of this
        // process; no memory is passed.
        unsafe {
            assert_eq!(
                libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0),
                0,
                "not dumpable"
            );
            libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
        }
        let block = std::fs::read("/proc/self/environ")
            .unwrap_or_else(|e| panic!("reading /proc/self/environ: {e}"));
        let text = String::from_utf8_lossy(&block);
        let entry = text
            .split('\0')
            .find(|e| e.starts_with(&format!("{PROBE_VAR}=")))
            .unwrap_or_else(|| panic!("the block no longer has the variable: {text:?}"));
        assert_eq!(
            entry,
            format!("{PROBE_VAR}={}", "x".repeat(PROBE_VALUE.len()))
        );
        assert!(!text.contains(PROBE_VALUE), "{text:?}");
        assert_eq!(super::get("SCRUB_PROBE").as_deref(), Some(PROBE_VALUE));
        assert!(std::env::var_os(PROBE_VAR).is_none());
    }

    #[test]
    fn the_initial_environment_block_keeps_no_secret_value_after_the_scrub() {
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("this test binary: {e}"));
        let out = Command::new(exe)
            .args(["--ignored", "--exact", PROBE, "--test-threads=1"])
            .env(PROBE_VAR, PROBE_VALUE)
            .output()
            .unwrap_or_else(|e| panic!("starting the probe: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "the probe: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
