//! A thread of its own for the group commit: it takes the writer for every group while workers only queue and wait, and lets a group grow while enough workers still run to keep the CPUs busy.
use super::shared::{Serving, SharedLedger};
use std::sync::PoisonError;
use std::time::{Duration, Instant};

/// The longest a group waits for more batches to join it. Each group costs a write and a
/// flush per file (~80 µs of CPU each on the benchmark machine, docs/performance.md);
/// waiting costs nothing while the CPUs have other work.
const GATHER: Duration = Duration::from_millis(1);

impl SharedLedger {
    /// `workers` threads will post (each says [`SharedLedger::worker_done`] when it ends).
    pub fn expect_workers(&self, workers: usize) {
        self.queue().serving.workers = workers;
    }

    /// Commit every group from this thread until [`SharedLedger::stop_serving`]. A pass
    /// serves from a thread that runs ahead of its workers and their modules
    /// (`orchestrator::workers`): a group led by a worker waited for a CPU at every wake-up
    /// of its flushes, with every other worker waiting behind it.
    pub fn serve(&self) {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut q = self.queue();
        q.serving.active = true;
        q.serving.cpus = cpus;
        loop {
            if q.waiting.is_empty() {
                if q.serving.stop {
                    break;
                }
                q = self.work.wait(q).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let until = Instant::now() + GATHER;
            q.serving.gathering = true;
            while !q.serving.stop && !q.serving.enough(q.waiters) {
                let Some(left) = until.checked_duration_since(Instant::now()) else {
                    break;
                };
                q = self
                    .work
                    .wait_timeout(q, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            q.serving.gathering = false;
            let Some(ledger) = q.ledger.take() else {
                // Someone uses the writer alone (`with`): it is put back with a signal.
                q = self.turn.wait(q).unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let group = std::mem::take(&mut q.waiting);
            drop(q);
            self.lead(ledger, group);
            q = self.queue();
        }
        q.serving = Serving {
            workers: q.serving.workers,
            ..Serving::default()
        };
        let wake = q.to_wake(true);
        drop(q);
        // Anyone still waiting leads its own group again.
        self.turn.notify_all();
        for thread in wake {
            thread.unpark();
        }
    }

    /// A worker thread that posts nothing more.
    pub fn worker_done(&self) {
        let mut q = self.queue();
        q.serving.workers = q.serving.workers.saturating_sub(1);
        let wake = q.serving.gathering && q.serving.enough(q.waiters);
        drop(q);
        if wake {
            self.work.notify_one();
        }
    }

    /// End [`SharedLedger::serve`] once the batches queued so far are committed (also when
    /// it has not started yet).
    pub fn stop_serving(&self) {
        self.queue().serving.stop = true;
        self.work.notify_all();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::ledger::{Ledger, Stream};
    use crate::records::{Payload, Topup};

    fn topup(n: usize) -> Payload {
        Payload::new(Topup::new(
            "a",
            5,
            "manual",
            &format!("r{n}"),
            None,
            "tester",
        ))
    }

    #[test]
    fn a_serving_thread_commits_every_worker_batch_in_shared_groups_then_hands_leading_back() {
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let (ledger, _) = Ledger::open(dir.path()).unwrap();
        let shared = SharedLedger::new(ledger);
        let workers = 6;
        shared.expect_workers(workers);
        std::thread::scope(|s| {
            let server = s.spawn(|| shared.serve());
            let posts: Vec<_> = (0..workers)
                .map(|w| {
                    let shared = &shared;
                    s.spawn(move || {
                        for i in 0..5 {
                            let answer =
                                shared.append(Stream::Billing, None, vec![topup(w * 10 + i)]);
                            assert!(answer.unwrap().appended());
                        }
                        shared.worker_done();
                    })
                })
                .collect();
            for p in posts {
                p.join().unwrap();
            }
            // Every worker done: the serving thread leaves once the queue is empty.
            shared.stop_serving();
            server.join().unwrap();
        });
        let (groups, batches) = shared.groups();
        assert_eq!(batches, 30);
        // Six workers post at once and a group waits while enough of them still run.
        assert!(groups < batches, "{groups} groups");
        let q = shared.queue();
        assert!(!q.serving.active && q.serving.workers == 0 && q.waiters == 0);
        // Every waiter parked while it served was woken by its answer and left.
        assert!(q.parked.is_empty() && q.answers.is_empty());
        drop(q);
        // Nobody serves now: a caller leads its own group again, and the balance adds up.
        shared
            .append(Stream::Billing, None, vec![topup(99)])
            .unwrap();
        assert_eq!(shared.with(|l| l.balance("a")).unwrap(), 31 * 5);
    }

    #[test]
    fn stopping_before_the_thread_serves_ends_it_at_once() {
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let (ledger, _) = Ledger::open(dir.path()).unwrap();
        let shared = SharedLedger::new(ledger);
        shared.expect_workers(0);
        shared.stop_serving();
        shared.serve();
        assert!(!shared.queue().serving.stop, "reset for the next pass");
    }

    #[test]
    fn a_group_grows_only_while_enough_workers_run() {
        let s = Serving {
            workers: 6,
            cpus: 2,
            ..Serving::default()
        };
        assert!(!s.enough(4), "two still run: as many as CPUs");
        assert!(s.enough(5), "one runs: a CPU would idle");
        assert!(Serving {
            workers: 1,
            cpus: 2,
            ..Serving::default()
        }
        .enough(0));
    }
}
