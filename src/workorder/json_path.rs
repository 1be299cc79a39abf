//! A binding's `json_path` (`$.a.b[0]`, leading `$`/`.` optional, or a JSON pointer `/a/b/0`): one parser for validation and execution, and the lookup it means.
use std::fmt;

/// One step into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonSeg {
    Key(String),
    Index(usize),
}

/// A parsed `json_path`: what `consistency-validate` accepts is exactly what a run applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    /// As written, for messages.
    text: String,
    segs: Vec<JsonSeg>,
}

impl JsonPath {
    /// Parse `$.a.b[0].c`, `a[0].b`, `.a` or `/a/0/c`; `$` alone is the whole document.
    pub fn parse(path: &str) -> Result<JsonPath, String> {
        let bad =
            |why: &str| format!("json_path '{path}' {why}; write it like $.key.list[0].field");
        let rest = path.trim();
        if rest.is_empty() {
            return Err(bad("is empty"));
        }
        let segs = match rest.strip_prefix('/') {
            Some(ptr) => pointer(ptr),
            None => dotted(rest.strip_prefix('$').unwrap_or(rest)).map_err(bad)?,
        };
        Ok(JsonPath {
            text: path.to_string(),
            segs,
        })
    }

    pub fn segments(&self) -> &[JsonSeg] {
        &self.segs
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value the path names in `v`. A key that is a number also indexes an array (`a.0`);
    /// an index never names an object's key.
    pub fn apply(&self, v: &serde_json::Value) -> Result<serde_json::Value, String> {
        use serde_json::Value;
        let mut cur = v;
        for seg in &self.segs {
            cur = match (seg, cur) {
                (JsonSeg::Key(k), Value::Object(m)) => m.get(k),
                (JsonSeg::Index(i), Value::Array(a)) => a.get(*i),
                (JsonSeg::Key(k), Value::Array(a)) => {
                    k.parse::<usize>().ok().and_then(|i| a.get(i))
                }
                _ => None,
            }
            .ok_or_else(|| format!("json_path '{}' does not match the document", self.text))?;
        }
        Ok(cur.clone())
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A JSON pointer's segments: each a key or an index; `~1` and `~0` escape '/' and '~'.
fn pointer(ptr: &str) -> Vec<JsonSeg> {
    ptr.split('/')
        .map(|raw| {
            let part = raw.replace("~1", "/").replace("~0", "~");
            match part.parse::<usize>() {
                Ok(i) => JsonSeg::Index(i),
                Err(_) => JsonSeg::Key(part),
            }
        })
        .collect()
}

/// `.a.b[0]` after the `$`. A key may start the path without a dot (`a.b`), but not follow
/// `]` or a key without one.
fn dotted(mut rest: &str) -> Result<Vec<JsonSeg>, &'static str> {
    let mut segs = Vec::new();
    let mut need_dot = false;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or("has '[' without ']'")?;
            let idx = after[..end]
                .trim()
                .parse()
                .map_err(|_| "has an index that is not a non-negative integer")?;
            segs.push(JsonSeg::Index(idx));
            rest = &after[end + 1..];
            need_dot = true;
            continue;
        }
        let body = match rest.strip_prefix('.') {
            Some(b) => b,
            None if !need_dot => rest,
            None => return Err("needs '.' before a key"),
        };
        let end = body.find(['.', '[']).unwrap_or(body.len());
        let key = &body[..end];
        if key.is_empty() {
            return Err("has an empty key");
        }
        if key.contains(']') {
            return Err("has ']' without '['");
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
    use serde_json::json;

    fn segs(p: &str) -> Result<Vec<JsonSeg>, String> {
        JsonPath::parse(p).map(|p| p.segments().to_vec())
    }

    #[test]
    fn parses_the_documented_forms() {
        let k = |s: &str| JsonSeg::Key(s.into());
        assert_eq!(segs("$"), Ok(vec![]));
        assert_eq!(segs("$.a.b"), Ok(vec![k("a"), k("b")]));
        assert_eq!(segs("a[0].b"), Ok(vec![k("a"), JsonSeg::Index(0), k("b")]));
        assert_eq!(segs(".a"), Ok(vec![k("a")]));
        assert_eq!(segs("$[2]"), Ok(vec![JsonSeg::Index(2)]));
        assert_eq!(segs("/a/0"), Ok(vec![k("a"), JsonSeg::Index(0)]));
    }

    #[test]
    fn refuses_malformed_paths() {
        for p in ["", "$.", "a..b", "a[x]", "a[1", "a]b", "a[0]b"] {
            assert!(JsonPath::parse(p).is_err(), "{p}");
        }
    }

    #[test]
    fn applies_what_it_parsed() {
        let doc = json!({"a": {"b": [1, {"c": "x"}]}, "0": "key"});
        let at = |p: &str| JsonPath::parse(p).and_then(|p| p.apply(&doc));
        assert_eq!(at("$"), Ok(doc.clone()));
        assert_eq!(at("$.a.b[1].c"), Ok(json!("x")));
        assert_eq!(at("a.b.0"), Ok(json!(1)), "a numeric key indexes an array");
        assert_eq!(at("/a/b/1/c"), Ok(json!("x")));
        assert!(at("/0").is_err(), "an index never names an object's key");
        let miss = at("$.a.z").unwrap_err();
        assert!(miss.contains("'$.a.z' does not match"), "{miss}");
    }
}
