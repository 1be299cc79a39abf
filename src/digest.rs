//! SHA-256 helpers: hex digests of bytes, files and streams (sha2 0.11 has no LowerHex).
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;

/// Lower-case hex of any byte slice.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// The first 12 hex digits: enough to tell digests apart in a message.
pub fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

/// SHA-256 of bytes, as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A read buffer size for a file of `len` bytes: the whole file plus one byte (so the read
/// that sees the end is the second), between 8 KiB and 1 MiB. Step outputs are mostly tiny:
/// a fixed 1 MiB buffer cost a zeroed allocation (memset and page faults) per small file.
pub fn read_chunk(len: u64) -> usize {
    usize::try_from(len)
        .unwrap_or(usize::MAX)
        .saturating_add(1)
        .clamp(8 << 10, 1 << 20)
}

/// SHA-256 and length of a file, streamed in chunks of at most 1 MiB (memory does not grow
/// with size).
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, &e))?;
    sha256_opened(file, path)
}

/// SHA-256 and length of a file already open (`path` names it in errors), streamed as
/// `sha256_file` does.
pub fn sha256_opened(mut file: std::fs::File, path: &Path) -> Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let len = file.metadata().map_or(1 << 20, |m| m.len());
    let mut buf = vec![0u8; read_chunk(len)];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, &e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex(&hasher.finalize()), total))
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }
    /// The inner writer, the hex digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
