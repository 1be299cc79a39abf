//! Resolves a step's inputs at run time: literals, defaults, outputs of earlier steps, files
//! read with selectors, and tenant assets — every file opened beneath its step's outputs or
//! its tenant's assets with no link at any component, and every earlier output checked
//! against the digest its step's outcome recorded.
use super::json_path::JsonPath;
use super::model::{InputValue, Selector, Step};
use super::paths::check_relative;
use super::selected::Allowance;
use crate::beneath::{Beneath, Reason, Refused};
use crate::contract::{InputType, ModuleContract, OutputType};
use crate::digest::{sha256_hex, short};
use crate::output_digest::{check_recorded, DirManifest, NotAsRecorded};
use crate::records::OutputRecord;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A file read by a selector may be at most this large: inputs are values, not bulk data.
pub const MAX_SELECTOR_BYTES: u64 = 16 * 1024 * 1024;

/// Copies the asset of `{asset: path}` for input `name` into the step's folder and returns
/// the copy's path (or says why not): `(name, path)`.
pub type AssetResolver<'a> = dyn Fn(&str, &str) -> Result<PathBuf, String> + 'a;

/// What an earlier step left for later ones.
#[derive(Debug, Clone)]
pub struct Produced<'a> {
    pub contract: &'a ModuleContract,
    /// The step's outputs folder, beneath the runtime directory.
    pub outputs: Beneath,
    pub values: serde_json::Map<String, serde_json::Value>,
    /// Its `file`/`dir` outputs as its outcome recorded them (in this pass or an earlier
    /// one): what a later step reads must still be these bytes.
    pub recorded: Vec<OutputRecord>,
    pub completed: bool,
}

/// An earlier output as [`output_beneath`] checked it.
pub struct Checked<'e> {
    pub at: Beneath,
    /// What the step's outcome recorded of it.
    pub record: &'e OutputRecord,
    /// A dir output's manifest (its files, each hashed), the recorded one.
    pub manifest: Option<DirManifest>,
}

/// A declared file/dir output of an earlier, completed step, checked as it will be read: a
/// regular file with a single link, or a tree of them, reached through no link, whose digest
/// (a dir's: its manifest's) is the one the step's outcome recorded. A file changed or
/// replaced since (after a crash, before a --retry-failed) was produced by no step: it is
/// refused, never read. Its record, and a dir output's manifest, are handed back.
pub fn output_beneath<'e>(
    earlier: &'e BTreeMap<String, Produced>,
    from_step: &str,
    output_id: &str,
) -> Result<Checked<'e>, String> {
    let p = earlier
        .get(from_step)
        .ok_or_else(|| format!("step '{from_step}' has not run before this step"))?;
    if !p.completed {
        return Err(format!("step '{from_step}' did not complete"));
    }
    let out = p
        .contract
        .output(output_id)
        .ok_or_else(|| format!("step '{from_step}' has no output '{output_id}'"))?;
    if out.ty == OutputType::Value {
        return Err(format!(
            "output '{output_id}' of step '{from_step}' is a value, not a file"
        ));
    }
    let rel = out.path.clone().unwrap_or_else(|| out.id.clone());
    if let Some(why) = check_relative(&rel) {
        return Err(format!("output '{output_id}' of step '{from_step}': {why}"));
    }
    let b = p.outputs.join(&rel);
    let what = format!("output '{output_id}' of step '{from_step}'");
    let checked = match out.ty {
        OutputType::Dir => b.list_files().map(drop),
        _ => b.open_file().map(drop),
    };
    checked.map_err(|r| refused_output(&what, &r))?;
    let rec = p
        .recorded
        .iter()
        .find(|r| r.output_id == output_id && r.files.is_some() == (out.ty == OutputType::Dir))
        .ok_or_else(|| {
            format!(
                "{what}: the step's outcome records no {} of that output, so nothing vouches for what is there now (was module.yml changed since?)",
                if out.ty == OutputType::Dir { "dir" } else { "file" }
            )
        })?;
    let manifest = check_recorded(&b, rec).map_err(|e| not_as_recorded(&what, &b, rec, e))?;
    Ok(Checked {
        at: b,
        record: rec,
        manifest,
    })
}

