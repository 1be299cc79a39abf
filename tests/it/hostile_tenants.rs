//! Hostile tenants (SPEC §2 rule 4, §6): what a tenant's files and a module's outputs can make
//! the platform read. Real races (a folder or an output swapped for a link while the real
//! orchestrator runs), hard links, FIFOs and linked tenant folders; every test asserts that no
//! byte of tenant t2 reaches t1's outputs, packages or deliveries, and what was charged.
use crate::support::check::{assert_has, sha256_hex, strs};
use crate::support::fx::{Fx, Transcript};
use crate::support::orch::{run_of, step_of};
use serde_json::Value;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Every file of t2's assets starts with this.
const SECRET: &[u8] = b"t2 private data";
/// t1's `note.txt` (tests/fixtures/orch).
const MINE: &[u8] = b"asset text for t1\n";

/// The orch fixture plus tenant t2 and the hostile modules, t1 funded.
fn hostile_fx() -> Fx {
    let fx = Fx::new().overlay("hostile", "");
    fx.topup(1000, "initial");
    fx
}

/// The hostile fixture with `n` work orders of t1 named `<prefix>NN`, from `yaml(id)`.
fn fx_with_orders(prefix: &str, n: usize, yaml: fn(&str) -> String) -> (Fx, Vec<String>) {
    let fx = hostile_fx();
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}{i:02}")).collect();
    for id in &ids {
        fx.workorder(id, &yaml(id));
    }
    (fx, ids)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The bytes of a file, or of each entry of a ZIP, decompressed (a package deflates what it
/// holds, so a byte search of the ZIP itself would miss a leak).
fn contents(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let Ok(mut zip) = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())) else {
        return vec![bytes];
    };
    let mut out = vec![bytes];
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push(data);
    }
    out
}

/// Files under the runtime dir and the billing state that hold t2's bytes, except those for
/// which `exempt` holds (a module's own outputs that hold a link it made itself).
fn leaks(fx: &Fx, exempt: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["runtime", ".billing-state"] {
        for e in walkdir::WalkDir::new(fx.path(dir)).into_iter().flatten() {
            // Not following links: a link is not something the platform wrote.
            if e.file_type().is_file()
                && !exempt(e.path())
                && contents(e.path()).iter().any(|c| contains(c, SECRET))
            {
                out.push(e.path().to_path_buf());
            }
        }
    }
    out
}

/// Net credits (SPEND + REFUND) posted for one step of one work order of t1.
fn net_charge(fx: &Fx, wo: &str, step: &str) -> i64 {
    fx.records("billing.jsonl")
        .iter()
        .filter(|r| r["tenant_id"] == "t1" && r["work_order_id"] == wo && r["step_id"] == step)
        .map(|r| r["amount_credits"].as_i64().unwrap())
        .sum()
}

fn spends_for(fx: &Fx, wo: &str, step: &str) -> usize {
    fx.records("billing.jsonl")
        .iter()
        .filter(|r| r["type"] == "SPEND" && r["work_order_id"] == wo && r["step_id"] == step)
        .count()
}

/// The outputs folder of a step of the only run of t1's work order `wo`.
fn outputs_of(fx: &Fx, run: &Value, step: &str) -> PathBuf {
    fx.path(&format!(
        "runtime/runs/t1/{}/{}/{step}/outputs",
        run["work_order_id"].as_str().unwrap(),
        run["run_id"].as_str().unwrap()
    ))
}

