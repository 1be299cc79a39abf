//! The module's result file (`$PLATFORM_RESULT`): read with a cap, never through a link or
//! from a FIFO, rewritten without secrets; and the bounds on what of it reaches the ledger.
use crate::beneath::Beneath;
use crate::redact::Redactor;
use std::io::Read;
use std::path::Path;

/// The result file's name in the step's folder.
pub const RESULT_FILE: &str = "result.json";

/// Bytes of result.json the platform reads.
pub const RESULT_CAP: u64 = 1 << 20;
/// Characters of a step's message that are recorded.
pub const MESSAGE_CAP: usize = 4_000;
/// Bytes (as JSON) of a step's value outputs that are recorded: with the message and the
/// rest of a step outcome, a ledger line stays under 1 MiB.
pub const VALUES_CAP: usize = 512 << 10;
/// How deep a value output may nest. A record holds a value two levels down
/// (`values.<id>`), and the ledger's reader refuses a line nested deeper than 64
/// (`ledger::line`): a deeper value, once written, would make the ledger unreadable for
/// every tenant.
pub const VALUES_DEPTH_CAP: usize = 32;

pub type ResultObject = serde_json::Map<String, serde_json::Value>;

/// The result file's bytes, if it is a regular file within the cap. Opened without
/// following a link and without blocking on a FIFO; anything else is an error message.
fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "PLATFORM_RESULT file cannot be opened (a link?): {e}"
            ))
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("PLATFORM_RESULT file: {e}"))?;
    if !meta.is_file() {
        return Err("PLATFORM_RESULT is not a regular file".into());
    }
    if meta.len() > RESULT_CAP {
        return Err(format!(
            "PLATFORM_RESULT file is larger than {} MiB",
            RESULT_CAP >> 20
        ));
    }
    let mut bytes = Vec::new();
    file.take(RESULT_CAP + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("PLATFORM_RESULT file: {e}"))?;
    if bytes.len() as u64 > RESULT_CAP {
        return Err(format!(
            "PLATFORM_RESULT file is larger than {} MiB",
            RESULT_CAP >> 20
        ));
    }
    Ok(Some(bytes))
}

/// The optional result object of the step whose folder is `step` (reached through no link:
/// a module may swap its step's folder for a link to another's). The file is left without
/// secrets whatever it held: rewritten redacted when it was read, removed when it could not
/// be (too large, not a file).
pub fn read(step: &Beneath, redactor: &Redactor) -> Result<Option<ResultObject>, String> {
    let dir = step
        .open_folder()
        .map_err(|r| format!("the step's folder cannot be read: {r}"))?;
    let path = step.via(&dir).join(RESULT_FILE);
    let path = path.as_path();
    let bytes = match read_capped(path) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(why) => {
            let _ = crate::beneath::remove_tree(path);
            return Err(why);
        }
    };
    let parsed = parse_unique(&bytes, redactor);
    scrub_file(path, &bytes, parsed.as_ref().ok(), redactor);
    match parsed {
        Ok(serde_json::Value::Object(m)) => check_shape(&m).map(|()| Some(m)),
        Ok(_) => Err("PLATFORM_RESULT file is not a JSON object".into()),
        Err(e) => Err(format!("PLATFORM_RESULT file is not valid JSON: {e}")),
    }
}

/// The protocol's fields have the protocol's types (SPEC §2 "Command-module protocol"). A
/// module that wrote `"status": "failed"` or a message that is not text meant something the
/// platform cannot know: the step fails closed (`module_failed`, refunded) instead of
/// completing, or losing the field, on a guess. Other keys are the module's own business.
fn check_shape(m: &ResultObject) -> Result<(), String> {
    use serde_json::Value;
    let wrong = |field: &str, want: &str, got: &Value| {
        Err(format!(
            "PLATFORM_RESULT file: `{field}` must be {want}, not {}",
            json_type(got)
        ))
    };
    for (field, v) in m {
        match (field.as_str(), v) {
            ("status", Value::String(s)) if s == "COMPLETED" || s == "FAILED" => {}
            ("status", Value::String(_)) => return Err(
                "PLATFORM_RESULT file: `status` must be \"COMPLETED\" or \"FAILED\" (upper case)"
                    .into(),
            ),
            ("status", other) => return wrong(field, "\"COMPLETED\" or \"FAILED\"", other),
            ("reason_slug" | "message", Value::String(_)) => {}
            ("reason_slug" | "message", other) => return wrong(field, "a string", other),
            ("values", Value::Object(_)) => {}
            ("values", other) => return wrong(field, "an object of value output id: JSON", other),
            _ => {}
        }
    }
    Ok(())
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A JSON value whose objects have no key twice, at any depth. serde_json keeps the last of
/// two equal keys; `{"status": "FAILED", "status": "COMPLETED"}` has no one meaning, and
/// other readers of the same file may take the first.
fn parse_unique(bytes: &[u8], redactor: &Redactor) -> serde_json::Result<serde_json::Value> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Unique(redactor).deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// The seed and visitor of [`parse_unique`]: the redactor masks a key quoted in the error
/// before it is cut and JSON-escaped (either would hide a secret from redaction afterwards).
#[derive(Clone, Copy)]
struct Unique<'r>(&'r Redactor);

