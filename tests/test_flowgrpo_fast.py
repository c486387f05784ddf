"""Flow-GRPO-Fast (method=flowgrpo_fast): the CPS step against its closed form, the SDE window
(only its steps are stochastic, only they are trained, drawn per batch from the seeded stream), the
config's refusals, and end-to-end runs on the tiny SD3 (parameters move, the demo reward rises, a
resume gives the uninterrupted weights)."""

import math

import numpy as np
import pytest
import torch
from helpers import tiny_config

import superflow.objectives as objectives
from superflow.config import ConfigError, load_config
from superflow.flow.sampler import draw_sde_window, sample_trajectories, step_log_prob
from superflow.flow.sde import cps_step
from superflow.rl import kl_to_reference
from superflow.train import Trainer


def _state(seed=0, shape=(3, 2, 4, 4)):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) for _ in range(3))


@pytest.mark.parametrize("noise_level", [0.8, 1.0])
def test_cps_step_equals_its_closed_form(noise_level):
    v, x, noise = _state()
    s, s_next = 0.7, 0.5
    step = cps_step(v, x, s, s_next, noise_level=noise_level, noise=noise)
    std = s_next * math.sin(noise_level * math.pi / 2)
    clean, noise_guess = x - s * v, x + (1 - s) * v
    mean = clean * (1 - s_next) + noise_guess * math.sqrt(s_next**2 - std**2)
    torch.testing.assert_close(step.mean, mean)
    torch.testing.assert_close(step.next_x, mean + std * noise)
    # the reference's log-"prob": minus the mean squared distance to the mean, no Gaussian constants
    torch.testing.assert_close(step.log_prob, -(std * noise).pow(2).flatten(1).mean(1))
    if noise_level == 1.0:  # all of s' is fresh noise: x' = (1 - s') x0_hat + s' eps, the forward process
        torch.testing.assert_close(step.next_x, (1 - s_next) * clean + s_next * noise)
    scored = cps_step(v, x, s, s_next, noise_level=noise_level, next_x=step.next_x)
    torch.testing.assert_close(scored.log_prob, step.log_prob)


def test_cps_step_to_sigma_zero_is_the_clean_guess_and_refuses_bad_levels():
    v, x, noise = _state(1)
    step = cps_step(v, x, 0.3, 0.0, noise_level=0.8, noise=noise)
    torch.testing.assert_close(step.next_x, x - 0.3 * v)
    with pytest.raises(ValueError, match="noise level"):
        cps_step(v, x, 0.3, 0.1, noise_level=1.5, noise=noise)


def test_window_draws_are_seeded_per_image_uniform_and_inside_the_range():
    starts, size = draw_sde_window(3, (1, 7), seed=0, epoch=2, image_indices=range(200))
    assert size == 3 and set(starts.tolist()) == {1, 2, 3, 4}  # lo .. hi - size
    # an image's start is its own: the same whichever batch (or rank) it is sampled in
    later, _ = draw_sde_window(3, (1, 7), seed=0, epoch=2, image_indices=range(150, 200))
    assert torch.equal(later, starts[150:])
    other, _ = draw_sde_window(3, (1, 7), seed=1, epoch=2, image_indices=range(200))
    assert not torch.equal(other, starts)
    assert draw_sde_window(0, (0, 5), seed=0, epoch=0, image_indices=range(4)) is None


def _sd3_policy(pipeline):
    from superflow.models.sd3 import SD3Policy

    return SD3Policy(pipeline=pipeline, resolution=32, lora_rank=4, lora_alpha=8, max_sequence_length=16, device="cpu")


