//! The orchestrator's side of a supervised step: hands the step to a supervisor (a kept one,
//! or one the zygote forks: runner/session.rs), records it in the step dir, streams the
//! module's stdout/stderr into capped, redacted logs, and collects the supervisor's report.
//! Backstops: a supervisor that overruns the module's timeout is killed, and the
//! orchestrator is itself a child subreaper, so the module tree of a supervisor that died (a
//! module may kill it) reparents here and is ended.
use super::fdpass;
use super::logs::{LogSink, LOG_CAP};
use super::procs;
use super::session::Session;
use super::supervisor::{Report, Spec, ARG, SPEC_CAP};
use super::zygote;
use super::{FileRecord, SUPERVISOR_FILE};
use crate::redact::Redactor;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long past the module's timeout a silent supervisor is given before it is killed.
const BACKSTOP_GRACE: Duration = Duration::from_secs(30);
/// How long the log pipes may stay open after the supervisor has gone.
const PIPE_GRACE: Duration = Duration::from_secs(5);
/// How long a previous attempt's supervisor gets to end its module tree after SIGTERM.
const EARLIER_GRACE: Duration = Duration::from_secs(10);

/// One supervised module run.
pub struct Launch<'a> {
    pub spec: Spec,
    pub step_dir: &'a Path,
    pub redactor: &'a Redactor,
    /// The module's environment holds secrets: its supervisor is new, and serves no other
    /// step.
    pub secret: bool,
}

/// How the step's processes ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Reported(Report),
    /// The supervisor ended without a report; `timed_out` when the backstop killed it.
    Lost {
        timed_out: bool,
        why: String,
    },
}

/// What a supervised run produced.
pub struct Ended {
    pub ending: Ending,
    pub logs: Vec<FileRecord>,
    /// A log that could not be written in full.
    pub log_error: Option<String>,
}

/// The supervisor's identity, as recorded in the step dir.
#[derive(Debug, Serialize, Deserialize)]
struct Recorded {
    pid: i32,
    start_time: u64,
}

/// Run the module under a supervisor; Err when nothing could be started.
pub fn run(l: &Launch) -> Result<Ended, String> {
    become_subreaper();
    let log = |name, file: &str| {
        LogSink::create(name, &l.step_dir.join(file), l.redactor, LOG_CAP)
            .map_err(|e| format!("cannot create the step's {file}: {e}"))
    };
    let mut sinks = [log("stdout", "stdout.log")?, log("stderr", "stderr.log")?];
    let io = |e: std::io::Error| format!("cannot create the step's log pipes: {e}");
    let (out, out_w) = fdpass::pipe().map_err(io)?;
    let (err, err_w) = fdpass::pipe().map_err(io)?;
    let session = hand_over(l, [out_w.as_fd(), err_w.as_fd()])?;
    // The write ends live on in the module's tree only: the pipes end when it has.
    drop((out_w, err_w));
    let mut sup = Supervised {
        session,
        out: out.into(),
        err: err.into(),
    };
    let timeout = Duration::from_millis(l.spec.timeout_ms);
    let pumped = pump(&mut sup, &mut sinks, timeout);
    let ending = judge(&pumped);
    // A supervisor that reported is idle again and held no secret: the next step may use it.
    if !l.secret
        && !pumped.killed
        && matches!(&ending, Ending::Reported(r) if *r != Report::Terminated)
    {
        sup.session.keep();
    }
    let mut logs = Vec::new();
    let mut log_error = None;
    for sink in sinks {
        match sink.finish(l.step_dir) {
            Ok(r) => logs.push(r),
            Err(e) => log_error = Some(e),
        }
    }
    Ok(Ended {
        ending,
        logs,
        log_error,
    })
}

