"""DiffusionNFT (method=nft, superflow_nft) and AWM (method=awm): the losses and their gradients
against closed forms, the r mapping, the copy's schedule, the timestep draws, and end-to-end runs on
the tiny SD3 (parameters move, the demo reward rises, a resume gives the uninterrupted weights)."""

import numpy as np
import pytest
import torch
from helpers import tiny_config

from superflow.config import ConfigError, load_config
from superflow.rl import EMA
from superflow.rl.nft import (
    awm_loss,
    generalized_huber,
    nft_loss,
    nft_reward_weights,
    old_policy_decay,
    shuffled_timestep_indices,
    stratified_timestep_indices,
)
from superflow.train import Trainer


def test_r_maps_clipped_advantages_linearly_onto_zero_one():
    a = torch.tensor([-9.0, -5.0, -2.5, 0.0, 1.0, 5.0, 7.0])
    assert torch.allclose(nft_reward_weights(a), torch.tensor([0.0, 0.0, 0.25, 0.5, 0.6, 1.0, 1.0]))
    assert torch.allclose(nft_reward_weights(a, adv_clip=1.0), torch.tensor([0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="adv_clip"):
        nft_reward_weights(a, adv_clip=0.0)


def _batch(seed=0, shape=(3, 2, 4, 4)):
    g = torch.Generator().manual_seed(seed)
    x0, eps, v_old = (torch.randn(shape, generator=g) for _ in range(3))
    v = torch.randn(shape, generator=g).requires_grad_(True)
    t = torch.tensor([0.9, 0.5, 0.2])
    x_t = (1 - t.view(-1, 1, 1, 1)) * x0 + t.view(-1, 1, 1, 1) * eps
    r = torch.tensor([1.0, 0.3, 0.5])
    return v, v_old, x0, x_t, t, r


@pytest.mark.parametrize("b", [1.0, 0.1])
def test_nft_loss_and_gradient_equal_the_closed_form(b):
    v, v_old, x0, x_t, t, r = _batch()
    loss = nft_loss(v, v_old, x0, x_t, t, r, nft_beta=b, adv_clip=5.0)
    loss.backward()
    tt = t.view(-1, 1, 1, 1)
    e_pos = x_t - tt * (b * v + (1 - b) * v_old) - x0  # x0_hat+ - x0
    e_neg = x_t - tt * ((1 + b) * v_old - b * v) - x0
    d = e_pos[0].numel()
    w_pos, w_neg = e_pos.abs().flatten(1).mean(1), e_neg.abs().flatten(1).mean(1)
    l_pos, l_neg = (e_pos**2).flatten(1).mean(1) / w_pos, (e_neg**2).flatten(1).mean(1) / w_neg
    expected = 5.0 * (r * l_pos + (1 - r) * l_neg).mean() / b
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # d/dv of e+ is -t b, of e- is +t b; the weights w are constants; the 1/b cancels b.
    rr, wp, wn = r.view(-1, 1, 1, 1), w_pos.view(-1, 1, 1, 1), w_neg.view(-1, 1, 1, 1)
    grad = 5.0 / 3 * (2 * tt / d) * (-rr * e_pos / wp + (1 - rr) * e_neg / wn)
    torch.testing.assert_close(v.grad, grad.detach(), rtol=1e-5, atol=1e-7)


def test_a_tied_sample_pulls_towards_the_old_velocity_and_is_still_at_it():
    v, v_old, x0, x_t, t, _ = _batch(1)
    half = torch.full((3,), 0.5)
    nft_loss(v, v_old, x0, x_t, t, half).backward()
    step = v.detach() - 0.05 * v.grad
    assert (step - v_old).norm() < (v.detach() - v_old).norm()
    at_old = v_old.clone().requires_grad_(True)
    nft_loss(at_old, v_old, x0, x_t, t, half).backward()
    assert at_old.grad.abs().max() < 1e-6


def test_a_good_sample_pulls_towards_its_own_clean_image():
    """r = 1 at b = 1 is flow matching on the sample: the step lowers ||x0_hat - x0||."""
    v, v_old, x0, x_t, t, _ = _batch(2)
    one = torch.ones(3)
    nft_loss(v, v_old, x0, x_t, t, one).backward()
    tt = t.view(-1, 1, 1, 1)
    error = lambda vel: (x_t - tt * vel - x0).norm()  # noqa: E731
    assert error(v.detach() - 0.01 * v.grad) < error(v.detach())


def test_old_weight_schedule_and_blend():
    assert [old_policy_decay(s) for s in (0, 10, 499, 500, 5000)] == [0.0, 0.01, 0.499, 0.5, 0.5]
    assert old_policy_decay(3, rate=0.1, cap=0.2) == 0.2
    with pytest.raises(ValueError):
        old_policy_decay(1, cap=1.0)
    live = [torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([4.0])]
    old = EMA(live)
    with torch.no_grad():
        live[0].copy_(torch.tensor([3.0, 6.0]))
        live[1].copy_(torch.tensor([0.0]))
    old.blend(live, 0.25)
    assert torch.allclose(old.ema_parameters[0], torch.tensor([2.5, 5.0]))
    assert torch.equal(old.ema_parameters[1], torch.tensor([4.0])), "a frozen tensor has nothing to average"


def test_shuffled_timesteps_are_distinct_and_cover_the_sampler():
    g = torch.Generator().manual_seed(0)
    draws = [shuffled_timestep_indices(10, 9, g) for _ in range(50)]
    assert all(len(set(d.tolist())) == 9 and d.max() < 10 for d in draws)
    assert len({tuple(d.tolist()) for d in draws}) == 50
    assert torch.cat(draws).bincount(minlength=10).min() > 0


def test_awm_loss_and_gradient_equal_the_closed_form():
    v, _, x0, x_t, t, _ = _batch(3)
    eps = (x_t - (1 - t.view(-1, 1, 1, 1)) * x0) / t.view(-1, 1, 1, 1)
    adv = torch.tensor([2.0, -7.0, 0.0])
    loss = awm_loss(v, eps - x0, t, adv, adv_clip=5.0, power=0.25)
    loss.backward()
    d = v[0].numel()
    m = ((v.detach() - (eps - x0)) ** 2).flatten(1).mean(1)
    a = torch.tensor([0.4, -1.0, 0.0])
    assert loss.item() == pytest.approx((a * t * ((m + 1e-10) ** 0.25 - 1e-10**0.25) / 0.25).mean().item(), rel=1e-6)
    # d/dv: A' t (m + 1e-10)^(p - 1) * 2 (v - u) / D, averaged over the batch of 3
    coef = (a * t * (m + 1e-10) ** -0.75 * 2 / d / 3).view(-1, 1, 1, 1)
    torch.testing.assert_close(v.grad, coef * (v.detach() - (eps - x0)), rtol=1e-5, atol=1e-8)
    assert v.grad[2].abs().max() == 0, "a zero advantage has no matching gradient"


def test_generalized_huber_is_the_error_at_power_one_and_concave_below():
    m = torch.tensor([0.0, 0.5, 4.0])
    torch.testing.assert_close(generalized_huber(m, 1.0), m)
    g = generalized_huber(m, 0.25)
    torch.testing.assert_close(g, 4 * (m + 1e-10) ** 0.25 - 4 * 1e-10**0.25)
    assert g[0] == 0 and g[2] / g[1] < 4.0 / 0.5  # large errors count less than in proportion
    with pytest.raises(ValueError):
        generalized_huber(m, 0.0)


def test_stratified_timesteps_take_one_from_each_stratum():
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([stratified_timestep_indices(1, 9, 4, g) for _ in range(200)])
    strata = [(1, 3), (4, 5), (6, 7), (8, 9)]  # tensor_split of 1..9 into 4
    for k, (low, high) in enumerate(strata):
        assert draws[:, k].min() == low and draws[:, k].max() == high
    with pytest.raises(ValueError):
        stratified_timestep_indices(1, 3, 4, g)


def test_nft_config_refuses_step_level_credit():
    with pytest.raises(ConfigError, match="algorithm.step_advantage"):
        load_config(None, ["method=nft", "algorithm.step_advantage=paper"])
    assert load_config(None, ["method=awm"]).train.old_decay_cap == 0.3
    assert load_config(None, ["method=nft"]).train.old_decay_cap == 0.5
    cfg = load_config(None, ["method=superflow_nft"])
    assert (cfg.algorithm.objective, cfg.algorithm.group_sizes, cfg.algorithm.step_advantage) == (
        "nft",
        "bins",
        "trajectory",
    )


NFT_RUN = {"sample.guidance_scale": 1.0, "train.updates_per_epoch": 1, "train.lr": 3e-2, "train.beta": 1e-4}


@pytest.mark.parametrize("method", ["nft", "superflow_nft", "awm"])
def test_nft_and_awm_train_the_tiny_sd3_and_move_their_copy(tiny_sd3_dir, tmp_path, method):
    cfg = tiny_config(tiny_sd3_dir, tmp_path / "run", method=method, **NFT_RUN)
    trainer = Trainer(cfg, progress=False)
    before = [p.detach().clone() for p in trainer.params]
    old_before = [p.clone() for p in trainer.objective.copy.ema_parameters]
    history = trainer.run()
    assert all(np.isfinite(m["policy_loss"]) and m["kl"] >= 0 for m in history)
    moved = sum(not torch.equal(b, p.detach()) for b, p in zip(before, trainer.params))
    assert moved > len(before) // 2
    # the old copy followed the live weights (decay min(0.001 step, 0.5) < 1)
    assert any(not torch.equal(a, b) for a, b in zip(old_before, trainer.objective.copy.ema_parameters))


@pytest.mark.parametrize("method", ["nft", "awm"])
def test_nft_resume_gives_the_uninterrupted_weights(tiny_sd3_dir, tmp_path, method):
    common = {**NFT_RUN, "num_epochs": 3, "save_every": 1}
    full = Trainer(tiny_config(tiny_sd3_dir, tmp_path / "full", method=method, **common), progress=False)
    full.run()
    first = Trainer(tiny_config(tiny_sd3_dir, tmp_path / "cut", method=method, **{**common, "num_epochs": 2}), False)
    first.run()
    resumed = Trainer(tiny_config(tiny_sd3_dir, tmp_path / "cut", method=method, **common), progress=False)
    resumed.run(resume=True)
    for a, b in zip(full.params, resumed.params, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(full.objective.copy.ema_parameters, resumed.objective.copy.ema_parameters, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("method", ["nft", "awm", "superflow_nft"])
def test_nft_raises_the_demo_reward(tiny_sd3_dir, tmp_path, method):
    """Measured on seed 0 (mean of the first three epochs -> the last three): NFT 0.5186 -> 0.5279,
    AWM 0.5190 -> 0.5262, SuperFlow + NFT 0.5185 -> 0.5280."""
    task = {
        **NFT_RUN,
        "train.nft_beta": 0.1,
        "num_epochs": 6,
        "sample.prompts_per_epoch": 8,
        "sample.group_size": 8,
        "sample.batch_size": 16,
        "train.micro_batch_size": 16,
    }
    history = Trainer(tiny_config(tiny_sd3_dir, tmp_path / "run", method=method, **task), progress=False).run()
    rewards = np.array([m["reward_mean"] for m in history])
    assert rewards[-3:].mean() > rewards[:3].mean() + 0.005, rewards


TIED_REWARD = """
def half_tied(images, prompts, metadata):
    # A rule reward: the first four colours always score 1 (their groups tie), the rest by brightness.
    tied = ("red", "blue", "green", "yellow")
    brightness = images.mean(dim=(1, 2, 3))
    return [1.0 if any(c in p for c in tied) else float(b) for p, b in zip(prompts, brightness)]
half_tied.bounds = (0, 1)
"""


@pytest.mark.parametrize("method", ["nft", "flowgrpo"])
def test_logged_trained_samples_count_what_the_method_trains_on_tied_groups(tiny_sd3_dir, tmp_path, method):
    reward = tmp_path / "tied_reward.py"
    reward.write_text(TIED_REWARD)
    rule = {"reward.name": f"{reward}:half_tied", "reward.kwargs": "{}"}
    run = {**NFT_RUN, **rule} if method == "nft" else rule
    cfg = tiny_config(tiny_sd3_dir, tmp_path / "run", method=method, num_epochs=2, **run)
    history = Trainer(cfg, progress=False).run()
    assert sum(m["tied_groups"] for m in history) > 0
    for m in history:
        # NFT trains a tied group (a pull towards the old weights); Flow-GRPO drops it (no gradient)
        dropped = 0 if method == "nft" else m["tied_groups"] * cfg.sample.group_size
        assert m["trained_samples"] == m["images_sampled"] - dropped


@pytest.mark.parametrize(("task", "kl"), [("geneval", 1e-3), ("ocr", 3e-3), ("pickscore", 1e-4)])
def test_paper_awm_presets_carry_the_authors_settings(task, kl):
    cfg = load_config(f"preset:sd35m_awm_{task}")
    assert (cfg.method, cfg.algorithm.objective, cfg.model.kind) == ("awm", "awm", "sd3")
    assert cfg.sample.guidance_scale == 1.0 and cfg.sample.num_steps == 14 and cfg.num_train_steps == 6
    assert cfg.train.beta == pytest.approx(kl) and cfg.train.awm_slow_weight == 1.0 and cfg.train.old_decay_cap == 0.3
    assert (cfg.train.lr, cfg.sample.group_size, cfg.model.lora_rank, cfg.train.updates_per_epoch) == (3e-4, 24, 32, 1)
