"""DiffusionNFT's objective (Zheng et al., ICLR 2026), free of any model: the forward-process loss
on the sampled clean images that replaces the policy gradient.

Notation: ``x_t = (1 - t) x0 + t eps`` and target velocity ``u = eps - x0``. The authors' code
(NVlabs/DiffusionNFT, ``scripts/train_nft_sd3.py``, the loss block; ``config/nft.py`` for the
defaults) trains the live velocity ``v`` against the frozen "old" policy's ``v_old`` that sampled
the images:

    r   = clamp(0.5 + clip(A, C) / (2 C), 0, 1)            (C = 5: r = 0.5 + A / 10)
    v+  = b v + (1 - b) sg(v_old)                           the implicit positive policy
    v-  = (1 + b) sg(v_old) - b v                           the implicit negative policy
    L+- = mean((x0_hat+- - x0)^2) / sg(mean|x0_hat+- - x0|),   x0_hat = x_t - t v
    L   = C mean_batch(r L+ + (1 - r) L-) / b

A tied group (A = 0, r = 1/2) still trains: its gradient pulls ``v`` towards ``v_old``, a proximal
term, so NFT keeps every sample where Flow-GRPO drops tied groups. The old weights follow the live
ones once per epoch, ``old <- d old + (1 - d) new`` with ``d = min(rate * step, cap)``.
"""

from __future__ import annotations

import torch

__all__ = [
    "nft_reward_weights",
    "nft_loss",
    "old_policy_decay",
    "shuffled_timestep_indices",
    "generalized_huber",
    "awm_loss",
    "stratified_timestep_indices",
]


def nft_reward_weights(advantages: torch.Tensor, adv_clip: float = 5.0) -> torch.Tensor:
    """``r = clamp(0.5 + clip(A, adv_clip) / (2 adv_clip), 0, 1)``: the optimality probability of a sample."""
    if adv_clip <= 0:
        raise ValueError(f"adv_clip must be > 0, got {adv_clip}")
    a = torch.as_tensor(advantages).clamp(-adv_clip, adv_clip)
    return (0.5 + a / (2 * adv_clip)).clamp(0.0, 1.0)


def _per_sample_mean(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(dim=1)


def nft_loss(
    v: torch.Tensor,
    v_old: torch.Tensor,
    x0: torch.Tensor,
    x_t: torch.Tensor,
    t: torch.Tensor,
    r: torch.Tensor,
    nft_beta: float = 1.0,
    adv_clip: float = 5.0,
) -> torch.Tensor:
    """The NFT loss of a batch (a scalar); only ``v`` carries gradient.

    ``t`` and ``r`` are per sample ([B]); the adaptive weights ``mean|x0_hat - x0|`` are detached
    and floored at 1e-5, as in the reference.
    """
    if nft_beta <= 0:
        raise ValueError(f"nft_beta must be > 0, got {nft_beta}")
    shapes = {"v": v.shape, "v_old": v_old.shape, "x0": x0.shape, "x_t": x_t.shape}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"shapes must match, got { {k: tuple(s) for k, s in shapes.items()} }")
    v_old, x0, x_t = v_old.detach(), x0.detach(), x_t.detach()
    t = torch.as_tensor(t, dtype=v.dtype, device=v.device).view(-1, *([1] * (v.ndim - 1)))
    r = torch.as_tensor(r, dtype=v.dtype, device=v.device).flatten()
    v_pos = nft_beta * v + (1 - nft_beta) * v_old
    v_neg = (1 + nft_beta) * v_old - nft_beta * v
    losses = []
    for v_side in (v_pos, v_neg):
        error = x_t - t * v_side - x0
        scale = _per_sample_mean(error.abs()).detach().clamp_min(1e-5)
        losses.append(_per_sample_mean(error**2) / scale)
    return adv_clip * (r * losses[0] + (1 - r) * losses[1]).mean() / nft_beta


def old_policy_decay(step: int, rate: float = 0.001, cap: float = 0.5) -> float:
    """The reference's default schedule (``return_decay`` type 1): ``min(rate * step, cap)``."""
    if step < 0 or rate < 0 or not 0 <= cap < 1:
        raise ValueError(f"need step >= 0, rate >= 0 and 0 <= cap < 1, got {step}, {rate}, {cap}")
    return min(rate * step, cap)


def shuffled_timestep_indices(num_steps: int, num_trained: int, generator: torch.Generator) -> torch.Tensor:
    """The sampler steps one sample trains on: a random ``num_trained`` of ``num_steps``, in random order."""
    if not 1 <= num_trained <= num_steps:
        raise ValueError(f"need 1 <= num_trained <= num_steps, got {num_trained} of {num_steps}")
    return torch.randperm(num_steps, generator=generator)[:num_trained]


def generalized_huber(m: torch.Tensor, power: float = 0.25, floor: float = 1e-10) -> torch.Tensor:
    """AWM's ``((m + floor)^p - floor^p) / p``: a concave transform of a squared error ``m >= 0``
    (p = 1 is the error itself; small p flattens large errors)."""
    if not 0 < power <= 1:
        raise ValueError(f"power must be in (0, 1], got {power}")
    return ((m + floor) ** power - floor**power) / power


def awm_loss(
    v: torch.Tensor,
    target: torch.Tensor,
    t: torch.Tensor,
    advantages: torch.Tensor,
    adv_clip: float = 5.0,
    power: float = 0.25,
) -> torch.Tensor:
    """Advantage Weighted Matching (scxue/advantage_weighted_matching, ``scripts/train_sd3_awm.py``):
    ``mean(A' t ghuber_p(mean (v - u)^2))`` with ``A' = clip(A, adv_clip) / adv_clip`` and u = eps - x0.

    On-policy the reference's importance ratio is exactly 1, so this is its gradient: a good sample's
    flow-matching error is lowered, a bad one's raised, each weighted by its time ``t``.
    """
    if v.shape != target.shape:
        raise ValueError(f"shapes must match, got {tuple(v.shape)} and {tuple(target.shape)}")
    a = torch.as_tensor(advantages, dtype=v.dtype, device=v.device).clamp(-adv_clip, adv_clip) / adv_clip
    t = torch.as_tensor(t, dtype=v.dtype, device=v.device).flatten()
    m = _per_sample_mean((v - target.detach()) ** 2)
    return (a * t * generalized_huber(m, power)).mean()


def stratified_timestep_indices(low: int, high: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` distinct sampler steps in ``[low, high]``: one drawn uniformly from each of ``count``
    consecutive strata of (near) equal size."""
    if not 0 <= low <= high or not 1 <= count <= high - low + 1:
        raise ValueError(f"need 0 <= low <= high and 1 <= count <= {high - low + 1}, got {low}, {high}, {count}")
    strata = torch.tensor_split(torch.arange(low, high + 1), count)
    picks = [int(torch.randint(len(stratum), (1,), generator=generator)) for stratum in strata]
    return torch.stack([stratum[k] for stratum, k in zip(strata, picks)])
