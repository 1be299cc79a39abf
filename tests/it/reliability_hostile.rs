//! Hostile input (SPEC §2 gating rule 4, §6): paths that leave their folder, symlinks out of a
//! tenant or a step, modules that write outside their outputs or leave links there, a 2 GiB
//! output, YAML bombs, another tenant's files, names that are not UTF-8. Each is refused with
//! an error naming the file and the problem, and nothing is charged wrongly.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::check::strs;
use crate::support::fx::{fixture_dir, Fx, Transcript};
use crate::support::orch::{run_of, step_of};
use crate::support::reliability::peak_rss_kib;

use serde_json::Value;
use std::io::Read;
use std::time::{Duration, Instant};

/// The orch fixture plus tenant t2 (with a private asset) and the reliability modules.
fn hostile_fx() -> Fx {
    let fx = Fx::new()
        .overlay("reliability/tenants", "tenants")
        .overlay("reliability/modules", "modules");
    fx.topup(100, "initial");
    fx
}

#[cfg(unix)]
#[test]
fn paths_that_leave_their_folder_are_refused_before_anything_is_charged() {
    use std::os::unix::fs::symlink;
    let fx = hostile_fx();
    let assets = fx.path("tenants/t1/assets");
    symlink("../../t2/assets/private.txt", assets.join("link-to-t2.txt")).unwrap();
    symlink("../../t2/assets", assets.join("linkdir")).unwrap();
    symlink("/etc/hostname", assets.join("hostname")).unwrap();
    let mut cases = Vec::new();
    for e in std::fs::read_dir(fixture_dir("reliability/paths")).unwrap() {
        let path = e.unwrap().path();
        let yaml = std::fs::read_to_string(&path).unwrap();
        let expect = yaml
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap()
            .to_string();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        fx.workorder(&stem, &yaml);
        cases.push((stem, expect));
    }
    cases.sort();
    assert!(cases.len() >= 15, "{cases:?}");
    let billing = fx.bytes(".billing-state/billing.jsonl");

    // consistency-validate: each case is an error on its own file, saying what is wrong.
    let out = fx.run(&["consistency-validate", "--format", "json"]);
    out.expect_code(1);
    let v = out.json();
    let errors = v["errors"].as_array().unwrap();
    for (stem, expect) in &cases {
        let file = format!("tenants/t1/workorders/{stem}.yml");
        let mine: Vec<&str> = errors
            .iter()
            .filter(|f| f["file"] == file.as_str())
            .map(|f| f["message"].as_str().unwrap())
            .collect();
        assert!(
            mine.iter().any(|m| m.contains(expect.as_str())),
            "{stem}: want '{expect}' in {mine:?}"
        );
    }
    // The module contracts themselves are reported, with the field.
    for m in ["badout", "absout"] {
        let file = format!("modules/{m}/module.yml");
        assert!(
            errors
                .iter()
                .any(|f| f["file"] == file.as_str() && f["field"] == "outputs[0].path"),
            "{m}: {errors:?}"
        );
    }

    // The orchestrator checks again: every case invalid, nothing run, nothing charged.
    let out = fx.run(&["orchestrator", "--json"]);
    out.expect_code(1);
    let v = out.json();
    assert_eq!(v["runs"].as_array().unwrap().len(), 0, "{v}");
    let invalid = strs(&v["invalid"], "work_order_id");
    for (stem, _) in &cases {
        assert!(
            invalid.contains(&stem.as_str()),
            "{stem} was not refused: {v}"
        );
    }
    assert_eq!(
        fx.bytes(".billing-state/billing.jsonl"),
        billing,
        "nothing charged"
    );
    assert!(!fx.path("runtime/runs").exists(), "nothing ran");
    assert!(!fx.path("escape.txt").exists() && !fx.path("tmp").exists());
    eprintln!("reliability: {} path escapes refused (as_path, from_file, asset, module outputs, symlinks)", cases.len());
}

/// Run one work order of tenant t1 and return its run summary.
fn run_one(fx: &Fx, id: &str, yaml: &str) -> Value {
    fx.workorder(id, yaml);
    let out = fx.run(&["orchestrator", "--json", "--work-order-id", id]);
    assert!(out.status.code().is_some(), "{}", out.text());
    run_of(&out.json(), id).clone()
}

fn charged_minus_refunded(run: &Value) -> i64 {
    run["charged_credits"].as_i64().unwrap() - run["refunded_credits"].as_i64().unwrap()
}

