//! The per-step supervisor (forked by the zygote, shown as `platform __supervise <step dir>`):
//! a child subreaper that runs one module and, when the module exits, times out or the
//! orchestrator dies, ends every process the module started (setsid and double-fork orphans
//! reparent to it) before it reports, over the socket that is its stdin, how the module ended.
//!
//! Its own environment is empty (the zygote's); the module's (PATH, PLATFORM_*, declared
//! secrets) comes over the socket in the [`Spec`], so no undeclared secret is ever in a
//! process a module can inspect. It writes nothing to stdout or stderr: those are the
//! module's log pipes, which the module inherits.
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// argv[1] of a supervisor's command line: with the step dir after it, how a later run
/// recognises the supervisor of a step (launch.rs).
pub const ARG: &str = "__supervise";

/// What to run, sent by the orchestrator once, then its side of the socket is shut.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// The module's whole environment.
    pub env: Vec<(String, String)>,
    pub timeout_ms: u64,
}

/// How the module ended, as the supervisor reports it (one JSON document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Report {
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    TimedOut,
    /// The supervisor was told to stop (its death signal, or a resumed step's launcher).
    Terminated,
    SpawnFailed {
        error: String,
    },
}

#[cfg(target_os = "linux")]
pub use linux::serve;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod linux {
    use super::{Report, Spec};
    use crate::runner::procs::{self, Reaped};
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    use std::os::unix::net::UnixStream;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// Exit codes of a supervisor that reported nothing.
    const EXIT_NO_SPEC: i32 = 2;
    const EXIT_ORPHANED: i32 = 3;

    /// Signals the supervisor takes synchronously (blocked, then waited for).
    const WATCHED: [i32; 4] = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

    /// Supervise the step whose [`Spec`] arrives on fd 0, in a process just forked by the
    /// zygote `parent` (fds 1 and 2 are the log pipes); the exit code.
    pub fn serve(parent: i32) -> i32 {
        let set = watched_set();
        // SAFETY: prctl and sigprocmask change flags of this process; `set` outlives the call.
        unsafe {
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0);
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
            libc::prctl(libc::PR_SET_NAME, c"supervise".as_ptr(), 0, 0, 0);
        }
        // The death signal is armed: if the parent is not the zygote any more, it died
        // before that, and nothing would end this step.
        // SAFETY: getppid has no arguments.
        if unsafe { libc::getppid() } != parent {
            return EXIT_ORPHANED;
        }
        // SAFETY: fd 0 is the socket the orchestrator passed; nothing else owns it.
        let mut channel = unsafe { UnixStream::from_raw_fd(0) };
        let Some(spec) = read_spec(&mut channel) else {
            return EXIT_NO_SPEC;
        };
        let report = supervise(&spec, parent, &set);
        if let Ok(mut body) = serde_json::to_vec(&report) {
            body.push(b'\n');
            let _ = channel.write_all(&body);
        }
        0
    }

    fn watched_set() -> libc::sigset_t {
        // SAFETY: sigemptyset/sigaddset initialise and fill the set we own.
        unsafe {
            let mut set = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut set);
            for s in WATCHED {
                libc::sigaddset(&mut set, s);
            }
            set
        }
    }

    fn read_spec(channel: &mut UnixStream) -> Option<Spec> {
        let mut body = Vec::new();
        channel.take(1 << 20).read_to_end(&mut body).ok()?;
        serde_json::from_slice(&body).ok()
    }

    /// Run the module, wait for its end (or the deadline, or a stop signal), then end every
    /// descendant.
    fn supervise(spec: &Spec, parent: i32, set: &libc::sigset_t) -> Report {
        let module = match spawn_module(spec) {
            Ok(pid) => pid,
            Err(e) => {
                return Report::SpawnFailed {
                    error: format!("cannot start {}: {e}", spec.program.display()),
                }
            }
        };
        let deadline = Instant::now() + Duration::from_millis(spec.timeout_ms);
        let report = wait_module(module, deadline, parent, set);
        // Its process group first (one call for the usual tree), then whatever left it.
        procs::kill(-module, libc::SIGKILL);
        end_descendants(set);
        report
    }

    fn spawn_module(spec: &Spec) -> std::io::Result<i32> {
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&spec.cwd)
            .stdin(Stdio::null())
            .process_group(0);
        // SAFETY: getpid has no arguments.
        let me = unsafe { libc::getpid() };
        // SAFETY: only async-signal-safe calls (prctl, getppid, sigprocmask) run between fork
        // and exec; the supervisor is small and single-threaded, so this fork is cheap.
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                if libc::getppid() != me {
                    return Err(std::io::Error::other("the supervisor ended"));
                }
                let mut empty = std::mem::zeroed::<libc::sigset_t>();
                libc::sigemptyset(&mut empty);
                libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        i32::try_from(child.id()).map_err(std::io::Error::other)
    }

    /// Reap as children end (orphans reparent here) until the module itself has ended.
    fn wait_module(module: i32, deadline: Instant, parent: i32, set: &libc::sigset_t) -> Report {
        loop {
            while let Reaped::Child(pid, status) = procs::wait_child(-1, true) {
                if pid == module {
                    return ended(status);
                }
            }
            // SAFETY: getppid has no arguments.
            if unsafe { libc::getppid() } != parent {
                return Report::Terminated;
            }
            let now = Instant::now();
            if now >= deadline {
                return Report::TimedOut;
            }
            if let Some(sig) = wait_signal(set, deadline - now) {
                if sig != libc::SIGCHLD {
                    return Report::Terminated;
                }
            }
        }
    }

    fn ended(status: i32) -> Report {
        if libc::WIFSIGNALED(status) {
            Report::Signaled {
                signal: libc::WTERMSIG(status),
            }
        } else {
            Report::Exited {
                code: libc::WEXITSTATUS(status),
            }
        }
    }

    /// One of the watched signals, or None when `wait` passed first.
    fn wait_signal(set: &libc::sigset_t, wait: Duration) -> Option<i32> {
        let ts = libc::timespec {
            tv_sec: libc::time_t::try_from(wait.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(wait.subsec_nanos().min(999_999_999) as i32),
        };
        // SAFETY: `set` and `ts` are valid for the call; no siginfo is requested.
        let r = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
        (r > 0).then_some(r)
    }

    /// SIGKILL every child, reap, repeat until there is no child at all: each round, the
    /// children of the killed ones have reparented here (this process is their subreaper).
    fn end_descendants(set: &libc::sigset_t) {
        // SAFETY: getpid has no arguments.
        let me = unsafe { libc::getpid() };
        loop {
            // The usual end: the module left no process behind, and /proc need not be read.
            if let Reaped::NoChildren = procs::wait_child(-1, true) {
                return;
            }
            for child in procs::children(me) {
                procs::kill(child, libc::SIGKILL);
            }
            let mut reaped = false;
            loop {
                match procs::wait_child(-1, true) {
                    Reaped::Child(..) => reaped = true,
                    Reaped::None => break,
                    Reaped::NoChildren => return,
                }
            }
            if !reaped {
                // A killed child takes a moment to become reapable; SIGCHLD says when.
                wait_signal(set, Duration::from_millis(10));
            }
        }
    }
}
