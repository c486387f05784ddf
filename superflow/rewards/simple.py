"""Rewards that need no model weights, so the training loop can be exercised anywhere.

``jpeg_compressibility`` is DDPO's classic toy objective; ``colour_target`` rewards images whose
mean colour is close to a target. Neither is a research benchmark.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from superflow.rewards.registry import register_reward


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] floats in [0, 1] -> [B, H, W, 3] uint8."""
    arr = (images.detach().float().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    return arr.transpose(0, 2, 3, 1)


@register_reward("jpeg_compressibility")
def jpeg_compressibility(quality: int = 95):
    """Negative JPEG size in kilobytes: smaller files (simpler images) score higher (unbounded)."""

    def score(images, prompts, metadata):
        sizes = []
        for arr in to_uint8(images):
            buffer = io.BytesIO()
            Image.fromarray(arr).save(buffer, format="JPEG", quality=quality)
            sizes.append(buffer.tell() / 1000.0)
        sizes = np.asarray(sizes)
        return -sizes, {"jpeg_kb": float(sizes.mean())}

    return score


@register_reward("colour_target", bounds=(0, 1))
def colour_target(rgb: tuple[float, float, float] | list[float] = (1.0, 0.0, 0.0)):
    """1 - (distance of the mean colour to ``rgb``) / sqrt(3): in [0, 1], 1 when the mean hits it."""
    target = torch.as_tensor(rgb, dtype=torch.float32).view(1, 3)
    if target.numel() != 3 or (target < 0).any() or (target > 1).any():
        raise ValueError(f"colour_target: rgb must be three numbers in [0, 1], got {rgb!r}")

    def score(images, prompts, metadata):
        mean = images.detach().float().cpu().mean(dim=(2, 3))
        distance = (mean - target).norm(dim=1) / 3**0.5
        return (1 - distance).clamp(0, 1), {}

    return score
