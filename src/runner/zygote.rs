//! The zygote (`platform __zygote`, hidden): one small process a run starts once, which
//! forks step supervisors on request (one per worker, and one per step with secrets:
//! runner/session.rs). A supervisor then costs the fork of a small single-threaded process
//! instead of an exec of this large binary (docs/performance.md, "The per-step supervisor").
//!
//! It is started with an empty environment and holds no secret; it is non-dumpable, as the
//! supervisors it forks are. At the end of a run it is told to stop: it reaps its last
//! supervisors and exits, and is reaped (so `time` counts its CPU). If the process that
//! started it ends first, however it ends, the control socket closes: the zygote exits at
//! once, and the death signal of every supervisor it forked tells them to end their trees.
#![allow(unsafe_code)]
use super::fdpass;
use super::procs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Mutex, MutexGuard};

/// argv[1] that makes the binary a zygote (intercepted in main.rs before the CLI).
pub const ARG: &str = "__zygote";
/// The longest step dir a supervisor's command line can name.
pub const STEP_DIR_MAX: usize = 4096;
/// Bytes of argv the zygote starts with: each supervisor it forks rewrites that area into
/// its own command line, `platform __supervise <step dir>`, so it must hold any path.
const TITLE_ROOM: usize = STEP_DIR_MAX + 64;
/// The request that forks a supervisor (it comes with the session socket).
const SUPERVISE: &[u8] = b"supervise";

/// The running zygote of this process, started at the first command step.
struct Conn {
    sock: Option<OwnedFd>,
    child: Child,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // A zygote that stopped answering, or did not end when told: make sure it is gone,
        // then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The request that ends a zygote (any message without descriptors does).
const STOP: &[u8] = b"stop";

/// How long a zygote told to end may take (it reaps the supervisors of the last steps,
/// which are exiting).
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Tell the zygote to end once the run's steps are over, without waiting for it: its
/// control socket closed, it reaps what it forked and exits while the caller goes on (the
/// orchestrator writes its caches and prints its summary meanwhile); [`stop`] reaps it. A
/// zygote needed after this is a new one. A no-op when none was started.
pub fn begin_stop() {
    let Some(mut conn) = zygote().take() else {
        return;
    };
    if let Some(sock) = conn.sock.take() {
        // A message without descriptors: reap, then exit (a bare close means the
        // orchestrator died, and the zygote leaves at once).
        let _ = fdpass::send(sock.as_fd(), STOP, &[]);
    }
    stopping().push(conn);
}

/// End the zygote and reap it (and any told to end before), so its CPU time and its
/// supervisors' count as this process's children's (what `time` reports). One that has not
/// ended within [`STOP_GRACE`] is killed. A no-op when none was started.
pub fn stop() {
    begin_stop();
    let ending = std::mem::take(&mut *stopping());
    let until = std::time::Instant::now() + STOP_GRACE;
    for mut conn in ending {
        while std::time::Instant::now() < until {
            if !matches!(conn.child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Dropped: killed if it still runs, and reaped.
    }
}

/// Zygotes told to end and not reaped yet, oldest first.
static STOPPING: Mutex<Vec<Conn>> = Mutex::new(Vec::new());

fn stopping() -> MutexGuard<'static, Vec<Conn>> {
    STOPPING.lock().unwrap_or_else(|e| e.into_inner())
}

static ZYGOTE: Mutex<Option<Conn>> = Mutex::new(None);

fn zygote() -> MutexGuard<'static, Option<Conn>> {
    ZYGOTE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run `f` while no zygote can be started or replaced (a sweep of strays must not mistake a
/// zygote being born for one).
pub fn with_pid<T>(f: impl FnOnce(Option<u32>) -> T) -> T {
    let z = zygote();
    f(z.as_ref().map(|c| c.child.id()))
}

/// Start the zygote now, from the calling thread, unless one runs: what it forks —
/// supervisors, and the modules they start — inherits that thread's priority. The
/// orchestrator calls it before its workers lower theirs, so modules keep the pass's
/// priority (docs/performance.md). Best effort: a zygote that cannot start here is started,
/// or its failure reported, at the first step.
pub fn start_now() {
    let mut z = zygote();
    if z.is_none() {
        *z = start().ok();
    }
}

/// Fork a supervisor whose fd 0 is `session` (its stdout and stderr are /dev/null); its
/// pid. Starts the zygote first if none runs, and starts it again once if it stopped
/// answering.
pub fn fork_supervisor(session: BorrowedFd) -> Result<i32, String> {
    let mut z = zygote();
    let mut last = String::new();
    for _ in 0..2 {
        if z.is_none() {
            *z = Some(start().map_err(|e| format!("cannot start the zygote: {e}"))?);
        }
        let Some(sock) = z.as_ref().and_then(|c| c.sock.as_ref()) else {
            continue;
        };
        match ask(sock.as_fd(), session) {
            Ok(pid) if pid > 0 => return Ok(pid),
            Ok(errno) => {
                return Err(format!(
                    "cannot fork the step's supervisor: {}",
                    std::io::Error::from_raw_os_error(-errno)
                ))
            }
            Err(e) => {
                last = e.to_string();
                *z = None;
            }
        }
    }
    Err(format!("the zygote stopped answering: {last}"))
}

fn start() -> std::io::Result<Conn> {
    let (ours, theirs) = fdpass::seqpacket_pair()?;
    let child = Command::new("/proc/self/exe")
        .arg0("platform")
        .arg(ARG)
        .arg(" ".repeat(TITLE_ROOM))
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Conn {
        sock: Some(ours),
        child,
    })
}

fn ask(sock: BorrowedFd, session: BorrowedFd) -> std::io::Result<i32> {
    fdpass::send(sock, SUPERVISE, &[session])?;
    let mut reply = [0u8; 4];
    match fdpass::recv(sock, &mut reply)? {
        Some((4, _)) => Ok(i32::from_le_bytes(reply)),
        _ => Err(std::io::Error::other("no answer from the zygote")),
    }
}

/// Entry point of `platform __zygote`: fd 0 is the control socket.
pub fn main() -> ExitCode {
    // SAFETY: prctl changes flags of this process; getpid has no arguments.
    let me = unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        libc::prctl(libc::PR_SET_NAME, c"zygote".as_ptr(), 0, 0, 0);
        libc::getpid()
    };
    let Some(title) = Title::of_self() else {
        return ExitCode::from(2);
    };
    // SAFETY: fd 0 is the control socket the starting process passed; nothing else owns it.
    let control = unsafe { OwnedFd::from_raw_fd(0) };
    let mut buf = [0u8; 64];
    loop {
        reap();
        // At most a second between reaps of the supervisors that ended meanwhile.
        let wait = std::time::Duration::from_secs(1);
        if procs::poll_readable(&[control.as_raw_fd()], &[true], wait).is_empty() {
            continue;
        }
        let (n, fds) = match fdpass::recv(control.as_fd(), &mut buf) {
            Ok(Some((_, fds))) if fds.is_empty() => {
                // The run is over: its last supervisors have reported and are exiting.
                while let procs::Reaped::Child(..) = procs::wait_child(-1, false) {}
                return ExitCode::SUCCESS;
            }
            Ok(Some(got)) => got,
            // The process that started it ended: the supervisors' death signal ends them.
            Ok(None) => return ExitCode::SUCCESS,
            Err(_) => return ExitCode::from(2),
        };
        let pid = if &buf[..n] == SUPERVISE {
            fork(fds, &title, me)
        } else {
            -libc::EINVAL
        };
        if fdpass::send(control.as_fd(), &pid.to_le_bytes(), &[]).is_err() {
            return ExitCode::from(2);
        }
    }
}

/// Reap the supervisors that have ended (they are this process's only children).
fn reap() {
    while let procs::Reaped::Child(..) = procs::wait_child(-1, true) {}
}

/// Fork a supervisor of the session socket in `fds`; its pid, or minus the errno.
fn fork(fds: Vec<OwnedFd>, title: &Title, me: i32) -> i32 {
    let Ok([session]) = <[OwnedFd; 1]>::try_from(fds) else {
        return -libc::EINVAL;
    };
    // SAFETY: this process is single-threaded, so the child may run any code after fork.
    match unsafe { libc::fork() } {
        -1 => -std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EAGAIN),
        0 => {
            let code = become_supervisor(session, title, me);
            // SAFETY: _exit ends the child without running the zygote's exit handlers.
            unsafe { libc::_exit(code) }
        }
        pid => pid,
    }
}

