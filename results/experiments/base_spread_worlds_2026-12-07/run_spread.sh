set -x
cd /work/main
. .venv/bin/activate
export OMP_NUM_THREADS=1
(python benchmarks/base_spread.py --model runs/pipeline/mini/miniflow/model --label published_world0 --tasks geneval --prompts-per-tag 32 --set data.train_prompts=runs/pipeline/mini/world/geneval/train_metadata.jsonl --set data.test_prompts=runs/pipeline/mini/world/geneval/test_metadata.jsonl --output-dir runs/exp42/spread_w0 > runs/exp42/spread_w0.log 2>&1; python benchmarks/base_spread.py --model runs/pipeline/mini/miniflow_signs_in_order/model --label published_world0_signs_in_order --tasks ocr --prompts-per-tag 32 --set data.train_prompts=runs/pipeline/mini/world/ocr/ocr_train.txt --set data.test_prompts=runs/pipeline/mini/world/ocr/ocr_test.txt --output-dir runs/exp42/spread_w0_ocr > runs/exp42/spread_w0_ocr.log 2>&1) &
(python benchmarks/base_spread.py --model runs/world1/miniflow/model --label world1 --tasks geneval --prompts-per-tag 32 --set data.train_prompts=runs/world1/world/geneval/train_metadata.jsonl --set data.test_prompts=runs/world1/world/geneval/test_metadata.jsonl --output-dir runs/exp42/spread_w1 > runs/exp42/spread_w1.log 2>&1; python benchmarks/base_spread.py --model runs/world1/miniflow_signs_in_order/model --label world1_signs_in_order --tasks ocr --prompts-per-tag 32 --set data.train_prompts=runs/world1/world/ocr/ocr_train.txt --set data.test_prompts=runs/world1/world/ocr/ocr_test.txt --output-dir runs/exp42/spread_w1_ocr > runs/exp42/spread_w1_ocr.log 2>&1) &
wait
echo done > runs/exp42/spread.done