@pytest.mark.parametrize("sde_type", ["sde", "cps"])
def test_only_the_window_steps_are_stochastic_and_rescoring_gives_ratio_one(tiny_pipeline, sde_type):
    policy = _sd3_policy(tiny_pipeline)
    cond = policy.encode_prompts(["a red cube", "two green cats", "a blue ball"])

    def sample(noise_level, window=None, rows=(0, 1, 2)):
        gens = [torch.Generator().manual_seed(s) for s in (3, 4, 5)]
        kw = {"num_steps": 6, "guidance_scale": 4.5, "noise_level": noise_level}
        pick = list(rows)
        window = None if window is None else (window[0][pick], window[1])
        return sample_trajectories(
            policy, cond.index(pick), [gens[r] for r in pick], **kw, sde_window=window, sde_type=sde_type
        )

    starts = torch.tensor([2, 0, 3])
    windowed, ode = sample(0.8, (starts, 2)), sample(0.0)
    for i, start in enumerate(starts.tolist()):
        stochastic = torch.isfinite(windowed.log_probs[i])
        assert stochastic.nonzero().flatten().tolist() == [start, start + 1]
        # before its window a trajectory is the ODE's exactly; inside it the noise moves it off
        torch.testing.assert_close(windowed.states[i, : start + 1], ode.states[i, : start + 1])
        assert (windowed.states[i, start + 1] - ode.states[i, start + 1]).abs().max() > 1e-3
    assert windowed.sde_start.tolist() == [2, 0, 3] and windowed.index([2]).sde_start.tolist() == [3]
    # a trajectory does not depend on its batch: sampled alone it is the same
    alone = sample(0.8, (starts, 2), rows=[2])
    torch.testing.assert_close(alone.states[0], windowed.states[2])
    # re-scoring each trajectory's j-th window step reproduces its sampled log-prob (ratio 1)
    rows = torch.arange(3)
    for j in range(2):
        step_index = windowed.step_index(j)
        step = step_log_prob(
            policy, windowed, step_index, cond, guidance_scale=4.5, noise_level=0.8, sde_type=sde_type
        )
        torch.testing.assert_close(step.log_prob, windowed.log_probs[rows, step_index], rtol=0, atol=1e-5)
        with policy.adapter_disabled():
            ref = step_log_prob(
                policy, windowed, step_index, cond, guidance_scale=4.5, noise_level=0.8, sde_type=sde_type
            )
        assert kl_to_reference(step.mean, ref.mean, step.std_dev).item() == pytest.approx(0.0, abs=1e-10)


def test_fast_config_defaults_and_refusals():
    cfg = load_config("preset:mini_geneval", ["method=flowgrpo_fast"])
    assert (cfg.sample.sde_window_size, cfg.sample.sde_window_range, cfg.num_train_steps) == (3, [0, 5], 3)
    plain = load_config("preset:mini_geneval", ["method=flowgrpo"])
    assert plain.sample.sde_window_size == 0 and plain.num_train_steps == 4
    refusals = {
        "sample.sde_window_range": ["method=flowgrpo_fast", "sample.sde_window_range=[4,6]"],
        "sample.sde_window_size": ["method=superflow", "sample.sde_window_size=2"],
        "sample.sde_last_step": ["sample.sde_type=cps", "train.timestep_fraction=1.0"],
        "sample.sde_type": ["method=superflow", "sample.sde_type=cps"],
    }
    for message, overrides in {
        "'sample.sde_window_size' needs algorithm.objective": ["method=nft", "sample.sde_window_size=3"],
        "'sample.sde_window_size' must be >= 0": ["sample.sde_window_size=-1"],
        "'sample.sde_last_step' leaves": ["sample.sde_last_step=false", "train.timestep_fraction=1.0"],
        "'model.dtype'": ["model.kind=mini", "model.dtype=float16"],
    }.items():
        with pytest.raises(ConfigError, match=message):
            load_config("preset:mini_geneval", overrides)
    for key, overrides in refusals.items():
        with pytest.raises(ConfigError, match=key):
            load_config("preset:mini_geneval", overrides)
    with pytest.raises(ConfigError, match="sample.sde_type"):
        load_config("preset:mini_geneval", ["sample.sde_type=ddim"])


@pytest.mark.parametrize("task,prompts,group", [("geneval", 48, 24), ("ocr", 48, 24), ("pickscore", 64, 18)])
def test_paper_fast_presets_carry_the_no_cfg_recipe(task, prompts, group):
    cfg = load_config(f"preset:sd35m_fast_{task}")
    assert (cfg.method, cfg.sample.guidance_scale, cfg.sample.sde_type, cfg.sample.noise_level) == (
        "flowgrpo_fast",
        1.0,
        "cps",
        0.8,
    )
    assert (cfg.sample.sde_window_size, cfg.sample.sde_window_range, cfg.num_train_steps) == (3, [0, 5], 3)
    assert (cfg.train.clip_range, cfg.train.beta, cfg.algorithm.global_std) == (1e-5, 0.0, True)
    assert (cfg.sample.prompts_per_epoch, cfg.sample.group_size, cfg.train.lr) == (prompts, group, 3e-4)