#[test]
fn a_module_that_leaves_a_symlink_fails_outputs_missing_and_is_refunded() {
    let fx = hostile_fx();
    let private = fx.path("tenants/t2/assets/private.txt");
    for (mode, target) in [
        ("file", private.display().to_string()),
        ("file", "/etc/hostname".to_string()),
        ("dir", fx.path("tenants/t2/assets").display().to_string()),
        ("dangling", "x".to_string()),
    ] {
        let id = format!("link_{mode}");
        let before = fx.balance();
        let yaml = format!(
            "work_order_id: {id}\nartifacts_requested: true\nsteps:\n  - {{step_id: s, module_id: linker, kind: transform, inputs: {{mode: {mode}, target: \"{target}\"}}}}\n  - step_id: read\n    module_id: echo_inputs\n    kind: transform\n    inputs:\n      all_text: {{from_step: s, from_file: data.txt}}\n  - step_id: pack\n    module_id: package_std\n    kind: packaging\n    inputs:\n      bound_outputs:\n        - {{from_step: s, output_id: tree, as_path: tree}}\n        - {{from_step: s, output_id: data, as_path: data.txt}}\n  - step_id: deliver\n    module_id: deliver_local\n    kind: delivery\n    inputs:\n      package_zip: {{from_step: pack, output_id: package_zip}}\n"
        );
        let wo = run_one(&fx, &id, &yaml);
        let s = step_of(&wo, "s");
        assert_eq!(s["status"], "FAILED", "{mode}: {wo}");
        assert_eq!(s["reason_slug"], "outputs_missing", "{mode}: {wo}");
        assert!(s["message"].as_str().unwrap().contains("symlink"), "{wo}");
        for later in ["read", "pack", "deliver"] {
            assert_eq!(
                step_of(&wo, later)["status"],
                "SKIPPED",
                "{mode} {later}: {wo}"
            );
        }
        assert_eq!(charged_minus_refunded(&wo), 0, "{mode}: refunded in full");
        assert_eq!(fx.balance(), before);
    }
    // Nothing of t2 reached t1's records, runs or deliveries.
    for (path, bytes) in fx
        .all_bytes_under("runtime")
        .into_iter()
        .chain(fx.all_bytes_under(".billing-state"))
    {
        assert!(
            !String::from_utf8_lossy(&bytes).contains("t2 private data"),
            "{}",
            path.display()
        );
    }
    fx.integrity().unwrap();
}

fn zip_names(bytes: &[u8]) -> Vec<String> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    (0..z.len())
        .map(|i| z.by_index(i).unwrap().name().unwrap().to_string())
        .collect()
}

#[test]
fn files_a_module_writes_outside_its_outputs_are_never_picked_up() {
    let fx = hostile_fx();
    let yaml = "work_order_id: esc\nartifacts_requested: true\nsteps:\n  - {step_id: s, module_id: escaper, kind: transform}\n  - step_id: pack\n    module_id: package_std\n    kind: packaging\n    inputs:\n      bound_outputs:\n        - {from_step: s, output_id: tree, as_path: tree}\n        - {from_step: s, output_id: ok, as_path: ok.txt}\n  - step_id: deliver\n    module_id: deliver_local\n    kind: delivery\n    inputs:\n      package_zip: {from_step: pack, output_id: package_zip}\n      manifest_json: {from_step: pack, output_id: manifest_json}\n";
    let wo = run_one(&fx, "esc", yaml);
    // The known limit: a module is a process with the operator's permissions (clean env, own
    // cwd, no sandbox), so its stray files exist ...
    assert_eq!(wo["status"], "COMPLETED", "{wo}");
    assert!(fx.path("runtime/escaped-runtime.txt").exists());
    // ... but the platform records and packages only the declared outputs.
    let delivered = fx.bytes("runtime/deliveries/t1/esc/deliver/package.zip");
    assert_eq!(zip_names(&delivered), vec!["ok.txt", "tree/inside.txt"]);
    let manifest: Value =
        serde_json::from_slice(&fx.bytes("runtime/deliveries/t1/esc/deliver/manifest.json"))
            .unwrap();
    let paths = strs(&manifest["files"], "path");
    assert_eq!(paths, vec!["ok.txt", "tree/inside.txt"]);
    let evidence = String::from_utf8(fx.bytes(".billing-state/evidence.jsonl")).unwrap();
    assert!(
        !evidence.contains("escaped"),
        "stray files are not recorded as outputs"
    );
    fx.integrity().unwrap();
}