/// Swaps pairs of paths with RENAME_EXCHANGE (atomic: each path is always one or the other)
/// as fast as it can, from a thread, until `finish`. `pairs` is asked again on every round,
/// so it can pick up folders that appear while the orchestrator runs.
struct Swapper {
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Swapper {
    fn start(pairs: impl Fn() -> Vec<(PathBuf, PathBuf)> + Send + 'static) -> Swapper {
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), swaps.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let pairs = pairs();
                if pairs.is_empty() {
                    std::thread::yield_now();
                }
                for (a, b) in pairs {
                    if exchange(&a, &b) {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        Swapper {
            stop,
            swaps,
            thread,
        }
    }

    /// Stop, and say how many swaps were made.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        self.swaps.load(Ordering::Relaxed)
    }
}

fn exchange(a: &Path, b: &Path) -> bool {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        a,
        rustix::fs::CWD,
        b,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .is_ok()
}

const ASSET_RACE_ORDERS: usize = 10;

fn asset_race_order(id: &str) -> String {
    let copy = |s: &str| {
        format!("  - {{step_id: {s}, module_id: assetcopy, kind: transform, inputs: {{src: {{asset: note.txt}}}}}}\n")
    };
    format!(
        "work_order_id: {id}\nsteps:\n{}{}{}{}  - step_id: pack\n    module_id: package_std\n    kind: packaging\n    inputs:\n      bound_outputs:\n        - {{from_step: c1, output_id: copy, as_path: c1.bin}}\n  - step_id: deliver\n    module_id: deliver_local\n    kind: delivery\n    inputs:\n      package_zip: {{from_step: pack, output_id: package_zip}}\n  - step_id: raw\n    module_id: deliver_local\n    kind: delivery\n    inputs:\n      package_zip: {{asset: note.txt}}\n",
        copy("c1"),
        copy("c2"),
        copy("c3"),
        copy("c4"),
    )
}

/// Attack 1: while the orchestrator runs 50 steps that read t1's asset `note.txt`, a thread
/// swaps t1's `assets` folder with a link to t2's assets (which hold a `note.txt` too) as fast
/// as it can. Every step completes with t1's bytes (from a copy in its own folder, never a
/// path inside tenants/) or fails `input_invalid` with nothing charged; t2's bytes reach no
/// output, package, delivery or record.
#[cfg(target_os = "linux")]
#[test]
fn an_assets_folder_swapped_for_a_link_mid_run_never_hands_over_another_tenants_file() {
    let (fx, ids) = fx_with_orders("race", ASSET_RACE_ORDERS, asset_race_order);
    symlink("../t2/assets", fx.path("tenants/t1/swap")).unwrap();
    let (assets, swap, runs) = (
        fx.path("tenants/t1/assets"),
        fx.path("tenants/t1/swap"),
        fx.path("runtime/runs/t1"),
    );
    // The race starts once steps run (after validation, which would otherwise refuse most work
    // orders outright): the run-time open and copy is what is under attack here.
    let swapper = Swapper::start(move || {
        if runs.exists() {
            vec![(assets.clone(), swap.clone())]
        } else {
            Vec::new()
        }
    });
    let out = fx.run(&["orchestrator", "--json"]);
    let swaps = swapper.finish();
    if fx.path("tenants/t1/swap").is_dir() && !fx.path("tenants/t1/swap").is_symlink() {
        assert!(exchange(
            &fx.path("tenants/t1/assets"),
            &fx.path("tenants/t1/swap")
        ));
    }
    assert!(swaps > 0, "the swapper never ran: {}", out.text());
    assert_eq!(leaks(&fx, |_| false), Vec::<PathBuf>::new());
    let summary = out.json();

    let (mut completed, mut refused) = (0, 0);
    for id in &ids {
        let run = run_of(&summary, id);
        for step in run["steps"].as_array().unwrap() {
            let sid = step["step_id"].as_str().unwrap();
            let reads_asset = sid.starts_with('c') || sid == "raw";
            match (
                step["status"].as_str().unwrap(),
                step["reason_slug"].as_str(),
            ) {
                ("COMPLETED", _) if sid.starts_with('c') => {
                    let dir = outputs_of(&fx, run, sid);
                    assert_eq!(
                        std::fs::read(dir.join("copy.bin")).unwrap(),
                        MINE,
                        "{id}/{sid}"
                    );
                    let given = std::fs::read_to_string(dir.join("where.txt")).unwrap();
                    assert_has(&given, &format!("/{sid}/inputs/src/note.txt"));
                    assert!(
                        !given.contains("/tenants/"),
                        "a path inside tenants/: {given}"
                    );
                    completed += 1;
                }
                ("COMPLETED", _) if sid == "raw" => {
                    let copy = fx.path(&format!("runtime/deliveries/t1/{id}/raw/note.txt"));
                    assert_eq!(std::fs::read(copy).unwrap(), MINE, "{id}/raw");
                    completed += 1;
                }
                ("COMPLETED", _) => {}
                ("FAILED", Some("input_invalid")) if reads_asset => {
                    let msg = step["message"].as_str().unwrap();
                    assert!(msg.contains("symbolic link"), "{id}/{sid}: {msg}");
                    assert_eq!(spends_for(&fx, id, sid), 0, "{id}/{sid} was charged");
                    refused += 1;
                }
                ("SKIPPED", Some("upstream_failed")) if !reads_asset => {}
                other => panic!("{id}/{sid}: unexpected {other:?}: {run}"),
            }
        }
    }
    eprintln!("hostile: asset race: {swaps} swaps, {completed} reads completed with t1's bytes, {refused} refused");
    assert!(refused > 0, "the race never hit a read ({swaps} swaps)");
    assert!(completed > 0, "no read ever completed");
    fx.integrity().unwrap();
}

const OUTPUT_RACE_ORDERS: usize = 8;

fn output_race_order(id: &str) -> String {
    format!(
        "work_order_id: {id}\nsteps:\n  - {{step_id: s, module_id: tamper, kind: transform, inputs: {{mode: plain}}}}\n  - step_id: read\n    module_id: echo_inputs\n    kind: transform\n    inputs:\n      all_text: {{from_step: s, from_file: data.txt}}\n  - step_id: pack\n    module_id: package_std\n    kind: packaging\n    inputs:\n      bound_outputs:\n        - {{from_step: s, output_id: data, as_path: data.txt}}\n        - {{from_step: s, output_id: tree, as_path: tree}}\n  - step_id: deliver\n    module_id: deliver_local\n    kind: delivery\n    inputs:\n      package_zip: {{from_step: pack, output_id: package_zip}}\n"
    )
}

/// Pairs (output file, link to t2's asset beside the outputs folder) of every producer step
/// `s` whose outputs exist, making the links on first sight.
fn output_pairs(runs: &Path, secret: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut pairs = Vec::new();
    let dirs = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    for wo in dirs(runs) {
        for run in dirs(&wo) {
            let s = run.join("s");
            for (out, link) in [
                ("outputs/data.txt", "swap-data"),
                ("outputs/tree/a.txt", "swap-tree"),
            ] {
                let (out, link) = (s.join(out), s.join(link));
                if out.symlink_metadata().is_err() {
                    continue;
                }
                if link.symlink_metadata().is_err() {
                    let _ = symlink(secret, &link);
                }
                pairs.push((out, link));
            }
        }
    }
    pairs
}

/// Attack 3, raced: while later steps read a producer's outputs (a from_file binding,
/// package_std with a file and a dir output, deliver_local of the package), a thread swaps
/// the producer's `data.txt` and `tree/a.txt` with links to t2's asset. Every reader reads
/// t1's bytes or refuses (nothing charged, or refunded); no output, package or delivery holds
/// t2's bytes.
#[cfg(target_os = "linux")]
#[test]
fn module_outputs_swapped_for_links_are_never_read_through() {
    let (fx, ids) = fx_with_orders("orace", OUTPUT_RACE_ORDERS, output_race_order);
    let (runs, secret) = (
        fx.path("runtime/runs/t1"),
        fx.path("tenants/t2/assets/note.txt"),
    );
    let swapper = Swapper::start(move || output_pairs(&runs, &secret));
    let out = fx.run(&["orchestrator", "--json"]);
    let swaps = swapper.finish();
    assert!(swaps > 0, "the swapper never ran: {}", out.text());
    // Links are not followed by the scan: a producer's folder holding one is no leak.
    assert_eq!(leaks(&fx, |_| false), Vec::<PathBuf>::new());
    let summary = out.json();

    let mut refused = 0;
    for id in &ids {
        let run = run_of(&summary, id);
        for step in run["steps"].as_array().unwrap() {
            let sid = step["step_id"].as_str().unwrap();
            let slug = step["reason_slug"].as_str();
            match (sid, step["status"].as_str().unwrap(), slug) {
                ("read", "COMPLETED", _) => {
                    let echoed = std::fs::read(outputs_of(&fx, run, "read").join("echoed.json"));
                    let v: Value = serde_json::from_slice(&echoed.unwrap()).unwrap();
                    assert_eq!(v["all_text"], "data of t1 here\n", "{id}");
                }
                ("pack", "COMPLETED", _) => {
                    let zip = outputs_of(&fx, run, "pack").join("package.zip");
                    let entries = contents(&zip);
                    assert!(entries.contains(&b"data of t1 here\n".to_vec()), "{id}");
                    assert!(entries.contains(&b"tree file of t1\n".to_vec()), "{id}");
                }
                (_, "COMPLETED", _) => {}
                ("s", "FAILED", Some("outputs_missing"))
                | (
                    "read" | "pack" | "deliver",
                    "FAILED",
                    Some("input_invalid" | "module_failed"),
                ) => {
                    // The runner says "symlink", the readers "symbolic link"; an output the
                    // swapper had moved away at that instant is simply missing.
                    let msg = step["message"].as_str().unwrap();
                    assert!(
                        msg.contains("symlink")
                            || msg.contains("symbolic link")
                            || (sid == "s" && msg.contains("declared outputs missing")),
                        "{id}/{sid}: {msg}"
                    );
                    assert_eq!(net_charge(&fx, id, sid), 0, "{id}/{sid}: charged");
                    refused += 1;
                }
                (_, "SKIPPED", Some("upstream_failed")) => {}
                other => panic!("{id}/{sid}: unexpected {other:?}: {run}"),
            }
        }
    }
    eprintln!("hostile: output race: {swaps} swaps, {refused} steps refused a link");
    assert!(refused > 0, "the race never hit ({swaps} swaps)");
    // The ledger verifies; the only problems are outputs the swapper left as links after
    // their outcome was recorded, which integrity-validate reports and never follows.
    if let Err(text) = fx.integrity() {
        let links = text
            .lines()
            .filter(|l| l.contains("/outputs/") && l.contains("symbolic link"))
            .count();
        assert!(links > 0, "{text}");
        assert!(text.contains(&format!("\n{links} problem(s)")), "{text}");
    }
}

/// Attack 3 with hard links: a module leaves `data.txt` (or a file in its `dir` output) as a
/// hard link to t2's asset. Readers refuse it before charging (from_file, package_std), so
/// t2's bytes reach no later output, package or delivery.
#[test]
fn hard_linked_module_outputs_are_refused_by_every_reader() {
    let fx = hostile_fx();
    let target = fx.path("tenants/t2/assets/private.txt");
    let producer = |p: &Path| p.components().any(|c| c.as_os_str() == "s");
    for mode in ["hardfile", "harddir"] {
        let id = format!("out_{mode}");
        let yaml = output_race_order(&id).replace(
            "inputs: {mode: plain}",
            &format!("inputs: {{mode: {mode}, target: \"{}\"}}", target.display()),
        );
        fx.workorder(&id, &yaml);
        let out = fx.run(&["orchestrator", "--json", "--work-order-id", &id]);
        // The producer's own folder holds the link it made; nothing the platform wrote does.
        assert_eq!(leaks(&fx, producer), Vec::<PathBuf>::new(), "{id}");
        let summary = out.json();
        let run = run_of(&summary, &id);
        let status = |sid: &str| {
            let s = step_of(run, sid);
            (
                s["status"].as_str().unwrap().to_string(),
                s["reason_slug"].as_str().map(String::from),
                s["message"].as_str().unwrap_or_default().to_string(),
            )
        };
        let (s_status, _, _) = status("s");
        if s_status == "COMPLETED" {
            // The runner accepted the outputs; every reader of the linked file refuses it.
            let pack = status("pack");
            assert_eq!(pack.1.as_deref(), Some("input_invalid"), "{id}: {run}");
            assert!(pack.2.contains("hard links"), "{id}: {}", pack.2);
            assert_eq!(spends_for(&fx, &id, "pack"), 0);
            let read = status("read");
            if mode == "hardfile" {
                assert_eq!(read.1.as_deref(), Some("input_invalid"), "{id}: {run}");
                assert!(read.2.contains("hard links"), "{id}: {}", read.2);
                assert_eq!(spends_for(&fx, &id, "read"), 0);
            } else {
                assert_eq!(read.0, "COMPLETED", "{id}: data.txt is a plain file: {run}");
            }
            assert_eq!(status("deliver").1.as_deref(), Some("upstream_failed"));
        } else {
            // A runner that refuses hard-linked outputs itself stops it even earlier.
            for later in ["read", "pack", "deliver"] {
                assert_eq!(status(later).0, "SKIPPED", "{id}: {run}");
            }
        }
    }
    fx.integrity().unwrap();
}

/// An asset that becomes a hard link to t2's file, a symlink to it, or a FIFO after
/// validation (an earlier step swaps it): the step that reads it fails `input_invalid`
/// before anything is charged, and the FIFO does not block the run.
#[test]
fn an_asset_swapped_after_validation_fails_input_invalid_uncharged() {
    let fx = hostile_fx();
    let target = fx.path("tenants/t2/assets/private.txt");
    for (mode, expect) in [
        ("relink", "hard links"),
        ("symlink", "symbolic link"),
        ("fifo", "FIFO"),
    ] {
        let id = format!("late_{mode}");
        let asset = fx.path(&format!("tenants/t1/assets/{id}.txt"));
        std::fs::write(&asset, "t1 late asset\n").unwrap();
        fx.workorder(
            &id,
            &format!(
                "work_order_id: {id}\nsteps:\n  - {{step_id: t, module_id: tamper, kind: transform, inputs: {{mode: {mode}, target: \"{}\", path: \"{}\"}}}}\n  - {{step_id: c, module_id: assetcopy, kind: transform, inputs: {{src: {{asset: {id}.txt}}}}}}\n",
                target.display(),
                asset.display()
            ),
        );
        let out = fx.run_watched(&["orchestrator", "--json", "--work-order-id", &id]);
        assert_eq!(leaks(&fx, |_| false), Vec::<PathBuf>::new(), "{id}");
        let summary = out.json();
        let run = run_of(&summary, &id);
        let c = step_of(run, "c");
        assert_eq!(c["status"], "FAILED", "{id}: {run}");
        assert_eq!(c["reason_slug"], "input_invalid", "{id}: {run}");
        assert!(c["message"].as_str().unwrap().contains(expect), "{id}: {c}");
        assert_eq!(spends_for(&fx, &id, "c"), 0, "{id}: charged");
        assert_eq!(run["steps"][0]["status"], "COMPLETED", "{id}: {run}");
    }
    assert_eq!(leaks(&fx, |_| false), Vec::<PathBuf>::new());
    fx.integrity().unwrap();
}

/// A step's copy of an asset is the tenant's data, not a runtime record: an asset named
/// `*.json` that is not JSON does not make integrity-validate fail.
#[test]
fn an_asset_copy_is_not_mistaken_for_a_runtime_record() {
    let fx = hostile_fx();
    std::fs::write(fx.path("tenants/t1/assets/rows.json"), "not JSON {\n").unwrap();
    fx.workorder(
        "rows",
        "work_order_id: rows\nsteps:\n  - {step_id: c, module_id: assetcopy, kind: transform, inputs: {src: {asset: rows.json}}}\n",
    );
    let out = fx.run(&["orchestrator", "--json"]);
    assert_eq!(
        run_of(&out.json(), "rows")["status"],
        "COMPLETED",
        "{}",
        out.text()
    );
    let run = run_of(&out.json(), "rows").clone();
    let copy = outputs_of(&fx, &run, "c")
        .parent()
        .unwrap()
        .join("inputs/src/rows.json");
    assert_eq!(std::fs::read(copy).unwrap(), b"not JSON {\n");
    fx.integrity().unwrap();
}

/// Assets that are a hard link to t2's file, a link, or a FIFO, from the start: validation
/// reports each (without hanging on the FIFO), and the orchestrator runs and charges none.
#[test]
fn hard_linked_symlinked_and_fifo_assets_are_refused_before_anything_runs() {
    let fx = hostile_fx();
    let assets = fx.path("tenants/t1/assets");
    std::fs::hard_link(
        fx.path("tenants/t2/assets/private.txt"),
        assets.join("hard.txt"),
    )
    .unwrap();
    symlink("note.txt", assets.join("alias.txt")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        assets.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let cases = [
        ("hard", "hard.txt", "has 2 hard links"),
        ("alias", "alias.txt", "symbolic link"),
        ("pipe", "pipe", "it is a FIFO"),
    ];
    for (id, file, _) in cases {
        fx.workorder(
            id,
            &format!("work_order_id: {id}\nsteps:\n  - {{step_id: c, module_id: assetcopy, kind: transform, inputs: {{src: {{asset: {file}}}}}}}\n"),
        );
    }
    let billing = fx.bytes(".billing-state/billing.jsonl");
    let out = fx.run_watched(&["orchestrator", "--json"]);
    assert_eq!(leaks(&fx, |_| false), Vec::<PathBuf>::new());
    out.expect_code(1);
    let summary = out.json();
    assert_eq!(summary["runs"], serde_json::json!([]), "{summary}");
    let invalid = strs(&summary["invalid"], "work_order_id");
    assert_eq!(invalid, vec!["alias", "hard", "pipe"]);
    assert_eq!(
        fx.bytes(".billing-state/billing.jsonl"),
        billing,
        "nothing charged"
    );
    let out = fx.run_watched(&["consistency-validate", "--format", "json"]);
    out.expect_code(1);
    let errors = out.json()["errors"].as_array().unwrap().clone();
    for (id, _, expect) in cases {
        let file = format!("tenants/t1/workorders/{id}.yml");
        assert!(
            errors
                .iter()
                .any(|e| e["file"] == file.as_str()
                    && e["message"].as_str().unwrap().contains(expect)),
            "{id}: want '{expect}' in {errors:?}"
        );
    }
}

/// Top up `tenant` as an authorised actor.
fn topup_as_tester(fx: &Fx, tenant: &str) -> Output {
    fx.topup_as(tenant, 10, "ref-1", "tester")
}

/// `tenants/<folder>` is not a tenant: consistency-validate reports it at `file`, admin-topup
/// refuses it with exit 2 and writes nothing, and a pass reports it invalid (exit 1) and
/// bills nothing to it.
fn assert_not_a_tenant(fx: &Fx, folder: &str, file: &str, expect: &str) {
    let billing = fx.bytes(".billing-state/billing.jsonl");
    let audit = fx.bytes(".billing-state/audit.jsonl");
    let out = topup_as_tester(fx, folder);
    assert_eq!(out.status.code(), Some(2), "{folder}: {}", out.text());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--tenant-id"),
        "{}",
        out.text()
    );
    assert_eq!(
        fx.bytes(".billing-state/billing.jsonl"),
        billing,
        "{folder}: topped up"
    );
    assert_eq!(
        fx.bytes(".billing-state/audit.jsonl"),
        audit,
        "{folder}: audited a top-up"
    );

    let summary = fx.run(&["orchestrator", "--json"]).expect_code(1).json();
    assert!(
        !strs(&summary["runs"], "tenant_id").contains(&folder),
        "{folder}: ran: {summary}"
    );
    assert!(
        fx.records("billing.jsonl")
            .iter()
            .all(|r| r["tenant_id"] != folder),
        "{folder}: billed"
    );
    assert!(
        !fx.path(&format!("runtime/runs/{folder}")).exists(),
        "{folder}: ran"
    );
    let invalid = summary["invalid"].as_array().unwrap();
    assert!(
        invalid
            .iter()
            .any(|i| i["tenant_id"] == folder && i["work_order_id"] == "*" && i["file"] == file),
        "{folder}: not reported invalid: {summary}"
    );

    let out = fx.run(&["consistency-validate", "--format", "json"]);
    out.expect_code(1);
    let errors = out.json()["errors"].as_array().unwrap().clone();
    assert!(
        errors
            .iter()
            .any(|e| e["file"] == file && e["message"].as_str().unwrap().contains(expect)),
        "{folder}: want '{expect}' at {file} in {errors:?}"
    );
}

const T2_JOB: &str = "work_order_id: job\nsteps:\n  - {step_id: c, module_id: assetcopy, kind: transform, inputs: {src: {asset: note.txt}}}\n";

/// Attack 2: `tenants/evil` is a link to t2's folder. It is not a tenant: t2's work order runs
/// once, as t2's and billed to t2, never as evil's.
#[test]
fn a_tenant_folder_that_is_a_link_is_not_a_tenant() {
    let fx = hostile_fx();
    std::fs::create_dir_all(fx.path("tenants/t2/workorders")).unwrap();
    fx.workorder_for("t2", "job", T2_JOB);
    fx.fund("t2", 50, "t2-initial");
    symlink("t2", fx.path("tenants/evil")).unwrap();
    assert_not_a_tenant(
        &fx,
        "evil",
        "tenants/evil",
        "the tenant folder is a symbolic link",
    );
    // t2 itself is untouched: its work order ran once, billed to t2.
    let runs = fx.run(&["runs", "--json"]);
    let runs = runs.json();
    let t2: Vec<&Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["tenant_id"] == "t2")
        .collect();
    assert_eq!(t2.len(), 1, "{runs}");
    assert_eq!(t2[0]["status"], "COMPLETED", "{runs}");
    fx.integrity().unwrap();
}

