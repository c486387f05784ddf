"""sample.same_initial_noise: every image of a group starts from one latent, and only the SDE's
noise tells the group's images apart."""

import pytest
import torch
from helpers import tiny_config

from superflow.config import ConfigError, load_config
from superflow.seeding import group_noise_generators
from superflow.timing import Timer
from superflow.train import Trainer


def test_items_of_a_group_draw_the_same_numbers_and_groups_differ():
    draws = [torch.randn(5, generator=g) for g in group_noise_generators(0, 1, 8, [0, 0, 1, 1, 1, 2])]
    assert torch.equal(draws[0], draws[1]) and torch.equal(draws[2], draws[4])
    assert not torch.equal(draws[0], draws[2]) and not torch.equal(draws[2], draws[5])
    again = [torch.randn(5, generator=g) for g in group_noise_generators(0, 1, 8, [2])]
    assert torch.equal(again[0], draws[5])  # a group's start does not depend on the groups before it
    other_epoch = [torch.randn(5, generator=g) for g in group_noise_generators(0, 2, 8, [0])]
    assert not torch.equal(other_epoch[0], draws[0])


def _epoch_starts(tiny_sd3_dir, out, **overrides):
    # batch 6 with groups of 4: a group is split across two sampling batches
    cfg = tiny_config(tiny_sd3_dir, out, **overrides)
    trainer = Trainer(cfg, progress=False)
    plan = trainer.plan_epoch(0)
    traj, _, _ = trainer.sample_epoch(0, plan, Timer())
    return plan.group_ids, traj.states[:, 0], traj.final


def test_a_group_shares_its_start_across_sampling_batches(tiny_sd3_dir, tmp_path):
    groups, starts, finals = _epoch_starts(tiny_sd3_dir, tmp_path / "shared", **{"sample.same_initial_noise": "true"})
    assert len(set(groups.tolist())) == 3 and len(groups) == 12
    for g in set(groups.tolist()):
        members = (groups == g).nonzero()[0]
        for i in members[1:]:
            assert torch.equal(starts[i], starts[members[0]])
            assert not torch.equal(finals[i], finals[members[0]])  # the SDE's noise still differs
    assert not torch.equal(starts[groups == 0][0], starts[groups == 1][0])
    _, default_starts, _ = _epoch_starts(tiny_sd3_dir, tmp_path / "default")
    assert not torch.equal(default_starts[0], default_starts[1])  # off by default: one start per image


def test_a_shared_start_needs_stochastic_sampling():
    """From one start the ODE draws one image: every group would tie."""
    with pytest.raises(ConfigError, match="'sample.same_initial_noise' needs stochastic sampling"):
        load_config("preset:mini_geneval", ["method=nft", "sample.same_initial_noise=true"])
    assert load_config("preset:mini_geneval", ["method=awm", "sample.same_initial_noise=true"])
