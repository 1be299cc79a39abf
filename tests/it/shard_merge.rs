//! Scale-out over shards: `orchestrator --shard K/N` on copies of one ledger, then `ledger merge`, must equal a single-machine run (real binary, generated repository).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::assert_has;
use crate::support::fx::{copy_tree, crate_root, use_demo_iam, Topup, LEDGER_FILES};
use crate::support::ledger_fixtures::{copy_state, lines, read, records_in, records_of};
use crate::support::{Fx, Transcript};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Tenants chosen so that each of 3 shards gets some (by SPEC §3's hash):
/// shard 1: tenant-a, tenant-c; shard 2: tenant-b, tenant-f, tenant-h; shard 3: tenant-j,
/// tenant-r, tenant-u.
const TENANTS: [&str; 8] = [
    "tenant-a", "tenant-b", "tenant-c", "tenant-f", "tenant-h", "tenant-j", "tenant-r", "tenant-u",
];
/// Gets credits for one work order only: its second one is refused on whichever machine
/// runs it, which is what a per-shard credit check must reproduce.
const POOR_TENANT: &str = "tenant-f";
/// Its second work order reads an empty file: text_stats fails (refundable), so refunds
/// are part of the comparison.
const FAILING_TENANT: &str = "tenant-j";
/// One work order: text_stats 1 + 2, package_std 1 + 2, deliver_local 1.
const WORK_ORDER_CREDITS: i64 = 7;

/// A folder holding the generated repository (`repo/`) and billing-state directories beside
/// it, named relative to the folder.
struct World {
    fx: Fx,
}

impl World {
    /// The generated repository with every tenant topped up into `base/` (the "pulled" ledger
    /// every shard starts from): made once, copied for each test.
    fn seeded() -> World {
        static SEEDED: OnceLock<Fx> = OnceLock::new();
        let fx = Fx::prepared(&SEEDED, || {
            let w = World { fx: Fx::empty() };
            write_repo(&w.fx.path("repo"), 1);
            w.seed_base();
            w.fx
        });
        World { fx }
    }

    /// `platform --repo <repo>`, run in the folder.
    fn platform(&self, repo: &str) -> Command {
        let mut c = self.fx.command();
        c.arg("--repo").arg(self.fx.path(repo));
        c
    }

    /// `platform --repo repo <args>`.
    fn run(&self, args: &[&str]) -> Output {
        self.platform("repo").args(args).output().unwrap()
    }

    fn seed_base(&self) {
        for t in TENANTS {
            let amount = if t == POOR_TENANT {
                WORK_ORDER_CREDITS + 3
            } else {
                100
            };
            let (amount, reference) = (amount.to_string(), format!("seed-{t}"));
            let topup = Topup::new(t, &amount, &reference).by("demo-admin");
            self.platform("repo")
                .args(topup.args())
                .args(["--billing-state-dir", "base"])
                .output()
                .unwrap()
                .expect_ok();
        }
    }

    fn copy_state(&self, from: &str, to: &str) {
        copy_state(&self.fx.path(from), &self.fx.path(to));
    }

    /// One orchestrator pass; exit 1 is expected (a refused and a failed work order).
    fn orchestrate(&self, repo: &str, state: &str, shard: Option<&str>) -> Value {
        let mut c = self.platform(repo);
        c.args(["orchestrator", "--json", "--billing-state-dir", state])
            .args(["--runtime-dir", &format!("rt-{state}")]);
        if let Some(s) = shard {
            c.args(["--shard", s]);
        }
        let out = c.output().unwrap();
        let code = out.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "orchestrator {shard:?} on {state}: {}",
            out.text()
        );
        out.json()
    }

    fn merge(&self, into: &str, segments: &[&str]) -> Output {
        self.run(&[&["ledger", "merge", "--into", into][..], segments].concat())
    }

    /// `ledger merge --into merged shard-1` with `$GITHUB_STEP_SUMMARY` set to `summary`.
    fn merge_with_summary(&self, summary: &Path) -> Output {
        self.platform("repo")
            .args(["ledger", "merge", "--into", "merged", "shard-1"])
            .env("GITHUB_STEP_SUMMARY", summary)
            .output()
            .unwrap()
    }

    fn balance(&self, state: &str, tenant: &str) -> i64 {
        let out = self.run(&[
            "balance",
            "--tenant-id",
            tenant,
            "--json",
            "--billing-state-dir",
            state,
        ]);
        out.expect_ok().json()["balance_credits"].as_i64().unwrap()
    }

    fn runs(&self, state: &str) -> Vec<Value> {
        let out = self.run(&["runs", "--json", "--billing-state-dir", state]);
        serde_json::from_value(out.expect_ok().json()).unwrap()
    }

    fn integrity_ok(&self, state: &str) {
        self.run(&["integrity-validate", "--billing-state-dir", state])
            .expect_ok();
    }

    fn bytes(&self, state: &str) -> Vec<Vec<u8>> {
        self.fx.ledger_bytes(state)
    }

    /// Idempotency keys of one ledger file.
    fn keys(&self, state: &str, file: &str) -> BTreeSet<String> {
        records_of(&self.fx.path(state).join(file))
            .iter()
            .map(|v| v["idempotency_key"].as_str().unwrap().to_string())
            .collect()
    }

    fn line_count(&self, state: &str, file: &str) -> usize {
        lines(&self.fx.path(state).join(file)).len()
    }
}

