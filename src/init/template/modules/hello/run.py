#!/usr/bin/env python3
"""Example command module: writes hello.txt, greeting the input `name`."""
import json
import os

with open(os.environ["PLATFORM_INPUTS"], encoding="utf-8") as f:
    inputs = json.load(f)
name = inputs.get("name") or "world"
with open(os.path.join(os.environ["PLATFORM_OUTPUTS_DIR"], "hello.txt"), "w", encoding="utf-8") as f:
    f.write(f"Hello, {name}!\n")
