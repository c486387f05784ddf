#!/bin/bash
# world 1 GenEval: base, Flow-GRPO and control seeds 3-5 at 16 images per prompt (eval_seed default 12345)
cd /work/main && source .venv/bin/activate
W=runs/world1; O=runs/exp41/img16; mkdir -p $O
common="--config preset:mini_geneval --set model.path=$W/miniflow/model --set data.train_prompts=$W/world/geneval/train_metadata.jsonl --set data.test_prompts=$W/world/geneval/test_metadata.jsonl --images-per-prompt 16 --quiet"
run() { name=$1; shift; OMP_NUM_THREADS=1 superflow evaluate $common "$@" --output $O/$name.json > /dev/null 2>$O/$name.log; }
L=runs/mini_rl_gain_world1/geneval
( run base; run flowgrpo4 --set model.path=$L/flowgrpo/seed4/lora; run shuffled3 --set model.path=$L/shuffled_reward/seed3/lora; run shuffled5 --set model.path=$L/shuffled_reward/seed5/lora ) &
( run flowgrpo3 --set model.path=$L/flowgrpo/seed3/lora; run flowgrpo5 --set model.path=$L/flowgrpo/seed5/lora; run shuffled4 --set model.path=$L/shuffled_reward/seed4/lora ) &
wait; echo done > $O/status