/// A folder with a name that is not a tenant id, or whose tenant.yml or workorders/ is a link
/// to another tenant's: not a tenant either. An unknown tenant cannot be topped up.
#[test]
fn a_bad_name_or_a_linked_tenant_yml_or_workorders_is_not_a_tenant() {
    let fx = hostile_fx();
    std::fs::create_dir_all(fx.path("tenants/t2/workorders")).unwrap();
    fx.workorder_for("t2", "job", T2_JOB);
    for t in ["t.bad", "t3", "t4"] {
        std::fs::create_dir_all(fx.path(&format!("tenants/{t}"))).unwrap();
    }
    std::fs::create_dir_all(fx.path("tenants/t.bad/workorders")).unwrap();
    std::fs::write(fx.path("tenants/t.bad/tenant.yml"), "tenant_id: t-bad\n").unwrap();
    fx.workorder_for("t.bad", "job", T2_JOB);
    symlink("../t2/tenant.yml", fx.path("tenants/t3/tenant.yml")).unwrap();
    std::fs::create_dir_all(fx.path("tenants/t3/workorders")).unwrap();
    fx.workorder_for("t3", "job", T2_JOB);
    std::fs::write(fx.path("tenants/t4/tenant.yml"), "tenant_id: t4\n").unwrap();
    symlink("../t2/workorders", fx.path("tenants/t4/workorders")).unwrap();

    // (admin-topup refuses `t.bad` as an id before looking at the repository.)
    assert_not_a_tenant(
        &fx,
        "t.bad",
        "tenants/t.bad/tenant.yml",
        "tenant folder name",
    );
    assert_not_a_tenant(
        &fx,
        "t3",
        "tenants/t3/tenant.yml",
        "tenant.yml is reached through a symbolic link",
    );
    assert_not_a_tenant(
        &fx,
        "t4",
        "tenants/t4/workorders",
        "workorders is reached through a symbolic link",
    );

    let billing = fx.bytes(".billing-state/billing.jsonl");
    let out = topup_as_tester(&fx, "nobody");
    out.expect_code(2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown tenant 'nobody'"),
        "{}",
        out.text()
    );
    assert_eq!(fx.bytes(".billing-state/billing.jsonl"), billing);
}

