"""Per-tag partial GenEval scores of the evaluations in a folder: python report.py FOLDER."""

import glob
import json
import os
import sys

TAGS = ["single_object", "two_object", "counting", "colors", "position", "color_attr"]
print("| model | partial tag mean | " + " | ".join(TAGS) + " | strict tag mean |")
print("|---|---:|" + "---:|" * len(TAGS) + "---:|")
for path in sorted(glob.glob(sys.argv[1] + "/w*_*.json")):
    result = json.load(open(path))
    per_tag = " | ".join(f"{result['partial']['per_tag'][t]:.3f}" for t in TAGS)
    name = os.path.basename(path)[:-5]
    print(f"| {name} | {result['partial']['tag_mean']:.3f} | {per_tag} | {result['strict']['tag_mean']:.3f} |")
