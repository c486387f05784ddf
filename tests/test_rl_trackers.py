"""Per-prompt trackers: hand numbers, discounted closed forms, state round trips, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from superflow.rl import BetaTracker, GaussianTracker, drift_adaptive_rho, make_tracker
from superflow.rl.trackers import MIN_RHO


# ----------------------------------------------------------------------------- Beta tracker
def test_beta_update_matches_hand_numbers_with_forgetting():
    t = BetaTracker(rho=0.5)
    t.update(["a", "a", "b", "a"], np.array([1.0, 0.0, 0.25, 1.0]))
    # a: alpha = 0.5*0.5 + 2 = 2.25, beta = 0.5*0.5 + 1 = 1.25; b: 0.25 + 0.25 = 0.5, 0.25 + 0.75 = 1.0
    assert t.state_dict()["records"] == {"a": [2.25, 1.25], "b": [0.5, 1.0]}
    t.update(["a"], np.array([0.5]))
    # forgetting applied once for the epoch: alpha = 0.5*2.25 + 0.5, beta = 0.5*1.25 + 0.5; b untouched
    assert t.state_dict()["records"] == {"a": [1.625, 1.125], "b": [0.5, 1.0]}
    p = 1.625 / 2.75
    np.testing.assert_allclose(t.value(["a", "b"]), [p, 0.5 / 1.5])
    np.testing.assert_allclose(t.uncertainty(["a"]), [math.sqrt(p * (1 - p))])


def test_beta_forgetting_applied_once_per_epoch_not_per_sample():
    many, one = BetaTracker(rho=0.5), BetaTracker(rho=0.5)
    many.update(["a"] * 4, np.ones(4))
    one.update(["a"], np.array([4.0 / 4]))
    # four samples in one epoch: alpha = 0.25 + 4, not 0.5^4 * 0.5 + ...
    assert many.state_dict()["records"]["a"] == [4.25, 0.25]
    assert one.state_dict()["records"]["a"] == [1.25, 0.25]


def test_beta_prior_for_unseen_and_custom_prior():
    t = BetaTracker()
    np.testing.assert_allclose(t.value(["x"]), [0.5])
    np.testing.assert_allclose(t.uncertainty(["x"]), [0.5])
    t2 = BetaTracker(prior_alpha=1.0, prior_beta=3.0)
    np.testing.assert_allclose(t2.value(["x"]), [0.25])
    np.testing.assert_allclose(t2.uncertainty(["x"]), [math.sqrt(0.25 * 0.75)])
    t2.update(["x"], np.array([1.0]))
    assert t2.state_dict()["records"]["x"] == [2.0, 3.0]  # the prior is where a new key starts


def test_rho_override_number_and_mapping():
    t = BetaTracker(rho=1.0)
    t.update(["a", "b"], np.array([1.0, 1.0]))  # a: [1.5, .5], b: [1.5, .5]
    t.update(["a", "b"], np.array([0.0, 0.0]), rho={"a": 0.5})  # b falls back to the constant rho 1
    rec = t.state_dict()["records"]
    assert rec["a"] == [0.75, 1.25]
    assert rec["b"] == [1.5, 1.5]
    t.update(["b"], np.array([1.0]), rho=0.5)
    assert t.state_dict()["records"]["b"] == [1.75, 0.75]


def test_seen_len_and_keys_untouched():
    t = BetaTracker()
    assert len(t) == 0
    t.update(["a", "b", "a"], np.array([1.0, 0.0, 1.0]))
    assert len(t) == 2
    assert t.seen(["a", "c", "b"]).tolist() == [True, False, True]


@pytest.mark.parametrize("bad, shown", [(1.5, "1.5"), (-0.1, "-0.1"), (float("nan"), "nan")])
def test_beta_rejects_rewards_outside_unit_interval(bad, shown):
    t = BetaTracker()
    with pytest.raises(ValueError, match="rewards") as err:
        t.update(["a", "b"], np.array([0.5, bad]))
    assert shown in str(err.value)
    assert len(t) == 0  # a failed update leaves no half-state


def test_tracker_errors_name_the_culprit():
    with pytest.raises(ValueError, match="rho"):
        BetaTracker(rho=0.0)
    with pytest.raises(ValueError, match="rho"):
        GaussianTracker(rho=1.5)
    with pytest.raises(ValueError, match="prior_alpha"):
        BetaTracker(prior_alpha=0.0)
    t = BetaTracker()
    with pytest.raises(ValueError, match="same length"):
        t.update(["a"], np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"rho\['b'\]"):
        t.update(["a", "b"], np.array([0.5, 0.5]), rho={"b": 2.0})
    assert len(t) == 0
    with pytest.raises(ValueError, match="keys"):
        t.update("ab", np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="keys"):
        t.value([1, 2])


# ----------------------------------------------------------------------------- Gaussian tracker
def _discounted_stats(epochs: list[tuple[np.ndarray, float]]) -> tuple[float, float]:
    """Weighted mean/std where a reward from epoch e weighs prod of the rhos applied after it."""
    rewards, weights = [], []
    for e, (r, _) in enumerate(epochs):
        later = np.prod([rho for _, rho in epochs[e + 1 :]]) if e + 1 < len(epochs) else 1.0
        rewards.append(r)
        weights.append(np.full(len(r), later))
    r = np.concatenate(rewards)
    w = np.concatenate(weights)
    mean = np.average(r, weights=w)
    var = np.average((r - mean) ** 2, weights=w)
    return float(mean), float(np.sqrt(var))


def test_gaussian_matches_numpy_discounted_formulas():
    rng = np.random.default_rng(0)
    epochs = [(rng.normal(20, 2, size=n), rho) for n, rho in [(5, 0.9), (3, 0.5), (8, 0.7), (2, 1.0)]]
    t = GaussianTracker(rho=0.3)  # overridden below every time
    for r, rho in epochs:
        t.update(["p"] * len(r), r, rho=rho)
    mean, std = _discounted_stats(epochs)
    np.testing.assert_allclose(t.value(["p"]), [mean], rtol=1e-12)
    np.testing.assert_allclose(t.uncertainty(["p"]), [std], rtol=1e-9)
    w, s1, s2 = t.state_dict()["records"]["p"]
    # The first epoch's rho multiplies the empty start, so it has no effect.
    assert w == pytest.approx(((5 * 0.5 + 3) * 0.7 + 8) * 1.0 + 2)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=6),
            st.floats(0.05, 1.0),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_gaussian_property_against_closed_form(epochs):
    t = GaussianTracker()
    arrays = [(np.asarray(r, dtype=np.float64), rho) for r, rho in epochs]
    for r, rho in arrays:
        t.update(["k"] * len(r), r, rho=rho)
    mean, std = _discounted_stats(arrays)
    np.testing.assert_allclose(t.value(["k"]), [mean], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(t.uncertainty(["k"]), [std], rtol=1e-6, atol=1e-5)


def test_gaussian_unseen_uses_pooled_statistics():
    t = GaussianTracker()
    np.testing.assert_allclose(t.value(["new"]), [0.0])
    np.testing.assert_allclose(t.uncertainty(["new"]), [1.0])
    t.update(["a", "a", "b", "b", "b"], np.array([1.0, 3.0, 10.0, 10.0, 16.0]))
    var_a, var_b = np.var([1.0, 3.0]), np.var([10.0, 10.0, 16.0])
    np.testing.assert_allclose(t.value(["a", "b", "new"]), [2.0, 12.0, 7.0])
    np.testing.assert_allclose(
        t.uncertainty(["a", "b", "new"]), [np.sqrt(var_a), np.sqrt(var_b), np.sqrt((var_a + var_b) / 2)]
    )
    assert t.seen(["a", "new"]).tolist() == [True, False]


def test_unseen_prompt_borrows_its_tags_pooled_records():
    groups = {"a1": "easy", "a2": "easy", "a3": "easy", "b1": "hard", "b2": "hard", "c1": "other"}
    t = BetaTracker(rho=1.0, groups=groups)
    t.update(["a1"] * 4 + ["a2"] * 4 + ["b1"] * 4, np.array([1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 0, 0.0]))
    # Records (prior 0.5, 0.5): a1 (3.5, 1.5) p=0.7, a2 (4.5, 0.5) p=0.9, b1 (1.5, 3.5) p=0.3.
    p_a1, p_a2, p_b1 = 0.7, 0.9, 0.3
    rms_easy = math.sqrt((p_a1 * (1 - p_a1) + p_a2 * (1 - p_a2)) / 2)
    np.testing.assert_allclose(t.value(["a3", "b2", "c1"]), [(p_a1 + p_a2) / 2, p_b1, 0.5])
    np.testing.assert_allclose(
        t.uncertainty(["a3", "b2", "c1", "a1"]),
        [rms_easy, math.sqrt(p_b1 * (1 - p_b1)), 0.5, math.sqrt(p_a1 * (1 - p_a1))],
    )
    # Without groups every unseen prompt ties at the prior, whatever was seen.
    flat = BetaTracker(rho=1.0)
    flat.update(["a1"] * 4, np.array([1, 1, 1, 0.0]))
    np.testing.assert_allclose(flat.uncertainty(["a3", "b2"]), [0.5, 0.5])
    # A key outside the mapping pools with the other untagged prompts; groups are not checkpoint state.
    g = GaussianTracker(groups={"x": "t"})
    g.update(["x", "x", "y", "y"], np.array([0.0, 2.0, 10.0, 14.0]))
    np.testing.assert_allclose(g.value(["x2", "z"]), [12.0, 12.0])
    np.testing.assert_allclose(GaussianTracker(groups={"x2": "t"}).value(["x2"]), [0.0])
    assert set(g.state_dict()) == {"kind", "rho", "records"}


def test_unseen_prior_from_config_uses_the_prompt_tags():
    from types import SimpleNamespace

    from superflow.rl.trackers import make_tracker_from_config

    algorithm = SimpleNamespace(tracker="auto", rho=1.0, unseen_prior="tag")
    t = make_tracker_from_config(algorithm, bounded_unit=True, tags={"p": "count", "q": "count"})
    t.update(["p", "p"], np.array([1.0, 1.0]))
    np.testing.assert_allclose(t.value(["q"]), [2.5 / 3])
    fixed = make_tracker_from_config(SimpleNamespace(tracker="auto", rho=1.0, unseen_prior="fixed"), True, {"q": "c"})
    assert fixed.groups is None
    with pytest.raises(ValueError, match="unknown unseen prior 'tags'; known: fixed, tag"):
        make_tracker_from_config(SimpleNamespace(tracker="auto", rho=1.0, unseen_prior="tags"), True)


def test_gaussian_accepts_unbounded_and_torch_rewards():
    t = GaussianTracker()
    t.update(["a", "a"], torch.tensor([25.0, -3.0]))
    np.testing.assert_allclose(t.value(["a"]), [11.0])
    with pytest.raises(ValueError, match="rewards must be finite"):
        t.update(["a"], np.array([np.inf]))


# ----------------------------------------------------------------------------- state, factory, rho
@pytest.mark.parametrize("kind", ["beta", "gaussian"])
def test_state_dict_round_trip_through_json(kind):
    rng = np.random.default_rng(1)
    t = make_tracker(kind, rho=0.8)
    keys = [f"prompt {i % 4}" for i in range(12)]
    t.update(keys, rng.uniform(0, 1, size=12))
    state = json.loads(json.dumps(t.state_dict()))
    u = make_tracker(kind, rho=0.8)
    u.load_state_dict(state)
    probe = ["prompt 0", "prompt 3", "unseen"]
    np.testing.assert_array_equal(u.value(probe), t.value(probe))
    np.testing.assert_array_equal(u.uncertainty(probe), t.uncertainty(probe))
    np.testing.assert_array_equal(u.seen(probe), t.seen(probe))
    assert len(u) == len(t) == 4
    more = rng.uniform(0, 1, size=5)
    t.update(keys[:5], more)
    u.update(keys[:5], more)
    assert u.state_dict() == t.state_dict()


def test_load_state_dict_rejects_other_kind_and_bad_records():
    b = BetaTracker()
    b.update(["a"], np.array([1.0]))
    with pytest.raises(ValueError, match="'beta'.*'gaussian'"):
        GaussianTracker().load_state_dict(b.state_dict())
    state = b.state_dict()
    state["records"]["a"] = [1.0]
    with pytest.raises(ValueError, match=r"records.*'a'"):
        BetaTracker().load_state_dict(state)


def test_make_tracker_unknown_kind_lists_known():
    with pytest.raises(ValueError, match="'poisson'.*beta, gaussian"):
        make_tracker("poisson")
    assert isinstance(make_tracker("beta", rho=0.9), BetaTracker)
    assert isinstance(make_tracker("gaussian"), GaussianTracker)


def test_drift_adaptive_rho():
    assert drift_adaptive_rho(np.zeros(3), np.zeros(3), 0.1) == 1.0
    assert drift_adaptive_rho(np.zeros(2), np.array([0.1, -0.1]), 0.1) == pytest.approx(0.5)
    assert drift_adaptive_rho(torch.zeros(4), torch.full((4,), 0.3), 0.1) == pytest.approx(0.125)
    assert drift_adaptive_rho(np.zeros(1), np.array([1e6]), 0.1) == MIN_RHO
    with pytest.raises(ValueError, match="half_life"):
        drift_adaptive_rho(np.zeros(1), np.zeros(1), 0.0)
    with pytest.raises(ValueError, match="same size"):
        drift_adaptive_rho(np.zeros(1), np.zeros(2), 1.0)
