"""What an optimiser step minimises, one class per ``algorithm.objective``.

- ``policy_gradient`` (Flow-GRPO, Flow-GRPO-Fast, Flow-SPO, SuperFlow): the clipped policy gradient
  of the stored SDE (or CPS) transitions, plus beta x the KL to the base model.
- ``nft`` (DiffusionNFT; ``superflow.rl.nft``): images sampled by the ODE with a frozen "old" copy
  of the weights, noised afresh at the sampler's timesteps and fitted with the NFT loss; the old
  copy follows the live weights once per epoch.

The trainer owns the loop (epochs, chunks, optimiser steps); an objective says which samples train,
which weights and noise level sample, and how a chunk's gradient accumulates. Gradients are
weighted so that the summed gradient of all ranks is the one-process gradient.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from superflow.config import Config
from superflow.distributed import Distributed
from superflow.flow.sampler import Trajectories, step_log_prob
from superflow.models.base import Conditioning, FlowPolicy
from superflow.rl import EMA, clipped_policy_loss, kl_to_reference
from superflow.rl.nft import (
    awm_loss,
    nft_loss,
    nft_reward_weights,
    old_policy_decay,
    shuffled_timestep_indices,
    stratified_timestep_indices,
)
from superflow.seeding import noise_generators

__all__ = ["PolicyGradientObjective", "NFTObjective", "AWMObjective", "make_objective"]

#: The seeded stream of NFT's and AWM's forward-process noise (the others: ``superflow.seeding.SHARED_START_STREAM``).
FORWARD_NOISE_STREAM = 5


class PolicyGradientObjective:
    """Flow-GRPO's clipped loss on the first ``cfg.num_train_steps`` stored transitions (on the SDE
    window's transitions with ``sample.sde_window_size``: Flow-GRPO-Fast)."""

    def __init__(self, cfg: Config, policy: FlowPolicy, params: list[torch.Tensor], dist: Distributed):
        self.cfg, self.policy, self.params, self.dist = cfg, policy, params, dist

    @property
    def sampling_noise_level(self) -> float:
        return self.cfg.sample.noise_level

    def sampling_weights(self) -> AbstractContextManager:
        """The weights that sample an epoch's images: the live ones."""
        return nullcontext()

    def trained_samples(self, step_adv: torch.Tensor) -> torch.Tensor:
        """Samples with any non-zero step advantage (a zero one has no policy gradient)."""
        return torch.nonzero(step_adv.abs().sum(dim=1) != 0).flatten()

    def accumulate(self, chunk, traj: Trajectories, cond: Conditioning, step_adv, stats, logp_change, epoch: int):
        """Backward of the chunk's loss, micro-batch by micro-batch, over this rank's part of ``chunk``;
        each sample's mean |log-prob change| over the trained steps is added to ``logp_change``."""
        mine = self.dist.shard(len(step_adv))
        num_steps = self.cfg.num_train_steps
        local = chunk[(chunk >= mine.start) & (chunk < mine.stop)]
        for micro in torch.split(local, self.cfg.train.micro_batch_size):
            rows = micro - mine.start  # positions in this rank's slice
            sub = traj.index(rows.to(traj.states.device))
            sub_cond = cond.index(rows)
            weight = len(micro) / len(chunk) / num_steps
            for j in range(num_steps):
                loss, change = self._step_loss(sub, sub_cond, j, step_adv[micro, j], stats)
                (loss * weight).backward()
                logp_change[micro] += change / num_steps

    def _step_loss(self, sub: Trajectories, sub_cond: Conditioning, j: int, adv: torch.Tensor, stats):
        """The clipped policy loss of denoising step ``j`` (plus beta x the KL to the base model),
        and each sample's |log-prob change| at that step since sampling."""
        cfg, t = self.cfg, self.cfg.train
        device = self.policy.device
        guidance = {
            "guidance_scale": cfg.sample.guidance_scale,
            "noise_level": cfg.sample.noise_level,
            "sde_type": cfg.sample.sde_type,
        }
        step_index = sub.step_index(j)  # j itself, or each trajectory's j-th step of its SDE window
        step = step_log_prob(self.policy, sub, step_index, sub_cond, **guidance)
        rows = torch.arange(len(sub.log_probs), device=sub.log_probs.device)
        old = sub.log_probs[rows, step_index].to(device)
        loss, info = clipped_policy_loss(step.log_prob, old, adv.to(device), t.clip_range, adv_clip=t.adv_clip)
        stats["policy_loss"].append(float(loss.detach()))
        for k in ("clipfrac", "approx_kl", "ratio_mean"):
            stats[k].append(float(info[k]))
        if t.beta > 0:
            with torch.no_grad(), self.policy.adapter_disabled():
                ref = step_log_prob(self.policy, sub, step_index, sub_cond, **guidance)
            kl = kl_to_reference(step.mean, ref.mean, step.std_dev)
            stats["kl"].append(float(kl.detach()))
            loss = loss + t.beta * kl
        return loss, (step.log_prob.detach().cpu() - old.cpu()).abs()

    def end_epoch(self, global_step: int) -> None:
        """Called after an epoch's optimiser steps."""

    def state_dict(self) -> dict[str, Any] | None:
        return None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        pass


