#!/usr/bin/env python3
"""Scale-out workload: generates a platform repository and measures sharded runs and merges.

The repository reuses the crate's example modules and config; each work order runs
  text_stats (Python, reads an asset) -> package_std (built-in) -> deliver_local (built-in),
7 credits, as in tests/it/shard_merge.rs. The figures in docs/operations.md come from `measure`.

Usage:
  scripts/workload.py generate OUT --tenants T --per-tenant M
  scripts/workload.py measure --platform BIN --tenants T --per-tenant M --shards N [--keep DIR]

`measure` generates the repository in a temporary directory (or DIR), tops every tenant up
into base/, then times: one single-machine orchestrator pass, a second (all up to date) pass,
N shard passes one after another (`--shard K/N`, each from its own copy of base/), one
`ledger merge` of the N shard directories into a copy of base/, the same merge again
(nothing to add), and a steady-state round (N up-to-date shard passes from the merged
ledger, then their merge). It prints one JSON document. Shards run one after another here; on GitHub
Actions they run in parallel, so the wall time of a matrix is the slowest shard.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEDGER_FILES = ("billing.jsonl", "evidence.jsonl", "audit.jsonl")
CREDITS_PER_WORK_ORDER = 7

WORK_ORDER = """\
work_order_id: {wo}
enabled: true
artifacts_requested: true
steps:
  - step_id: stats
    module_id: text_stats
    kind: transform
    inputs: {{source: {{asset: note.txt}}, top_n: 3}}
    deliverables: [stats]
  - step_id: pack
    module_id: package_std
    kind: packaging
    inputs:
      bound_outputs:
        - {{from_step: stats, output_id: stats_json, as_path: stats.json}}
        - {{from_step: stats, output_id: words_txt, as_path: words.txt}}
    deliverables: [package]
  - step_id: deliver
    module_id: deliver_local
    kind: delivery
    inputs: {{package_zip: {{from_step: pack, output_id: package_zip}}}}
