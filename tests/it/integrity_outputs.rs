//! integrity-validate compares the step outputs and local deliveries found in the runtime directory with what the ledger recorded (outcomes, receipts): a changed file fails it, a cleared runtime directory does not.
use crate::support::orch::{funded_order, run_of, step_dir, CHAIN};
use crate::support::{Fx, Transcript};
use serde_json::Value;

/// The chain run to its end, and the folder (relative to the fixture) of gen's outputs.
fn chain_run() -> (Fx, String) {
    let fx = funded_order("chain", CHAIN, 100);
    let (code, sum, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}\n{stderr}");
    let outputs = format!("{}/outputs", step_dir(run_of(&sum, "chain"), "gen"));
    (fx, outputs)
}

/// integrity-validate --json, its exit code and report.
fn integrity(fx: &Fx) -> (Option<i32>, Value) {
    let out = fx.run(&["integrity-validate", "--json"]);
    (out.status.code(), out.json())
}

/// Every problem's text, one a line.
fn problems(report: &Value) -> String {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}: {}\n", p["file"], p["message"]))
        .collect()
}

/// `runtime.<what>_checked` and `runtime.<what>_absent` (`outputs`, `deliveries`).
fn counted(report: &Value, what: &str) -> (u64, u64) {
    let r = &report["runtime"];
    let n = |k: String| {
        r[&k]
            .as_u64()
            .unwrap_or_else(|| panic!("no {k} in {report}"))
    };
    (n(format!("{what}_checked")), n(format!("{what}_absent")))
}

fn counts(report: &Value) -> (u64, u64) {
    counted(report, "outputs")
}

#[test]
fn integrity_validate_fails_on_a_step_output_changed_after_its_outcome() {
    let (fx, outputs) = chain_run();
    let (code, report) = integrity(&fx);
    assert_eq!(code, Some(0), "{report}");
    let (checked, absent) = counts(&report);
    assert!(checked > 0, "{report}");
    assert_eq!(absent, 0, "{report}");

    // One byte of gen's lines.txt.
    let file = fx.path(&format!("{outputs}/lines.txt"));
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let (code, report) = integrity(&fx);
    assert_eq!(code, Some(1), "{report}");
    let text = problems(&report);
    assert!(text.contains("lines.txt"), "{text}");
    assert!(text.contains("step 'gen'"), "{text}");
    assert!(text.contains("differs from what was recorded"), "{text}");
    assert_eq!(report["problems"].as_array().unwrap().len(), 1, "{text}");
    // The text report names it too.
    let out = fx.run(&["integrity-validate"]);
    out.expect_code(1);
    assert!(out.stdout_text().contains("lines.txt"), "{}", out.text());
}

#[test]
fn integrity_validate_counts_absent_outputs_without_failing() {
    let (fx, outputs) = chain_run();
    let (_, before) = integrity(&fx);
    let (checked, _) = counts(&before);
    std::fs::remove_dir_all(fx.path(&outputs)).unwrap();
    let (code, report) = integrity(&fx);
    assert_eq!(code, Some(0), "{report}");
    let (now_checked, absent) = counts(&report);
    assert!(absent > 0, "{report}");
    assert_eq!(now_checked + absent, checked, "{report}");
    // The whole runtime directory gone: nothing to compare, nothing wrong.
    std::fs::remove_dir_all(fx.path("runtime")).unwrap();
    fx.integrity().unwrap();
}

#[test]
fn integrity_validate_fails_on_a_file_changed_inside_a_dir_output() {
    let (fx, outputs) = chain_run();
    let file = fx.path(&format!("{outputs}/bundle/a.txt"));
    assert!(file.is_file(), "{file:?}");
    std::fs::write(&file, b"changed\n").unwrap();
    let (code, report) = integrity(&fx);
    assert_eq!(code, Some(1), "{report}");
    let text = problems(&report);
    assert!(text.contains("bundle"), "{text}");
    assert!(text.contains("output 'bundle'"), "{text}");
}

/// The fixture's delivered package (deliver_local's copy of pack's package.zip).
const DELIVERED: &str = "runtime/deliveries/t1/chain/deliver/package.zip";

fn delivery_counts(report: &Value) -> (u64, u64) {
    counted(report, "deliveries")
}

/// A local delivery's copy is what its receipt recorded: one changed byte, or the copy swapped
/// for a link to identical bytes, fails integrity-validate naming the run and step; a cleared
/// deliveries folder is counted, not a problem.
#[test]
fn integrity_validate_fails_on_a_delivered_copy_that_is_not_its_receipts() {
    let (fx, _) = chain_run();
    let (code, report) = integrity(&fx);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(delivery_counts(&report), (1, 0), "{report}");
    let copy = fx.path(DELIVERED);
    let good = std::fs::read(&copy).unwrap();

    let mut bytes = good.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&copy, &bytes).unwrap();
    let (code, report) = integrity(&fx);
    assert_eq!(code, Some(1), "{report}");
    let text = problems(&report);
    assert!(text.contains("deliver/package.zip"), "{text}");
    assert!(text.contains("delivered copy of run"), "{text}");
    assert!(text.contains("step 'deliver'"), "{text}");
    assert!(text.contains("differs from what was recorded"), "{text}");
    let out = fx.run(&["integrity-validate"]);
    out.expect_code(1);
    assert!(
        out.stdout_text().contains("delivered copy"),
        "{}",
        out.text()
    );

    // The same bytes behind a link: not the file the receipt names.
    let elsewhere = fx.path("elsewhere.zip");
    std::fs::write(&elsewhere, &good).unwrap();
    std::fs::remove_file(&copy).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &copy).unwrap();
    let (code, report) = integrity(&fx);
    assert_eq!(code, Some(1), "{report}");
    assert!(problems(&report).contains("cannot be checked"), "{report}");

    std::fs::remove_file(&copy).unwrap();
    let (code, report) = integrity(&fx);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(delivery_counts(&report), (0, 1), "{report}");
}

/// Every run of a step delivers into the same folder: a later run's copy replaces the earlier
/// one's, and only the latest receipt for the file is compared.
#[test]
fn a_later_runs_delivery_is_compared_with_its_own_receipt_not_the_earlier_ones() {
    let (fx, _) = chain_run();
    let first = std::fs::read(fx.path(DELIVERED)).unwrap();
    fx.workorder(
        "chain",
        &crate::support::orch::CHAIN.replace("alpha beta gamma delta", "epsilon zeta"),
    );
    let (code, sum, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}\n{stderr}");
    assert_eq!(run_of(&sum, "chain")["run"], 2, "{sum}");
    assert_ne!(std::fs::read(fx.path(DELIVERED)).unwrap(), first);
    let (code, report) = integrity(&fx);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(delivery_counts(&report), (1, 0), "{report}");
    // The first run's bytes back in place: not what the latest receipt recorded.
    std::fs::write(fx.path(DELIVERED), &first).unwrap();
    let (code, report) = integrity(&fx);
    assert_eq!(code, Some(1), "{report}");
    assert!(problems(&report).contains("attempt 1"), "{report}");
}
