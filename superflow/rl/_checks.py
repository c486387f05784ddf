"""Argument checks shared by the RL modules.

Every public function of ``superflow.rl`` validates its inputs up front, so that a bad config or a
shape mix-up fails at the call that caused it, with the argument's name and value in the message,
instead of surfacing epochs later as a NaN loss or a silently wrong group size.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def as_1d_float(x: Any, name: str, *, allow_empty: bool = True) -> np.ndarray:
    """``x`` as a finite float64 vector (torch tensors are detached and moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(arr.shape)}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be finite, got {arr[i]} at index {i}")
    return arr


def as_1d_labels(x: Any, name: str) -> np.ndarray:
    """``x`` as a 1-D array of hashable labels (ints or strings)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(arr.shape)}")
    return arr


def check_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """``value`` as a Python int; floats such as 2.0 are refused so that config typos show."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_float(
    value: Any,
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """``value`` as a finite float inside the given (open or closed) interval."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if lo is not None and (f < lo or (lo_open and f == lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {f}")
    if hi is not None and (f > hi or (hi_open and f == hi)):
        raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi}, got {f}")
    return f