impl<'de> serde::de::DeserializeSeed<'de> for Unique<'_> {
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Unique<'_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(b.into())
    }
    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(n.into())
    }
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(n.into())
    }
    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        // serde_json parses no NaN or infinity: every f64 it hands over is a JSON number.
        Ok(serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, Into::into))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(s.into())
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(s.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            items.push(v);
        }
        Ok(items.into())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = ResultObject::new();
        while let Some(key) = map.next_key::<String>()? {
            let v = map.next_value_seed(self)?;
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "the key {} appears twice in one object",
                    serde_json::Value::String(self.0.redact(&key).chars().take(64).collect())
                )));
            }
            out.insert(key, v);
        }
        Ok(out.into())
    }
}

/// Rewrite the result file without secrets: strings are redacted as parsed JSON (a secret
/// may be JSON-escaped there in any of JSON's ways), then the bytes: whatever did not parse,
/// where the redactor matches each secret's usual escaped forms too (`Redactor::new`).
fn scrub_file(path: &Path, bytes: &[u8], parsed: Option<&serde_json::Value>, redactor: &Redactor) {
    if redactor.is_empty() {
        return;
    }
    let mut out = bytes.to_vec();
    if let Some(v) = parsed {
        let mut clean = v.clone();
        redact_json(redactor, &mut clean);
        if &clean != v {
            out = serde_json::to_vec(&clean).unwrap_or_default();
        }
    }
    let out = redactor.redact_bytes(&out);
    if out != bytes {
        // Renamed into place: a link planted at the path is replaced, never followed.
        let _ = crate::atomic::write_atomic(path, &out, false);
    }
}

/// Redact every string (and key) inside a JSON value, and every number whose decimal text
/// (as the ledger writes it) holds a secret: a PIN or a numeric key reported as a JSON
/// number. Such a number becomes its redacted text, a string: a step bound to it as a number
/// then fails `input_invalid`, which is safe, where keeping the type would keep the digits.
pub fn redact_json(redactor: &Redactor, v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => *s = redactor.redact(s),
        serde_json::Value::Number(n) => {
            let text = n.to_string();
            let masked = redactor.redact(&text);
            if masked != text {
                *v = serde_json::Value::String(masked);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| redact_json(redactor, x)),
        serde_json::Value::Object(m) => {
            let entries = std::mem::take(m);
            for (k, mut x) in entries {
                redact_json(redactor, &mut x);
                m.insert(redactor.redact(&k), x);
            }
        }
        _ => {}
    }
}

/// A message cut to [`MESSAGE_CAP`] characters, saying so.
pub fn bound_message(message: String) -> String {
    if message.chars().count() <= MESSAGE_CAP {
        return message;
    }
    let mut cut: String = message.chars().take(MESSAGE_CAP).collect();
    cut.push_str(" … (message truncated)");
    cut
}

/// Err when the values, as JSON, exceed [`VALUES_CAP`] or nest deeper than
/// [`VALUES_DEPTH_CAP`].
pub fn check_values(values: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
    let len = serde_json::to_vec(values).map_or(usize::MAX, |v| v.len());
    if len > VALUES_CAP {
        return Err(format!(
            "the value outputs take {len} bytes as JSON; a step may report at most {} KiB of values",
            VALUES_CAP >> 10
        ));
    }
    if let Some((id, depth)) = values
        .iter()
        .map(|(id, v)| (id, depth(v)))
        .find(|(_, d)| *d > VALUES_DEPTH_CAP)
    {
        return Err(format!(
            "value output '{id}' nests {depth} levels deep; a value may nest at most {VALUES_DEPTH_CAP}"
        ));
    }
    Ok(())
}

