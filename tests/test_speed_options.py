"""Speed options of the SD3 path (off by default) change time and memory, not the numbers."""

import pytest
import torch

from superflow.flow.sampler import sample_trajectories, step_log_prob
from superflow.models.sd3 import SD3Policy
from superflow.models.tiny_sd3 import build_tiny_sd3_pipeline
from superflow.seeding import noise_generators

PROMPTS = ["a red apple", "a blue car"]


def _loss_and_grads(**options):
    torch.manual_seed(0)
    policy = SD3Policy(
        pipeline=build_tiny_sd3_pipeline(0), resolution=32, lora_rank=4, lora_alpha=8, device="cpu", **options
    )
    with torch.no_grad():
        for p in policy.trainable_parameters():
            p.add_(0.02 * torch.randn_like(p))
    cond = policy.encode_prompts(PROMPTS)
    with torch.no_grad():
        traj = sample_trajectories(
            policy, cond, noise_generators(0, 0, 1, 2), num_steps=4, guidance_scale=4.5, noise_level=0.7
        )
    policy.transformer.train()  # checkpointing is active in training mode only
    loss = sum(
        step_log_prob(policy, traj, j, cond, guidance_scale=4.5, noise_level=0.7).log_prob.sum() for j in range(2)
    )
    loss.backward()
    return traj.final, loss.detach(), [p.grad.clone() for p in policy.trainable_parameters()], policy


@pytest.fixture(scope="module")
def reference():
    return _loss_and_grads()


@pytest.mark.parametrize(
    "options",
    [
        {"gradient_checkpointing": True},
        {"attention_backend": "native"},
        # tracing the model takes most of a minute on 2 cores
        pytest.param({"compile_backend": "aot_eager"}, marks=pytest.mark.slow),
    ],
    ids=["gradient_checkpointing", "attention_backend", "compile"],
)
def test_an_option_gives_the_same_samples_loss_and_gradients(reference, options):
    final, loss, grads, _ = reference
    final_o, loss_o, grads_o, policy = _loss_and_grads(**options)
    torch.testing.assert_close(final_o, final, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss_o, loss, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads_o, grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert any(g.abs().sum() > 0 for g in grads_o)
    if "gradient_checkpointing" in options:
        assert policy.transformer.gradient_checkpointing
    if "compile_backend" in options:
        assert policy._forward_module is not policy.transformer
