"""What an optimiser step minimises, one class per ``algorithm.objective``.

- ``policy_gradient`` (Flow-GRPO, Flow-SPO, SuperFlow): the clipped policy gradient of the stored
  SDE transitions, plus beta x the KL to the base model.
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
from superflow.rl.nft import nft_loss, nft_reward_weights, old_policy_decay, shuffled_timestep_indices
from superflow.seeding import noise_generators

__all__ = ["PolicyGradientObjective", "NFTObjective", "make_objective"]

#: The seeded stream of NFT's forward-process noise (sampling uses 1, the trainer's draws 0, 2, 3).
NFT_NOISE_STREAM = 5


class PolicyGradientObjective:
    """Flow-GRPO's clipped loss on the first ``cfg.num_train_steps`` stored transitions."""

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
        guidance = {"guidance_scale": cfg.sample.guidance_scale, "noise_level": cfg.sample.noise_level}
        step = step_log_prob(self.policy, sub, j, sub_cond, **guidance)
        old = sub.log_probs[:, j].to(device)
        loss, info = clipped_policy_loss(step.log_prob, old, adv.to(device), t.clip_range, adv_clip=t.adv_clip)
        stats["policy_loss"].append(float(loss.detach()))
        for k in ("clipfrac", "approx_kl", "ratio_mean"):
            stats[k].append(float(info[k]))
        if t.beta > 0:
            with torch.no_grad(), self.policy.adapter_disabled():
                ref = step_log_prob(self.policy, sub, j, sub_cond, **guidance)
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


class NFTObjective(PolicyGradientObjective):
    """DiffusionNFT: ODE samples of the old weights, the NFT loss at ``cfg.num_train_steps`` of the
    sampler's timesteps per sample (a random subset in random order, fresh noise at each)."""

    def __init__(self, cfg: Config, policy: FlowPolicy, params: list[torch.Tensor], dist: Distributed):
        super().__init__(cfg, policy, params, dist)
        self.old = EMA(params)  # only its copy, swap and blend are used: the schedule is NFT's own

    @property
    def sampling_noise_level(self) -> float:
        return 0.0

    def sampling_weights(self) -> AbstractContextManager:
        return self.old.swapped_in(self.params)

    def trained_samples(self, step_adv: torch.Tensor) -> torch.Tensor:
        """Every sample: a tied group (r = 1/2) still trains, as a pull towards the old weights."""
        return torch.arange(len(step_adv))

    def accumulate(self, chunk, traj: Trajectories, cond: Conditioning, step_adv, stats, logp_change, epoch: int):
        cfg, t = self.cfg, self.cfg.train
        policy, device = self.policy, self.policy.device
        mine = self.dist.shard(len(step_adv))
        num_trained = cfg.num_train_steps
        guidance = cfg.sample.guidance_scale
        r_all = nft_reward_weights(step_adv[:, 0], t.adv_clip)
        # One generator per sample, from its global index: the same noise however the epoch is split.
        gens = noise_generators(cfg.seed, epoch, NFT_NOISE_STREAM, len(step_adv))
        local = chunk[(chunk >= mine.start) & (chunk < mine.stop)]
        for micro in torch.split(local, t.micro_batch_size):
            rows = (micro - mine.start).to(traj.states.device)
            x0 = traj.final[rows].float()
            sub_cond = cond.index(micro - mine.start)
            steps, noises = [], []
            for i in micro.tolist():
                steps.append(shuffled_timestep_indices(traj.num_steps, num_trained, gens[i]))
                noises.append(torch.randn((num_trained, *x0.shape[1:]), generator=gens[i]))
            steps, noises = torch.stack(steps), torch.stack(noises).to(device)
            r = r_all[micro].to(device)
            weight = len(micro) / len(chunk) / num_trained
            for j in range(num_trained):
                sigma = traj.sigmas[steps[:, j].to(traj.sigmas.device)].to(device).float()
                s = sigma.view(-1, *([1] * (x0.ndim - 1)))
                x_t = (1 - s) * x0 + s * noises[:, j]
                # The old and reference passes run before the graded one: the swap copies in place.
                with torch.no_grad(), self.old.swapped_in(self.params):
                    v_old = policy.velocity(x_t, sigma, sub_cond, guidance)
                v_ref = None
                if t.beta > 0:
                    with torch.no_grad(), policy.adapter_disabled():
                        v_ref = policy.velocity(x_t, sigma, sub_cond, guidance)
                v = policy.velocity(x_t, sigma, sub_cond, guidance, detach_uncond=True)
                loss = nft_loss(v, v_old, x0, x_t, sigma, r, nft_beta=t.nft_beta, adv_clip=t.adv_clip)
                stats["policy_loss"].append(float(loss.detach()))
                if v_ref is not None:
                    kl = ((v - v_ref) ** 2).mean()
                    stats["kl"].append(float(kl.detach()))
                    loss = loss + t.beta * kl
                (loss * weight).backward()

    def end_epoch(self, global_step: int) -> None:
        t = self.cfg.train
        self.old.blend(self.params, old_policy_decay(global_step, t.old_decay_rate, t.old_decay_cap))

    def state_dict(self) -> dict[str, Any]:
        return {"old": self.old.state_dict()}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if not state or "old" not in state:
            raise ValueError("the checkpoint has no NFT old weights (was it written by another objective?)")
        self.old.load_state_dict(state["old"])


OBJECTIVES = {"policy_gradient": PolicyGradientObjective, "nft": NFTObjective}


def make_objective(cfg: Config, policy: FlowPolicy, params: list[torch.Tensor], dist: Distributed):
    return OBJECTIVES[cfg.algorithm.objective](cfg, policy, params, dist)