"""


def tenant_ids(n):
    return [f"t{i:05d}" for i in range(1, n + 1)]


def generate(out, tenants, per_tenant):
    """Writes the repository to OUT (replaced). The same arguments write the same bytes."""
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(os.path.join(ROOT, "modules"), os.path.join(out, "modules"))
    os.makedirs(os.path.join(out, "config"))
    shutil.copy(os.path.join(ROOT, "config", "registry.yml"), os.path.join(out, "config", "registry.yml"))
    # The shipped iam.yml grants nobody; the top-ups act as the demo's admin.
    shutil.copy(os.path.join(ROOT, "scripts", "demo-iam.yml"), os.path.join(out, "config", "iam.yml"))
    for t in tenant_ids(tenants):
        d = os.path.join(out, "tenants", t)
        os.makedirs(os.path.join(d, "workorders"))
        os.makedirs(os.path.join(d, "assets"))
        with open(os.path.join(d, "tenant.yml"), "w", encoding="utf-8") as f:
            f.write(f"tenant_id: {t}\nname: Generated {t}\n")
        with open(os.path.join(d, "assets", "note.txt"), "w", encoding="utf-8") as f:
            f.write(f"Notes of {t}: the quick brown fox jumps over the lazy dog. The dog.\n")
        for i in range(1, per_tenant + 1):
            wo = f"wo-{i:04d}"
            with open(os.path.join(d, "workorders", f"{wo}.yml"), "w", encoding="utf-8") as f:
                f.write(WORK_ORDER.format(wo=wo))


def run(cmd, cwd, ok=(0,)):
    """Runs a command; returns its wall time in seconds. Fails on an unexpected exit code."""
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_STEP_SUMMARY", "GITHUB_ACTOR")}
    start = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    took = time.monotonic() - start
    if p.returncode not in ok:
        sys.stderr.write(p.stderr.decode(errors="replace"))
        sys.exit(f"workload: {' '.join(cmd)} exited {p.returncode}")
    return took


def copy_state(src, dst):
    os.makedirs(dst, exist_ok=True)
    for f in LEDGER_FILES:
        if os.path.exists(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), os.path.join(dst, f))


def ledger_stats(d):
    lines = total = 0
    for f in LEDGER_FILES:
        p = os.path.join(d, f)
        if os.path.exists(p):
            total += os.path.getsize(p)
            with open(p, "rb") as fh:
                lines += sum(1 for _ in fh)
    return {"records": lines, "bytes": total}


def measure(args):
    work = args.keep or tempfile.mkdtemp(prefix="platform-workload.")
    os.makedirs(work, exist_ok=True)
    repo = os.path.join(work, "repo")
    generate(repo, args.tenants, args.per_tenant)
    bin_ = os.path.abspath(args.platform)
    p = [bin_, "--repo", repo]
    work_orders = args.tenants * args.per_tenant

    for t in tenant_ids(args.tenants):
        run(p + ["admin-topup", "--tenant-id", t, "--amount-credits",
                 str(CREDITS_PER_WORK_ORDER * args.per_tenant), "--topup-method-id", "manual",
                 "--reference", f"seed-{t}", "--actor", "demo-admin",
                 "--billing-state-dir", "base"], work)

    copy_state(os.path.join(work, "base"), os.path.join(work, "single"))
    single = run(p + ["orchestrator", "--billing-state-dir", "single", "--runtime-dir", "rt-single"], work)
    up_to_date = run(p + ["orchestrator", "--billing-state-dir", "single", "--runtime-dir", "rt-single"], work)

    shard_times = []
    for k in range(1, args.shards + 1):
        d = f"shard-{k}"
        copy_state(os.path.join(work, "base"), os.path.join(work, d))
        shard_times.append(run(p + ["orchestrator", "--shard", f"{k}/{args.shards}",
                                    "--billing-state-dir", d, "--runtime-dir", f"rt-{k}"], work))

    segments = [f"shard-{k}" for k in range(1, args.shards + 1)]
    copy_state(os.path.join(work, "base"), os.path.join(work, "merged"))
    merge = run(p + ["ledger", "merge", "--into", "merged"] + segments, work)
    merge_again = run(p + ["ledger", "merge", "--into", "merged"] + segments, work)
    integrity = run(p + ["integrity-validate", "--billing-state-dir", "merged"], work)

    # Steady state: every shard starts from the merged ledger and finds everything up to
    # date, so each segment is a full copy of the ledger: what a merge reads on every
    # scheduled run once the work is done.
    steady_times = []
    steady = []
    for k in range(1, args.shards + 1):
        d = f"steady-{k}"
        copy_state(os.path.join(work, "merged"), os.path.join(work, d))
        steady_times.append(run(p + ["orchestrator", "--shard", f"{k}/{args.shards}",
                                     "--billing-state-dir", d, "--runtime-dir", f"rt-steady-{k}"], work))
        steady.append(d)
    copy_state(os.path.join(work, "merged"), os.path.join(work, "steady-merged"))
    steady_merge = run(p + ["ledger", "merge", "--into", "steady-merged"] + steady, work)

    seg_stats = [ledger_stats(os.path.join(work, s)) for s in segments]
    result = {
        "tenants": args.tenants,
        "work_orders": work_orders,
        "shards": args.shards,
        "single_pass_s": round(single, 3),
        "single_per_work_order_s": round(single / work_orders, 4),
        "up_to_date_pass_s": round(up_to_date, 3),
        "shard_pass_s": {"min": round(min(shard_times), 3), "max": round(max(shard_times), 3),
                         "sum": round(sum(shard_times), 3)},
        "merge_s": round(merge, 3),
        "merge_again_s": round(merge_again, 3),
        "integrity_validate_s": round(integrity, 3),
        "steady_shard_pass_s": {"min": round(min(steady_times), 3), "max": round(max(steady_times), 3)},
        "steady_merge_s": round(steady_merge, 3),
        "steady_segments_records_total": sum(ledger_stats(os.path.join(work, s))["records"] for s in steady),
        "base": ledger_stats(os.path.join(work, "base")),
        "merged": ledger_stats(os.path.join(work, "merged")),
        "merged_files": {f: os.path.getsize(os.path.join(work, "merged", f)) for f in LEDGER_FILES
                         if os.path.exists(os.path.join(work, "merged", f))},
        "segments_records_total": sum(s["records"] for s in seg_stats),
        "segments_bytes_total": sum(s["bytes"] for s in seg_stats),
        "runtime_dir_bytes_single": dir_bytes(os.path.join(work, "rt-single")),
    }
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(work)


def dir_bytes(d):
    total = 0
    for base, _, files in os.walk(d):
        for f in files:
            total += os.path.getsize(os.path.join(base, f))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("out")
    g.add_argument("--tenants", type=int, required=True)
    g.add_argument("--per-tenant", type=int, required=True)
    m = sub.add_parser("measure")
    m.add_argument("--platform", required=True)
    m.add_argument("--tenants", type=int, required=True)
    m.add_argument("--per-tenant", type=int, required=True)
    m.add_argument("--shards", type=int, required=True)
    m.add_argument("--keep")
    args = ap.parse_args()
    if args.cmd == "generate":
        generate(args.out, args.tenants, args.per_tenant)
    else:
        measure(args)


if __name__ == "__main__":
    main()
