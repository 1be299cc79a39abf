//! package_std as a step of the real binary: it packs only the bytes its bound outputs' steps
//! recorded, whatever changes them between its check and its read.
use crate::support::check::{assert_has, sha256_hex, zip_entries};
use crate::support::orch::{run_of, step_dir, step_of};
use crate::support::pause::run_paused;
use crate::support::Fx;
use serde_json::Value;
use std::path::Path;

/// gen leaves `bundle/` (a.txt, sub/b.txt) and data.json; pack packs both; ship delivers.
const SWAP_ORDER: &str = "work_order_id: swap
steps:
  - {step_id: make, module_id: gen, kind: transform, inputs: {text: a b}}
  - step_id: pack
    module_id: package_std
    kind: packaging
    inputs:
      bound_outputs:
        - {from_step: make, output_id: bundle, as_path: bundle}
        - {from_step: make, output_id: data_json, as_path: data.json}
  - step_id: ship
    module_id: deliver_local
    kind: delivery
    inputs:
      package_zip: {from_step: pack, output_id: package_zip}
";

/// Credits a step's billing lines add up to (SPEND less REFUND).
fn net_charge(fx: &Fx, step: &str) -> i64 {
    fx.records("billing.jsonl")
        .iter()
        .filter(|r| r["step_id"] == step)
        .map(|r| r["amount_credits"].as_i64().unwrap())
        .sum()
}

