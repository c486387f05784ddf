"""Group-size allocation and prompt draws: exact budgets, bounds, monotonicity, ties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from superflow.rl import (
    bin_allocation,
    neyman_allocation,
    prioritized_draw,
    round_to_budget,
    tag_balanced_weights,
    uniform_draw,
    water_fill,
)

FAST = settings(max_examples=60, deadline=None)

# Uncertainties drawn from a small pool so that ties are common, plus arbitrary values.
uncertainty_values = st.one_of(st.sampled_from([0.0, 0.1, 0.25, 0.3, 0.5]), st.floats(0.0, 0.5))


def _largest_remainder(x: np.ndarray, total: int) -> np.ndarray:
    """Textbook largest-remainder rounding (equal remainders: larger x, then lower index, first)."""
    base = np.floor(x).astype(np.int64)
    order = sorted(range(len(x)), key=lambda i: (-(x[i] - base[i]), -x[i], i))
    for i in order[: total - int(base.sum())]:
        base[i] += 1
    return base


def _check_monotone_and_ties(u: np.ndarray, m: np.ndarray) -> None:
    for i in range(len(u)):
        for j in range(len(u)):
            if u[i] < u[j]:
                assert m[i] <= m[j], (u, m)
            if u[i] == u[j]:
                assert abs(int(m[i]) - int(m[j])) <= 1, (u, m)


# ----------------------------------------------------------------------------- round_to_budget
def test_round_to_budget_is_largest_remainder_when_exact():
    x = np.array([1.5, 2.5, 3.0, 0.7, 4.3])  # sums to 12; 0.7 first, then the larger of the two .5s
    np.testing.assert_array_equal(round_to_budget(x, 12, 0, 10), [1, 3, 3, 1, 4])
    # exact ties in x are broken by priority, then by the lower index
    np.testing.assert_array_equal(round_to_budget(np.full(3, 1.5), 5, 0, 10), [2, 2, 1])
    np.testing.assert_array_equal(round_to_budget(np.full(3, 1.5), 5, 0, 10, priority=[0.0, 0.1, 0.2]), [1, 2, 2])
    np.testing.assert_array_equal(round_to_budget(x, 12, 0, 10), _largest_remainder(x, 12))


def test_round_to_budget_repairs_inside_bounds():
    # Clipping [1.2, 9.6, 9.2] to hi=8 loses 2.8 units; they must go to the only entry below hi.
    np.testing.assert_array_equal(round_to_budget(np.array([1.2, 9.6, 9.2]), 20, 2, 8), [4, 8, 8])
    # Too much mass: remove from the most over-served (smallest x - m) first; entry 2 is at lo.
    np.testing.assert_array_equal(round_to_budget(np.array([5.0, 5.0, 2.5]), 9, 2, 10), [3, 4, 2])
    np.testing.assert_array_equal(round_to_budget(np.array([5.0, 5.4, 2.5]), 10, 2, 10), [4, 4, 2])


@FAST
@given(
    st.lists(st.floats(0, 40, allow_nan=False), min_size=1, max_size=12),
    st.integers(0, 5),
    st.integers(0, 30),
    st.data(),
)
def test_round_to_budget_exact_and_bounded(xs, lo, span, data):
    x = np.asarray(xs)
    hi = lo + span
    n = len(x)
    total = data.draw(st.integers(n * lo, n * hi))
    m = round_to_budget(x, total, lo, hi)
    assert m.dtype == np.int64
    assert int(m.sum()) == total
    assert m.min() >= lo and m.max() <= hi
    _check_monotone_and_ties(x, m)


@FAST
@given(st.lists(st.floats(0, 20, allow_nan=False), min_size=1, max_size=12), st.integers(0, 100))
def test_round_to_budget_is_largest_remainder_for_exact_targets(xs, total):
    x = np.asarray(xs)
    assume(x.sum() > 1e-3)
    x = x * (total / x.sum())  # sums to total up to float rounding
    m = round_to_budget(x, total, 0, 1000)
    assert int(m.sum()) == total
    assert np.all(np.abs(m - x) < 1 + 1e-9)
    np.testing.assert_array_equal(m, _largest_remainder(x, total))


def test_round_to_budget_infeasible_names_numbers():
    with pytest.raises(ValueError, match=r"cannot split total 5 into 3 integers in \[2, 10\]"):
        round_to_budget(np.ones(3), 5, 2, 10)
    with pytest.raises(ValueError, match="31"):
        round_to_budget(np.ones(3), 31, 2, 10)
    with pytest.raises(ValueError, match="x must be finite"):
        round_to_budget(np.array([1.0, np.nan]), 2, 0, 5)


# ----------------------------------------------------------------------------- neyman
def test_neyman_proportional_without_clipping():
    u = np.array([0.1, 0.2, 0.3, 0.4]) - 1e-3  # u + eps is exactly proportional to 1:2:3:4
    np.testing.assert_array_equal(neyman_allocation(u, 100), [10, 20, 30, 40])


def test_neyman_water_fills_at_the_cap():
    # The uncertain prompt would take ~all of the budget; capped at 20, the other three share 20.
    m = neyman_allocation(np.array([0.0, 0.0, 0.0, 1.0]), 40, m_min=2, m_max=20)
    np.testing.assert_array_equal(m, [7, 7, 6, 20])


def test_neyman_water_fills_at_the_floor():
    # Naive clip-then-renormalise would give the floor prompts' mass to everyone; here the two
    # floor prompts sit at m_min and the rest is split 1:1 between the equal uncertain ones.
    m = neyman_allocation(np.array([0.0, 0.0, 0.5, 0.5]), 24, m_min=4)
    np.testing.assert_array_equal(m, [4, 4, 8, 8])


def test_neyman_budget_exactly_at_the_bounds_of_a_flat_segment():
    # Regression: the solution lies where no entry is free (one at m_min, one at the cap), which
    # rounding once turned into a division by zero.
    np.testing.assert_array_equal(neyman_allocation(np.array([0.0, 0.1]), 56, m_min=3, eps=1e-8), [3, 53])


def test_neyman_ties_created_by_eps_still_favour_the_larger_uncertainty():
    # 0 and 1e-97 weigh exactly the same once eps is added; the larger must not get less.
    m = neyman_allocation(np.array([0.0, 1e-97]), 5)
    np.testing.assert_array_equal(m, [2, 3])


def test_neyman_equal_uncertainty_is_flow_grpo():
    np.testing.assert_array_equal(neyman_allocation(np.full(48, 0.5), 48 * 24, m_max=48), np.full(48, 24))


@FAST
@given(
    st.lists(uncertainty_values, min_size=1, max_size=16),
    st.integers(2, 4),
    st.one_of(st.none(), st.integers(0, 30)),
    st.data(),
)
def test_neyman_properties(us, m_min, extra, data):
    u = np.asarray(us)
    n = len(u)
    m_max = None if extra is None else m_min + extra
    hi = 10 * n * m_min if m_max is None else m_max
    budget = data.draw(st.integers(n * m_min, n * hi))
    m = neyman_allocation(u, budget, m_min=m_min, m_max=m_max)
    assert int(m.sum()) == budget
    assert m.min() >= m_min
    if m_max is not None:
        assert m.max() <= m_max
    _check_monotone_and_ties(u, m)
    # ... and within 1 of the continuous water-filled target.
    target = water_fill(u + 1e-3, budget, m_min, hi if m_max is not None else budget - (n - 1) * m_min)
    assert np.all(np.abs(m - target) < 1 + 1e-6)


@FAST
@given(
    st.lists(st.floats(1e-3, 10), min_size=1, max_size=12),
    st.floats(0, 3),
    st.floats(0, 30),
    st.floats(0, 1),
)
@example(ws=[1.0, 1.0], lo=0.0, span=5e-324, frac=0.5)  # a subnormal range: the bisection's midpoint is 0
def test_water_fill_is_clipped_proportional(ws, lo, span, frac):
    w = np.asarray(ws)
    n = len(w)
    hi = lo + span
    total = n * lo + frac * n * (hi - lo)
    x = water_fill(w, total, lo, hi)
    np.testing.assert_allclose(x.sum(), total, rtol=1e-9, atol=1e-9)
    assert np.all(x >= lo - 1e-12) and np.all(x <= hi + 1e-12)
    free = (x > lo + 1e-9) & (x < hi - 1e-9)
    if free.sum() >= 2:
        ratios = x[free] / w[free]
        np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)
        lam = ratios[0]
        # clipped entries are clipped because lam * w is beyond the bound
        assert np.all(lam * w[x <= lo + 1e-9] <= lo + 1e-6)
        assert np.all(lam * w[x >= hi - 1e-9] >= hi - 1e-6)


def test_neyman_validation():
    with pytest.raises(ValueError, match="m_min must be >= 2"):
        neyman_allocation(np.ones(3), 12, m_min=1)
    with pytest.raises(ValueError, match=r"cannot split budget 5 into 3 integers in \[2, 10\]"):
        neyman_allocation(np.ones(3), 5, m_max=10)
    with pytest.raises(ValueError, match="uncertainty must be >= 0"):
        neyman_allocation(np.array([0.1, -0.2]), 8)
    with pytest.raises(ValueError, match="m_max must be >= 4"):
        neyman_allocation(np.ones(3), 12, m_min=4, m_max=3)
    with pytest.raises(ValueError, match="budget must be an integer"):
        neyman_allocation(np.ones(3), 12.5)


# ----------------------------------------------------------------------------- bins
def test_bin_allocation_sizes():
    u = np.array([0.1, 0.5, 0.3, 0.05, 0.45, 0.2, 0.35, 0.0])
    # rank (desc): 0.5, 0.45 -> bin 1 (24); 0.35, 0.3 -> bin 2 (23); 0.2, 0.1 -> 22; 0.05, 0.0 -> 21
    np.testing.assert_array_equal(bin_allocation(u, m_max=24, num_bins=4), [22, 24, 23, 21, 24, 22, 23, 21])


def test_bin_allocation_ties_share_a_bin():
    u = np.array([0.5, 0.5, 0.5, 0.2, 0.1, 0.0])
    np.testing.assert_array_equal(bin_allocation(u, m_max=10, num_bins=3), [10, 10, 10, 9, 8, 8])
    np.testing.assert_array_equal(bin_allocation(np.full(5, 0.5), m_max=24, num_bins=4), np.full(5, 24))


@FAST
@given(st.lists(uncertainty_values, min_size=1, max_size=30), st.integers(1, 6), st.integers(0, 20))
def test_bin_allocation_properties(us, num_bins, extra):
    u = np.asarray(us)
    m_max = num_bins + 1 + extra
    m = bin_allocation(u, m_max=m_max, num_bins=num_bins)
    assert m.min() >= m_max - num_bins + 1 and m.max() <= m_max
    for i in range(len(u)):
        for j in range(len(u)):
            if u[i] == u[j]:
                assert m[i] == m[j]
            if u[i] < u[j]:
                assert m[i] <= m[j]
    if len(np.unique(u)) == len(u):  # without ties, bins hold nearly equal counts
        counts = np.bincount(m_max - m, minlength=num_bins)
        assert counts.max() - counts.min() <= 1


def test_bin_allocation_validation():
    with pytest.raises(ValueError, match="m_max=4, num_bins=4"):
        bin_allocation(np.ones(3), m_max=4, num_bins=4)
    with pytest.raises(ValueError, match="num_bins must be >= 1"):
        bin_allocation(np.ones(3), m_max=4, num_bins=0)


# ----------------------------------------------------------------------------- draws
def test_prioritized_draw_distinct_and_deterministic():
    u = np.linspace(0, 0.5, 20)
    a = prioritized_draw(u, 10, np.random.default_rng(3))
    b = prioritized_draw(u, 10, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert len(set(a.tolist())) == 10 and a.min() >= 0 and a.max() < 20
    assert prioritized_draw(u, 0, np.random.default_rng(0)).shape == (0,)
    np.testing.assert_array_equal(np.sort(prioritized_draw(u, 20, np.random.default_rng(0))), np.arange(20))


def test_prioritized_draw_frequencies_follow_u_plus_eps():
    u = np.array([0.0, 0.2, 0.6])
    eps = 0.2
    rng = np.random.default_rng(0)
    counts = np.bincount([int(prioritized_draw(u, 1, rng, eps=eps)[0]) for _ in range(6000)], minlength=3)
    np.testing.assert_allclose(counts / 6000, (u + eps) / (u + eps).sum(), atol=0.02)


def test_prioritized_draw_validation():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="num=4 exceeds"):
        prioritized_draw(np.ones(3), 4, rng)
    with pytest.raises(ValueError, match="only 1 items have positive weight"):
        prioritized_draw(np.array([0.0, 0.0, 0.3]), 2, rng, eps=0.0)
    with pytest.raises(ValueError, match="rng"):
        prioritized_draw(np.ones(3), 2, 0)


def test_uniform_draw_is_a_permutation_prefix():
    got = uniform_draw(50, 12, np.random.default_rng(7))
    np.testing.assert_array_equal(got, np.random.default_rng(7).permutation(50)[:12])
    assert len(set(got.tolist())) == 12
    with pytest.raises(ValueError, match="num=6 exceeds num_items=5"):
        uniform_draw(5, 6, np.random.default_rng(0))


def test_tag_balanced_weights_make_every_tag_equally_likely():
    tags = ["a"] * 8 + ["b"] * 2 + ["c"]
    w = tag_balanced_weights(tags)
    assert w.tolist() == [1 / 8] * 8 + [1 / 2] * 2 + [1.0]
    rng = np.random.default_rng(0)
    counts = {"a": 0, "b": 0, "c": 0}
    for _ in range(3000):
        counts[tags[int(uniform_draw(len(tags), 1, rng, weights=w)[0])]] += 1
    for tag in counts:  # each tag 1/3 of the single draws, within 4 binomial sds
        assert abs(counts[tag] - 1000) < 4 * np.sqrt(3000 * (1 / 3) * (2 / 3)), counts


def test_weighted_draws_validate_and_combine_with_uncertainty():
    rng = np.random.default_rng(1)
    w = np.array([1.0, 0.0, 1.0, 0.0])
    for _ in range(20):
        assert set(uniform_draw(4, 2, rng, weights=w).tolist()) == {0, 2}  # zero weight never drawn
        assert set(prioritized_draw(np.array([1.0, 1.0, 0.5, 1.0]), 2, rng, eps=0.0, weights=w).tolist()) == {0, 2}
    with pytest.raises(ValueError, match="only 2 items have positive weight"):
        uniform_draw(4, 3, rng, weights=w)
    with pytest.raises(ValueError, match="weights has 3 entries for 4 items"):
        uniform_draw(4, 1, rng, weights=np.ones(3))
