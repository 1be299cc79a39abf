//! A consistent cut of the three ledger files for readers that take no writer lock: each opened and measured while a shared hold of the ledger lock keeps writers out.
use super::lock::{SharedHold, LEDGER_LOCK};
use super::Stream;
use crate::error::Result;
use std::fs::File;
use std::path::Path;

/// How long a reader waits for a writer's hold to end. Writers hold the lock for one
/// check-then-append, but `state pull` and `state push` for their downloads and uploads: a
/// reader then reads as it did before cuts were taken, the files' ends where it reaches them.
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Every file of a directory as a writer left it between two holds of its lock. The rules
/// between files hold only there: a writer appends a TOPUP, then its audit record; a
/// `run_started` (evidence) before the run's first SPEND (billing), then a REFUND before its
/// `run_ended`. A reader that read billing.jsonl to its end, then audit.jsonl to its later end,
/// saw an audit record of a TOPUP it had not read: until 2026-12-04 an `admin-topup` beside a
/// pass's read of the ledger made the pass refuse the ledger as damaged.
pub(crate) struct Cut {
    files: [Option<(File, u64)>; 3],
}

impl Cut {
    /// Open and measure the three files of `dir` under a shared hold of its ledger lock (none
    /// when the hold cannot be had: see [`SharedHold::take`]; then each file's end is where a
    /// reader reaches it, as before). A file that does not exist has no records.
    pub fn take(dir: &Path) -> Result<Cut> {
        let hold = SharedHold::take(dir, LEDGER_LOCK, WAIT);
        let mut files: [Option<(File, u64)>; 3] = Default::default();
        for stream in Stream::ALL {
            let Some(file) = super::file::open_existing(&dir.join(stream.file_name()))? else {
                continue;
            };
            let len = match hold {
                Some(_) => file
                    .metadata()
                    .map_err(|e| crate::Error::io(dir, &e))?
                    .len(),
                None => u64::MAX,
            };
            files[stream.index()] = Some((file, len));
        }
        drop(hold);
        Ok(Cut { files })
    }

    /// The file of `stream` (None: it does not exist) and where its reader stops.
    pub fn take_file(&mut self, stream: Stream) -> (Option<File>, u64) {
        match self.files[stream.index()].take() {
            Some((file, end)) => (Some(file), end),
            None => (None, u64::MAX),
        }
    }
}
