//! Which purchased deliverables the publisher considers (SPEC §5): a pure function of ledger records, the deliverables each work-order version lists, and `--since`.
use crate::error::{Error, Result};
use crate::records::billing::spend_key;
use crate::records::evidence::step_started_key;
use crate::records::{Publish, Record, StepOutcome, StepStatus, Stream};
use crate::repo::Repo;
use crate::runs::history::{Attempt, History};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The ledger as the publisher needs it: run histories, when each SPEND was recorded, and
/// the publish records already written.
#[derive(Debug, Clone, Default)]
pub struct LedgerView {
    pub history: History,
    /// `recorded_at` of every SPEND, by idempotency key.
    pub spend_times: BTreeMap<String, DateTime<Utc>>,
    /// `recorded_at` of every `step_started`, by idempotency key: when a deliverable priced
    /// 0, which no SPEND records, was purchased.
    pub started_times: BTreeMap<String, DateTime<Utc>>,
    /// Every publish record, by idempotency key.
    pub publishes: BTreeMap<String, Publish>,
}

impl LedgerView {
    /// Read billing.jsonl and evidence.jsonl (readers never modify; a torn tail is skipped).
    pub fn load(dir: &Path) -> Result<LedgerView> {
        let mut view = LedgerView::default();
        for stream in [Stream::Billing, Stream::Evidence] {
            crate::ledger::for_each_line(dir, stream, |line| {
                let entry = line.entry()?;
                view.add(
                    &entry.envelope.idempotency_key,
                    &entry.envelope.recorded_at,
                    entry.record,
                )
                .map_err(|e| e.at(line.location()))
            })?;
        }
        Ok(view)
    }

    /// Fold one record in; `recorded_at` matters only for SPENDs and `step_started`.
    pub fn add(&mut self, key: &str, recorded_at: &str, record: Record) -> Result<()> {
        let time = |what: &str| {
            parse_time(recorded_at).map_err(|why| {
                Error::failure(format!("{what} {key} has an unreadable recorded_at: {why}"))
                    .help("run `platform integrity-validate` to see what is damaged")
            })
        };
        match &record {
            Record::Spend(_) => {
                self.spend_times.insert(key.to_string(), time("SPEND")?);
            }
            Record::StepStarted(_) => {
                self.started_times
                    .insert(key.to_string(), time("step_started")?);
            }
            Record::Publish(p) => {
                self.publishes.insert(key.to_string(), p.clone());
            }
            _ => {}
        }
        self.history.add(record);
        Ok(())
    }
}

/// An RFC 3339 time, as `--since` and `recorded_at` are written.
pub fn parse_time(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| e.to_string())
}

/// Which purchase: defined with the `publish` record, whose identity it is.
pub use crate::records::evidence::Purchase;

/// The deliverables each work order of the repository lists per step, by the SHA-256 of its
/// file: what a run of that version purchased (`run_started` records the digest). A
/// deliverable priced 0 is charged no SPEND (SPEC §4: a SPEND is negative), so this is the
/// only record of its purchase.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    /// By (tenant, work order, SHA-256 of its file), per step id.
    by_version: BTreeMap<(String, String, String), BTreeMap<String, Vec<String>>>,
}

impl Listed {
    /// From the work-order files as they are now (one that does not parse lists nothing).
    pub fn from_repo(repo: &Repo) -> Listed {
        let mut by_version = BTreeMap::new();
        for lw in repo.work_orders() {
            let (Some(doc), Ok(wo)) = (lw.doc.as_ref(), repo.model(lw)) else {
                continue;
            };
            let steps: BTreeMap<String, Vec<String>> = wo
                .steps
                .iter()
                .filter(|s| !s.deliverables.is_empty())
                .map(|s| (s.step_id.clone(), s.deliverables.clone()))
                .collect();
            let version = (lw.tenant_id.clone(), lw.stem.clone(), doc.sha256.clone());
            by_version.insert(version, steps);
        }
        Listed { by_version }
    }

    /// The deliverables the step lists in the work order's version `sha256`; none when no
    /// file of the repository has that version any more.
    fn of(&self, tenant: &str, work_order: &str, sha256: Option<&str>, step: &str) -> &[String] {
        let Some(sha256) = sha256 else {
            return &[];
        };
        let version = (
            tenant.to_string(),
            work_order.to_string(),
            sha256.to_string(),
        );
        self.by_version
            .get(&version)
            .and_then(|steps| steps.get(step))
            .map_or(&[], Vec::as_slice)
    }
}

/// One purchased deliverable, at the attempt whose outputs are published.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub purchase: Purchase,
    pub module_id: String,
    /// The SPEND that bought it; for a deliverable priced 0, which no SPEND bought, the key
    /// its SPEND would have had (the purchase's identity all the same).
    pub spend_key: String,
    /// The COMPLETED outcome of that attempt: which files, with which digests.
    pub outcome: StepOutcome,
}

impl Candidate {
    /// Its [`asset_name`].
    pub fn asset_name(&self) -> String {
        let p = &self.purchase;
        asset_name(
            &p.tenant_id,
            &p.work_order_id,
            &p.step_id,
            &p.deliverable_id,
        )
    }
}

