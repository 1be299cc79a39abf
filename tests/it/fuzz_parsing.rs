//! Fuzzing of everything that reads operator or tenant input: YAML parsing, repository
//! loading + validation + the pure planner, binding classification (`InputValue::parse`),
//! selectors and JSON paths, and `locate::line_of`. No input may panic; each target also
//! checks a few properties of its answer. Proptest cases scale with PROPTEST_CASES; the
//! timed loops run FUZZ_SECONDS (default 2) each.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::fuzz;
use crate::support::fx::crate_root;
use crate::support::Fx;

use fuzz::{config, edit, fuzz_target, mutate, report_cases, timed};
use platform::orchestrator::plan::{plan, Filter, PlanInput};
use platform::repo::Repo;
use platform::workorder::bindings::select;
use platform::workorder::json_path::{JsonPath, JsonSeg};
use platform::workorder::model::{InputValue, Selector};
use platform::yaml;
use platform::yaml::locate::{line_of, parse_path, render_path};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

/// Seed documents: every YAML file of the fixtures and of the example repository.
fn corpus() -> &'static Vec<String> {
    static CELL: OnceLock<Vec<String>> = OnceLock::new();
    CELL.get_or_init(|| {
        let root = crate_root();
        let mut docs: Vec<(String, String)> = Vec::new();
        for dir in ["tests/fixtures", "modules", "tenants", "config"] {
            for e in walkdir::WalkDir::new(root.join(dir)).into_iter().flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                    if let Ok(text) = std::fs::read_to_string(p) {
                        docs.push((p.display().to_string(), text));
                    }
                }
            }
        }
        docs.sort();
        assert!(docs.len() >= 50, "seed corpus: {} files", docs.len());
        docs.into_iter().map(|(_, t)| t).collect()
    })
}

/// A seed document with a few edits, as text (edits may break UTF-8: decoded lossily).
fn mutated_doc() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(corpus().clone()),
        proptest::collection::vec(edit(), 0..10),
    )
        .prop_map(|(seed, edits)| String::from_utf8_lossy(&mutate(&seed, &edits)).into_owned())
}

/// YAML-ish text from scratch, for what mutation does not reach.
fn yamlish() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,200}",
        "[-:&*!|>#{}\\[\\],'\" \n\tab01.]{0,300}",
        proptest::collection::vec(
            (
                "[a-z_]{1,10}",
                0..4usize,
                "[a-z0-9 ._/$-]{0,20}|&[a-z] [a-z]+|\\*[a-z]|\\[\\]|\\{\\}|~"
            ),
            0..20
        )
        .prop_map(|lines| lines
            .into_iter()
            .map(|(k, indent, v)| format!("{}{k}: {v}\n", "  ".repeat(indent)))
            .collect()),
    ]
}

fn any_doc() -> impl Strategy<Value = String> {
    prop_oneof![3 => mutated_doc(), 1 => yamlish()]
}

fn check_parse(text: &str) {
    match yaml::parse("fuzz.yml", text) {
        Ok(_) => {}
        Err(f) => {
            assert!(!f.message.is_empty());
            assert_eq!(f.file, "fuzz.yml");
            if let Some(line) = f.line {
                assert!(
                    line >= 1 && line <= text.lines().count() + 2,
                    "line {line} of {text:?}"
                );
            }
        }
    }
}

const YAML_CASES: u32 = 512;

fuzz_target!(
    yaml_parse_never_panics,
    yaml_parse_timed,
    "yaml_parse",
    YAML_CASES,
    any_doc(),
    |t: &String| check_parse(t)
);

// ---- repository load + validation + plan ---------------------------------------------------

/// Where a fuzzed document goes in the repository.
const PLACES: &[&str] = &[
    "tenants/t1/workorders/w.yml",
    "tenants/t1/workorders/w.yml",
    "tenants/t1/workorders/w.yml",
    "modules/m/module.yml",
    "modules/m/module.yml",
    "tenants/t1/tenant.yml",
    "config/registry.yml",
    "config/iam.yml",
    "config/runtime_profile.local.yml",
];