/// How many arrays and objects deep `v` goes (a scalar: 0). serde_json parsed it within its
/// own recursion limit (128), so recursing here is bounded too.
fn depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_characters() {
        let m = bound_message("é".repeat(MESSAGE_CAP + 10));
        assert!(m.starts_with(&"é".repeat(MESSAGE_CAP)));
        assert!(m.ends_with("(message truncated)"));
        assert_eq!(bound_message("short".into()), "short");
    }

    #[test]
    fn a_result_with_a_key_twice_or_a_field_of_the_wrong_type_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let step = Beneath::new(d.path(), "");
        let r = Redactor::default();
        let read_of = |text: &str| {
            std::fs::write(d.path().join(RESULT_FILE), text).unwrap();
            read(&step, &r)
        };
        let twice = read_of(r#"{"values": {"v": [{"k": 1, "k": 1}]}}"#).unwrap_err();
        assert!(twice.contains("\"k\" appears twice"), "{twice}");
        let typed = read_of(r#"{"reason_slug": ["timeout"]}"#).unwrap_err();
        assert!(
            typed.contains("`reason_slug` must be a string, not an array"),
            "{typed}"
        );
        let values = read_of(r#"{"values": [1]}"#).unwrap_err();
        assert!(values.contains("`values` must be an object"), "{values}");
        let fine = r#"{"status": "FAILED", "own": {"x": [1.5, -2, null, true]}, "values": {}}"#;
        let object = read_of(fine).unwrap().unwrap();
        assert_eq!(
            serde_json::Value::Object(object),
            serde_json::from_str::<serde_json::Value>(fine).unwrap()
        );
    }

    #[test]
    fn a_secret_key_written_twice_is_redacted_before_it_is_cut_or_quoted() {
        let d = tempfile::tempdir().unwrap();
        let secret = format!("{}\"q\\", "k".repeat(70));
        let r = Redactor::new(vec![secret.clone()]);
        let key = serde_json::to_string(&secret).unwrap();
        std::fs::write(
            d.path().join(RESULT_FILE),
            format!("{{{key}: 1, {key}: 2}}"),
        )
        .unwrap();
        let why = read(&Beneath::new(d.path(), ""), &r).unwrap_err();
        assert!(
            why.contains(r#"the key "[REDACTED]" appears twice"#),
            "{why}"
        );
        // The file did not parse: its bytes were redacted, the escaped form included.
        let left = std::fs::read_to_string(d.path().join(RESULT_FILE)).unwrap();
        assert_eq!(left, r#"{"[REDACTED]": 1, "[REDACTED]": 2}"#);
    }

    #[test]
    fn numbers_holding_a_secret_become_their_redacted_text() {
        let r = Redactor::new(vec!["73519248".to_string()]);
        let mut v = serde_json::json!({"a": 73519248, "b": [9735192481_u64, 7.3519248e7], "c": 7351924, "d": 1.5});
        redact_json(&r, &mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": "[REDACTED]", "b": ["9[REDACTED]1", "[REDACTED].0"], "c": 7351924, "d": 1.5})
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_huge_file_is_refused_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("result.json");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: mkfifo reads a NUL-terminated path we own.
        unsafe {
            libc::mkfifo(c.as_ptr(), 0o600);
        }
        let r = Redactor::default();
        let step = Beneath::new(d.path(), "");
        assert!(read(&step, &r).unwrap_err().contains("not a regular file"));
        assert!(!p.exists());
        std::fs::write(&p, vec![b' '; (RESULT_CAP + 1) as usize]).unwrap();
        assert!(read(&step, &r).unwrap_err().contains("larger than"));
        assert!(!p.exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_step_folder_swapped_for_a_link_is_not_read_or_written_through() {
        let d = tempfile::tempdir().unwrap();
        let elsewhere = d.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let theirs = br#"{"status": "FAILED", "message": "theirs: s3cret"}"#;
        std::fs::write(elsewhere.join(RESULT_FILE), theirs).unwrap();
        std::os::unix::fs::symlink(&elsewhere, d.path().join("step")).unwrap();
        let r = Redactor::new(vec!["s3cret".to_string()]);
        let why = read(&Beneath::new(d.path(), "step"), &r).unwrap_err();
        assert!(why.contains("symbolic link"), "{why}");
        // Neither read nor rewritten (redacted) nor removed.
        assert_eq!(std::fs::read(elsewhere.join(RESULT_FILE)).unwrap(), theirs);
        // Through a real folder, the same file is read (its strings are redacted where they
        // are recorded) and left redacted.
        std::fs::remove_file(d.path().join("step")).unwrap();
        std::fs::rename(&elsewhere, d.path().join("step")).unwrap();
        let object = read(&Beneath::new(d.path(), "step"), &r).unwrap().unwrap();
        assert_eq!(object["status"], "FAILED");
        let left = std::fs::read_to_string(d.path().join("step").join(RESULT_FILE)).unwrap();
        assert!(!left.contains("s3cret"), "{left}");
    }
}
