#!/usr/bin/env bash
# World 2's GenEval: does Flow-GRPO move single objects and colours when it trains on nothing else?
# (World 2's bases as in results/mini_rl_gain_world2/commands.sh: R=runs/world2.)
set -euo pipefail
R=${R:-runs/world2}
OUT=runs/geneval_tags_world2
mkdir -p "$OUT"
python - "$R/world/geneval/train_metadata.jsonl" "$OUT/train_single_and_colors.jsonl" <<'PY'
import json, sys
rows = [line for line in open(sys.argv[1]) if json.loads(line)["tag"] in ("single_object", "colors")]
open(sys.argv[2], "w").writelines(rows)
print(len(rows), "training prompts")
PY
python benchmarks/mini_rl_gain.py --tasks geneval --seeds 6 7 8 --eval-images 4 --jobs 2 --arms flowgrpo \
    --output-dir results/experiments/geneval_tags_world2_2026-12-08 --runs-dir "$OUT" \
    --task-set geneval model.path=$R/miniflow/model data.train_prompts=$OUT/train_single_and_colors.jsonl \
    data.test_prompts=$R/world/geneval/test_metadata.jsonl
python results/experiments/geneval_tags_world2_2026-12-08/per_tag.py "$OUT/geneval" \
    > results/experiments/geneval_tags_world2_2026-12-08/per_tag.md
