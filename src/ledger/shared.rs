//! One writer shared by threads: batches posted while another group is being written wait in a queue, and the next caller to find the writer free commits the whole queue as one group (one write and one flush per file); every caller returns only once its own batch is durable or refused.
use super::check::AppendOutcome;
use super::commit::{Committed, Pending, Refusal};
use super::prepare::prepare;
use super::writer::Ledger;
use super::Repair;
use crate::error::Error;
use crate::records::{Payload, Stream};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::Thread;

/// A batch queued and not answered yet ([`SharedLedger::enqueue`]).
#[must_use = "its answer stays queued until it is waited for"]
#[derive(Debug)]
pub struct Ticket(u64);

/// A [`Ledger`] that threads post to at the same time.
pub struct SharedLedger {
    pub(super) state: Mutex<Queue>,
    /// Signalled whenever the writer is put back: for threads that lead groups in turn
    /// and for [`SharedLedger::with`]. While a thread serves, a waiter is woken only when
    /// its own answer arrives ([`Queue::parked`]).
    pub(super) turn: Condvar,
    /// Wakes the serving thread ([`SharedLedger::serve`]): work queued, waiters, the end.
    pub(super) work: Condvar,
}

pub(super) struct Queue {
    /// The writer, when no thread is using it.
    pub(super) ledger: Option<Ledger>,
    pub(super) waiting: Vec<Queued>,
    pub(super) answers: HashMap<u64, Result<AppendOutcome, Refusal>>,
    next_ticket: u64,
    repairs: Vec<Repair>,
    /// Batches per group committed, for the pass's figures.
    groups: u64,
    batches: u64,
    /// What a serving thread ([`SharedLedger::serve`]) goes by.
    pub(super) serving: Serving,
    /// Threads waiting for an answer.
    pub(super) waiters: usize,
    /// Threads waiting for an answer while a thread serves, by ticket: unparked only when
    /// their answer is in (waking every waiter after each group woke ~15 threads a step
    /// at `--jobs 16` for one or two answers, docs/performance.md).
    pub(super) parked: Vec<(u64, Thread)>,
}

impl Queue {
    /// The parked threads whose answers are in, or all of them (`all`: serving ends and
    /// each leads its own group again).
    pub(super) fn to_wake(&self, all: bool) -> Vec<Thread> {
        self.parked
            .iter()
            .filter(|(t, _)| all || self.answers.contains_key(t))
            .map(|(_, thread)| thread.clone())
            .collect()
    }
}

/// A batch in the queue, and the batch to write in a later group if it is accepted
/// ([`SharedLedger::append_then`]).
pub(super) struct Queued {
    ticket: u64,
    pending: Pending,
    then: Option<(u64, Pending)>,
    /// A follow-up's: the batch it follows and that batch's answer, held back until this
    /// one's is in (the caller waits for both: one wake-up, not two).
    after: Option<(u64, Result<AppendOutcome, Refusal>)>,
}

/// What the serving thread goes by, kept in the queue's lock.
#[derive(Default)]
pub(super) struct Serving {
    /// A thread serves: waiters leave it the writer.
    pub active: bool,
    /// It is waiting for more batches to join the group it is about to commit.
    pub gathering: bool,
    /// Serving ends once the queue is empty.
    pub stop: bool,
    /// Worker threads that may still post.
    pub workers: usize,
    /// CPUs the workers share.
    pub cpus: usize,
}

impl Serving {
    /// With `waiters` threads waiting for answers, fewer workers than CPUs still run: a
    /// group that waited longer would leave a CPU idle.
    pub fn enough(&self, waiters: usize) -> bool {
        self.workers.saturating_sub(waiters) < self.cpus
    }
}

impl SharedLedger {
    pub fn new(ledger: Ledger) -> SharedLedger {
        SharedLedger {
            state: Mutex::new(Queue {
                ledger: Some(ledger),
                waiting: Vec::new(),
                answers: HashMap::new(),
                next_ticket: 0,
                repairs: Vec::new(),
                groups: 0,
                batches: 0,
                serving: Serving::default(),
                waiters: 0,
                parked: Vec::new(),
            }),
            turn: Condvar::new(),
            work: Condvar::new(),
        }
    }

