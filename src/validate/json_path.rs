//! Static syntax check of a binding's `json_path` (`$.a.b[0]`, leading `$`/`.` optional, or a JSON pointer `/a/b/0`); the lookup itself is workorder::bindings'.

/// One step into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonSeg {
    Key(String),
    Index(usize),
}

/// Parse `$.a.b[0].c`, `a[0].b`, `.a` or `/a/0/c`; `$` alone is the whole document.
pub fn parse(path: &str) -> Result<Vec<JsonSeg>, String> {
    let bad = |why: &str| format!("json_path '{path}' {why}; write it like $.key.list[0].field");
    let mut rest = path.trim();
    if rest.is_empty() {
        return Err(bad("is empty"));
    }
    if let Some(ptr) = rest.strip_prefix('/') {
        // JSON pointer: every segment is a key or an index; `~1` and `~0` escape '/' and '~'.
        return Ok(ptr
            .split('/')
            .map(|raw| {
                let part = raw.replace("~1", "/").replace("~0", "~");
                match part.parse::<usize>() {
                    Ok(i) => JsonSeg::Index(i),
                    Err(_) => JsonSeg::Key(part),
                }
            })
            .collect());
    }
    rest = rest.strip_prefix('$').unwrap_or(rest);
    let mut segs = Vec::new();
    // A key may start the path without a dot (`a.b`), but not follow `]` or a key without one.
    let mut need_dot = false;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or_else(|| bad("has '[' without ']'"))?;
            let idx: usize = after[..end]
                .trim()
                .parse()
                .map_err(|_| bad("has an index that is not a non-negative integer"))?;
            segs.push(JsonSeg::Index(idx));
            rest = &after[end + 1..];
            need_dot = true;
            continue;
        }
        let body = match rest.strip_prefix('.') {
            Some(b) => b,
            None if !need_dot => rest,
            None => return Err(bad("needs '.' before a key")),
        };
        let end = body.find(['.', '[']).unwrap_or(body.len());
        let key = &body[..end];
        if key.is_empty() {
            return Err(bad("has an empty key"));
        }
        if key.contains(']') {
            return Err(bad("has ']' without '['"));
        }
        segs.push(JsonSeg::Key(key.to_string()));
        rest = &body[end..];
        need_dot = true;
    }
    Ok(segs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let k = |s: &str| JsonSeg::Key(s.into());
        assert_eq!(parse("$"), Ok(vec![]));
        assert_eq!(parse("$.a.b"), Ok(vec![k("a"), k("b")]));
        assert_eq!(parse("a[0].b"), Ok(vec![k("a"), JsonSeg::Index(0), k("b")]));
        assert_eq!(parse(".a"), Ok(vec![k("a")]));
        assert_eq!(parse("$[2]"), Ok(vec![JsonSeg::Index(2)]));
        assert_eq!(parse("/a/0"), Ok(vec![k("a"), JsonSeg::Index(0)]));
    }

    #[test]
    fn refuses_malformed_paths() {
        for p in ["", "$.", "a..b", "a[x]", "a[1", "a]b", "a[0]b"] {
            assert!(parse(p).is_err(), "{p}");
        }
    }
}
