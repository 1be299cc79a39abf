//! What replacing the state release with a local copy would drop (`state push --restore`): per file, the release's records the copy lacks, each as signed, refuted by the signed heads, or unverified.
use super::signed::Heads;
use crate::error::{Error, Result};
use crate::records::{canonical, Stream, GENESIS_HASH};
use std::io::BufRead;
use std::path::Path;

/// Why a record of the release that the local copy lacks may, or may not, be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lack {
    /// At or before the head that the release's verified heads.json signs, and the release's
    /// file chains up to it: never dropped.
    Signed,
    /// The verified signed heads contradict it: the local copy holds the signed records at
    /// these seqs (or before them), the release other ones. The damage a restore repairs.
    Refuted,
    /// No listed key signed it (records past the signed heads, or no heads.json verifies),
    /// yet it chains: it may be genuine, or a forgery; only the operator can tell.
    Unverified,
    /// It does not chain (a damaged line, or any line after one) and no signature refutes
    /// it: as unverified, the operator decides.
    Damaged,
}

impl Lack {
    fn label(self) -> &'static str {
        match self {
            Lack::Signed => "signed",
            Lack::Refuted => "not the signed records",
            Lack::Unverified => "not signed",
            Lack::Damaged => "damaged: does not chain",
        }
    }
}

/// Lines `from..=to` of the release's `file` (seq = line in a file that chains), which the
/// local copy does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lacking {
    pub file: &'static str,
    pub from: u64,
    pub to: u64,
    pub lack: Lack,
}

impl std::fmt::Display for Lacking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.lack {
            Lack::Damaged => "lines",
            _ => "seq",
        };
        match self.from == self.to {
            true => write!(f, "{} {unit} {}", self.file, self.from)?,
            false => write!(f, "{} {unit} {}..{}", self.file, self.from, self.to)?,
        }
        write!(f, " ({})", self.lack.label())
    }
}

/// The records of the release copy in `release` that `local` (a directory that verifies)
/// lacks, judged against `signed`: the release's heads.json when it verifies with a listed
/// key for this repository and release, else None (nothing on the release is signed).
pub fn lacking(release: &Path, local: &Path, signed: Option<&Heads>) -> Result<Vec<Lacking>> {
    let mut out = Vec::new();
    for stream in Stream::ALL {
        let file = stream.file_name();
        let head = signed.and_then(|h| h.file(stream));
        let walk = walk(&release.join(file), &local.join(file), head.map(|h| h.seq))?;
        let hash_is = |at: &Option<String>| match head {
            Some(h) if h.seq == 0 => h.hash == GENESIS_HASH,
            Some(h) => at.as_deref() == Some(h.hash.as_str()),
            None => false,
        };
        let release_has_head = hash_is(&walk.release_at_head);
        let local_has_head = hash_is(&walk.local_at_head);
        let signed_seq = head.map_or(0, |h| h.seq);
        for run in walk.runs {
            let lack_of = |chains: bool| match chains {
                true => Lack::Unverified,
                false => Lack::Damaged,
            };
            let mut push = |from: u64, to: u64, lack: Lack| {
                if from <= to {
                    out.push(Lacking {
                        file,
                        from,
                        to,
                        lack,
                    });
                }
            };
            match head {
                Some(_) if release_has_head => {
                    push(run.from, run.to.min(signed_seq), Lack::Signed);
                    push(run.from.max(signed_seq + 1), run.to, lack_of(run.chains));
                }
                Some(_) if local_has_head => push(run.from, run.to, Lack::Refuted),
                _ => push(run.from, run.to, lack_of(run.chains)),
            }
        }
    }
    Ok(out)
}

/// Consecutive release lines the local copy lacks, all chaining from genesis or none.
#[derive(Debug)]
struct Run {
    from: u64,
    to: u64,
    chains: bool,
}

/// One file of the release against the local one, line by line.
#[derive(Debug, Default)]
struct Walk {
    runs: Vec<Run>,
    /// The `hash` of line `seq` of the signed head in the release (only while every line
    /// up to it chains) and in the local copy.
    release_at_head: Option<String>,
    local_at_head: Option<String>,
}

/// Compare the release's file with the local one. A release line is held locally when the
/// local line at the same place is the same bytes; it chains when it and every line before
/// it is a complete record with a good hash, the next `seq` and the previous line's hash as
/// `prev_hash` (the local copy verified already, so lines equal to its own chain).
fn walk(release: &Path, local: &Path, head_seq: Option<u64>) -> Result<Walk> {
    let mut rel = Lines::open(release)?;
    let mut loc = Lines::open(local)?;
    let head_seq = head_seq.unwrap_or(0);
    let mut out = Walk::default();
    let (mut chains, mut in_step) = (true, true);
    let mut prev = GENESIS_HASH.to_string();
    let mut line = 0u64;
    loop {
        line += 1;
        let (r, l) = (rel.next()?, loc.next()?);
        let Some((r_bytes, terminated)) = r else {
            // Past the release's end: only the local copy's line at the signed head matters.
            if line == head_seq {
                out.local_at_head = l.as_ref().and_then(|(b, _)| sealed_hash(b));
            }
            if l.is_none() || line >= head_seq {
                break;
            }
            continue;
        };
        let same = terminated && l.as_ref().is_some_and(|(b, _)| *b == r_bytes);
        if chains {
            chains = match same && in_step {
                // The local copy's own chain: nothing to check again.
                true => true,
                false => links(&r_bytes, terminated, line, &prev),
            };
            if chains {
                prev = sealed_hash(&r_bytes).unwrap_or_default();
            }
        }
        in_step &= same;
        if line == head_seq {
            out.release_at_head = chains.then(|| prev.clone());
            out.local_at_head = l.as_ref().and_then(|(b, _)| sealed_hash(b));
        }
        if same {
            continue;
        }
        match out.runs.last_mut() {
            Some(run) if run.to + 1 == line && run.chains == chains => run.to = line,
            _ => out.runs.push(Run {
                from: line,
                to: line,
                chains,
            }),
        }
    }
    Ok(out)
}

