"""Trajectory-level advantages: the group-mean baseline of Flow-GRPO and the tracker baseline of SPO.

Both return one number per sample (per trajectory); ``superflow.rl.step_advantages`` spreads them
over the denoising steps. Computation is in float64 numpy: these are bookkeeping numbers, and the
reference computes them in float64 too, so the two agree to the last bit before the cast to the
loss dtype.
"""

from __future__ import annotations

import numpy as np
import torch

from superflow.rl._checks import as_1d_float, as_1d_labels, check_float

__all__ = ["group_advantages", "tracker_advantages", "tied_groups", "baseline_advantages"]


def _rewards_and_groups(rewards, group_ids) -> tuple[np.ndarray, np.ndarray]:
    r = as_1d_float(rewards, "rewards")
    g = as_1d_labels(group_ids, "group_ids")
    if len(r) != len(g):
        raise ValueError(f"rewards and group_ids must have the same length, got {len(r)} and {len(g)}")
    return r, g


def group_advantages(
    rewards: np.ndarray | torch.Tensor,
    group_ids: np.ndarray | torch.Tensor,
    global_std: bool = False,
    eps: float = 1e-4,
) -> np.ndarray:
    """Flow-GRPO's advantage ``(r - group mean) / (std + eps)``.

    The std is the population std (``ddof=0``) of the group, or of the whole batch with
    ``global_std``; the reference uses ``np.std`` and we match it, since a sample-std here would
    rescale every advantage by a group-size-dependent factor (and variable group sizes would turn
    that into a bias between prompts). A group whose rewards all tie gets advantage 0.
    """
    r, g = _rewards_and_groups(rewards, group_ids)
    eps = check_float(eps, "eps", lo=0.0)
    out = np.zeros_like(r)
    if len(r) == 0:
        return out
    _, inverse = np.unique(g, return_inverse=True)
    batch_std = float(np.std(r))
    for group in range(int(inverse.max()) + 1):
        members = inverse == group
        values = r[members]
        std = batch_std if global_std else float(np.std(values))
        out[members] = (values - values.mean()) / (std + eps)
    return out


def tracker_advantages(
    rewards: np.ndarray | torch.Tensor,
    baselines: np.ndarray | torch.Tensor,
    eps: float = 1e-4,
    center: bool = True,
) -> np.ndarray:
    """SPO's advantage: ``r - v(c)`` against the tracker's value, normalised over the batch.

    The baseline comes from past epochs, not from the group, so a group whose rewards tie still
    gets a signal (all above or all below what the prompt usually scores). Batch normalisation
    keeps the scale comparable to the group-normalised advantage, so the clip range and the
    advantage clip mean the same thing under both baselines. ``center=False`` only rescales, which
    keeps the sign of every ``r - v(c)`` (whether a sample beat its prompt's expectation).
    """
    r = as_1d_float(rewards, "rewards")
    b = as_1d_float(baselines, "baselines")
    if len(r) != len(b):
        raise ValueError(f"rewards and baselines must have the same length, got {len(r)} and {len(b)}")
    eps = check_float(eps, "eps", lo=0.0)
    a = r - b
    if len(a) == 0:
        return a
    std = float(np.std(a))
    if center:
        return (a - a.mean()) / (std + eps)
    return a / (std + eps)


def tied_groups(rewards: np.ndarray | torch.Tensor, group_ids: np.ndarray | torch.Tensor) -> np.ndarray:
    """Per sample: does every reward in its group equal every other (a group of one included)?

    With the group-mean baseline such a group's advantages are all exactly 0, so it costs a
    forward/backward pass and teaches nothing; the trainer can skip it.
    """
    r, g = _rewards_and_groups(rewards, group_ids)
    out = np.zeros(len(r), dtype=bool)
    if len(r) == 0:
        return out
    _, inverse = np.unique(g, return_inverse=True)
    for group in range(int(inverse.max()) + 1):
        members = inverse == group
        values = r[members]
        out[members] = bool(values.max() == values.min())
    return out


#: The config's names of the trajectory baselines (``algorithm.baseline``).
BASELINES = ("group", "tracker")


def baseline_advantages(algorithm, rewards: np.ndarray, group_ids: np.ndarray, tracker, keys: list[str]) -> np.ndarray:
    """Trajectory advantages with the baseline ``algorithm.baseline`` names: ``"group"`` (Flow-GRPO,
    optionally ``algorithm.global_std``) or ``"tracker"`` (SPO: ``tracker.value`` of each sample's prompt key)."""
    if algorithm.baseline == "tracker":
        return tracker_advantages(rewards, tracker.value(keys))
    if algorithm.baseline == "group":
        return group_advantages(rewards, group_ids, global_std=algorithm.global_std)
    raise ValueError(f"unknown baseline {algorithm.baseline!r}; known: {', '.join(BASELINES)}")