/// An earlier output that is not what its step recorded, as a message.
fn not_as_recorded(what: &str, at: &Beneath, rec: &OutputRecord, e: NotAsRecorded) -> String {
    match e {
        NotAsRecorded::Unreadable(why) => format!("{what}: {why}"),
        NotAsRecorded::Differs { bytes, sha256 } => format!(
            "{what}: {} is not what the step recorded ({bytes} bytes, sha256 {}; recorded {} bytes, sha256 {}): it changed after the step completed, so no step produced it and it is not read (restore the recorded file, or start a new run with `platform rerun`)",
            at.path().display(),
            short(&sha256),
            rec.bytes,
            short(&rec.sha256)
        ),
    }
}

/// Why a module's output cannot be read, with what to do about a missing one.
fn refused_output(what: &str, r: &Refused) -> String {
    let hint = match r.reason {
        Reason::Missing => {
            " (was the runtime dir deleted? run with --retry-failed after restoring it)"
        }
        _ => "; outputs are read only as regular files with a single link, never through a link",
    };
    format!("{what}: {r}{hint}")
}

/// A path as the module will receive it: absolute (the module runs in a folder of its own).
/// A lossy conversion would hand the module a path that does not exist, so a name that is not
/// UTF-8 is refused instead.
fn path_string(p: &Path) -> Result<String, String> {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    abs.to_str().map(str::to_string).ok_or_else(|| {
        format!(
            "{}: the file name is not valid UTF-8, so it cannot be passed to a module; rename it",
            p.display()
        )
    })
}

/// Every file of a dir output's (checked) manifest, sorted (for `files` inputs bound to a
/// dir): the listing the check already made, not a second one.
fn files_under(dir: &Beneath, manifest: &DirManifest) -> Result<Vec<String>, String> {
    let mut v = manifest
        .files
        .iter()
        .map(|f| path_string(&dir.join(&f.rel).path()))
        .collect::<Result<Vec<String>, String>>()?;
    v.sort();
    Ok(v)
}

/// The file a built-in reads for its input `name`: the earlier step's output it is bound to,
/// or the copy of its asset in `inputs` (the step's inputs folder). None when not given.
pub fn bound_file(
    step: &Step,
    name: &str,
    earlier: &BTreeMap<String, Produced>,
    inputs: &Beneath,
) -> Result<Option<Beneath>, String> {
    match step.inputs.get(name) {
        None => Ok(None),
        Some(InputValue::Output {
            from_step,
            output_id,
        }) => output_beneath(earlier, from_step, output_id)
            .map(|c| Some(c.at))
            .map_err(|e| format!("input '{name}': {e}")),
        Some(InputValue::Asset(rel)) => {
            let file = Path::new(rel)
                .file_name()
                .ok_or_else(|| format!("input '{name}': asset '{rel}' does not name a file"))?;
            Ok(Some(inputs.join(name).join(file)))
        }
        Some(_) => Err(format!(
            "input '{name}' needs a file: bind it to a file output ({{from_step, output_id}}) or an asset ({{asset: path}})"
        )),
    }
}

/// Resolve all inputs of `step` into the JSON object a module receives. Err names the input.
pub fn resolve(
    step: &Step,
    contract: &ModuleContract,
    earlier: &BTreeMap<String, Produced>,
    assets: &AssetResolver,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let mut out = serde_json::Map::new();
    let mut allowance = Allowance::default();
    for (name, value) in &step.inputs {
        let spec = contract.input(name).ok_or_else(|| {
            format!(
                "input '{name}' is not declared by module '{}'",
                contract.module_id
            )
        })?;
        let v = resolve_one(name, value, spec.ty, earlier, assets, &mut allowance)?;
        out.insert(name.clone(), v);
    }
    for spec in &contract.inputs {
        if out.contains_key(&spec.id) {
            continue;
        }
        match &spec.default {
            Some(d) => {
                out.insert(spec.id.clone(), d.clone());
            }
            None if spec.required => {
                return Err(format!("required input '{}' is missing", spec.id))
            }
            None => {}
        }
    }
    Ok(out)
}

