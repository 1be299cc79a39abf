//! Secret redaction: every secret value is replaced before text leaves the process.

/// Replaces secret values with `[REDACTED]`. Longest first, so a secret that contains
/// another is hidden whole.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

pub const MASK: &str = "[REDACTED]";

impl Redactor {
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        // Values shorter than 4 bytes would redact ordinary text everywhere; such secrets are
        // still passed to modules but cannot be hidden meaningfully in logs.
        let mut secrets: Vec<String> = values.into_iter().filter(|v| v.len() >= 4).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }
    pub fn add(&mut self, value: &str) {
        if value.len() >= 4 && !self.secrets.iter().any(|s| s == value) {
            self.secrets.push(value.to_string());
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }
    /// Redact bytes that may not be UTF-8 (logs): secret byte strings are replaced in place.
    pub fn redact_bytes(&self, data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        for s in &self.secrets {
            let needle = s.as_bytes();
            if needle.is_empty() || out.len() < needle.len() {
                continue;
            }
            let mut res = Vec::with_capacity(out.len());
            let mut i = 0;
            while i < out.len() {
                if out[i..].starts_with(needle) {
                    res.extend_from_slice(MASK.as_bytes());
                    i += needle.len();
                } else {
                    res.push(out[i]);
                    i += 1;
                }
            }
            out = res;
        }
        out
    }
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
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
}