/// Give the step to a supervisor, recorded in the step dir first: a kept one unless the step
/// has secrets, a new one when the kept one has gone (a stop signal ends an idle supervisor).
fn hand_over(l: &Launch, logs: [BorrowedFd; 2]) -> Result<Session, String> {
    let named = l.spec.step_dir.as_os_str().len();
    if named > zygote::STEP_DIR_MAX {
        return Err(format!(
            "the step dir's path is too long for a supervisor's command line ({named} bytes)"
        ));
    }
    let body = serde_json::to_vec(&l.spec).map_err(|e| e.to_string())?;
    if body.len() > SPEC_CAP {
        return Err(format!(
            "the module's arguments and environment take {} bytes; a supervisor takes at most {SPEC_CAP}",
            body.len()
        ));
    }
    let mut fresh = l.secret;
    loop {
        let session = Session::take(fresh)?;
        record(l.step_dir, session.pid, session.start_time);
        match session.send(&body, logs) {
            Ok(()) => return Ok(session),
            Err(e) if fresh => return Err(format!("cannot hand the step to its supervisor: {e}")),
            Err(_) => fresh = true,
        }
    }
}

/// Orphans of a supervisor that died reparent to the orchestrator instead of init, where
/// [`sweep_strays`] can end them.
fn become_subreaper() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(target_os = "linux")]
        #[allow(unsafe_code)]
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) changes a flag of this process.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
    });
}

/// The step's supervisor and the read ends of the module's log pipes.
struct Supervised {
    session: Session,
    out: File,
    err: File,
}

/// Write the supervisor's pid and start time into the step dir (renamed into place).
fn record(step_dir: &Path, pid: i32, start_time: u64) {
    if start_time == 0 {
        return;
    }
    if let Ok(body) = serde_json::to_vec(&Recorded { pid, start_time }) {
        // Recorded before the step is handed over: a torn record names no supervisor that
        // ever received this step.
        let _ = crate::atomic::write_fresh(&step_dir.join(SUPERVISOR_FILE), &body);
    }
}

/// What the pump saw.
struct Pumped {
    report: Option<Report>,
    killed: bool,
}

/// Stream both pipes into the logs and read the report, until the supervisor has reported
/// (or gone) and the pipes are closed (or, if something still holds them, [`PIPE_GRACE`]
/// after).
fn pump(sup: &mut Supervised, sinks: &mut [LogSink; 2], timeout: Duration) -> Pumped {
    PUMP_BUF.with_borrow_mut(|buf| pump_through(sup, sinks, timeout, buf))
}

thread_local! {
    /// What [`pump`] reads into, one per thread that runs steps: a 64 KiB heap buffer per
    /// step made the allocator consolidate its free lists each time it was freed, and one
    /// zeroed on the stack for every step was ~2 % of a worker's CPU (docs/performance.md).
    static PUMP_BUF: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; 64 << 10].into_boxed_slice());
}

fn pump_through(
    sup: &mut Supervised,
    sinks: &mut [LogSink; 2],
    timeout: Duration,
    buf: &mut [u8],
) -> Pumped {
    let fds = [
        sup.out.as_raw_fd(),
        sup.err.as_raw_fd(),
        sup.session.socket().as_raw_fd(),
    ];
    let (pid, start_time) = (sup.session.pid, sup.session.start_time);
    let mut open = [true; 3];
    let mut p = Pumped {
        report: None,
        killed: false,
    };
    let backstop = Instant::now() + timeout + BACKSTOP_GRACE;
    let mut give_up: Option<Instant> = None;
    while open.iter().any(|o| *o) {
        let now = Instant::now();
        // The socket is open only while the supervisor lives (it holds the other end, and
        // the zygote has not reaped it), so its pid cannot have been reused.
        if open[2] && now >= backstop && !p.killed {
            procs::kill(pid, libc::SIGKILL);
            p.killed = true;
        }
        if give_up.is_some_and(|t| now >= t) {
            break;
        }
        let until = give_up.unwrap_or(backstop);
        for i in procs::poll_readable(&fds, &open, until.saturating_duration_since(now)) {
            if i == 2 {
                open[2] = false;
                p.report = match fdpass::recv(sup.session.socket(), buf) {
                    Ok(Some((n, _))) => serde_json::from_slice(&buf[..n]).ok(),
                    _ => None,
                };
                // No report: the supervisor has gone; end what it left behind (its module
                // tree has reparented here).
                if p.report.is_none() {
                    await_exit(pid, start_time);
                    sweep_strays();
                }
                give_up = Some(Instant::now() + PIPE_GRACE);
                continue;
            }
            let pipe = if i == 0 { &mut sup.out } else { &mut sup.err };
            match pipe.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(0) | Err(_) => open[i] = false,
                Ok(n) => sinks[i].feed(&buf[..n]),
            }
        }
    }
    p
}