fn resolve_one(
    name: &str,
    value: &InputValue,
    ty: InputType,
    earlier: &BTreeMap<String, Produced>,
    assets: &AssetResolver,
    allowance: &mut Allowance,
) -> Result<serde_json::Value, String> {
    let ctx = |e: String| format!("input '{name}': {e}");
    let v = match value {
        InputValue::Literal(v) => v.clone(),
        InputValue::Asset(rel) => {
            let p = assets(name, rel).map_err(ctx)?;
            let s = serde_json::Value::String(path_string(&p).map_err(ctx)?);
            if ty == InputType::Files {
                serde_json::Value::Array(vec![s])
            } else {
                s
            }
        }
        InputValue::Output {
            from_step,
            output_id,
        } => output_value(from_step, output_id, ty, earlier).map_err(ctx)?,
        InputValue::File {
            from_step,
            from_file,
            selector,
            take,
            json_path,
        } => {
            let p = completed(earlier, from_step).map_err(ctx)?;
            if let Some(why) = check_relative(from_file) {
                return Err(ctx(format!("from_file {why}")));
            }
            let text = read_text(p, from_file).map_err(ctx)?;
            select_within(text, *selector, *take, json_path.as_deref(), allowance)
                .map_err(|e| ctx(format!("{from_file}: {e}")))?
        }
    };
    check_type(ty, value, &v).map_err(ctx)?;
    Ok(v)
}

/// An earlier step that completed.
fn completed<'e, 'a>(
    earlier: &'e BTreeMap<String, Produced<'a>>,
    from_step: &str,
) -> Result<&'e Produced<'a>, String> {
    let p = earlier
        .get(from_step)
        .ok_or_else(|| format!("step '{from_step}' has not run"))?;
    if !p.completed {
        return Err(format!("step '{from_step}' did not complete"));
    }
    Ok(p)
}

/// `{from_step, output_id}`: a value output's value, or a file/dir output's path(s) as an
/// input of type `ty` receives them.
fn output_value(
    from_step: &str,
    output_id: &str,
    ty: InputType,
    earlier: &BTreeMap<String, Produced>,
) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    let p = earlier
        .get(from_step)
        .ok_or_else(|| format!("step '{from_step}' has not run"))?;
    let is_value = p
        .contract
        .output(output_id)
        .is_some_and(|o| o.ty == OutputType::Value);
    if is_value {
        let p = completed(earlier, from_step)?;
        return p
            .values
            .get(output_id)
            .cloned()
            .ok_or_else(|| format!("step '{from_step}' reported no value '{output_id}'"));
    }
    let Checked {
        at: out, manifest, ..
    } = output_beneath(earlier, from_step, output_id)?;
    let one = || path_string(&out.path()).map(Value::String);
    Ok(match (manifest, ty) {
        (Some(m), InputType::Files) => Value::Array(
            files_under(&out, &m)?
                .into_iter()
                .map(Value::String)
                .collect(),
        ),
        (_, InputType::Files) => Value::Array(vec![one()?]),
        _ => one()?,
    })
}

/// A resolved value fits the input's type; a path type takes only a bound file, never a
/// literal.
fn check_type(ty: InputType, value: &InputValue, v: &serde_json::Value) -> Result<(), String> {
    if ty.is_path() {
        let ok = match ty {
            InputType::File => v.is_string(),
            _ => v
                .as_array()
                .is_some_and(|a| a.iter().all(|x| x.is_string())),
        };
        if !ok || matches!(value, InputValue::Literal(_)) {
            return Err(format!(
                "type {} needs a file: bind it to a file output ({{from_step, output_id}}) or an asset ({{asset: path}})",
                ty.as_str()
            ));
        }
    } else if !ty.accepts(v) {
        return Err(format!(
            "expected a value of type {}, got {}",
            ty.as_str(),
            json_type(v)
        ));
    }
    Ok(())
}