/// The orchestrator with every file it writes limited to `kib` KiB (RLIMIT_FSIZE, SIGXFSZ
/// ignored so a write past it fails EFBIG): a disk that fills up mid-copy, without root and
/// without filling the real disk.
fn orchestrate_with_file_limit(fx: &Fx, id: &str, kib: u64) -> Value {
    let mut c = std::process::Command::new("bash");
    c.current_dir(fx.root());
    crate::support::fx::clean_env(&mut c);
    c.arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {kib} && exec \"$0\" \"$@\""
        ))
        .arg(crate::support::fx::bin())
        .args(["orchestrator", "--json", "--work-order-id", id]);
    let out = c.output().unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// Step c of t1's run of `id` failed `input_invalid` with `expect` in its message, nothing
/// was charged, and no copy of the asset is left in its inputs folder.
fn assert_asset_refused_without_a_trace(fx: &Fx, summary: &Value, id: &str, expect: &str) {
    let run = run_of(summary, id);
    let c = step_of(run, "c");
    assert_eq!(c["status"], "FAILED", "{run}");
    assert_eq!(c["reason_slug"], "input_invalid", "{run}");
    assert!(c["message"].as_str().unwrap().contains(expect), "{c}");
    assert_eq!(spends_for(fx, id, "c"), 0, "charged");
    let inputs = outputs_of(fx, run, "c").parent().unwrap().join("inputs");
    let left: Vec<_> = walkdir::WalkDir::new(&inputs)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect();
    assert_eq!(left, Vec::<PathBuf>::new(), "a partial copy is left");
}

