#!/usr/bin/env bash
# The same restricted training at 4x the preset's lr (4.5e-5), one seed, one core: does a larger step
# move world 2's single objects and colours once the other tags' prompts are out of the batches?
set -euo pipefail
R=${R:-runs/world2}
OUT=runs/geneval_tags_world2
RUN=$OUT/geneval/lr4x/seed6
COMMON=(--config preset:mini_geneval --set model.path=$R/miniflow/model
    --set data.train_prompts=$OUT/train_single_and_colors.jsonl --set data.test_prompts=$R/world/geneval/test_metadata.jsonl)
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TQDM_DISABLE=1
taskset -c 0 python -m superflow train "${COMMON[@]}" --output-dir $RUN --quiet --set seed=6 --set eval_every=0 \
    --set train.lr=4.5e-5 > $RUN.train.log 2>&1
taskset -c 0 python -m superflow evaluate "${COMMON[@]}" --set model.path=$RUN/lora --images-per-prompt 4 \
    --output $RUN/test_eval.json --quiet > $RUN.eval.log 2>&1