/// Whether `line` (number `seq`) is a complete record with a good hash whose `seq` and
/// `prev_hash` follow `prev`.
fn links(bytes: &[u8], terminated: bool, seq: u64, prev: &str) -> bool {
    if !terminated || canonical::check_line_hash(bytes).is_err() {
        return false;
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    value["seq"].as_u64() == Some(seq) && value["prev_hash"].as_str() == Some(prev)
}

fn sealed_hash(bytes: &[u8]) -> Option<String> {
    canonical::split_sealed(bytes).map(|(_, h)| String::from_utf8_lossy(h).into_owned())
}

/// The lines of a file (none when it is absent), each without its `\n` and whether it had one.
struct Lines {
    path: std::path::PathBuf,
    reader: Option<std::io::BufReader<std::fs::File>>,
    done: bool,
}

impl Lines {
    fn open(path: &Path) -> Result<Lines> {
        let reader = crate::ledger::open_existing(path)?
            .map(|f| std::io::BufReader::with_capacity(1 << 20, f));
        Ok(Lines {
            path: path.to_path_buf(),
            done: reader.is_none(),
            reader,
        })
    }

    fn next(&mut self) -> Result<Option<(Vec<u8>, bool)>> {
        let Some(reader) = self.reader.as_mut().filter(|_| !self.done) else {
            return Ok(None);
        };
        let mut line = Vec::new();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io(&self.path, &e))?;
        if n == 0 {
            self.done = true;
            return Ok(None);
        }
        let terminated = line.last() == Some(&b'\n');
        if terminated {
            line.pop();
        }
        Ok(Some((line, terminated)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::Heads;
    use crate::ledger::{self, Ledger};
    use crate::records::{Payload, Topup};

    fn topup(dir: &Path, reference: &str) {
        let (mut l, _) = Ledger::open(dir).unwrap();
        let t = Topup::new("acme", 5, "bank", reference, None, "ops");
        l.append(Stream::Billing, vec![Payload::new(t)]).unwrap();
    }

    fn heads_of(dir: &Path) -> Heads {
        Heads::of_report(&ledger::verify(dir).unwrap(), "acme/state", "tag", "k")
    }

    fn copy(from: &Path, to: &Path) {
        for s in Stream::ALL {
            let f = from.join(s.file_name());
            if f.exists() {
                std::fs::copy(&f, to.join(s.file_name())).unwrap();
            }
        }
    }

    fn billing(l: &[Lacking]) -> Vec<(u64, u64, Lack)> {
        l.iter()
            .filter(|x| x.file == "billing.jsonl")
            .map(|x| (x.from, x.to, x.lack))
            .collect()
    }

    #[test]
    fn signed_records_past_ones_and_refuted_ones_are_told_apart() {
        let (release, stale) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        topup(release.path(), "A");
        copy(release.path(), stale.path());
        topup(release.path(), "B");
        let signed = heads_of(release.path());
        topup(release.path(), "C");
        let (r, s) = (release.path(), stale.path());

        // Signed B (seq 2), and C past the signed head.
        let l = lacking(r, s, Some(&signed)).unwrap();
        assert_eq!(
            billing(&l),
            [(2, 2, Lack::Signed), (3, 3, Lack::Unverified)]
        );
        assert_eq!(l[0].to_string(), "billing.jsonl seq 2 (signed)");
        // Nothing verifies: all unverified. The release itself lacks nothing of itself.
        assert_eq!(
            billing(&lacking(r, s, None).unwrap()),
            [(2, 3, Lack::Unverified)]
        );
        assert!(lacking(r, r, Some(&signed)).unwrap().is_empty());

        // The release's B rewritten (re-chained or not): refuted where the local copy holds
        // the signed head, damaged from the bad line on when nothing refutes it.
        let good = tempfile::tempdir().unwrap();
        copy(r, good.path());
        let text = std::fs::read_to_string(r.join("billing.jsonl")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let forged = format!(
            "{}\n{}\n{}\n",
            lines[0],
            lines[1].replace("\"amount_credits\":5", "\"amount_credits\":9"),
            lines[2]
        );
        std::fs::write(r.join("billing.jsonl"), forged).unwrap();
        // Line 3 is the local copy's own line 3: held, whatever line 2 is.
        assert_eq!(
            billing(&lacking(r, good.path(), Some(&signed)).unwrap()),
            [(2, 2, Lack::Refuted)]
        );
        assert_eq!(
            billing(&lacking(r, s, None).unwrap()),
            [(2, 3, Lack::Damaged)]
        );
    }
}