/// A repository per test thread: the orchestrator fixture, with one file replaced per case.
fn check_repo(root: &Path, place: &str, doc: &str) {
    let target = root.join(place);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(&target, doc).unwrap();
    let repo = Repo::load(root).unwrap();
    let findings = platform::validate::repository(&repo);
    for f in &findings {
        assert!(!f.message.is_empty(), "{f:?}");
        assert!(!f.file.starts_with('/') && !f.file.is_empty(), "{f:?}");
        assert!(f.line.is_none_or(|l| l >= 1), "{f:?}");
    }
    let mut errors = BTreeMap::new();
    for lw in repo.work_orders().filter(|lw| lw.enabled) {
        errors.insert(lw.rel.clone(), platform::validate::work_order(&repo, lw));
    }
    let balances: BTreeMap<String, i64> = [("t1".to_string(), 50)].into();
    let history = Default::default();
    let secrets = BTreeSet::new();
    let filter = Filter::default();
    for retry_failed in [false, true] {
        let p = plan(&PlanInput {
            repo: &repo,
            history: &history,
            balances: &balances,
            errors: &errors,
            secrets_present: &secrets,
            github_token: false,
            filter: &filter,
            retry_failed,
            now: Default::default(),
        });
        let _ = serde_json::to_string(&p).unwrap();
    }
    std::fs::remove_file(&target).unwrap();
}

fn repo_root() -> Fx {
    let fx = Fx::new();
    // The originals of the replaced files are seeds already; start without them.
    for place in PLACES {
        let _ = std::fs::remove_file(fx.path(place));
    }
    fx.write("tenants/t1/tenant.yml", "tenant_id: t1\n");
    fx
}

const REPO_CASES: u32 = 192;

fn repo_input() -> impl Strategy<Value = (&'static str, String)> {
    (proptest::sample::select(PLACES), any_doc())
}

#[test]
fn repository_validation_and_plan_never_panic() {
    report_cases("repo_validate_plan", REPO_CASES);
    let root = repo_root();
    let mut runner = proptest::test_runner::TestRunner::new(config(REPO_CASES));
    runner
        .run(&repo_input(), |(place, doc)| {
            check_repo(root.root(), place, &doc);
            Ok(())
        })
        .unwrap();
}

#[test]
fn repository_validation_and_plan_timed() {
    let root = repo_root();
    timed("repo_validate_plan", repo_input(), |(place, doc)| {
        check_repo(root.root(), place, doc)
    });
}

// ---- bindings: InputValue::parse, select, JsonPath -------------------------------------------

/// JSON values biased towards what bindings look like.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        3 => proptest::sample::select(vec![
            "from_step", "output_id", "from_file", "selector", "take", "json_path", "asset",
        ])
        .prop_map(str::to_string),
        1 => "[a-z_]{1,8}",
        1 => "\\PC{0,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(vec![
            "text",
            "lines",
            "json",
            "jsonl_first",
            "$.a",
            "a.b[0]",
            "../x",
            ""
        ])
        .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn check_input_value(v: &Value) {
    match InputValue::parse(v) {
        Ok(InputValue::Literal(l)) => assert_eq!(&l, v),
        Ok(InputValue::Output {
            from_step,
            output_id,
        }) => {
            assert_eq!(v["from_step"], from_step.as_str());
            assert_eq!(v["output_id"], output_id.as_str());
            assert_eq!(v.as_object().unwrap().len(), 2);
        }
        Ok(InputValue::File {
            selector,
            take,
            json_path,
            ..
        }) => {
            assert!(take.is_none() || selector == Selector::Lines);
            assert!(
                json_path.is_none() || matches!(selector, Selector::Json | Selector::JsonlFirst)
            );
            if let Some(p) = json_path {
                assert_eq!(v["json_path"], p.as_str(), "kept as written");
            }
        }
        Ok(InputValue::Asset(p)) => assert_eq!(v["asset"], p.as_str()),
        Err(why) => {
            assert!(!why.errors.is_empty(), "{why:?}");
            assert!(why.errors.iter().all(|e| !e.message.is_empty()), "{why:?}");
        }
    }
}

