#!/usr/bin/env python3
"""Peak memory over time: run a command, sample its RSS every 0.1 s, print a timeline.

Usage: scripts/rss-timeline.py OUTDIR COMMAND...
  The command's stdout and stderr go to OUTDIR/out and OUTDIR/err; each sample shows the
  seconds since start, VmRSS, VmHWM (the peak so far) and how many stderr lines (progress:
  one per finished step for the orchestrator) had been written. Linux only (/proc).
"""
import subprocess
import sys
import time


def sample(pid, err_path):
    status = open(f"/proc/{pid}/status").read()
    rss = int(status.split("VmRSS:")[1].split()[0])
    hwm = int(status.split("VmHWM:")[1].split()[0])
    with open(err_path, "rb") as f:
        lines = f.read().count(b"\n")
    return rss, hwm, lines


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, cmd = sys.argv[1], sys.argv[2:]
    with open(f"{out}/out", "w") as so, open(f"{out}/err", "w") as se:
        p = subprocess.Popen(cmd, stdout=so, stderr=se)
    t0, samples = time.time(), []
    while p.poll() is None:
        try:
            samples.append((time.time() - t0, *sample(p.pid, f"{out}/err")))
        except (OSError, IndexError, ValueError):
            pass  # the process ended between poll() and the read
        time.sleep(0.1)
    print(f"exit code {p.returncode}, {len(samples)} samples")
    step = max(1, len(samples) // 25)
    for t, rss, hwm, lines in samples[::step] + samples[-10:]:
        print(f"{t:7.1f} s  rss {rss // 1024:5d} MiB  peak {hwm // 1024:5d} MiB  stderr lines {lines}")


if __name__ == "__main__":
    main()
