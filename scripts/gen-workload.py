#!/usr/bin/env python3
"""Writes a platform repository for benchmarks: T tenants x M work orders of 3 steps each.

Each work order runs
  1. `write_note` - a command module that is a tiny POSIX sh script (one process, no
     interpreter start-up to speak of), writing note.txt (a few dozen bytes);
  2. `package_std` - the built-in packager, packing note.txt;
  3. `deliver_local` - the built-in local delivery of the package.

With --steps 2, each work order runs `write_note` twice instead (two command steps, as the
original platform's offline benchmark: every step a process). With --sleep-ms MS,
`write_note` sleeps MS milliseconds first (`sleep`, one more process), like a module that
waits on a remote service.

Usage:
  scripts/gen-workload.py OUT_DIR --work-orders W [--tenants T] [--steps 2|3]
      [--sleep-ms MS] [--platform PATH --billing-state-dir DIR]

W is the total number of work orders, spread evenly over T tenants (default 10; the last
tenants get one fewer when W is not a multiple of T). With --platform the tenants are topped
up (`platform admin-topup`, actor bench-admin) into --billing-state-dir with twice the
credits their work orders cost, so a first pass is never refused for credits.

OUT_DIR is replaced. The same arguments always write the same bytes.
"""
import argparse
import os
import shutil
import stat
import subprocess
import sys

# Credits one work order costs: write_note 1, package_std 1 + 2 (deliverable), deliver_local 1;
# with --steps 2, write_note twice.
CREDITS_PER_WORK_ORDER = {3: 5, 2: 2}

IAM = """\
# Benchmark repository: one admin actor for the top-ups.
roles:
  admin: [billing.topup, artifacts.publish]
actors:
  - id: bench-admin
    roles: [admin]
"""

PROFILE = """\
profile_name: local
billing_state_dir: .billing-state
runtime_dir: runtime
"""

WRITE_NOTE_YML = """\
# Benchmark module: one sh process that writes a small file (the spawn floor of a step).
module_id: write_note
version: "1.0.0"
kind: transform
description: Writes note.txt naming the tenant, work order and step.
runner:
  command: ["./run.sh"]
inputs:
  - id: text
    type: string
    required: false
    default: ""
outputs:
  - id: note_txt
    type: file
    path: note.txt
pricing:
  run_credits: 1
timeout_seconds: 60
"""

# Only sh built-ins: the whole step is one fork + exec of /bin/sh.
WRITE_NOTE_SH = """\
#!/bin/sh
{sleep}printf '%s/%s/%s\\n' "$PLATFORM_TENANT_ID" "$PLATFORM_WORK_ORDER_ID" "$PLATFORM_STEP_ID" \\
  >"$PLATFORM_OUTPUTS_DIR/note.txt"
"""

PACKAGE_STD_YML = """\
module_id: package_std
version: "1.0.0"
kind: packaging
runner:
  builtin: package_std
inputs:
  - id: bound_outputs
    type: array
    required: true
outputs:
  - id: package_zip
    type: file
    path: package.zip
  - id: manifest_json
    type: file
    path: manifest.json
  - id: manifest_csv
    type: file
    path: manifest.csv
deliverables:
  - deliverable_id: package
    outputs: [package_zip, manifest_json, manifest_csv]
pricing:
  run_credits: 1
  deliverables:
    package: 2
"""

DELIVER_LOCAL_YML = """\
module_id: deliver_local
version: "1.0.0"
kind: delivery
runner:
  builtin: deliver_local
inputs:
  - id: package_zip
    type: file
    required: true
  - id: manifest_json
    type: file
    required: false
pricing:
  run_credits: 1
"""

# A work order: its header and first step (write_note), then the steps of --steps 3 or 2.
WORK_ORDER_HEAD = """\
work_order_id: {wo}
enabled: true
{artifacts}metadata:
  generated_by: gen-workload.py
steps:
  - step_id: note
    module_id: write_note
    kind: transform
    inputs:
      text: "note {n}"
"""

