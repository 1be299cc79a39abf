#!/usr/bin/env python3
"""render_report: report.md plus a report/ folder (platform command-module protocol).

Shows the other half of the protocol: a `dir` output (every file under it is packaged),
and a FAILED result with a reason slug when an input makes no sense.
"""
import csv
import json
import os
import sys


def write_result(result):
    path = os.environ.get("PLATFORM_RESULT")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(result, f, sort_keys=True)


def main():
    with open(os.environ["PLATFORM_INPUTS"], encoding="utf-8") as f:
        inputs = json.load(f)
    out_dir = os.environ["PLATFORM_OUTPUTS_DIR"]

    title = inputs["title"].strip()
    subtitle = str(inputs.get("subtitle", "")).strip()
    words = [str(w).strip() for w in inputs.get("top_words", []) if str(w).strip()]
    stats = inputs.get("stats", {})
    if not title:
        write_result({"status": "FAILED", "reason_slug": "module_failed",
                      "message": "title is empty; give the report a title"})
        return 1
    word_count = inputs.get("word_count", stats.get("word_count"))
    unique = inputs.get("unique_words", stats.get("unique_words"))

    lines = [f"# {title}", ""]
    if subtitle:
        lines += [f"_{subtitle}_", ""]
    lines += ["## Numbers", ""]
    if word_count is not None:
        lines.append(f"- words: {word_count}")
    if unique is not None:
        lines.append(f"- distinct words: {unique}")
    top = inputs.get("top_entry")
    if top:
        lines.append(f"- most frequent: {top.get('word')} ({top.get('count')} times)")
    lines += ["", "## Top words", ""]
    lines += [f"{i}. {w}" for i, w in enumerate(words, 1)] or ["(none)"]
    with open(os.path.join(out_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")

    folder = os.path.join(out_dir, "report")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "summary.txt"), "w", encoding="utf-8") as f:
        f.write(f"{title}\nwords={word_count}\ndistinct={unique}\n")
    with open(os.path.join(folder, "top_words.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["rank", "word"])
        for i, word in enumerate(words, 1):
            w.writerow([i, word])
    return 0


if __name__ == "__main__":
    sys.exit(main())
