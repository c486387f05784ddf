#!/bin/bash
# Issue 18, second round: NFT at half the lr and at the authors' GenEval b = 1; AWM at half the lr.
while kill -0 7872 2>/dev/null; do sleep 10; done
cd /work/main && . .venv/bin/activate
python benchmarks/mini_rl_gain.py --tasks geneval --seeds 0 1 2 --arms --validation 300 --eval-images 4 --jobs 2 --reuse-runs   --arm nft_half_lr method=nft train.updates_per_epoch=2 train.nft_beta=0.1 train.lr=1.125e-5   --arm nft_b1 method=nft train.updates_per_epoch=2 train.nft_beta=1.0   --arm awm_half_lr method=awm train.lr=1.125e-5   --runs-dir runs/exp29/val --output-dir runs/exp29/val_results2   --task-set geneval model.path=runs/exp24/miniflow/model data.train_prompts=runs/pipeline/mini/world/geneval/train_metadata.jsonl data.test_prompts=runs/pipeline/mini/world/geneval/test_metadata.jsonl
