"""One trainer for every method: Flow-GRPO, Flow-SPO and SuperFlow differ only in configuration.

An epoch: choose prompts and group sizes, sample trajectories with the SDE, score them, turn rewards
into trajectory advantages and then step-level advantages, run the clipped policy-gradient updates,
update the per-prompt trackers, log one JSON line of metrics, and checkpoint atomically. Every random
draw of an epoch comes from ``(seed, epoch)`` (its prompts from ``data_seed`` if set) and every image's
noise from its own generator, so a resumed run repeats the numbers of an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from superflow.checkpoint import rng_state, set_rng_state
from superflow.config import Config, ConfigError
from superflow.distributed import Distributed
from superflow.evaluation.runner import as_training_metrics, evaluate_policy
from superflow.flow.sampler import Trajectories, draw_sde_window, require_finite_images, sample_trajectories
from superflow.models import build_policy
from superflow.models.base import Conditioning, FlowPolicy
from superflow.objectives import make_objective
from superflow.prompts import PromptSet, load_prompts, load_training_prompts
from superflow.rewards import Reward, get_reward
from superflow.rl import (
    EMA,
    EpochPlan,
    StepBatch,
    baseline_advantages,
    drift_adaptive_rho_by_key,
    make_step_estimator_from_config,
    make_tracker_from_config,
    plan_epoch,
    tag_balanced_weights,
    tied_groups,
)
from superflow.rl.reward_queue import RewardQueue
from superflow.run_folder import RunFolder
from superflow.run_logging import RunLogger
from superflow.seeding import SHARED_START_STREAM, group_noise_generators, noise_generators, seed_from
from superflow.timing import TIMING_KEYS, Timer

__all__ = ["Trainer", "LOSS_STATS", "TIMING_KEYS"]

#: Per-step statistics of the loss, averaged over an epoch's optimiser steps.
LOSS_STATS = ("policy_loss", "kl", "clipfrac", "approx_kl", "ratio_mean")


class Trainer:
    """Runs ``cfg.num_epochs`` epochs of online RL on ``policy`` with ``reward``.

    ``policy``, ``reward`` and the prompt sets default to what the config names; tests and
    notebooks may pass their own.
    """

    def __init__(
        self,
        cfg: Config,
        policy: FlowPolicy | None = None,
        reward: Reward | None = None,
        train_prompts: PromptSet | None = None,
        test_prompts: PromptSet | None = None,
        progress: bool = True,
        distributed: Distributed | None = None,
    ):
        self.cfg = cfg
        self.dist = distributed or Distributed.from_environment()
        self.progress = progress and self.dist.is_main
        self.folder = RunFolder(cfg.output_dir)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        self.reward = reward or get_reward(cfg.reward.name, **cfg.reward.kwargs)
        self.train_prompts = load_training_prompts(cfg.data.train_prompts, train_prompts)
        if test_prompts is None and cfg.data.test_prompts:
            test_prompts = load_prompts(cfg.data.test_prompts)
        self.test_prompts = test_prompts
        for prompt_set in filter(None, (self.train_prompts, self.test_prompts)):
            prompt_set.require_metadata(self.reward.metadata_keys, needed_by=f"reward {self.reward.name!r}")
        balance = cfg.data.balance_tags
        self.prompt_weights = tag_balanced_weights(self.train_prompts.tags("data.balance_tags")) if balance else None
        if len(self.train_prompts) < cfg.sample.prompts_per_epoch:
            raise ValueError(
                f"sample.prompts_per_epoch={cfg.sample.prompts_per_epoch} but "
                f"{self.train_prompts.source or 'the prompt set'} has only {len(self.train_prompts)} distinct prompts"
            )
        self.policy = policy or build_policy(cfg)
        self.policy.prepare_prompts([*self.train_prompts.prompts, *(self.test_prompts or PromptSet([])).prompts])
        self.params = self.policy.trainable_parameters()
        t = cfg.train
        self.optimizer = torch.optim.AdamW(
            self.params, lr=t.lr, betas=(t.adam_beta1, t.adam_beta2), eps=t.adam_eps, weight_decay=t.weight_decay
        )
        self.objective = make_objective(cfg, self.policy, self.params, self.dist)
        self.ema = EMA(self.params, decay=t.ema_decay, update_every=t.ema_every) if t.ema else None
        self.tracker = make_tracker_from_config(cfg.algorithm, self.reward.bounded_unit, self.train_prompts.tag_of())
        self.step_estimator = make_step_estimator_from_config(cfg.algorithm)
        self.epoch, self.global_step = 0, 0
        self.totals = {"images_sampled": 0, "reward_calls": 0, "time_total": 0.0}
        self.last_step_advantages: torch.Tensor | None = None  # the latest epoch's A[i, t], for inspection

    # ------------------------------------------------------------------ planning
    def plan_epoch(self, epoch: int) -> EpochPlan:
        cfg = self.cfg
        return plan_epoch(
            cfg.algorithm,
            self.tracker,
            self.train_prompts.prompts,
            cfg.sample.prompts_per_epoch,
            budget=cfg.budget,
            group_size=cfg.sample.group_size,
            rng=np.random.default_rng([cfg.seed if cfg.data_seed is None else cfg.data_seed, epoch, 0]),
            weights=self.prompt_weights,
        )

    # ------------------------------------------------------------------ sampling
    def _encode(self, prompts: Sequence[str]) -> Conditioning:
        unique = list(dict.fromkeys(prompts))
        cond = self.policy.encode_prompts(unique)
        where = {p: i for i, p in enumerate(unique)}
        return cond.index([where[p] for p in prompts])

    def _score_timed(self, images: torch.Tensor, prompt_idx: np.ndarray, timer: Timer) -> np.ndarray:
        with timer("time_reward"):  # with overlap on: the worker's busy time, which sampling hides
            return self._score(images, prompt_idx, self.train_prompts)

    def _score(self, images: torch.Tensor, prompt_idx: np.ndarray, prompt_set: PromptSet) -> np.ndarray:
        prompts = [prompt_set.prompts[i] for i in prompt_idx]
        metadata = [prompt_set.metadata[i] for i in prompt_idx]
        require_finite_images(images, prompts)
        scores, _ = self.reward(images.cpu(), prompts, metadata)
        self.totals["reward_calls"] += len(prompts)
        return scores

    def sample_epoch(self, epoch: int, plan: EpochPlan, timer: Timer):
        """Sample and score this rank's slice of the epoch: returns this rank's trajectories and the
        *global* reward (and value) arrays."""
        cfg, all_idx = self.cfg, plan.sample_prompt_indices
        n = len(all_idx)
        mine = self.dist.shard(n)
        needs_values = getattr(self.step_estimator, "needs_values", False)
        trajectories, values = [], []
        scores = RewardQueue(self._score_timed, overlap=cfg.sample.overlap_reward)
        self.policy.eval()
        batches = range(mine.start, mine.stop, cfg.sample.batch_size)
        window = (cfg.sample.sde_window_size, cfg.sample.sde_window_range)
        shared = group_noise_generators(cfg.seed, epoch, SHARED_START_STREAM, plan.group_ids, self.policy.device)
        with self.objective.sampling_weights():  # NFT samples with its old weights
            for start in tqdm(batches, desc=f"epoch {epoch}: sampling", disable=not self.progress, leave=False):
                idx = all_idx[start : min(start + cfg.sample.batch_size, mine.stop)]
                with timer("time_sampling"):
                    cond = self._encode([self.train_prompts.prompts[i] for i in idx])
                    # Noise per image from its global index: any split across ranks or batches samples the same.
                    gens = noise_generators(cfg.seed, epoch, 1, len(idx), offset=start, device=self.policy.device)
                    traj = sample_trajectories(
                        self.policy,
                        cond,
                        gens,
                        num_steps=cfg.sample.num_steps,
                        guidance_scale=cfg.sample.guidance_scale,
                        noise_level=self.objective.sampling_noise_level,
                        sde_last_step=cfg.sample.sde_last_step,
                        record_velocities=needs_values,
                        sde_window=draw_sde_window(*window, cfg.seed, epoch, range(start, start + len(idx))),
                        sde_type=cfg.sample.sde_type,
                        start_generators=shared[start : start + len(idx)] if cfg.sample.same_initial_noise else None,
                    )
                    images = self.policy.decode(traj.final)
                scores.submit(images, idx, timer)
                if needs_values:
                    values.append(self._step_values(traj, idx, scores.last(), timer))
                trajectories.append(traj.without_recordings())
        self.totals["images_sampled"] += n
        traj = Trajectories.cat(trajectories)
        rewards_all = self.dist.gather_rows(np.concatenate(scores.results()))
        values_all = self.dist.gather_rows(np.concatenate(values)) if values else None
        return traj, rewards_all, values_all

    def _step_values(self, traj: Trajectories, idx: np.ndarray, final_rewards: np.ndarray, timer: Timer) -> np.ndarray:
        """V_t = reward of the flow's endpoint guess from each state (Tweedie), V_T = final reward."""
        predictions = traj.endpoint_predictions()
        values = np.empty((len(idx), traj.num_steps + 1))
        for t in range(traj.num_steps):
            with timer("time_sampling"):
                images = self.policy.decode(predictions[:, t])
            with timer("time_reward"):
                values[:, t] = self._score(images, idx, self.train_prompts)
        values[:, -1] = final_rewards
        return values

    # ------------------------------------------------------------------ advantages
    def advantages(self, plan: EpochPlan, traj: Trajectories, rewards: np.ndarray, values: np.ndarray | None):
        cfg, a = self.cfg, self.cfg.algorithm
        group_ids = plan.group_ids
        keys = [self.train_prompts.prompts[i] for i in plan.sample_prompt_indices]
        adv = baseline_advantages(a, rewards, group_ids, self.tracker, keys)
        tied = tied_groups(rewards, group_ids)
        if a.skip_tied_groups:
            adv = np.where(tied, 0.0, adv)
        batch = StepBatch(
            advantages=torch.as_tensor(adv, dtype=torch.float32),
            sigmas=traj.sigmas.cpu().float(),
            std_devs=traj.std_devs.cpu().float(),
            num_train_steps=cfg.num_train_steps,
            group_ids=torch.as_tensor(group_ids),
            rewards=torch.as_tensor(rewards, dtype=torch.float32),
            values=None if values is None else torch.as_tensor(values, dtype=torch.float32),
        )
        step_adv = self.step_estimator.estimate(batch)
        return step_adv, tied

    # ------------------------------------------------------------------ training
    def train_on(self, epoch: int, traj: Trajectories, cond: Conditioning, step_adv: torch.Tensor, timer: Timer):
        """Optimiser steps on the epoch's samples; ``traj`` and ``cond`` hold this rank's slice,
        ``step_adv`` every sample's advantages (chunks and weights are global, so the summed
        gradient of all ranks is the one-process gradient)."""
        t = self.cfg.train
        keep = self.objective.trained_samples(step_adv)
        stats: dict[str, list[float]] = {k: [] for k in LOSS_STATS}
        logp_change = torch.zeros(len(step_adv))
        if len(keep) == 0:
            return stats, logp_change
        gen = torch.Generator().manual_seed(seed_from(self.cfg.seed, epoch, 2))
        self.policy.train()
        for _ in range(t.inner_epochs):
            order = keep[torch.randperm(len(keep), generator=gen)]
            chunks = [c for c in torch.tensor_split(order, t.updates_per_epoch) if len(c)]
            for chunk in tqdm(chunks, desc=f"epoch {epoch}: training", disable=not self.progress, leave=False):
                with timer("time_training"):
                    self.optimizer.zero_grad(set_to_none=True)
                    self.objective.accumulate(chunk, traj, cond, step_adv, stats, logp_change, epoch)
                    self._optimizer_step()
        self.policy.eval()
        return stats, self.dist.sum_tensor(logp_change) / t.inner_epochs

    def _optimizer_step(self) -> None:
        """Sum the ranks' gradients, clip, step, and update the EMA."""
        self.dist.sum_gradients(self.params)
        torch.nn.utils.clip_grad_norm_(self.params, self.cfg.train.max_grad_norm)
        self.optimizer.step()
        self.global_step += 1
        if self.ema is not None:
            self.ema.step(self.params, self.global_step)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, prompt_set: PromptSet | None = None, num_prompts: int | None = None) -> dict[str, float]:
        """Mean reward of deterministic (ODE) samples on held-out prompts, with the EMA weights.

        The same code and noise as ``superflow evaluate``, so a run's last evaluation equals the
        evaluation of its exported weights.
        """
        prompt_set = prompt_set or self.test_prompts
        if prompt_set is None:
            return {}
        cfg = self.cfg
        subset = prompt_set.head(min(num_prompts or cfg.eval_num_prompts or len(prompt_set), len(prompt_set)))
        context = self.ema.swapped_in(self.params) if self.ema is not None else nullcontext()
        with context:
            result = evaluate_policy(
                self.policy,
                subset,
                self.reward,
                num_steps=cfg.sample.eval_num_steps,
                guidance_scale=cfg.sample.guidance_scale,
                batch_size=cfg.sample.batch_size,
                seed=cfg.eval_seed,
                distributed=self.dist,
            )
        return as_training_metrics(result)

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, epoch: int) -> dict[str, Any]:
        cfg = self.cfg
        timer = Timer()
        before = dict(self.totals)
        plan = self.plan_epoch(epoch)
        traj, rewards, values = self.sample_epoch(epoch, plan, timer)
        if cfg.reward.shuffle_within_epoch:
            order = np.random.default_rng(seed_from(cfg.seed, epoch, 3)).permutation(len(rewards))
            rewards, values = rewards[order], None if values is None else values[order]
        local_calls = self.totals["reward_calls"] - before["reward_calls"]
        self.totals["reward_calls"] = before["reward_calls"] + int(self.dist.sum(local_calls))
        keys = [self.train_prompts.prompts[i] for i in plan.sample_prompt_indices]
        step_adv, tied = self.advantages(plan, traj, rewards, values)
        self.last_step_advantages = step_adv
        with timer("time_training"):
            cond = self._encode(keys[self.dist.shard(len(keys))])
        stats, logp_change = self.train_on(epoch, traj, cond, step_adv, timer)
        self.objective.end_epoch(self.global_step)
        rho = (
            drift_adaptive_rho_by_key(keys, logp_change.numpy(), cfg.algorithm.rho_half_life)
            if cfg.algorithm.rho_half_life
            else None
        )
        self.tracker.update(keys, rewards, rho=rho)
        metrics: dict[str, Any] = {
            "epoch": epoch + 1,
            "global_step": self.global_step,
            "reward_mean": float(rewards.mean()),
            "reward_std": float(rewards.std()),
            "num_prompts": int(len(plan.prompt_indices)),
            "group_sizes": plan.group_sizes.tolist(),
            "tied_groups": int(len(np.unique(plan.group_ids[tied]))),
            "trained_samples": int(len(self.objective.trained_samples(step_adv))),
            "images_sampled": self.totals["images_sampled"] - before["images_sampled"],
            "reward_calls": self.totals["reward_calls"] - before["reward_calls"],
            "step_advantage_profile": step_adv.abs().mean(dim=0).tolist(),
            # The sigma each trained step starts from: the x axis of the step-advantage figure.
            "step_sigmas": traj.sigmas[: step_adv.shape[1]].cpu().float().tolist(),
        }
        for k, v in stats.items():
            metrics[k] = float(np.mean(v)) if v else None
        eval_due = cfg.eval_every and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.num_epochs)
        if eval_due and self.test_prompts is not None:  # every rank samples its shard
            with timer("time_eval"):
                metrics.update(self.evaluate())
        metrics.update(cum_images_sampled=self.totals["images_sampled"], cum_reward_calls=self.totals["reward_calls"])
        metrics.update(timer.epoch_seconds())
        self.totals["time_total"] += metrics["time_epoch"]
        metrics["time_total"] = round(self.totals["time_total"], 4)
        return metrics

    # ------------------------------------------------------------------ run, checkpoint, resume
    def run(self, resume: bool = False, on_config_change: str = "error") -> list[dict[str, Any]]:
        """Train to ``num_epochs``; ``resume`` continues from the newest checkpoint.

        A run folder whose saved config differs from this one (beyond the keys that only extend or
        checkpoint a run) must not be resumed silently: ``on_config_change="error"`` refuses,
        ``"restart"`` discards its checkpoints and starts over (what a workflow wants when a
        changed config reruns a job).
        """
        cfg, folder = self.cfg, self.folder
        main = self.dist.is_main  # only rank 0 writes; the others hold the same state
        if on_config_change not in ("error", "restart"):
            raise ValueError(f"on_config_change must be 'error' or 'restart', not {on_config_change!r}")
        changed = folder.config_changes(cfg) if resume else []
        if changed and on_config_change == "error":
            raise ConfigError(
                f"{folder.path} holds a run with a different config ({', '.join(changed)}); "
                "resume it with the same config, or train into a new folder"
            )
        if main:
            if changed:
                folder.discard_checkpoints()
            folder.summary.unlink(missing_ok=True)  # the run is not finished until it is rewritten
        self.dist.barrier()  # every rank sees the same folder before restoring
        if not (resume and self.restore()) and main:
            folder.metrics.unlink(missing_ok=True)
        if main:
            folder.write_config(cfg)
        history = []
        logger = RunLogger(cfg, folder.path, first_epoch=self.epoch, enabled=main)
        try:
            for epoch in range(self.epoch, cfg.num_epochs):
                metrics = {**self.train_epoch(epoch), "seed": cfg.seed, "method": cfg.method}
                if self.dist.enabled:
                    metrics["world_size"] = self.dist.world_size
                if main:
                    folder.append_metrics(metrics)
                    self._log(logger, metrics)
                history.append(metrics)
                self.epoch = epoch + 1
                if self.epoch % cfg.save_every == 0 or self.epoch == cfg.num_epochs:
                    if main:
                        self.save()
                    self.dist.barrier()
        finally:
            logger.close()
        if main:
            self.export(folder.weights)
            dtype = getattr(self.policy, "dtype", cfg.model.dtype)  # a policy of the user's need not say
            folder.write_summary(cfg.method, cfg.seed, self.epoch, self.global_step, dtype)
        self.dist.barrier()
        return history

    def _log(self, logger: RunLogger, metrics: dict[str, Any]) -> None:
        """The epoch's scalars and histograms, and held-out samples after an evaluation, to the extra backends."""
        if not logger.active:
            return
        tracked = self.tracker.value(self.tracker.seen_keys()) if self.cfg.algorithm.baseline == "tracker" else None
        logger.log_epoch(metrics, tracked)
        if "eval_reward_mean" in metrics and self.cfg.log.samples and self.test_prompts is not None:
            logger.log_samples(metrics["epoch"], *self.held_out_samples(self.cfg.log.samples))
        logger.end_epoch(metrics["epoch"])

    @torch.no_grad()
    def held_out_samples(self, count: int) -> tuple[list[np.ndarray], list[str]]:
        """ODE samples (EMA weights, the evaluation's settings) of the first ``count`` held-out prompts."""
        cfg, prompts = self.cfg, self.test_prompts.prompts[:count]
        gens = noise_generators(cfg.eval_seed, 0, 7, len(prompts), device=self.policy.device)
        context = self.ema.swapped_in(self.params) if self.ema is not None else nullcontext()
        with context:
            num_steps, guidance = cfg.sample.eval_num_steps, cfg.sample.guidance_scale
            traj = sample_trajectories(
                self.policy, self._encode(prompts), gens, num_steps=num_steps, guidance_scale=guidance, noise_level=0.0
            )
            images = self.policy.decode(traj.final).float().clamp(0, 1).cpu()
        return list((images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)), list(prompts)

    def state_dict(self) -> dict[str, Any]:
        return {
            "params": [p.detach().cpu().clone() for p in self.params],
            "optimizer": self.optimizer.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "tracker": self.tracker.state_dict(),
            "objective": self.objective.state_dict(),
            "rng": rng_state(),
            "global_step": self.global_step,
            "totals": dict(self.totals),
        }

    def save(self) -> Path:
        meta = {"seed": self.cfg.seed, "method": self.cfg.method}
        return self.folder.save_checkpoint(self.epoch, self.state_dict(), meta, keep_last=self.cfg.save_total_limit)

    def restore(self) -> bool:
        """Load the newest complete checkpoint; returns False (and starts fresh) if there is none."""
        found = self.folder.load_newest_checkpoint()
        if found is None:
            return False
        state, meta = found
        with torch.no_grad():
            for p, saved in zip(self.params, state["params"], strict=True):
                p.copy_(saved.to(p.device))
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.tracker.load_state_dict(state["tracker"])
        if self.cfg.algorithm.objective != "policy_gradient":
            self.objective.load_state_dict(state.get("objective"))
        set_rng_state(state["rng"])
        self.global_step = state["global_step"]
        self.totals = dict(state["totals"])
        self.epoch = meta["epoch"]
        if self.dist.is_main:  # lines written after the checkpoint belong to epochs that will run again
            self.folder.keep_metrics_lines(meta["metrics_lines"])
        return True

    def export(self, path: Path) -> None:
        """Save the trained weights (the EMA ones when EMA is on) in the model's own format."""
        context = self.ema.swapped_in(self.params) if self.ema is not None else nullcontext()
        with context:
            self.policy.save_pretrained(path)
