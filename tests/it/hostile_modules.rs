//! Hostile module processes (SPEC §6 "Trust model"), each a real process run by the real
//! binary: one that hunts secrets in /proc, a daemon that outlives its step to write into the
//! step's log, a process tree left behind by a kill -9'd orchestrator (and a resumed step
//! beside it), a 2 GiB stdout flood, a 200,000-file output, oversized results, a secret
//! split across writes, and an outputs folder, a step folder or a delivery folder swapped for a
//! link.
use crate::support::fx::{Fx, Transcript};
use crate::support::orch::{run_of, step_of};
use crate::support::reliability::peak_rss_kib;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

/// Every secret the orchestrator is started with, by variable. The values carry the
/// fixture's unique folder name: tests run at once, and the /proc spy reads every process,
/// so it must look only for the values its own pass holds (a concurrent test's module may
/// legitimately hold its own declared secret).
fn secrets(fx: &Fx) -> Vec<(&'static str, String)> {
    let tag: String = fx
        .root()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    vec![
        ("PLATFORM_SECRET_TOKEN", format!("tok-{tag}-3b9e51c7")),
        ("PLATFORM_SECRET_CANARY", format!("canary-{tag}-a4f08e21")),
        ("PLATFORM_SECRET_UNUSED", format!("unused-{tag}-5d7c9a13")),
        ("GITHUB_TOKEN", format!("ghp_{tag}71e4c0b2a9")),
        (
            "PLATFORM_LEDGER_SIGNING_KEY",
            format!("signkey-{tag}-0e8d6b4f"),
        ),
    ]
}

fn fx() -> Fx {
    let fx = Fx::new().overlay("hostile_modules", "");
    fx.topup(100, "initial");
    fx
}

/// `platform orchestrator --json` with every secret in its environment.
fn orchestrator(fx: &Fx) -> std::process::Command {
    let mut c = fx.command();
    c.args(["orchestrator", "--json"]).envs(secrets(fx));
    c
}

fn pass(fx: &Fx) -> (Output, Value) {
    let out = orchestrator(fx).output().unwrap();
    let v = out.json();
    (out, v)
}

/// A fresh fixture with work order `id` after one pass: the fixture, the pass's output and
/// the work order's run.
fn pass_one(id: &str, yaml: &str) -> (Fx, Output, Value) {
    let fx = fx();
    fx.workorder(id, yaml);
    let (out, v) = pass(&fx);
    let run = run_of(&v, id).clone();
    (fx, out, run)
}

/// The folder of a step of the work order's (only) run.
fn step_dir(fx: &Fx, wo: &str, step: &str) -> PathBuf {
    let runs = fx.path(&format!("runtime/runs/t1/{wo}"));
    let run = std::fs::read_dir(&runs)
        .unwrap_or_else(|e| panic!("{}: {e}", runs.display()))
        .next()
        .unwrap()
        .unwrap();
    run.path().join(step)
}

/// Whether a process has ended (gone, or a zombie nobody reaped yet).
fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

