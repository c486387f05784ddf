"""Full-size validation of the mini world's detector (`python -m pytest -m slow`; the OCR one is in
test_ocr_reward.py)."""

import numpy as np
import pytest

from superflow.evaluation.geneval_rules import score_detections, summarize
from superflow.world.detector import detect
from superflow.world.prompts import make_splits
from superflow.world.render import render_scene

pytestmark = pytest.mark.slow


def test_detector_on_every_test_prompt_with_five_seeds(tmp_path):
    _, test = make_splits(tmp_path, seed=0)
    results = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        results += [score_detections(detect(render_scene(r, 32, rng)), r) for r in test]
    summary = summarize(results)
    assert summary["overall"] >= 0.98 and min(summary["per_tag"].values()) >= 0.97, summary
