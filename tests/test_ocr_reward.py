"""Flow-GRPO's OCR reward formula and the RapidOCR backend on the mini world's signs."""

import numpy as np
import pytest
import torch

from superflow.rewards import get_reward
from superflow.rewards.ocr import levenshtein, ocr_score, ocr_target
from superflow.world.text import make_text_prompts, render_text


def test_target_is_the_first_quoted_text():
    assert ocr_target('A sign that says "Hello World" and "x"') == "Hello World"
    with pytest.raises(ValueError, match="no double-quoted target text: 'a plain prompt'"):
        ocr_target("a plain prompt")


def test_levenshtein():
    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3 and levenshtein("abc", "abc") == 0


@pytest.mark.parametrize(
    "recognised,target,expected",
    [
        ("Hello World", "hello world", 1.0),  # case and spaces ignored
        ("xx HELLO42 yy", "hello 42", 1.0),  # substring: distance 0
        ("HELL0 42", "hello 42", 1 - 1 / 7),  # one substitution over 7 characters
        ("", "K7", 0.0),  # nothing read: distance 2 capped at 2
        ("completely different text", "K7", 0.0),  # capped at len(target)
        ("K", "K7", 0.5),
        ("K77", "K7", 1.0),  # over-long but containing the target
        ("7K", "K7", 0.0),  # two edits over two characters
    ],
)
def test_reference_formula(recognised, target, expected):
    assert ocr_score(recognised, target) == pytest.approx(expected)


def test_rapidocr_reads_ground_truth_signs():
    pytest.importorskip("rapidocr", reason="the OCR backend is an optional extra: pip install 'superflow[ocr]'")
    prompts = make_text_prompts(24, seed=11)
    rng = np.random.default_rng(0)
    images = np.stack([render_text(ocr_target(p), 32, rng) for p in prompts])
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    reward = get_reward("ocr", use_det=False)
    scores, info = reward(batch, prompts, [{}] * len(prompts))
    assert reward.bounded_unit and scores.mean() >= 0.95 and info["ocr_accuracy"] == pytest.approx(scores.mean())
    noise = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert reward(noise, prompts[:8], [{}] * 8)[0].mean() < 0.3


def test_unknown_backend_and_missing_paddle():
    with pytest.raises(ValueError, match="unknown backend 'tesseract'"):
        get_reward("ocr", backend="tesseract")
    try:
        import paddleocr  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="superflow\\[paddleocr\\]"):
            get_reward("ocr", backend="paddleocr")
