//! Secrets a module reports in shapes redaction once missed, each run by the real binary with a
//! real module (`tests/fixtures/hostile_modules/modules/`): a numeric secret as a JSON number.
use crate::support::fx::{Fx, Transcript};
use crate::support::orch::{run_of, step_of};

use serde_json::{json, Value};
use std::process::Output;

fn fx() -> Fx {
    let fx = Fx::new().overlay("hostile_modules", "");
    fx.topup(100, "initial");
    fx
}

/// One `orchestrator --json` pass (`extra` arguments after it) with these secrets set.
fn pass(fx: &Fx, extra: &[&str], secrets: &[(&str, &str)]) -> (Output, Value) {
    let out = fx
        .command()
        .args(["orchestrator", "--json"])
        .args(extra)
        .envs(secrets.iter().copied())
        .output()
        .unwrap();
    let v = out.json();
    (out, v)
}

/// Every file under the fixture, and the pass outputs, that hold any of `needles`.
fn holders(fx: &Fx, outputs: &[&Output], needles: &[String]) -> Vec<String> {
    let mut texts: Vec<(String, Vec<u8>)> = fx
        .all_bytes_under(".")
        .into_iter()
        .map(|(p, b)| (p.display().to_string(), b))
        .collect();
    for (i, out) in outputs.iter().enumerate() {
        texts.push((format!("pass {i} stdout"), out.stdout.clone()));
        texts.push((format!("pass {i} stderr"), out.stderr.clone()));
    }
    let mut found = Vec::new();
    for (what, bytes) in texts {
        let text = String::from_utf8_lossy(&bytes);
        for n in needles {
            if text.contains(n.as_str()) {
                found.push(format!("{what}: {n}"));
            }
        }
    }
    found
}

/// The step_outcome record of a step.
fn outcome_of(fx: &Fx, step: &str) -> Value {
    fx.records("evidence.jsonl")
        .into_iter()
        .find(|r| r["type"] == "step_outcome" && r["step_id"] == step)
        .unwrap_or_else(|| panic!("no outcome for {step}"))
}

/// A PIN of twelve digits: a specific 12-digit run turns up in no hash by chance.
const PIN: &str = "735192486137";

/// Attack: the module declares the secret PIN and reports it as JSON numbers (bare, inside a
/// longer number, as a float, nested); step b binds the bare one as an integer input. Until
/// 2026-12-03 numbers were not redacted: the digits were recorded in `evidence.jsonl` and
/// handed to b in its inputs.json. Each number whose text holds the secret is now its
/// redacted text, a string, so b fails `input_invalid`, uncharged.
#[test]
fn a_numeric_secret_reported_as_a_number_is_masked_in_records_and_never_passed_on() {
    let fx = fx();
    fx.workorder(
        "num",
        "work_order_id: num\nsteps:\n  - {step_id: a, module_id: numsecret, kind: transform}\n  - {step_id: b, module_id: numsecret, kind: transform, inputs: {x: {from_step: a, output_id: v}}}\n",
    );
    let (out, v) = pass(&fx, &[], &[("PLATFORM_SECRET_PIN", PIN)]);
    let run = run_of(&v, "num");
    assert_eq!(step_of(run, "a")["status"], "COMPLETED", "{}", out.text());
    assert_eq!(step_of(run, "b")["reason_slug"], "input_invalid", "{run}");
    assert_eq!(
        outcome_of(&fx, "a")["values"],
        json!({"v": "[REDACTED]", "nested": {"in": ["9[REDACTED]1"], "f": "[REDACTED].0"}})
    );
    assert_eq!(fx.balance(), 99, "a kept its charge, b was never charged");
    let leaks = holders(&fx, &[&out], &[PIN.to_string()]);
    assert!(leaks.is_empty(), "the PIN leaked:\n{}", leaks.join("\n"));
    fx.integrity().unwrap();
}
