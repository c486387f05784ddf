"""The mini world's hidden preference: the documented ground truth behind the preference analogue.

It scores an image for its prompt as

    h = 0.4 * faithfulness + 0.2 * centring + 0.2 * saturation + 0.2 * clean background

- faithfulness: the GenEval partial score of the image for the prompt (mini detector + rules);
- centring: 1 - distance of the foreground's centroid from the canvas centre / half the diagonal;
- saturation: mean HSV saturation of the foreground pixels;
- clean background: 1 - 10 x the fraction of isolated foreground pixels (speckles: foreground pixels
  with at most 2 foreground neighbours), floored at 0; objects themselves cost nothing.

Pairs of images for one prompt are labelled by ``h`` (:mod:`superflow.world.preference_data`), and
the dual encoder of :mod:`superflow.world.preference_model` is fitted to them with PickScore's loss.
The RL reward is then the learned model, never ``h`` itself, as PickScore is in the paper.
"""

from __future__ import annotations

import numpy as np

WEIGHTS = {"faithfulness": 0.4, "centring": 0.2, "saturation": 0.2, "clean_background": 0.2}
BACKGROUND_TOLERANCE = 24


def _foreground(images: np.ndarray, background: np.ndarray) -> np.ndarray:
    return np.abs(images.astype(np.int16) - background.astype(np.int16)).max(axis=-1) > BACKGROUND_TOLERANCE


def image_terms(images: np.ndarray, background: np.ndarray) -> dict[str, np.ndarray]:
    """Centring, saturation and clean background of uint8 images [B, H, W, 3]."""
    b, h, w, _ = images.shape
    fg = _foreground(images, background)
    ys, xs = np.mgrid[0:h, 0:w]
    count = fg.sum(axis=(1, 2))
    safe = np.maximum(count, 1)
    cy = (fg * ys).sum(axis=(1, 2)) / safe
    cx = (fg * xs).sum(axis=(1, 2)) / safe
    dist = np.hypot(cy - (h - 1) / 2, cx - (w - 1) / 2) / (np.hypot(h, w) / 2)
    centring = np.where(count > 0, 1 - dist, 0.0)
    rgb = images.astype(np.float64) / 255
    mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-8), 0.0)
    saturation = np.where(count > 0, (sat * fg).sum(axis=(1, 2)) / safe, 0.0)
    padded = np.pad(fg, ((0, 0), (1, 1), (1, 1)))
    neighbours = sum(
        padded[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx
    )
    speckles = (fg & (neighbours <= 2)).mean(axis=(1, 2))
    clean = np.clip(1 - 10 * speckles, 0, 1)
    return {"centring": centring, "saturation": saturation, "clean_background": clean}


def hidden_preference(
    images: np.ndarray, metadata: list[dict], faithfulness: np.ndarray, background: np.ndarray
) -> np.ndarray:
    terms = image_terms(images, background)
    terms["faithfulness"] = np.asarray(faithfulness, dtype=np.float64)
    return sum(WEIGHTS[k] * terms[k] for k in WEIGHTS)
