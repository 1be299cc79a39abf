//! Secrets a module reports in shapes redaction once missed, each run by the real binary with a
//! real module (`tests/fixtures/hostile_modules/modules/`): a numeric secret as a JSON number,
//! a secret the platform quoted cut or escaped in a failure message, a secret stripped of its
//! newline or split into lines.
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

/// Longer than the 64 characters a reported reason or a duplicate key is cut to, with the
/// characters JSON and Rust's `escape_debug` escape (`"`, `\`, `'`); no `/` (it names a file).
const LONG: &str =
    r#"github_pat_11AQ7"Zq9\vX'2mK#7pLw_h3Jd8sKq0Wm2Xr5Tn7Yb4Vc6Pz1Lf9GeUa8Oi3Ek5Rj7Nd2Hs"#;

/// Every 16-character piece of `secret` as written, JSON-escaped and `escape_debug`-escaped:
/// a cut or an escaped copy is a leak too.
fn pieces(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap();
    let forms = [
        secret.to_string(),
        json[1..json.len() - 1].to_string(),
        secret.escape_debug().to_string(),
    ];
    let mut out = Vec::new();
    for form in forms {
        let chars: Vec<char> = form.chars().collect();
        out.extend(chars.windows(16).map(|w| w.iter().collect::<String>()));
    }
    out.sort();
    out.dedup();
    out
}

const QUOTED: &str = "work_order_id: quoted
artifacts_requested: true
steps:
  - {step_id: slug, module_id: quotesecret, kind: transform, inputs: {how: slug}}
  - {step_id: twice, module_id: quotesecret, kind: transform, inputs: {how: twice}}
  - {step_id: usage, module_id: quotesecret, kind: transform, inputs: {how: usage}}
  - {step_id: unit, module_id: quotesecret, kind: transform, inputs: {how: unit}}
  - {step_id: name, module_id: quotesecret, kind: transform, inputs: {how: name}}
  - step_id: pack
    module_id: package_std
    kind: packaging
    inputs:
      bound_outputs:
        - {from_step: name, output_id: tree, as_path: tree}
  - step_id: deliver
    module_id: deliver_local
    kind: delivery
    inputs:
      package_zip: {from_step: pack, output_id: package_zip}
";

/// Attack: the module puts its secret where the platform quotes module text in a failure
/// message — as `reason_slug`, a key written twice in result.json, a usage quantity, a usage
/// unit, a file name package_std refuses — and prints it as JSON. Until 2026-12-03 each
/// quote was cut to 64 characters or escaped (`\"`, `\\`) before redaction, which then no
/// longer matched: the secret's first 64 characters, or its escaped form, were recorded,
/// printed and put in the job summary, and the unparseable result.json kept it escaped. Now
/// module text is redacted before it is cut or quoted, and the redactor also matches each
/// secret's escaped forms.
#[test]
fn a_secret_quoted_cut_or_escaped_in_a_failure_message_is_still_redacted() {
    assert!(LONG.chars().count() > 64);
    let fx = fx();
    fx.workorder("quoted", QUOTED);
    let secrets = [("PLATFORM_SECRET_LONG", LONG)];
    let (out, v) = pass(&fx, &[], &secrets);
    let run = run_of(&v, "quoted");
    for (step, reason, says) in [
        ("slug", "module_failed", "reported reason '[REDACTED]'"),
        (
            "twice",
            "module_failed",
            r#"the key "[REDACTED]" appears twice"#,
        ),
        ("usage", "usage_invalid", r#"not "[REDACTED]""#),
        (
            "unit",
            "usage_invalid",
            "usage unit '[REDACTED]' is not priced",
        ),
        // Refused before its charge since 2026-12-04 (docs/delivery.md, *File names*).
        ("pack", "input_invalid", "backslash in '[REDACTED]'"),
    ] {
        let s = step_of(run, step);
        assert_eq!(s["reason_slug"], reason, "{step}: {}", out.text());
        let message = s["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{step}: {message}");
    }
    // The text view and the job summary of a second pass, retrying them all.
    let text = fx
        .command()
        .args(["orchestrator", "--retry-failed"])
        .env("GITHUB_STEP_SUMMARY", fx.path("summary.md"))
        .envs(secrets)
        .output()
        .unwrap();
    assert!(text.stdout_text().contains("[REDACTED]"), "{}", text.text());
    assert!(
        std::fs::read_to_string(fx.path("summary.md"))
            .unwrap()
            .contains("[REDACTED]"),
        "the job summary was written"
    );
    let leaks = holders(&fx, &[&out, &text], &pieces(LONG));
    assert!(leaks.is_empty(), "the secret leaked:\n{}", leaks.join("\n"));
}

/// A token as `gh secret set TOKEN < file` leaves it: with the file's newline.
const TRAILING: &str = "tok_5f1c2e9a7b3d\n";
/// A multi-line key, set from its file.
const KEY: &str = "-----BEGIN TEST KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9wq\n0kX3pL7qRz8vW2yN5tH1cB6mZ\n-----END TEST KEY-----\n";

/// Attack (by habit, not malice): the module strips its token's newline and splits its key
/// into lines before it uses them, then prints them and names them in its message. Until
/// 2026-12-03 only each whole value was masked: the token and the key's lines were in
/// stdout.log, stderr.log, result.json, evidence.jsonl and the output. The value trimmed,
/// and each line of a multi-line value, are masked too.
#[test]
fn a_secret_stripped_of_its_newline_or_split_into_lines_is_still_redacted() {
    let fx = fx();
    fx.workorder(
        "strip",
        "work_order_id: strip\nsteps:\n  - {step_id: s, module_id: stripper, kind: transform}\n",
    );
    let secrets = [
        ("PLATFORM_SECRET_TOKEN", TRAILING),
        ("PLATFORM_SECRET_KEY", KEY),
    ];
    let (out, v) = pass(&fx, &[], &secrets);
    let step = step_of(run_of(&v, "strip"), "s");
    assert_eq!(step["reason_slug"], "module_failed", "{}", out.text());
    assert_eq!(
        step["message"],
        "token [REDACTED] was refused; key [REDACTED] [REDACTED] [REDACTED] [REDACTED]"
    );
    let mut needles: Vec<String> = KEY.lines().map(String::from).collect();
    needles.push(TRAILING.trim().to_string());
    let leaks = holders(&fx, &[&out], &needles);
    assert!(leaks.is_empty(), "the secret leaked:\n{}", leaks.join("\n"));
}
