"""The mini detector with GenEval's rules: ground truth passes, noise and blank canvases fail."""

import numpy as np
import pytest
import torch

from superflow.evaluation.geneval_rules import score_detections, summarize
from superflow.rewards import get_reward
from superflow.world.detector import detect
from superflow.world.prompts import make_splits
from superflow.world.render import render_scene
from superflow.world.spec import BACKGROUND


@pytest.fixture(scope="module")
def test_records(tmp_path_factory):
    return make_splits(tmp_path_factory.mktemp("w"), seed=0)[1]


def _score(records, images):
    return summarize([score_detections(detect(img), r) for img, r in zip(images, records)])


def test_ground_truth_renders_score_at_least_098(test_records):
    rng = np.random.default_rng(7)
    summary = _score(test_records, [render_scene(r, 32, rng) for r in test_records])
    assert summary["overall"] >= 0.98 and summary["correct_images"] >= 0.98, summary
    assert min(summary["per_tag"].values()) >= 0.95, summary


def test_gaussian_noise_and_blank_canvas_fail(test_records):
    rng = np.random.default_rng(0)
    noise = [np.clip(127 + 60 * rng.standard_normal((32, 32, 3)), 0, 255).astype(np.uint8) for _ in test_records]
    assert _score(test_records, noise)["correct_images"] <= 0.05
    blank = [np.full((32, 32, 3), BACKGROUND, np.uint8) for _ in test_records]
    assert _score(test_records, blank)["correct_images"] == 0


def test_ground_truth_survives_mild_blur(test_records):
    from scipy import ndimage

    rng = np.random.default_rng(3)
    blurred = []
    for r in test_records:
        img = render_scene(r, 32, rng).astype(np.float32)
        img = ndimage.gaussian_filter(img, sigma=(0.5, 0.5, 0)) + rng.normal(0, 6, img.shape)
        blurred.append(np.clip(img, 0, 255).astype(np.uint8))
    per_tag = _score(test_records, blurred)["per_tag"]
    # counting keeps only detections of confidence > 0.9 (GenEval's rule), and blur at the edges of
    # small shapes lowers the colour purity this detector uses as confidence: counting is the strict tag
    assert min(v for tag, v in per_tag.items() if tag != "counting") >= 0.9, per_tag


def test_geneval_mini_reward_end_to_end(test_records):
    rng = np.random.default_rng(1)
    records = test_records[:12]
    images = torch.from_numpy(np.stack([render_scene(r, 32, rng) for r in records])).permute(0, 3, 1, 2).float() / 255
    prompts = [r["prompt"] for r in records]
    meta = [{k: v for k, v in r.items() if k != "prompt"} for r in records]
    partial = get_reward("geneval_mini")
    scores, info = partial(images, prompts, meta)
    # ground truth scores 0.998 over 1,500 renders; a drawn box can differ from the detected one by a
    # pixel, which can flip a near-diagonal relation (one of these 12)
    assert partial.bounded_unit and scores.mean() >= 0.95 and info["strict"] >= 11 / 12
    strict = get_reward("geneval_mini", mode="strict")
    swapped, _ = strict(images.flip(0), prompts, meta)
    assert swapped.mean() < 0.5
    with pytest.raises(ValueError, match="mode must be"):
        get_reward("geneval_mini", mode="lenient")


def _anti_aliased_mask(shape: str, side: float, offset: float, supersample: int = 8) -> np.ndarray:
    """``shape`` drawn smoothly (area coverage > 1/2), as a generative model draws it: blunt tips."""
    from PIL import Image, ImageDraw

    from superflow.world.render import draw_shape

    k = supersample
    canvas = Image.new("L", (32 * k, 32 * k), 0)
    box = tuple(v * k for v in (4 + offset, 4 + offset, 4 + offset + side, 4 + offset + side))
    draw_shape(ImageDraw.Draw(canvas), shape, box, 255)
    mask = np.asarray(canvas, np.float32).reshape(32, k, 32, k).mean((1, 3)) > 127
    rows, cols = np.nonzero(mask)
    return mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def test_blunt_generated_diamonds_are_not_read_as_crosses():
    from superflow.world.detector import classify_shape

    # The earlier rule-based reader called 8 of these 15 diamonds crosses (and most of the base
    # model's generated diamonds); a blunt diamond is a diamond or, at worst, a circle.
    read = [
        classify_shape(_anti_aliased_mask("diamond", side, offset))
        for side in (7, 8, 9, 10, 11)
        for offset in (0.0, 0.3, 0.6)
    ]
    assert "cross" not in read and read.count("diamond") >= len(read) // 2, read
    for shape in ("square", "circle", "triangle", "ring", "cross"):
        assert {classify_shape(_anti_aliased_mask(shape, side, 0.3)) for side in (7, 9, 11)} == {shape}