    pub(super) fn queue(&self) -> MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Post one batch (under `batch_id` when given) and wait until it is durable or
    /// refused. Batches posted meanwhile by other threads share its write and flush.
    pub fn append(
        &self,
        stream: Stream,
        batch_id: Option<&str>,
        records: Vec<Payload>,
    ) -> Result<AppendOutcome, Refusal> {
        let ticket = self.enqueue(stream, batch_id, records)?;
        self.wait(ticket)
    }

    /// Queue one batch without waiting for it: it is written with the next group, before
    /// anything this thread posts later (groups are written one after the other, each
    /// durable before the next is written). [`SharedLedger::wait`] collects its answer.
    pub fn enqueue(
        &self,
        stream: Stream,
        batch_id: Option<&str>,
        records: Vec<Payload>,
    ) -> Result<Ticket, Refusal> {
        // Encoding and hashing happen here, in the caller's thread, outside the queue.
        let batch = prepare(stream, batch_id.map(str::to_string), &records)?;
        let (ticket, _) = self.queue_up(Pending { stream, batch }, None);
        Ok(Ticket(ticket))
    }

    /// Post `records` and, once they are durable and accepted, `then` (all of one stream):
    /// `then` is written first in the group after the one that holds `records` (SPEC §4: a
    /// step's SPEND, then its step_started, each durable before the next), and both answers
    /// come in together, so the caller waits once. `then` is never written when `records`
    /// are refused; its answer then says so. Both answers, in that order (no second one
    /// when `then` is empty).
    pub fn append_then(
        &self,
        stream: Stream,
        batch_id: Option<&str>,
        records: Vec<Payload>,
        then: Vec<Payload>,
    ) -> (
        Result<AppendOutcome, Refusal>,
        Option<Result<AppendOutcome, Refusal>>,
    ) {
        let Some(then_stream) = then.first().map(|p| p.record.stream()) else {
            return (self.append(stream, batch_id, records), None);
        };
        let prepared = prepare(stream, batch_id.map(str::to_string), &records)
            .and_then(|b| Ok((b, prepare(then_stream, None, &then)?)));
        let (batch, then_batch) = match prepared {
            Ok(both) => both,
            Err(e) => return (Err(e.clone().into()), Some(Err(e.into()))),
        };
        let then = Pending {
            stream: then_stream,
            batch: then_batch,
        };
        let (first, second) = self.queue_up(Pending { stream, batch }, Some(then));
        let answer = self.wait(Ticket(first));
        (answer, second.map(|t| self.wait(Ticket(t))))
    }

    /// Queue a batch (and its follow-up): their tickets.
    fn queue_up(&self, pending: Pending, then: Option<Pending>) -> (u64, Option<u64>) {
        let mut q = self.queue();
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        let then = then.map(|p| {
            let t = q.next_ticket;
            q.next_ticket += 1;
            (t, p)
        });
        let second = then.as_ref().map(|(t, _)| *t);
        q.waiting.push(Queued {
            ticket,
            pending,
            then,
            after: None,
        });
        // The serving thread sleeps only on an empty queue.
        let wake = q.serving.active && q.waiting.len() == 1;
        drop(q);
        if wake {
            self.work.notify_one();
        }
        (ticket, second)
    }

    /// Wait until a queued batch is durable or refused (leading groups meanwhile, unless
    /// a thread serves them).
    pub fn wait(&self, ticket: Ticket) -> Result<AppendOutcome, Refusal> {
        let mut q = self.queue();
        q.waiters += 1;
        if q.serving.gathering && q.serving.enough(q.waiters) {
            self.work.notify_one();
        }
        let answer = self.wait_queued(q, ticket.0);
        self.queue().waiters -= 1;
        answer
    }

