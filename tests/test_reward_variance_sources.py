"""benchmarks/reward_variance_sources.py: what each noise placement leaves random, on a tiny MiniFlow."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from superflow.config import load_config
from superflow.models import build_policy
from superflow.models.mini import MiniFlowConfig, MiniFlowNet, PromptTokenizer, save_miniflow
from superflow.rewards import get_reward

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import reward_variance_sources  # noqa: E402

PROMPTS = ["a photo of a red circle", "a photo of two blue squares", 'a sign that says "K7"']


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Config overrides for a tiny untrained MiniFlow on the colour reward (4 steps, the first 2 trained)."""
    folder = tmp_path_factory.mktemp("variance")
    torch.manual_seed(0)
    net = MiniFlowNet(MiniFlowConfig(channels=(16, 32, 32), vocab=PromptTokenizer.build(PROMPTS, "K7").vocab))
    save_miniflow(net, folder / "m")
    prompts = folder / "p.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    return [
        f"model.path={folder / 'm'}",
        "model.dtype=float32",
        f"data.train_prompts={prompts}",
        f"data.test_prompts={prompts}",
        "reward.name=colour_target",
        "reward.kwargs={}",
        "sample.num_steps=4",
        "train.timestep_fraction=0.5",
    ]


@pytest.fixture(scope="module")
def tiny_parts(tiny_run):
    cfg = load_config("preset:mini_geneval", tiny_run)
    return cfg, build_policy(cfg), get_reward(cfg.reward.name, **cfg.reward.kwargs)


def _variances(tiny_parts, steps, shared):
    cfg, policy, reward = tiny_parts
    metadata = [{}] * len(PROMPTS)
    return reward_variance_sources.within_group_variances(policy, reward, cfg, PROMPTS, metadata, 4, steps, shared)


def test_without_any_noise_a_shared_start_gives_identical_images(tiny_parts):
    variances, _ = _variances(tiny_parts, "none", True)
    assert np.all(variances == 0)
    own_starts, _ = _variances(tiny_parts, "none", False)
    assert np.all(own_starts > 0)


def test_each_noise_placement_leaves_the_group_some_spread_and_repeats(tiny_parts):
    for steps in ("all", "trained", "untrained"):
        first, means = _variances(tiny_parts, steps, True)
        again, means_again = _variances(tiny_parts, steps, True)
        assert np.all(first > 0), steps
        np.testing.assert_array_equal(first, again)
        np.testing.assert_array_equal(means, means_again)


def test_the_command_writes_one_row_per_placement(tiny_run, tmp_path):
    overrides = tiny_run
    args = ["--tasks", "geneval", "--prompts", "2", "--group-size", "3", "--output-dir", str(tmp_path)]
    assert reward_variance_sources.main(args + [a for o in overrides for a in ("--set", o)]) == 0
    table = pd.read_csv(tmp_path / "reward_variance_sources.csv")
    assert list(table["placement"]) == list(reward_variance_sources.PLACEMENTS)
    assert table.loc[0, "share_of_training_var"] == pytest.approx(1.0)
    assert (tmp_path / "reward_variance_sources.md").read_text().count("| geneval |") == 5


def test_each_placement_makes_its_steps_stochastic(tiny_parts, monkeypatch):
    """4 steps, timestep_fraction 0.5: steps 0-1 are the trained ones, 2-3 the rest."""
    seen = []
    real = reward_variance_sources.sample_trajectories

    def recording(*args, **kwargs):
        seen.append((kwargs["sde_window"], kwargs["noise_level"] > 0, kwargs["start_generators"] is not None))
        return real(*args, **kwargs)

    monkeypatch.setattr(reward_variance_sources, "sample_trajectories", recording)
    expected = {
        "training": (None, True, False),
        "shared_start": (None, True, True),
        "trained_steps_only": ((0, 2), True, True),
        "untrained_steps": ((2, 2), True, True),
        "start_only": (None, False, False),
    }
    for name, (steps, shared) in reward_variance_sources.PLACEMENTS.items():
        seen.clear()
        _variances(tiny_parts, steps, shared)
        assert set(seen) == {expected[name]}, name


@pytest.mark.parametrize("method", ["nft", "flowgrpo_fast"])
def test_other_rollouts_than_flowgrpo_s_are_refused(tiny_run, tmp_path, method):
    overrides = tiny_run
    with pytest.raises(SystemExit, match="Flow-GRPO-style rollouts"):
        reward_variance_sources.main(
            ["--tasks", "geneval", "--output-dir", str(tmp_path), "--set", f"method={method}"]
            + [a for o in overrides for a in ("--set", o)]
        )
