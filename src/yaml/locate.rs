//! Finds the line of a field in block-style YAML text, so findings can say `file:line`.
//!
//! Schema and semantic checks run on parsed values, which carry no positions; this walks the
//! text by indentation instead. It understands block mappings and sequences (what platform
//! files use); inside flow collections it returns the line of the enclosing key.

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A parsed path like `steps[2].inputs.text` or a JSON pointer `/steps/2/inputs/text`.
pub fn parse_path(path: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    if let Some(ptr) = path.strip_prefix('/') {
        for raw in ptr.split('/') {
            let part = raw.replace("~1", "/").replace("~0", "~");
            match part.parse::<usize>() {
                Ok(i) => segs.push(Seg::Index(i)),
                Err(_) => segs.push(Seg::Key(part)),
            }
        }
        return segs;
    }
    for part in path.split('.') {
        let mut rest = part;
        if let Some(b) = rest.find('[') {
            if b > 0 {
                segs.push(Seg::Key(rest[..b].to_string()));
            }
            rest = &rest[b..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let end = stripped.find(']').unwrap_or(stripped.len());
                if let Ok(i) = stripped[..end].trim().parse::<usize>() {
                    segs.push(Seg::Index(i));
                }
                rest = stripped.get(end + 1..).unwrap_or("");
            }
        } else if !rest.is_empty() {
            segs.push(Seg::Key(rest.to_string()));
        }
    }
    segs
}

/// Whether two field paths (`steps[0].kind`, `steps[0]`) name the same value or one holds
/// the other.
pub fn overlaps(a: &str, b: &str) -> bool {
    let (a, b) = (parse_path(a), parse_path(b));
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// Render segments as `steps[2].inputs.text`.
pub fn render_path(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A logical line: a sequence dash or a `key:` entry, with its indentation column.
#[derive(Debug)]
struct Entry {
    line: usize,
    indent: usize,
    dash: bool,
    key: Option<String>,
}

fn entries(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let mut indent = raw.len() - trimmed.len();
        let mut rest = trimmed;
        // "- - key: v" and "- key: v": each dash opens an item; the key sits past it.
        while rest == "-" || rest.starts_with("- ") {
            out.push(Entry {
                line: n + 1,
                indent,
                dash: true,
                key: None,
            });
            let after = rest[1..].trim_start();
            indent += rest.len() - after.len();
            rest = after;
            if rest.is_empty() {
                break;
            }
        }
        if rest.is_empty() {
            continue;
        }
        out.push(Entry {
            line: n + 1,
            indent,
            dash: false,
            key: key_of(rest),
        });
    }
    out
}

fn key_of(s: &str) -> Option<String> {
    let (k, _) = if let Some(q) = s.strip_prefix('"') {
        let end = q.find('"')?;
        let after = &q[end + 1..];
        if !after.trim_start().starts_with(':') {
            return None;
        }
        return Some(q[..end].to_string());
    } else if let Some(q) = s.strip_prefix('\'') {
        let end = q.find('\'')?;
        let after = &q[end + 1..];
        if !after.trim_start().starts_with(':') {
            return None;
        }
        return Some(q[..end].to_string());
    } else {
        let pos = s
            .find(": ")
            .or_else(|| s.strip_suffix(':').map(|k| k.len()))?;
        (&s[..pos], ())
    };
    Some(k.trim().to_string())
}

/// The 1-based line where `path` is written in `text`, or the closest enclosing line found.
pub fn line_of(text: &str, path: &[Seg]) -> Option<usize> {
    let es = entries(text);
    let mut lo = 0usize;
    let mut hi = es.len();
    // Entries of the current node are those in [lo, hi) with indent == base.
    let mut base = es.get(lo).map(|e| e.indent)?;
    let mut found: Option<usize> = None;
    for seg in path {
        let mut hit = None;
        let mut count = 0usize;
        for (i, e) in es.iter().enumerate().take(hi).skip(lo) {
            if e.indent != base {
                continue;
            }
            match seg {
                Seg::Key(k) if !e.dash && e.key.as_deref() == Some(k.as_str()) => {
                    hit = Some(i);
                    break;
                }
                Seg::Index(want) if e.dash => {
                    if count == *want {
                        hit = Some(i);
                        break;
                    }
                    count += 1;
                }
                _ => {}
            }
        }
        let Some(i) = hit else { break };
        found = Some(es[i].line);
        // The node's children: following entries indented deeper, until one that is not.
        let start = i + 1;
        let mut end = start;
        while end < hi && es[end].indent > es[i].indent {
            end += 1;
        }
        if es[i].dash {
            // An item's first key sits on the dash line at a deeper indent: include it.
            lo = start;
            hi = end;
        } else {
            lo = start;
            hi = end;
        }
        match es.get(lo) {
            Some(e) if lo < hi => base = e.indent,
            _ => break,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "work_order_id: wo1\nsteps:\n  - step_id: a\n    module_id: m\n    inputs:\n      text: hi\n  - step_id: b\n    inputs:\n      x: {from_step: a}\n";

    #[test]
    fn finds_nested_lines() {
        assert_eq!(line_of(DOC, &parse_path("work_order_id")), Some(1));
        assert_eq!(line_of(DOC, &parse_path("steps[0].module_id")), Some(4));
        assert_eq!(line_of(DOC, &parse_path("steps[0].step_id")), Some(3));
        assert_eq!(line_of(DOC, &parse_path("steps[1].inputs.x")), Some(9));
        assert_eq!(
            line_of(DOC, &parse_path("/steps/1/inputs/x/from_step")),
            Some(9)
        );
        assert_eq!(line_of(DOC, &parse_path("steps[0].inputs.text")), Some(6));
        assert_eq!(line_of(DOC, &parse_path("steps[5]")), Some(2));
    }

    #[test]
    fn overlapping_paths() {
        assert!(overlaps("steps[0]", "steps[0].kind"));
        assert!(overlaps("steps[0].kind", "steps[0]"));
        assert!(overlaps("", "module_id"));
        assert!(!overlaps("steps[0].kind", "steps[1].kind"));
        assert!(!overlaps("inputs[0].id", "inputs[0].default"));
        assert!(!overlaps("module", "module_id"));
    }

    #[test]
    fn paths_round_trip() {
        let p = parse_path("steps[2].inputs.text");
        assert_eq!(render_path(&p), "steps[2].inputs.text");
    }
}
