"""Full-size validations of the mini world's scorers (`python -m pytest -m slow`)."""

import numpy as np
import pytest
import torch

from superflow.evaluation.geneval_rules import score_detections, summarize
from superflow.rewards import get_reward
from superflow.rewards.ocr import ocr_target
from superflow.world.detector import detect
from superflow.world.prompts import make_splits
from superflow.world.render import render_scene
from superflow.world.text import make_text_prompts, render_text

pytestmark = pytest.mark.slow


def test_detector_on_every_test_prompt_with_five_seeds(tmp_path):
    _, test = make_splits(tmp_path, seed=0)
    results = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        results += [score_detections(detect(render_scene(r, 32, rng)), r) for r in test]
    summary = summarize(results)
    assert summary["overall"] >= 0.98 and min(summary["per_tag"].values()) >= 0.97, summary


def test_ocr_reads_300_ground_truth_signs():
    pytest.importorskip("rapidocr")
    prompts = make_text_prompts(300, seed=123)
    rng = np.random.default_rng(0)
    images = torch.from_numpy(np.stack([render_text(ocr_target(p), 32, rng) for p in prompts])).permute(0, 3, 1, 2).float() / 255
    scores, _ = get_reward("ocr", use_det=False)(images, prompts, [{}] * len(prompts))
    assert scores.mean() >= 0.95
