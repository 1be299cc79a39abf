//! Secret redaction: every byte covered by an occurrence of a secret (value, trimmed, lines,
//! escaped forms) is masked before text leaves the process, whole or streamed piece by piece.
use memchr::memmem::Finder;

pub const MASK: &str = "[REDACTED]";

/// One secret value and its searcher.
#[derive(Debug, Clone)]
struct Secret {
    text: String,
    finder: Finder<'static>,
}

/// Masks secret values. Every byte that any occurrence of any secret covers is hidden (the
/// union of the occurrences, overlapping ones included), each maximal covered run replaced
/// by one `[REDACTED]`: no fragment of a secret survives, whatever the overlaps.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<Secret>,
}

impl Redactor {
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut r = Redactor::default();
        for v in values {
            for text in texts_of(&v) {
                for form in escaped_forms(text) {
                    r.add(&form);
                }
            }
        }
        r
    }
    /// Values shorter than 4 bytes would redact ordinary text everywhere; such secrets are
    /// still passed to modules but cannot be hidden meaningfully in logs.
    fn add(&mut self, value: &str) {
        if value.len() >= 4 && !self.secrets.iter().any(|s| s.text == value) {
            self.secrets.push(Secret {
                text: value.to_string(),
                finder: Finder::new(value.as_bytes()).into_owned(),
            });
        }
    }
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
    fn longest(&self) -> usize {
        self.secrets.iter().map(|s| s.text.len()).max().unwrap_or(0)
    }
    /// A redactor for one stream: feed it pieces, then call `finish`.
    pub fn stream(&self) -> StreamRedactor<'_> {
        StreamRedactor {
            redactor: self,
            pending: Vec::new(),
            cover_end: 0,
            in_mask: false,
        }
    }
    /// Redact bytes that may not be UTF-8 (logs, files).
    pub fn redact_bytes(&self, data: &[u8]) -> Vec<u8> {
        let mut s = self.stream();
        let mut out = s.push(data);
        out.extend(s.finish());
        out
    }
    pub fn redact(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_string();
        }
        // Secrets are UTF-8, so masked runs start and end on character boundaries.
        let out = self.redact_bytes(text.as_bytes());
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
    }
}

/// The texts of one secret value that are masked: the value, the value without surrounding
/// whitespace (a secret set from a file ends in a newline, which a module strips before it
/// uses, and prints, the token), and each line of a multi-line value (a PEM key: GitHub masks
/// such secrets line by line), trimmed too. Those under 4 bytes are left out (`add`).
fn texts_of(value: &str) -> Vec<&str> {
    let mut texts = vec![value, value.trim()];
    if value.trim().contains('\n') {
        texts.extend(value.lines().map(str::trim));
    }
    texts
}

/// A secret as written and as quoting writes it, wherever that differs: JSON (`\"`, `\\`,
/// `\n`, `\u001b`), JSON with non-ASCII escaped (Python's `json.dumps`), and Rust's
/// `escape_debug` (also `\'`). Text quoted that way before it is redacted (a result.json
/// that does not parse, a module printing JSON, a refusal naming a file) keeps no secret.
fn escaped_forms(value: &str) -> Vec<String> {
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json
        .get(1..json.len().saturating_sub(1))
        .unwrap_or_default()
        .to_string();
    let mut ascii = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    // Equal forms are added once (`Redactor::add`).
    vec![
        value.to_string(),
        json,
        ascii,
        value.escape_debug().to_string(),
    ]
}

/// Redacts a stream read in pieces: a secret split across two pieces is still caught, since
/// the last len(longest secret) - 1 bytes are held back until the next piece (or `finish`)
/// decides whether an occurrence starts there. Memory is that tail plus one piece.
pub struct StreamRedactor<'a> {
    redactor: &'a Redactor,
    /// Bytes not yet emitted.
    pending: Vec<u8>,
    /// End (relative to `pending`) of the coverage of occurrences already seen.
    cover_end: usize,
    /// Whether the last emitted output was a mask (a covered run continuing across pieces
    /// gets one mask).
    in_mask: bool,
}