const INPUT_CASES: u32 = 1024;

proptest! {
    #![proptest_config(config(INPUT_CASES))]
    #[test]
    fn input_value_parse_never_panics(v in json_value()) {
        check_input_value(&v);
    }
}

/// A JSON path that exists in `v` (keys that the path syntax can spell), with the value there.
fn existing_path(v: &Value, picks: &[usize]) -> (String, Value) {
    let mut path = String::from("$");
    let mut cur = v;
    for p in picks {
        match cur {
            Value::Object(m) if !m.is_empty() => {
                let Some((k, next)) = m.iter().nth(p % m.len()) else {
                    break;
                };
                let plain = !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && k.parse::<usize>().is_err();
                if !plain {
                    break;
                }
                path.push('.');
                path.push_str(k);
                cur = next;
            }
            Value::Array(a) if !a.is_empty() => {
                let i = p % a.len();
                path.push_str(&format!("[{i}]"));
                cur = &a[i];
            }
            _ => break,
        }
    }
    (path, cur.clone())
}

#[derive(Debug, Clone)]
struct SelectCase {
    text: String,
    selector: Selector,
    take: Option<u64>,
    json_path: Option<String>,
    doc: Value,
    picks: Vec<usize>,
}

fn select_case() -> impl Strategy<Value = SelectCase> {
    let selector = proptest::sample::select(vec![
        Selector::Text,
        Selector::Lines,
        Selector::Json,
        Selector::JsonlFirst,
    ]);
    let path = proptest::option::of(prop_oneof![
        "[$./\\[\\]a-c0-3_~ -]{0,16}",
        "\\PC{0,10}",
        Just("$".to_string()),
        Just("$.".to_string()),
        Just("[99999999999999999999]".to_string()),
    ]);
    (
        json_value(),
        prop_oneof![Just(0u8), Just(1), Just(2), Just(3)],
        "\\PC{0,40}",
        selector,
        proptest::option::of(any::<u64>()),
        path,
        proptest::collection::vec(any::<usize>(), 0..5),
    )
        .prop_map(|(doc, shape, noise, selector, take, json_path, picks)| {
            let text = match shape {
                0 => doc.to_string(),
                1 => format!("\n{doc}\n{noise}\n"),
                2 => format!("{noise}\n{doc}"),
                _ => noise,
            };
            SelectCase {
                text,
                selector,
                take,
                json_path,
                doc,
                picks,
            }
        })
}

/// A path applied as a run applies it: parsed, then looked up.
fn apply(doc: &Value, path: &str) -> Result<Value, String> {
    JsonPath::parse(path)?.apply(doc)
}

fn check_select(c: &SelectCase) {
    match c.json_path.as_deref().map(JsonPath::parse).transpose() {
        Ok(path) => match select(&c.text, c.selector, c.take, path.as_ref()) {
            Ok(v) => match c.selector {
                Selector::Text => assert_eq!(v, Value::String(c.text.clone())),
                Selector::Lines => {
                    let n = v.as_array().unwrap().len() as u64;
                    assert!(n <= c.take.unwrap_or(u64::MAX) && n <= c.text.lines().count() as u64);
                }
                _ => {}
            },
            Err(why) => assert!(!why.is_empty()),
        },
        Err(why) => assert!(!why.is_empty()),
    }
    // A path that exists finds what is there, in both spellings; `$` is the whole document.
    assert_eq!(apply(&c.doc, "$").unwrap(), c.doc);
    let whole = select(&c.doc.to_string(), Selector::Json, None, None).unwrap();
    assert_eq!(whole, c.doc);
    let (path, want) = existing_path(&c.doc, &c.picks);
    assert_eq!(apply(&c.doc, &path).unwrap(), want, "{path}");
    let parsed = JsonPath::parse(&path).unwrap();
    let r = select(&c.doc.to_string(), Selector::Json, None, Some(&parsed)).unwrap();
    assert_eq!(r, want, "{path}");
    // The same path spelled as operators write it: spaces, no `$`, a leading dot, a pointer.
    for variant in spellings(&path) {
        if let Ok(p) = JsonPath::parse(&variant) {
            assert_eq!(
                p.apply(&c.doc).ok(),
                walk(&c.doc, p.segments()),
                "json_path {variant:?} means something else at run time"
            );
        }
    }
    if let Some(Ok(p)) = c.json_path.as_deref().map(JsonPath::parse) {
        // Validation accepts a path with the parser a run uses; the lookup must mean it.
        assert_eq!(
            p.apply(&c.doc).ok(),
            walk(&c.doc, p.segments()),
            "json_path {p} means something else at run time"
        );
    }
}

