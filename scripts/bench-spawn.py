#!/usr/bin/env python3
"""Per-step spawn cost of a command module, with the per-step supervisor and without.

Usage: scripts/bench-spawn.py PLATFORM_BIN [-n N] [--rounds R]

Starts the benchmark workload's module (`write_note`: one /bin/sh writing note.txt, see
gen-workload.py) N times each way, in R interleaved rounds, from this one small process:

  direct      posix_spawn of the module with the runner's environment, stdout and stderr
              to pipes read to EOF, then waitpid: what the runner did before the supervisor;
  supervised  what the runner does now: the zygote (`PLATFORM_BIN __zygote`, started once,
              untimed, as a run starts it once) is sent the step's socket and log pipes
              (SCM_RIGHTS) and forks a supervisor; the spec goes over the socket, the report
              is read, the pipes are read to EOF (the supervisor spawns the module and ends
              its tree; the zygote reaps it).

Prints the median and spread per spawn for each, and the difference: the supervisor's cost
per step.
"""
import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time

WRITE_NOTE_SH = """#!/bin/sh
printf '%s/%s/%s\\n' "$PLATFORM_TENANT_ID" "$PLATFORM_WORK_ORDER_ID" "$PLATFORM_STEP_ID" \\
  >"$PLATFORM_OUTPUTS_DIR/note.txt"
"""


def drain(fds):
    """Read every fd to EOF (the outputs are tiny; order does not matter)."""
    out = b""
    for fd in fds:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
        os.close(fd)
    return out


def pipes():
    (ro, wo), (re, we) = os.pipe(), os.pipe()
    return ro, wo, re, we


def direct(module, env, cwd):
    ro, wo, re, we = pipes()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        pid = os.posix_spawn(module, [module], env, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, wo, 1), (os.POSIX_SPAWN_DUP2, we, 2)],
            setpgroup=0)
    finally:
        os.chdir(old)
    os.close(wo)
    os.close(we)
    drain([ro, re])
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def start_zygote(platform):
    """The zygote with its control socket (a SOCK_SEQPACKET pair) as stdin, as the runner
    starts it: an empty environment and argv room for the supervisors' command lines."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    devnull = os.open(os.devnull, os.O_RDWR)
    pid = os.posix_spawn(platform, ["platform", "__zygote", " " * 4160], {}, file_actions=[
        (os.POSIX_SPAWN_DUP2, theirs.fileno(), 0),
        (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
    theirs.close()
    os.close(devnull)
    return ours, pid


def supervised(zygote, module, env, cwd, step_dir):
    ro, wo, re, we = pipes()
    ours, theirs = socket.socketpair()
    socket.send_fds(zygote, [step_dir.encode()], [theirs.fileno(), wo, we])
    pid = int.from_bytes(zygote.recv(4), "little", signed=True)
    assert pid > 0, pid
    theirs.close()
    os.close(wo)
    os.close(we)
    spec = {"program": module, "args": [], "cwd": cwd, "env": sorted(env.items()),
            "timeout_ms": 60000}
    ours.sendall(json.dumps(spec).encode())
    ours.shutdown(socket.SHUT_WR)
    report = b""
    while True:
        chunk = ours.recv(65536)
        if not chunk:
            break
        report += chunk
    ours.close()
    drain([ro, re])
    assert json.loads(report) == {"outcome": "exited", "code": 0}, report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("platform")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    platform = os.path.abspath(args.platform)
    with tempfile.TemporaryDirectory() as tmp:
        module = os.path.join(tmp, "run.sh")
        with open(module, "w") as f:
            f.write(WRITE_NOTE_SH)
        os.chmod(module, 0o755)
        step = os.path.join(tmp, "step")
        for d in ("outputs", "work"):
            os.makedirs(os.path.join(step, d))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "PLATFORM_INPUTS": os.path.join(step, "inputs.json"),
               "PLATFORM_OUTPUTS_DIR": os.path.join(step, "outputs"),
               "PLATFORM_RESULT": os.path.join(step, "result.json"),
               "PLATFORM_MODULE_DIR": tmp, "PLATFORM_TENANT_ID": "t",
               "PLATFORM_WORK_ORDER_ID": "w", "PLATFORM_STEP_ID": "s"}
        cwd = os.path.join(step, "work")
        per_round = max(1, args.n // args.rounds)
        zygote, zygote_pid = start_zygote(platform)
        times = {"direct": [], "supervised": []}
        for _ in range(args.rounds):
            for name, run in (("direct", lambda: direct(module, env, cwd)),
                              ("supervised", lambda: supervised(zygote, module, env, cwd, step))):
                t0 = time.perf_counter()
                for _ in range(per_round):
                    run()
                times[name].append((time.perf_counter() - t0) / per_round * 1000)
        zygote.close()
        os.waitpid(zygote_pid, 0)
    print(f"{per_round * args.rounds} spawns each way, {args.rounds} interleaved rounds; "
          f"ms per spawn, median of rounds (min-max):")
    med = {}
    for name, ts in times.items():
        med[name] = statistics.median(ts)
        print(f"  {name:<10} {med[name]:.3f} ({min(ts):.3f}-{max(ts):.3f})")
    print(f"  supervisor cost per step: {med['supervised'] - med['direct']:.3f} ms")


if __name__ == "__main__":
    sys.exit(main())
