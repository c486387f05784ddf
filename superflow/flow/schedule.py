"""Sigma schedules of rectified-flow samplers.

SD3 samples on a *shifted* schedule: the uniform grid is pushed towards the noisy end with
``s' = shift * s / (1 + (shift - 1) * s)``. We reproduce diffusers'
``FlowMatchEulerDiscreteScheduler.set_timesteps`` exactly (including its quirk of building the
inference grid between the already-shifted training extremes and then shifting again), because
the Flow-GRPO log-probs depend on the precise sigmas.
"""

from __future__ import annotations

import numpy as np
import torch


def shift_sigmas(sigmas: np.ndarray | torch.Tensor, shift: float):
    """Apply SD3's timestep shift to sigmas in [0, 1]."""
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def sd3_sigmas(num_steps: int, shift: float = 3.0, num_train_timesteps: int = 1000) -> torch.Tensor:
    """Inference sigmas of SD3 for ``num_steps`` steps, with the terminal 0 appended.

    Returns a float32 tensor of length ``num_steps + 1``, strictly decreasing from 1 to 0.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if shift <= 0:
        raise ValueError(f"shift must be > 0, got {shift}")
    train_sigmas = np.linspace(1, num_train_timesteps, num_train_timesteps, dtype=np.float32)[::-1].copy()
    train_sigmas = shift_sigmas(train_sigmas / num_train_timesteps, shift)
    sigma_max, sigma_min = float(train_sigmas[0]), float(train_sigmas[-1])
    timesteps = np.linspace(sigma_max * num_train_timesteps, sigma_min * num_train_timesteps, num_steps)
    sigmas = shift_sigmas(timesteps / num_train_timesteps, shift)
    sigmas = torch.from_numpy(np.asarray(sigmas)).to(torch.float32)
    return torch.cat([sigmas, torch.zeros(1)])


def sigmas_to_timesteps(sigmas: torch.Tensor, num_train_timesteps: int = 1000) -> torch.Tensor:
    """The transformer's timestep input for each sigma (SD3 conditions on ``sigma * 1000``)."""
    return sigmas * num_train_timesteps
