"""Trajectory advantages and step-level estimators against hand computations and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from superflow.rl import (
    STEP_ESTIMATORS,
    MixedEstimator,
    NoiseWeightedEstimator,
    PaperEstimator,
    StepBatch,
    TrajectoryEstimator,
    TweedieTDEstimator,
    group_advantages,
    make_step_estimator,
    tied_groups,
    tracker_advantages,
)

EPS = 1e-4


# ----------------------------------------------------------------------------- group advantages
def test_group_advantages_hand_computation():
    r = np.array([1.0, 2.0, 3.0, 5.0, 5.0, 0.0, 10.0])
    g = np.array([0, 0, 0, 1, 1, 2, 2])
    s0 = math.sqrt(2.0 / 3.0)  # population std of 1, 2, 3
    expected = [-1 / (s0 + EPS), 0.0, 1 / (s0 + EPS), 0.0, 0.0, -5 / (5 + EPS), 5 / (5 + EPS)]
    np.testing.assert_allclose(group_advantages(r, g), expected, rtol=1e-12)


def test_group_advantages_global_std_and_string_groups():
    r = np.array([1.0, 2.0, 3.0, 5.0, 5.0, 0.0, 10.0])
    g = np.array(["cat", "cat", "cat", "dog", "dog", "ox", "ox"])
    s = np.std(r)
    expected = [-1 / (s + EPS), 0.0, 1 / (s + EPS), 0.0, 0.0, -5 / (s + EPS), 5 / (s + EPS)]
    np.testing.assert_allclose(group_advantages(r, g, global_std=True), expected, rtol=1e-12)


def test_group_advantages_matches_reference_stat_tracker():
    """The reference's PerPromptStatTracker.update (grpo branch), written out here."""
    rng = np.random.default_rng(0)
    prompts = np.array([f"p{i}" for i in rng.integers(0, 5, size=40)])
    rewards = rng.uniform(0, 1, size=40)
    expected = np.empty_like(rewards)
    for p in np.unique(prompts):
        pr = rewards[prompts == p]
        expected[prompts == p] = (pr - np.mean(pr, axis=0, keepdims=True)) / (np.std(pr, axis=0, keepdims=True) + 1e-4)
    np.testing.assert_array_equal(group_advantages(rewards, prompts), expected)


def test_tracker_advantages_hand_computation():
    r = np.array([1.0, 0.0, 1.0])
    b = np.array([0.5, 0.5, 0.25])
    a = np.array([0.5, -0.5, 0.75])
    s = np.std(a)
    np.testing.assert_allclose(tracker_advantages(r, b), (a - a.mean()) / (s + EPS), rtol=1e-12)
    np.testing.assert_allclose(tracker_advantages(r, b, center=False), a / (s + EPS), rtol=1e-12)


def test_tracker_advantages_give_tied_groups_a_signal():
    r = np.array([1.0, 1.0, 0.0, 0.0])  # both groups tie
    g = np.array([0, 0, 1, 1])
    assert np.all(group_advantages(r, g) == 0)
    a = tracker_advantages(r, np.array([0.3, 0.3, 0.6, 0.6]))
    assert a[0] > 0 and a[2] < 0


def test_tied_groups():
    r = np.array([1.0, 1.0, 0.3, 0.5, 0.7, 0.7, 2.0])
    g = np.array([0, 0, 1, 1, 2, 2, 3])
    assert tied_groups(r, g).tolist() == [True, True, False, False, True, True, True]


def test_advantage_errors_name_the_culprit():
    with pytest.raises(ValueError, match="rewards and group_ids must have the same length, got 2 and 3"):
        group_advantages(np.ones(2), np.zeros(3))
    with pytest.raises(ValueError, match="rewards must be finite, got nan at index 1"):
        group_advantages(np.array([1.0, np.nan]), np.zeros(2))
    with pytest.raises(ValueError, match="baselines"):
        tracker_advantages(np.ones(2), np.ones(3))


# ----------------------------------------------------------------------------- step estimators
def _schedule(num_steps: int = 10, shift: float = 3.0, noise_level: float = 0.7):
    """A shifted rectified-flow schedule and its Flow-GRPO std_dev_t (sigma == 1 rule)."""
    s = np.linspace(1.0, 0.0, num_steps + 1)
    s = shift * s / (1 + (shift - 1) * s)
    denom = 1 - np.where(s[:-1] == 1, s[1], s[:-1])
    std = noise_level * np.sqrt(s[:-1] / denom)
    return torch.tensor(s, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)


def _batch(n: int = 6, k: int = 9, seed: int = 0, with_values: bool = True, groups: bool = True) -> StepBatch:
    gen = torch.Generator().manual_seed(seed)
    sigmas, std = _schedule()
    return StepBatch(
        advantages=torch.randn(n, generator=gen),
        sigmas=sigmas,
        std_devs=std,
        num_train_steps=k,
        group_ids=torch.arange(n) // 3 if groups else None,
        rewards=torch.rand(n, generator=gen),
        values=torch.rand(n, 11, generator=gen) if with_values else None,
    )


def test_trajectory_is_the_flow_grpo_copy():
    b = _batch(k=9)
    got = TrajectoryEstimator().estimate(b)
    assert got.shape == (6, 9) and got.dtype == b.advantages.dtype
    assert torch.equal(got, b.advantages.unsqueeze(1).repeat(1, 9))


