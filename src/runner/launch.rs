//! The orchestrator's side of a supervised step: starts `platform __supervise` (no pre_exec
//! hook, so the spawn stays a cheap vfork-style spawn of the big orchestrator), records it in
//! the step dir, streams the module's stdout/stderr into capped, redacted logs, and collects
//! the supervisor's report. Backstops: a supervisor that overruns the module's timeout is
//! killed, and the orchestrator is itself a child subreaper, so the module tree of a
//! supervisor that died (a module may kill it) reparents here and is ended.
use super::logs::{LogSink, LOG_CAP};
use super::procs;
use super::redact::Redactor;
use super::supervisor::{Report, Spec, ARG};
use super::FileRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where a step's supervisor is recorded, for the next attempt to check.
pub const SUPERVISOR_FILE: &str = "supervisor.json";
/// How long past the module's timeout a silent supervisor is given before it is killed.
const BACKSTOP_GRACE: Duration = Duration::from_secs(30);
/// How long the log pipes may stay open after the supervisor has gone.
const PIPE_GRACE: Duration = Duration::from_secs(5);
/// How long a previous attempt's supervisor gets to end its module tree after SIGTERM.
const EARLIER_GRACE: Duration = Duration::from_secs(10);
const REPORT_CAP: usize = 64 << 10;

/// Supervisors this process started and has not reaped: every other child is a stray.
static SUPERVISORS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// One supervised module run.
pub struct Launch<'a> {
    pub spec: Spec,
    /// The module's whole environment (the supervisor runs with it too).
    pub env: &'a [(String, String)],
    pub step_dir: &'a Path,
    pub redactor: &'a Redactor,
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

/// Run the module under a supervisor; Err when nothing could be started. The calling thread
/// must stay until this returns (it does: it pumps the logs): the supervisor's death signal
/// follows the thread that spawned it, not the process.
pub fn run(l: &Launch) -> Result<Ended, String> {
    become_subreaper();
    let log = |name, file: &str| {
        LogSink::create(name, &l.step_dir.join(file), l.redactor, LOG_CAP)
            .map_err(|e| format!("cannot create the step's {file}: {e}"))
    };
    let mut sinks = [log("stdout", "stdout.log")?, log("stderr", "stderr.log")?];
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| format!("cannot create the supervisor's socket: {e}"))?;
    let mut child = spawn_supervisor(l, theirs.into())?;
    record(l.step_dir, child.id());
    send_spec(&ours, &l.spec);
    let timeout = Duration::from_millis(l.spec.timeout_ms);
    let pumped = pump(&mut child, &ours, &mut sinks, timeout);
    let ending = judge(&pumped);
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

fn supervisors() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    SUPERVISORS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The step dir as the supervisor's argv names it: the same however the runtime directory
/// was spelled, so a later orchestrator recognises it.
fn step_dir_id(step_dir: &Path) -> std::path::PathBuf {
    std::fs::canonicalize(step_dir)
        .or_else(|_| std::path::absolute(step_dir))
        .unwrap_or_else(|_| step_dir.to_path_buf())
}

fn spawn_supervisor(l: &Launch, channel: OwnedFd) -> Result<Child, String> {
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("platform")
        .arg(ARG)
        .arg(step_dir_id(l.step_dir))
        .env_clear()
        .envs(l.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&l.spec.cwd)
        .stdin(Stdio::from(channel))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Held across the spawn: a sweep never mistakes a supervisor being born for a stray.
    let mut live = supervisors();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the step's supervisor: {e}"))?;
    live.insert(child.id());
    Ok(child)
}

/// Write the supervisor's pid and start time into the step dir (renamed into place).
fn record(step_dir: &Path, pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    let Some(start_time) = procs::start_time(pid) else {
        return;
    };
    if let Ok(body) = serde_json::to_vec(&Recorded { pid, start_time }) {
        let _ = crate::atomic::write_atomic(&step_dir.join(SUPERVISOR_FILE), &body, false);
    }
}

fn send_spec(channel: &UnixStream, spec: &Spec) {
    // A supervisor that died at once shows up as a closed channel in the pump.
    if let Ok(body) = serde_json::to_vec(spec) {
        let mut w = channel;
        let _ = w.write_all(&body);
    }
    let _ = channel.shutdown(std::net::Shutdown::Write);
}

/// What the pump saw.
struct Pumped {
    report: Vec<u8>,
    status: Option<ExitStatus>,
    killed: bool,
}

