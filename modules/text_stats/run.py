#!/usr/bin/env python3
"""text_stats: word statistics of a text, following the platform's command-module protocol.

Reads its inputs from $PLATFORM_INPUTS, writes stats.json, words.txt and counts.jsonl under
$PLATFORM_OUTPUTS_DIR and reports the word count as a value output in $PLATFORM_RESULT.
Outputs are deterministic: the same text always gives the same bytes.
"""
import json
import os
import re
import sys
from collections import Counter

# Letters and digits, with inner apostrophes kept ("don't" is one word).
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def write_result(result):
    path = os.environ.get("PLATFORM_RESULT")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(result, f, sort_keys=True)


def main():
    with open(os.environ["PLATFORM_INPUTS"], encoding="utf-8") as f:
        inputs = json.load(f)
    out_dir = os.environ["PLATFORM_OUTPUTS_DIR"]

    text = inputs.get("text")
    if text is None and inputs.get("source"):
        with open(inputs["source"], encoding="utf-8", errors="replace") as f:
            text = f.read()
    if not text or not text.strip():
        # empty_input is a reason slug added by config/registry.yml (refundable).
        write_result({
            "status": "FAILED",
            "reason_slug": "empty_input",
            "message": "no text: set the input `text`, or `source` to a non-empty file",
        })
        return 1

    words = [w.lower() for w in WORD.findall(text)]
    counts = Counter(words)
    # Most frequent first; ties alphabetical, so the order never depends on the input order.
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    top_n = max(0, int(inputs.get("top_n", 10)))
    longest = max(counts, key=lambda w: (len(w), w)) if counts else ""
    stats = {
        "word_count": len(words),
        "unique_words": len(counts),
        "line_count": len(text.splitlines()),
        "char_count": len(text),
        "longest_word": longest,
        "top_words": [{"word": w, "count": c} for w, c in ranked[:top_n]],
    }

    with open(os.path.join(out_dir, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(out_dir, "words.txt"), "w", encoding="utf-8") as f:
        f.writelines(w + "\n" for w, _ in ranked)
    with open(os.path.join(out_dir, "counts.jsonl"), "w", encoding="utf-8") as f:
        for w, c in ranked:
            f.write(json.dumps({"word": w, "count": c}, sort_keys=True, ensure_ascii=False) + "\n")

    write_result({"status": "COMPLETED", "values": {"word_count": len(words)}})
    print(f"{len(words)} words, {len(counts)} distinct")
    return 0


if __name__ == "__main__":
    sys.exit(main())