/// An asset whose copy fails part-way (the disk fills up: here the file-size limit) leaves
/// no partial copy in the step's inputs folder, where it kept the disk full for every tenant
/// on every pass; the step fails `input_invalid`, uncharged.
#[test]
fn a_failed_asset_copy_leaves_no_partial_file() {
    let fx = hostile_fx();
    std::fs::write(fx.path("tenants/t1/assets/big.bin"), vec![7u8; 4 << 20]).unwrap();
    fx.workorder(
        "big",
        "work_order_id: big\nsteps:\n  - {step_id: c, module_id: assetcopy, kind: transform, inputs: {src: {asset: big.bin}}}\n",
    );
    let summary = orchestrate_with_file_limit(&fx, "big", 1024);
    assert_asset_refused_without_a_trace(&fx, &summary, "big", "copying asset 'big.bin'");
}

/// An asset larger than the free space where the step's folder is (a sparse file: it takes
/// no space itself) is refused before a byte is copied. The file-size limit keeps the test
/// from filling the disk where that check is missing.
#[test]
fn an_asset_larger_than_the_free_disk_is_refused_before_it_is_copied() {
    let fx = hostile_fx();
    let fs = rustix::fs::statvfs(fx.root()).unwrap();
    let free = fs.f_bavail * fs.f_frsize;
    let big = std::fs::File::create(fx.path("tenants/t1/assets/huge.bin")).unwrap();
    big.set_len(free + (1 << 30)).unwrap();
    fx.workorder(
        "huge",
        "work_order_id: huge\nsteps:\n  - {step_id: c, module_id: assetcopy, kind: transform, inputs: {src: {asset: huge.bin}}}\n",
    );
    let summary = orchestrate_with_file_limit(&fx, "huge", 1024);
    assert_asset_refused_without_a_trace(&fx, &summary, "huge", "bytes free");
}

