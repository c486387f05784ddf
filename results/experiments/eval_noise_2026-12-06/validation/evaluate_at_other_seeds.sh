#!/bin/bash
# Eval-noise decomposition: the same models evaluated with other eval seeds.
cd /work/main
V=runs/exp25/val/geneval
COMMON="--config preset:mini_geneval --set data.train_prompts=$V/validation/train.jsonl --set data.test_prompts=$V/validation/validation.jsonl --images-per-prompt 4 --quiet"
jobs_list=()
for es in 1 2 3; do
  jobs_list+=("base $es runs/exp24/miniflow/model")
  for s in 0 1 2; do jobs_list+=("fg$s $es $V/flowgrpo/seed$s/lora"); done
done
run_one() { core=$2; set -- $1; name=$1; es=$2; path=$3
  taskset -c $core .venv/bin/python -m superflow evaluate $COMMON --set model.path=$path --set eval_seed=$es --output runs/exp27/evalnoise/${name}_es$es.json; }
mkdir -p runs/exp27/evalnoise
i=0
for j in "${jobs_list[@]}"; do
  core=$((i % 2)); run_one "$j" $core &
  i=$((i+1)); if (( i % 2 == 0 )); then wait; fi
done
wait
date > runs/exp27/evalnoise.end