class _ForwardProcessObjective(PolicyGradientObjective):
    """Shared by NFT and AWM: a frozen copy of the trainable weights (NFT's old policy, AWM's slow
    anchor) that follows the live ones once per epoch, and training on the sampled clean images
    noised afresh, ``x_t = (1 - t) x0 + t eps``, at ``cfg.num_train_steps`` sampler timesteps per image.
    The timesteps and the noise come from one generator per image (its global index), so any split
    of the epoch into ranks and micro-batches trains on the same points."""

    NOISE_STREAM = FORWARD_NOISE_STREAM

    def __init__(self, cfg: Config, policy: FlowPolicy, params: list[torch.Tensor], dist: Distributed):
        super().__init__(cfg, policy, params, dist)
        self.copy = EMA(params)  # only its copy, swap and blend are used: the schedule is the method's

    def trained_samples(self, step_adv: torch.Tensor) -> torch.Tensor:
        """Every sample: a tied group still trains (NFT: a pull towards the old weights)."""
        return torch.arange(len(step_adv))

    def _timesteps(self, num_steps: int, count: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def _loss(self, v, v_copy, x0, x_t, eps, sigma, adv) -> torch.Tensor:
        """The method's own loss (logged as ``policy_loss``)."""
        raise NotImplementedError

    def _copy_pull(self, v, v_copy) -> torch.Tensor | None:
        """A pull towards the frozen copy added after the KL term (None: the loss already uses it)."""
        return None

    def _needs_copy_pass(self) -> bool:
        return True

    def accumulate(self, chunk, traj: Trajectories, cond: Conditioning, step_adv, stats, logp_change, epoch: int):
        cfg, t = self.cfg, self.cfg.train
        policy, device = self.policy, self.policy.device
        mine = self.dist.shard(len(step_adv))
        num_trained = cfg.num_train_steps
        guidance = cfg.sample.guidance_scale
        gens = noise_generators(cfg.seed, epoch, self.NOISE_STREAM, len(step_adv))
        local = chunk[(chunk >= mine.start) & (chunk < mine.stop)]
        for micro in torch.split(local, t.micro_batch_size):
            rows = (micro - mine.start).to(traj.states.device)
            x0 = traj.final[rows].float()
            sub_cond = cond.index(micro - mine.start)
            steps, noises = [], []
            for i in micro.tolist():
                steps.append(self._timesteps(traj.num_steps, num_trained, gens[i]))
                noises.append(torch.randn((num_trained, *x0.shape[1:]), generator=gens[i]))
            steps, noises = torch.stack(steps), torch.stack(noises).to(device)
            adv = step_adv[micro, 0].to(device)
            weight = len(micro) / len(chunk) / num_trained
            for j in range(num_trained):
                sigma = traj.sigmas[steps[:, j].to(traj.sigmas.device)].to(device).float()
                s = sigma.view(-1, *([1] * (x0.ndim - 1)))
                x_t = (1 - s) * x0 + s * noises[:, j]
                # The copy and reference passes run before the graded one: the swap copies in place.
                v_copy = v_ref = None
                if self._needs_copy_pass():
                    with torch.no_grad(), self.copy.swapped_in(self.params):
                        v_copy = policy.velocity(x_t, sigma, sub_cond, guidance)
                if t.beta > 0:
                    with torch.no_grad(), policy.adapter_disabled():
                        v_ref = policy.velocity(x_t, sigma, sub_cond, guidance)
                v = policy.velocity(x_t, sigma, sub_cond, guidance, detach_uncond=True)
                loss = self._loss(v, v_copy, x0, x_t, noises[:, j], sigma, adv)
                stats["policy_loss"].append(float(loss.detach()))
                if v_ref is not None:
                    kl = ((v - v_ref) ** 2).mean()
                    stats["kl"].append(float(kl.detach()))
                    loss = loss + t.beta * kl
                pull = self._copy_pull(v, v_copy)
                if pull is not None:
                    loss = loss + pull
                (loss * weight).backward()

    def end_epoch(self, global_step: int) -> None:
        t = self.cfg.train
        self.copy.blend(self.params, old_policy_decay(global_step, t.old_decay_rate, t.old_decay_cap))

    def state_dict(self) -> dict[str, Any]:
        return {"copy": self.copy.state_dict()}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if not state or "copy" not in state:
            raise ValueError("the checkpoint has no copy of the weights for this objective (written by another one?)")
        self.copy.load_state_dict(state["copy"])


class NFTObjective(_ForwardProcessObjective):
    """DiffusionNFT: ODE samples of the old weights; the NFT loss at a random subset of the sampler's
    timesteps per image, in random order."""

    @property
    def sampling_noise_level(self) -> float:
        return 0.0

    def sampling_weights(self) -> AbstractContextManager:
        return self.copy.swapped_in(self.params)

    def _timesteps(self, num_steps: int, count: int, generator: torch.Generator) -> torch.Tensor:
        return shuffled_timestep_indices(num_steps, count, generator)

    def _loss(self, v, v_copy, x0, x_t, eps, sigma, adv) -> torch.Tensor:
        t = self.cfg.train
        r = nft_reward_weights(adv, t.adv_clip)
        return nft_loss(v, v_copy, x0, x_t, sigma, r, nft_beta=t.nft_beta, adv_clip=t.adv_clip)


class AWMObjective(_ForwardProcessObjective):
    """Advantage Weighted Matching: SDE samples of the live weights (their SA-Solver is not ours);
    the AWM loss at stratified sampler timesteps in ``[1, int(0.9 T)]`` per image, plus
    ``train.beta`` x the squared distance to the base model and ``train.awm_slow_weight`` x that to
    the slow copy."""

    def _needs_copy_pass(self) -> bool:
        return self.cfg.train.awm_slow_weight > 0

    def _timesteps(self, num_steps: int, count: int, generator: torch.Generator) -> torch.Tensor:
        high = max(1, int(0.9 * num_steps))
        return stratified_timestep_indices(1, high, min(count, high), generator)

    def _loss(self, v, v_copy, x0, x_t, eps, sigma, adv) -> torch.Tensor:
        t = self.cfg.train
        return awm_loss(v, eps - x0, sigma, adv, adv_clip=t.adv_clip, power=t.awm_ghuber_power)

    def _copy_pull(self, v, v_copy) -> torch.Tensor | None:
        return None if v_copy is None else self.cfg.train.awm_slow_weight * ((v - v_copy) ** 2).mean()


OBJECTIVES = {"policy_gradient": PolicyGradientObjective, "nft": NFTObjective, "awm": AWMObjective}


def make_objective(cfg: Config, policy: FlowPolicy, params: list[torch.Tensor], dist: Distributed):
    return OBJECTIVES[cfg.algorithm.objective](cfg, policy, params, dist)
