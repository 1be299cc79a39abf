//! Crash-test failpoints: `PLATFORM_FAILPOINT=<name>[@N][,<name>[@N]]` aborts the process at
//! that point (at its N-th hit in this process when `@N` is given), so tests can hit the exact
//! windows between a charge and its outcome (SPEC §4 recovery); `error:<name>[@N]` makes
//! [`check`] return an error there instead (failure-isolation tests), and `pause:<name>[@N]`
//! makes [`pause`] wait there (race tests). docs/reliability.md lists them.
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Hits so far per failpoint name, for `name@N`.
static HITS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// Whether the failpoint `name` fires now. Counts this hit when the variable names it with
/// `@N`, so the N-th call returns true. Unset variable: always false, nothing counted.
pub fn armed(name: &str) -> bool {
    let Ok(spec) = std::env::var("PLATFORM_FAILPOINT") else {
        return false;
    };
    let mut wanted: Vec<Option<u64>> = Vec::new();
    for entry in spec.split(',') {
        let entry = entry.trim();
        match entry.split_once('@') {
            // An unreadable count never fires.
            Some((n, at)) if n == name => wanted.push(Some(at.trim().parse().unwrap_or(0))),
            None if entry == name => wanted.push(None),
            _ => {}
        }
    }
    if wanted.is_empty() {
        return false;
    }
    if wanted.contains(&None) {
        return true;
    }
    let mut hits = HITS.lock().unwrap_or_else(|e| e.into_inner());
    let count = hits.entry(name.to_string()).or_insert(0);
    *count += 1;
    let now = *count;
    wanted.contains(&Some(now))
}

/// Abort (like `kill -9`: no destructors, no flush), naming the failpoint on stderr.
pub fn abort(name: &str) -> ! {
    eprintln!("failpoint {name}: aborting");
    std::process::abort();
}

/// Abort when the failpoint `name` is armed (see [`armed`]).
pub fn hit(name: &str) {
    if armed(name) {
        abort(name);
    }
}

/// Like [`hit`], and also an error (not an abort) when `error:<name>` is armed: how tests
/// make one work order's ledger write fail while the pass goes on.
pub fn check(name: &str) -> crate::Result<()> {
    hit(name);
    if armed(&format!("error:{name}")) {
        return Err(crate::Error::failure(format!(
            "failpoint error:{name}: an injected failure"
        )));
    }
    Ok(())
}

/// Longest a [`pause`] waits for its marker to be removed: a test that never removes it
/// fails on what the process did, not on a hang.
const PAUSE_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// When `pause:<name>` is armed: writes the marker `failpoint-<name>.paused` in the current
/// directory and waits until it is removed (at most [`PAUSE_LIMIT`]), so that a test can
/// change files in a window that is otherwise microseconds wide, then let the process go on.
/// Unarmed, it does nothing.
pub fn pause(name: &str) {
    if !armed(&format!("pause:{name}")) {
        return;
    }
    let marker = std::path::PathBuf::from(format!("failpoint-{name}.paused"));
    if let Err(e) = std::fs::write(&marker, b"") {
        eprintln!(
            "failpoint pause:{name}: cannot write {}: {e}",
            marker.display()
        );
        return;
    }
    let start = std::time::Instant::now();
    while marker.exists() && start.elapsed() < PAUSE_LIMIT {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
