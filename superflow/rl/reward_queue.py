"""Reward scoring that overlaps the next sampling batch, returning scores in submission order.

On a GPU the sampler waits while a reward (OCR, a detector behind a server) scores the batch it
just produced; with ``overlap`` on, one worker thread scores batch k while batch k + 1 samples.
Scores come back in the order the batches were submitted, so the epoch's reward array is the same
as with inline scoring (the reward sees the same images in the same batches).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np


class RewardQueue:
    def __init__(self, score: Callable[..., np.ndarray], overlap: bool):
        self._score = score
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reward") if overlap else None
        self._pending: list[Future | np.ndarray] = []

    def submit(self, *args) -> None:
        """Score one batch: now (inline) or in the worker (overlap)."""
        self._pending.append(self._score(*args) if self._pool is None else self._pool.submit(self._score, *args))

    def last(self) -> np.ndarray:
        """The newest batch's scores (waits for them)."""
        item = self._pending[-1]
        return item.result() if isinstance(item, Future) else item

    def results(self) -> list[np.ndarray]:
        """Every batch's scores in submission order; a scoring error is raised here."""
        try:
            return [item.result() if isinstance(item, Future) else item for item in self._pending]
        finally:
            self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