/// Poll until every pid has ended; the deadline only bounds a failing test.
fn wait_dead(pids: &[i32], deadline: Duration) -> Vec<i32> {
    let t0 = Instant::now();
    loop {
        let alive: Vec<i32> = pids.iter().copied().filter(|p| !is_dead(*p)).collect();
        if alive.is_empty() || t0.elapsed() > deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_file(path: &Path, child: &mut Child) -> String {
    let t0 = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            return s;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the orchestrator ended before the module wrote {}",
            path.display()
        );
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pids_in(text: &str) -> Vec<i32> {
    text.split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Every place a secret value (or its distinctive middle) appears under the fixture.
fn leaks(fx: &Fx, extra: &[(&str, &[u8])]) -> Vec<String> {
    let secrets = secrets(fx);
    let mut found = Vec::new();
    let mut check = |what: &str, bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        for (_, secret) in &secrets {
            let middle = &secret[4..secret.len() - 4];
            if text.contains(middle) {
                found.push(format!("{what}: {secret}"));
            }
        }
    };
    for (path, bytes) in fx.all_bytes_under(".") {
        check(&path.display().to_string(), &bytes);
    }
    for (what, bytes) in extra {
        check(what, bytes);
    }
    found
}

/// Every line of the three ledger files is shorter than 1 MiB (and there are some).
fn assert_ledger_lines_under_1_mib(fx: &Fx) {
    let mut lines = 0;
    for file in ["billing.jsonl", "evidence.jsonl", "audit.jsonl"] {
        let text =
            std::fs::read_to_string(fx.path(&format!(".billing-state/{file}"))).unwrap_or_default();
        for line in text.lines() {
            assert!(
                line.len() < 1 << 20,
                "{file}: a line of {} bytes",
                line.len()
            );
            lines += 1;
        }
    }
    assert!(lines > 0);
}

/// The step_outcome record of a step.
fn outcome_of(fx: &Fx, step: &str) -> Value {
    fx.records("evidence.jsonl")
        .into_iter()
        .find(|r| r["type"] == "step_outcome" && r["step_id"] == step)
        .unwrap_or_else(|| panic!("no outcome for {step}"))
}

/// The work order of `a_module_that_declares_no_secret_finds_none_in_proc_or_anywhere_the_platform_writes`.
const SPY: &str = "work_order_id: spy\nsteps:\n  - {step_id: use, module_id: secretuser, kind: transform}\n  - {step_id: spy, module_id: procspy, kind: transform}\n";

#[test]
fn a_module_that_declares_no_secret_finds_none_in_proc_or_anywhere_the_platform_writes() {
    let (fx, out, run) = pass_one("spy", SPY);
    assert_eq!(run["status"], "COMPLETED", "{}", out.text());
    // The spy really looked: it read its ancestors (supervisor and orchestrator) and /proc.
    let report: Value = serde_json::from_slice(
        &std::fs::read(step_dir(&fx, "spy", "spy").join("outputs/report.json")).unwrap(),
    )
    .unwrap();
    let ancestors = report["ancestors"].as_array().unwrap();
    let orchestrator = ancestors
        .iter()
        .find(|a| a["cmdline"].as_str().unwrap().contains("orchestrator"))
        .unwrap_or_else(|| panic!("the spy did not find the orchestrator: {report}"));
    #[allow(unsafe_code)]
    // SAFETY: geteuid has no arguments.
    if unsafe { libc::geteuid() } == 0 {
        // Root reads a non-dumpable process's environ anyway: what it finds there is the
        // scrubbed block (the secrets' bytes overwritten in place), scanned below.
        assert!(
            orchestrator["environ_bytes"].as_u64().unwrap() > 0,
            "{report}"
        );
    } else {
        // Not root: the non-dumpable flag alone refuses the spy the orchestrator's environ,
        // so that is all this pass can show; the scrubbed block itself is checked, as any
        // user, by secrets::tests::the_initial_environment_block_keeps_no_secret_value_after_the_scrub.
        assert_eq!(orchestrator["environ_bytes"], Value::Null, "{report}");
        eprintln!("hostile: not root: the spy was refused the orchestrator's environ (the scrub is checked by secrets::tests)");
    }
    assert!(report["read"]["cmdline"].as_u64().unwrap() > 0, "{report}");
    // A pass that handed no secret to anyone would find no leak either: the module that
    // declares the secret got it.
    let canary = secrets(&fx)
        .into_iter()
        .find(|(k, _)| *k == "PLATFORM_SECRET_CANARY")
        .unwrap()
        .1;
    let note = std::fs::read_to_string(step_dir(&fx, "spy", "use").join("outputs/note.txt"));
    assert_eq!(
        note.unwrap_or_default(),
        format!("secret length {}\n", canary.len()),
        "secretuser got its secret"
    );
    let found = leaks(&fx, &[("stdout", &out.stdout), ("stderr", &out.stderr)]);
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

#[test]
fn a_module_gets_no_descriptor_that_the_orchestrators_caller_left_open() {
    // A CI wrapper starts the orchestrator with a token file on fd 200 and its own log open
    // for writing on fd 201, neither close-on-exec: the module must see neither.
    let fx = fx();
    fx.workorder(
        "fds",
        "work_order_id: fds\nsteps:\n  - {step_id: look, module_id: fdthief, kind: transform}\n",
    );
    let token = fx.path("caller-token.txt");
    std::fs::write(&token, "caller-private-token-6c1f\n").unwrap();
    let log = fx.path("caller-log.txt");
    std::fs::write(&log, "").unwrap();
    let token_file = std::fs::File::open(&token).unwrap();
    let log_file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let (t, l) = {
        use std::os::fd::AsRawFd;
        (token_file.as_raw_fd(), log_file.as_raw_fd())
    };
    let mut c = orchestrator(&fx);
    {
        use std::os::unix::process::CommandExt;
        #[allow(unsafe_code)]
        // SAFETY: dup2 is async-signal-safe; the copies it makes are not close-on-exec.
        unsafe {
            c.pre_exec(move || {
                if libc::dup2(t, 200) < 0 || libc::dup2(l, 201) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let out = c.output().unwrap();
    let v = out.json();
    assert_eq!(run_of(&v, "fds")["status"], "COMPLETED", "{}", out.text());
    let report: Value = serde_json::from_slice(
        &std::fs::read(step_dir(&fx, "fds", "look").join("outputs/report.json")).unwrap(),
    )
    .unwrap();
    let fds = report["fds"].as_object().unwrap();
    let named = |p: &Path| {
        fds.values()
            .any(|e| e["target"].as_str() == Some(p.to_str().unwrap()))
    };
    assert!(!named(&token) && !named(&log), "the module saw: {report}");
    assert!(
        !report.to_string().contains("caller-private-token"),
        "{report}"
    );
    assert_eq!(
        std::fs::read(&log).unwrap(),
        b"",
        "the module wrote to the caller's log"
    );
}

/// The supervisor a step's dir records, and the command line of the spy's parent (its
/// supervisor, as the spy saw it while it ran).
fn supervisor_of(fx: &Fx, wo: &str, step: &str) -> i64 {
    let rec: Value = serde_json::from_slice(
        &std::fs::read(step_dir(fx, wo, step).join("supervisor.json")).unwrap(),
    )
    .unwrap();
    rec["pid"].as_i64().unwrap()
}

#[test]
fn a_supervisor_serves_the_next_step_only_if_it_held_no_secret_and_names_each_step_it_runs() {
    let (fx, out, run) = pass_one(
        "kept",
        "work_order_id: kept\nsteps:\n  - {step_id: spy1, module_id: procspy, kind: transform}\n  - {step_id: use, module_id: secretuser, kind: transform}\n  - {step_id: spy2, module_id: procspy, kind: transform}\n",
    );
    assert_eq!(run["status"], "COMPLETED", "{}", out.text());
    let (spy1, secret, spy2) = (
        supervisor_of(&fx, "kept", "spy1"),
        supervisor_of(&fx, "kept", "use"),
        supervisor_of(&fx, "kept", "spy2"),
    );
    // The first spy's supervisor, kept, ran the second spy; the step with a secret had a
    // supervisor of its own, which served nothing after it.
    assert_eq!(spy1, spy2, "{}", out.text());
    assert_ne!(secret, spy1);
    for step in ["spy1", "spy2"] {
        let report: Value = serde_json::from_slice(
            &std::fs::read(step_dir(&fx, "kept", step).join("outputs/report.json")).unwrap(),
        )
        .unwrap();
        // (The spy shows NULs as spaces: the rest of the rewritten argv area.)
        let parent = report["ancestors"][0]["cmdline"]
            .as_str()
            .unwrap()
            .trim_end();
        let dir = std::fs::canonicalize(step_dir(&fx, "kept", step)).unwrap();
        assert_eq!(
            parent,
            format!("platform __supervise {}", dir.display()),
            "the supervisor's command line while {step} ran"
        );
        assert_eq!(report["ancestors"][0]["pid"], spy1);
    }
    let found = leaks(&fx, &[("stdout", &out.stdout), ("stderr", &out.stderr)]);
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
    // The pass ended both supervisors (the kept one idle) before it exited.
    let alive = wait_dead(&[spy1 as i32, secret as i32], Duration::from_secs(10));
    assert!(alive.is_empty(), "supervisors left running: {alive:?}");
}

/// Run daemonizer; after the pass, its daemon must be dead and, past the daemon's sleep,
/// the step's log unchanged and no marker written. Returns the step's report.
fn daemon_pass(fx: &Fx, kill_supervisor: bool) -> Value {
    let pidfile = fx.path("daemon.pid");
    let marker = fx.path("daemon.marker");
    fx.workorder(
        "daemon",
        &format!(
            "work_order_id: daemon\nsteps:\n  - step_id: d\n    module_id: daemonizer\n    kind: transform\n    inputs: {{pidfile: \"{}\", marker: \"{}\", sleep_ms: 2000, kill_supervisor: {kill_supervisor}}}\n",
            pidfile.display(),
            marker.display()
        ),
    );
    let (out, v) = pass(fx);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap_or_else(|e| panic!("{e}: {}", out.text()))
        .trim()
        .parse()
        .unwrap();
    let log = step_dir(fx, "daemon", "d").join("stdout.log");
    let before = std::fs::read(&log).unwrap();
    assert!(is_dead(pid), "daemon {pid} outlived its step");
    // Longer than the daemon's sleep: had it lived, it would have written by now.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        std::fs::read(&log).unwrap(),
        before,
        "the log changed after the step"
    );
    assert!(
        !marker.exists(),
        "the daemon wrote its marker after the step"
    );
    assert!(leaks(fx, &[]).is_empty(), "{:?}", leaks(fx, &[]));
    step_of(run_of(&v, "daemon"), "d").clone()
}

#[test]
fn a_setsid_daemon_is_ended_with_its_step_and_never_writes_to_the_log_afterwards() {
    let fx = fx();
    let step = daemon_pass(&fx, false);
    assert_eq!(step["status"], "COMPLETED", "{step}");
}

#[test]
fn a_module_that_kills_its_supervisor_fails_and_its_daemon_is_still_ended() {
    // The daemon reparents to the orchestrator (a subreaper too), which ends it.
    let fx = fx();
    let step = daemon_pass(&fx, true);
    assert_eq!(step["status"], "FAILED", "{step}");
    assert_eq!(step["reason_slug"], "module_failed");
    assert!(
        step["message"]
            .as_str()
            .unwrap()
            .contains("supervisor ended without a report"),
        "{step}"
    );
}

#[test]
fn a_module_that_kills_the_zygote_stops_its_own_step_and_the_next_step_still_runs() {
    // The zygote forks every step's supervisor; killing it ends the steps in flight (their
    // supervisors' death signal), and the next step gets a new zygote.
    let fx = fx();
    for (id, kill) in [("a-kill", true), ("b-after", false)] {
        fx.workorder(
            id,
            &format!("work_order_id: {id}\nsteps:\n  - step_id: z\n    module_id: zygotekiller\n    kind: transform\n    inputs: {{kill: {kill}}}\n"),
        );
    }
    let out = orchestrator(&fx).args(["--jobs", "1"]).output().unwrap();
    let v = out.json();
    let killed = step_of(run_of(&v, "a-kill"), "z");
    assert_eq!(killed["status"], "FAILED", "{killed}");
    assert_eq!(killed["reason_slug"], "module_failed", "{killed}");
    let after = step_of(run_of(&v, "b-after"), "z");
    assert_eq!(after["status"], "COMPLETED", "{after}");
    assert_eq!(
        std::fs::read_to_string(step_dir(&fx, "b-after", "z").join("outputs/note.txt")).unwrap(),
        "done\n"
    );
}

/// A pass over a work order whose step `t` runs treefork, and the module tree's pids once
/// the module has written them. Dropping it kills whatever is left (a failing test must not
/// leave hour-long sleepers behind).
struct Tree {
    orchestrator: Child,
    pids: Vec<i32>,
    pidfile: PathBuf,
}

impl Tree {
    fn start(fx: &Fx) -> Tree {
        let pidfile = fx.path("tree.pid");
        fx.workorder(
            "tree",
            &format!(
                "work_order_id: tree\nsteps:\n  - {{step_id: t, module_id: treefork, kind: transform, inputs: {{pidfile: \"{}\"}}}}\n",
                pidfile.display()
            ),
        );
        let mut orchestrator = orchestrator(fx)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pids = pids_in(&wait_for_file(&pidfile, &mut orchestrator));
        Tree {
            orchestrator,
            pids,
            pidfile,
        }
    }
    /// SIGKILL the orchestrator and reap it.
    fn kill_orchestrator(&mut self) {
        self.orchestrator.kill().unwrap();
        self.orchestrator.wait().unwrap();
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = self.orchestrator.kill();
        let _ = self.orchestrator.wait();
        for p in &self.pids {
            let _ = std::process::Command::new("kill")
                .args(["-9", &p.to_string()])
                .output();
        }
    }
}

/// The step's supervisor, as recorded in its step dir.
fn supervisor_pid(fx: &Fx) -> Option<i32> {
    let rec: Value = serde_json::from_slice(
        &std::fs::read(step_dir(fx, "tree", "t").join("supervisor.json")).ok()?,
    )
    .ok()?;
    Some(rec["pid"].as_i64()? as i32)
}

#[test]
fn killing_the_orchestrator_ends_the_whole_module_tree() {
    let fx = fx();
    let mut tree = Tree::start(&fx);
    let supervisor = supervisor_pid(&fx);
    assert_eq!(tree.pids.len(), 3);
    assert!(tree.pids.iter().all(|p| !is_dead(*p)), "{:?}", tree.pids);
    tree.kill_orchestrator();
    let mut all = tree.pids.clone();
    all.extend(supervisor);
    let alive = wait_dead(&all, Duration::from_secs(60));
    assert!(
        alive.is_empty(),
        "still running after the orchestrator was killed: {alive:?}"
    );
}

#[test]
fn a_resumed_step_runs_only_after_its_earlier_attempts_processes_have_ended() {
    let fx = fx();
    let mut tree = Tree::start(&fx);
    let supervisor = supervisor_pid(&fx);
    // A stopped supervisor cannot act on its death signal: the tree outlives the orchestrator.
    if let Some(s) = supervisor {
        send_signal(s, "-STOP");
    }
    tree.kill_orchestrator();
    std::thread::sleep(Duration::from_millis(300));
    assert!(tree.pids.iter().all(|p| !is_dead(*p)), "{:?}", tree.pids);
    // The recovery pass resumes step t; treefork, finding its pidfile, reports which of the
    // earlier tree's processes were alive when it started, and completes.
    let (out, v) = pass(&fx);
    let note = std::fs::read_to_string(step_dir(&fx, "tree", "t").join("outputs/note.txt"))
        .unwrap_or_default();
    assert_eq!(run_of(&v, "tree")["status"], "COMPLETED", "{}", out.text());
    assert_eq!(note.trim(), "earlier tree alive: []", "{}", out.text());
    let mut all = tree.pids.clone();
    all.extend(supervisor);
    assert!(wait_dead(&all, Duration::from_secs(10)).is_empty());
    assert!(tree.pidfile.exists());
}

fn send_signal(pid: i32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_two_gib_stdout_flood_keeps_16_mib_and_the_orchestrator_under_200_mb() {
    let fx = fx();
    fx.workorder(
        "flood",
        "work_order_id: flood\nsteps:\n  - {step_id: f, module_id: flood, kind: transform, inputs: {mib: 2048}}\n",
    );
    let mut child = orchestrator(&fx)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut s).unwrap();
        s
    });
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(peak > 0, "VmHWM was read");
    assert!(
        peak < 200 * 1024,
        "orchestrator peak RSS {} MiB while a module wrote 2 GiB",
        peak / 1024
    );
    eprintln!(
        "hostile_modules: 2 GiB of stdout, orchestrator peak RSS {} MiB",
        peak / 1024
    );
    let v: Value = serde_json::from_slice(&reader.join().unwrap()).unwrap();
    assert_eq!(run_of(&v, "flood")["status"], "COMPLETED", "{v}");
    let dir = step_dir(&fx, "flood", "f");
    let log = std::fs::read(dir.join("stdout.log")).unwrap();
    let cap = 16 << 20;
    let dropped = (2048u64 << 20) - cap as u64;
    let note = format!(
        "[platform] {dropped} bytes of stdout dropped: a step keeps the first 16 MiB of each stream\n"
    );
    assert_eq!(log.len(), cap + note.len());
    assert_eq!(&log[cap..], note.as_bytes());
    assert!(log[..cap].iter().all(|b| *b == b'x' || *b == b'\n'));
    assert_eq!(std::fs::read(dir.join("stderr.log")).unwrap(), b"flooded\n");
    // The evidence records the log as written, cut and all.
    let item = fx
        .records("evidence.jsonl")
        .into_iter()
        .find(|r| r["type"] == "evidence_item")
        .unwrap();
    let logged = item["logs"].as_array().unwrap();
    assert!(logged
        .iter()
        .any(|l| l["name"] == "stdout.log" && l["bytes"] == log.len() as u64));
}

/// The work order of `a_200000_file_output_fails_outputs_too_large_refunded_with_small_ledger_lines`.
const MANY: &str = "work_order_id: many\nsteps:\n  - {step_id: big, module_id: manyfiles, kind: transform, inputs: {count: 200000}, deliverables: [files]}\n  - {step_id: ok, module_id: manyfiles, kind: transform, inputs: {count: 3000, hardlinks: false}, deliverables: [files]}\n  - {step_id: linked, module_id: manyfiles, kind: transform, inputs: {count: 50}, deliverables: [files]}\n";

#[test]
fn a_200000_file_output_fails_outputs_too_large_refunded_with_small_ledger_lines() {
    let (fx, out, run) = pass_one("many", MANY);
    let big = step_of(&run, "big");
    assert_eq!(big["status"], "FAILED", "{}", out.text());
    assert_eq!(big["reason_slug"], "outputs_too_large");
    assert_eq!(step_of(&run, "ok")["status"], "COMPLETED");
    // Under the caps, hard links (one may be another tenant's file) are refused.
    let linked = step_of(&run, "linked");
    assert_eq!(linked["reason_slug"], "outputs_missing", "{linked}");
    assert!(linked["message"].as_str().unwrap().contains("hard links"));
    // Refunded in full: 1 + 2 charged and given back twice; the step that completed costs 3.
    assert_eq!(fx.balance(), 100 - 3);
    let refunds = fx.of_type("billing.jsonl", "REFUND");
    assert_eq!(refunds.len(), 4);
    let too_large = refunds
        .iter()
        .filter(|r| r["reason_slug"] == "outputs_too_large")
        .count();
    assert_eq!(too_large, 2);
    // A dir output is one record: its file count, bytes and manifest digest.
    let outcome = outcome_of(&fx, "ok");
    let outputs = outcome["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 1, "{outcome}");
    assert_eq!(outputs[0]["files"], 3000);
    assert_eq!(outputs[0]["path"], "tree");
    assert_ledger_lines_under_1_mib(&fx);
}

/// The work order of `oversized_results_are_capped_so_no_ledger_line_reaches_1_mib`.
const RESULTS: &str = "work_order_id: results\nsteps:\n  - {step_id: file, module_id: bigresult, kind: transform, inputs: {value_kib: 3072}}\n  - {step_id: values, module_id: bigresult, kind: transform, inputs: {value_kib: 700}}\n  - {step_id: message, module_id: bigresult, kind: transform, inputs: {message_chars: 100000, value_kib: 1}}\n";

#[test]
fn oversized_results_are_capped_so_no_ledger_line_reaches_1_mib() {
    let (fx, out, run) = pass_one("results", RESULTS);
    let file = step_of(&run, "file");
    assert_eq!(file["reason_slug"], "module_failed", "{}", out.text());
    assert!(file["message"]
        .as_str()
        .unwrap()
        .contains("larger than 1 MiB"));
    assert_eq!(step_of(&run, "values")["reason_slug"], "outputs_too_large");
    let message = step_of(&run, "message");
    assert_eq!(message["status"], "COMPLETED");
    let outcome = outcome_of(&fx, "message");
    let m = outcome["message"].as_str().unwrap();
    assert_eq!(m.chars().filter(|c| *c == '\u{1}').count(), 4000);
    assert!(m.ends_with("(message truncated)"));
    assert_ledger_lines_under_1_mib(&fx);
}

/// Attack: a value of ~140 bytes nested past the depth the ledger's reader accepts (64). Once
/// written, every reader would refuse the ledger: billing stopped for every tenant. Refused
/// at intake instead (`outputs_too_large`, refunded); a value at the cap is recorded and read.
#[test]
fn a_value_nested_past_the_cap_is_refused_and_the_ledger_stays_readable() {
    let yaml = "work_order_id: deep\nsteps:\n  - {step_id: deep, module_id: bigresult, kind: transform, inputs: {nest: 100}}\n  - {step_id: at_cap, module_id: bigresult, kind: transform, inputs: {nest: 32}}\n";
    let (fx, out, run) = pass_one("deep", yaml);
    let deep = step_of(&run, "deep");
    assert_eq!(deep["reason_slug"], "outputs_too_large", "{}", out.text());
    assert!(
        deep["message"]
            .as_str()
            .unwrap()
            .contains("nests 100 levels"),
        "{deep}"
    );
    assert_eq!(
        step_of(&run, "at_cap")["status"],
        "COMPLETED",
        "{}",
        out.text()
    );
    assert_eq!(fx.of_type("billing.jsonl", "REFUND").len(), 1);
    fx.integrity().unwrap();
    assert_eq!(fx.balance(), 99, "the refused step's charge came back");
}

/// Attack: result.json files that break the protocol's shape while the module exits 0: a
/// lower-case status, the same key twice (serde_json would keep the last: `COMPLETED`), a
/// message that is not text. Each used to complete (or lose the field) on a guess; each
/// fails closed now, `module_failed`, refunded, naming what is wrong. A well-formed result
/// beside them completes.
#[test]
fn a_result_file_that_breaks_the_protocol_fails_closed_and_is_refunded() {
    let steps = [
        (
            "lower",
            r#"{"status": "failed", "reason_slug": "module_failed"}"#,
            "upper case",
        ),
        (
            "twice",
            r#"{"status": "FAILED", "status": "COMPLETED"}"#,
            "appears twice",
        ),
        (
            "nested",
            r#"{"values": {"said": {"a": 1, "a": 2}}}"#,
            "appears twice",
        ),
        (
            "typed",
            r#"{"status": "COMPLETED", "message": 42}"#,
            "`message` must be a string",
        ),
        (
            "ok",
            r#"{"status": "COMPLETED", "message": "fine", "values": {"said": 1}}"#,
            "",
        ),
        // Well-formed: a FAILED status without a message (exit 0) is said so, not "exit
        // status: 0".
        (
            "said",
            r#"{"status": "FAILED"}"#,
            "reported status FAILED with no message",
        ),
    ];
    let mut yaml = "work_order_id: shapes\nsteps:\n".to_string();
    for (id, raw, _) in steps {
        yaml.push_str(&format!(
            "  - {{step_id: {id}, module_id: rawresult, kind: transform, inputs: {{raw: {:?}}}}}\n",
            raw
        ));
    }
    let (fx, out, run) = pass_one("shapes", &yaml);
    for (id, _, why) in steps {
        let step = step_of(&run, id);
        if why.is_empty() {
            assert_eq!(step["status"], "COMPLETED", "{id}: {}", out.text());
            continue;
        }
        assert_eq!(step["status"], "FAILED", "{id}: {}", out.text());
        assert_eq!(step["reason_slug"], "module_failed", "{id}: {step}");
        let message = step["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{id}: {message}");
    }
    assert_eq!(fx.of_type("billing.jsonl", "REFUND").len(), 5);
    assert_eq!(fx.balance(), 99, "only the completed step kept its charge");
    fx.integrity().unwrap();
}

/// The work order of `a_secret_split_across_writes_is_redacted_in_both_logs`.
const SPLIT: &str =
    "work_order_id: split\nsteps:\n  - {step_id: s, module_id: splitter, kind: transform}\n";

#[test]
fn a_secret_split_across_writes_is_redacted_in_both_logs() {
    let (fx, out, run) = pass_one("split", SPLIT);
    assert_eq!(run["status"], "COMPLETED", "{}", out.text());
    let dir = step_dir(&fx, "split", "s");
    for log in ["stdout.log", "stderr.log"] {
        let text = std::fs::read(dir.join(log)).unwrap();
        let want = [".".repeat(70000).as_bytes(), b"\nbefore [REDACTED] after\n"].concat();
        assert_eq!(
            String::from_utf8_lossy(&text[70000..]),
            String::from_utf8_lossy(&want[70000..]),
            "{log}"
        );
        assert_eq!(text, want, "{log}");
    }
    assert!(leaks(&fx, &[]).is_empty(), "{:?}", leaks(&fx, &[]));
}

/// One pass of work order `id` whose step `step_id` runs `outlink` with `swap` (after `rest`,
/// more steps), its link pointing at `elsewhere`: the pass's output and the run.
fn outlink_pass(fx: &Fx, id: &str, step_id: &str, swap: &str, rest: &str) -> (Output, Value) {
    let target = fx.path("elsewhere").display().to_string();
    let yaml = format!(
        "work_order_id: {id}\nsteps:\n  - {{step_id: {step_id}, module_id: outlink, kind: transform, inputs: {{target: {target:?}, swap: {swap}}}}}\n{rest}"
    );
    fx.workorder(id, &yaml);
    let (out, v) = pass(fx);
    let run = run_of(&v, id).clone();
    (out, run)
}

/// Attack: the module swaps its own outputs folder for a symbolic link to a folder it was
/// never given (another tenant's, say), holding a `note.txt` and a `tree/` that match its
/// declared outputs. The platform neither records nor hashes what the link points to: the
/// step fails `outputs_missing`, is refunded, and no record holds the planted file's digest.
#[test]
fn an_outputs_folder_swapped_for_a_link_is_refused_and_never_read_through() {
    let fx = fx();
    let planted = b"bytes of another tenant\n";
    let elsewhere = fx.path("elsewhere");
    std::fs::create_dir_all(elsewhere.join("tree")).unwrap();
    std::fs::write(elsewhere.join("note.txt"), planted).unwrap();
    std::fs::write(elsewhere.join("tree/a.txt"), planted).unwrap();
    let (out, run) = outlink_pass(&fx, "outlink", "s", "outputs", "");
    let step = step_of(&run, "s");
    assert_eq!(step["status"], "FAILED", "{}", out.text());
    assert_eq!(step["reason_slug"], "outputs_missing", "{step}");
    let message = step["message"].as_str().unwrap();
    assert!(message.contains("symbolic link"), "{message}");
    // The link is still there: refused, not repaired, and nothing behind it was read.
    assert!(step_dir(&fx, "outlink", "s")
        .join("outputs")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    let digest = crate::support::check::sha256_hex(planted);
    for file in ["evidence.jsonl", "billing.jsonl"] {
        let records = fx.records(file);
        assert!(!records.is_empty(), "{file}");
        let text = Value::Array(records).to_string();
        assert!(
            !text.contains(&digest),
            "{file} records the planted file's digest"
        );
    }
    assert_eq!(fx.balance(), 100, "charged for a refused step");
    fx.integrity().unwrap();
}

/// Attack: the module swaps its whole step folder for a link to a folder holding another
/// step's `result.json` (a message and values) and outputs. The platform reads nothing through
/// the link, and neither rewrites nor removes the file there: the step fails `module_failed`
/// with its own message, refunded.
#[test]
fn a_step_folder_swapped_for_a_link_is_never_read_or_written_through() {
    let fx = fx();
    let elsewhere = fx.path("elsewhere");
    std::fs::create_dir_all(elsewhere.join("outputs/tree")).unwrap();
    let planted =
        br#"{"status": "FAILED", "message": "planted message", "values": {"v": "planted"}}"#;
    std::fs::write(elsewhere.join("result.json"), planted).unwrap();
    std::fs::write(elsewhere.join("outputs/note.txt"), "planted\n").unwrap();
    std::fs::write(elsewhere.join("outputs/tree/a.txt"), "planted\n").unwrap();
    let (out, run) = outlink_pass(&fx, "steplink", "s", "step", "");
    let step = step_of(&run, "s");
    assert_eq!(step["status"], "FAILED", "{}", out.text());
    assert_eq!(step["reason_slug"], "module_failed", "{step}");
    let message = step["message"].as_str().unwrap();
    assert!(message.contains("symbolic link"), "{message}");
    assert!(!message.contains("planted"), "{message}");
    assert_eq!(
        std::fs::read(elsewhere.join("result.json")).unwrap(),
        planted
    );
    let text = Value::Array(fx.records("evidence.jsonl")).to_string();
    assert!(
        !text.contains("planted"),
        "the evidence holds what the link points to"
    );
    assert_eq!(fx.balance(), 100, "charged for a refused step");
    // Retried, the step's folder is still the link: the attempt is refused before anything
    // is cleared through it (its inputs, outputs and work folders would be another step's).
    for kept in ["work", "inputs"] {
        std::fs::create_dir_all(elsewhere.join(kept)).unwrap();
        std::fs::write(elsewhere.join(kept).join("keep.txt"), "keep\n").unwrap();
    }
    let out = orchestrator(&fx).arg("--retry-failed").output().unwrap();
    let retried = step_of(run_of(&out.json(), "steplink"), "s").clone();
    assert_eq!(retried["status"], "FAILED", "{}", out.text());
    // Refused before it is charged, its inputs are not copied through the link either.
    assert_eq!(retried["reason_slug"], "input_invalid", "{retried}");
    let message = retried["message"].as_str().unwrap();
    assert!(message.contains("link"), "{message}");
    assert!(elsewhere.join("outputs/note.txt").is_file());
    assert!(elsewhere.join("work/keep.txt").is_file());
    assert!(elsewhere.join("inputs/keep.txt").is_file());
    assert_eq!(
        std::fs::read(elsewhere.join("result.json")).unwrap(),
        planted
    );
    fx.integrity().unwrap();
}

/// Attack: a module plants a link where its work order's deliveries go
/// (`<runtime>/deliveries/<tenant>/<work order>`), so that a later `deliver_local` writes the
/// package into a folder of its choosing. The delivery fails `delivery_failed` and nothing
/// lands behind the link.
#[test]
fn a_delivery_folder_swapped_for_a_link_receives_nothing() {
    let fx = fx();
    let elsewhere = fx.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(fx.path("tenants/t1/assets")).unwrap();
    std::fs::write(fx.path("tenants/t1/assets/note.txt"), "the package\n").unwrap();
    let deliver = "  - step_id: deliver\n    module_id: deliver_local\n    kind: delivery\n    inputs:\n      package_zip: {asset: note.txt}\n";
    let (out, run) = outlink_pass(&fx, "dellink", "plant", "deliveries", deliver);
    let run = &run;
    assert_eq!(
        step_of(run, "plant")["status"],
        "COMPLETED",
        "{}",
        out.text()
    );
    let deliver = step_of(run, "deliver");
    assert_eq!(deliver["status"], "FAILED", "{}", out.text());
    assert_eq!(deliver["reason_slug"], "delivery_failed", "{deliver}");
    let message = deliver["message"].as_str().unwrap();
    assert!(message.contains("symbolic link"), "{message}");
    let landed: Vec<_> = walkdir::WalkDir::new(&elsewhere)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().display().to_string())
        .collect();
    assert!(landed.is_empty(), "{landed:?}");
    fx.integrity().unwrap();
}

#[test]
fn a_module_that_forges_the_work_order_cache_makes_nothing_run_or_charge() {
    use crate::support::orch::GEN_STEP;
    let fx = fx();
    fx.workorder("victim", &format!("work_order_id: victim\n{GEN_STEP}"));
    fx.workorder(
        "draft",
        &format!("work_order_id: draft\nenabled: false\n{GEN_STEP}"),
    );
    let (out, v) = pass(&fx);
    assert_eq!(
        run_of(&v, "victim")["status"],
        "COMPLETED",
        "{}",
        out.text()
    );
    // The module rewrites the cache during its step: victim "daily", the draft "enabled".
    fx.workorder(
        "poison",
        "work_order_id: poison\nsteps:\n  - step_id: p\n    module_id: cachepoison\n    kind: transform\n    inputs: {scheduled: tenants/t1/workorders/victim.yml, draft: tenants/t1/workorders/draft.yml}\n",
    );
    let (out, v) = pass(&fx);
    assert_eq!(
        run_of(&v, "poison")["status"],
        "COMPLETED",
        "{}",
        out.text()
    );
    let spends = fx.of_type("billing.jsonl", "SPEND").len();
    // The pass wrote its verdicts again over the module's: nothing runs next.
    let (out, v) = pass(&fx);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert_eq!(v["runs"], serde_json::json!([]), "{v}");
    assert_eq!(fx.of_type("billing.jsonl", "SPEND").len(), spends);

    // The same forgery left in place (as if the module had then killed the orchestrator):
    // the planner checks what it took from the cache against the file before anything runs.
    let path = fx.path("runtime/.cache/workorders.json");
    let mut cache: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cache["files"]["tenants/t1/workorders/victim.yml"]["schedule"] = "day".into();
    let draft = crate::support::check::sha256_hex(fx.bytes("tenants/t1/workorders/draft.yml"));
    cache["files"]["tenants/t1/workorders/draft.yml"] =
        serde_json::json!({"sha256": draft, "enabled": true, "assets": [], "schedule": null});
    std::fs::write(&path, cache.to_string()).unwrap();
    let (out, v) = pass(&fx);
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    assert_eq!(v["runs"], serde_json::json!([]), "{v}");
    let invalid: Vec<&str> = v["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["work_order_id"].as_str().unwrap())
        .collect();
    assert_eq!(invalid, ["draft", "victim"], "{v}");
    assert!(v["invalid"].to_string().contains("work-order cache"), "{v}");
    assert_eq!(
        fx.of_type("billing.jsonl", "SPEND").len(),
        spends,
        "nothing charged"
    );
    assert!(fx.of_type("evidence.jsonl", "run_started").len() == 2);
    // The doubted verdicts were dropped: the next pass judges both files, and all is well.
    let (out, v) = pass(&fx);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert_eq!(v["runs"], serde_json::json!([]), "{v}");
}