    fn wait_queued<'a>(
        &'a self,
        mut q: MutexGuard<'a, Queue>,
        ticket: u64,
    ) -> Result<AppendOutcome, Refusal> {
        let mut parked = false;
        loop {
            if let Some(answer) = q.answers.remove(&ticket) {
                if parked {
                    q.parked.retain(|(t, _)| *t != ticket);
                }
                return answer;
            }
            if q.serving.active {
                if !parked {
                    q.parked.push((ticket, std::thread::current()));
                    parked = true;
                }
                drop(q);
                // Returns at the unpark of this ticket's answer or of serving's end, or
                // spuriously (a token left by an earlier unpark): the loop looks again.
                std::thread::park();
                q = self.queue();
                continue;
            }
            if let Some(ledger) = q.ledger.take() {
                // Let the threads that are ready to run post first: their batches join
                // this group instead of starting one of their own (a third fewer flushes
                // at --jobs 16 before passes with more workers than CPUs were served by a
                // thread of their own, `serve.rs`; docs/performance.md).
                drop(q);
                std::thread::yield_now();
                q = self.queue();
                let group = std::mem::take(&mut q.waiting);
                drop(q);
                self.lead(ledger, group);
                q = self.queue();
                continue;
            }
            q = self.turn.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Commit a group with the writer taken and put the writer and the answers back. The
    /// follow-ups of the batches it accepted go to the front of the queue, written first by
    /// the next group (what they follow is durable now) with whatever was queued meanwhile:
    /// two flushes a round (evidence, billing) where a group of follow-ups alone made three.
    pub(super) fn lead(&self, ledger: Ledger, group: Vec<Queued>) {
        let mut held = Held {
            shared: self,
            ledger: Some(ledger),
            tickets: group
                .iter()
                .flat_map(|b| {
                    let then = b.then.as_ref().map(|(t, _)| *t);
                    let after = b.after.as_ref().map(|(t, _)| *t);
                    std::iter::once(b.ticket).chain(then).chain(after)
                })
                .collect(),
        };
        let mut tickets = Vec::with_capacity(group.len());
        let mut pending = Vec::with_capacity(group.len());
        let mut rest = Vec::with_capacity(group.len());
        for b in group {
            tickets.push(b.ticket);
            pending.push(b.pending);
            rest.push((b.then, b.after));
        }
        let mut repairs = Vec::new();
        let answers = commit(&mut held, tickets, &pending, &mut repairs);
        let mut out = Vec::with_capacity(answers.len());
        let mut follow = Vec::new();
        for ((ticket, answer), (then, after)) in answers.into_iter().zip(rest) {
            out.extend(after);
            match then {
                Some((t, p)) if answer.is_ok() => follow.push(Queued {
                    ticket: t,
                    pending: p,
                    then: None,
                    after: Some((ticket, answer)),
                }),
                Some((t, _)) => {
                    out.push((ticket, answer));
                    out.push((t, Err(refused_first())));
                }
                None => out.push((ticket, answer)),
            }
        }
        let mut q = self.queue();
        q.answers.extend(out);
        q.repairs.extend(repairs);
        q.groups += 1;
        q.batches += pending.len() as u64;
        // A thread that began serving while this one led (the first groups of a pass) may
        // be asleep on what was then an empty queue: it commits the follow-ups.
        let wake = q.serving.active && !follow.is_empty();
        q.waiting.splice(0..0, follow);
        held.tickets.clear();
        drop(q);
        if wake {
            self.work.notify_one();
        }
        // The writer goes back first; the group's records are freed after, outside it.
        drop(held);
        drop(pending);
    }

    /// Use the writer alone (a refresh, a balance): waits until no group is being written.
    pub fn with<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> Result<T, Error> {
        let mut q = self.queue();
        let ledger = loop {
            if let Some(l) = q.ledger.take() {
                break l;
            }
            q = self.turn.wait(q).unwrap_or_else(PoisonError::into_inner);
        };
        drop(q);
        let mut held = Held {
            shared: self,
            ledger: Some(ledger),
            tickets: Vec::new(),
        };
        held.ledger
            .as_mut()
            .map(f)
            .ok_or_else(|| Error::failure("the ledger's writer was lost"))
    }

    /// The repairs groups made so far (torn tails of other processes, audit records), once.
    pub fn take_repairs(&self) -> Vec<Repair> {
        std::mem::take(&mut self.queue().repairs)
    }

    /// Groups committed and the batches they held.
    pub fn groups(&self) -> (u64, u64) {
        let q = self.queue();
        (q.groups, q.batches)
    }
}

/// Commit `pending` with the held writer: each ticket's answer (all the error when the
/// group could not be written), its repairs added to `repairs`.
fn commit(
    held: &mut Held,
    tickets: Vec<u64>,
    pending: &[Pending],
    repairs: &mut Vec<Repair>,
) -> Vec<(u64, Result<AppendOutcome, Refusal>)> {
    let committed = match held.ledger.as_mut() {
        Some(l) => l.commit(pending),
        None => Err(Error::failure("the ledger's writer was lost")),
    };
    match committed {
        Ok(Committed {
            answers,
            repairs: r,
        }) => {
            repairs.extend(r);
            tickets.into_iter().zip(answers).collect()
        }
        Err(e) => tickets
            .into_iter()
            .map(|t| (t, Err(Refusal::Other(e.clone()))))
            .collect(),
    }
}

/// The answer of a follow-up whose batch was refused.
fn refused_first() -> Refusal {
    Refusal::Other(Error::failure(
        "not written: the batch it follows was refused",
    ))
}

/// The writer taken out of the queue: put back (and the waiters woken) however the holder
/// leaves, a panic included; tickets it had not answered by then are answered with an error.
struct Held<'a> {
    shared: &'a SharedLedger,
    ledger: Option<Ledger>,
    tickets: Vec<u64>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut q = self.shared.queue();
        if let Some(mut l) = self.ledger.take() {
            if std::thread::panicking() {
                // Whatever it was doing, re-read the files before the next group.
                l.poison();
            }
            q.ledger = Some(l);
        }
        for t in self.tickets.drain(..) {
            q.answers.entry(t).or_insert_with(|| {
                Err(Refusal::Other(Error::failure(
                    "the thread writing this batch's group stopped; nothing is known to be written",
                )))
            });
        }
        let wake = q.to_wake(false);
        drop(q);
        self.shared.turn.notify_all();
        for thread in wake {
            thread.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::orchestrator::identity::RunIdentity;
    use crate::orchestrator::plan::Charge;
    use crate::records::Topup;

    fn topup(tenant: &str, n: usize) -> Payload {
        let t = Topup::new(tenant, 5, "manual", &format!("r{n}"), None, "tester");
        Payload::new(t)
    }

    /// Tenant b's run, and its run_started record.
    fn run_of_b() -> (RunIdentity, Payload) {
        let run = RunIdentity {
            tenant_id: "b".into(),
            work_order_id: "w".into(),
            run: 1,
            run_id: "run-000000000000000000bb".into(),
            period: None,
        };
        let started = Payload::new(run.started(&"0".repeat(64), None));
        (run, started)
    }

    /// A SPEND of `credits` for a step of `run`.
    fn spend_in(run: &RunIdentity, credits: i64) -> Payload {
        let charge = Charge {
            deliverable_id: "__run__".into(),
            amount_credits: credits,
            idempotency_key: String::new(),
            already_charged: false,
        };
        Payload::new(run.step("s", 1, "m").spend(&charge))
    }

    /// A SPEND of `credits` for tenant b, of a run whose run_started is posted now.
    fn spend_of_b(ledger: &mut Ledger, credits: i64) -> Payload {
        let (run, started) = run_of_b();
        ledger.append(Stream::Evidence, vec![started]).unwrap();
        spend_in(&run, credits)
    }

    /// Tenant b topped up with 5 credits, and its run started: its run.
    fn topped_up_run_of_b(shared: &SharedLedger) -> RunIdentity {
        let (run, started) = run_of_b();
        shared
            .append(Stream::Billing, None, vec![topup("b", 1)])
            .unwrap();
        shared
            .append(Stream::Evidence, None, vec![started])
            .unwrap();
        run
    }

    /// The writer and the whole queue, as a leader takes them (to lead a group by hand).
    fn take_group(shared: &SharedLedger) -> (Ledger, Vec<Queued>) {
        let mut q = shared.queue();
        (q.ledger.take().unwrap(), std::mem::take(&mut q.waiting))
    }

    /// One record as a batch ready to queue.
    fn pending(stream: Stream, p: Payload) -> Pending {
        Pending {
            stream,
            batch: prepare(stream, None, &[p]).unwrap(),
        }
    }

    /// Lines of a ledger file.
    fn lines(dir: &std::path::Path, file: &str) -> usize {
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .lines()
            .count()
    }

    #[test]
    fn batches_queued_meanwhile_share_one_group_and_each_caller_hears_only_its_answer() {
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let (mut ledger, _) = Ledger::open(dir.path()).unwrap();
        let spend = spend_of_b(&mut ledger, 3);
        let shared = SharedLedger::new(ledger);
        let answers = std::thread::scope(|s| {
            // Hold the writer until all eight batches wait in the queue: the first caller to
            // find it free then commits them all as one group.
            let holder = s.spawn(|| {
                shared
                    .with(|_| {
                        while shared.queue().waiting.len() < 8 {
                            std::thread::sleep(std::time::Duration::from_millis(2));
                        }
                    })
                    .unwrap();
            });
            while shared.queue().ledger.is_some() {
                std::thread::yield_now();
            }
            let posts: Vec<_> = (0..8)
                .map(|n| {
                    let (shared, spend) = (&shared, spend.clone());
                    s.spawn(move || match n {
                        // Tenant b has nothing: the ledger refuses this one alone.
                        3 => shared.append(Stream::Billing, None, vec![spend]),
                        _ => shared.append(Stream::Billing, None, vec![topup("a", n)]),
                    })
                })
                .collect();
            holder.join().unwrap();
            posts
                .into_iter()
                .map(|p| p.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert_eq!(shared.groups(), (1, 8), "one group held every batch");
        for (n, a) in answers.iter().enumerate() {
            match (n, a) {
                (3, Err(Refusal::NotEnoughCredits(e))) => {
                    assert!(e.message.contains("nothing was written"), "{e:?}")
                }
                (3, other) => panic!("the SPEND should be refused: {other:?}"),
                (_, Ok(o)) => assert!(o.appended()),
                (_, Err(e)) => panic!("batch {n} refused: {e:?}"),
            }
        }
        // Seven top-ups and their seven audit records, written once each, and a chain that
        // verifies.
        assert_eq!(lines(dir.path(), "billing.jsonl"), 7);
        assert_eq!(lines(dir.path(), "audit.jsonl"), 7);
        assert!(crate::ledger::verify(dir.path()).unwrap().ok());
        let balance = shared.with(|l| l.balance("a")).unwrap();
        assert_eq!(balance, 35);
    }

    /// Post `batches` so that they all wait while another caller holds the writer: the
    /// first to find it free then commits them all as one group. The answers, in order.
    fn one_group(
        shared: &SharedLedger,
        batches: Vec<Payload>,
    ) -> Vec<Result<AppendOutcome, Refusal>> {
        let n = batches.len();
        std::thread::scope(|s| {
            let holder = s.spawn(|| {
                shared
                    .with(|_| {
                        while shared.queue().waiting.len() < n {
                            std::thread::sleep(std::time::Duration::from_millis(2));
                        }
                    })
                    .unwrap();
            });
            while shared.queue().ledger.is_some() {
                std::thread::yield_now();
            }
            let posts: Vec<_> = batches
                .into_iter()
                .map(|p| s.spawn(move || shared.append(Stream::Billing, None, vec![p])))
                .collect();
            holder.join().unwrap();
            posts.into_iter().map(|p| p.join().unwrap()).collect()
        })
    }

    #[test]
    fn a_replay_and_a_conflict_in_the_group_that_stages_their_key_read_the_staged_line() {
        // The key's line is staged, not yet on disk, when the later batches are checked.
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let (ledger, _) = Ledger::open(dir.path()).unwrap();
        let shared = SharedLedger::new(ledger);
        let other = Topup::new("a", 6, "manual", "r1", None, "tester");
        let answers = one_group(
            &shared,
            vec![topup("a", 1), topup("a", 1), Payload::new(other)],
        );
        assert_eq!(shared.groups(), (1, 3), "one group held every batch");
        // Whichever the group staged first is written; the others read its staged line: a
        // replay of it is answered with its record, a different payload names the field.
        let written: Vec<&AppendOutcome> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
        assert_eq!(
            written.iter().filter(|o| o.appended()).count(),
            1,
            "{answers:?}"
        );
        assert!(written
            .iter()
            .all(|o| o.records[0].hash == written[0].records[0].hash));
        for refused in answers.iter().filter_map(|a| a.as_ref().err()) {
            let message = refused.clone().into_error().message;
            assert!(
                message.contains("amount_credits (recorded 5, posted 6)")
                    || message.contains("amount_credits (recorded 6, posted 5)"),
                "{message}"
            );
        }
        assert_eq!(lines(dir.path(), "billing.jsonl"), 1);
    }

    #[test]
    fn a_parked_waiter_is_woken_by_its_own_answer_or_by_the_end_of_serving() {
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let (ledger, _) = Ledger::open(dir.path()).unwrap();
        let shared = SharedLedger::new(ledger);
        let mut q = shared.queue();
        q.parked = vec![(1, std::thread::current()), (2, std::thread::current())];
        assert!(q.to_wake(false).is_empty(), "no answer is in yet");
        q.answers
            .insert(2, Err(Refusal::Other(Error::failure("x"))));
        let woken = q.to_wake(false);
        assert_eq!(woken.len(), 1, "only the waiter of ticket 2");
        assert_eq!(woken[0].id(), std::thread::current().id());
        assert_eq!(
            q.to_wake(true).len(),
            2,
            "serving ends: every parked waiter"
        );
    }

    /// Types of the records of a ledger file, in file order.
    fn types(dir: &std::path::Path, file: &str) -> Vec<String> {
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["type"].to_string())
            .collect()
    }

    #[test]
    fn a_follow_up_is_written_in_a_group_after_its_batch_and_only_if_it_was_accepted() {
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let (ledger, _) = Ledger::open(dir.path()).unwrap();
        let shared = SharedLedger::new(ledger);
        let (run, started) = run_of_b();
        shared
            .append(Stream::Evidence, None, vec![started])
            .unwrap();
        let step = || Payload::new(run.step("s", 1, "m").started());
        // Tenant b has nothing: the SPEND is refused for credits, its follow-up never written.
        let (spend, followed) =
            shared.append_then(Stream::Billing, None, vec![spend_in(&run, 3)], vec![step()]);
        assert!(
            matches!(spend, Err(Refusal::NotEnoughCredits(_))),
            "{spend:?}"
        );
        let refused = followed.unwrap().unwrap_err().into_error().message;
        assert!(
            refused.contains("the batch it follows was refused"),
            "{refused}"
        );
        assert_eq!(types(dir.path(), "evidence.jsonl"), ["\"run_started\""]);
        assert_eq!(shared.groups(), (2, 2), "no group for the follow-up");
        // Topped up: both written, the follow-up in a group of its own after the SPEND's
        // (which was durable when it began).
        shared
            .append(Stream::Billing, None, vec![topup("b", 1)])
            .unwrap();
        let (spend, followed) =
            shared.append_then(Stream::Billing, None, vec![spend_in(&run, 3)], vec![step()]);
        assert!(spend.unwrap().appended());
        assert!(followed.unwrap().unwrap().appended());
        assert_eq!(
            shared.groups(),
            (5, 5),
            "the SPEND's group, then the follow-up's"
        );
        assert_eq!(
            types(dir.path(), "evidence.jsonl"),
            ["\"run_started\"", "\"step_started\""]
        );
        assert_eq!(lines(dir.path(), "billing.jsonl"), 2);
        // Posted again (a resumed step): both answered as already recorded, nothing written.
        let (spend, followed) =
            shared.append_then(Stream::Billing, None, vec![spend_in(&run, 3)], vec![step()]);
        assert!(!spend.unwrap().appended());
        assert!(!followed.unwrap().unwrap().appended());
        assert_eq!(lines(dir.path(), "evidence.jsonl"), 2);
        assert!(crate::ledger::verify(dir.path()).unwrap().ok());
    }

    #[test]
    fn a_follow_up_leads_the_next_group_with_what_was_queued_meanwhile_and_is_answered_with_its_batch(
    ) {
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let (ledger, _) = Ledger::open(dir.path()).unwrap();
        let shared = SharedLedger::new(ledger);
        let run = topped_up_run_of_b(&shared);
        let step = |s: &str| Payload::new(run.step(s, 1, "m").started());
        // A SPEND with its step_started, its group led by hand.
        let (spend, then) = shared.queue_up(
            pending(Stream::Billing, spend_in(&run, 3)),
            Some(pending(Stream::Evidence, step("s"))),
        );
        let then = then.unwrap();
        let (ledger, group) = take_group(&shared);
        shared.lead(ledger, group);
        {
            let q = shared.queue();
            assert!(
                q.answers.is_empty(),
                "the SPEND's answer waits for its follow-up's"
            );
            assert_eq!(q.waiting.len(), 1);
            assert!(q.waiting[0].after.is_some() && q.waiting[0].ticket == then);
        }
        assert_eq!(
            lines(dir.path(), "billing.jsonl"),
            2,
            "the SPEND is written"
        );
        assert_eq!(types(dir.path(), "evidence.jsonl"), ["\"run_started\""]);
        // Another caller's batch queued meanwhile joins the follow-up's group, after it.
        let other = shared
            .enqueue(Stream::Evidence, None, vec![step("t")])
            .unwrap();
        assert!(shared.wait(Ticket(spend)).unwrap().appended());
        assert!(
            shared.queue().answers.contains_key(&then),
            "both answers came in together"
        );
        assert!(shared.wait(Ticket(then)).unwrap().appended());
        assert!(shared.wait(other).unwrap().appended());
        assert_eq!(
            shared.groups(),
            (4, 5),
            "the follow-up and the batch queued meanwhile in one group"
        );
        let evidence = std::fs::read_to_string(dir.path().join("evidence.jsonl")).unwrap();
        let steps: Vec<&str> = evidence
            .lines()
            .filter_map(|l| l.split("\"step_id\":\"").nth(1))
            .map(|rest| &rest[..1])
            .collect();
        assert_eq!(steps, ["s", "t"], "the follow-up first");
        assert!(crate::ledger::verify(dir.path()).unwrap().ok());
    }

    #[test]
    fn follow_ups_left_by_a_worker_that_led_as_serving_began_are_committed_by_the_serving_thread() {
        // The first groups of a pass: a worker leads while the serving thread starts and
        // falls asleep on an empty queue; the follow-ups the worker leaves must wake it.
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let (ledger, _) = Ledger::open(dir.path()).unwrap();
        let shared = std::sync::Arc::new(SharedLedger::new(ledger));
        let run = topped_up_run_of_b(&shared);
        let (spend, then) = shared.queue_up(
            pending(Stream::Billing, spend_in(&run, 3)),
            Some(pending(
                Stream::Evidence,
                Payload::new(run.step("s", 1, "m").started()),
            )),
        );
        let (ledger, group) = take_group(&shared);
        shared.expect_workers(1);
        let server = {
            let shared = shared.clone();
            std::thread::spawn(move || shared.serve())
        };
        while !shared.queue().serving.active {
            std::thread::yield_now();
        }
        // Asleep on the empty queue (or about to be: it waits for the writer either way).
        std::thread::sleep(std::time::Duration::from_millis(20));
        shared.lead(ledger, group);
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let answers = (
                    shared.wait(Ticket(spend)),
                    shared.wait(Ticket(then.unwrap())),
                );
                let _ = tx.send(answers);
            });
        }
        let (spend, then) = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the follow-up was never committed: the serving thread slept on it");
        assert!(spend.unwrap().appended() && then.unwrap().appended());
        shared.worker_done();
        shared.stop_serving();
        server.join().unwrap();
        assert_eq!(
            types(dir.path(), "evidence.jsonl"),
            ["\"run_started\"", "\"step_started\""]
        );
    }

    #[test]
    fn a_group_posted_again_is_recorded_once() {
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let (ledger, _) = Ledger::open(dir.path()).unwrap();
        let shared = SharedLedger::new(ledger);
        std::thread::scope(|s| {
            for round in 0..2 {
                let posts: Vec<_> = (0..6)
                    .map(|n| {
                        let shared = &shared;
                        s.spawn(move || shared.append(Stream::Billing, None, vec![topup("a", n)]))
                    })
                    .collect();
                for p in posts {
                    let outcome = p.join().unwrap().unwrap();
                    assert_eq!(outcome.appended(), round == 0);
                }
            }
        });
        assert_eq!(lines(dir.path(), "billing.jsonl"), 6);
        assert_eq!(shared.with(|l| l.balance("a")).unwrap(), 30);
        let (groups, batches) = shared.groups();
        assert_eq!(batches, 12);
        assert!(groups <= batches);
    }

    #[test]
    fn a_batch_queued_ahead_is_written_in_the_group_of_the_next_and_before_it() {
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let (ledger, _) = Ledger::open(dir.path()).unwrap();
        let shared = SharedLedger::new(ledger);
        shared
            .append(Stream::Billing, None, vec![topup("b", 1)])
            .unwrap();
        let (run, started) = run_of_b();
        let ahead = shared
            .enqueue(Stream::Evidence, None, vec![started])
            .unwrap();
        assert_eq!(
            lines(dir.path(), "evidence.jsonl"),
            0,
            "queued, not written"
        );
        // The SPEND names the run: accepted because its run_started is staged before it.
        let spend = spend_in(&run, 3);
        let outcome = shared.append(Stream::Billing, None, vec![spend]).unwrap();
        assert!(outcome.appended());
        let outcome = shared.wait(ahead).unwrap();
        assert!(outcome.appended());
        assert_eq!(lines(dir.path(), "evidence.jsonl"), 1);
        assert_eq!(lines(dir.path(), "billing.jsonl"), 2);
        assert_eq!(
            shared.groups(),
            (2, 3),
            "the top-up alone, then both in one group"
        );
    }
}
