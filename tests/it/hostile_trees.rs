//! Folder trees deeper than a process may hold descriptors, or than PATH_MAX, left by a real
//! module (`tests/fixtures/hostile_modules/modules/deeptree`) run by the real binary.
use crate::support::fx::{Fx, Transcript};
use crate::support::orch::{run_of, step_dir, step_of};

use serde_json::Value;
use std::process::Output;

fn fx() -> Fx {
    let fx = Fx::new().overlay("hostile_modules", "");
    fx.topup(100, "initial");
    fx
}

/// One `orchestrator --json` pass (`extra` arguments after it) whose open-file limit is
/// `nofile` (soft and hard).
fn pass_limited(fx: &Fx, extra: &[&str], nofile: u64) -> (Output, Value) {
    use std::os::unix::process::CommandExt;
    let mut c = fx.command();
    c.args(["orchestrator", "--json"]).args(extra);
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the child before exec and only calls setrlimit, which is
    // async-signal-safe; it touches no memory of the parent's but its own stack.
    unsafe {
        c.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let out = c.output().unwrap();
    let v = out.json();
    (out, v)
}

/// Attack: the module leaves a chain of folders 400 deep in its work/ and outputs/ and fails,
/// under an open-file limit of 128. Until 2026-12-03 each `--retry-failed` (and a resume)
/// failed "cannot clear …/work: Too many open files" (`remove_dir_all` holds a descriptor per
/// level), charged and refunded every time, and the step could never run again until someone
/// deleted the folder by hand. The folders are now cleared with a few descriptors open.
#[test]
fn a_tree_deeper_than_the_open_file_limit_is_cleared_before_the_retry() {
    let fx = fx();
    let marker = fx.path("first-attempt-ran");
    fx.workorder(
        "deep",
        &format!(
            "work_order_id: deep\nsteps:\n  - {{step_id: d, module_id: deeptree, kind: transform, inputs: {{mode: leftovers, depth: 400, marker: {:?}}}}}\n",
            marker.display().to_string()
        ),
    );
    let (out, v) = pass_limited(&fx, &[], 128);
    let run = run_of(&v, "deep").clone();
    assert_eq!(
        step_of(&run, "d")["reason_slug"],
        "module_failed",
        "{}",
        out.text()
    );
    assert!(marker.exists(), "the first attempt ran: {}", out.text());
    let dir = fx.path(&step_dir(&run, "d"));
    assert!(dir.join("work/d/d/d").is_dir(), "the tree was left");
    let (out, v) = pass_limited(&fx, &["--retry-failed"], 128);
    let step = step_of(run_of(&v, "deep"), "d");
    assert_eq!(step["status"], "COMPLETED", "{}", out.text());
    assert!(!dir.join("work/d").exists());
    assert!(!dir.join("outputs/d").exists());
}

/// Attack: the module leaves a `dir` output nested 2,100 deep (under the 10,000-folder cap),
/// so its deepest paths are longer than PATH_MAX and cannot be opened. The step fails
/// `outputs_missing`; until 2026-12-03 the message put the whole 4,000-character path before
/// the reason, and the message cap cut the reason ("File name too long") off. The path is now
/// shown by its two ends, so the reason survives.
#[test]
fn an_output_tree_deeper_than_path_max_fails_with_its_reason_in_the_message() {
    let fx = fx();
    fx.workorder(
        "long",
        "work_order_id: long\nsteps:\n  - {step_id: o, module_id: deeptree, kind: transform, inputs: {mode: output, depth: 2100}}\n",
    );
    let out = fx.run(&["orchestrator", "--json"]);
    let v = out.json();
    let step = step_of(run_of(&v, "long"), "o");
    assert_eq!(step["reason_slug"], "outputs_missing", "{}", out.text());
    let message = step["message"].as_str().unwrap();
    assert!(message.contains("cannot read the outputs"), "{message}");
    assert!(message.contains("File name too long"), "{message}");
    assert!(message.contains("characters left out"), "{message}");
    assert!(message.chars().count() < 1_000, "{message}");
    assert_eq!(fx.balance(), 100, "refunded");
}
