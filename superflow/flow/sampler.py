"""Batched sampling that records what policy-gradient training needs.

A trajectory keeps every state, the schedule, each step's log-prob and (optionally) its Gaussian
mean, so the trainer can re-score the same transitions under updated parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from superflow.flow.sde import cps_step, ode_step, sde_std_dev, sde_step
from superflow.models.base import Conditioning, FlowPolicy
from superflow.seeding import seed_from


@dataclass
class Trajectories:
    """A batch of sampled trajectories.

    ``states[:, t]`` is the state before step t; ``states[:, T]`` is the final latent.
    ``log_probs`` is NaN for deterministic (ODE) steps, which have no density. With an SDE window
    (Flow-GRPO-Fast) only steps ``sde_start[i] .. sde_start[i] + window - 1`` of trajectory i are
    stochastic; ``std_devs`` still holds every step's SDE scale.
    """

    states: torch.Tensor  # [B, T+1, *latent]
    sigmas: torch.Tensor  # [T+1]
    log_probs: torch.Tensor  # [B, T]
    std_devs: torch.Tensor  # [T]
    means: torch.Tensor | None = None  # [B, T, *latent]
    velocities: torch.Tensor | None = None  # [B, T, *latent], the guided velocity at each state
    sde_start: torch.Tensor | None = None  # [B], first stochastic step of each trajectory's window

    def step_index(self, j: int) -> int | torch.Tensor:
        """The denoising step of each trajectory's ``j``-th trained transition: ``j`` itself, or
        ``sde_start + j`` (per trajectory) inside an SDE window."""
        return j if self.sde_start is None else self.sde_start + j

    def endpoint_predictions(self) -> torch.Tensor:
        """The flow's one-step guess of the final image from every state: x_t - s_t v_t ([B, T, ...]).

        Reuses the velocities computed while sampling, so per-step values cost no extra model pass.
        """
        if self.velocities is None:
            raise ValueError("trajectories were sampled without record_velocities=True")
        shape = (1, -1) + (1,) * (self.states.ndim - 2)
        return self.states[:, :-1] - self.sigmas[:-1].view(shape) * self.velocities

    def without_recordings(self) -> Trajectories:
        """What training re-scores, without the recorded means and velocities (memory)."""
        return Trajectories(self.states, self.sigmas, self.log_probs, self.std_devs, sde_start=self.sde_start)

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
            sde_start=None if self.sde_start is None else self.sde_start[idx],
        )

    @staticmethod
    def cat(parts: Sequence[Trajectories]) -> Trajectories:
        means = None if parts[0].means is None else torch.cat([p.means for p in parts])
        velocities = None if parts[0].velocities is None else torch.cat([p.velocities for p in parts])
        sde_start = None if parts[0].sde_start is None else torch.cat([p.sde_start for p in parts])
        return Trajectories(
            states=torch.cat([p.states for p in parts]),
            sigmas=parts[0].sigmas,
            log_probs=torch.cat([p.log_probs for p in parts]),
            std_devs=parts[0].std_devs,
            means=means,
            velocities=velocities,
            sde_start=sde_start,
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
    sde_window: tuple[torch.Tensor | int, int] | None = None,
    sde_type: str = "sde",
    start_generators: Sequence[torch.Generator] | None = None,
) -> Trajectories:
    """Sample one trajectory per generator with Flow-GRPO's SDE (or the ODE at noise level 0).

    ``sde_last_step=False`` makes the final step to sigma 0 deterministic (an option; the
    reference injects noise there too, and that is the default). ``sde_window=(start, size)``
    keeps the noise of trajectory i to steps ``start[i] .. start[i] + size - 1`` (``start`` an int
    or one per trajectory) and runs the ODE elsewhere (Flow-GRPO-Fast); ``sde_type="cps"`` takes
    its coefficients-preserving step instead of the SDE's. An image draws noise from its generator
    only at its own stochastic steps, so its trajectory does not depend on its batch.
    ``start_generators`` draw the starting latents instead (then ``generators`` draw only the SDE's
    noise), e.g. generators seeded alike for one start shared by a group.
    """
    if len(generators) != len(cond):
        raise ValueError(f"need one generator per prompt, got {len(generators)} for {len(cond)} prompts")
    sigmas = policy.sigma_schedule(num_steps).to(policy.device)
    std_devs = step_std_devs(sigmas, noise_level, sde_last_step)
    stochastic = std_devs > 0
    if sde_type == "cps":
        stochastic = stochastic & (sigmas[1:] > 0)  # a CPS step to sigma 0 has no noise
    if start_generators is not None and len(start_generators) != len(generators):
        raise ValueError(f"need one start generator per image, got {len(start_generators)} for {len(generators)}")
    x = policy.initial_noise(generators if start_generators is None else start_generators)
    batch = x.shape[0]
    steps = torch.arange(num_steps, device=x.device)
    noisy = stochastic.to(x.device).expand(batch, num_steps)  # [B, T]: which transitions are stochastic
    starts = None
    if sde_window is not None:
        starts = torch.as_tensor(sde_window[0], device=x.device).expand(batch).clone()
        noisy = noisy & (steps >= starts[:, None]) & (steps < starts[:, None] + sde_window[1])
    states, log_probs, means, velocities = [x], [], [], []
    with policy.sampling_scope():
        for t in range(num_steps):
            sigma = sigmas[t].expand(batch)
            v = policy.velocity(x, sigma, cond, guidance_scale)
            if record_velocities:
                velocities.append(v.float())
            rows = noisy[:, t]
            deterministic = ode_step(v, x, sigmas[t], sigmas[t + 1]).float()
            x, lp, mean = deterministic, torch.full((batch,), float("nan"), device=x.device), deterministic
            if rows.any():
                noise = torch.cat(
                    [
                        torch.randn((1, *x.shape[1:]), generator=g, device=g.device).to(x.device)
                        if row
                        else torch.zeros((1, *x.shape[1:]), device=x.device)
                        for g, row in zip(generators, rows.tolist())
                    ]
                )
                step = transition(v, states[-1], sigmas, t, noise_level, sde_type, noise=noise)
                keep = rows.view(-1, *([1] * (x.ndim - 1)))
                x = torch.where(keep, step.next_x, deterministic)
                mean = torch.where(keep, step.mean, deterministic)
                lp = torch.where(rows, step.log_prob, lp)
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
        sde_start=starts,
    )


#: The seeded stream of the SDE windows' starts (sampling noise is stream 1).
WINDOW_STREAM = 6


def draw_sde_window(
    size: int, window_range: Sequence[int], seed: int, epoch: int, image_indices: Sequence[int]
) -> tuple[torch.Tensor, int] | None:
    """Flow-GRPO-Fast's windows: (starts, size), each image's start uniform on lo .. hi - size from
    its own (seed, epoch, image) stream, so the draws do not depend on batches or ranks (the
    reference draws one per sampling batch); None when ``size`` is 0 (every step stochastic)."""
    if size == 0:
        return None
    lo, hi = window_range
    starts = [
        int(
            torch.randint(
                lo,
                hi - size + 1,
                (1,),
                generator=torch.Generator().manual_seed(seed_from(seed, epoch, WINDOW_STREAM, i)),
            )
        )
        for i in image_indices
    ]
    return torch.tensor(starts), size


def transition(v, x, sigmas: torch.Tensor, t, noise_level: float, sde_type: str, **sample_or_score):
    """Step ``t`` (an int, or one step index per sample) as a Gaussian policy: Flow-GRPO's SDE or CPS."""
    if sde_type == "cps":
        return cps_step(v, x, sigmas[t], sigmas[t + 1], noise_level=noise_level, **sample_or_score)
    return sde_step(
        v, x, sigmas[t], sigmas[t + 1], sigma_after_one=sigmas[1], noise_level=noise_level, **sample_or_score
    )


def step_log_prob(
    policy: FlowPolicy,
    traj: Trajectories,
    t: int,
    cond: Conditioning,
    *,
    guidance_scale: float,
    noise_level: float,
    sde_type: str = "sde",
):
    """Re-score transition t of stored trajectories under the policy's current parameters; ``t`` is
    a step index, or a tensor of one per trajectory (an SDE window's steps, ``traj.step_index(j)``).

    Returns the :class:`~superflow.flow.sde.StepResult` whose ``log_prob`` carries gradients.
    """
    sigmas = traj.sigmas
    if isinstance(t, torch.Tensor):
        rows = torch.arange(len(t), device=traj.states.device)
        t = t.to(traj.states.device)
        x, next_x = traj.states[rows, t], traj.states[rows, t + 1]
        t = t.to(sigmas.device)
    else:
        x, next_x = traj.states[:, t], traj.states[:, t + 1]
    v = policy.velocity(x, sigmas[t].expand(x.shape[0]), cond, guidance_scale, detach_uncond=True)
    return transition(v, x, sigmas, t, noise_level, sde_type, next_x=next_x)


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
