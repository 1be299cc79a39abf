//! A step's stdout.log / stderr.log as the module's output streams in: redacted as it
//! arrives, cut at 16 MiB per stream (after redaction), ended by a line saying what was
//! dropped, and digested as written (the file is never read back).
use super::FileRecord;
use crate::redact::{Redactor, StreamRedactor};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bytes of each stream a step keeps.
pub const LOG_CAP: u64 = 16 << 20;

/// One log being written.
pub struct LogSink<'a> {
    name: &'static str,
    path: PathBuf,
    file: File,
    redact: StreamRedactor<'a>,
    cap: u64,
    kept: u64,
    dropped: u64,
    last: Option<u8>,
    hasher: Sha256,
    /// Bytes written (what `hasher` digested): the record's size, without a `stat`.
    written: u64,
    error: Option<String>,
}

impl<'a> LogSink<'a> {
    /// A fresh file at `path`: whatever was there (a previous attempt's log, or a link a
    /// module planted) is removed, and the new one is created exclusively, never followed.
    pub fn create(
        name: &'static str,
        path: &Path,
        redactor: &'a Redactor,
        cap: u64,
    ) -> std::io::Result<Self> {
        let create = || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
        };
        let file = match create() {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(path)?;
                create()?
            }
            other => other?,
        };
        Ok(LogSink {
            name,
            path: path.to_path_buf(),
            file,
            redact: redactor.stream(),
            cap,
            kept: 0,
            dropped: 0,
            last: None,
            hasher: Sha256::new(),
            written: 0,
            error: None,
        })
    }

    fn full(&self) -> bool {
        self.kept >= self.cap
    }

    /// Take the next piece of the stream.
    pub fn feed(&mut self, data: &[u8]) {
        if self.full() {
            // Past the cap nothing is kept, so nothing needs redacting: count and move on.
            self.dropped += data.len() as u64;
            return;
        }
        let out = self.redact.push(data);
        self.keep(&out);
        if self.full() {
            self.dropped += self.redact.pending_len() as u64;
        }
    }

    /// Write what fits under the cap; count the rest as dropped.
    fn keep(&mut self, out: &[u8]) {
        let room = usize::try_from(self.cap - self.kept).unwrap_or(usize::MAX);
        let (now, over) = out.split_at(out.len().min(room));
        self.write(now);
        self.kept += now.len() as u64;
        self.dropped += over.len() as u64;
    }

    fn write(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.error.is_some() {
            return;
        }
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.hasher.update(bytes);
                self.written += bytes.len() as u64;
                self.last = bytes.last().copied();
            }
            Err(e) => self.error = Some(format!("{}: {e}", self.path.display())),
        }
    }

    /// The end of the stream: the held-back tail, the note on what was dropped, the record.
    /// Err names a write that failed (the log is then incomplete).
    pub fn finish(mut self, base: &Path) -> Result<FileRecord, String> {
        if !self.full() {
            let rest = self.redact.finish();
            self.keep(&rest);
        }
        if self.dropped > 0 {
            let sep = if self.last == Some(b'\n') { "" } else { "\n" };
            let note = format!(
                "{sep}[platform] {} bytes of {} dropped: a step keeps the first {} of each stream\n",
                self.dropped,
                self.name,
                size(self.cap)
            );
            self.write(note.as_bytes());
        }
        if let Some(e) = self.error {
            return Err(e);
        }
        let rel = self.path.strip_prefix(base).unwrap_or(&self.path);
        Ok(FileRecord {
            id: self.name.to_string(),
            path: rel.display().to_string(),
            bytes: self.written,
            sha256: crate::digest::hex(&self.hasher.finalize()),
            files: None,
        })
    }
}

/// "16 MiB", or a byte count when it is not whole MiB.
fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(dir: &Path) -> String {
        String::from_utf8(std::fs::read(dir.join("out.log")).unwrap()).unwrap()
    }

    #[test]
    fn redacts_before_the_cut_and_says_what_was_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let r = Redactor::new(vec!["SECRET-VALUE".to_string()]);
        let mut sink = LogSink::create("stdout", &dir.path().join("out.log"), &r, 16).unwrap();
        for piece in [&b"abcdef SEC"[..], b"RET-VALUE and more text"] {
            sink.feed(piece);
        }
        let rec = sink.finish(dir.path()).unwrap();
        let text = read(dir.path());
        // 16 bytes of the redacted stream "abcdef [REDACTED] and more text", then the note.
        assert!(text.starts_with("abcdef [REDACTED"), "{text}");
        assert!(!text.contains("SEC"), "{text}");
        assert!(
            text.ends_with("\n[platform] 15 bytes of stdout dropped: a step keeps the first 16 bytes of each stream\n"),
            "{text}"
        );
        assert_eq!(rec.bytes, text.len() as u64);
        assert_eq!(rec.sha256, crate::digest::sha256_hex(text.as_bytes()));
        assert_eq!(rec.path, "out.log");
    }

    #[test]
    fn a_short_stream_is_kept_whole_without_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let r = Redactor::default();
        let mut sink = LogSink::create("stderr", &dir.path().join("out.log"), &r, LOG_CAP).unwrap();
        sink.feed(b"hello\n");
        sink.finish(dir.path()).unwrap();
        assert_eq!(read(dir.path()), "hello\n");
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_link_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim.txt");
        std::fs::write(&target, "keep me").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("out.log")).unwrap();
        let r = Redactor::default();
        let mut sink = LogSink::create("stdout", &dir.path().join("out.log"), &r, LOG_CAP).unwrap();
        sink.feed(b"log line\n");
        sink.finish(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        assert_eq!(read(dir.path()), "log line\n");
    }
}
