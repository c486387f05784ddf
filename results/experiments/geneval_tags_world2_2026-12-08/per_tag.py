"""Per-tag GenEval scores (strict, then partial) of a mini_rl_gain task folder: python per_tag.py RUNS/geneval."""

import json
import sys
from pathlib import Path

TAGS = ["single_object", "colors", "two_object", "counting", "position", "color_attr"]
folder = Path(sys.argv[1])
evaluations = {"base": folder / "base_eval.json"}
evaluations.update({f"{p.parent.name} {p.name}": p / "test_eval.json" for p in sorted(folder.glob("*/seed*"))})
for metric in ("strict", "partial"):
    print(f"\n{metric}, test prompts:\n")
    print("| model | RL reward | tag mean | " + " | ".join(TAGS) + " |")
    print("|---|---:|---:|" + "---:|" * len(TAGS))
    for name, path in evaluations.items():
        if path.exists():
            result = json.loads(path.read_text())
            scores = result[metric]
            cells = " | ".join(f"{scores['per_tag'][t]:.3f}" for t in TAGS)
            print(f"| {name} | {result['mean']:.4f} | {scores['tag_mean']:.3f} | {cells} |")
