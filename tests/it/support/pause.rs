//! Drive a `pause:<name>` failpoint: run the binary until it waits at the pause point, act in that window, then let it go on.
use super::Fx;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `platform <args>` in the fixture with `PLATFORM_FAILPOINT=pause:<point>`; once the
/// process waits there (its marker file exists), calls `during`, removes the marker and
/// returns the process's output. `point` may carry `@N` (the N-th hit).
pub fn run_paused(fx: &Fx, args: &[&str], point: &str, during: impl FnOnce()) -> Output {
    let name = point.split_once('@').map_or(point, |(n, _)| n);
    let marker = fx.path(&format!("failpoint-{name}.paused"));
    let mut child = fx
        .command()
        .args(args)
        .env("PLATFORM_FAILPOINT", format!("pause:{point}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !marker.exists() {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the process ended before pausing at {point}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no pause at {point}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    during();
    std::fs::remove_file(&marker).unwrap();
    child.wait_with_output().unwrap()
}
