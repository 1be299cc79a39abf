//! Each work order's last run and whether any of its runs is open, folded from the ledger in little memory per run: what a pass needs to find work orders up to date (the ledger cache keeps it).
use super::history::{History, RunEnd, RunHistory};
use super::slots::{run_entry, run_with_id, RunSlot, Runs};
use crate::records::{Record, Refund, RunStatus, Spend};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One work order's last run, ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    pub tenant_id: String,
    pub work_order_id: String,
    pub run: u64,
    pub run_id: String,
    pub work_order_sha256: Option<String>,
    /// The period its `run_started` names (scheduled work orders; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    pub attempt: u32,
    pub status: RunStatus,
}

/// What decides whether a run is open (as [`RunHistory::is_open`] does) and what its last
/// end was.
#[derive(Debug, Clone, Default)]
struct RunLite {
    run_id: String,
    work_order_sha256: Option<String>,
    period: Option<String>,
    started: bool,
    max_attempt: u32,
    end: Option<(u32, RunStatus)>,
}

impl RunLite {
    fn is_open(&self) -> bool {
        match self.end {
            None => self.started,
            Some((attempt, _)) => self.max_attempt > attempt,
        }
    }
}

/// Every run of every work order, reduced to [`RunLite`].
#[derive(Debug, Default)]
pub struct LastRuns {
    runs: Runs<RunLite>,
    /// Rerun requests: (tenant, work order) → the `after_run` of each.
    reruns: BTreeMap<(String, String), Vec<u64>>,
}

impl RunSlot for RunLite {
    fn run_id_mut(&mut self) -> &mut String {
        &mut self.run_id
    }
}

/// What one record tells [`LastRuns`]: folded at once by a reader, or kept by a writer until
/// the record is durable. `S` is `&str` borrowed from the record, or `String` kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touch<S> {
    Started {
        wo: (S, S),
        run: u64,
        run_id: S,
        work_order_sha256: S,
        period: Option<S>,
    },
    Rerun {
        wo: (S, S),
        after_run: u64,
    },
    Ended {
        wo: (S, S),
        run: u64,
        run_id: S,
        attempt: u32,
        status: RunStatus,
    },
    /// A SPEND, REFUND, `step_started` or `step_outcome`: an attempt of a run.
    Attempt {
        wo: (S, S),
        run: u64,
        run_id: S,
        attempt: u32,
    },
    /// A delivery receipt: an attempt of a run known by its id alone.
    Receipt {
        wo: (S, S),
        run_id: S,
        attempt: u32,
    },
}

impl<'a> Touch<&'a str> {
    /// What `rec` tells a [`LastRuns`] (None for a type `History::uses` not).
    pub fn of(rec: &'a Record) -> Option<Touch<&'a str>> {
        let attempt = |t: &'a str, w: &'a str, run: u64, run_id: &'a str, attempt: u32| {
            Some(Touch::Attempt {
                wo: (t, w),
                run,
                run_id,
                attempt,
            })
        };
        match rec {
            Record::RunStarted(r) => Some(Touch::Started {
                wo: (&r.tenant_id, &r.work_order_id),
                run: r.run,
                run_id: &r.run_id,
                work_order_sha256: &r.work_order_sha256,
                period: r.period.as_deref(),
            }),
            Record::RerunRequested(q) => Some(Touch::Rerun {
                wo: (&q.tenant_id, &q.work_order_id),
                after_run: q.after_run,
            }),
            Record::RunEnded(e) => Some(Touch::Ended {
                wo: (&e.tenant_id, &e.work_order_id),
                run: e.run,
                run_id: &e.run_id,
                attempt: e.attempt,
                status: e.status,
            }),
            Record::Spend(Spend {
                tenant_id, charge, ..
            })
            | Record::Refund(Refund {
                tenant_id, charge, ..
            }) => attempt(
                tenant_id,
                &charge.work_order_id,
                charge.run,
                &charge.run_id,
                charge.attempt,
            ),
            Record::StepStarted(s) => {
                attempt(&s.tenant_id, &s.work_order_id, s.run, &s.run_id, s.attempt)
            }
            Record::StepOutcome(o) => {
                attempt(&o.tenant_id, &o.work_order_id, o.run, &o.run_id, o.attempt)
            }
            Record::DeliveryReceipt(d) => Some(Touch::Receipt {
                wo: (&d.tenant_id, &d.work_order_id),
                run_id: &d.run_id,
                attempt: d.attempt,
            }),
            _ => None,
        }
    }

