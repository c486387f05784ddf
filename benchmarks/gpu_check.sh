#!/usr/bin/env bash
# The paper-scale device check, prepared so a session lent a GPU spends its minutes measuring:
#   bash benchmarks/gpu_check.sh        (on the GPU machine, from the repository root, venv active)
# On the device tool's bare image: carry diffusers and peft as wheels (.whl, see
# results/benchmarks/paper_speed_sd35m_cuda.md), `pip install --target /tmp/site`, PYTHONPATH=/tmp/site:$PWD.
# It took 560 s for the three benchmarks on an H200 (each builds a 2.5B-parameter model on the CPU):
# give the tests a run of their own: `bash benchmarks/gpu_check.sh benchmarks`, then `... tests`.
# 1. the SD3.5-M-shaped benchmark in bf16: with autocast (the default), without it (the fp32-LoRA
#    path), with gradient checkpointing; micro-batches up to out-of-memory (peak memory, MFU);
# 2. the test suite on CUDA (`model.device: auto` picks the GPU), in parallel workers; tests of the
#    workflow and the OCR reward need snakemake and rapidocr, which a bare GPU image may lack.
# Results land in results/benchmarks (paper_speed_sd35m_*.{csv,md,_environment.json}, cuda_*.txt);
# under the device tool, also packed into $OUT/gpu_check.tgz (it returns at most 8 files).
set -uo pipefail
out=results/benchmarks
mkdir -p "$out"
common=(--shape sd35m --micro-batches 1 2 4 8 12 16 24 32 48 --output-dir "$out")
export PYTHONUNBUFFERED=1
what=${1:-all}
pack() { [ -z "${OUT:-}" ] || tar czf "$OUT/gpu_check.tgz" "$out"/paper_speed_sd35m_cuda* "$out"/cuda_*.txt 2>/dev/null || true; }
if [ "$what" != tests ]; then
python benchmarks/paper_speed.py "${common[@]}" --name paper_speed_sd35m_cuda
python benchmarks/paper_speed.py "${common[@]}" --no-autocast --name paper_speed_sd35m_cuda_no_autocast
python benchmarks/paper_speed.py "${common[@]}" --gradient-checkpointing --name paper_speed_sd35m_cuda_checkpointing
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/cuda_device.txt" || true
pack  # before the tests, so a test run cut short by its timeout still returns the figures
fi
[ "$what" = benchmarks ] && exit 0
timeout "${TEST_TIMEOUT:-300}" python -m pytest -q -p no:cacheprovider -n "${TEST_WORKERS:-8}" 2>&1 \
    | tail -40 | tee "$out/cuda_tests.txt"
pack
