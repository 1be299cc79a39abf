//! Crash-test failpoints: `PLATFORM_FAILPOINT=<name>` aborts the process at that point, so
//! tests can hit the exact windows between a charge and its outcome (SPEC §4 recovery).

/// Abort (like `kill -9`: no destructors, no flush) when the failpoint `name` is armed.
pub fn hit(name: &str) {
    if let Ok(armed) = std::env::var("PLATFORM_FAILPOINT") {
        if armed.split(',').any(|a| a.trim() == name) {
            eprintln!("failpoint {name}: aborting");
            std::process::abort();
        }
    }
}
