//! The step supervisor (forked by the zygote; `platform __supervise <step dir>` while it
//! runs a step, `platform __supervise` between steps): a child subreaper that runs one
//! module at a time and, when the module exits, times out or the orchestrator dies, ends
//! every process the module started (setsid and double-fork orphans reparent to it) before
//! it reports how the module ended. Steps come one message each over the session socket
//! that is its stdin, with the step's two log pipes; it serves steps until the socket
//! closes, so a worker pays for a supervisor once, not once per step (runner/session.rs).
//!
//! Its own environment is empty (the zygote's); the module's (PATH, PLATFORM_*, declared
//! secrets) comes in the [`Spec`], so no undeclared secret is ever in a process a module can
//! inspect; a supervisor that ran a step with secrets serves no other step. Its stdout and
//! stderr are /dev/null; the module's are the step's log pipes.
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// argv[1] of a supervisor's command line: with the step dir after it, how a later run
/// recognises the supervisor of a step (launch.rs).
pub const ARG: &str = "__supervise";

/// What to run: one session message, with the step's stdout and stderr pipes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// The step dir, as the supervisor's command line names it while the step runs.
    pub step_dir: PathBuf,
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

/// The largest [`Spec`] a session message carries (a unix datagram must fit the socket's
/// default send buffer, 208 KiB): the module's arguments and environment, secrets included.
pub const SPEC_CAP: usize = 160 << 10;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod linux {
    use super::SPEC_CAP;
    use super::{Report, Spec};
    use crate::runner::fdpass;
    use crate::runner::procs::{self, Reaped};
    use crate::runner::spawn::{self, Module};
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    /// Exit codes of a supervisor that reported nothing.
    const EXIT_NO_SPEC: i32 = 2;
    const EXIT_ORPHANED: i32 = 3;

    /// Signals the supervisor takes synchronously (blocked, then waited for).
    const WATCHED: [i32; 4] = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

    /// Serve the steps that arrive on fd 0, the session socket, in a process just forked by
    /// the zygote `parent`, until the socket closes or a stop signal comes; the exit code.
    /// `retitle` sets the command line's step dir (empty: none).
    pub fn serve(parent: i32, retitle: &dyn Fn(&[u8]) -> bool) -> i32 {
        let set = procs::signal_set(&WATCHED);
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
        // SAFETY: fd 0 is the session socket the zygote set there; nothing else owns it.
        let session = unsafe { OwnedFd::from_raw_fd(0) };
        let mut buf = vec![0u8; SPEC_CAP];
        // Made in this process (its pid, after the zygote's fork), kept for every step.
        let mut spawner = spawn::Spawner::new();
        loop {
            idle(session.as_fd());
            let (spec, logs) = match fdpass::recv(session.as_fd(), &mut buf) {
                // The orchestrator is done with this supervisor.
                Ok(None) => return 0,
                Ok(Some((n, fds))) => match (
                    serde_json::from_slice::<Spec>(&buf[..n]),
                    <[OwnedFd; 2]>::try_from(fds),
                ) {
                    (Ok(spec), Ok(logs)) => (spec, logs),
                    _ => return EXIT_NO_SPEC,
                },
                Err(_) => return EXIT_NO_SPEC,
            };
            if !retitle(spec.step_dir.as_os_str().as_encoded_bytes()) {
                return EXIT_NO_SPEC;
            }
            let report = match spawner.as_mut() {
                Ok(spawner) => supervise(spawner, &spec, logs, parent, &set),
                Err(e) => Report::SpawnFailed {
                    error: format!("cannot open /dev/null for the module's stdin: {e}"),
                },
            };
            // Between steps the command line names none, so a later run never takes this
            // process for the supervisor of a step it finished.
            retitle(b"");
            let Ok(body) = serde_json::to_vec(&report) else {
                return EXIT_NO_SPEC;
            };
            if fdpass::send(session.as_fd(), &body, &[]).is_err() || report == Report::Terminated {
                return 0;
            }
        }
    }

    /// Wait for the next step with the watched signals unblocked: a stop signal (the
    /// zygote's death, a later run's SIGTERM) ends this process by its default action here,
    /// with no module to end; SIGCHLD's default is to be ignored.
    fn idle(session: BorrowedFd) {
        let mut pfd = libc::pollfd {
            fd: session.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let none = procs::signal_set(&[]);
        // SAFETY: ppoll reads `pfd` and the set for the call's duration.
        unsafe {
            while libc::ppoll(&mut pfd, 1, std::ptr::null(), &none) < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
            }
        }
    }

    /// Run the module with `logs` as its stdout and stderr, wait for its end (or the
    /// deadline, or a stop signal), then end every descendant. The log pipes are closed
    /// here when this returns: only the module's tree held them, and it is gone.
    fn supervise(
        spawner: &mut spawn::Spawner,
        spec: &Spec,
        logs: [OwnedFd; 2],
        parent: i32,
        set: &libc::sigset_t,
    ) -> Report {
        let [stdout, stderr] = logs;
        let started = spawner.spawn(Module {
            program: &spec.program,
            args: &spec.args,
            env: &spec.env,
            cwd: &spec.cwd,
            stdout,
            stderr,
        });
        let module = match started {
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
            // Capped at 68 years, which fits `time_t` everywhere (whose alias musl's libc
            // deprecates: the field's own type is used instead of naming it).
            tv_sec: wait
                .as_secs()
                .min(i32::MAX as u64)
                .try_into()
                .unwrap_or_default(),
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
