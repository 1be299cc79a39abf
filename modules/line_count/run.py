#!/usr/bin/env python3
"""line_count: numbers the lines of a file and reports them as metered usage.

Reads $PLATFORM_INPUTS, writes numbered.txt under $PLATFORM_OUTPUTS_DIR and reports
{"usage": {"lines": N}} in $PLATFORM_RESULT: the platform charges 1 credit per line
(module.yml's pricing.usage), once, when the step completes.
"""
import json
import os


def main():
    with open(os.environ["PLATFORM_INPUTS"], encoding="utf-8") as f:
        inputs = json.load(f)
    with open(inputs["source"], encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    out = os.path.join(os.environ["PLATFORM_OUTPUTS_DIR"], "numbered.txt")
    with open(out, "w", encoding="utf-8") as f:
        for i, line in enumerate(lines, 1):
            f.write(f"{i:>6}  {line}\n")
    with open(os.environ["PLATFORM_RESULT"], "w", encoding="utf-8") as f:
        json.dump({"values": {"line_count": len(lines)}, "usage": {"lines": len(lines)}}, f)


if __name__ == "__main__":
    main()
