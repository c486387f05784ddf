"""data_seed: the epochs' prompt draws follow it, the noise follows seed, so runs with one data seed
and different seeds see the same prompts in the same order and differ only in their noise."""

import numpy as np
import torch
from helpers import tiny_config

from superflow.timing import Timer
from superflow.train import Trainer


def _draws_and_starts(tiny_sd3_dir, out, epochs=3, **overrides):
    trainer = Trainer(tiny_config(tiny_sd3_dir, out, **overrides), progress=False)
    draws = [trainer.plan_epoch(epoch).prompt_indices.tolist() for epoch in range(epochs)]
    traj, _, _ = trainer.sample_epoch(0, trainer.plan_epoch(0), Timer())
    return draws, traj.states[:, 0]


def test_one_data_seed_fixes_the_prompts_and_leaves_the_noise_to_the_seed(tiny_sd3_dir, tmp_path):
    fixed_0, starts_0 = _draws_and_starts(tiny_sd3_dir, tmp_path / "a", seed="0", data_seed="5")
    fixed_1, starts_1 = _draws_and_starts(tiny_sd3_dir, tmp_path / "b", seed="1", data_seed="5")
    assert fixed_0 == fixed_1
    assert not torch.equal(starts_0, starts_1)
    own_5, _ = _draws_and_starts(tiny_sd3_dir, tmp_path / "c", seed="5")
    assert own_5 == fixed_0  # data_seed N draws what seed N draws by default


def test_without_a_data_seed_the_seed_draws_the_prompts(tiny_sd3_dir, tmp_path):
    # 8 prompts, 3 an epoch: over 3 epochs two seeds agreeing everywhere would be a 1 in 336^3 chance
    seed_0, _ = _draws_and_starts(tiny_sd3_dir, tmp_path / "a", seed="0")
    seed_1, _ = _draws_and_starts(tiny_sd3_dir, tmp_path / "b", seed="1")
    assert seed_0 != seed_1
    assert all(len(set(epoch)) == 3 for epoch in seed_0)
    assert np.unique(np.concatenate(seed_0)).size > 3  # the epochs draw afresh
