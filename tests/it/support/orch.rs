//! Readers of the orchestrator's `--json` summary and the work orders several suites run.
use super::check::find;
use super::fx::Fx;
use serde_json::Value;

/// The single run of a summary, by work order id.
pub fn run_of<'a>(summary: &'a Value, wo: &str) -> &'a Value {
    find(&summary["runs"], "work_order_id", wo)
}

/// A step of a run, by step id.
pub fn step_of<'a>(run: &'a Value, step: &str) -> &'a Value {
    find(&run["steps"], "step_id", step)
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

/// The folder of a step of a run (a run of the summary), relative to the fixture's root.
pub fn step_dir(run: &Value, step: &str) -> String {
    let field = |k: &str| run[k].as_str().unwrap_or_else(|| panic!("no {k} in {run}"));
    format!(
        "runtime/runs/{}/{}/{}/{step}",
        field("tenant_id"),
        field("work_order_id"),
        field("run_id")
    )
}

/// Crash the first pass right after gen's charge and step-started record (the fixture runs
/// CHAIN, funded).
pub fn crash_after_first_charge(fx: &Fx) {
    let out = fx.run_env(
        &["orchestrator"],
        &[("PLATFORM_FAILPOINT", "after_step_started")],
    );
    assert!(!out.status.success(), "the failpoint aborts the process");
    assert_eq!(
        fx.of_type("billing.jsonl", "SPEND").len(),
        2,
        "gen was charged before the crash"
    );
}
