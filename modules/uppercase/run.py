#!/usr/bin/env python3
"""uppercase: writes the input file's text in upper case (platform command-module protocol).

The simplest module there is: read $PLATFORM_INPUTS, write the declared output under
$PLATFORM_OUTPUTS_DIR, exit 0. No $PLATFORM_RESULT is needed when all went well.
"""
import json
import os
import sys


def main():
    with open(os.environ["PLATFORM_INPUTS"], encoding="utf-8") as f:
        inputs = json.load(f)
    with open(inputs["source"], encoding="utf-8", errors="replace") as f:
        text = f.read()
    out = os.path.join(os.environ["PLATFORM_OUTPUTS_DIR"], "upper.txt")
    # newline="" keeps the input's line endings byte for byte.
    with open(out, "w", encoding="utf-8", newline="") as f:
        f.write(text.upper())
    return 0


if __name__ == "__main__":
    sys.exit(main())