/// A 16 MiB file (the most a selector reads) of newlines, read with `selector: lines`, would
/// be 16 Mi strings: 1.2 GB of the orchestrator's memory. It is refused before it is built:
/// the step fails `input_invalid`, uncharged, and no inputs.json is written.
#[test]
fn a_selected_value_over_the_allowance_is_refused_before_it_is_built_or_charged() {
    let fx = hostile_fx();
    std::fs::write(fx.path("tenants/t1/assets/nl.txt"), vec![b'\n'; 16 << 20]).unwrap();
    fx.workorder(
        "nl",
        "work_order_id: nl\nsteps:\n  - {step_id: a, module_id: assetcopy, kind: transform, inputs: {src: {asset: nl.txt}}}\n  - {step_id: b, module_id: echo_inputs, kind: transform, inputs: {first_lines: {from_step: a, from_file: copy.bin, selector: lines}}}\n",
    );
    let out = fx.run_watched(&["orchestrator", "--json", "--work-order-id", "nl"]);
    let summary = out.json();
    let run = run_of(&summary, "nl");
    assert_eq!(step_of(run, "a")["status"], "COMPLETED", "{run}");
    let b = step_of(run, "b");
    assert_eq!(b["status"], "FAILED", "{run}");
    assert_eq!(b["reason_slug"], "input_invalid", "{run}");
    assert!(
        b["message"].as_str().unwrap().contains("lines selected"),
        "{b}"
    );
    assert_eq!(spends_for(&fx, "nl", "b"), 0, "charged");
    let step_dir = outputs_of(&fx, run, "b").parent().unwrap().to_path_buf();
    assert!(!step_dir.join("inputs.json").exists());
}