    /// The same, its text kept.
    pub fn owned(&self) -> Touch<String> {
        let s = |x: &str| x.to_string();
        let wo = |(t, w): (&str, &str)| (t.to_string(), w.to_string());
        match *self {
            Touch::Started {
                wo: w,
                run,
                run_id,
                work_order_sha256,
                period,
            } => Touch::Started {
                wo: wo(w),
                run,
                run_id: s(run_id),
                work_order_sha256: s(work_order_sha256),
                period: period.map(s),
            },
            Touch::Rerun { wo: w, after_run } => Touch::Rerun {
                wo: wo(w),
                after_run,
            },
            Touch::Ended {
                wo: w,
                run,
                run_id,
                attempt,
                status,
            } => Touch::Ended {
                wo: wo(w),
                run,
                run_id: s(run_id),
                attempt,
                status,
            },
            Touch::Attempt {
                wo: w,
                run,
                run_id,
                attempt,
            } => Touch::Attempt {
                wo: wo(w),
                run,
                run_id: s(run_id),
                attempt,
            },
            Touch::Receipt {
                wo: w,
                run_id,
                attempt,
            } => Touch::Receipt {
                wo: wo(w),
                run_id: s(run_id),
                attempt,
            },
        }
    }
}

/// A touched work order's key as text.
fn key<S: AsRef<str>>((t, w): &(S, S)) -> (&str, &str) {
    (t.as_ref(), w.as_ref())
}

impl LastRuns {
    /// Fold one record in, as [`History::add`] would (the types `History::uses`).
    pub fn add(&mut self, rec: &Record) {
        if let Some(t) = Touch::of(rec) {
            self.apply(&t);
        }
    }

    /// Fold in what one record tells.
    pub fn apply<S: AsRef<str>>(&mut self, touch: &Touch<S>) {
        let (wo, run, run_id, attempt) = match touch {
            Touch::Started {
                wo,
                run,
                run_id,
                work_order_sha256,
                period,
            } => {
                let run = run_entry(&mut self.runs, key(wo), *run, run_id.as_ref());
                run.started = true;
                run.work_order_sha256 = Some(work_order_sha256.as_ref().to_string());
                run.period = period.as_ref().map(|p| p.as_ref().to_string());
                return;
            }
            Touch::Rerun { wo, after_run } => {
                let (t, w) = key(wo);
                let wo = (t.to_string(), w.to_string());
                self.reruns.entry(wo).or_default().push(*after_run);
                return;
            }
            Touch::Ended {
                wo,
                run,
                run_id,
                attempt,
                status,
            } => {
                let run = run_entry(&mut self.runs, key(wo), *run, run_id.as_ref());
                if run.end.is_none_or(|(a, _)| *attempt >= a) {
                    run.end = Some((*attempt, *status));
                }
                return;
            }
            Touch::Receipt {
                wo,
                run_id,
                attempt,
            } => {
                if let Some(run) = run_with_id(&mut self.runs, key(wo), run_id.as_ref()) {
                    run.max_attempt = run.max_attempt.max(*attempt);
                }
                return;
            }
            Touch::Attempt {
                wo,
                run,
                run_id,
                attempt,
            } => (key(wo), *run, run_id.as_ref(), *attempt),
        };
        let r = run_entry(&mut self.runs, wo, run, run_id);
        r.max_attempt = r.max_attempt.max(attempt);
    }

    /// Every work order's last run as a cache kept it (each ended, none open): what folding
    /// their whole histories gives, as far as [`LastRuns::settled`] can tell, so records
    /// appended later fold on top of it.
    pub fn seeded(last_runs: &[LastRun]) -> LastRuns {
        let mut out = LastRuns::default();
        for l in last_runs {
            let run = run_entry(
                &mut out.runs,
                (&l.tenant_id, &l.work_order_id),
                l.run,
                &l.run_id,
            );
            run.started = true;
            run.work_order_sha256 = l.work_order_sha256.clone();
            run.period = l.period.clone();
            run.max_attempt = l.attempt;
            run.end = Some((l.attempt, l.status));
        }
        out
    }

    /// Fold in what `later` folded from records that come after this one's (another file,
    /// read on another thread): the result is what folding them all in that order gives.
    pub fn merge(&mut self, later: LastRuns) {
        for ((tenant, wo), runs) in later.runs {
            for (n, r) in runs {
                let run = run_entry(&mut self.runs, (&tenant, &wo), n, &r.run_id);
                if r.started {
                    // Only a run_started sets these, as `add` does.
                    run.started = true;
                    run.work_order_sha256 = r.work_order_sha256;
                    run.period = r.period;
                }
                run.max_attempt = run.max_attempt.max(r.max_attempt);
                if let Some((attempt, status)) = r.end {
                    if run.end.is_none_or(|(a, _)| attempt >= a) {
                        run.end = Some((attempt, status));
                    }
                }
            }
        }
        for (key, afters) in later.reruns {
            self.reruns.entry(key).or_default().extend(afters);
        }
    }

    /// Each work order's last run, or None when any run is open, a last run never ended or a
    /// rerun request is pending (then the planner needs the whole history).
    pub fn settled(&self) -> Option<Vec<LastRun>> {
        for (key, afters) in &self.reruns {
            let last = self
                .runs
                .get(key)
                .and_then(|r| r.keys().next_back())
                .copied()
                .unwrap_or(0);
            if afters.iter().any(|a| *a >= last) {
                return None;
            }
        }
        let mut out = Vec::with_capacity(self.runs.len());
        for ((tenant, wo), runs) in &self.runs {
            if runs.values().any(|r| r.is_open()) {
                return None;
            }
            let Some((run, last)) = runs.iter().next_back() else {
                continue;
            };
            let (attempt, status) = last.end?;
            out.push(LastRun {
                tenant_id: tenant.clone(),
                work_order_id: wo.clone(),
                run: *run,
                run_id: last.run_id.clone(),
                work_order_sha256: last.work_order_sha256.clone(),
                period: last.period.clone(),
                attempt,
                status,
            });
        }
        Some(out)
    }
}