def test_noise_weighted_weights_mean_one_and_proportional_to_noise_scale():
    b = _batch(k=9)
    got = NoiseWeightedEstimator().estimate(b).double()
    w = got / b.advantages.double()[:, None]
    sig = b.sigmas.double()
    scale = b.std_devs.double()[:9] * torch.sqrt(sig[:9] - sig[1:10])
    torch.testing.assert_close(w.mean(dim=1), torch.ones(6, dtype=torch.float64), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(w, (scale / scale.mean()).expand(6, 9), rtol=1e-5, atol=1e-6)


def test_paper_weights_mean_one_and_proportional_to_std_dev():
    b = _batch(k=7)
    got = PaperEstimator().estimate(b).double()
    w = got / b.advantages.double()[:, None]
    std = b.std_devs.double()[:7]
    torch.testing.assert_close(w.mean(dim=1), torch.ones(6, dtype=torch.float64), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(w, (std / std.mean()).expand(6, 7), rtol=1e-5, atol=1e-6)
    assert torch.all(w[:, :-1] >= w[:, 1:])  # early, noisy steps get more credit
    explicit = PaperEstimator(eta=0.5).estimate(b)
    torch.testing.assert_close(explicit, 0.5 * b.advantages[:, None] * b.std_devs[None, :7])


def test_paper_equals_noise_weighted_when_dt_is_constant():
    sigmas, std = _schedule(shift=1.0)  # uniform grid: sqrt(-dt) is a constant factor
    b = StepBatch(advantages=torch.tensor([1.0, -2.0]), sigmas=sigmas, std_devs=std, num_train_steps=9)
    torch.testing.assert_close(
        PaperEstimator().estimate(b), NoiseWeightedEstimator().estimate(b), rtol=1e-5, atol=1e-6
    )


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 5),
    st.integers(1, 8),
    st.lists(st.floats(-5, 5, allow_nan=False), min_size=45, max_size=45),
)
def test_tweedie_gains_telescope(n, t, flat):
    values = torch.tensor(flat[: n * (t + 1)], dtype=torch.float64).reshape(n, t + 1)
    sigmas, std = _schedule(num_steps=t)
    b = StepBatch(advantages=torch.zeros(n), sigmas=sigmas, std_devs=std, num_train_steps=t, values=values)
    gains = TweedieTDEstimator().gains(b)
    assert gains.shape == (n, t)
    torch.testing.assert_close(gains.sum(dim=1), values[:, t] - values[:, 0], rtol=1e-12, atol=1e-12)


def test_tweedie_estimate_normalises_per_group_and_step():
    b = _batch(n=6, k=4)
    got = TweedieTDEstimator().estimate(b).double()
    g = (b.values[:, 1:] - b.values[:, :-1]).double().numpy()[:, :4]
    expected = np.empty_like(g)
    for grp in (0, 1):
        rows = slice(3 * grp, 3 * grp + 3)
        expected[rows] = (g[rows] - g[rows].mean(axis=0)) / (g[rows].std(axis=0) + 1e-4)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)
    whole = TweedieTDEstimator().estimate(_batch(n=6, k=4, groups=False)).double().numpy()
    np.testing.assert_allclose(whole, (g - g.mean(axis=0)) / (g.std(axis=0) + 1e-4), rtol=1e-5, atol=1e-5)


def test_mixed_is_noise_weighted_plus_lambda_tweedie():
    b = _batch(k=9)
    got = MixedEstimator(lam=0.3).estimate(b)
    expected = NoiseWeightedEstimator().estimate(b) + 0.3 * TweedieTDEstimator().estimate(b)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_estimators_needing_values_say_so_and_fail_without_them():
    assert {name: cls.needs_values for name, cls in STEP_ESTIMATORS.items()} == {
        "trajectory": False,
        "noise_weighted": False,
        "paper": False,
        "tweedie_td": True,
        "mixed": True,
    }
    b = _batch(with_values=False)
    for name in ("tweedie_td", "mixed"):
        with pytest.raises(ValueError, match="batch.values"):
            make_step_estimator(name).estimate(b)


def test_every_estimator_returns_n_by_k_in_the_advantage_dtype():
    b = _batch(n=6, k=5)
    for name in STEP_ESTIMATORS:
        out = make_step_estimator(name).estimate(b)
        assert out.shape == (6, 5) and out.dtype == torch.float32, name
        assert torch.all(torch.isfinite(out)), name


def test_make_step_estimator_errors():
    with pytest.raises(ValueError, match="'credit'.*trajectory, noise_weighted, paper, tweedie_td, mixed"):
        make_step_estimator("credit")
    with pytest.raises(ValueError, match="'trajectory'"):
        make_step_estimator("trajectory", eta=1.0)
    assert make_step_estimator("paper", eta=2.0).eta == 2.0
    assert make_step_estimator("mixed", lam=0.1).lam == 0.1
    with pytest.raises(ValueError, match="eta"):
        PaperEstimator(eta=-1.0)


def test_step_batch_validation_names_the_field():
    sigmas, std = _schedule()
    with pytest.raises(ValueError, match=r"std_devs must be \[T\] = \[10\]"):
        StepBatch(advantages=torch.ones(2), sigmas=sigmas, std_devs=std[:9], num_train_steps=9)
    with pytest.raises(ValueError, match=r"num_train_steps must be an integer in \[1, 10\], got 11"):
        StepBatch(advantages=torch.ones(2), sigmas=sigmas, std_devs=std, num_train_steps=11)
    with pytest.raises(ValueError, match="values must be"):
        StepBatch(advantages=torch.ones(2), sigmas=sigmas, std_devs=std, num_train_steps=9, values=torch.ones(2, 10))
    with pytest.raises(ValueError, match="sigmas must be strictly decreasing"):
        StepBatch(advantages=torch.ones(2), sigmas=sigmas.flip(0), std_devs=std, num_train_steps=9)
    zero = StepBatch(advantages=torch.ones(2), sigmas=sigmas, std_devs=torch.zeros(10), num_train_steps=9)
    with pytest.raises(ValueError, match="no noise"):
        NoiseWeightedEstimator().estimate(zero)
