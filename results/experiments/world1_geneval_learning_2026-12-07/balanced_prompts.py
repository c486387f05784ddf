"""The first 30 training prompts of each tag (all 18 single-object ones) of worlds 0 and 1, written to
runs/exp44/w{0,1}_train_balanced.jsonl (the scripts' prompt files). Run from the repository root."""

import json
from pathlib import Path

for name, world in (("w0", "runs/pipeline/mini"), ("w1", "runs/world1")):
    taken: dict[str, int] = {}
    kept = []
    for line in Path(world, "world/geneval/train_metadata.jsonl").read_text().splitlines():
        tag = json.loads(line)["tag"]
        if taken.get(tag, 0) < 30:
            taken[tag] = taken.get(tag, 0) + 1
            kept.append(line)
    Path("runs/exp44").mkdir(parents=True, exist_ok=True)
    Path(f"runs/exp44/{name}_train_balanced.jsonl").write_text("\n".join(kept) + "\n")
    print(name, taken)
