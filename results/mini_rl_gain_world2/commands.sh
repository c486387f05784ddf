# World 2 (seed 2), RL seeds 6 7 8, the presets as committed; run after its bases exist.
# The preference rows were made again on 2026-12-08 with the 2,400-step preference model: bases by
#   snakemake --cores 2 --config runs=runs/world2 'world={seed: 2}' -- runs/world2/miniflow/model/model.pt runs/world2/preference/model.pt
# then the preference line below (without its log redirection), fp32 (model.dtype auto on an AVX2-only EPYC).
set -x
cd /work/main
. .venv/bin/activate
while [ ! -f runs/exp43/world2_bases.rc ]; do sleep 20; done
[ "$(cat runs/exp43/world2_bases.rc)" = 0 ] || exit 1
date
R=runs/world2
export OMP_NUM_THREADS=1
(python benchmarks/base_spread.py --model $R/miniflow/model --label world2 --tasks geneval --prompts-per-tag 32 --set data.train_prompts=$R/world/geneval/train_metadata.jsonl --set data.test_prompts=$R/world/geneval/test_metadata.jsonl --output-dir runs/exp43/spread_w2 > runs/exp43/spread_w2.log 2>&1) &
(python benchmarks/base_spread.py --model $R/miniflow_signs_in_order/model --label world2_signs_in_order --tasks ocr --prompts-per-tag 32 --set data.train_prompts=$R/world/ocr/ocr_train.txt --set data.test_prompts=$R/world/ocr/ocr_test.txt --output-dir runs/exp43/spread_w2_ocr > runs/exp43/spread_w2_ocr.log 2>&1) &
wait
date
G="model.path=$R/miniflow/model data.train_prompts=$R/world/geneval/train_metadata.jsonl data.test_prompts=$R/world/geneval/test_metadata.jsonl"
python benchmarks/mini_rl_gain.py --tasks geneval --seeds 6 7 8 --eval-images 4 --jobs 2 --arms flowgrpo shuffled_reward --output-dir results/mini_rl_gain_world2 --runs-dir runs/mini_rl_gain_world2 --task-set geneval $G > runs/exp43/rl_geneval.log 2>&1
date
python benchmarks/mini_rl_gain.py --tasks preference --seeds 6 7 8 --eval-images 4 --jobs 2 --arms flowgrpo shuffled_reward --output-dir results/mini_rl_gain_world2 --runs-dir runs/mini_rl_gain_world2 --task-set preference $G reward.kwargs.path=$R/preference > runs/exp43/rl_preference.log 2>&1
date
python benchmarks/mini_rl_gain.py --tasks ocr --seeds 6 7 8 --eval-images 4 --jobs 2 --arms flowgrpo shuffled_reward --output-dir results/mini_rl_gain_world2 --runs-dir runs/mini_rl_gain_world2 --task-set ocr model.path=$R/miniflow_signs_in_order/model data.train_prompts=$R/world/ocr/ocr_train.txt data.test_prompts=$R/world/ocr/ocr_test.txt > runs/exp43/rl_ocr.log 2>&1
date
echo done > runs/exp43/world2_rl.done
