//! Stable IDs: `[A-Za-z0-9_-]{1,64}`, case-sensitive (SPEC §2). Fails closed on anything else.

/// True when `id` is a valid platform ID.
pub fn is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A message explaining why `id` is not valid, or None.
pub fn check(id: &str) -> Option<String> {
    if is_valid(id) {
        None
    } else if id.is_empty() {
        Some("an ID must not be empty".into())
    } else if id.len() > 64 {
        Some(format!("ID '{id}' is longer than 64 characters"))
    } else {
        Some(format!(
            "ID '{id}' may contain only ASCII letters, digits, '_' and '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids() {
        assert!(super::is_valid("acme-01_X"));
        assert!(!super::is_valid(""));
        assert!(!super::is_valid("a/b"));
        assert!(!super::is_valid(&"a".repeat(65)));
        assert!(super::is_valid(&"a".repeat(64)));
    }
}