/// Stream both pipes into the logs and read the report, until the supervisor has gone and
/// the pipes are closed (or, if something still holds them, [`PIPE_GRACE`] after).
fn pump(
    child: &mut Child,
    channel: &UnixStream,
    sinks: &mut [LogSink; 2],
    timeout: Duration,
) -> Pumped {
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        return Pumped {
            report: Vec::new(),
            status: child.wait().ok(),
            killed: false,
        };
    };
    let fds = [out.as_raw_fd(), err.as_raw_fd(), channel.as_raw_fd()];
    let mut chan = channel;
    let readers: [&mut dyn Read; 3] = [&mut out, &mut err, &mut chan];
    let mut open = [true; 3];
    let mut p = Pumped {
        report: Vec::new(),
        status: None,
        killed: false,
    };
    let backstop = Instant::now() + timeout + BACKSTOP_GRACE;
    let mut give_up: Option<Instant> = None;
    let mut buf = vec![0u8; 64 << 10];
    while open.iter().any(|o| *o) {
        let now = Instant::now();
        if open[2] && now >= backstop && !p.killed {
            let _ = child.kill();
            p.killed = true;
        }
        if give_up.is_some_and(|t| now >= t) {
            break;
        }
        let until = give_up.unwrap_or(backstop);
        for i in poll_readable(&fds, &open, until.saturating_duration_since(now)) {
            let n = match readers[i].read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            match (i, n) {
                (_, 0) => open[i] = false,
                (0 | 1, n) => sinks[i].feed(&buf[..n]),
                (_, n) => {
                    let room = REPORT_CAP.saturating_sub(p.report.len());
                    p.report.extend_from_slice(&buf[..n.min(room)]);
                }
            }
            if i == 2 && !open[2] {
                supervisor_gone(child, &mut p);
                give_up = Some(Instant::now() + PIPE_GRACE);
            }
        }
    }
    p
}

/// The supervisor closed the channel, which it does by exiting: reap it, and if it left no
/// report, end what it left behind (its module tree has reparented here).
fn supervisor_gone(child: &mut Child, p: &mut Pumped) {
    p.status = child.wait().ok();
    supervisors().remove(&child.id());
    if serde_json::from_slice::<Report>(&p.report).is_err() {
        sweep_strays();
    }
}

/// Indices (into `fds`) that are readable or closed, waiting at most `wait` (capped at 1 s,
/// so the caller's deadlines are checked).
#[allow(unsafe_code)]
fn poll_readable(fds: &[i32; 3], open: &[bool; 3], wait: Duration) -> Vec<usize> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .zip(open)
        .map(|(fd, o)| libc::pollfd {
            fd: if *o { *fd } else { -1 },
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = i32::try_from(wait.min(Duration::from_secs(1)).as_millis()).unwrap_or(1000);
    // SAFETY: `pfds` is a valid array of pollfd for the length passed.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if n <= 0 {
        return Vec::new();
    }
    pfds.iter()
        .enumerate()
        .filter(|(_, p)| p.fd >= 0 && p.revents != 0)
        .map(|(i, _)| i)
        .collect()
}

fn judge(p: &Pumped) -> Ending {
    if let Ok(r) = serde_json::from_slice::<Report>(&p.report) {
        return Ending::Reported(r);
    }
    let why = if p.killed {
        "the step's supervisor did not end the step within its timeout and was killed".to_string()
    } else {
        match p.status {
            Some(s) => format!("the step's supervisor ended without a report ({s})"),
            None => "the step's supervisor ended without a report".to_string(),
        }
    };
    Ending::Lost {
        timed_out: p.killed,
        why,
    }
}

/// SIGKILL and reap every child of this process that is not a live supervisor: the module
/// tree of a supervisor that died without ending it, reparented here. Repeats while killing
/// one makes its own children reparent here.
fn sweep_strays() {
    let live = supervisors();
    let me = std::process::id() as i32;
    for _ in 0..1000 {
        let strays: Vec<i32> = procs::children(me)
            .into_iter()
            .filter(|p| u32::try_from(*p).is_ok_and(|p| !live.contains(&p)))
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
pub fn end_earlier_attempt(step_dir: &Path) -> Result<(), String> {
    let path = step_dir.join(SUPERVISOR_FILE);
    let Some(rec) = read_record(&path) else {
        return Ok(());
    };
    if !is_supervisor_of(rec.pid, rec.start_time, step_dir) {
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

/// Whether `pid` (started at `start`) is a supervisor of this very step dir: the record is
/// in a folder a module can write, so it must never make the platform signal anything else.
fn is_supervisor_of(pid: i32, start: u64, step_dir: &Path) -> bool {
    if pid <= 1 || !procs::is_running(pid, start) {
        return false;
    }
    let id = step_dir_id(step_dir);
    let argv = procs::cmdline(pid);
    argv.get(1).is_some_and(|a| a == ARG.as_bytes())
        && argv
            .get(2)
            .is_some_and(|a| a.as_slice() == id.as_os_str().as_encoded_bytes())
}
