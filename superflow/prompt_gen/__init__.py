"""Generators of the paper-scale tasks' training prompt files, one module per task.

Flow-GRPO's ``dataset/geneval/train_metadata.jsonl`` and ``dataset/ocr/train.txt`` could not be
obtained (``data/flow_grpo/SOURCE.md``), so ``superflow prompts`` rebuilds them: :mod:`.geneval`
for GenEval, :mod:`.ocr` for OCR. Reading prompt files stays with :mod:`superflow.prompts`.
"""