/// A history with each work order's last run alone, ended and without steps: what the
/// planner reads to find a work order up to date. Any other decision needs the work order's
/// whole history.
pub fn compact_history(last_runs: &[LastRun]) -> History {
    let mut history = History::default();
    for l in last_runs {
        let run = RunHistory {
            run: l.run,
            run_id: l.run_id.clone(),
            work_order_sha256: l.work_order_sha256.clone(),
            period: l.period.clone(),
            started: true,
            ends: BTreeMap::from([(
                l.attempt,
                RunEnd {
                    attempt: l.attempt,
                    status: l.status,
                },
            )]),
            ..RunHistory::default()
        };
        history
            .work_orders
            .entry((l.tenant_id.clone(), l.work_order_id.clone()))
            .or_default()
            .insert(l.run, Box::new(run));
    }
    history
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::billing::Spend;
    use crate::records::evidence::{RunEnded, RunStarted};

    fn started(run: u64) -> Record {
        Record::RunStarted(RunStarted {
            tenant_id: "t".into(),
            work_order_id: "w".into(),
            run,
            run_id: format!("r{run}"),
            work_order_sha256: format!("sha{run}"),
            correlation_id: format!("r{run}"),
            period: None,
            rerun: None,
        })
    }

    fn spend(run: u64, attempt: u32) -> Record {
        let id = format!("r{run}");
        Record::Spend(Spend::new(
            "t", "w", run, &id, "s", attempt, "m", "__run__", 1, &id,
        ))
    }

    fn ended(run: u64, attempt: u32, status: RunStatus) -> Record {
        Record::RunEnded(RunEnded {
            tenant_id: "t".into(),
            work_order_id: "w".into(),
            run,
            run_id: format!("r{run}"),
            attempt,
            status,
            steps: Vec::new(),
            charged_credits: 0,
            refunded_credits: 0,
            period: None,
        })
    }

    /// A work order's last run: number, file digest, last attempt and status.
    type Last = (u64, Option<String>, u32, RunStatus);

    /// What the whole history says: None when a run is open, else the last run's end.
    fn from_history(h: &History) -> Option<Vec<Last>> {
        let runs = h.runs("t", "w")?;
        if runs.values().any(|r| r.is_open()) {
            return None;
        }
        let last = runs.values().next_back()?;
        let end = last.last_end()?;
        Some(vec![(
            last.run,
            last.work_order_sha256.clone(),
            end.attempt,
            end.status,
        )])
    }

    #[test]
    fn last_runs_agree_with_the_whole_history_at_every_record() {
        let records = [
            started(1),
            spend(1, 1),
            ended(1, 1, RunStatus::Partial),
            spend(1, 2), // --retry-failed, interrupted: run 1 is open again
            ended(1, 2, RunStatus::Completed),
            started(2),
            spend(2, 1),
            ended(2, 1, RunStatus::Failed),
        ];
        let (mut history, mut last) = (History::default(), LastRuns::default());
        for rec in records {
            last.add(&rec);
            history.add(rec);
            let mine = last.settled().map(|v| {
                v.into_iter()
                    .map(|l| (l.run, l.work_order_sha256, l.attempt, l.status))
                    .collect::<Vec<_>>()
            });
            assert_eq!(mine, from_history(&history), "after {last:?}");
        }
        let compact = compact_history(&last.settled().unwrap());
        assert_eq!(from_history(&compact), from_history(&history));
    }

    #[test]
    fn files_folded_apart_and_merged_agree_with_one_fold_in_file_order() {
        let records = [
            started(1),
            spend(1, 1),
            ended(1, 1, RunStatus::Partial),
            spend(1, 2),
            ended(1, 2, RunStatus::Completed),
            started(2),
            spend(2, 1),
            spend(2, 2),
            ended(2, 1, RunStatus::Failed),
        ];
        // Every prefix: a run left open (a SPEND of attempt 2 without its end) must stay open.
        for n in 0..=records.len() {
            let (mut whole, mut billing, mut evidence) = (
                LastRuns::default(),
                LastRuns::default(),
                LastRuns::default(),
            );
            let (bills, evs): (Vec<&Record>, Vec<&Record>) = records[..n]
                .iter()
                .partition(|r| matches!(r, Record::Spend(_)));
            for r in bills.iter().chain(&evs) {
                whole.add(r);
            }
            bills.iter().for_each(|r| billing.add(r));
            evs.iter().for_each(|r| evidence.add(r));
            billing.merge(evidence);
            assert_eq!(billing.settled(), whole.settled(), "after {n} records");
        }
    }
}
