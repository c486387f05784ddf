#!/bin/bash
# GenEval, Flow-GRPO runs of worlds 0 and 1 and their bases, scored with the SDE at noise 0.7 (training's
# sampler) on the first 30 *training* prompts of each tag (18 single objects), 4 images each: does the training-reward rise transfer?
cd /work/main && source .venv/bin/activate
O=runs/exp44; mkdir -p $O/sde
for world in 0 1; do
  if [ $world = 0 ]; then W=runs/pipeline/mini; L=runs/mini_rl_gain/geneval; seeds="0 1 2"; else W=runs/world1; L=runs/mini_rl_gain_world1/geneval; seeds="3 4 5"; fi
  common="--config preset:mini_geneval --set model.path=$W/miniflow/model --set data.train_prompts=$W/world/geneval/train_metadata.jsonl --set data.test_prompts=$W/world/geneval/test_metadata.jsonl --prompts runs/exp44/w${world}_train_balanced.jsonl --images-per-prompt 4 --quiet"
  OMP_NUM_THREADS=1 python runs/exp44/sde_eval.py $common --output $O/sde/w${world}_base.json > /dev/null 2> $O/w${world}_base.log
  for s in $seeds; do
    OMP_NUM_THREADS=1 python runs/exp44/sde_eval.py $common --set model.path=$L/flowgrpo/seed$s/lora --output $O/sde/w${world}_flowgrpo$s.json > /dev/null 2> $O/w${world}_flowgrpo$s.log
  done
done
echo done > $O/sde/status
