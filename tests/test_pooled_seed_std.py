"""benchmarks/pooled_seed_std.py: the pooled seed std and the chance a 3-seed run clears the bar."""

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import pooled_seed_std  # noqa: E402


def test_the_pooled_std_weights_each_arms_variance_by_its_degrees_of_freedom():
    # 2 dof at std 1 and 4 dof at std 2: sqrt((2 * 1 + 4 * 4) / 6) = sqrt(3)
    assert pooled_seed_std.pooled_std([1.0, 2.0], [3, 5]) == pytest.approx(math.sqrt(3.0))
    assert pooled_seed_std.pooled_std([0.5, 0.5, 0.5], [3, 3, 3]) == pytest.approx(0.5)
    assert math.isnan(pooled_seed_std.pooled_std([0.1], [1]))


def test_with_no_true_gain_the_pass_probability_is_the_central_t_tail():
    # mean / (s / sqrt(3)) is t with 2 dof; passing means it exceeds 3 sqrt(3)
    assert pooled_seed_std.pass_probability(0.0) == pytest.approx(float(t.sf(3 * math.sqrt(3), 2)))
    assert pooled_seed_std.pass_probability(0.0) == pytest.approx(0.0175, abs=5e-4)


def test_the_pass_probability_matches_a_simulation_and_grows_with_the_gain():
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(200_000, 3))
    for ratio in (1.5, 3.0):
        seeds = draws + ratio
        simulated = float(np.mean(seeds.mean(axis=1) > 3 * seeds.std(axis=1, ddof=1)))
        assert pooled_seed_std.pass_probability(ratio) == pytest.approx(simulated, abs=0.005)
    chances = [pooled_seed_std.pass_probability(r) for r in (0, 1, 2, 4, 8)]
    assert chances == sorted(chances) and chances[-1] > 0.99


def test_the_table_pools_per_task_and_metric_and_leaves_the_control_out(tmp_path):
    rows = [
        ("geneval", "test_reward", "flowgrpo", 0.03, 0.01, 3.0),
        ("geneval", "test_reward", "lr_low", 0.01, 0.03, 0.333),
        ("geneval", "test_reward", "shuffled_reward", -0.02, 0.5, -0.04),
        ("ocr", "test_reward", "flowgrpo", 0.02, 0.02, 1.0),
    ]
    frame = pd.DataFrame(rows, columns=["task", "metric", "arm", "gain", "std", "gain_over_std"])
    frame = frame.assign(seeds=3, base=0.4)
    path = tmp_path / "summary.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "pooled.md"
    assert pooled_seed_std.main([str(path), "--output", str(out)]) == 0
    table = pd.read_csv(out.with_suffix(".csv"))
    assert "shuffled_reward" not in set(table["arm"])
    geneval = table[table["task"] == "geneval"].set_index("arm")
    pooled = math.sqrt((0.01**2 + 0.03**2) / 2)
    assert geneval["pooled_std"].tolist() == pytest.approx([pooled, pooled])
    assert geneval.loc["flowgrpo", "gain_over_pooled_std"] == pytest.approx(0.03 / pooled)
    assert geneval.loc["flowgrpo", "pooled_dof"] == 4
    assert geneval.loc["flowgrpo", "pass_probability"] == pytest.approx(
        pooled_seed_std.pass_probability(0.03 / pooled)
    )
    assert table[table["task"] == "ocr"]["gain_over_pooled_std"].item() == pytest.approx(1.0)
    assert "Command: `python benchmarks/pooled_seed_std.py" in out.read_text()


def test_a_file_that_is_not_a_summary_is_named(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    pd.DataFrame({"task": ["geneval"], "seed": [0]}).to_csv(path, index=False)
    with pytest.raises(SystemExit):
        pooled_seed_std.main([str(path)])
    assert "runs.csv" in capsys.readouterr().err


def _summary(tmp_path, rows, name="summary.csv"):
    columns = ["task", "metric", "arm", "base", "gain", "std", "gain_over_std", "seeds"]
    path = tmp_path / name
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def test_excluded_arms_and_arms_without_a_variance_stay_out_of_the_pool(tmp_path):
    path = _summary(
        tmp_path,
        [
            ("ocr", "test_reward", "a", 0.7, 0.02, 0.01, 2.0, 3),
            ("ocr", "test_reward", "b", 0.7, 0.01, 0.03, 0.3, 5),
            ("ocr", "test_reward", "collapsed", 0.7, -0.2, 0.3, -0.7, 3),
            ("ocr", "test_reward", "one_seed", 0.7, 0.05, float("nan"), float("nan"), 1),
        ],
    )
    out = tmp_path / "pooled.md"
    assert pooled_seed_std.main([str(path), "--exclude", "collapsed", "--output", str(out)]) == 0
    table = pd.read_csv(out.with_suffix(".csv")).set_index("arm")
    assert set(table.index) == {"a", "b"}
    # 2 dof at 0.01 and 4 dof at 0.03: sqrt((2e-4 + 36e-4) / 6)
    assert table["pooled_std"].tolist() == pytest.approx([math.sqrt(38e-4 / 6)] * 2)
    assert table.loc["b", "pooled_dof"] == 6


def test_summaries_that_cannot_be_pooled_are_refused_by_name(tmp_path, capsys):
    test = _summary(tmp_path, [("ocr", "test_reward", "a", 0.78, 0.02, 0.01, 2.0, 3)], "test.csv")
    validation = _summary(tmp_path, [("ocr", "test_reward", "b", 0.81, 0.02, 0.01, 2.0, 3)], "validation.csv")
    for argv, message in [
        ([str(test), str(validation)], "different bases (0.7800, 0.8100)"),
        ([str(test), str(test)], "arm(s) a appear in more than one summary"),
        ([str(test), "--exclude", "tf08-ep8"], "--exclude tf08-ep8: no such arm"),
        ([str(test), "--exclude", "a"], "no arm left to pool"),
    ]:
        with pytest.raises(SystemExit) as stopped:
            pooled_seed_std.main(argv)
        assert stopped.value.code == 2
        assert message in capsys.readouterr().err