/// `<tenant>__<work_order>__<step>__<deliverable>.zip` (SPEC §5): the ZIP's name in the dist
/// directory and on the release. IDs may contain `_`, so two different deliverables can share
/// a name (consistency-validate reports them; the publisher refuses them); four IDs of 64
/// characters make 266 bytes, over the 255 GitHub and file systems allow (also reported).
pub fn asset_name(
    tenant_id: &str,
    work_order_id: &str,
    step_id: &str,
    deliverable_id: &str,
) -> String {
    format!("{tenant_id}__{work_order_id}__{step_id}__{deliverable_id}.zip")
}

/// Internal charges (`__run__` and any future `__...`) are not deliverables.
pub use crate::records::billing::is_internal;

/// A SPEND that bought a deliverable: not internal, and not metered usage (SPEC §10), whose
/// `deliverable_id` is its unit and which has a `quantity`.
pub fn buys_deliverable(spend: &crate::records::Spend) -> bool {
    spend.quantity.is_none() && !is_internal(&spend.charge.deliverable_id)
}

/// For each purchased deliverable of each (tenant, work order, run, step) whose SPEND was
/// recorded at or after `since`, the latest attempt that ended COMPLETED and whose SPEND was
/// not refunded. A deliverable the run's work-order version lists (`listed`) that an attempt
/// was charged nothing for (priced 0) is purchased by that attempt too, at its
/// `step_started`. Sorted by tenant, work order, run, step, deliverable.
pub fn select(view: &LedgerView, listed: &Listed, since: Option<DateTime<Utc>>) -> Vec<Candidate> {
    // A record without a readable time cannot be placed: not selected.
    let in_window = |times: &BTreeMap<String, DateTime<Utc>>, key: &str| match since {
        None => true,
        Some(t) => times.get(key).is_some_and(|at| *at >= t),
    };
    let mut out = Vec::new();
    for ((tenant, wo), runs) in &view.history.work_orders {
        for (run, rh) in runs {
            for (step_id, sh) in &rh.steps {
                let free = listed.of(tenant, wo, rh.work_order_sha256.as_deref(), step_id);
                let deliverables: BTreeSet<&str> = sh
                    .attempts
                    .values()
                    .flat_map(|a| a.spends.iter())
                    .filter(|s| buys_deliverable(s))
                    .map(|s| s.charge.deliverable_id.as_str())
                    .chain(free.iter().map(String::as_str))
                    .collect();
                for d in deliverables {
                    let chosen = sh.attempts.iter().rev().find_map(|(attempt, a)| {
                        let outcome = a
                            .outcome
                            .as_ref()
                            .filter(|o| o.status == StepStatus::Completed)?;
                        let (key, module_id, time_key, times) = match bought(a, d) {
                            Some(spend) => {
                                let key = spend.key();
                                if a.refunded.contains(&key) {
                                    return None;
                                }
                                (key.clone(), &spend.charge.module_id, key, &view.spend_times)
                            }
                            // Charged nothing for it and listed: it was free at this attempt.
                            None if free.iter().any(|f| f == d) => {
                                let key = spend_key(tenant, wo, *run, step_id, *attempt, d);
                                let started = step_started_key(&rh.run_id, step_id, *attempt);
                                (key, &outcome.module_id, started, &view.started_times)
                            }
                            None => return None,
                        };
                        in_window(times, &time_key).then(|| Candidate {
                            purchase: Purchase {
                                tenant_id: tenant.clone(),
                                work_order_id: wo.clone(),
                                run: *run,
                                run_id: outcome.run_id.clone(),
                                step_id: step_id.clone(),
                                attempt: *attempt,
                                deliverable_id: d.to_string(),
                            },
                            module_id: module_id.clone(),
                            spend_key: key,
                            outcome: outcome.clone(),
                        })
                    });
                    out.extend(chosen);
                }
            }
        }
    }
    out
}

