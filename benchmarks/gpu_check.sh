#!/usr/bin/env bash
# The device check of issue 17, prepared so a session lent a GPU spends its minutes measuring:
#   bash benchmarks/gpu_check.sh        (on the GPU machine, from the repository root, venv active)
# 1. the SD3.5-M-shaped benchmark in bf16: without autocast (the fp32-LoRA path), with it, with
#    gradient checkpointing; micro-batches up to out-of-memory (peak memory, MFU);
# 2. the test suite on CUDA.
# Results land in results/benchmarks/paper_speed_sd35m_*; copy them back and commit.
set -euo pipefail
out=${OUT:-results/benchmarks}
common=(--shape sd35m --micro-batches 1 2 4 8 12 16 24 32 --output-dir "$out")
python benchmarks/paper_speed.py "${common[@]}" --no-autocast --name paper_speed_sd35m_cuda_no_autocast
python benchmarks/paper_speed.py "${common[@]}" --name paper_speed_sd35m_cuda
python benchmarks/paper_speed.py "${common[@]}" --gradient-checkpointing --name paper_speed_sd35m_cuda_checkpointing
python -m pytest -x -q 2>&1 | tail -5 | tee "$out/cuda_tests.txt"
