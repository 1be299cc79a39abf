#!/usr/bin/env python3
"""Compare builds (or --jobs values) on the two-step workload, interleaved, each first pass
next to a sequential spawn floor measured just before it: on a machine whose speed drifts
by a third within minutes, only passes of the same round compare.

Usage: scripts/bench-ab.py [-w 1000] [-r 4] [--dir DIR] [--runtime-dir DIR] BIN:JOBS [BIN:JOBS ...]

  -w W             work orders (two command steps each; scripts/gen-workload.py --steps 2)
  -r ROUNDS        rounds; each runs every BIN:JOBS once, in the order given (reversed
                   every other round: use an even number)
  --dir DIR        where the workload and the ledgers go (default: a temp dir on this disk;
                   the ledgers' flushes are part of what is measured)
  --runtime-dir D  where the passes' runtime folders and the floor's outputs go (default:
                   /dev/shm/bench-ab: ext4 without a journal makes creating files right
                   after deleting many slow, docs/performance.md)

Prints one Markdown row per BIN:JOBS: median and best wall, median CPU (user + sys of the
pass and its children), the median and best ratio to the floor of the same round, and the
medians of when the first step ended and of the time from the last step's end to the pass's
exit (what runs before the first step and after the last, on fewer CPUs; from the ledger's
step_outcome records, to the millisecond), and
the median share of the machine's CPU time left idle during the pass (idle and iowait in
/proc/stat: what the pass could not keep busy, other tenants' load aside) and stolen (steal
in /proc/stat: time the hypervisor gave this VM's CPUs to others, which slows a round's
floor and pass alike and is why only paired figures compare), and, for every
BIN:JOBS after the first, the median of its per-round wall and CPU ratios to the first
(paired within a round, so the machine's drift between rounds cancels out).
Every pass must exit 0 and run every work order.
"""
import argparse
import datetime
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def floor(repo, n, out):
    """The module's own command n times from a sh loop (bench-setup.sh's spawn_floor)."""
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run(
        ["bash", "-c", f'. "{ROOT}/scripts/bench-setup.sh"; spawn_floor "$@"', "_", repo, str(n), out],
        check=True,
    )
    return time.perf_counter() - t