/// Writes the generated repository; `run_credits` is text_stats' price per run (a different
/// price gives the conflicting segment).
fn write_repo(repo: &Path, run_credits: u32) {
    copy_tree(&crate_root().join("modules"), &repo.join("modules"));
    std::fs::create_dir_all(repo.join("config")).unwrap();
    std::fs::copy(
        crate_root().join("config/registry.yml"),
        repo.join("config/registry.yml"),
    )
    .unwrap();
    use_demo_iam(repo);
    let contract = repo.join("modules/text_stats/module.yml");
    let text = std::fs::read_to_string(&contract).unwrap();
    assert!(
        text.contains("run_credits: 1\n"),
        "text_stats' price changed: update this test"
    );
    std::fs::write(
        &contract,
        text.replace("run_credits: 1\n", &format!("run_credits: {run_credits}\n")),
    )
    .unwrap();

    for t in TENANTS {
        let dir = repo.join("tenants").join(t);
        std::fs::create_dir_all(dir.join("workorders")).unwrap();
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::write(
            dir.join("tenant.yml"),
            format!("tenant_id: {t}\nname: Generated {t}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("assets/note.txt"),
            format!("Notes of {t}: the quick brown fox jumps over the lazy dog, twice. The dog.\n"),
        )
        .unwrap();
        std::fs::write(dir.join("assets/empty.txt"), "").unwrap();
        for wo in ["wo-1", "wo-2"] {
            let asset = if t == FAILING_TENANT && wo == "wo-2" {
                "empty.txt"
            } else {
                "note.txt"
            };
            std::fs::write(
                dir.join("workorders").join(format!("{wo}.yml")),
                format!(
                    "work_order_id: {wo}\n\
                     enabled: true\n\
                     artifacts_requested: true\n\
                     steps:\n  \
                       - step_id: stats\n    module_id: text_stats\n    kind: transform\n    \
                         inputs: {{source: {{asset: {asset}}}, top_n: 3}}\n    deliverables: [stats]\n  \
                       - step_id: pack\n    module_id: package_std\n    kind: packaging\n    \
                         inputs:\n      bound_outputs:\n        \
                           - {{from_step: stats, output_id: stats_json, as_path: stats.json}}\n        \
                           - {{from_step: stats, output_id: words_txt, as_path: words.txt}}\n    \
                         deliverables: [package]\n  \
                       - step_id: deliver\n    module_id: deliver_local\n    kind: delivery\n    \
                         inputs: {{package_zip: {{from_step: pack, output_id: package_zip}}}}\n"
                ),
            )
            .unwrap();
        }
    }
}

/// The acceptance test of scale-out: 3 shards and a duplicated shard merge to exactly the
/// ledger of a single-machine run; merging again adds nothing; the same inputs give the same
/// bytes; a conflicting segment fails the whole merge and leaves the target untouched.
#[test]
fn three_shards_merge_to_the_single_machine_ledger() {
    let w = World::seeded();
    w.run(&["consistency-validate"]).expect_ok();

    // Single machine.
    w.copy_state("base", "single");
    let single = w.orchestrate("repo", "single", None);
    assert_eq!(single["runs"].as_array().unwrap().len(), 16, "{single:#}");

    // Three shards, each from its own copy of the same base.
    let mut shard_runs = 0;
    for k in 1..=3 {
        let dir = format!("shard-{k}");
        w.copy_state("base", &dir);
        let s = w.orchestrate("repo", &dir, Some(&format!("{k}/3")));
        let n = s["runs"].as_array().unwrap().len();
        assert!(
            n > 0,
            "shard {k}/3 ran nothing: pick tenant ids that spread over 3 shards"
        );
        shard_runs += n;
    }
    assert_eq!(shard_runs, 16, "every work order runs on exactly one shard");
    // A duplicated segment (e.g. an artifact downloaded twice) must add nothing.
    w.copy_state("shard-2", "shard-2-copy");

    let segments = ["shard-1", "shard-2", "shard-3", "shard-2-copy"];
    w.copy_state("base", "merged");
    let out = w.merge("merged", &segments);
    out.expect_ok();

    // Same balances and billing record count as the single machine.
    for t in TENANTS {
        assert_eq!(
            w.balance("merged", t),
            w.balance("single", t),
            "balance of {t}"
        );
    }
    assert_eq!(
        w.balance("single", POOR_TENANT),
        3,
        "the poor tenant's second work order is refused"
    );
    assert_eq!(
        w.line_count("merged", "billing.jsonl"),
        w.line_count("single", "billing.jsonl")
    );
    // Stronger: the very same records (by idempotency key) in every file, and the same runs.
    for f in LEDGER_FILES {
        assert_eq!(w.keys("merged", f), w.keys("single", f), "{f}");
    }
    let key = |r: &Value| {
        format!(
            "{}/{}/{}/{}",
            r["tenant_id"], r["work_order_id"], r["run"], r["status"]
        )
    };
    let mut runs_single: Vec<String> = w.runs("single").iter().map(key).collect();
    let mut runs_merged: Vec<String> = w.runs("merged").iter().map(key).collect();
    runs_single.sort();
    runs_merged.sort();
    assert_eq!(runs_merged, runs_single);
    assert!(
        runs_single.iter().any(|r| r.contains("FAILED")),
        "{runs_single:?}"
    );
    w.integrity_ok("merged");

    // A second merge of the same inputs adds nothing.
    let before = w.bytes("merged");
    let out = w.merge("merged", &segments);
    out.expect_ok();
    assert_eq!(
        w.bytes("merged"),
        before,
        "a second merge changed the ledger"
    );

    // Same inputs, same bytes: another fresh copy, the segments given in another order.
    w.copy_state("base", "merged-again");
    let out = w.merge(
        "merged-again",
        &["shard-3", "shard-2-copy", "shard-1", "shard-2"],
    );
    out.expect_ok();
    assert_eq!(w.bytes("merged-again"), w.bytes("merged"));

    // One segment at a time, in the order `ledger merge` sorts them (what the workflow's
    // merge job does in batches): the same bytes again.
    w.copy_state("base", "merged-one-by-one");
    for seg in ["shard-1", "shard-2", "shard-2-copy", "shard-3"] {
        let out = w.merge("merged-one-by-one", &[seg]);
        out.expect_ok();
    }
    assert_eq!(w.bytes("merged-one-by-one"), w.bytes("merged"));

    // A conflicting segment: the same run keys, another price (text_stats costs 2 per run).
    write_repo(&w.fx.path("repo-pricier"), 2);
    w.copy_state("base", "shard-1-pricier");
    w.orchestrate("repo-pricier", "shard-1-pricier", Some("1/3"));
    for target in ["merged", "base"] {
        w.copy_state(target, &format!("{target}-target"));
        let into = format!("{target}-target");
        let before = w.bytes(&into);
        // Into `merged` the original shard-1 records are already there; into `base` they
        // come from another segment of the same merge.
        let out = w.merge(&into, &["shard-1", "shard-1-pricier", "shard-2", "shard-3"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "a conflicting segment must fail the merge (into a copy of {target})\n{}",
            out.text()
        );
        let stderr = out.stderr_text();
        assert!(
            stderr.contains("merge conflict") && stderr.contains("amount_credits"),
            "{stderr}"
        );
        // Both sides are named where they are: the pricier segment's line, and the line
        // that holds the key already: the target's own, or the segment it came from.
        assert!(
            stderr.contains("shard-1-pricier/billing.jsonl line "),
            "{stderr}"
        );
        let recorded = match target {
            "merged" => "merged-target/billing.jsonl line ".to_string(),
            _ => "shard-1/billing.jsonl line ".to_string(),
        };
        assert!(
            stderr.contains("a different payload than ") && stderr.contains(&recorded),
            "{stderr}"
        );
        if target == "base" {
            assert!(stderr.contains("not yet in"), "{stderr}");
        }
        assert_eq!(w.bytes(&into), before, "a failed merge wrote into {into}");
    }
}

/// With `$GITHUB_STEP_SUMMARY` set, the orchestrator and the merge append Markdown tables;
/// a summary file that cannot be written changes nothing but a note on stderr.
#[test]
fn job_summaries_are_written_and_never_fail_a_command() {
    let w = World::seeded();
    let summary = w.fx.path("summary.md");
    w.copy_state("base", "shard-1");
    let out = w
        .platform("repo")
        .args([
            "orchestrator",
            "--shard",
            "1/3",
            "--billing-state-dir",
            "shard-1",
        ])
        .args(["--runtime-dir", "rt-1"])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    out.expect_ok();
    let md = std::fs::read_to_string(&summary).unwrap();
    assert_has(&md, "| work order | run | status | charged | refunded |");
    assert_has(&md, "| tenant-a/wo-1 | 1 | ✅ COMPLETED | 7 | 0 |");
    assert_has(&md, "**4** run(s), **0** up to date, **0** invalid");

    w.copy_state("base", "merged");
    w.merge_with_summary(&summary).expect_ok();
    let md = std::fs::read_to_string(&summary).unwrap();
    assert_has(&md, "### platform ledger merge into `merged`");
    assert_has(&md, "| file | added | already present |");

    // A directory is not a writable summary file: the merge (of nothing new) still succeeds.
    let out = w.merge_with_summary(&w.fx.path("rt-1"));
    let stderr = out.expect_ok().stderr_text();
    assert_has(&stderr, "could not write the job summary");
}

/// `--shard K/N` with a `--tenant-id` of another shard would select nothing: refused (exit 2)
/// naming the tenant's shard, as a mistyped id is; the tenant's own shard runs it.
#[test]
fn a_tenant_of_another_shard_is_refused_naming_its_shard() {
    let w = World::seeded();
    let pass = |shard: &str| {
        w.run(&[
            "orchestrator",
            "--dry-run",
            "--billing-state-dir",
            "base",
            "--shard",
            shard,
            "--tenant-id",
            "tenant-a",
        ])
    };
    let out = pass("2/3");
    out.expect_code(2);
    assert_has(&out.text(), "tenant-a is in shard 1 of 3, not 2");
    assert_has(&out.text(), "--shard 1/3");
    pass("1/3").expect_ok();
}

/// SPEC §3: `runs` lists runs oldest first. A merge appends its segments in path order, so
/// shard 2's runs, which started first here, come after shard 1's in evidence.jsonl: `runs`
/// orders by when each run started, not by file position.
#[test]
fn runs_of_a_merged_ledger_are_listed_oldest_first() {
    let w = World::seeded();
    for k in [2, 1] {
        let dir = format!("shard-{k}");
        w.copy_state("base", &dir);
        w.orchestrate("repo", &dir, Some(&format!("{k}/3")));
    }
    w.copy_state("base", "merged");
    w.merge("merged", &["shard-1", "shard-2"]).expect_ok();
    let started: Vec<(String, String)> = records_of(&w.fx.path("merged/evidence.jsonl"))
        .into_iter()
        .filter(|r| r["type"] == "run_started")
        .map(|r| {
            let at = r["recorded_at"].as_str().unwrap().to_string();
            (at, r["run_id"].as_str().unwrap().to_string())
        })
        .collect();
    let mut oldest_first = started.clone();
    // Stable, by time alone: runs recorded in the same instant keep their file order.
    oldest_first.sort_by(|a, b| a.0.cmp(&b.0));
    assert_ne!(started, oldest_first, "the file holds shard 1's runs first");
    let out = w.run(&["runs", "--json", "--billing-state-dir", "merged"]);
    let listed: Vec<String> = out
        .expect_ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = oldest_first.into_iter().map(|(_, id)| id).collect();
    assert_eq!(listed, want);
}

/// The keys of a segment file's records that a reader counts: without an unterminated last
/// line, and without a last batch that has fewer lines than its `batch_len` (SPEC §4's torn
/// tail, worked out here independently of the scan that `ledger merge` uses).
fn keys_before_torn_tail(path: &Path) -> BTreeSet<String> {
    let mut complete = lines(path);
    if complete.last().is_some_and(|l| !l.ends_with(b"\n")) {
        complete.pop();
    }
    let mut records = records_in(&complete.concat());
    if let Some(last) = records.last() {
        let batch = last.get("batch").cloned();
        let len = last.get("batch_len").and_then(Value::as_u64).unwrap_or(1);
        let trailing = records
            .iter()
            .rev()
            .take_while(|r| batch.is_some() && r.get("batch") == batch.as_ref())
            .count();
        if batch.is_some() && (trailing as u64) < len {
            records.truncate(records.len() - trailing);
        }
    }
    records
        .iter()
        .map(|r| r["idempotency_key"].as_str().unwrap().to_string())
        .collect()
}

/// A shard that crashed mid-write (a torn last line) and one whose last batch is incomplete
/// are merged with the others as a reader reads them: everything before the torn tail, which
/// is skipped and named in a note (text and `--json`), the segments left as they are, and
/// the result verifies. Damage in the middle of a segment still refuses the whole merge,
/// even next to segments with torn tails. (Until 2026-12-03 any torn tail refused it.)
#[test]
fn torn_tails_of_crashed_shards_are_skipped_and_the_rest_merged() {
    let w = World::seeded();
    for k in [1, 3] {
        let dir = format!("shard-{k}");
        w.copy_state("base", &dir);
        w.orchestrate("repo", &dir, Some(&format!("{k}/3")));
    }
    // Shard 2 crashes in the middle of its 12th ledger write: half of it reaches the disk.
    w.copy_state("base", "shard-2");
    let crashed = w
        .platform("repo")
        .args(["orchestrator", "--shard", "2/3", "--jobs", "1"])
        .args([
            "--billing-state-dir",
            "shard-2",
            "--runtime-dir",
            "rt-shard-2",
        ])
        .env("PLATFORM_FAILPOINT", "ledger_torn_write@12")
        .output()
        .unwrap();
    assert!(
        !matches!(crashed.status.code(), Some(0 | 1)),
        "shard 2 did not crash: {}",
        crashed.text()
    );
    let torn_file = LEDGER_FILES
        .iter()
        .find(|f| {
            let bytes = read(&w.fx.path("shard-2").join(f));
            !bytes.is_empty() && !bytes.ends_with(b"\n")
        })
        .expect("the crash left a torn last line");
    // Shard 3's segment cut after the first line of its last SPEND batch of two or more
    // lines: an incomplete last batch whose lines each verify, as a crash in the middle of
    // that write leaves it. evidence.jsonl ends where it stood then: before the step's
    // step_started, which is written only once its charges are (docs/ledger.md, follow-ups).
    w.copy_state("shard-3", "shard-3-cut");
    let billing = w.fx.path("shard-3-cut").join("billing.jsonl");
    let all = lines(&billing);
    let records = records_of(&billing);
    let cut = (0..records.len())
        .rev()
        .find(|&i| {
            let batch = records[i].get("batch").and_then(Value::as_str);
            records[i]["batch_len"].as_u64().unwrap_or(1) >= 2
                && batch.is_some_and(|b| b.starts_with("spend/") && !b.ends_with("/usage"))
                && (i == 0 || records[i - 1].get("batch") != records[i].get("batch"))
        })
        .expect("shard 3 wrote a SPEND batch of two lines");
    std::fs::write(&billing, all[..=cut].concat()).unwrap();
    let charged = &records[cut];
    let started = format!(
        "step_started/{}/{}/a{}",
        charged["run_id"].as_str().unwrap(),
        charged["step_id"].as_str().unwrap(),
        charged["attempt"]
    );
    let evidence = w.fx.path("shard-3-cut").join("evidence.jsonl");
    let kept = records_of(&evidence)
        .iter()
        .position(|r| r["idempotency_key"] == started.as_str())
        .expect("the charged step started");
    std::fs::write(&evidence, lines(&evidence)[..kept].concat()).unwrap();

    let segments = ["shard-1", "shard-2", "shard-3-cut"];
    let segment_bytes: Vec<_> = segments.iter().map(|s| w.bytes(s)).collect();
    w.copy_state("base", "merged");
    let out = w.run(
        &[
            &["ledger", "merge", "--json", "--into", "merged"][..],
            &segments,
        ]
        .concat(),
    );
    let stderr = out.expect_ok().stderr_text();
    let v = out.json();
    let torn_line = format!("skipped shard-2/{torn_file} line");
    assert_has(&stderr, &format!("note: {torn_line}"));
    assert_has(
        &stderr,
        &format!("note: skipped shard-3-cut/billing.jsonl line {} (", cut + 1),
    );
    assert_has(&stderr, "not merged (the segment is left as it is)");
    let tails = v["torn_tails"].as_array().unwrap();
    let files: BTreeSet<&str> = tails.iter().map(|t| t["file"].as_str().unwrap()).collect();
    assert_eq!(
        files,
        BTreeSet::from([
            format!("shard-2/{torn_file}").as_str(),
            "shard-3-cut/billing.jsonl"
        ]),
        "{v:#}"
    );
    let cut_tail = tails
        .iter()
        .find(|t| t["file"] == "shard-3-cut/billing.jsonl")
        .unwrap();
    assert_eq!(cut_tail["from_line"], cut as u64 + 1);
    assert_eq!(cut_tail["lines"], 1);
    let notes: Vec<&str> = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(notes.iter().any(|n| n.contains(&torn_line)), "{notes:?}");

    // Every record of every segment but the torn tails, and nothing else.
    for f in LEDGER_FILES {
        let mut expected = BTreeSet::new();
        for s in segments {
            expected.extend(keys_before_torn_tail(&w.fx.path(s).join(f)));
        }
        assert_eq!(w.keys("merged", f), expected, "{f}");
    }
    assert!(
        w.line_count("merged", "billing.jsonl") > w.line_count("base", "billing.jsonl"),
        "the shards' charges were merged"
    );
    w.integrity_ok("merged");
    for (s, before) in segments.iter().zip(&segment_bytes) {
        assert_eq!(&w.bytes(s), before, "the merge changed segment {s}");
    }

    // A complete line changed in the middle of a segment is damage: the whole merge is
    // refused, and the error names that line, not a torn tail met before it.
    w.copy_state("shard-1", "shard-z-damaged");
    let path = w.fx.path("shard-z-damaged").join("billing.jsonl");
    let mut all = lines(&path);
    let mid = (w.line_count("base", "billing.jsonl") + all.len()) / 2;
    let line = String::from_utf8(all[mid].clone()).unwrap();
    let record: Value = serde_json::from_str(&line).unwrap();
    let at = record["recorded_at"].as_str().unwrap();
    all[mid] = line
        .replacen(at, "2020-01-01T00:00:00.000Z", 1)
        .into_bytes();
    std::fs::write(&path, all.concat()).unwrap();
    w.copy_state("base", "refused");
    let before = w.bytes("refused");
    let out = w.merge("refused", &["shard-2", "shard-3-cut", "shard-z-damaged"]);
    let stderr = out.expect_code(1).stderr_text();
    assert_has(&stderr, "segment shard-z-damaged fails verification");
    assert_has(
        &stderr,
        &format!("shard-z-damaged/billing.jsonl:{}: hash mismatch", mid + 1),
    );
    assert_has(&stderr, "nothing was merged");
    // The way out names the segment and the target, and is one that works: the workflow never
    // re-runs a shard (until 2026-12-03 the help said to, and named no directory to validate).
    assert_has(
        &stderr,
        "`platform integrity-validate --billing-state-dir shard-z-damaged` lists every problem",
    );
    assert_has(
        &stderr,
        "`platform ledger merge --into refused <the other segments>`",
    );
    assert!(!stderr.contains("re-run that shard"), "{stderr}");
    assert_eq!(w.bytes("refused"), before, "a refused merge wrote");
    // Doing what it says: the other segments merge.
    w.merge("refused", &["shard-2", "shard-3-cut"]).expect_ok();
    w.integrity_ok("refused");
}

/// A segment with a top-up whose audit record is missing (a crash between the two writes of
/// admin-topup) is refused, D untouched, with a help that says how to repair the segment;
/// doing what it says makes the merge work.
#[test]
fn a_segment_with_an_unaudited_topup_is_refused_with_the_repair_to_make() {
    let w = World::seeded();
    w.copy_state("base", "topped");
    let topup = Topup::new("tenant-a", "5", "late-1").by("demo-admin");
    let post = || {
        w.platform("repo")
            .args(topup.args())
            .args(["--billing-state-dir", "topped"])
            .output()
            .unwrap()
    };
    post().expect_ok();
    // The crash: the audit record never reached the disk.
    let audit = w.fx.path("topped").join("audit.jsonl");
    let mut all = lines(&audit);
    all.pop();
    std::fs::write(&audit, all.concat()).unwrap();

    w.copy_state("base", "merged");
    let before = w.bytes("merged");
    let out = w.merge("merged", &["topped"]);
    let stderr = out.expect_code(1).stderr_text();
    assert_has(&stderr, "segment topped: ");
    assert_has(&stderr, "has no audit record");
    assert_has(
        &stderr,
        "`ledger merge` does not add a missing audit record",
    );
    assert_has(&stderr, "--billing-state-dir topped");
    assert_eq!(w.bytes("merged"), before);

    // The help's repair: replay the top-up on the segment, then merge again.
    post().expect_ok();
    w.merge("merged", &["topped"]).expect_ok();
    w.integrity_ok("merged");
    assert_eq!(w.balance("merged", "tenant-a"), 105);
}

/// A debit recorded in the target after the snapshot a shard started from (an adjustment
/// while the shards ran) leaves the tenant short of what its shard spent: the merge refuses,
/// writes nothing, and says which tenant, which ADJUST and what to do. Doing it (credit the
/// debit back, merge again) merges every record. Until 2026-12-03 the error named only the
/// segment line and said a spend must come after its top-up.
#[test]
fn a_debit_after_the_snapshot_is_named_with_the_way_to_merge() {
    let w = World::seeded();
    w.copy_state("base", "shard-1");
    w.orchestrate("repo", "shard-1", Some("1/3"));
    w.copy_state("base", "merged");
    let adjust = |amount: &str, reason: &str, reference: &str| {
        w.run(&[
            "admin-adjust",
            "--tenant-id",
            "tenant-a",
            "--amount-credits",
            amount,
            "--reason-slug",
            reason,
            "--reference",
            reference,
            "--actor",
            "demo-admin",
            "--billing-state-dir",
            "merged",
        ])
    };
    adjust("-95", "chargeback", "cb-1").expect_ok();
    let before = w.bytes("merged");

    let out = w.merge("merged", &["shard-1"]);
    out.expect_code(1);
    let text = out.text();
    for want in [
        "not enough credits: tenant tenant-a",
        "nothing was merged",
        "Tenant tenant-a was debited after the snapshot",
        "ADJUST adjust/tenant-a/cb-1 (-95 credits, merged/billing.jsonl line",
        "credit tenant tenant-a back 95 credits",
        "--amount-credits 95",
        "run the same merge again",
    ] {
        assert_has(&text, want);
    }
    assert_eq!(w.bytes("merged"), before, "a refused merge wrote");

    adjust("95", "correction", "cb-1-reversal").expect_ok();
    w.merge("merged", &["shard-1"]).expect_ok();
    assert_eq!(
        w.balance("merged", "tenant-a"),
        w.balance("shard-1", "tenant-a"),
        "every record of the shard is merged"
    );
    w.integrity_ok("merged");
}

/// A merge that stopped between replacing evidence.jsonl and billing.jsonl (SPEC §7's order:
/// audit, evidence, billing) leaves runs whose `run_ended` states charges billing.jsonl does
/// not hold yet. Readers name it, with the way out; the same merge run again completes it,
/// byte for byte. A target that holds less than its runs' ends state for another reason
/// (a SPEND batch deleted, re-chained) is not taken as one: no segment brings the charge,
/// and the merge is refused, writing nothing.
#[test]
fn a_merge_interrupted_between_its_renames_is_completed_by_the_same_merge() {
    let w = World::seeded();
    let segments = ["shard-1", "shard-2", "shard-3"];
    for (k, dir) in segments.iter().enumerate() {
        w.copy_state("base", dir);
        w.orchestrate("repo", dir, Some(&format!("{}/3", k + 1)));
    }
    w.copy_state("base", "merged");
    w.merge("merged", &segments).expect_ok();

    // The crash: audit.jsonl and evidence.jsonl replaced, billing.jsonl not yet.
    w.copy_state("base", "interrupted");
    for f in ["audit.jsonl", "evidence.jsonl"] {
        std::fs::copy(
            w.fx.path("merged").join(f),
            w.fx.path("interrupted").join(f),
        )
        .unwrap();
    }
    let out = w.run(&["integrity-validate", "--billing-state-dir", "interrupted"]);
    let text = out.expect_code(1).stdout_text();
    assert_has(&text, "interrupted/evidence.jsonl:");
    assert_has(
        &text,
        "or a `platform ledger merge` into this directory stopped between replacing evidence.jsonl and billing.jsonl (then run the same merge again)",
    );
    w.merge("interrupted", &segments).expect_ok();
    assert_eq!(w.bytes("interrupted"), w.bytes("merged"));
    w.integrity_ok("interrupted");

    // A SPEND batch of an ended run deleted from the merged ledger, re-chained, then merged
    // with a segment that does not hold it (a segment that does brings it back).
    w.copy_state("merged", "forged");
    let billing = w.fx.path("forged").join("billing.jsonl");
    let records = records_of(&billing);
    let shard_1 = w.keys("shard-1", "billing.jsonl");
    let batch = records
        .iter()
        .find(|r| r["type"] == "SPEND" && !shard_1.contains(r["idempotency_key"].as_str().unwrap()))
        .and_then(|r| r.get("batch").cloned())
        .expect("a SPEND batch of another shard");
    crate::support::ledger_fixtures::forge(&billing, |r| {
        r.retain(|r| r.get("batch") != Some(&batch))
    });
    let before = w.bytes("forged");
    let out = w.merge("forged", &["shard-1"]);
    let err = out.expect_code(1).stderr_text();
    assert_has(
        &err,
        "the merged ledger would not add up: forged/evidence.jsonl:",
    );
    assert_has(&err, "but billing.jsonl holds SPENDs of");
    assert_eq!(w.bytes("forged"), before, "a refused merge wrote");
}

/// A segment's privileged records (a top-up, an adjustment debit, a rerun request) each
/// follow their audit record in the merge's replace order (audit, evidence, billing), so a
/// merge stopped after replacing audit.jsonl (or audit.jsonl and evidence.jsonl) leaves audit
/// records whose records are not in place yet. Readers call that damage and name the way
/// out; the same merge run again completes it, byte for byte as a merge that was not
/// stopped (docs/security.md, "Remove a TOPUP ... or an ADJUST debit").
#[test]
fn a_merge_interrupted_after_its_audit_records_is_completed_by_the_same_merge() {
    let w = World::seeded();
    w.copy_state("base", "seg");
    let in_seg = |args: &[&str]| {
        let mut c = w.platform("repo");
        c.args(args).args(["--billing-state-dir", "seg"]);
        c.output().unwrap().expect_ok();
    };
    let topup = Topup::new("tenant-a", "7", "late-1")
        .by("demo-admin")
        .args();
    in_seg(&topup.iter().map(String::as_str).collect::<Vec<_>>());
    in_seg(&[
        "admin-adjust",
        "--tenant-id",
        "tenant-b",
        "--amount-credits",
        "-5",
        "--reason-slug",
        "chargeback",
        "--reference",
        "cb-2",
        "--actor",
        "demo-admin",
    ]);
    in_seg(&[
        "rerun",
        "--tenant-id",
        "tenant-c",
        "--work-order-id",
        "wo-1",
        "--reason",
        "upstream data fixed",
        "--actor",
        "demo-admin",
    ]);
    w.copy_state("base", "merged");
    w.merge("merged", &["seg"]).expect_ok();

    let missing_from_billing = [
        "says TOPUP topup/tenant-a/late-1 was recorded, but billing.jsonl holds no such record",
        "says ADJUST adjust/tenant-b/cb-2 was recorded, but billing.jsonl holds no such record",
    ];
    let rerun_missing = "says rerun_requested rerun/tenant-c/wo-1/after-r0 was recorded, but evidence.jsonl holds no such record";
    for (dir, replaced, rerun_in_place) in [
        ("after-audit", &["audit.jsonl"][..], false),
        (
            "after-evidence",
            &["audit.jsonl", "evidence.jsonl"][..],
            true,
        ),
    ] {
        w.copy_state("base", dir);
        for f in replaced {
            std::fs::copy(w.fx.path("merged").join(f), w.fx.path(dir).join(f)).unwrap();
        }
        let out = w.run(&["integrity-validate", "--billing-state-dir", dir]);
        let text = out.expect_code(1).stdout_text();
        for want in missing_from_billing {
            assert_has(&text, want);
        }
        assert_eq!(
            text.contains(rerun_missing),
            !rerun_in_place,
            "{dir}: {text}"
        );
        assert_has(&text, "run the same merge again");
        w.merge(dir, &["seg"]).expect_ok();
        assert_eq!(w.bytes(dir), w.bytes("merged"), "{dir}");
        w.integrity_ok(dir);
    }
}