fn judge(p: &Pumped) -> Ending {
    if let Some(r) = &p.report {
        return Ending::Reported(r.clone());
    }
    let why = if p.killed {
        "the step's supervisor did not end the step within its timeout and was killed"
    } else {
        "the step's supervisor ended without a report"
    };
    Ending::Lost {
        timed_out: p.killed,
        why: why.to_string(),
    }
}

/// Wait until the supervisor has fully exited: it closes its fds before its orphans are
/// reparented here, so a sweep at the channel's end alone could miss them.
fn await_exit(pid: i32, start_time: u64) {
    let until = Instant::now() + PIPE_GRACE;
    while start_time != 0 && procs::is_running(pid, start_time) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// SIGKILL and reap every child of this process but the zygote: the module tree of a
/// supervisor that died without ending it, reparented here (supervisors are the zygote's
/// children, never this process's). Repeats while killing one makes its own children
/// reparent here.
fn sweep_strays() {
    zygote::with_pid(|zygote| sweep_children_but(zygote.and_then(|p| i32::try_from(p).ok())));
}

fn sweep_children_but(keep: Option<i32>) {
    let me = std::process::id() as i32;
    for _ in 0..1000 {
        let strays: Vec<i32> = procs::children(me)
            .into_iter()
            .filter(|p| Some(*p) != keep)
            .collect();
        if strays.is_empty() {
            return;
        }
        for p in &strays {
            procs::kill(*p, libc::SIGKILL);
        }
        for p in &strays {
            procs::wait_child(*p, false);
        }
    }
}

/// A resumed or retried step never runs beside processes of its earlier attempt: if the
/// supervisor recorded in the step dir still runs, it is told to end its module tree
/// (SIGTERM, and SIGCONT in case it was stopped), then killed; Err when it still will not go.
/// `id` is the step dir as a supervisor's command line names it (`runner::step_dir_id`).
pub fn end_earlier_attempt(step_dir: &Path, id: &Path) -> Result<(), String> {
    let path = step_dir.join(SUPERVISOR_FILE);
    let Some(rec) = read_record(&path) else {
        return Ok(());
    };
    if !is_supervisor_of(rec.pid, rec.start_time, id) {
        return Ok(());
    }
    for (signal, grace) in [
        (libc::SIGTERM, EARLIER_GRACE),
        (libc::SIGKILL, EARLIER_GRACE),
    ] {
        procs::kill(rec.pid, signal);
        // A stopped supervisor would leave SIGTERM pending (and its module tree running).
        procs::kill(rec.pid, libc::SIGCONT);
        let until = Instant::now() + grace;
        while procs::is_running(rec.pid, rec.start_time) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !procs::is_running(rec.pid, rec.start_time) {
            return Ok(());
        }
    }
    Err(format!(
        "the supervisor of this step's earlier attempt (pid {}) is still running; the step is not run beside it",
        rec.pid
    ))
}

fn read_record(path: &Path) -> Option<Recorded> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(4096)
        .read_to_end(&mut bytes)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether `pid` (started at `start`) is a supervisor of the step dir named `id`: the record is
/// in a folder a module can write, so it must never make the platform signal anything else.
fn is_supervisor_of(pid: i32, start: u64, id: &Path) -> bool {
    if pid <= 1 || !procs::is_running(pid, start) {
        return false;
    }
    let argv = procs::cmdline(pid);
    argv.get(1).is_some_and(|a| a == ARG.as_bytes())
        && argv
            .get(2)
            .is_some_and(|a| a.as_slice() == id.as_os_str().as_encoded_bytes())
}