THEN_PACK_AND_DELIVER = """\
  - step_id: pack
    module_id: package_std
    kind: packaging
    inputs:
      bound_outputs:
        - {{from_step: note, output_id: note_txt, as_path: note.txt}}
    deliverables: [package]
  - step_id: deliver
    module_id: deliver_local
    kind: delivery
    inputs:
      package_zip: {{from_step: pack, output_id: package_zip}}
      manifest_json: {{from_step: pack, output_id: manifest_json}}
"""

THEN_AGAIN = """\
  - step_id: again
    module_id: write_note
    kind: transform
    inputs:
      text: "again {n}"
"""


def work_order(steps, wo, n):
    """The YAML of work order `wo` (number n) with 3 or 2 steps."""
    if steps == 3:
        return WORK_ORDER_HEAD.format(wo=wo, n=n, artifacts="artifacts_requested: true\n") + THEN_PACK_AND_DELIVER.format()
    return WORK_ORDER_HEAD.format(wo=wo, n=n, artifacts="") + THEN_AGAIN.format(n=n)


def write(path, text, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    if mode is not None:
        os.chmod(path, mode)


def split(total, parts):
    """Work orders per tenant: as even as possible, the first tenants get the remainder."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--work-orders", "-w", type=int, required=True, help="total work orders W")
    ap.add_argument("--tenants", "-t", type=int, default=10, help="tenants T (default 10)")
    ap.add_argument("--steps", type=int, choices=(2, 3), default=3, help="steps per work order")
    ap.add_argument("--sleep-ms", type=int, default=0, help="write_note sleeps this long first")
    ap.add_argument("--platform", help="platform binary: top the tenants up")
    ap.add_argument("--billing-state-dir", help="where the top-ups go (with --platform)")
    args = ap.parse_args()
    if args.work_orders < 1 or args.tenants < 1:
        ap.error("--work-orders and --tenants must be at least 1")
    tenants = min(args.tenants, args.work_orders)

    out = os.path.abspath(args.out)
    if os.path.exists(out):
        shutil.rmtree(out)
    write(os.path.join(out, "config", "iam.yml"), IAM)
    write(os.path.join(out, "config", "runtime_profile.local.yml"), PROFILE)
    write(os.path.join(out, "modules", "write_note", "module.yml"), WRITE_NOTE_YML)
    write(
        os.path.join(out, "modules", "write_note", "run.sh"),
        WRITE_NOTE_SH.format(
            sleep=f"sleep {args.sleep_ms // 1000}.{args.sleep_ms % 1000:03d}\n" if args.sleep_ms > 0 else ""
        ),
        stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH,
    )
    write(os.path.join(out, "modules", "package_std", "module.yml"), PACKAGE_STD_YML)
    write(os.path.join(out, "modules", "deliver_local", "module.yml"), DELIVER_LOCAL_YML)

    n = 0
    width = max(4, len(str(args.work_orders)))
    counts = split(args.work_orders, tenants)
    for t, count in enumerate(counts, start=1):
        tenant = f"t{t:03d}"
        tdir = os.path.join(out, "tenants", tenant)
        write(
            os.path.join(tdir, "tenant.yml"),
            f"tenant_id: {tenant}\nname: Benchmark tenant {t}\ncontact: ops@{tenant}.example\n",
        )
        for _ in range(count):
            n += 1
            wo = f"wo-{n:0{width}d}"
            write(os.path.join(tdir, "workorders", f"{wo}.yml"), work_order(args.steps, wo, n))

    if args.platform:
        state = args.billing_state_dir or os.path.join(out, ".billing-state")
        for t, count in enumerate(counts, start=1):
            tenant = f"t{t:03d}"
            subprocess.run(
                [
                    args.platform, "--repo", out, "admin-topup",
                    "--tenant-id", tenant,
                    "--amount-credits", str(2 * CREDITS_PER_WORK_ORDER[args.steps] * count),
                    "--topup-method-id", "manual",
                    "--reference", f"bench-{tenant}",
                    "--billing-state-dir", state,
                    "--actor", "bench-admin",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
    print(f"{out}: {tenants} tenants, {args.work_orders} work orders, {args.steps * args.work_orders} steps")


if __name__ == "__main__":
    sys.exit(main())
