//! Readers: stream a ledger file line by line, whole batches only, without the writer lock and without ever modifying it.
use super::line;
use super::scan::{self, Billing, BillingOp, Mode, Scan};
use super::{damaged, SinkError, Stream};
use crate::error::{Error, Result};
use crate::records::Entry;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// An incomplete write at the end of a file, seen by a reader (left in place: the next
/// writer removes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub file: String,
    /// The first line of the incomplete write.
    pub from_line: u64,
    pub lines: u64,
    pub bytes: u64,
    pub message: String,
}

/// What a reader saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSummary {
    /// Records handed to the callback.
    pub records: u64,
    pub torn_tail: Option<TornTail>,
}

/// Every complete record of a file as raw line bytes (without `\n`), with its line number.
/// A missing file has no records. The chain and hashes are checked; damage before the last
/// batch is an error, a torn tail is reported in the summary and skipped.
pub fn for_each_line(
    dir: &Path,
    stream: Stream,
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<ReadSummary> {
    let path = dir.join(stream.file_name());
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ReadSummary::default()),
        Err(e) => return Err(Error::io(&path, &e)),
    };
    let mut scan = Scan::new(stream, Mode::Read);
    let mut records = 0u64;
    let mut sink = |ln: u64, bytes: &[u8]| -> std::result::Result<(), SinkError> {
        records += 1;
        f(ln, bytes).map_err(SinkError::Err)
    };
    scan::feed_file(&file, 0, &mut scan, &mut sink).map_err(|e| e.into_error(&path))?;
    let torn = scan.finish();
    if let Some(p) = scan.problems.first() {
        return Err(damaged(&path, p.line, &p.message));
    }
    Ok(ReadSummary {
        records,
        torn_tail: torn.map(|t| TornTail {
            file: path.display().to_string(),
            from_line: t.from_line,
            lines: t.lines,
            bytes: t.bytes,
            message: t.message,
        }),
    })
}

/// Every complete record of a file as a JSON object, with its line number.
pub fn for_each(
    dir: &Path,
    stream: Stream,
    mut f: impl FnMut(u64, &Map<String, Value>) -> Result<()>,
) -> Result<ReadSummary> {
    let path = dir.join(stream.file_name());
    for_each_line(dir, stream, |ln, bytes| {
        let map: Map<String, Value> = serde_json::from_slice(bytes)
            .map_err(|e| damaged(&path, ln, &format!("not a JSON object: {e}")))?;
        f(ln, &map)
    })
}

/// Every complete record of a file, typed. A record this build does not know is an error
/// naming the line.
pub fn for_each_entry(
    dir: &Path,
    stream: Stream,
    mut f: impl FnMut(u64, Entry) -> Result<()>,
) -> Result<ReadSummary> {
    let path = dir.join(stream.file_name());
    for_each(dir, stream, |ln, map| {
        let entry = Entry::from_object(map.clone()).map_err(|e| {
            Error::failure(format!("{}:{ln}: {e}", path.display()))
                .at(format!("{}:{ln}", path.display()))
        })?;
        f(ln, entry)
    })
}

/// Every tenant's balance, computed by reading billing.jsonl.
pub fn balances(dir: &Path) -> Result<BTreeMap<String, i64>> {
    Ok(balances_with_summary(dir)?.0)
}

/// Every tenant's balance, and what the reader saw (a torn tail is not counted).
pub fn balances_with_summary(dir: &Path) -> Result<(BTreeMap<String, i64>, ReadSummary)> {
    let path = dir.join(Stream::Billing.file_name());
    let mut billing = Billing::default();
    let summary = for_each_line(dir, Stream::Billing, |ln, bytes| {
        let facts = line::parse(bytes, false).map_err(|u| damaged(&path, ln, &u.message))?;
        if let Some(op) = BillingOp::from_facts(&facts).map_err(|m| damaged(&path, ln, &m))? {
            // The reader reports what the file says; rule violations are verify's to report.
            let _ = billing.apply(&op, false);
        }
        Ok(())
    })?;
    let balances = billing
        .tenants
        .iter()
        .cloned()
        .zip(billing.balances.iter().copied())
        .collect();
    Ok((balances, summary))
}

/// One tenant's balance (0 when the tenant has no records).
pub fn balance(dir: &Path, tenant_id: &str) -> Result<i64> {
    Ok(balances(dir)?.get(tenant_id).copied().unwrap_or(0))
}