fn package_race_order(id: &str) -> String {
    format!(
        "work_order_id: {id}\nsteps:\n  - {{step_id: s, module_id: tamper, kind: transform, inputs: {{mode: plain}}}}\n  - step_id: pack\n    module_id: package_std\n    kind: packaging\n    inputs:\n      bound_outputs:\n        - {{from_step: s, output_id: data, as_path: data.txt}}\n  - step_id: deliver\n    module_id: deliver_local\n    kind: delivery\n    inputs:\n      package_zip: {{from_step: pack, output_id: package_zip}}\n"
    )
}

/// Pairs (pack's package.zip, a same-name regular file beside its outputs holding the
/// package with its last byte flipped) of every pack step whose package exists.
fn package_pairs(runs: &Path) -> Vec<(PathBuf, PathBuf)> {
    let dirs = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let mut pairs = Vec::new();
    for wo in dirs(runs) {
        for run in dirs(&wo) {
            let (zip, other) = (
                run.join("pack/outputs/package.zip"),
                run.join("pack/tampered.zip"),
            );
            if other.symlink_metadata().is_err() {
                let Ok(mut bytes) = std::fs::read(&zip) else {
                    continue;
                };
                if let Some(last) = bytes.last_mut() {
                    *last ^= 1;
                }
                let _ = std::fs::write(&other, &bytes);
            }
            pairs.push((zip, other));
        }
    }
    pairs
}

