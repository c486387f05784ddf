"""Batched sampling that records what policy-gradient training needs.

A trajectory keeps every state, the schedule, each step's log-prob and (optionally) its Gaussian
mean, so the trainer can re-score the same transitions under updated parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from superflow.flow.sde import ode_step, sde_std_dev, sde_step
from superflow.models.base import Conditioning, FlowPolicy


@dataclass
class Trajectories:
    """A batch of sampled trajectories.

    ``states[:, t]`` is the state before step t; ``states[:, T]`` is the final latent.
    ``log_probs`` is NaN for deterministic (ODE) steps, which have no density.
    """

    states: torch.Tensor  # [B, T+1, *latent]
    sigmas: torch.Tensor  # [T+1]
    log_probs: torch.Tensor  # [B, T]
    std_devs: torch.Tensor  # [T]
    means: torch.Tensor | None = None  # [B, T, *latent]
    velocities: torch.Tensor | None = None  # [B, T, *latent], the guided velocity at each state

    def endpoint_predictions(self) -> torch.Tensor:
        """The flow's one-step guess of the final image from every state: x_t - s_t v_t ([B, T, ...]).

        Reuses the velocities computed while sampling, so per-step values cost no extra model pass.
        """
        if self.velocities is None:
            raise ValueError("trajectories were sampled without record_velocities=True")
        shape = (1, -1) + (1,) * (self.states.ndim - 2)
        return self.states[:, :-1] - self.sigmas[:-1].view(shape) * self.velocities

    @property
    def final(self) -> torch.Tensor:
        return self.states[:, -1]

    @property
    def num_steps(self) -> int:
        return self.sigmas.numel() - 1

    def index(self, idx) -> Trajectories:
        return Trajectories(
            states=self.states[idx],
            sigmas=self.sigmas,
            log_probs=self.log_probs[idx],
            std_devs=self.std_devs,
            means=None if self.means is None else self.means[idx],
            velocities=None if self.velocities is None else self.velocities[idx],
        )

    @staticmethod
    def cat(parts: Sequence[Trajectories]) -> Trajectories:
        means = None if parts[0].means is None else torch.cat([p.means for p in parts])
        velocities = None if parts[0].velocities is None else torch.cat([p.velocities for p in parts])
        return Trajectories(
            states=torch.cat([p.states for p in parts]),
            sigmas=parts[0].sigmas,
            log_probs=torch.cat([p.log_probs for p in parts]),
            std_devs=parts[0].std_devs,
            means=means,
            velocities=velocities,
        )


def step_std_devs(sigmas: torch.Tensor, noise_level: float, sde_last_step: bool = True) -> torch.Tensor:
    """std_dev_t of every step of a schedule (0 where the step is deterministic)."""
    std = sde_std_dev(sigmas[:-1], sigmas[1], noise_level) if noise_level > 0 else torch.zeros_like(sigmas[:-1])
    if not sde_last_step:
        std = std.clone()
        std[-1] = 0
    return std


@torch.no_grad()
def sample_trajectories(
    policy: FlowPolicy,
    cond: Conditioning,
    generators: Sequence[torch.Generator],
    *,
    num_steps: int,
    guidance_scale: float,
    noise_level: float,
    sde_last_step: bool = True,
    record_means: bool = False,
    record_velocities: bool = False,
) -> Trajectories:
    """Sample one trajectory per generator with Flow-GRPO's SDE (or the ODE at noise level 0).

    ``sde_last_step=False`` makes the final step to sigma 0 deterministic (an option; the
    reference injects noise there too, and that is the default).
    """
    if len(generators) != len(cond):
        raise ValueError(f"need one generator per prompt, got {len(generators)} for {len(cond)} prompts")
    sigmas = policy.sigma_schedule(num_steps).to(policy.device)
    std_devs = step_std_devs(sigmas, noise_level, sde_last_step)
    x = policy.initial_noise(generators)
    batch = x.shape[0]
    states, log_probs, means, velocities = [x], [], [], []
    for t in range(num_steps):
        sigma = sigmas[t].expand(batch)
        v = policy.velocity(x, sigma, cond, guidance_scale)
        if record_velocities:
            velocities.append(v.float())
        if std_devs[t] > 0:
            noise = torch.cat([torch.randn((1, *x.shape[1:]), generator=g, device=g.device) for g in generators]).to(
                x.device
            )
            step = sde_step(
                v, x, sigmas[t], sigmas[t + 1], sigma_after_one=sigmas[1], noise_level=noise_level, noise=noise
            )
            x, lp, mean = step.next_x, step.log_prob, step.mean
        else:
            x = ode_step(v, x, sigmas[t], sigmas[t + 1]).float()
            lp, mean = torch.full((batch,), float("nan"), device=x.device), x
        states.append(x)
        log_probs.append(lp)
        if record_means:
            means.append(mean)
    return Trajectories(
        states=torch.stack(states, dim=1),
        sigmas=sigmas,
        log_probs=torch.stack(log_probs, dim=1),
        std_devs=std_devs,
        means=torch.stack(means, dim=1) if record_means else None,
        velocities=torch.stack(velocities, dim=1) if record_velocities else None,
    )


def step_log_prob(
    policy: FlowPolicy,
    traj: Trajectories,
    t: int,
    cond: Conditioning,
    *,
    guidance_scale: float,
    noise_level: float,
):
    """Re-score transition t of stored trajectories under the policy's current parameters.

    Returns the :class:`~superflow.flow.sde.StepResult` whose ``log_prob`` carries gradients.
    """
    sigmas = traj.sigmas
    x = traj.states[:, t]
    v = policy.velocity(x, sigmas[t].expand(x.shape[0]), cond, guidance_scale, detach_uncond=True)
    return sde_step(
        v,
        x,
        sigmas[t],
        sigmas[t + 1],
        sigma_after_one=sigmas[1],
        noise_level=noise_level,
        next_x=traj.states[:, t + 1],
    )


class NonFiniteSampleError(ValueError):
    """The model produced NaN or inf: the weights have diverged (or the input was bad)."""


def require_finite_images(images: torch.Tensor, prompts: Sequence[str]) -> None:
    """Raise, naming the first affected prompt, when any decoded image holds NaN or inf.

    Scoring such an image would turn a diverged model into an ordinary low (or NaN) reward; the
    run should stop instead, with its checkpoints intact.
    """
    bad = torch.nonzero(~torch.isfinite(images.flatten(1)).all(dim=1)).flatten().tolist()
    if bad:
        raise NonFiniteSampleError(
            f"the model produced NaN or inf in {len(bad)} of {len(prompts)} sampled images (first: prompt "
            f"{prompts[bad[0]]!r}); the weights have likely diverged: resume from an earlier checkpoint "
            "with a lower train.lr"
        )
