//! Progress of a pass with work orders running side by side: one line per finished step (each line whole, whichever worker prints it) and a status line of work orders running, done and failed.
use std::sync::{Mutex, PoisonError};

/// Where a pass's progress goes (the CLI: stderr, with a spinner on a terminal).
pub trait Sink: Sync {
    /// One finished step (or a closing, a refusal, a stop), printed whole.
    fn line(&self, line: &str);
    /// The status line, replaced each time (shown only on a terminal).
    fn status(&self, _status: &str) {}
}

impl<F: Fn(&str) + Sync> Sink for F {
    fn line(&self, line: &str) {
        self(line)
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    running: usize,
    done: usize,
    failed: usize,
}

/// The pass's progress: lines go through as they come, counts make the status line.
pub struct Board<'a> {
    sink: &'a dyn Sink,
    total: usize,
    counts: Mutex<Counts>,
}

impl<'a> Board<'a> {
    /// A board for `total` work orders to run.
    pub fn new(sink: &'a dyn Sink, total: usize) -> Board<'a> {
        Board {
            sink,
            total,
            counts: Mutex::new(Counts::default()),
        }
    }

    pub fn line(&self, line: &str) {
        self.sink.line(line);
    }

    /// A work order starts running.
    pub fn started(&self) {
        self.update(|c| c.running += 1);
    }

    /// A work order is done (`failed`: its run ended FAILED, was refused or stopped).
    pub fn finished(&self, failed: bool) {
        self.update(|c| {
            c.running = c.running.saturating_sub(1);
            c.done += 1;
            c.failed += usize::from(failed);
        });
    }

    fn update(&self, change: impl FnOnce(&mut Counts)) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut c);
        // Said under the lock, so the status line never goes back to older counts.
        self.sink.status(&format!(
            "work orders: {} running, {} done ({} failed) of {}",
            c.running, c.done, c.failed, self.total
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Seen(Mutex<Vec<String>>);
    impl Sink for Seen {
        fn line(&self, line: &str) {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line.into());
        }
        fn status(&self, status: &str) {
            self.line(status);
        }
    }

    #[test]
    fn the_status_line_counts_running_done_and_failed() {
        let seen = Seen(Mutex::new(Vec::new()));
        let board = Board::new(&seen, 3);
        board.started();
        board.started();
        board.finished(true);
        board.line("[t/w r1] s (m) COMPLETED attempt 1 0.01s");
        board.finished(false);
        let got = seen
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert_eq!(
            got,
            [
                "work orders: 1 running, 0 done (0 failed) of 3",
                "work orders: 2 running, 0 done (0 failed) of 3",
                "work orders: 1 running, 1 done (1 failed) of 3",
                "[t/w r1] s (m) COMPLETED attempt 1 0.01s",
                "work orders: 0 running, 2 done (1 failed) of 3",
            ]
        );
    }
}
