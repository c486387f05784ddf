"""Seed streams: every random draw of a run is derived from ``(seed, epoch, stream)``.

Deriving rather than carrying one global generator is what makes a resumed run repeat the numbers
of an uninterrupted one, and lets ranks draw an image's noise from its global index without
talking to each other.
"""

from __future__ import annotations

import numpy as np
import torch


def seed_from(*parts: int) -> int:
    """A 63-bit seed derived from integer ``parts``."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


def noise_generators(seed: int, epoch: int, stream: int, count: int, offset: int = 0) -> list[torch.Generator]:
    """One generator per item ``offset .. offset + count - 1`` of the ``(seed, epoch, stream)`` stream."""
    seeds = np.random.SeedSequence([seed, epoch, stream]).generate_state(offset + count, dtype=np.uint64)[offset:]
    return [torch.Generator().manual_seed(int(s >> 1)) for s in seeds]
