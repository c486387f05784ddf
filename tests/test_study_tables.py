"""The efficiency table's intervals: a percentile bootstrap of a ratio of means, checked on a case whose
bootstrap distribution can be enumerated, on degenerate cases, and for coverage."""

import math

import numpy as np
import pandas as pd

from superflow.reporting.study_tables import bootstrap_ratio_interval, efficiency_table


def test_interval_equals_the_enumerated_bootstrap_distribution():
    # The mean of 3 draws from {1, 2, 3} is 1 or 3 with probability 1/27 = 3.7% each, more than the
    # 2.5% in each tail, so the exact 95% percentile interval of mean / 2 is [0.5, 1.5].
    assert bootstrap_ratio_interval([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == (0.5, 1.5)


def test_interval_of_a_narrower_level_on_the_same_case():
    # 80%: the 10% quantile of the 27-outcome distribution is 4/3 (P(mean <= 4/3) = 4/27 = 14.8%).
    low, high = bootstrap_ratio_interval([1.0, 2.0, 3.0], [2.0, 2.0, 2.0], level=0.8)
    assert math.isclose(low, (4 / 3) / 2) and math.isclose(high, (8 / 3) / 2)


def test_degenerate_and_empty_cases():
    assert bootstrap_ratio_interval([3.0, 3.0], [6.0]) == (0.5, 0.5)
    assert all(math.isnan(v) for v in bootstrap_ratio_interval([], [1.0]))
    assert all(math.isnan(v) for v in bootstrap_ratio_interval([1.0], []))


def test_interval_covers_the_true_ratio_about_as_often_as_it_says():
    rng = np.random.default_rng(0)
    hits = 0
    trials = 300
    for trial in range(trials):
        x, y = rng.normal(2.0, 0.3, size=20), rng.normal(1.0, 0.3, size=20)
        low, high = bootstrap_ratio_interval(x, y, resamples=2000, seed=trial)
        hits += low <= 2.0 <= high
    assert 0.88 <= hits / trials <= 0.99


def test_efficiency_table_carries_ratio_intervals_around_the_ratio():
    costs = pd.DataFrame(
        [
            {
                "task": "t",
                "method": m,
                "seed": s,
                "target": 0.5,
                "reached": True,
                "steps": st,
                "images": 8 * st,
                "reward_calls": 8 * st,
                "train_seconds": 10.0 * st,
            }
            for m, steps in (("flowgrpo", (10, 12, 14)), ("superflow", (5, 6, 10)))
            for s, st in enumerate(steps)
        ]
    )
    table = efficiency_table(costs, ["flowgrpo", "superflow"]).set_index("method")
    for column in ("steps", "images", "reward_calls", "train_seconds"):
        ref = table.loc["flowgrpo"]
        assert ref[f"{column}_ratio"] == 1.0 and ref[f"{column}_ratio_low"] < 1.0 < ref[f"{column}_ratio_high"]
        row = table.loc["superflow"]
        assert math.isclose(row[f"{column}_ratio"], 7 / 12)
        assert row[f"{column}_ratio_low"] <= row[f"{column}_ratio"] <= row[f"{column}_ratio_high"]