/// A 2 GiB sparse output is hashed as it is read: the orchestrator's peak resident memory
/// (VmHWM) stays far below the file's size.
#[test]
fn a_two_gib_output_is_hashed_as_a_stream_not_read_into_memory() {
    // RELIABILITY_BIG_MIB scales it; 2048 crosses 2^31 bytes, where a 32-bit size would wrap.
    let mib: u64 = std::env::var("RELIABILITY_BIG_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let fx = hostile_fx();
    fx.workorder(
        "big",
        &format!("work_order_id: big\nsteps:\n  - {{step_id: s, module_id: sparse, kind: transform, inputs: {{size_mib: {mib}}}}}\n"),
    );
    let t0 = Instant::now();
    let mut child = fx
        .command()
        .args(["orchestrator", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let mut stdout = stdout;
        stdout.read_to_end(&mut s).unwrap();
        s
    });
    while child.try_wait().unwrap().is_none() {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "hashing {mib} MiB took too long"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = t0.elapsed();
    let out = reader.join().unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    let wo = run_of(&v, "big");
    assert_eq!(wo["status"], "COMPLETED", "{wo}");
    let outcome = fx
        .records("evidence.jsonl")
        .into_iter()
        .find(|r| r["type"] == "step_outcome")
        .unwrap();
    let bytes = outcome["outputs"][0]["bytes"].as_u64().unwrap();
    assert_eq!(bytes, mib * 1024 * 1024);
    if mib == 2048 {
        // sha256 of 2^31 zero bytes.
        assert_eq!(
            outcome["outputs"][0]["sha256"],
            "a7c744c13cc101ed66c29f672f92455547889cc586ce6d44fe76ae824958ea51"
        );
    }
    assert!(peak > 0, "VmHWM was read");
    assert!(
        peak < 128 * 1024,
        "peak RSS {peak} KiB for a {mib} MiB output: it was read into memory"
    );
    eprintln!(
        "reliability: a {mib} MiB sparse output hashed in {:.1} s with a peak RSS of {} MiB",
        took.as_secs_f64(),
        peak / 1024
    );
}

fn alias_bomb() -> String {
    let mut text = String::from("  a0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        text.push_str(&format!("  a{i}: &a{i} [{refs}]\n"));
    }
    text
}

#[test]
fn yaml_bombs_are_findings_in_bounded_time_and_the_rest_still_runs() {
    let fx = hostile_fx();
    let step = "steps:\n  - {step_id: s, module_id: slow, kind: transform, inputs: {text: x, delay_ms: 0}}\n";
    let bombs = [
        (
            "laughs",
            format!("work_order_id: laughs\nmetadata:\n{}{step}", alias_bomb()),
        ),
        (
            "deepseq",
            format!(
                "work_order_id: deepseq\nmetadata: {}{}\n{step}",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
        ),
        (
            "deepmap",
            format!(
                "work_order_id: deepmap\nmetadata: {}1{}\n{step}",
                "{a: ".repeat(50_000),
                "}".repeat(50_000)
            ),
        ),
        (
            "huge",
            format!(
                "work_order_id: huge\nmetadata: {{pad: \"{}\"}}\n{step}",
                "x".repeat(5 * 1024 * 1024)
            ),
        ),
        (
            "anchors",
            format!(
                "work_order_id: anchors\nmetadata:\n{}{step}",
                (0..20_000)
                    .map(|i| format!("  k{i}: &x{i} v\n"))
                    .collect::<String>()
            ),
        ),
    ];
    for (id, yaml) in &bombs {
        fx.workorder(id, yaml);
    }
    // A bomb in a module contract too.
    std::fs::create_dir_all(fx.path("modules/bomb")).unwrap();
    std::fs::write(
        fx.path("modules/bomb/module.yml"),
        format!("module_id: bomb\nversion: \"1\"\nkind: other\nrunner: {{command: [\"true\"]}}\nmetadata:\n{}", alias_bomb()),
    )
    .unwrap();
    fx.workorder("fine", &format!("work_order_id: fine\n{step}"));
    let t0 = Instant::now();
    let out = fx.run(&["orchestrator", "--json"]);
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(30), "took {took:?}");
    out.expect_code(1);
    let v = out.json();
    assert_eq!(run_of(&v, "fine")["status"], "COMPLETED");
    let invalid = v["invalid"].as_array().unwrap();
    for (id, _) in &bombs[..4] {
        let entry = invalid
            .iter()
            .find(|i| i["work_order_id"] == *id)
            .unwrap_or_else(|| panic!("{id} not refused: {v}"));
        let msg = entry["findings"][0]["message"].as_str().unwrap();
        assert!(msg.contains("YAML") || msg.contains("limit"), "{id}: {msg}");
    }
    let v = fx.run(&["consistency-validate", "--format", "json"]).json();
    let files = strs(&v["errors"], "file");
    assert!(files.contains(&"modules/bomb/module.yml"), "{v}");
    eprintln!(
        "reliability: {} YAML bombs refused in {:.2} s",
        bombs.len() + 1,
        took.as_secs_f64()
    );
}

#[cfg(unix)]
#[test]
fn names_that_are_not_utf8_or_hold_control_characters_are_refused_cleanly() {
    use std::os::unix::ffi::OsStrExt;
    let fx = hostile_fx();
    // A package cannot hold such names: the packaging step is refused before it is charged
    // (`input_invalid`), naming the file. Until 2026-12-04 it was charged, then failed and
    // was refunded: its check listed the names it packs only after the charge.
    for (mode, expect) in [
        ("nonutf8", "not valid UTF-8"),
        ("control", "control character"),
        ("backslash", "backslash"),
    ] {
        let id = format!("odd_{mode}");
        let yaml = format!(
            "work_order_id: {id}\nartifacts_requested: true\nsteps:\n  - {{step_id: s, module_id: oddnames, kind: transform, inputs: {{mode: {mode}}}}}\n  - step_id: pack\n    module_id: package_std\n    kind: packaging\n    inputs:\n      bound_outputs:\n        - {{from_step: s, output_id: tree, as_path: tree}}\n  - step_id: deliver\n    module_id: deliver_local\n    kind: delivery\n    inputs:\n      package_zip: {{from_step: pack, output_id: package_zip}}\n"
        );
        let wo = run_one(&fx, &id, &yaml);
        let pack = step_of(&wo, "pack");
        assert_eq!(pack["status"], "FAILED", "{wo}");
        assert_eq!(pack["reason_slug"], "input_invalid", "{wo}");
        assert!(
            pack["message"].as_str().unwrap().contains(expect),
            "{mode}: {wo}"
        );
        assert_eq!(step_of(&wo, "deliver")["reason_slug"], "upstream_failed");
        // The step itself ran and is paid; the packaging was never charged.
        assert_eq!(charged_minus_refunded(&wo), 1, "{wo}");
        assert!(
            fx.records("billing.jsonl")
                .iter()
                .all(|r| r["work_order_id"] != id.as_str() || r["step_id"] != "pack"),
            "{mode}: nothing charged for pack"
        );
    }
    // A `files` input bound to such a tree is refused before charging (a lossy path would not
    // open in the module).
    let wo = run_one(
        &fx,
        "odd_files",
        "work_order_id: odd_files\nsteps:\n  - {step_id: s, module_id: oddnames, kind: transform}\n  - {step_id: l, module_id: listfiles, kind: transform, inputs: {files: {from_step: s, output_id: tree}}}\n",
    );
    let l = step_of(&wo, "l");
    assert_eq!(l["reason_slug"], "input_invalid", "{wo}");
    assert!(
        l["message"].as_str().unwrap().contains("not valid UTF-8"),
        "{wo}"
    );
    assert!(
        fx.records("billing.jsonl")
            .iter()
            .all(|r| r["step_id"] != "l"),
        "nothing charged for it"
    );
    // Non-UTF-8 names among the repository's own files: findings, never a crash.
    let raw = |dir: &str, name: &[u8]| fx.path(dir).join(std::ffi::OsStr::from_bytes(name));
    std::fs::write(
        raw("tenants/t1/workorders", b"bad-\xff.yml"),
        "work_order_id: x\nsteps: []\n",
    )
    .unwrap();
    std::fs::write(raw("tenants/t1/assets", b"odd-\xfe.txt"), "x\n").unwrap();
    std::fs::create_dir_all(raw("tenants", b"t\xff")).unwrap();
    std::fs::write(
        raw("tenants", b"t\xff").join("tenant.yml"),
        "tenant_id: t\n",
    )
    .unwrap();
    let v = fx
        .run(&["consistency-validate", "--format", "json"])
        .expect_code(1)
        .json();
    let files = strs(&v["errors"], "file");
    let bad = |f: &&str| f.starts_with("tenants/t1/workorders/bad-");
    assert!(files.iter().any(bad), "{v}");
    let messages = strs(&v["errors"], "message");
    assert!(
        messages.iter().any(|m| m.contains("tenant folder name")),
        "{v}"
    );
    let out = fx.run(&["orchestrator", "--json"]);
    assert!(out.status.code().is_some(), "{}", out.text());
    fx.integrity().unwrap();
}
