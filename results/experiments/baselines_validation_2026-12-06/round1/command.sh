#!/bin/bash
# Issue 18: the baselines' lr on GenEval validation (world 0, study base), 3 seeds, 4 images.
cd /work/main && . .venv/bin/activate
python benchmarks/mini_rl_gain.py --tasks geneval --seeds 0 1 2 --arms --validation 300 --eval-images 4 --jobs 2 --reuse-runs \
  --arm fast method=flowgrpo_fast \
  --arm fast_half_lr method=flowgrpo_fast train.lr=1.125e-5 \
  --arm nft method=nft train.updates_per_epoch=2 train.nft_beta=0.1 \
  --arm nft_2x_lr method=nft train.updates_per_epoch=2 train.nft_beta=0.1 train.lr=4.5e-5 \
  --arm awm method=awm \
  --arm awm_2x_lr method=awm train.lr=4.5e-5 \
  --runs-dir runs/exp29/val --output-dir runs/exp29/val_results \
  --task-set geneval model.path=runs/exp24/miniflow/model data.train_prompts=runs/pipeline/mini/world/geneval/train_metadata.jsonl data.test_prompts=runs/pipeline/mini/world/geneval/test_metadata.jsonl
