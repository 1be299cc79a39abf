//! Supervisors kept between steps: a step goes to an idle supervisor when there is one, so a
//! worker pays for the zygote's fork and a supervisor's start and exit once per pass instead
//! of once per step. A step with secrets is never handed to a kept supervisor's successor:
//! the launcher ends its supervisor after it (runner/launch.rs).
use super::fdpass;
use super::procs;
use super::zygote;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A supervisor and the orchestrator's end of its session socket. Dropping it closes the
/// socket: an idle supervisor then exits (the zygote reaps it).
pub struct Session {
    pub pid: i32,
    /// Its start time (0 when unknown), naming it for good.
    pub start_time: u64,
    sock: OwnedFd,
}

/// Supervisors waiting for a step; at most one per worker.
static IDLE: Mutex<Vec<Session>> = Mutex::new(Vec::new());

fn idle() -> MutexGuard<'static, Vec<Session>> {
    IDLE.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Session {
    /// An idle supervisor (`fresh`: false), or a new one.
    pub fn take(fresh: bool) -> Result<Session, String> {
        if !fresh {
            if let Some(s) = idle().pop() {
                return Ok(s);
            }
        }
        let (ours, theirs) = fdpass::seqpacket_pair()
            .map_err(|e| format!("cannot create the supervisor's socket: {e}"))?;
        let pid = zygote::fork_supervisor(theirs.as_fd())
            .map_err(|e| format!("cannot start the step's supervisor: {e}"))?;
        Ok(Session {
            pid,
            start_time: procs::start_time(pid).unwrap_or(0),
            sock: ours,
        })
    }

    /// Hand a step to the supervisor: its spec and the write ends of its two log pipes.
    /// Fails when the supervisor has gone (an idle one ends on a stop signal).
    pub fn send(&self, spec: &[u8], logs: [BorrowedFd; 2]) -> std::io::Result<()> {
        fdpass::send(self.sock.as_fd(), spec, &logs)
    }

    /// The socket the supervisor's report comes on (one message per step; the end of the
    /// stream when it has exited).
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Keep the supervisor for a later step.
    pub fn keep(self) {
        idle().push(self);
    }
}

/// End every idle supervisor (their sockets close, and they exit): before the zygote is told
/// to stop, since it waits for its supervisors.
pub fn end_idle() {
    idle().clear();
}
