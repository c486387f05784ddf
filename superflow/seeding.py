"""Seed streams: every random draw of a run is derived from ``(seed, epoch, stream)``.

Deriving rather than carrying one global generator is what makes a resumed run repeat the numbers
of an uninterrupted one, and lets ranks draw an image's noise from its global index without
talking to each other.
"""

from __future__ import annotations

import numpy as np
import torch

#: Seed stream of the starts shared by a group (``sample.same_initial_noise``). The others: 0 the
#: epoch's prompts, 1 the images' noise, 2 the minibatch order, 3 the shuffled control, 5 NFT's and
#: AWM's forward noise, 6 SDE windows, 7 evaluation.
SHARED_START_STREAM = 8


def seed_from(*parts: int) -> int:
    """A 63-bit seed derived from integer ``parts``."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


def noise_generators(
    seed: int, epoch: int, stream: int, count: int, offset: int = 0, device: torch.device | str = "cpu"
) -> list[torch.Generator]:
    """One generator per item ``offset .. offset + count - 1`` of the ``(seed, epoch, stream)`` stream.

    On ``device``, so noise is drawn where the model runs instead of on the CPU and copied over at
    every step. The seeds do not depend on the device, but the numbers do: a CUDA generator is a
    different algorithm (Philox) from the CPU's (Mersenne Twister), so a run on a GPU draws other
    noise than the same seed on a CPU; on one device, same seed same numbers, resumed or not.
    """
    seeds = _stream_seeds(seed, epoch, stream, offset + count)[offset:]
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def group_noise_generators(
    seed: int, epoch: int, stream: int, group_ids, device: torch.device | str = "cpu"
) -> list[torch.Generator]:
    """One fresh generator per item, seeded by the item's group: items of one group draw the same
    numbers (a shared initial noise), items of different groups independent ones."""
    group_ids = np.asarray(group_ids, dtype=np.int64)
    if group_ids.size and group_ids.min() < 0:
        raise ValueError(f"group ids must be >= 0, got {group_ids.min()}")
    seeds = _stream_seeds(seed, epoch, stream, int(group_ids.max()) + 1 if group_ids.size else 0)
    return [torch.Generator(device=device).manual_seed(int(seeds[g])) for g in group_ids]


def _stream_seeds(seed: int, epoch: int, stream: int, count: int) -> np.ndarray:
    """The first ``count`` 63-bit seeds of the ``(seed, epoch, stream)`` stream, one per item."""
    return np.random.SeedSequence([seed, epoch, stream]).generate_state(count, dtype=np.uint64) >> 1