/// The JSON type of a value as a user writes it in YAML (`a string`, `an integer`), for
/// messages of validation and of a run alike.
pub fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null (an empty value)",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A file of an earlier step as UTF-8 text, read from the opened file (never by path again),
/// whose bytes are the ones the step recorded when it is a `file` output or a file of a `dir`
/// output. A file the step left but did not declare has no record to compare with.
fn read_text(p: &Produced, from_file: &str) -> Result<String, String> {
    let b = p.outputs.join(from_file);
    let what = format!("from_file '{from_file}'");
    let file = b.open_file().map_err(|r| refused_output(&what, &r))?;
    let mut bytes = Vec::new();
    file.take(MAX_SELECTOR_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", b.path().display()))?;
    if bytes.len() as u64 > MAX_SELECTOR_BYTES {
        return Err(format!(
            "{} is larger than {MAX_SELECTOR_BYTES} bytes, the most a selector reads",
            b.path().display()
        ));
    }
    check_read(p, from_file, &b, &bytes)?;
    String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", b.path().display()))
}

/// The bytes read of `from_file` against the outcome's record: the record of the `file`
/// output at that path, or the entry of the checked manifest of the `dir` output holding it.
fn check_read(p: &Produced, from_file: &str, b: &Beneath, bytes: &[u8]) -> Result<(), String> {
    let want = plain(Path::new(from_file));
    let what = format!("from_file '{from_file}'");
    let mut expected = None;
    for rec in &p.recorded {
        let at = plain(Path::new(&rec.path));
        if rec.files.is_none() && at == want {
            expected = Some(rec.clone());
        } else if let (Some(_), Ok(rel)) = (rec.files, want.strip_prefix(&at)) {
            let dir = p.outputs.join(&rec.path);
            let m = check_recorded(&dir, rec).map_err(|e| not_as_recorded(&what, &dir, rec, e))?;
            // The file's own entry in the manifest the record vouches for.
            let files = m.map(|m| m.files).unwrap_or_default();
            expected = files
                .into_iter()
                .find(|f| f.rel == rel)
                .map(|f| OutputRecord {
                    bytes: f.bytes,
                    sha256: f.sha256,
                    files: None,
                    ..rec.clone()
                });
        } else {
            continue;
        }
        break;
    }
    let Some(rec) = expected else {
        return Ok(());
    };
    let read = sha256_hex(bytes);
    if read == rec.sha256 && bytes.len() as u64 == rec.bytes {
        return Ok(());
    }
    let differs = NotAsRecorded::Differs {
        bytes: bytes.len() as u64,
        sha256: read,
    };
    Err(not_as_recorded(&what, b, &rec, differs))
}

/// A relative path without its `.` components, as paths are compared.
fn plain(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// Apply a selector to a file's text.
pub fn select(
    text: &str,
    selector: Selector,
    take: Option<u64>,
    json_path: Option<&JsonPath>,
) -> Result<serde_json::Value, String> {
    select_within(
        text.to_string(),
        selector,
        take,
        json_path,
        &mut Allowance::default(),
    )
}

/// Apply a selector to a file's text, within what is left of the step's allowance: the value's
/// size is estimated before it is built, and charged with what it adds to inputs.json.
fn select_within(
    text: String,
    selector: Selector,
    take: Option<u64>,
    json_path: Option<&JsonPath>,
    allowance: &mut Allowance,
) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    let (held, v) = match selector {
        Selector::Text => (text.len() as u64, Value::String(text)),
        Selector::Lines => {
            let limit = take.map_or(usize::MAX, |t| usize::try_from(t).unwrap_or(usize::MAX));
            let held = allowance.lines(&text, limit)?;
            let lines = text.lines().take(limit);
            (
                held,
                Value::Array(lines.map(|l| Value::String(l.to_string())).collect()),
            )
        }
        Selector::Json => {
            let held = allowance.document(&text)?;
            let v = serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))?;
            drop(text);
            (held, pick(v, json_path)?)
        }
        Selector::JsonlFirst => {
            let line = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .ok_or("no JSON line found (file is empty)")?;
            let held = allowance
                .document(line)
                .map_err(|e| format!("first line: {e}"))?;
            let v = serde_json::from_str(line)
                .map_err(|e| format!("first line is not valid JSON: {e}"))?;
            (held, pick(v, json_path)?)
        }
    };
    allowance.charge(held, &v)?;
    Ok(v)
}

/// The part of a JSON document a `json_path` names; without one, all of it.
fn pick(v: serde_json::Value, path: Option<&JsonPath>) -> Result<serde_json::Value, String> {
    match path {
        Some(p) => p.apply(&v),
        None => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &str) -> JsonPath {
        JsonPath::parse(p).unwrap()
    }

    #[test]
    fn selectors() {
        assert_eq!(
            select("a\nb\nc\n", Selector::Lines, Some(2), None).unwrap(),
            json!(["a", "b"])
        );
        assert_eq!(
            select("hi\n", Selector::Text, None, None).unwrap(),
            json!("hi\n")
        );
        assert_eq!(
            select(
                r#"{"a":{"b":[1,2]}}"#,
                Selector::Json,
                None,
                Some(&path("$.a.b[1]"))
            )
            .unwrap(),
            json!(2)
        );
        assert_eq!(
            select(
                "\n{\"x\":1}\n{\"x\":2}\n",
                Selector::JsonlFirst,
                None,
                Some(&path("x"))
            )
            .unwrap(),
            json!(1)
        );
        assert!(select("{", Selector::Json, None, None).is_err());
        assert!(select(r#"{"a":1}"#, Selector::Json, None, Some(&path("b"))).is_err());
    }
}
