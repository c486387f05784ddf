"""Which prompts an epoch samples and how many images each gets (ALGORITHM.md section 1).

Flow-GRPO gives every prompt the same group size. Here the sampling budget follows the reward
uncertainty of each prompt: a prompt whose reward is already certain (always solved or never
solved) yields groups whose rewards tie and so teaches nothing, while an uncertain prompt is where
the group-mean baseline is noisiest. Neyman allocation (sizes proportional to the standard
deviation) minimises the total variance of the per-prompt baseline estimates for a fixed budget;
the bin variant is the paper's reconstructed form (section 5).

All functions are deterministic given their inputs (and the ``rng`` where one is taken), which
the trainer relies on for exact resume and for ranks that agree without communicating.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from superflow.rl._checks import as_1d_float, check_float, check_int

__all__ = [
    "round_to_budget",
    "water_fill",
    "neyman_allocation",
    "bin_allocation",
    "prioritized_draw",
    "uniform_draw",
    "draw_epoch_prompts",
    "epoch_group_sizes",
    "EpochPlan",
    "plan_epoch",
]


def _check_nonnegative(u: np.ndarray, name: str) -> None:
    if (u < 0).any():
        i = int(np.flatnonzero(u < 0)[0])
        raise ValueError(f"{name} must be >= 0, got {u[i]} at index {i}")


def _check_feasible(n: int, total: int, lo: int, hi: int, what: str) -> None:
    if lo > hi:
        raise ValueError(f"lo={lo} exceeds hi={hi}")
    if n * lo > total or n * hi < total:
        raise ValueError(
            f"cannot split {what} {total} into {n} integers in [{lo}, {hi}]: "
            f"the bounds allow totals from {n * lo} to {n * hi}"
        )


def round_to_budget(x: np.ndarray, total: int, lo: int, hi: int, *, priority: np.ndarray | None = None) -> np.ndarray:
    """Integers in ``[lo, hi]`` summing exactly to ``total``, as close as possible to ``x``.

    Start from ``floor(x)`` clipped to the bounds, then hand out (or take back) single units one
    at a time to the entry whose *desire* ``x - m`` is largest (smallest), skipping entries at a
    bound. When ``x`` already sums to ``total`` within the bounds this is exactly the
    largest-remainder rule; otherwise it is the repair of the sum inside the bounds. Because each
    unit goes to the greatest remaining desire, a larger ``x`` never gets a smaller integer, and
    equal ``x`` end up within 1 of each other.

    Equal desires are broken by ``x`` itself (``x - m`` can round two different ``x`` to the same
    desire), then by ``priority`` (larger gets a unit first and loses one last; the caller's own
    ordering for ``x`` that are exactly equal), then by the lower index.
    """
    x = as_1d_float(x, "x")
    total = check_int(total, "total", minimum=0)
    lo = check_int(lo, "lo", minimum=0)
    hi = check_int(hi, "hi", minimum=0)
    n = len(x)
    if priority is None:
        prio = np.zeros(n)
    else:
        prio = as_1d_float(priority, "priority")
        if len(prio) != n:
            raise ValueError(f"priority must have the length of x ({n}), got {len(prio)}")
    _check_feasible(n, total, lo, hi, "total")
    m = np.floor(np.clip(x, lo, hi)).astype(np.int64)
    deficit = total - int(m.sum())
    if deficit > 0:
        # Heap entries sort by (-desire, -x, -priority, index): the most deserving entry first.
        heap = [(-(x[i] - m[i]), -x[i], -prio[i], i) for i in range(n) if m[i] < hi]
        heapq.heapify(heap)
        for _ in range(deficit):
            i = heapq.heappop(heap)[-1]
            m[i] += 1
            if m[i] < hi:
                heapq.heappush(heap, (-(x[i] - m[i]), -x[i], -prio[i], i))
    elif deficit < 0:
        # (desire, x, priority, index): the most over-served entry gives a unit back first.
        heap = [(x[i] - m[i], x[i], prio[i], i) for i in range(n) if m[i] > lo]
        heapq.heapify(heap)
        for _ in range(-deficit):
            i = heapq.heappop(heap)[-1]
            m[i] -= 1
            if m[i] > lo:
                heapq.heappush(heap, (x[i] - m[i], x[i], prio[i], i))
    return m


def water_fill(weights: np.ndarray, total: float, lo: float, hi: float) -> np.ndarray:
    """Real sizes ``clip(lam * weights, lo, hi)`` with ``lam`` chosen so that they sum to ``total``.

    This is proportional allocation under box constraints done right: clipped entries sit at
    their bound and the rest of the budget is shared proportionally among the others. Clipping
    once and renormalising would push the renormalised entries past the bounds again, and fixing
    entries one side at a time can fix the wrong ones; solving for the single ``lam`` avoids both
    and makes the result a monotone function of the weight (ties stay exactly equal).
    ``sum clip(lam w, lo, hi)`` is piecewise linear and non-decreasing in ``lam``, so ``lam`` is
    found exactly on the segment between consecutive breakpoints ``lo / w_c``, ``hi / w_c``.
    """
    w = as_1d_float(weights, "weights", allow_empty=False)
    if (w <= 0).any():
        i = int(np.flatnonzero(w <= 0)[0])
        raise ValueError(f"weights must be > 0, got {w[i]} at index {i}")
    total = check_float(total, "total", lo=0.0)
    lo = check_float(lo, "lo", lo=0.0)
    hi = check_float(hi, "hi", lo=lo)
    n = len(w)
    if n * lo > total * (1 + 1e-12) or n * hi < total * (1 - 1e-12):
        raise ValueError(f"cannot split total {total} into {n} sizes in [{lo}, {hi}]")
    if total <= n * lo:
        return np.full(n, lo)
    if total >= n * hi:
        return np.full(n, hi)
    ws = np.sort(w)
    csum = np.concatenate([[0.0], np.cumsum(ws)])

    def parts(lam: float) -> tuple[int, int, float]:
        """(#entries at lo, index where the entries at hi start, mass of the free entries)."""
        # lam is 0 where a segment of subnormal width rounds its midpoint down: every entry at lo
        a = int(np.searchsorted(ws, lo / lam if lam > 0 else np.inf, side="right")) if lo > 0 else 0
        b = int(np.searchsorted(ws, hi / lam if lam > 0 else np.inf, side="left"))
        b = max(a, b)
        return a, b, lo * a + hi * (n - b) + lam * (csum[b] - csum[a])

    breaks = np.unique(np.concatenate([(lo / ws) if lo > 0 else np.zeros(0), hi / ws]))
    # Find the first breakpoint where the total reaches the budget; the solution lies on the
    # linear segment just before it (or on the first segment, which starts at lam = 0).
    # The total is non-decreasing in lam, so bisect over the breakpoints. At the last breakpoint
    # every entry is at hi, whose total exceeds the budget (handled above), so k stays in range.
    k_lo, k_hi = 0, len(breaks) - 1
    while k_lo < k_hi:
        mid = (k_lo + k_hi) // 2
        if parts(float(breaks[mid]))[2] < total:
            k_lo = mid + 1
        else:
            k_hi = mid
    k = k_lo
    left = float(breaks[k - 1]) if k > 0 else 0.0
    right = float(breaks[k])
    mid = 0.5 * (left + right)
    a, b, _ = parts(mid)
    free_mass = csum[b] - csum[a]
    if free_mass > 0:
        lam = (total - lo * a - hi * (n - b)) / free_mass
    else:
        # No entry is free on this segment, so the total is constant on it; the bisection only
        # landed here because rounding put the total at a breakpoint a hair below the budget.
        lam = mid
    return np.clip(lam * w, lo, hi)


def neyman_allocation(
    uncertainty: np.ndarray,
    budget: int,
    m_min: int = 2,
    m_max: int | None = None,
    eps: float = 1e-3,
) -> np.ndarray:
    """Group sizes proportional to ``uncertainty + eps`` within ``[m_min, m_max]``, summing to ``budget``.

    ``eps`` keeps prompts whose reward looks certain in the running (the tracker can be wrong,
    and a prompt's reward changes as the policy does); ``m_min >= 2`` because a group of one has
    no within-group variance. Without ``m_max`` the only cap is what the other prompts' minimum
    leaves over. The result is monotone non-decreasing in the uncertainty and equal uncertainties
    get sizes within 1 of each other (see ``water_fill`` and ``round_to_budget``).
    """
    u = as_1d_float(uncertainty, "uncertainty", allow_empty=False)
    _check_nonnegative(u, "uncertainty")
    budget = check_int(budget, "budget", minimum=0)
    m_min = check_int(m_min, "m_min", minimum=2)
    eps = check_float(eps, "eps", lo=0.0, lo_open=True)
    n = len(u)
    if m_max is None:
        hi = max(budget - (n - 1) * m_min, m_min)
    else:
        hi = check_int(m_max, "m_max", minimum=m_min)
    _check_feasible(n, budget, m_min, hi, "budget")
    sizes = water_fill(u + eps, budget, m_min, hi)
    # u breaks ties that adding eps can create (u = 0 and u = 1e-20 both weigh exactly eps).
    return round_to_budget(sizes, budget, m_min, hi, priority=u)


def bin_allocation(uncertainty: np.ndarray, m_max: int, num_bins: int) -> np.ndarray:
    """The paper's bins: rank prompts by uncertainty, bin b (1 = most uncertain) gets ``m_max - b + 1``.

    Bins hold (nearly) equal numbers of prompts by rank. Tied uncertainties share the rank of the
    first of the tie (competition ranking), so they always land in the same bin: all prompts being
    unseen at the start of training, they then all get ``m_max``, which is Flow-GRPO's behaviour
    with group size ``m_max``. The total is not fixed by this variant.
    """
    u = as_1d_float(uncertainty, "uncertainty")
    m_max = check_int(m_max, "m_max", minimum=2)
    num_bins = check_int(num_bins, "num_bins", minimum=1)
    if m_max - num_bins + 1 < 2:
        raise ValueError(
            "m_max - num_bins + 1 must be >= 2 (the smallest bin's group size), "
            f"got m_max={m_max}, num_bins={num_bins}"
        )
    n = len(u)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ascending = np.sort(u)
    rank = n - np.searchsorted(ascending, u, side="right")  # number of strictly larger uncertainties
    bins = rank * num_bins // n + 1
    return (m_max - bins + 1).astype(np.int64)


def prioritized_draw(
    uncertainty: np.ndarray, num: int, rng: np.random.Generator, eps: float = 1e-3, weights: np.ndarray | None = None
) -> np.ndarray:
    """``num`` distinct prompt indices drawn without replacement with probability ∝ ``(u + eps) * weights``.

    Solved and hopeless prompts (u near 0) come up rarely but never never: ``eps`` keeps them
    reachable so that the tracker notices when the policy changes their outcome.
    """
    u = as_1d_float(uncertainty, "uncertainty")
    _check_nonnegative(u, "uncertainty")
    num = check_int(num, "num", minimum=0)
    eps = check_float(eps, "eps", lo=0.0)
    _check_rng(rng)
    if num > len(u):
        raise ValueError(f"num={num} exceeds the number of items {len(u)}")
    w = u + eps
    if weights is not None:
        w = w * _check_weights(weights, len(u))
    positive = int((w > 0).sum())
    if positive < num:
        raise ValueError(f"only {positive} items have positive weight, cannot draw num={num} of them (raise eps)")
    if num == 0:
        return np.zeros(0, dtype=np.int64)
    return rng.choice(len(u), size=num, replace=False, p=w / w.sum()).astype(np.int64)


def uniform_draw(num_items: int, num: int, rng: np.random.Generator, weights: np.ndarray | None = None) -> np.ndarray:
    """The first ``num`` entries of a seeded permutation (Flow-GRPO's distinct prompts per epoch);
    with ``weights``, ``num`` distinct indices drawn with probability ∝ ``weights``."""
    num_items = check_int(num_items, "num_items", minimum=0)
    num = check_int(num, "num", minimum=0)
    _check_rng(rng)
    if num > num_items:
        raise ValueError(f"num={num} exceeds num_items={num_items}")
    if weights is not None:
        w = _check_weights(weights, num_items)
        if int((w > 0).sum()) < num:
            raise ValueError(f"only {int((w > 0).sum())} items have positive weight, cannot draw num={num} of them")
        return rng.choice(num_items, size=num, replace=False, p=w / w.sum()).astype(np.int64)
    return rng.permutation(num_items)[:num].astype(np.int64)


#: The config's names of the prompt draws and group-size rules (``algorithm.prompt_draw``,
#: ``algorithm.group_sizes``); ``config.CHOICES`` must list the same (a test checks).
PROMPT_DRAWS = ("uniform", "prioritized")
GROUP_SIZE_RULES = ("fixed", "neyman", "bins")


def draw_epoch_prompts(
    algorithm, tracker, keys: list[str], num: int, rng: np.random.Generator, weights: np.ndarray | None = None
) -> np.ndarray:
    """The prompts an epoch samples, as ``algorithm.prompt_draw`` says: ``"uniform"`` or
    ``"prioritized"`` (by ``tracker.uncertainty`` of the prompt keys, floored by ``algorithm.eps``)."""
    if algorithm.prompt_draw == "prioritized":
        return prioritized_draw(tracker.uncertainty(keys), num, rng, eps=algorithm.eps, weights=weights)
    if algorithm.prompt_draw == "uniform":
        return uniform_draw(len(keys), num, rng, weights=weights)
    raise ValueError(f"unknown prompt draw {algorithm.prompt_draw!r}; known: {', '.join(PROMPT_DRAWS)}")


def epoch_group_sizes(algorithm, uncertainty: np.ndarray, budget: int, group_size: int) -> np.ndarray:
    """Group sizes as ``algorithm.group_sizes`` says: ``"fixed"`` (``group_size`` each), ``"neyman"``
    (``neyman_allocation`` of ``budget``) or ``"bins"`` (``bin_allocation``)."""
    kind = algorithm.group_sizes
    if kind == "neyman":
        return neyman_allocation(uncertainty, budget, m_min=algorithm.m_min, m_max=algorithm.m_max, eps=algorithm.eps)
    if kind == "bins":
        return bin_allocation(uncertainty, m_max=algorithm.m_max, num_bins=algorithm.num_bins)
    if kind == "fixed":
        return np.full(len(uncertainty), group_size)
    raise ValueError(f"unknown group-size allocation {kind!r}; known: {', '.join(GROUP_SIZE_RULES)}")


@dataclass
class EpochPlan:
    """Which prompts an epoch samples and how many images each gets."""

    prompt_indices: np.ndarray  # [P] indices into the training prompt set
    group_sizes: np.ndarray  # [P]

    @property
    def sample_prompt_indices(self) -> np.ndarray:
        return np.repeat(self.prompt_indices, self.group_sizes)

    @property
    def group_ids(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.prompt_indices)), self.group_sizes)


