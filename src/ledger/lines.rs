//! Reading one recorded line back by its byte offset: from the file, or from lines staged after its end and not yet written (a group commit, a merge).
use std::fs::File;
use std::os::unix::fs::FileExt;

/// The offset of a key whose line is not known (recorded before the head a scan resumed
/// from).
pub(crate) const UNKNOWN_OFFSET: u64 = u64::MAX;

/// Where the lines of one ledger file are: bytes before `staged_at` in `file`, the rest in
/// `staged`.
#[derive(Clone, Copy)]
pub(crate) struct Lines<'a> {
    file: Option<&'a File>,
    staged: &'a [u8],
    staged_at: u64,
}

impl<'a> Lines<'a> {
    /// Every line is in `file`.
    pub fn on_disk(file: Option<&'a File>) -> Lines<'a> {
        Lines {
            file,
            staged: &[],
            staged_at: u64::MAX,
        }
    }

    /// Lines from `staged_at` on are in `staged`, the others in `file`.
    pub fn staged(file: &'a File, staged: &'a [u8], staged_at: u64) -> Lines<'a> {
        Lines {
            file: Some(file),
            staged,
            staged_at,
        }
    }

    /// Lines staged for a file whose head (with them) is at `head`: `staged` are its last
    /// bytes, the rest is in `file`.
    pub fn staged_before(file: &'a File, staged: &'a [u8], head: u64) -> Lines<'a> {
        Lines::staged(file, staged, head.saturating_sub(staged.len() as u64))
    }

    /// The line starting at `offset`, without its newline.
    pub fn line(&self, offset: u64) -> std::io::Result<Vec<u8>> {
        if offset >= self.staged_at {
            let start = usize::try_from(offset - self.staged_at)
                .ok()
                .filter(|s| *s < self.staged.len())
                .ok_or_else(|| past_the_end(offset))?;
            let rest = &self.staged[start..];
            return Ok(rest[..find_newline(rest).unwrap_or(rest.len())].to_vec());
        }
        let file = self.file.ok_or_else(|| past_the_end(offset))?;
        read_line_at(file, offset)
    }
}

fn past_the_end(offset: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("no line starts at byte {offset}"),
    )
}

/// The line of `file` starting at `offset` (up to its newline or the end of the file).
fn read_line_at(file: &File, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut pos = offset;
    loop {
        let n = match file.read_at(&mut buf, pos) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        if let Some(k) = find_newline(&buf[..n]) {
            line.extend_from_slice(&buf[..k]);
            break;
        }
        line.extend_from_slice(&buf[..n]);
        pos += n as u64;
        // Lines are at most a few MiB (SPEC §6 caps a record at 1 MiB): read more at a time.
        if buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
        }
    }
    if line.is_empty() {
        return Err(past_the_end(offset));
    }
    Ok(line)
}

/// Each complete line (ended by a newline) among the first `len` bytes of `file`, in order:
/// its number (from 1), its first byte and its bytes without the newline. The rare paths that
/// look a few records up by their content (an error message, a merge's refusal) read this way;
/// the scan is the reader that checks lines.
pub(crate) fn each_line(
    file: &File,
    len: u64,
    each: &mut dyn FnMut(u64, u64, &[u8]),
) -> std::io::Result<()> {
    const CHUNK: usize = 1 << 20;
    let mut buf = vec![0u8; CHUNK];
    let mut carry: Vec<u8> = Vec::new();
    let (mut pos, mut line_start, mut n_line) = (0u64, 0u64, 0u64);
    while pos < len {
        let want = usize::try_from((len - pos).min(CHUNK as u64)).unwrap_or(CHUNK);
        let n = match file.read_at(&mut buf[..want], pos) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        let mut s = 0;
        while let Some(k) = find_newline(&chunk[s..]) {
            n_line += 1;
            if carry.is_empty() {
                each(n_line, line_start, &chunk[s..s + k]);
            } else {
                carry.extend_from_slice(&chunk[s..s + k]);
                each(n_line, line_start, &carry);
                carry.clear();
            }
            s += k + 1;
            line_start = pos + s as u64;
        }
        carry.extend_from_slice(&chunk[s..]);
        pos += n as u64;
    }
    Ok(())
}

/// The number (from 1) of the line of `file` that starts at byte `offset` (the lines that
/// end before it, plus one).
pub(crate) fn line_number(file: &File, offset: u64) -> std::io::Result<u64> {
    let mut before = 0;
    each_line(file, offset, &mut |n, _, _| before = n)?;
    Ok(before + 1)
}

/// Word-at-a-time search for `\n` (std has no public memchr).
pub(crate) fn find_newline(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    let mut i = 0;
    while i + 8 <= s.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        let x = u64::from_le_bytes(w) ^ NL;
        if (x.wrapping_sub(LO) & !x & HI) != 0 {
            break;
        }
        i += 8;
    }
    s[i..].iter().position(|&c| c == b'\n').map(|p| p + i)
}

#[cfg(test)]
mod tests {
    use super::find_newline;

    #[test]
    fn newline_search() {
        assert_eq!(find_newline(b""), None);
        assert_eq!(find_newline(b"abc"), None);
        for n in 0..40 {
            let mut v = vec![b'x'; 40];
            v[n] = b'\n';
            assert_eq!(find_newline(&v), Some(n));
        }
    }
}
