"""Preference pairs for the mini world's PickScore analogue.

For one prompt, two images are made from its ground-truth render by random degradations that the
hidden preference (:mod:`superflow.rewards.mini_preference`) cares about: a shift off-centre, a
loss of saturation, background speckles, blur, or the wrong content (another prompt's render). The
pair is labelled by the hidden preference; near-ties (within ``tie_margin``) are labelled 0.5, as
PickScore's data labels ties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from superflow.evaluation.geneval_rules import score_detections
from superflow.world.detector import detect
from superflow.world.preference import hidden_preference
from superflow.world.render import render_scene
from superflow.world.spec import BACKGROUND

_BG = np.array(BACKGROUND, np.float32)


def degrade(image: np.ndarray, rng: np.random.Generator, other: np.ndarray) -> np.ndarray:
    """A random mix of the degradations the hidden preference scores."""
    img = image.astype(np.float32)
    if rng.random() < 0.25:
        img = other.astype(np.float32)
    if rng.random() < 0.5:  # shift towards a corner, background fills in
        dy, dx = rng.integers(-8, 9, size=2)
        shifted = np.broadcast_to(_BG, img.shape).copy()
        h, w = img.shape[:2]
        ys, xs = slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0))
        yd, xd = slice(max(-dy, 0), h + min(-dy, 0)), slice(max(-dx, 0), w + min(-dx, 0))
        shifted[ys, xs] = img[yd, xd]
        img = shifted
    if rng.random() < 0.5:  # desaturate the foreground
        grey = img.mean(axis=-1, keepdims=True)
        img = img + rng.uniform(0.3, 0.9) * (grey - img)
    if rng.random() < 0.4:  # speckles on the canvas
        mask = rng.random(img.shape[:2]) < rng.uniform(0.01, 0.06)
        img[mask] = rng.integers(0, 255, size=(mask.sum(), 3))
    if rng.random() < 0.3:
        img = ndimage.gaussian_filter(img, sigma=(rng.uniform(0.3, 0.8),) * 2 + (0,))
    return np.clip(img, 0, 255).astype(np.uint8)


@dataclass
class PairBatch:
    prompts: list[str]
    images_a: np.ndarray  # uint8 [N, H, W, 3]
    images_b: np.ndarray
    prefer_a: np.ndarray  # 1, 0 or 0.5


def make_pairs(
    records: list[dict], num: int, rng: np.random.Generator, size: int = 32, tie_margin: float = 0.02
) -> PairBatch:
    prompts, images, meta_rows = [], [], []
    for _ in range(num):
        record = records[int(rng.integers(len(records)))]
        other = records[int(rng.integers(len(records)))]
        truth = render_scene(record, size, rng)
        wrong = render_scene(other, size, rng)
        images += [degrade(truth, rng, wrong), degrade(truth, rng, wrong)]
        prompts.append(record["prompt"])
        meta_rows += [record, record]
    images = np.stack(images)
    faith = np.array([score_detections(detect(img), meta).partial for img, meta in zip(images, meta_rows)])
    h = hidden_preference(images, meta_rows, faith, np.array(BACKGROUND, np.uint8))
    diff = h[0::2] - h[1::2]
    label = np.where(np.abs(diff) < tie_margin, 0.5, (diff > 0).astype(np.float64))
    return PairBatch(prompts, images[0::2], images[1::2], label)