/// In the forked child: the session socket becomes fd 0 (the control socket is gone with
/// it), then it supervises, naming each step's dir in its command line.
fn become_supervisor(session: OwnedFd, title: &Title, zygote: i32) -> i32 {
    // SAFETY: dup2 onto 0 replaces the control socket; the copy is not close-on-exec, and
    // the supervisor gives each module /dev/null as its stdin instead.
    if unsafe { libc::dup2(session.as_raw_fd(), 0) } < 0 {
        return 2;
    }
    drop(session);
    let retitle = |step_dir: &[u8]| {
        let mut args = vec![b"platform".as_slice(), super::supervisor::ARG.as_bytes()];
        if !step_dir.is_empty() {
            args.push(step_dir);
        }
        title.set(&args)
    };
    if !retitle(b"") {
        return 2;
    }
    super::supervisor::serve(zygote, &retitle)
}

/// The memory that holds this process's argv, which /proc/PID/cmdline shows.
struct Title {
    start: usize,
    len: usize,
}

impl Title {
    fn of_self() -> Option<Title> {
        let (start, end) = procs::arg_area(std::process::id() as i32)?;
        let len = usize::try_from(end.checked_sub(start)?).ok()?;
        let start = usize::try_from(start).ok()?;
        (start != 0 && len >= TITLE_ROOM).then_some(Title { start, len })
    }

    /// Rewrite the command line in place (as setproctitle does): the args, NUL-terminated,
    /// the rest of the area zeroed. False when they do not fit.
    fn set(&self, args: &[&[u8]]) -> bool {
        let mut bytes = Vec::with_capacity(self.len);
        for a in args {
            bytes.extend_from_slice(a);
            bytes.push(0);
        }
        if bytes.len() > self.len {
            return false;
        }
        bytes.resize(self.len, 0);
        // SAFETY: [start, start + len) is this process's argv area as the kernel reports it:
        // mapped, writable, and read by nothing in this process after start-up.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.start as *mut u8, self.len);
        }
        true
    }
}
