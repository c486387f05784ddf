"""One trainer for every method: Flow-GRPO, Flow-SPO and SuperFlow differ only in configuration.

An epoch: choose prompts and group sizes, sample trajectories with the SDE, score them, turn rewards
into trajectory advantages and then step-level advantages, run the clipped policy-gradient updates,
update the per-prompt trackers, log one JSON line of metrics, and checkpoint atomically. Every random
draw of an epoch is derived from ``(seed, epoch)`` and every image's noise from its own generator,
so a resumed run repeats the numbers of an uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from superflow.checkpoint import (
    atomic_write_text,
    list_checkpoints,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from superflow.config import Config, ConfigError, dump_config
from superflow.distributed import Distributed
from superflow.evaluation.runner import evaluate_policy
from superflow.flow.sampler import Trajectories, sample_trajectories, step_log_prob
from superflow.models.base import Conditioning, FlowPolicy
from superflow.prompts import PromptSet, load_prompts
from superflow.rewards import Reward, get_reward
from superflow.rl import (
    EMA,
    StepBatch,
    bin_allocation,
    clipped_policy_loss,
    drift_adaptive_rho,
    group_advantages,
    kl_to_reference,
    make_step_estimator,
    make_tracker,
    neyman_allocation,
    prioritized_draw,
    tag_balanced_weights,
    tied_groups,
    tracker_advantages,
    uniform_draw,
)

#: Metrics whose values depend on the clock; everything else in a metrics line is deterministic.
TIMING_KEYS = ("time_sampling", "time_reward", "time_training", "time_eval", "time_epoch", "time_total")


def build_policy(cfg: Config) -> FlowPolicy:
    """The model named by ``cfg.model`` (weights from disk only)."""
    if cfg.model.kind == "sd3":
        from superflow.models.sd3 import SD3Policy

        m = cfg.model
        policy = SD3Policy(
            m.path,
            resolution=m.resolution,
            lora_rank=m.lora_rank,
            lora_alpha=m.lora_alpha,
            lora_targets=m.lora_targets,
            lora_init_seed=cfg.seed,
            max_sequence_length=m.max_sequence_length,
            dtype=m.dtype,
            device=m.device,
        )
        if m.adapter_path:
            policy.load_adapter(m.adapter_path)
        return policy
    if cfg.model.kind == "mini":
        from superflow.models.mini import MiniFlowPolicy

        # MiniFlow is fine-tuned in full, so its export is a complete model that replaces the base.
        return MiniFlowPolicy(
            cfg.model.adapter_path or cfg.model.path, device=cfg.model.device,
            train_text_encoder=cfg.model.train_text_encoder, trainable=cfg.model.trainable,
        )
    raise ValueError(f"unknown model.kind {cfg.model.kind!r}")  # pragma: no cover - config validates


def _seed_from(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _generators(seed: int, epoch: int, stream: int, count: int, offset: int = 0) -> list[torch.Generator]:
    seeds = np.random.SeedSequence([seed, epoch, stream]).generate_state(offset + count, dtype=np.uint64)[offset:]
    return [torch.Generator().manual_seed(int(s >> 1)) for s in seeds]


@dataclass
class EpochPlan:
    """Which prompts an epoch samples and how many images each gets."""

    prompt_indices: np.ndarray  # [P] indices into the training prompt set
    group_sizes: np.ndarray  # [P]

    @property
    def sample_prompt_indices(self) -> np.ndarray:
        return np.repeat(self.prompt_indices, self.group_sizes)

    @property
    def group_ids(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.prompt_indices)), self.group_sizes)


@dataclass
class Timer:
    totals: dict[str, float] = field(default_factory=dict)

    def __call__(self, name: str):
        timer = self

        class _Span:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                timer.totals[name] = timer.totals.get(name, 0.0) + time.perf_counter() - self.start

        return _Span()


def _dedupe(prompts: PromptSet) -> PromptSet:
    seen: dict[str, int] = {}
    for i, p in enumerate(prompts.prompts):
        seen.setdefault(p, i)
    idx = list(seen.values())
    return PromptSet([prompts.prompts[i] for i in idx], [prompts.metadata[i] for i in idx], prompts.source)


# Keys that extend or checkpoint a run without changing what it computes.
RESUMABLE_KEYS = ("num_epochs", "save_every", "output_dir")


def changed_config_keys(saved_path: Path, cfg: Config) -> list[str]:
    """Dotted keys whose value differs between a run folder's saved config and ``cfg``."""
    if not saved_path.exists():
        return []
    import yaml

    def flat(tree: dict, prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            if isinstance(value, dict) and value and key != "kwargs":
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    saved = flat(yaml.safe_load(saved_path.read_text()) or {})
    current = flat(yaml.safe_load(dump_config(cfg)))
    keys = sorted(set(saved) | set(current))
    return [k for k in keys if k not in RESUMABLE_KEYS and saved.get(k) != current.get(k)]


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
        self.out = Path(cfg.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        self.reward = reward or get_reward(cfg.reward.name, **cfg.reward.kwargs)
        if train_prompts is None:
            if not cfg.data.train_prompts:
                raise ValueError("no training prompts: set data.train_prompts")
            train_prompts = load_prompts(cfg.data.train_prompts)
        if test_prompts is None and cfg.data.test_prompts:
            test_prompts = load_prompts(cfg.data.test_prompts)
        self.train_prompts = _dedupe(train_prompts)
        self.test_prompts = test_prompts
        self.prompt_weights = None
        if cfg.data.balance_tags:
            tags = [m.get("tag") for m in self.train_prompts.metadata]
            if None in tags:
                line = tags.index(None) + 1
                raise ValueError(
                    f"data.balance_tags needs a 'tag' in every training prompt's metadata; "
                    f"{self.train_prompts.source} prompt {line} ({self.train_prompts.prompts[line - 1]!r}) has none"
                )
            self.prompt_weights = tag_balanced_weights(tags)
        if len(self.train_prompts) < cfg.sample.prompts_per_epoch:
            raise ValueError(
                f"sample.prompts_per_epoch={cfg.sample.prompts_per_epoch} but {self.train_prompts.source or 'the prompt set'} "
                f"has only {len(self.train_prompts)} distinct prompts"
            )
        self.policy = policy or build_policy(cfg)
        self.params = self.policy.trainable_parameters()
        t = cfg.train
        self.optimizer = torch.optim.AdamW(
            self.params, lr=t.lr, betas=(t.adam_beta1, t.adam_beta2), eps=t.adam_eps, weight_decay=t.weight_decay
        )
        self.ema = EMA(self.params, decay=t.ema_decay, update_every=t.ema_every) if t.ema else None
        a = cfg.algorithm
        tracker_kind = a.tracker if a.tracker != "auto" else ("beta" if self.reward.bounded_unit else "gaussian")
        self.tracker = make_tracker(tracker_kind, rho=a.rho)
        estimator_kwargs: dict[str, Any] = {}
        if a.step_advantage == "paper":
            estimator_kwargs["eta"] = a.eta
        elif a.step_advantage == "mixed":
            estimator_kwargs["lam"] = a.mixed_lambda
        self.step_estimator = make_step_estimator(a.step_advantage, **estimator_kwargs)
        self.epoch = 0
        self.global_step = 0
        self.totals = {"images_sampled": 0, "reward_calls": 0, "time_total": 0.0}
        self.metrics_path = self.out / "metrics.jsonl"
        self.checkpoint_dir = self.out / "checkpoints"
        self.last_step_advantages: torch.Tensor | None = None  # the latest epoch's A[i, t], for inspection

    # ------------------------------------------------------------------ planning
    def plan_epoch(self, epoch: int) -> EpochPlan:
        cfg, a = self.cfg, self.cfg.algorithm
        rng = np.random.default_rng([cfg.seed, epoch, 0])
        num = cfg.sample.prompts_per_epoch
        keys = self.train_prompts.prompts
        if a.prompt_draw == "prioritized":
            idx = prioritized_draw(self.tracker.uncertainty(keys), num, rng, eps=a.eps, weights=self.prompt_weights)
        else:
            idx = uniform_draw(len(keys), num, rng, weights=self.prompt_weights)
        u = self.tracker.uncertainty([keys[i] for i in idx])
        if a.group_sizes == "neyman":
            sizes = neyman_allocation(u, cfg.budget, m_min=a.m_min, m_max=a.m_max, eps=a.eps)
        elif a.group_sizes == "bins":
            sizes = bin_allocation(u, m_max=a.m_max, num_bins=a.num_bins)
        else:
            sizes = np.full(num, cfg.sample.group_size)
        return EpochPlan(np.asarray(idx, dtype=np.int64), np.asarray(sizes, dtype=np.int64))

    # ------------------------------------------------------------------ sampling
    def _encode(self, prompts: Sequence[str]) -> Conditioning:
        unique = list(dict.fromkeys(prompts))
        cond = self.policy.encode_prompts(unique)
        where = {p: i for i, p in enumerate(unique)}
        return cond.index([where[p] for p in prompts])

    def _score(self, images: torch.Tensor, prompt_idx: np.ndarray, prompt_set: PromptSet) -> np.ndarray:
        prompts = [prompt_set.prompts[i] for i in prompt_idx]
        metadata = [prompt_set.metadata[i] for i in prompt_idx]
        scores, _ = self.reward(images.cpu(), prompts, metadata)
        self.totals["reward_calls"] += len(prompts)
        return scores

    def sample_epoch(self, epoch: int, plan: EpochPlan, timer: Timer):
        """Sample and score this rank's slice of the epoch; rewards (and values) come back for all ranks.

        Returns this rank's trajectories and the *global* reward (and value) arrays.
        """
        cfg = self.cfg
        all_idx = plan.sample_prompt_indices
        n = len(all_idx)
        mine = self.dist.shard(n)
        needs_values = getattr(self.step_estimator, "needs_values", False)
        trajectories, rewards, values = [], [], []
        self.policy.eval()
        batches = range(mine.start, mine.stop, cfg.sample.batch_size)
        for start in tqdm(batches, desc=f"epoch {epoch}: sampling", disable=not self.progress, leave=False):
            idx = all_idx[start : min(start + cfg.sample.batch_size, mine.stop)]
            with timer("time_sampling"):
                cond = self._encode([self.train_prompts.prompts[i] for i in idx])
                # Noise is drawn per image from its global index, so any split across ranks or
                # batches samples the same images.
                gens = _generators(cfg.seed, epoch, 1, len(idx), offset=start)
                traj = sample_trajectories(
                    self.policy,
                    cond,
                    gens,
                    num_steps=cfg.sample.num_steps,
                    guidance_scale=cfg.sample.guidance_scale,
                    noise_level=cfg.sample.noise_level,
                    sde_last_step=cfg.sample.sde_last_step,
                    record_velocities=needs_values,
                )
                images = self.policy.decode(traj.final)
            with timer("time_reward"):
                rewards.append(self._score(images, idx, self.train_prompts))
            if needs_values:
                values.append(self._step_values(traj, idx, rewards[-1], timer))
            trajectories.append(Trajectories(traj.states, traj.sigmas, traj.log_probs, traj.std_devs))
        self.totals["images_sampled"] += n
        traj = Trajectories.cat(trajectories)
        rewards_all = self.dist.gather_rows(np.concatenate(rewards))
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
        if a.baseline == "tracker":
            adv = tracker_advantages(rewards, self.tracker.value(keys))
        else:
            adv = group_advantages(rewards, group_ids, global_std=a.global_std)
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
        cfg, t = self.cfg, self.cfg.train
        mine = self.dist.shard(len(step_adv))
        keep = torch.nonzero(step_adv.abs().sum(dim=1) != 0).flatten()
        stats: dict[str, list[float]] = {"policy_loss": [], "kl": [], "clipfrac": [], "approx_kl": [], "ratio_mean": []}
        logp_change = torch.zeros(len(step_adv))
        if len(keep) == 0:
            return stats, logp_change
        device = self.policy.device
        gen = torch.Generator().manual_seed(_seed_from(cfg.seed, epoch, 2))
        num_steps = cfg.num_train_steps
        self.policy.train()
        for _ in range(t.inner_epochs):
            order = keep[torch.randperm(len(keep), generator=gen)]
            chunks = [c for c in torch.tensor_split(order, t.updates_per_epoch) if len(c)]
            for chunk in tqdm(chunks, desc=f"epoch {epoch}: training", disable=not self.progress, leave=False):
                with timer("time_training"):
                    self.optimizer.zero_grad(set_to_none=True)
                    local = chunk[(chunk >= mine.start) & (chunk < mine.stop)]
                    for micro in torch.split(local, t.micro_batch_size):
                        rows = micro - mine.start  # positions in this rank's slice
                        sub = traj.index(rows.to(traj.states.device))
                        sub_cond = cond.index(rows)
                        weight = len(micro) / len(chunk) / num_steps
                        for j in range(num_steps):
                            step = step_log_prob(
                                self.policy, sub, j, sub_cond,
                                guidance_scale=cfg.sample.guidance_scale, noise_level=cfg.sample.noise_level,
                            )
                            old = sub.log_probs[:, j].to(device)
                            loss, info = clipped_policy_loss(
                                step.log_prob, old, step_adv[micro, j].to(device), t.clip_range, adv_clip=t.adv_clip
                            )
                            stats["policy_loss"].append(float(loss.detach()))
                            for k in ("clipfrac", "approx_kl", "ratio_mean"):
                                stats[k].append(float(info[k]))
                            if t.beta > 0:
                                with torch.no_grad(), self.policy.adapter_disabled():
                                    ref = step_log_prob(
                                        self.policy, sub, j, sub_cond,
                                        guidance_scale=cfg.sample.guidance_scale, noise_level=cfg.sample.noise_level,
                                    )
                                kl = kl_to_reference(step.mean, ref.mean, step.std_dev)
                                stats["kl"].append(float(kl.detach()))
                                loss = loss + t.beta * kl
                            (loss * weight).backward()
                            logp_change[micro] += (step.log_prob.detach().cpu() - old.cpu()).abs() / num_steps
                    self.dist.sum_gradients(self.params)
                    torch.nn.utils.clip_grad_norm_(self.params, t.max_grad_norm)
                    self.optimizer.step()
                    self.global_step += 1
                    if self.ema is not None:
                        self.ema.step(self.params, self.global_step)
        self.policy.eval()
        return stats, self.dist.sum_tensor(logp_change) / t.inner_epochs

    def _drift_rho(self, keys: list[str], logp_change: torch.Tensor) -> dict[str, float]:
        """SPO's drift-adaptive forgetting: a prompt whose samples' log-probs moved a lot this epoch
        keeps less of its old reward statistics."""
        changes, keys_arr = logp_change.numpy(), np.asarray(keys)
        half_life = self.cfg.algorithm.rho_half_life
        return {k: drift_adaptive_rho(np.zeros(1), np.asarray([changes[keys_arr == k].mean()]), half_life) for k in dict.fromkeys(keys)}

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
        n = min(num_prompts or cfg.eval_num_prompts or len(prompt_set), len(prompt_set))
        subset = PromptSet(prompt_set.prompts[:n], prompt_set.metadata[:n], prompt_set.source)
        context = self.ema.swapped_in(self.params) if self.ema is not None else nullcontext()
        with context:
            result = evaluate_policy(
                self.policy, subset, self.reward, num_steps=cfg.sample.eval_num_steps,
                guidance_scale=cfg.sample.guidance_scale, batch_size=cfg.sample.batch_size, seed=cfg.eval_seed,
            )
        metrics = {"eval_reward_mean": result["mean"], "eval_reward_std": result["std"], "eval_num_images": result["images"]}
        if len(result["per_tag"]) > 1:
            metrics["eval_reward_tag_mean"] = result["tag_mean"]
        for name, summary in result.items():
            if isinstance(summary, dict) and name != "per_tag":
                metrics[f"eval_{name}_mean"] = summary["mean"]
                if len(summary["per_tag"]) > 1:
                    metrics[f"eval_{name}_tag_mean"] = summary["tag_mean"]
        return metrics

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, epoch: int) -> dict[str, Any]:
        cfg = self.cfg
        timer = Timer()
        start = time.perf_counter()
        before = dict(self.totals)
        plan = self.plan_epoch(epoch)
        traj, rewards, values = self.sample_epoch(epoch, plan, timer)
        local_calls = self.totals["reward_calls"] - before["reward_calls"]
        self.totals["reward_calls"] = before["reward_calls"] + int(self.dist.sum(local_calls))
        keys = [self.train_prompts.prompts[i] for i in plan.sample_prompt_indices]
        step_adv, tied = self.advantages(plan, traj, rewards, values)
        self.last_step_advantages = step_adv
        with timer("time_training"):
            cond = self._encode(keys[self.dist.shard(len(keys))])
        stats, logp_change = self.train_on(epoch, traj, cond, step_adv, timer)
        rho = self._drift_rho(keys, logp_change) if cfg.algorithm.rho_half_life else None
        self.tracker.update(keys, rewards, rho=rho)
        metrics: dict[str, Any] = {
            "epoch": epoch + 1,
            "global_step": self.global_step,
            "reward_mean": float(rewards.mean()),
            "reward_std": float(rewards.std()),
            "num_prompts": int(len(plan.prompt_indices)),
            "group_sizes": plan.group_sizes.tolist(),
            "tied_groups": int(len(np.unique(plan.group_ids[tied]))),
            "trained_samples": int((step_adv.abs().sum(dim=1) != 0).sum()),
            "images_sampled": self.totals["images_sampled"] - before["images_sampled"],
            "reward_calls": self.totals["reward_calls"] - before["reward_calls"],
            "step_advantage_profile": step_adv.abs().mean(dim=0).tolist(),
            # The sigma each trained step starts from: the x axis of the step-advantage figure.
            "step_sigmas": traj.sigmas[: step_adv.shape[1]].cpu().float().tolist(),
        }
        for k, v in stats.items():
            metrics[k] = float(np.mean(v)) if v else None
        eval_due = cfg.eval_every and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.num_epochs)
        if eval_due and self.test_prompts is not None and self.dist.is_main:
            with timer("time_eval"):
                metrics.update(self.evaluate())
        metrics["cum_images_sampled"] = self.totals["images_sampled"]
        metrics["cum_reward_calls"] = self.totals["reward_calls"]
        for k in ("time_sampling", "time_reward", "time_training", "time_eval"):
            metrics[k] = round(timer.totals.get(k, 0.0), 4)
        metrics["time_epoch"] = round(time.perf_counter() - start, 4)
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
        cfg = self.cfg
        if on_config_change not in ("error", "restart"):
            raise ValueError(f"on_config_change must be 'error' or 'restart', not {on_config_change!r}")
        changed = changed_config_keys(self.out / "config.yaml", cfg) if resume else []
        if changed and on_config_change == "error":
            raise ConfigError(
                f"{self.out} holds a run with a different config ({', '.join(changed)}); "
                "resume it with the same config, or train into a new folder"
            )
        if changed and self.dist.is_main:
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        if self.dist.is_main:
            (self.out / "summary.json").unlink(missing_ok=True)  # the run is not finished until it is rewritten
        self.dist.barrier()  # every rank sees the same folder before restoring
        if resume:
            self.restore()
        elif self.dist.is_main:
            self.metrics_path.unlink(missing_ok=True)
        main = self.dist.is_main  # only rank 0 writes; the others hold the same state
        if main:
            atomic_write_text(self.out / "config.yaml", dump_config(cfg))
        history = []
        for epoch in range(self.epoch, cfg.num_epochs):
            metrics = self.train_epoch(epoch)
            metrics["seed"] = cfg.seed
            metrics["method"] = cfg.method
            if self.dist.enabled:
                metrics["world_size"] = self.dist.world_size
            if main:
                with self.metrics_path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(metrics) + "\n")
            history.append(metrics)
            self.epoch = epoch + 1
            if self.epoch % cfg.save_every == 0 or self.epoch == cfg.num_epochs:
                if main:
                    self.save()
                self.dist.barrier()
        if main:
            self.export(self.out / "lora")
            self.write_summary()
        self.dist.barrier()
        return history

    def write_summary(self) -> Path:
        """``summary.json``: written last, so its presence marks a finished run (workflows key on it)."""
        lines = self.metrics_path.read_text().splitlines() if self.metrics_path.exists() else []
        last = json.loads(lines[-1]) if lines else {}
        evaluated = [json.loads(line) for line in lines if '"eval_reward_mean"' in line]
        summary = {
            "method": self.cfg.method,
            "seed": self.cfg.seed,
            "epochs": self.epoch,
            "global_step": self.global_step,
            "time_total": last.get("time_total"),
            "last_epoch": last,
            "last_evaluation": {k: v for k, v in (evaluated[-1] if evaluated else {}).items() if k.startswith("eval_")},
            "torch": torch.__version__,
            "config": "config.yaml",
        }
        path = self.out / "summary.json"
        atomic_write_text(path, json.dumps(summary, indent=1) + "\n")
        return path

    def state_dict(self) -> dict[str, Any]:
        return {
            "params": [p.detach().cpu().clone() for p in self.params],
            "optimizer": self.optimizer.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "tracker": self.tracker.state_dict(),
            "rng": rng_state(),
            "global_step": self.global_step,
            "totals": dict(self.totals),
        }

    def save(self) -> Path:
        lines = self.metrics_path.read_text().count("\n") if self.metrics_path.exists() else 0
        return save_checkpoint(
            self.checkpoint_dir, self.epoch, self.state_dict(), {"metrics_lines": lines, "seed": self.cfg.seed, "method": self.cfg.method}
        )

    def restore(self) -> bool:
        """Load the newest complete checkpoint; returns False (and starts fresh) if there is none."""
        found = list_checkpoints(self.checkpoint_dir)
        if not found:
            if self.dist.is_main:
                self.metrics_path.unlink(missing_ok=True)
            return False
        state, meta = load_checkpoint(found[-1])
        with torch.no_grad():
            for p, saved in zip(self.params, state["params"], strict=True):
                p.copy_(saved.to(p.device))
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.tracker.load_state_dict(state["tracker"])
        set_rng_state(state["rng"])
        self.global_step = state["global_step"]
        self.totals = dict(state["totals"])
        self.epoch = meta["epoch"]
        # Lines written after the checkpoint belong to epochs that will run again.
        if self.dist.is_main and self.metrics_path.exists():
            kept = self.metrics_path.read_text().splitlines(keepends=True)[: meta["metrics_lines"]]
            atomic_write_text(self.metrics_path, "".join(kept))
        return True

    def export(self, path: Path) -> None:
        """Save the trained weights (the EMA ones when EMA is on) in the model's own format."""
        context = self.ema.swapped_in(self.params) if self.ema is not None else nullcontext()
        with context:
            self.policy.save_pretrained(path)
