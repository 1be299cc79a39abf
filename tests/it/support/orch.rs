//! Test harness for orchestrator tests: a temp copy of tests/fixtures/orch, the real binary,
//! and readers for ledger lines.
#![allow(dead_code, clippy::new_without_default)]
use std::path::{Path, PathBuf};
use std::process::Output;

pub struct Fx {
    pub dir: tempfile::TempDir,
}

pub fn copy_dir(src: &Path, dst: &Path) {
    for e in walkdir::WalkDir::new(src) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(src).unwrap();
        let to = dst.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

impl Fx {
    pub fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/orch"),
            dir.path(),
        );
        Fx { dir }
    }
    /// A temp copy of this repository's own example platform: modules/, tenants/, config/.
    pub fn example() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for d in ["modules", "tenants", "config"] {
            copy_dir(&root.join(d), &dir.path().join(d));
        }
        Fx { dir }
    }
    /// Add a module folder of this repository (e.g. a built-in's shipped contract).
    pub fn add_shipped_module(&self, module_id: &str) {
        let rel = format!("modules/{module_id}");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join(&rel),
            &self.path(&rel),
        );
    }
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    /// Write a work order for tenant t1.
    pub fn workorder(&self, id: &str, yaml: &str) {
        // Git keeps no empty folders: the fixture's workorders/ may not exist in a clone.
        std::fs::create_dir_all(self.path("tenants/t1/workorders")).unwrap();
        std::fs::write(self.path(&format!("tenants/t1/workorders/{id}.yml")), yaml).unwrap();
    }
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("platform").unwrap();
        c.current_dir(self.root()).env_remove("GITHUB_ACTOR");
        for (k, _) in std::env::vars() {
            if k.starts_with("PLATFORM_") {
                c.env_remove(k);
            }
        }
        c
    }
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
    /// `admin-topup` (method manual) of `tenant` by `actor`, ready to run (or to add flags to).
    pub fn topup_cmd_as(
        &self,
        tenant: &str,
        amount: &str,
        reference: &str,
        actor: &str,
    ) -> assert_cmd::Command {
        let mut c = self.cmd();
        c.args([
            "admin-topup",
            "--tenant-id",
            tenant,
            "--amount-credits",
            amount,
        ])
        .args(["--topup-method-id", "manual", "--actor", actor])
        .arg("--reference")
        .arg(reference);
        c
    }
    /// `admin-topup` of tenant t1 by actor tester, ready to run (or to add flags to).
    pub fn topup_cmd(&self, amount: &str, reference: &str) -> assert_cmd::Command {
        self.topup_cmd_as("t1", amount, reference, "tester")
    }
    /// `admin-topup` (method manual) for any tenant and actor; the output, for tests that
    /// expect a denial.
    pub fn topup_as(&self, tenant: &str, amount: i64, reference: &str, actor: &str) -> Output {
        self.topup_cmd_as(tenant, &amount.to_string(), reference, actor)
            .output()
            .unwrap()
    }
    pub fn topup(&self, amount: i64, reference: &str) {
        let out = self.topup_as("t1", amount, reference, "tester");
        assert!(
            out.status.success(),
            "topup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    pub fn orchestrate(&self, extra: &[&str]) -> (i32, serde_json::Value, String) {
        let mut args = vec!["orchestrator", "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (
            out.status.code().unwrap_or(-1),
            json,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
    pub fn lines(&self, file: &str) -> Vec<serde_json::Value> {
        let p = self.path(&format!(".billing-state/{file}"));
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
    pub fn billing(&self) -> Vec<serde_json::Value> {
        self.lines("billing.jsonl")
    }
    pub fn of_type(&self, file: &str, ty: &str) -> Vec<serde_json::Value> {
        self.lines(file)
            .into_iter()
            .filter(|r| r["type"] == ty)
            .collect()
    }
    pub fn bytes(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_default()
    }
    pub fn balance(&self) -> i64 {
        let out = self.run(&["balance", "--tenant-id", "t1", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["balance_credits"].as_i64().unwrap()
    }
    /// Every file under the fixture (ledger, runtime, deliveries), for leak checks.
    pub fn all_bytes_under(&self, rel: &str) -> Vec<(PathBuf, Vec<u8>)> {
        walkdir::WalkDir::new(self.path(rel))
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .map(|e| (e.path().to_path_buf(), std::fs::read(e.path()).unwrap()))
            .collect()
    }
}

/// The single run of a summary, by work order id.
pub fn run_of<'a>(summary: &'a serde_json::Value, wo: &str) -> &'a serde_json::Value {
    summary["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["work_order_id"] == wo)
        .unwrap_or_else(|| panic!("no run for {wo} in {summary}"))
}

pub fn step_of<'a>(run: &'a serde_json::Value, step: &str) -> &'a serde_json::Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_id"] == step)
        .unwrap()
}

/// A 4-step chain with every selector: gen → echo → pack → deliver.
pub const CHAIN: &str = r#"work_order_id: chain
artifacts_requested: true
steps:
  - step_id: gen
    module_id: gen
    kind: transform
    inputs: {text: "alpha beta gamma delta"}
    deliverables: [data]
  - step_id: echo
    module_id: echo_inputs
    kind: transform
    inputs:
      first_lines: {from_step: gen, from_file: lines.txt, selector: lines, take: 2}
      all_text: {from_step: gen, from_file: lines.txt, selector: text}
      count_from_json: {from_step: gen, from_file: data.json, selector: json, json_path: "$.meta.count"}
      first_row: {from_step: gen, from_file: rows.jsonl, selector: jsonl_first}
      count_value: {from_step: gen, output_id: count}
      source: {from_step: gen, output_id: lines_txt}
      asset_file: {asset: note.txt}
  - step_id: pack
    module_id: package_std
    kind: packaging
    inputs:
      bound_outputs:
        - {from_step: echo, output_id: echoed, as_path: echo/echoed.json}
        - {from_step: gen, output_id: bundle, as_path: bundle}
        - {from_step: gen, output_id: data_json, as_path: data.json}
  - step_id: deliver
    module_id: deliver_local
    kind: delivery
    inputs:
      package_zip: {from_step: pack, output_id: package_zip}
      manifest_json: {from_step: pack, output_id: manifest_json}
"#;

/// The shipped config/iam.yml grants nobody: a copy of the example repository that runs
/// privileged commands gets the demo's grants (scripts/demo-iam.yml), as scripts/demo.sh does.
pub fn use_demo_iam(repo: &Path) {
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo-iam.yml"),
        repo.join("config/iam.yml"),
    )
    .unwrap();
}
