#!/bin/bash
# Issue 18 / 16: DiffusionNFT's shuffled-reward control on the OCR test signs, the study's protocol (1 image a sign).
cd /work/main && . .venv/bin/activate
python benchmarks/mini_rl_gain.py --tasks ocr --seeds 0 1 2 --arms --eval-images 1 --jobs 2   --arm nft_shuffled_reward method=nft train.updates_per_epoch=2 train.nft_beta=0.1 reward.shuffle_within_epoch=true   --runs-dir runs/exp29/nft_control --output-dir runs/exp29/nft_control_results   --task-set ocr model.path=runs/pipeline/mini/miniflow_signs_in_order/model data.train_prompts=runs/pipeline/mini/world/ocr/ocr_train.txt data.test_prompts=runs/pipeline/mini/world/ocr/ocr_test.txt
