"""Mixed precision on the tiny SD3: bf16 base under autocast, fp32 LoRA and log-probs.

The first update re-scores the trajectories the sampler just produced, so its importance ratio is 1
up to rounding: exactly in fp32 (measured: 0.0), and within 1e-4 per step in bf16 (measured on this
CPU: batch-mean ratio within 3.2e-5 of 1, single images within 1.5e-4, seeds 0-3), because sampling
runs the CFG halves as one batch and training runs them apart, which bf16 rounds differently.
"""

import pytest
import torch

from superflow.flow.sampler import sample_trajectories, step_log_prob
from superflow.models.sd3 import SD3Policy
from superflow.models.tiny_sd3 import build_tiny_sd3_pipeline
from superflow.seeding import noise_generators

PROMPTS = ["a red apple", "a blue car", "a cat", "a dog"]


def _first_update_log_ratios(dtype: str, autocast: bool, seed: int = 0) -> tuple[torch.Tensor, SD3Policy]:
    torch.manual_seed(seed)
    policy = SD3Policy(
        pipeline=build_tiny_sd3_pipeline(0),
        resolution=32,
        lora_rank=4,
        lora_alpha=8,
        dtype=dtype,
        device="cpu",
        autocast=autocast,
    )
    with torch.no_grad():
        for p in policy.trainable_parameters():  # a LoRA that changes the output, as after some training
            p.add_(0.02 * torch.randn_like(p))
    cond = policy.encode_prompts(PROMPTS)
    with torch.no_grad():
        traj = sample_trajectories(
            policy, cond, noise_generators(seed, 0, 1, len(PROMPTS)), num_steps=6, guidance_scale=4.5, noise_level=0.7
        )
    logs = [
        step_log_prob(policy, traj, j, cond, guidance_scale=4.5, noise_level=0.7).log_prob.detach()
        - traj.log_probs[:, j]
        for j in range(5)
    ]
    return torch.stack(logs, dim=1), policy


def test_fp32_first_update_ratio_is_exactly_one():
    log_ratio, policy = _first_update_log_ratios("float32", autocast=True)
    assert not policy.autocast  # autocast applies to half-precision bases only
    assert torch.equal(log_ratio, torch.zeros_like(log_ratio))


@pytest.mark.parametrize("seed", [0, 1])
def test_bf16_autocast_first_update_ratio_is_one_within_1e_4(seed):
    log_ratio, policy = _first_update_log_ratios("bfloat16", autocast=True, seed=seed)
    assert policy.autocast and all(p.dtype == torch.float32 for p in policy.trainable_parameters())
    assert policy.transformer.dtype == torch.bfloat16
    step_mean_ratio = log_ratio.exp().mean(dim=0)
    assert (step_mean_ratio - 1).abs().max() < 1e-4
    assert log_ratio.abs().max() < 5e-4
    assert log_ratio.abs().max() > 0  # bf16 does round: the comparison above is not vacuous


def test_autocast_runs_the_lora_matmuls_in_bf16():
    policy = SD3Policy(
        pipeline=build_tiny_sd3_pipeline(0), resolution=32, lora_rank=4, lora_alpha=8, dtype="bfloat16", device="cpu"
    )
    seen = []
    lora = next(m for n, m in policy.transformer.named_modules() if n.endswith("to_q.lora_A.default"))
    handle = lora.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    cond = policy.encode_prompts(PROMPTS[:1])
    x = torch.randn(1, *policy.latent_shape())
    policy.velocity(x, torch.tensor([0.5]), cond, guidance_scale=1.0)
    policy.autocast = False
    policy.velocity(x, torch.tensor([0.5]), cond, guidance_scale=1.0)
    handle.remove()
    assert seen[0] == torch.bfloat16 and seen[-1] == torch.float32
