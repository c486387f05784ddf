"""Wall-clock accounting of a training epoch's phases (the only non-deterministic metrics)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

#: The phases an epoch is split into; ``time_eval`` is zero in epochs without an evaluation.
PHASE_KEYS = ("time_sampling", "time_reward", "time_training", "time_eval")
#: Metrics whose values depend on the clock; everything else in a metrics line is deterministic.
TIMING_KEYS = (*PHASE_KEYS, "time_epoch", "time_total")


@dataclass
class Timer:
    """Seconds per phase name, ``with timer("time_sampling"): ...``, since the timer was made."""

    totals: dict[str, float] = field(default_factory=dict)
    start: float = field(default_factory=time.perf_counter)

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - start

    def epoch_seconds(self) -> dict[str, float]:
        """Every phase's total and ``time_epoch`` (since the timer was made), rounded to 0.1 ms."""
        seconds = {k: round(self.totals.get(k, 0.0), 4) for k in PHASE_KEYS}
        seconds["time_epoch"] = round(time.perf_counter() - self.start, 4)
        return seconds
