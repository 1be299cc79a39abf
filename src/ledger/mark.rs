//! Where a verified read of one ledger file ended: the file's identity, the head after its last verified record and the ids of its keys.
use super::key::KeyId;
use super::scan::{Head, Scan};
use std::os::unix::fs::MetadataExt;

/// Which file a mark belongs to: the inode it was read from and its change time then. A
/// replaced file (a pull, a merge, a copy) has another inode; a file written in place has
/// another change time, which nobody can set back without root.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub ctime_ns: i128,
}

impl FileId {
    /// Taken before the file is read: a write during the read makes the next comparison
    /// fail (a rebuild), never pass.
    pub fn of(file: Option<&std::fs::File>) -> std::io::Result<FileId> {
        let Some(file) = file else {
            return Ok(FileId::default());
        };
        let m = file.metadata()?;
        Ok(FileId {
            dev: m.dev(),
            ino: m.ino(),
            ctime_ns: ctime_ns(&m),
        })
    }
}

/// A file's change time in nanoseconds.
pub(crate) fn ctime_ns(m: &std::fs::Metadata) -> i128 {
    i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec())
}

/// The end of the verified records of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mark {
    pub file: FileId,
    /// Bytes of the verified records (where the next record starts).
    pub offset: u64,
    pub lines: u64,
    pub seq: u64,
    /// Hash of the last verified record (64 zeros for none), hex.
    pub hash: [u8; 64],
    /// Ids of every key recorded up to here, sorted.
    pub keys: Vec<KeyId>,
}

impl Mark {
    /// Where `scan` ended; its keys are moved here (the scan keeps none).
    pub fn take(scan: &mut Scan, file: FileId) -> Mark {
        Mark {
            file,
            offset: scan.head.offset,
            lines: scan.head.lines,
            seq: scan.head.seq,
            hash: scan.head.hash,
            keys: scan.take_key_ids(),
        }
    }

    pub fn head(&self) -> Head {
        Head {
            offset: self.offset,
            lines: self.lines,
            seq: self.seq,
            hash: self.hash,
        }
    }
}
