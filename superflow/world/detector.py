"""A rule-based object detector for the mini world, feeding GenEval's rules.

Pixels are snapped to the world's palette (a pixel farther than ``max_colour_distance`` from every
palette colour is background), same-colour pixels are grouped into connected components, and each
component's shape is read from its geometry: fill of its box, holes, and the widths of its rows
(top, bottom, and how many rows span the whole box). Its confidence is the share of its pixels
that sit close to the palette colour, so smeared blobs of a generative model score lower. It
plays Mask2Former's role for the mini world; colour is decided by the palette, as CLIP does on
crops at paper scale.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from superflow.evaluation.geneval_rules import Detection
from superflow.world.spec import BACKGROUND, COLOURS

_PALETTE = np.array([BACKGROUND, *COLOURS.values()], dtype=np.float32)
_NAMES = ["background", *COLOURS]


def classify_shape(mask: np.ndarray) -> str | None:
    """The shape of one component's boolean mask (cropped to its box), or None if none fits."""
    h, w = mask.shape
    area = mask.sum()
    filled = ndimage.binary_fill_holes(mask)
    hole = 1 - area / filled.sum()
    if hole > 0.12:
        return "ring"
    fill = area / (h * w)
    if fill > 0.86:
        return "square"
    widths = mask.sum(axis=1) / w
    k = max(1, h // 5)
    top, bottom = widths[:k].mean(), widths[-k:].mean()
    full_rows = (widths >= 0.85).mean()
    if top < 0.5 and bottom > 0.7:
        return "triangle"
    # a small cross with a rounded-up bar can fill 2/3 of its box like a circle; unlike a circle it
    # is narrow a quarter of the way down (the vertical bar alone)
    quarter = (widths[h // 4] + widths[(3 * h) // 4]) / 2 if h >= 4 else 1.0
    if quarter < 0.6 and full_rows >= 0.18:
        return "cross"
    if fill >= 0.66:
        return "circle"
    if full_rows >= 0.18:
        return "cross"
    if top < 0.5 and bottom < 0.5:
        return "diamond"
    return None


def detect(image: np.ndarray, *, max_colour_distance: float = 90.0, min_area_fraction: float = 0.012) -> list[Detection]:
    """Detections in one uint8 [H, W, 3] image."""
    h, w, _ = image.shape
    pixels = image.reshape(-1, 3).astype(np.float32)
    distances = np.linalg.norm(pixels[:, None, :] - _PALETTE[None], axis=-1)
    nearest = distances.argmin(axis=1)
    nearest_distance = distances[np.arange(len(pixels)), nearest]
    labels = np.where(nearest_distance <= max_colour_distance, nearest, 0).reshape(h, w)
    close = (nearest_distance <= max_colour_distance / 2).reshape(h, w)
    min_area = max(4, int(min_area_fraction * h * w))
    detections = []
    for colour_index in range(1, len(_PALETTE)):
        components, count = ndimage.label(labels == colour_index)
        for sl_index, sl in enumerate(ndimage.find_objects(components), start=1):
            mask = components[sl] == sl_index
            if mask.sum() < min_area or min(mask.shape) < 3:
                continue
            shape = classify_shape(mask)
            if shape is None:
                continue
            (y0, y1), (x0, x1) = (sl[0].start, sl[0].stop), (sl[1].start, sl[1].stop)
            purity = float(close[sl][mask].mean())
            detections.append(Detection(cls=shape, box=(x0, y0, x1, y1), score=purity, color=_NAMES[colour_index]))
    return detections