FAST_RUN = {"sample.sde_window_size": 2, "sample.sde_window_range": "[0,3]"}  # of the demo's 4 steps


def test_only_window_steps_train(tiny_sd3_dir, tmp_path, monkeypatch):
    """Every re-scored transition is the j-th step of its own trajectory's window, j < window size."""
    seen = []
    real = objectives.step_log_prob

    def recording(policy, traj, t, cond, **kw):
        seen.append((traj.sde_start.clone(), t.clone()))
        return real(policy, traj, t, cond, **kw)

    monkeypatch.setattr(objectives, "step_log_prob", recording)
    cfg = tiny_config(tiny_sd3_dir, tmp_path / "run", method="flowgrpo_fast", num_epochs=2, **FAST_RUN)
    Trainer(cfg, progress=False).run()
    assert seen
    offsets = torch.cat([t - start for start, t in seen])
    assert set(offsets.tolist()) == {0, 1}
    starts = torch.cat([start for start, _ in seen])
    assert set(starts.tolist()) == {0, 1}  # drawn per batch from 0 .. 3 - 2


@pytest.mark.parametrize("sde_type", ["sde", "cps"])
def test_fast_trains_the_tiny_sd3(tiny_sd3_dir, tmp_path, sde_type):
    run = {**FAST_RUN, "sample.sde_type": sde_type, "sample.noise_level": 0.8}
    trainer = Trainer(tiny_config(tiny_sd3_dir, tmp_path / "run", method="flowgrpo_fast", **run), progress=False)
    before = [p.detach().clone() for p in trainer.params]
    history = trainer.run()
    assert all(np.isfinite(m["policy_loss"]) and m["trained_samples"] > 0 for m in history)
    assert sum(not torch.equal(b, p.detach()) for b, p in zip(before, trainer.params)) > len(before) // 2


def test_fast_resume_gives_the_uninterrupted_weights(tiny_sd3_dir, tmp_path):
    common = {**FAST_RUN, "num_epochs": 3, "save_every": 1}
    full = Trainer(tiny_config(tiny_sd3_dir, tmp_path / "full", method="flowgrpo_fast", **common), progress=False)
    full.run()
    cut = {**common, "num_epochs": 2}
    Trainer(tiny_config(tiny_sd3_dir, tmp_path / "cut", method="flowgrpo_fast", **cut), progress=False).run()
    resumed = Trainer(tiny_config(tiny_sd3_dir, tmp_path / "cut", method="flowgrpo_fast", **common), progress=False)
    resumed.run(resume=True)
    for a, b in zip(full.params, resumed.params, strict=True):
        assert torch.equal(a, b)


def test_fast_raises_the_demo_reward_and_the_shuffled_control_does_not(tiny_sd3_dir, tmp_path):
    """The method's defaults on the demo's 4 steps (a window of 3 in [0, 3): steps 0-2 stochastic, the
    last one deterministic). Measured on seed 0 (mean of the first three epochs -> the last three):
    0.5236 -> 0.5369 with the rewards, 0.5151 -> 0.5016 with them permuted within each epoch."""
    task = {
        "num_epochs": 6,
        "sample.prompts_per_epoch": 8,
        "sample.group_size": 8,
        "sample.batch_size": 16,
        "train.micro_batch_size": 16,
    }
    gains = {}
    for shuffle in (False, True):
        control = {"reward.shuffle_within_epoch": shuffle}
        cfg = tiny_config(tiny_sd3_dir, tmp_path / f"run{shuffle}", method="flowgrpo_fast", **task, **control)
        assert (cfg.sample.sde_window_size, cfg.sample.sde_window_range) == (3, [0, 3])
        rewards = np.array([m["reward_mean"] for m in Trainer(cfg, progress=False).run()])
        gains[shuffle] = rewards[-3:].mean() - rewards[:3].mean()
    assert gains[False] > 0.008 and gains[True] < 0, gains