/// Attack: while deliver_local reads a package (checked against pack's recorded digest just
/// before), a thread swaps it with a regular file of other bytes (RENAME_EXCHANGE: the path
/// is always one or the other). Whatever the interleaving, a delivery that completes
/// delivered the bytes pack's outcome recorded (the file that landed is hashed), and its
/// receipt says so; one that read the other bytes fails and is refunded (or is refused before
/// its charge); every delivery that ran is one or the other. Until 2026-12-03 the
/// copy was checked against its own source only: a swap between the binding's check and the
/// copy was delivered under a "verified" receipt naming the swapped bytes.
#[cfg(target_os = "linux")]
#[test]
fn a_package_swapped_while_it_is_delivered_is_delivered_only_as_recorded() {
    let (fx, ids) = fx_with_orders("prace", OUTPUT_RACE_ORDERS, package_race_order);
    let runs = fx.path("runtime/runs/t1");
    let swapper = Swapper::start(move || package_pairs(&runs));
    let out = fx.run(&["orchestrator", "--json"]);
    let swaps = swapper.finish();
    assert!(swaps > 0, "the swapper never ran: {}", out.text());
    let summary = out.json();
    let outcomes = fx.records("evidence.jsonl");
    let recorded_package = |wo: &str| -> Option<String> {
        outcomes.iter().find_map(|r| {
            let ok =
                r["type"] == "step_outcome" && r["work_order_id"] == wo && r["step_id"] == "pack";
            ok.then(|| {
                r["outputs"]
                    .as_array()?
                    .iter()
                    .find(|o| o["output_id"] == "package_zip")?["sha256"]
                    .as_str()
                    .map(String::from)
            })
            .flatten()
        })
    };
    let (mut delivered, mut refused, mut attempted) = (0, 0, 0);
    for id in &ids {
        let run = run_of(&summary, id);
        let deliver = run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step_id"] == "deliver")
            .unwrap();
        if deliver["status"] != "SKIPPED" {
            attempted += 1;
        }
        match (deliver["status"].as_str(), deliver["reason_slug"].as_str()) {
            (Some("COMPLETED"), _) => {
                let receipt = outcomes
                    .iter()
                    .find(|r| r["type"] == "delivery_receipt" && r["work_order_id"] == id.as_str())
                    .unwrap_or_else(|| panic!("{id}: no receipt"));
                let recorded = recorded_package(id).unwrap_or_else(|| panic!("{id}: no digest"));
                // The bytes that landed, not only what the receipt says of them.
                let landed = fx.bytes(&format!("runtime/deliveries/t1/{id}/deliver/package.zip"));
                assert_eq!(
                    sha256_hex(&landed),
                    recorded,
                    "{id}: delivered bytes pack never recorded"
                );
                assert_eq!(receipt["sha256"], recorded.as_str(), "{id}: the receipt");
                delivered += 1;
            }
            (Some("FAILED"), Some("input_invalid" | "module_failed")) => {
                assert_eq!(net_charge(&fx, id, "deliver"), 0, "{id}: charged");
                eprintln!("hostile: package race: {id}: {}", deliver["message"]);
                refused += 1;
            }
            (Some("SKIPPED"), _) => {}
            other => panic!("{id}: unexpected {other:?}: {run}"),
        }
    }
    assert_eq!(
        delivered + refused,
        attempted,
        "every delivery that ran was delivered as recorded or refused: {summary}"
    );
    eprintln!("hostile: package race: {swaps} swaps, {delivered} delivered as recorded, {refused} refused");
}
