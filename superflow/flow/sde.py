"""One step of the Flow-GRPO SDE (and the plain ODE step) with its Gaussian log-density.

Convention (SD3 rectified flow): ``x_s = (1 - s) x0 + s eps``, the model predicts
``v = eps - x0``, and sampling runs from s = 1 (noise) to s = 0. The SDE below has the same
marginals as the ODE ``dx = v ds`` and turns each step into a Gaussian policy whose log-density
is what the policy-gradient loss differentiates. The formulas are ALGORITHM.md section 0 and
agree with the Flow-GRPO reference to float precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class StepResult:
    """What one SDE step produced: the next state and the Gaussian it was drawn from."""

    next_x: torch.Tensor
    log_prob: torch.Tensor  # [B], mean over non-batch dims (Flow-GRPO's normalisation)
    mean: torch.Tensor
    std_dev: torch.Tensor  # std_dev_t of the step; the noise scale is std_dev * sqrt(-dt)


def sde_std_dev(sigma: torch.Tensor, sigma_after_one: float | torch.Tensor, noise_level: float) -> torch.Tensor:
    """``a * sqrt(s / (1 - s))``; at s == 1 the denominator uses the schedule's second sigma.

    The reference substitutes ``sigma_after_one`` only in the denominator, which keeps the first
    step's noise finite while leaving its numerator at 1.
    """
    sigma_after_one = torch.as_tensor(sigma_after_one, dtype=sigma.dtype, device=sigma.device)
    denominator = 1 - torch.where(sigma == 1, sigma_after_one, sigma)
    return torch.sqrt(sigma / denominator) * noise_level


def _broadcast(t: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=torch.float32, device=like.device)
    if t.ndim == 0:
        return t
    return t.reshape(-1, *([1] * (like.ndim - 1)))


def sde_step(
    velocity: torch.Tensor,
    x: torch.Tensor,
    sigma: torch.Tensor | float,
    sigma_next: torch.Tensor | float,
    *,
    sigma_after_one: float | torch.Tensor,
    noise_level: float = 0.7,
    next_x: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
) -> StepResult:
    """Flow-GRPO's SDE step from ``sigma`` to ``sigma_next`` with the log-prob of ``next_x``.

    ``sigma``/``sigma_next`` are scalars or per-sample tensors. When ``next_x`` is given (training:
    re-evaluating a stored transition) it is scored, not sampled. Computation is in float32
    because bf16 overflows in the mean (the reference casts for the same reason).
    With ``noise_level == 0`` the mean is exactly the Euler ODE step, the step is deterministic
    and its log-prob is NaN (a point mass has no density to train on).
    """
    if noise_level < 0:
        raise ValueError(f"noise_level must be >= 0, got {noise_level}")
    velocity = velocity.float()
    x = x.float()
    sigma = _broadcast(sigma, x)
    sigma_next = _broadcast(sigma_next, x)
    dt = sigma_next - sigma
    std_dev = sde_std_dev(sigma, sigma_after_one, noise_level)
    mean = x * (1 + std_dev**2 / (2 * sigma) * dt) + velocity * (1 + std_dev**2 * (1 - sigma) / (2 * sigma)) * dt
    step_std = std_dev * torch.sqrt(-dt)
    if noise_level == 0:
        nan = torch.full((x.shape[0],), float("nan"), device=x.device)
        return StepResult(next_x=mean if next_x is None else next_x.float(), log_prob=nan, mean=mean, std_dev=std_dev)
    if next_x is None:
        if noise is None:
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        next_x = mean + step_std * noise
    next_x = next_x.float()
    log_prob = -((next_x.detach() - mean) ** 2) / (2 * step_std**2) - torch.log(step_std) - _LOG_SQRT_2PI
    log_prob = log_prob.mean(dim=tuple(range(1, log_prob.ndim)))
    return StepResult(next_x=next_x, log_prob=log_prob, mean=mean, std_dev=std_dev)


def cps_std_dev(sigma_next: torch.Tensor, noise_level: float) -> torch.Tensor:
    """The coefficients-preserving step's noise scale, ``sigma' sin(a pi / 2)``."""
    return sigma_next * math.sin(noise_level * math.pi / 2)


def cps_step(
    velocity: torch.Tensor,
    x: torch.Tensor,
    sigma: torch.Tensor | float,
    sigma_next: torch.Tensor | float,
    *,
    noise_level: float = 0.8,
    next_x: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
) -> StepResult:
    """Flow-GRPO-Fast's coefficients-preserving sampling (CPS) step and its log-"prob".

    From the model's guesses of the clean image ``x0 = x - s v`` and of the noise ``x1 = x + (1 - s) v``,
    the next state keeps the flow's coefficients exactly: ``mean = x0 (1 - s') + x1 sqrt(s'^2 - std^2)``
    plus ``std`` of fresh noise, ``std = s' sin(a pi / 2)`` (so the noise's share of s' is fixed by a,
    not by the step size). The reference's log-prob drops the Gaussian's constants and its
    ``1 / (2 std^2)``: ``-mean((x' - mean)^2)`` (flow_grpo ``sd3_sde_with_logprob.py``, sde_type
    "cps"); the clipped ratio exp(log p - log p_old) is taken on that scale, so we keep it. A step
    to s' = 0 has no noise: it is deterministic and never trained.
    """
    if not 0 < noise_level <= 1:
        raise ValueError(f"the CPS noise level must be in (0, 1], got {noise_level}")
    velocity = velocity.float()
    x = x.float()
    sigma = _broadcast(sigma, x)
    sigma_next = _broadcast(sigma_next, x)
    std_dev = cps_std_dev(sigma_next, noise_level)
    clean, noise_guess = x - sigma * velocity, x + (1 - sigma) * velocity
    mean = clean * (1 - sigma_next) + noise_guess * torch.sqrt((sigma_next**2 - std_dev**2).clamp_min(0))
    if next_x is None:
        if noise is None:
            raise ValueError("cps_step samples with the given noise: pass noise (or next_x to score)")
        next_x = mean + std_dev * noise
    next_x = next_x.float()
    log_prob = -((next_x.detach() - mean) ** 2).mean(dim=tuple(range(1, x.ndim)))
    return StepResult(next_x=next_x, log_prob=log_prob, mean=mean, std_dev=std_dev)


def ode_step(velocity: torch.Tensor, x: torch.Tensor, sigma, sigma_next) -> torch.Tensor:
    """The Euler step of the probability-flow ODE, ``x + (s' - s) v`` (diffusers' stepping)."""
    x32 = x.float()
    dt = _broadcast(sigma_next, x32) - _broadcast(sigma, x32)
    return (x32 + dt * velocity.float()).to(x.dtype)
