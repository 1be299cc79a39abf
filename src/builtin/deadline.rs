//! A built-in step's overall deadline: its module's `timeout_seconds` from the start of its run (SPEC §2), for the built-ins that wait on a server.
use super::receipt::StepFailure;
use crate::contract::Failure;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// When a built-in must have finished. A server's per-operation timeouts (lettre's socket
/// timeout, octocrab's read timeout) do not bound a step: a server that sends one byte a
/// second, or reads a message that slowly, makes progress on every operation.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    seconds: u64,
}

impl Deadline {
    /// `seconds` from now.
    pub fn after(seconds: u64) -> Self {
        let now = Instant::now();
        let at = now
            .checked_add(Duration::from_secs(seconds))
            .unwrap_or(now + Duration::from_secs(86_400));
        Deadline { at, seconds }
    }

    pub fn at(&self) -> Instant {
        self.at
    }

    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// The step's failure once the deadline has passed while `what` was under way.
    pub fn exceeded(&self, what: &str) -> StepFailure {
        StepFailure::new(
            Failure::Timeout,
            format!(
                "{what} did not finish within the step's timeout_seconds = {} (its module's module.yml, default 600); raise it there if the server is merely slow",
                self.seconds
            ),
        )
    }

    /// `work` on a thread of its own, waited for until the deadline. When the deadline passes
    /// first the step fails `timeout` and the thread is left running: nothing can interrupt a
    /// blocking socket call from outside, and the thread ends with the process at the end of
    /// the pass. What it was doing may still complete meanwhile (docs/delivery.md,
    /// "At-least-once").
    pub fn wait_for<T: Send + 'static>(
        &self,
        what: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, StepFailure> {
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("builtin-deadline".into())
            .spawn(move || {
                // The receiver is gone when the deadline passed: nobody is waiting any more.
                let _ = tx.send(work());
            })
            .map_err(|e| {
                StepFailure::delivery_failed(format!("{what}: cannot start a thread: {e}"))
            })?;
        let left = self.at.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(done) => Ok(done),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let mut late = self.exceeded(what);
                late.message.push_str(
                    "; it was given up, not interrupted, and may still complete before the pass ends (docs/delivery.md, \"At-least-once\")",
                );
                Err(late)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(StepFailure::delivery_failed(
                format!("{what}: its thread ended without an answer"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_that_ends_in_time_gives_its_answer_and_late_work_fails_timeout() {
        let d = Deadline::after(5);
        assert_eq!(d.wait_for("quick", || 7).ok(), Some(7));
        let d = Deadline::after(0);
        let late = d.wait_for("slow", || std::thread::sleep(Duration::from_secs(30)));
        let f = late.err().map(|f| (f.reason_slug, f.message));
        assert!(
            matches!(&f, Some((Failure::Timeout, m)) if m.contains("timeout_seconds = 0")),
            "{f:?}"
        );
        assert!(d.passed());
    }
}