impl StreamRedactor<'_> {
    /// The redacted output that `data` makes final.
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        if self.redactor.is_empty() {
            return data.to_vec();
        }
        self.pending.extend_from_slice(data);
        let keep = self.redactor.longest() - 1;
        let ready = self.pending.len().saturating_sub(keep);
        self.emit(ready)
    }
    /// The rest, at the end of the stream.
    pub fn finish(&mut self) -> Vec<u8> {
        let all = self.pending.len();
        self.emit(all)
    }
    /// Raw bytes held back, not yet emitted.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Emit the first `ready` pending bytes, masked. Every occurrence that starts before
    /// `ready` lies wholly in `pending` (it holds at least len(longest) - 1 more bytes), so
    /// the coverage of those bytes is final.
    fn emit(&mut self, ready: usize) -> Vec<u8> {
        let buf = &self.pending;
        let mut spans = occurrences(&self.redactor.secrets, buf, ready);
        spans.sort_unstable();
        let mut out = Vec::with_capacity(ready + MASK.len());
        let mut cover = self.cover_end;
        let (mut i, mut next_span) = (0, 0);
        while i < ready {
            while next_span < spans.len() && spans[next_span].0 <= i {
                cover = cover.max(spans[next_span].1);
                next_span += 1;
            }
            if i < cover {
                if !self.in_mask {
                    out.extend_from_slice(MASK.as_bytes());
                    self.in_mask = true;
                }
                i = cover.min(ready);
            } else {
                let end = spans.get(next_span).map_or(ready, |s| s.0.min(ready));
                out.extend_from_slice(&buf[i..end]);
                self.in_mask = false;
                i = end;
            }
        }
        // Occurrences that start inside the last masked run extend it past `ready`.
        for s in &spans[next_span..] {
            cover = cover.max(s.1);
        }
        self.cover_end = cover.saturating_sub(ready);
        self.pending.drain(..ready);
        out
    }
}

/// Every occurrence (overlapping ones too) of every secret that starts before `ready`, as
/// (start, end).
fn occurrences(secrets: &[Secret], buf: &[u8], ready: usize) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for s in secrets {
        let mut from = 0;
        while from < ready {
            match s.finder.find(&buf[from..]) {
                Some(at) if from + at < ready => {
                    spans.push((from + at, from + at + s.text.len()));
                    from += at + 1;
                }
                _ => break,
            }
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_text_and_bytes() {
        let r = Redactor::new(vec!["s3cr3t-value".to_string(), "s3cr3t".to_string()]);
        assert_eq!(
            r.redact("a s3cr3t-value b s3cr3t"),
            "a [REDACTED] b [REDACTED]"
        );
        assert_eq!(
            r.redact_bytes(b"x\xffs3cr3t\xfe"),
            b"x\xff[REDACTED]\xfe".to_vec()
        );
    }

    #[test]
    fn a_secret_is_masked_in_its_escaped_forms_too() {
        let secret = "p\"w\\d'é\tx";
        let r = Redactor::new(vec![secret.to_string()]);
        for quoted in [
            serde_json::to_string(secret).unwrap(),
            r#""p\"w\\d'\u00e9\tx""#.to_string(),
            format!("'{}'", secret.escape_debug()),
            format!("<{secret}>"),
        ] {
            let out = r.redact(&quoted);
            assert_eq!(out.len(), "[REDACTED]".len() + 2, "{quoted} -> {out}");
        }
    }

    #[test]
    fn a_secret_is_masked_trimmed_and_line_by_line() {
        let r = Redactor::new(vec![
            "tok_5f1c2e9a7b3d\n".to_string(),
            " -----BEGIN-----\r\nline-one\n\nab\n-----END-----\n".to_string(),
        ]);
        assert_eq!(
            r.redact("token tok_5f1c2e9a7b3d was refused"),
            "token [REDACTED] was refused"
        );
        assert_eq!(r.redact("key line-one, ab"), "key [REDACTED], ab");
        assert_eq!(r.redact("\"line-one\\nab\""), "\"[REDACTED]\\nab\"");
    }

    #[test]
    fn overlapping_secrets_leave_no_fragment() {
        let r = Redactor::new(vec!["abcd".to_string(), "cdefgh".to_string()]);
        assert_eq!(r.redact("xabcdefghy"), "x[REDACTED]y");
        let r = Redactor::new(vec!["aaaa".to_string()]);
        assert_eq!(r.redact("baaaaaab"), "b[REDACTED]b");
    }

    #[test]
    fn a_secret_split_across_pieces_is_caught_at_every_split() {
        let r = Redactor::new(vec!["ghp_split-secret".to_string(), "tail".to_string()]);
        let text = b"head ghp_split-secret mid ghp_split-secretghp_split-secret end tail";
        let whole = r.redact_bytes(text);
        for a in 0..text.len() {
            for b in a..text.len() {
                let mut s = r.stream();
                let mut out = s.push(&text[..a]);
                out.extend(s.push(&text[a..b]));
                out.extend(s.push(&text[b..]));
                out.extend(s.finish());
                assert_eq!(out, whole, "split at {a}, {b}");
            }
        }
        assert_eq!(
            String::from_utf8(whole).unwrap(),
            "head [REDACTED] mid [REDACTED] end [REDACTED]"
        );
    }

    #[test]
    fn one_byte_pieces_hold_back_only_a_tail() {
        let r = Redactor::new(vec!["0123456789".to_string()]);
        let mut s = r.stream();
        let mut out = Vec::new();
        for b in b"xx0123456789yy".iter().chain(b"z".repeat(100).iter()) {
            out.extend(s.push(&[*b]));
            assert!(s.pending_len() <= 9);
        }
        out.extend(s.finish());
        assert_eq!(
            out,
            [b"xx[REDACTED]yy".as_slice(), &b"z".repeat(100)].concat()
        );
    }
}