/// Other spellings of a `$.a[0].b` path that the validator accepts.
fn spellings(path: &str) -> Vec<String> {
    let body = path.strip_prefix('$').unwrap_or(path);
    let pointer: String = body
        .replace('[', ".")
        .replace(']', "")
        .split('.')
        .filter(|s| !s.is_empty())
        .map(|s| format!("/{s}"))
        .collect();
    vec![
        body.to_string(),
        body.trim_start_matches('.').to_string(),
        format!(" {path} "),
        path.replace('[', "[ ").replace(']', " ]"),
        path.replace('[', ".").replace(']', ""),
        if pointer.is_empty() {
            "$".into()
        } else {
            pointer
        },
    ]
}

/// The lookup `consistency-validate` describes, over the validator's own parse of a path.
fn walk(v: &Value, segs: &[JsonSeg]) -> Option<Value> {
    let mut cur = v;
    for s in segs {
        cur = match (s, cur) {
            (JsonSeg::Key(k), Value::Object(m)) => m.get(k)?,
            (JsonSeg::Index(i), Value::Array(a)) => a.get(*i)?,
            (JsonSeg::Key(k), Value::Array(a)) => a.get(k.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur.clone())
}

const SELECT_CASES: u32 = 1024;

proptest! {
    #![proptest_config(config(SELECT_CASES))]
    #[test]
    fn selectors_and_json_paths_never_panic(c in select_case()) {
        check_select(&c);
    }
}

#[test]
fn bindings_timed() {
    report_cases("input_value_parse", INPUT_CASES);
    report_cases("select_json_path", SELECT_CASES);
    timed("input_value_parse", json_value(), check_input_value);
    timed("select_json_path", select_case(), check_select);
}

#[test]
fn select_examples() {
    assert_eq!(
        select("a\nb\n", Selector::Lines, Some(0), None).unwrap(),
        json!([])
    );
    assert_eq!(select("", Selector::Lines, None, None).unwrap(), json!([]));
    assert!(select("", Selector::JsonlFirst, None, None).is_err());
    let path = |p: &str| JsonPath::parse(p).unwrap();
    assert!(select("{\"a\":1}", Selector::Json, None, Some(&path("$.a.b.c"))).is_err());
    // Found by the differential property: the validator reads `[ 0 ]` as index 0.
    assert_eq!(
        select("[[7, 8]]", Selector::Json, None, Some(&path("$[ 0 ][ 1 ]"))).unwrap(),
        json!(8)
    );
}

// ---- locate::line_of ---------------------------------------------------------------------

#[derive(Debug, Clone)]
struct LocateCase {
    text: String,
    path: String,
}

fn locate_case() -> impl Strategy<Value = LocateCase> {
    let path = prop_oneof![
        "[a-z_.\\[\\]0-9/~]{0,24}",
        "\\PC{0,16}",
        Just("steps[0].inputs.text".to_string()),
        Just("/steps/0/inputs".to_string()),
        Just("steps[99999999999999999999]".to_string()),
    ];
    (any_doc(), path).prop_map(|(text, path)| LocateCase { text, path })
}

fn check_locate(c: &LocateCase) {
    let segs = parse_path(&c.path);
    let _ = render_path(&segs);
    if let Some(line) = line_of(&c.text, &segs) {
        assert!(line >= 1 && line <= c.text.lines().count(), "line {line}");
    }
}

const LOCATE_CASES: u32 = 1024;

fuzz_target!(
    line_of_never_panics,
    line_of_timed,
    "locate_line_of",
    LOCATE_CASES,
    locate_case(),
    check_locate
);