/// Replace `path` (by a rename, as a same-uid process would) with `bytes`.
fn swap_in(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("swap");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// One orchestrator pass whose package_std step pauses once it has checked its sources:
/// `during` gets the run's make/outputs folder then, and the pass goes on when it returns.
/// The pass's `--json` summary.
fn pass_with_swap(fx: &Fx, during: impl FnOnce(&Path)) -> Value {
    let args = ["orchestrator", "--json"];
    let out = run_paused(fx, &args, "package_std_checked", || {
        let runs = fx.path("runtime/runs/t1/swap");
        let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap();
        during(&run.path().join("make/outputs"));
    });
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Attack (docs/security.md, "replace an earlier step's output ... by a same-uid process"):
/// a file of a bound output is swapped, same size, after package_std checked it against its
/// step's record and before it is packed, and put back afterwards. What was packed is
/// compared with the records as it is read: the step fails `module_failed`, refunded, no
/// package or manifest is left, nothing is delivered, and a retry with the recorded bytes
/// back packs and delivers exactly them. For a file of a dir output and for a file output.
/// Until 2026-12-04 the swapped bytes were packed, delivered under a `verified` receipt, and
/// integrity-validate stayed clean once the file was put back.
#[test]
fn a_source_swapped_after_its_check_is_never_packed_and_the_step_is_refunded() {
    for (target, evil) in [
        ("bundle/a.txt", &b"X\n"[..]),
        (
            "data.json",
            &br#"{"meta": {"count": 2}, "words": ["a", "z"]}"#[..],
        ),
    ] {
        let fx = Fx::new();
        fx.workorder("swap", SWAP_ORDER);
        fx.topup(20, "r1");
        let mut good = Vec::new();
        let sum = pass_with_swap(&fx, |outputs| {
            good = std::fs::read(outputs.join(target)).unwrap();
            assert_eq!(good.len(), evil.len(), "{target}: a same-size swap");
            swap_in(&outputs.join(target), evil);
        });
        let run = run_of(&sum, "swap");
        let pack = step_of(run, "pack");
        assert_eq!(pack["status"], "FAILED", "{target}: {run}");
        assert_eq!(pack["reason_slug"], "module_failed", "{target}: {run}");
        let message = pack["message"].as_str().unwrap();
        assert_has(
            message,
            "changed after it was checked against what its step recorded",
        );
        assert_has(message, target);
        eprintln!("package swap: {target}: {message}");
        assert_eq!(net_charge(&fx, "pack"), 0, "{target}: pack is refunded");
        let pack_outputs = fx.path(&format!("{}/outputs", step_dir(run, "pack")));
        let left: Vec<_> = std::fs::read_dir(&pack_outputs)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{target}: no package is kept: {left:?}");
        assert_eq!(step_of(run, "ship")["status"], "SKIPPED", "{run}");
        assert!(!fx.path("runtime/deliveries").exists(), "nothing delivered");

        // The recorded bytes back: the retry packs them, and only them, and delivers them.
        let make = fx.path(&format!("{}/outputs", step_dir(run, "make")));
        swap_in(&make.join(target), &good);
        let (code, sum, stderr) = fx.orchestrate(&["--retry-failed"]);
        assert_eq!(code, 0, "{sum}\n{stderr}");
        let run = run_of(&sum, "swap");
        assert_eq!(run["status"], "COMPLETED", "{target}: {run}");
        let delivered = fx.bytes("runtime/deliveries/t1/swap/ship/package.zip");
        let entries = zip_entries(&delivered);
        let packed = entries.iter().find(|(name, _)| name == target).unwrap();
        assert_eq!(packed.1, good, "{target}: the recorded bytes are delivered");
        assert_eq!(
            sha256_hex(&delivered),
            fx.of_type("evidence.jsonl", "delivery_receipt")[0]["sha256"]
                .as_str()
                .unwrap()
        );
        fx.integrity().unwrap();
    }
}

/// A package is its step's output, and a step may leave at most 4 GiB: package_std refuses
/// bound outputs whose package could pass that (counted as if nothing compressed: the ZIP's
/// headers, deflate's worst case and the manifests on top of the files) before it is
/// charged, `input_invalid`, saying to split them. Here one 4 GiB output (sparse: it costs
/// no disk), which its own step may leave, packed as a `.zip` (stored, so its package would
/// hold all of it). Until 2026-12-04 the packaging step was charged, wrote a 4 GiB + 232
/// bytes package, failed `outputs_too_large` (refunded), and did so again on every retry.
#[test]
fn a_package_that_could_pass_4_gib_is_refused_before_the_charge_saying_to_split_it() {
    let fx = Fx::new();
    fx.workorder(
        "big",
        "work_order_id: big
steps:
  - {step_id: make, module_id: sparse, kind: transform, inputs: {size_mib: 4096}}
  - step_id: pack
    module_id: package_std
    kind: packaging
    inputs:
      bound_outputs:
        - {from_step: make, output_id: big, as_path: big.zip}
  - step_id: ship
    module_id: deliver_local
    kind: delivery
    inputs:
      package_zip: {from_step: pack, output_id: package_zip}
",
    );
    fx.topup(10, "r1");
    let (_, sum, stderr) = fx.orchestrate(&[]);
    let run = run_of(&sum, "big");
    assert_eq!(
        step_of(run, "make")["status"],
        "COMPLETED",
        "{run}\n{stderr}"
    );
    let pack = step_of(run, "pack");
    assert_eq!(pack["status"], "FAILED", "{run}");
    assert_eq!(pack["reason_slug"], "input_invalid", "{run}");
    let message = pack["message"].as_str().unwrap();
    assert_has(
        message,
        "the package would exceed 4 GiB, the most a step may leave",
    );
    assert_has(message, "1 file of 4294967296 bytes");
    assert_has(
        message,
        "split bound_outputs across several package_std steps",
    );
    let charged: Vec<_> = fx
        .records("billing.jsonl")
        .into_iter()
        .filter(|r| r["type"] == "SPEND")
        .map(|r| r["step_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(charged, ["make"], "only make is charged");
    assert_eq!(net_charge(&fx, "pack"), 0);
    assert!(
        !fx.path(&format!("{}/outputs/package.zip", step_dir(run, "pack")))
            .exists(),
        "nothing was packed"
    );
    assert_eq!(step_of(run, "ship")["status"], "SKIPPED", "{run}");
}