def cpu_times():
    """The machine's CPU times (the first line of /proc/stat), or None where there is none."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


def shares(a, b):
    """Of the CPU time between two cpu_times() readings, the shares idle or waiting for I/O,
    and stolen by the hypervisor."""
    if a is None or b is None:
        return float("nan"), float("nan")
    d = [y - x for x, y in zip(a, b)]
    return (d[3] + d[4]) / max(sum(d), 1), d[7] / max(sum(d), 1)


def step_ends(state):
    """When the pass's first and last steps ended (the `recorded_at` of its first and last
    step_outcome records, in seconds since the epoch, to the millisecond), or None."""
    times = []
    try:
        with open(os.path.join(state, "evidence.jsonl"), encoding="utf-8") as f:
            for line in f:
                if '"type":"step_outcome"' not in line:
                    continue
                at = json.loads(line).get("recorded_at", "")
                times.append(datetime.datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp())
    except (OSError, ValueError):
        return None
    return (min(times), max(times)) if times else None


def first_pass(binary, jobs, repo, state0, work, runtime, w):
    """A first pass from a copy of the topped-up ledger and an empty runtime folder.

    Its progress lines go to a file, read by nothing while it runs: a Python loop reading
    them line by line as they came (how this script timed the first and last step until
    2026-12-03) woke up ~2,000 times a pass on the pass's two CPUs and made the same build
    3-4 % slower (paired: 0.956x and 0.973x with a file instead, 12 and 16 rounds;
    docs/performance.md). The floor runs with no reader either. When the first and last
    steps ended is read from the ledger's step_outcome records afterwards."""
    state = os.path.join(work, "state")
    shutil.rmtree(state, ignore_errors=True)
    shutil.rmtree(runtime, ignore_errors=True)
    shutil.copytree(state0, state)
    os.sync()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    ticks = cpu_times()
    out = tempfile.TemporaryFile(mode="w+")
    err = tempfile.TemporaryFile(mode="w+")
    started = time.time()
    t = time.perf_counter()
    p = subprocess.Popen(
        [binary, "--repo", repo, "orchestrator", "--jobs", jobs, "--json",
         "--billing-state-dir", state, "--runtime-dir", runtime],
        stdout=out, stderr=err, text=True,
    )
    p.wait()
    wall = time.perf_counter() - t
    idle, steal = shares(ticks, cpu_times())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out.seek(0)
    stdout = out.read()
    ends = step_ends(state)
    if p.returncode != 0 or f'"runs"' not in stdout or stdout.count('"run_id"') < w or ends is None:
        err.seek(0)
        sys.exit(f"{binary} --jobs {jobs} failed (exit {p.returncode}):\n{err.read()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    first, last = ends[0] - started, ends[1] - started
    return wall, cpu, first, wall - last, idle, steal


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-w", type=int, default=1000)
    ap.add_argument("-r", type=int, default=4)
    ap.add_argument("--dir")
    ap.add_argument("--runtime-dir", default="/dev/shm/bench-ab")
    ap.add_argument("configs", nargs="+", metavar="BIN:JOBS")
    a = ap.parse_args()
    configs = []
    for c in a.configs:
        binary, _, jobs = c.rpartition(":")
        if not binary or not jobs.isdigit():
            sys.exit(f"{c}: expected BIN:JOBS")
        configs.append((os.path.abspath(binary), jobs))
    work = a.dir or tempfile.mkdtemp(prefix="bench-ab-", dir=os.getcwd())
    repo, state0 = os.path.join(work, "wl"), os.path.join(work, "state0")
    if not os.path.isdir(repo):
        subprocess.run(
            [sys.executable, f"{ROOT}/scripts/gen-workload.py", repo, "-w", str(a.w), "--steps", "2",
             "--platform", configs[0][0], "--billing-state-dir", state0],
            check=True, stdout=subprocess.DEVNULL,
        )
    runtime, spawn_out = os.path.join(a.runtime_dir, "rt"), os.path.join(a.runtime_dir, "spawn")
    results = {c: [] for c in configs}
    for r in range(a.r):
        # Every other round in the reverse order: the slot a build runs in within a round
        # moved its time by ~6 % on the benchmark machine (the same two builds compared
        # 1.056x with one order and 1/1.069x with the other), which alternating cancels.
        for c in (configs if r % 2 == 0 else configs[::-1]):
            f = floor(repo, 2 * a.w, spawn_out)
            wall, cpu, first, tail, idle, steal = first_pass(c[0], c[1], repo, state0, work, runtime, a.w)
            results[c].append((wall, cpu, f, first, tail, idle, steal))
            print(f"round {r + 1}: {os.path.basename(c[0])} --jobs {c[1]}: {wall:.3f} s, "
                  f"CPU {cpu:.3f} s, floor {f:.3f} s, {wall / f:.2f}x, CPUs idle {100 * idle:.1f} %, "
                  f"stolen {100 * steal:.1f} %",
                  file=sys.stderr, flush=True)
    shutil.rmtree(a.runtime_dir, ignore_errors=True)
    print(f"| W = {a.w}, {a.r} rounds | median wall | best | median CPU | × floor (median) "
          "| × floor (best) | first step ends | after the last | CPUs idle | stolen "
          "| wall, CPU × the first (paired) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = results[configs[0]]
    for (binary, jobs), rs in results.items():
        med = lambda k: statistics.median(x[k] for x in rs)
        ratios = [x[0] / x[2] for x in rs]
        paired = lambda k: statistics.median(x[k] / b[k] for x, b in zip(rs, base))
        print(f"| `{os.path.basename(binary)}` `--jobs {jobs}` | {med(0):.3f} s "
              f"| {min(x[0] for x in rs):.3f} s | {med(1):.3f} s "
              f"| {statistics.median(ratios):.2f}× | {min(ratios):.2f}× "
              f"| {1000 * med(3):.0f} ms | {1000 * med(4):.0f} ms | {100 * med(5):.1f} % "
              f"| {100 * med(6):.1f} % "
              f"| {paired(0):.3f}, {paired(1):.3f} |")


if __name__ == "__main__":
    main()