def plan_epoch(
    algorithm,
    tracker,
    keys: list[str],
    num: int,
    budget: int,
    group_size: int,
    rng: np.random.Generator,
    weights: np.ndarray | None = None,
) -> EpochPlan:
    """Draw ``num`` of the prompts ``keys`` and size their groups from the tracker's uncertainty."""
    idx = draw_epoch_prompts(algorithm, tracker, keys, num, rng, weights)
    sizes = epoch_group_sizes(algorithm, tracker.uncertainty([keys[i] for i in idx]), budget, group_size)
    return EpochPlan(np.asarray(idx, dtype=np.int64), np.asarray(sizes, dtype=np.int64))


def tag_balanced_weights(tags: list[str]) -> np.ndarray:
    """Per-item weights 1 / (count of its tag): every tag equally likely, items uniform within a tag."""
    counts: dict[str, int] = {}
    for t in tags:
        counts[t] = counts.get(t, 0) + 1
    return np.array([1.0 / counts[t] for t in tags])


def _check_weights(weights: np.ndarray, n: int) -> np.ndarray:
    w = as_1d_float(weights, "weights")
    if len(w) != n:
        raise ValueError(f"weights has {len(w)} entries for {n} items")
    _check_nonnegative(w, "weights")
    return w


def _check_rng(rng: object) -> None:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
