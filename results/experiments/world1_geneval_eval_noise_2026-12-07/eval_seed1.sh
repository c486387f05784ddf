#!/bin/bash
# world 1 GenEval: the same models scored with a second evaluation noise (eval_seed 1 instead of 12345)
cd /work/main && source .venv/bin/activate
W=runs/world1; O=runs/exp41
common="--config preset:mini_geneval --set model.path=$W/miniflow/model --set data.train_prompts=$W/world/geneval/train_metadata.jsonl --set data.test_prompts=$W/world/geneval/test_metadata.jsonl --set eval_seed=1 --images-per-prompt 4 --quiet"
run() { OMP_NUM_THREADS=1 superflow evaluate $common "$@"; }
( run --output $O/base_s1.json > /dev/null 2>$O/base_s1.log; run --set model.path=runs/mini_rl_gain_world1/geneval/flowgrpo/seed4/lora --output $O/flowgrpo4_s1.json > /dev/null 2>$O/f4.log ) &
( run --set model.path=runs/mini_rl_gain_world1/geneval/flowgrpo/seed3/lora --output $O/flowgrpo3_s1.json > /dev/null 2>$O/f3.log; run --set model.path=runs/mini_rl_gain_world1/geneval/flowgrpo/seed5/lora --output $O/flowgrpo5_s1.json >/dev/null 2>$O/f5.log ) &
wait; echo done > $O/status
