//! A step reads an earlier step's file/dir outputs only as that step's outcome recorded them:
//! a package or output changed after a crash, or before a --retry-failed, is never delivered.
use crate::support::orch::{funded_order, run_of, step_of, CHAIN};
use crate::support::Fx;
use serde_json::Value;

/// The one file of the chain's (single) run that ends in `rel` beneath `runtime/runs/t1/chain`.
fn run_file(fx: &Fx, step: &str, rel: &str) -> std::path::PathBuf {
    let runs = fx.path("runtime/runs/t1/chain");
    let mut found: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path().join(step).join("outputs").join(rel))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// The sha256 the outcome of `step` recorded for output `output_id`.
fn recorded_sha(fx: &Fx, step: &str, output_id: &str) -> String {
    let outcomes = fx.of_type("evidence.jsonl", "step_outcome");
    let o = outcomes
        .iter()
        .rfind(|o| o["step_id"] == step && o["status"] == "COMPLETED")
        .unwrap_or_else(|| panic!("no completed outcome of {step}"));
    let out = o["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["output_id"] == output_id)
        .unwrap();
    out["sha256"].as_str().unwrap().to_string()
}

/// The delivered package, if any.
fn delivered(fx: &Fx) -> Option<Vec<u8>> {
    std::fs::read(fx.path("runtime/deliveries/t1/chain/deliver/package.zip")).ok()
}

fn crash_at(fx: &Fx, failpoint: &str) {
    let out = fx.run_env(&["orchestrator"], &[("PLATFORM_FAILPOINT", failpoint)]);
    assert!(!out.status.success(), "the failpoint aborts the process");
}

fn deliver_step(sum: &Value) -> Value {
    step_of(run_of(sum, "chain"), "deliver").clone()
}

/// A retry that delivers the package as pack recorded it, once it is restored.
fn restored_package_is_delivered(fx: &Fx, zip: &std::path::Path, original: &[u8]) {
    std::fs::write(zip, original).unwrap();
    let (code, sum, stderr) = fx.orchestrate(&["--retry-failed"]);
    assert_eq!(code, 0, "{sum}\n{stderr}");
    assert_eq!(deliver_step(&sum)["status"], "COMPLETED", "{sum}");
    assert_eq!(delivered(fx).as_deref(), Some(original));
    let receipts = fx.of_type("evidence.jsonl", "delivery_receipt");
    assert_eq!(receipts.len(), 1);
    assert_eq!(
        receipts[0]["sha256"].as_str().unwrap(),
        recorded_sha(fx, "pack", "package_zip")
    );
    fx.integrity().unwrap();
}

#[test]
fn a_package_replaced_after_a_crash_is_not_delivered_and_the_delivery_is_refunded() {
    let fx = funded_order("chain", CHAIN, 100);
    // The 4th step_started is deliver's: it is charged, pack's outcome is durable.
    crash_at(&fx, "after_step_started@4");
    let zip = run_file(&fx, "pack", "package.zip");
    let original = std::fs::read(&zip).unwrap();
    std::fs::write(&zip, b"not the package").unwrap();

    let (code, sum, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}\n{stderr}");
    let step = deliver_step(&sum);
    assert_eq!(step["status"], "FAILED", "{sum}");
    assert_eq!(step["reason_slug"], "module_failed", "{sum}");
    let message = step["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("is not what the step recorded"),
        "{message}"
    );
    assert_eq!(delivered(&fx), None, "nothing delivered");
    assert!(fx.of_type("evidence.jsonl", "delivery_receipt").is_empty());
    // deliver's 1 credit, charged before the crash, came back: 8 charged, 1 refunded.
    let refunds = fx.of_type("billing.jsonl", "REFUND");
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["step_id"], "deliver");
    assert_eq!(fx.balance(), 93);
    // The ledger is whole; the replaced package is what integrity-validate reports.
    let report = fx.integrity().unwrap_err();
    assert!(
        report.contains("package.zip") && report.contains("differs from what was recorded"),
        "{report}"
    );

    restored_package_is_delivered(&fx, &zip, &original);
}

#[test]
fn a_retry_of_a_failed_delivery_refuses_a_package_replaced_since_before_charging() {
    let fx = funded_order("chain", CHAIN, 100);
    // A file where the delivery folder goes: the first delivery fails, refunded.
    fx.write("runtime/deliveries/t1/chain/deliver", "in the way");
    let (code, sum, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}\n{stderr}");
    assert_eq!(
        deliver_step(&sum)["reason_slug"],
        "delivery_failed",
        "{sum}"
    );
    std::fs::remove_file(fx.path("runtime/deliveries/t1/chain/deliver")).unwrap();
    let zip = run_file(&fx, "pack", "package.zip");
    let original = std::fs::read(&zip).unwrap();
    std::fs::write(&zip, b"not the package").unwrap();
    let spends = fx.of_type("billing.jsonl", "SPEND").len();
    let balance = fx.balance();

    let (code, sum, stderr) = fx.orchestrate(&["--retry-failed"]);
    assert_eq!(code, 0, "{sum}\n{stderr}");
    let step = deliver_step(&sum);
    assert_eq!(step["status"], "FAILED", "{sum}");
    assert_eq!(step["reason_slug"], "input_invalid", "{sum}");
    assert_eq!(delivered(&fx), None, "nothing delivered");
    assert!(fx.of_type("evidence.jsonl", "delivery_receipt").is_empty());
    assert_eq!(
        fx.of_type("billing.jsonl", "SPEND").len(),
        spends,
        "nothing charged"
    );
    assert_eq!(fx.balance(), balance);

    restored_package_is_delivered(&fx, &zip, &original);
}

#[test]
fn outputs_changed_after_a_crash_are_not_read_by_selectors_or_packaged() {
    // echo reads gen's lines.txt with selectors; pack packs gen's `bundle` dir.
    // echo's crash: gen 5 + echo 1 charged, echo's refunded; pack's: gen 5, echo 1, pack 1.
    for (failpoint, step, rel, balance) in [
        ("after_step_started@2", "echo", "lines.txt", 95),
        ("after_step_started@3", "pack", "bundle", 94),
    ] {
        let fx = funded_order("chain", CHAIN, 100);
        crash_at(&fx, failpoint);
        let at = run_file(&fx, "gen", rel);
        let file = if at.is_dir() { at.join("a.txt") } else { at };
        assert!(file.is_file(), "{file:?}");
        std::fs::write(&file, b"changed\n").unwrap();
        let (code, sum, stderr) = fx.orchestrate(&[]);
        assert_eq!(code, 0, "{sum}\n{stderr}");
        let s = step_of(run_of(&sum, "chain"), step);
        assert_eq!(s["status"], "FAILED", "{step}: {sum}");
        assert_eq!(s["reason_slug"], "module_failed", "{step}: {sum}");
        assert!(
            s["message"]
                .as_str()
                .unwrap_or_default()
                .contains("is not what the step recorded"),
            "{s}"
        );
        assert_eq!(delivered(&fx), None);
        assert_eq!(fx.balance(), balance, "{step}");
    }
}
