//! `--json` documents printed straight from an outcome are the bytes a `serde_json::Value` of it printed.
use super::{to_writer, versioned_pretty};
use proptest::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::collections::HashMap;

/// What `--json` printed before: the outcome through a `Value`, versioned.
fn through_value<T: Serialize>(v: &T) -> String {
    let value = crate::output::versioned(serde_json::to_value(v).unwrap_or(Value::Null));
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// Printed straight from the value, whole and streamed: both must be the bytes above.
fn direct<T: Serialize>(v: &T) -> String {
    let whole = String::from_utf8(versioned_pretty(v).unwrap_or_default()).unwrap_or_default();
    let mut streamed = Vec::new();
    let wrote = to_writer(&mut streamed, v);
    assert!(wrote.is_ok(), "{wrote:?}");
    assert_eq!(
        String::from_utf8_lossy(&streamed),
        whole,
        "streamed and whole differ"
    );
    whole
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
enum Shape {
    Unit,
    New(u8),
    Tuple(i64, String),
    Fields { zeta: bool, alpha: Vec<u8> },
}

#[derive(Serialize)]
struct Inner {
    z: Option<f64>,
    a: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<u8>,
    shapes: Vec<Shape>,
}

#[derive(Serialize)]
struct Outer {
    zulu: Vec<Inner>,
    #[serde(flatten)]
    flat: Inner,
    empty: Empty,
    nothing: Vec<Empty>,
    by_name: HashMap<String, i64>,
    by_number: BTreeMap<u32, char>,
    pair: (u64, i8),
    unit: (),
    #[serde(rename = "Capital")]
    capital: String,
    schema_version: u64,
}

fn inner(z: Option<f64>) -> Inner {
    Inner {
        z,
        a: Some("tab\there \"quoted\" \u{1b} é \u{10ffff}"),
        skipped: None,
        shapes: vec![
            Shape::Unit,
            Shape::New(7),
            Shape::Tuple(i64::MIN, "x".into()),
            Shape::Fields {
                zeta: true,
                alpha: vec![],
            },
            Shape::Fields {
                zeta: false,
                alpha: vec![1, 2],
            },
        ],
    }
}

#[test]
fn a_struct_prints_as_its_value_did_keys_sorted_at_every_depth() {
    let outer = Outer {
        zulu: vec![inner(Some(1.0)), inner(Some(f64::NAN)), inner(None)],
        flat: inner(Some(-0.25)),
        empty: Empty {},
        nothing: vec![],
        by_name: [("b".to_string(), 2), ("a".to_string(), u32::MAX.into())].into(),
        by_number: [(10, 'x'), (9, 'y')].into(),
        pair: (u64::MAX, -1),
        unit: (),
        capital: "C".into(),
        schema_version: 7,
    };
    let printed = direct(&outer);
    assert_eq!(printed, through_value(&outer));
    // The document's own schema_version wins; the map's keys sort as text ("10" < "9").
    assert!(printed.contains("\"schema_version\": 7"), "{printed}");
    assert!(printed.find("\"10\"") < printed.find("\"9\""), "{printed}");
}

#[test]
fn a_top_level_object_gets_schema_version_and_anything_else_prints_as_it_is() {
    assert_eq!(direct(&Empty {}), "{\n  \"schema_version\": 1\n}");
    assert_eq!(direct(&Empty {}), through_value(&Empty {}));
    for v in [json!([]), json!([{}]), json!("s"), json!(null), json!(3)] {
        assert_eq!(direct(&v), through_value(&v));
    }
    assert_eq!(direct(&Shape::Unit), through_value(&Shape::Unit));
    #[derive(Serialize)]
    enum Late {
        #[serde(rename = "zz")]
        After(u8),
        #[serde(rename = "schema_version")]
        Same(u8),
    }
    let variants = [
        direct(&Shape::New(1)),
        direct(&Shape::Tuple(2, "t".into())),
        direct(&Shape::Fields {
            zeta: true,
            alpha: vec![3],
        }),
        direct(&Late::After(4)),
        direct(&Late::Same(5)),
    ];
    assert_eq!(
        variants,
        [
            through_value(&Shape::New(1)),
            through_value(&Shape::Tuple(2, "t".into())),
            through_value(&Shape::Fields {
                zeta: true,
                alpha: vec![3]
            }),
            through_value(&Late::After(4)),
            through_value(&Late::Same(5)),
        ]
    );
}

#[test]
fn a_key_given_twice_keeps_its_last_entry_as_a_value_did() {
    #[derive(Serialize)]
    struct Twice {
        b: u8,
        a: &'static str,
        #[serde(flatten)]
        again: BTreeMap<&'static str, u8>,
    }
    let twice = Twice {
        b: 1,
        a: "first",
        again: [("a", 2), ("c", 3)].into(),
    };
    assert_eq!(direct(&twice), through_value(&twice));
    assert!(direct(&twice).contains("\"a\": 2"));
}

#[test]
fn a_non_text_map_key_is_an_error_not_a_panic() {
    let map: BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into();
    assert!(versioned_pretty(&map).is_err());
    assert!(to_writer(&mut Vec::new(), &map).is_err());
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_document_prints_as_serde_json_prints_it(v in any_value()) {
        prop_assert_eq!(direct(&v), through_value(&v));
    }
}
