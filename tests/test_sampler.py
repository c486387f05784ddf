"""The sampler on a tiny SD3: diffusers equivalence, recorded trajectories, re-scored log-probs."""

import pytest
import torch

from superflow.flow.sampler import sample_trajectories, step_log_prob
from superflow.models.sd3 import SD3Policy

PROMPTS = ["a red cube", "a blue ball on grass", "two green cats"]


def _policy(pipe, **kw):
    return SD3Policy(
        pipeline=pipe, resolution=32, lora_rank=4, lora_alpha=8, max_sequence_length=16, device="cpu", **kw
    )


def _gens(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.mark.parametrize("guidance", [1.0, 4.5])
def test_noise_level_zero_reproduces_diffusers_euler(tiny_pipeline, guidance):
    policy = _policy(tiny_pipeline)
    cond = policy.encode_prompts(PROMPTS)
    traj = sample_trajectories(policy, cond, _gens([1, 2, 3]), num_steps=4, guidance_scale=guidance, noise_level=0.0)
    reference = tiny_pipeline(
        prompt=PROMPTS,
        num_inference_steps=4,
        guidance_scale=guidance,
        height=32,
        width=32,
        generator=_gens([1, 2, 3]),
        max_sequence_length=16,
        output_type="latent",
    ).images
    torch.testing.assert_close(traj.final, reference, rtol=1e-5, atol=1e-5)
    assert torch.isnan(traj.log_probs).all()


def test_trajectory_records_states_sigmas_and_finite_log_probs(tiny_pipeline):
    policy = _policy(tiny_pipeline)
    cond = policy.encode_prompts(PROMPTS)
    traj = sample_trajectories(
        policy, cond, _gens([5, 6, 7]), num_steps=4, guidance_scale=4.5, noise_level=0.7, record_means=True
    )
    assert traj.states.shape == (3, 5, *policy.latent_shape())
    assert traj.log_probs.shape == (3, 4) and torch.isfinite(traj.log_probs).all()
    assert traj.sigmas[0] == 1 and traj.sigmas[-1] == 0
    assert traj.means.shape == (3, 4, *policy.latent_shape())
    assert (traj.std_devs > 0).all()
    # the same seeds give the same samples, whatever else is in the batch
    again = sample_trajectories(policy, cond.index([1]), _gens([6]), num_steps=4, guidance_scale=4.5, noise_level=0.7)
    torch.testing.assert_close(again.states[0], traj.states[1], rtol=1e-5, atol=1e-5)


def test_recomputed_log_probs_give_ratio_one(tiny_pipeline):
    policy = _policy(tiny_pipeline)
    with torch.no_grad():  # a non-zero LoRA, so the adapter path is exercised
        for p in policy.trainable_parameters():
            p.add_(0.05 * torch.randn_like(p))
    cond = policy.encode_prompts(PROMPTS * 2)
    traj = sample_trajectories(policy, cond, _gens(range(6)), num_steps=4, guidance_scale=4.5, noise_level=0.7)
    order = torch.tensor([4, 0, 5, 2])  # a different batch composition than at sampling time
    sub = traj.index(order)
    for t in range(4):
        step = step_log_prob(policy, sub, t, cond.index(order), guidance_scale=4.5, noise_level=0.7)
        ratio = torch.exp(step.log_prob - sub.log_probs[:, t])
        torch.testing.assert_close(ratio, torch.ones_like(ratio), rtol=0, atol=1e-5)


def test_adapter_disabled_is_the_base_model(tiny_pipeline):
    policy = _policy(tiny_pipeline)
    cond = policy.encode_prompts(PROMPTS[:1])
    x = torch.randn(1, *policy.latent_shape(), generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.7])
    base = policy.velocity(x, sigma, cond, 4.5)
    with torch.no_grad():
        for p in policy.trainable_parameters():
            p.add_(0.1)
    changed = policy.velocity(x, sigma, cond, 4.5)
    with policy.adapter_disabled():
        reference = policy.velocity(x, sigma, cond, 4.5)
    assert not torch.allclose(base, changed)
    torch.testing.assert_close(reference, base)
