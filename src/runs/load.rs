//! Reads a billing-state directory into run histories, per-run credit totals and balances, through the ledger's typed reader: one read as `integrity-validate` checks it, parsing only the records a history uses.
use super::history::History;
use super::last::LastRuns;
use crate::error::{Error, Result};
use crate::ledger::{LedgerLine, Mark};
use crate::records::{Record, Stream};
use std::collections::BTreeMap;
use std::path::Path;

/// run_id → (credits charged, credits refunded), all attempts.
pub type RunTotals = BTreeMap<String, (i64, i64)>;

/// Tenant id → balance in credits, as the billing records add up.
pub type Balances = BTreeMap<String, i64>;

/// One read of the ledger as `integrity-validate` checks it (all three files and the rules
/// between them): the run history, per-run totals and every tenant's balance. Damage, or a
/// record of a run whose `run_started` is missing (a lost or truncated evidence.jsonl), is an
/// error, so nothing is ever planned from a ledger that lost records.
pub fn load(dir: &Path) -> Result<(History, RunTotals, Balances)> {
    load_only(dir, &|_, _| true)
}

/// [`load`] for the work orders `wanted` picks (by tenant and work order id) alone: the
/// whole directory is checked, the history and totals hold only their runs.
pub fn load_only(
    dir: &Path,
    wanted: &dyn Fn(&str, &str) -> bool,
) -> Result<(History, RunTotals, Balances)> {
    let mut history = History::default();
    let mut totals = RunTotals::new();
    let streams = [Stream::Billing, Stream::Evidence];
    let reading = crate::ledger::read(dir, &streams, |line| {
        fold_if(&mut history, &mut totals, line, wanted)
    })?;
    history.pending_repairs = reading.pending_repairs();
    Ok((history, totals, reading.balances))
}

/// The whole directory checked as [`load`] does it, folded into each work order's last run
/// (little memory per run), with the balances, whether a writer would repair anything, and
/// where each file's verified records end (what the ledger cache keeps).
pub(crate) fn load_last(dir: &Path) -> Result<(LastRuns, Balances, bool, [Mark; 3])> {
    // One fold per file (the files are read on two threads), merged in file order.
    let [mut billing, mut evidence, mut audit] = <[LastRuns; 3]>::default();
    let fold = |last: &mut LastRuns, line: LedgerLine<'_>| -> Result<()> {
        if History::uses(line.record_type) {
            last.add(&line.record()?);
        }
        Ok(())
    };
    let streams = [Stream::Billing, Stream::Evidence];
    let (reading, marks) = crate::ledger::read_marked(
        dir,
        &streams,
        [
            &mut |line| fold(&mut billing, line),
            &mut |line| fold(&mut evidence, line),
            &mut |line| fold(&mut audit, line),
        ],
    )?;
    billing.merge(evidence);
    billing.merge(audit);
    let pending = reading.repairs_pending();
    Ok((billing, reading.balances, pending, marks))
}

/// Fold one line in when it belongs to a work order `wanted` picks. A type a history has no
/// use for is skipped unparsed: parsing every evidence item and bundle was a third of a
/// no-op pass.
fn fold_if(
    history: &mut History,
    totals: &mut RunTotals,
    line: LedgerLine<'_>,
    wanted: &dyn Fn(&str, &str) -> bool,
) -> Result<()> {
    if !History::uses(line.record_type) {
        return Ok(());
    }
    let rec = line.record()?;
    if !work_order_of(&rec).is_some_and(|(t, w)| wanted(t, w)) {
        return Ok(());
    }
    let mut started = None;
    match &rec {
        Record::Spend(s) => add_to_run(totals, &s.charge.run_id, -i128::from(s.amount_credits), 0)?,
        Record::Refund(r) => add_to_run(totals, &r.charge.run_id, 0, i128::from(r.amount_credits))?,
        Record::RunStarted(r) => {
            let at = recorded_at_ns(line.bytes);
            started = Some((r.tenant_id.clone(), r.work_order_id.clone(), r.run, at));
        }
        _ => {}
    }
    history.add(rec);
    if let Some((t, w, run, at)) = started {
        history.stamp_start(&t, &w, run, at);
    }
    Ok(())
}

/// A verified line's `recorded_at` in ns since the epoch (one small parse per run).
fn recorded_at_ns(bytes: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Stamp {
        recorded_at: String,
    }
    let stamp: Stamp = serde_json::from_slice(bytes).ok()?;
    chrono::DateTime::parse_from_rfc3339(&stamp.recorded_at)
        .ok()?
        .timestamp_nanos_opt()
}

/// The tenant and work order of a record a history uses.
fn work_order_of(rec: &Record) -> Option<(&str, &str)> {
    Some(match rec {
        Record::RunStarted(r) => (&r.tenant_id, &r.work_order_id),
        Record::Spend(r) => (&r.tenant_id, &r.charge.work_order_id),
        Record::Refund(r) => (&r.tenant_id, &r.charge.work_order_id),
        Record::StepStarted(r) => (&r.tenant_id, &r.work_order_id),
        Record::StepOutcome(r) => (&r.tenant_id, &r.work_order_id),
        Record::DeliveryReceipt(r) => (&r.tenant_id, &r.work_order_id),
        Record::RunEnded(r) => (&r.tenant_id, &r.work_order_id),
        Record::RerunRequested(r) => (&r.tenant_id, &r.work_order_id),
        _ => return None,
    })
}

/// Add to a run's (charged, refunded) totals; every sum is checked (SPEC §7): an overflow
/// is an error, never a wrap or a saturation.
pub fn add_to_run(
    totals: &mut RunTotals,
    run_id: &str,
    charged: i128,
    refunded: i128,
) -> Result<()> {
    let t = totals.entry(run_id.to_string()).or_default();
    let sum = |a: i64, b: i128| i64::try_from(i128::from(a) + b).ok();
    match (sum(t.0, charged), sum(t.1, refunded)) {
        (Some(c), Some(r)) => {
            *t = (c, r);
            Ok(())
        }
        _ => Err(Error::failure(format!(
            "the credit totals of run {run_id} overflow 64 bits"
        ))
        .help("run `platform integrity-validate`: a ledger that verifies never gets here")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::canonical::{encode_object, seal};
    use crate::records::GENESIS_HASH;
    use serde_json::json;

    /// A sealed line of `type` with nothing but the envelope: it verifies, but no record
    /// struct of that type can be read from it.
    fn bare_line(type_name: &str) -> Vec<u8> {
        let obj = json!({"v": 1, "seq": 1, "recorded_at": "2026-01-02T03:04:05.678Z",
            "idempotency_key": "k1", "prev_hash": GENESIS_HASH, "type": type_name});
        let serde_json::Value::Object(map) = obj else {
            unreachable!()
        };
        seal(&encode_object(&map).unwrap()).unwrap().0
    }

    #[test]
    fn records_a_history_has_no_use_for_are_never_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let evidence = dir.path().join(Stream::Evidence.file_name());
        std::fs::write(&evidence, bare_line("publish")).unwrap();
        let (history, totals, _) = load(dir.path()).unwrap();
        assert!(history.order.is_empty() && totals.is_empty());
        // The same line, parsed, is unreadable: `load` skipped it by its type alone.
        let err =
            crate::ledger::for_each_line(dir.path(), Stream::Evidence, |l| l.record().map(drop))
                .unwrap_err();
        assert!(
            err.message.contains("unreadable publish record"),
            "{}",
            err.message
        );
    }
}
