"""The Flow-GRPO objective for one trained step: clipped policy gradient plus the KL to the base model.

Both functions reproduce the reference numerically (ALGORITHM.md section 0); the comments say
where a choice that looks arbitrary is in fact the reference's.
"""

from __future__ import annotations

import torch

__all__ = ["clipped_policy_loss", "kl_to_reference"]


def _check_same_shape(**tensors: torch.Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"shapes must match, got {shapes}")


def clipped_policy_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    clip_range: float,
    adv_clip: float = 5.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate, ``mean(max(-A r, -A clip(r, 1 - eps, 1 + eps)))``, as Flow-GRPO.

    Only ``log_prob`` carries gradient: the old log-probs and the advantages are data from the
    sampling pass and are detached, so a caller who forgot ``no_grad`` there cannot leak gradient
    into them. The ratio is formed from the log-prob *difference* (never from two exponentials),
    so it is exactly 1 wherever the re-evaluated log-prob reproduces the stored one. Advantages are clamped to
    ``[-adv_clip, adv_clip]`` first, as the reference does, so that one extreme sample cannot
    dominate a batch. The info dict holds detached scalars for logging.
    """
    if not isinstance(log_prob, torch.Tensor):
        raise ValueError(f"log_prob must be a torch.Tensor, got {type(log_prob).__name__}")
    old_log_prob = torch.as_tensor(old_log_prob, device=log_prob.device)
    advantages = torch.as_tensor(advantages, device=log_prob.device)
    _check_same_shape(log_prob=log_prob, old_log_prob=old_log_prob, advantages=advantages)
    clip_range = float(clip_range)
    if not clip_range >= 0:  # also rejects NaN
        raise ValueError(f"clip_range must be >= 0, got {clip_range}")
    adv_clip = float(adv_clip)
    if not adv_clip > 0:
        raise ValueError(f"adv_clip must be > 0, got {adv_clip}")
    dtype = torch.promote_types(log_prob.dtype, torch.float32)
    log_prob = log_prob.to(dtype)
    old = old_log_prob.detach().to(dtype)
    adv = torch.clamp(advantages.detach().to(dtype), -adv_clip, adv_clip)
    ratio = torch.exp(log_prob - old)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = torch.mean(torch.maximum(unclipped, clipped))
    with torch.no_grad():
        info = {
            "clipfrac": torch.mean((torch.abs(ratio - 1.0) > clip_range).to(dtype)),
            "approx_kl": 0.5 * torch.mean((log_prob - old) ** 2),
            "ratio_mean": torch.mean(ratio),
        }
    return loss, {k: v.detach() for k, v in info.items()}


def kl_to_reference(mean: torch.Tensor, ref_mean: torch.Tensor, std_dev: torch.Tensor | float) -> torch.Tensor:
    """Flow-GRPO's KL between the policy's and the base model's Gaussian step: ``|mu - mu_ref|^2 / (2 std^2)``.

    Per sample the squared difference is averaged over the non-batch dims (the reference's
    normalisation, matching the mean-over-dims log-prob), divided by ``2 std_dev^2`` and then
    averaged over the batch. The true KL of the two step Gaussians divides by
    ``2 std_dev^2 (-dt)``; the reference leaves the ``dt`` out, deliberately, and so do we, because
    the KL coefficients of the paper (0.04, 0.01) were tuned on that scale. ``std_dev`` is a
    scalar or per-sample (``[N]`` or ``[N, 1, ..., 1]``); ``ref_mean`` should come from a no-grad
    pass, but only ``mean`` is assumed to carry gradient.
    """
    if not isinstance(mean, torch.Tensor) or not isinstance(ref_mean, torch.Tensor):
        raise ValueError("mean and ref_mean must be torch.Tensors")
    _check_same_shape(mean=mean, ref_mean=ref_mean)
    if mean.ndim < 1:
        raise ValueError(f"mean must have a batch dimension, got shape {tuple(mean.shape)}")
    n = mean.shape[0]
    std = torch.as_tensor(std_dev, device=mean.device)
    if std.numel() == 1:
        std = std.reshape(())
    elif std.numel() == n:
        std = std.reshape(n)
    else:
        raise ValueError(f"std_dev must be a scalar or hold one value per sample ({n}), got shape {tuple(std.shape)}")
    dtype = torch.promote_types(mean.dtype, torch.float32)
    diff = mean.to(dtype) - ref_mean.detach().to(dtype)
    per_sample = (diff**2).reshape(n, -1).mean(dim=1)
    return torch.mean(per_sample / (2 * std.to(dtype) ** 2))