/// The SPEND of this attempt that bought deliverable `d`.
fn bought<'a>(a: &'a Attempt, d: &str) -> Option<&'a crate::records::Spend> {
    a.spends
        .iter()
        .find(|s| buys_deliverable(s) && s.charge.deliverable_id == d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::billing::RUN_DELIVERABLE;
    use crate::records::{Refund, Spend};
    use std::collections::BTreeMap;

    fn spend(step: &str, attempt: u32, deliverable: &str) -> Spend {
        Spend::new(
            "t1",
            "wo",
            1,
            "run-1",
            step,
            attempt,
            "m",
            deliverable,
            2,
            "c",
        )
    }

    fn outcome(step: &str, attempt: u32, status: StepStatus) -> StepOutcome {
        StepOutcome {
            tenant_id: "t1".into(),
            work_order_id: "wo".into(),
            run: 1,
            run_id: "run-1".into(),
            step_id: step.into(),
            attempt,
            module_id: "m".into(),
            status,
            reason_slug: None,
            message: None,
            outputs: Vec::new(),
            values: BTreeMap::new(),
            usage: BTreeMap::new(),
        }
    }

    fn refund_of(s: &Spend) -> Refund {
        Refund::reversing(s, "module_failed")
    }

    fn add(view: &mut LedgerView, at: &str, rec: impl Into<Record>) {
        let rec = rec.into();
        let key = rec.key().unwrap_or_default();
        view.add(&key, at, rec).unwrap();
    }

    const T0: &str = "2030-01-01T00:00:00Z";
    const T1: &str = "2030-01-02T00:00:00Z";

    #[test]
    fn latest_completed_unrefunded_attempt_wins_and_internal_ids_are_skipped() {
        let mut v = LedgerView::default();
        add(&mut v, T0, spend("s1", 1, RUN_DELIVERABLE));
        add(&mut v, T0, spend("s1", 1, "report"));
        add(&mut v, T0, outcome("s1", 1, StepStatus::Failed));
        add(&mut v, T0, refund_of(&spend("s1", 1, "report")));
        add(&mut v, T1, spend("s1", 2, "report"));
        add(&mut v, T1, outcome("s1", 2, StepStatus::Completed));
        let got = select(&v, &Listed::default(), None);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].purchase.attempt, 2);
        assert_eq!(got[0].purchase.deliverable_id, "report");
        assert_eq!(got[0].asset_name(), "t1__wo__s1__report.zip");
        assert_eq!(got[0].spend_key, "spend/t1/wo/r1/s1/a2/report");
    }

    #[test]
    fn a_refunded_spend_is_not_selected_even_when_completed() {
        let mut v = LedgerView::default();
        let s = spend("s1", 1, "report");
        add(&mut v, T0, s.clone());
        add(&mut v, T0, outcome("s1", 1, StepStatus::Completed));
        add(&mut v, T0, refund_of(&s));
        assert!(select(&v, &Listed::default(), None).is_empty());
    }

    #[test]
    fn since_compares_the_spend_time_and_is_inclusive() {
        let mut v = LedgerView::default();
        add(&mut v, T0, spend("s1", 1, "a"));
        add(&mut v, T0, outcome("s1", 1, StepStatus::Completed));
        add(&mut v, T1, spend("s2", 1, "b"));
        add(&mut v, T1, outcome("s2", 1, StepStatus::Completed));
        let t1 = parse_time(T1).unwrap();
        let got = select(&v, &Listed::default(), Some(t1));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].purchase.step_id, "s2");
        let later = parse_time("2030-01-02T00:00:00.001Z").unwrap();
        assert!(select(&v, &Listed::default(), Some(later)).is_empty());
        // Offsets are compared as instants.
        let same = parse_time("2030-01-02T01:00:00+01:00").unwrap();
        assert_eq!(select(&v, &Listed::default(), Some(same)).len(), 1);
    }

    /// Run 1 of t1/wo, started from the file version `sha256`; returns a [`Listed`] in which
    /// step s1 of version "v1" lists deliverable `free`.
    fn started(view: &mut LedgerView, sha256: &str) -> Listed {
        let run = crate::records::RunStarted {
            tenant_id: "t1".into(),
            work_order_id: "wo".into(),
            run: 1,
            run_id: "run-1".into(),
            work_order_sha256: sha256.into(),
            correlation_id: "run-1".into(),
            period: None,
            rerun: None,
        };
        add(view, T0, run);
        let steps = BTreeMap::from([("s1".to_string(), vec!["free".to_string()])]);
        let version = ("t1".to_string(), "wo".to_string(), "v1".to_string());
        Listed {
            by_version: BTreeMap::from([(version, steps)]),
        }
    }

    #[test]
    fn a_free_deliverable_the_run_s_version_lists_is_selected_when_its_step_completed() {
        let mut v = LedgerView::default();
        let listed = started(&mut v, "v1");
        add(&mut v, T0, spend("s1", 1, RUN_DELIVERABLE));
        add(&mut v, T0, outcome("s1", 1, StepStatus::Failed));
        add(&mut v, T1, outcome("s1", 2, StepStatus::Completed));
        let got = select(&v, &listed, None);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].purchase.attempt, 2,
            "the completed attempt, not the failed one"
        );
        assert_eq!(got[0].spend_key, "spend/t1/wo/r1/s1/a2/free");
        // Placed by its step_started: without one, `--since` cannot place it.
        assert!(select(&v, &listed, Some(parse_time(T0).unwrap())).is_empty());
        // Only another version of the file lists it: what the run purchased is unknown.
        let mut other = LedgerView::default();
        let listed = started(&mut other, "v0");
        add(&mut other, T0, outcome("s1", 1, StepStatus::Completed));
        assert!(select(&other, &listed, None).is_empty());
    }

    #[test]
    fn a_step_without_an_outcome_or_failed_is_not_selected() {
        let mut v = LedgerView::default();
        add(&mut v, T0, spend("s1", 1, "a"));
        add(&mut v, T0, spend("s2", 1, "b"));
        add(&mut v, T0, outcome("s2", 1, StepStatus::Failed));
        assert!(select(&v, &Listed::default(), None).is_empty());
    }
}
