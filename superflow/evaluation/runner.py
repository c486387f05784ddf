"""Held-out evaluation: deterministic samples of a policy, scored by a reward, summarised per tag."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from superflow.distributed import Distributed
from superflow.flow.sampler import sample_trajectories
from superflow.models.base import FlowPolicy
from superflow.prompts import PromptSet
from superflow.rewards import Reward


def _seed(base: int, prompt_index: int, image_index: int) -> int:
    return int(np.random.SeedSequence([base, prompt_index, image_index]).generate_state(1)[0])


@torch.no_grad()
def evaluate_policy(
    policy: FlowPolicy,
    prompts: PromptSet,
    reward: Reward,
    *,
    images_per_prompt: int = 1,
    num_steps: int = 10,
    guidance_scale: float = 4.5,
    batch_size: int = 32,
    seed: int = 12345,
    progress: bool = False,
    save_dir: str | Path | None = None,
    distributed: Distributed | None = None,
) -> dict:
    """Mean reward of ODE samples (the same noise for the same prompt and seed), overall and per tag.

    GenEval's protocol is 4 images per prompt and the overall score is the mean of the per-tag
    accuracies; ``per_tag`` and ``tag_mean`` give that when the prompts carry GenEval tags. Per-image
    metrics a reward reports in ``info["per_image"]`` (GenEval's strict and partial scores) are
    summarised the same way under their own names.

    ``save_dir`` also writes the images in GenEval's folder layout (``<prompt:05d>/metadata.jsonl``
    and ``<prompt:05d>/samples/<image:04d>.png``), so GenEval's own ``evaluate_images.py`` can
    score exactly these samples.

    With ``distributed``, each rank samples and scores its shard of the images and every rank gets
    the result of one process: each image's noise depends on its prompt and index only.
    """
    dist = distributed or Distributed()
    every_job = [(i, k) for i in range(len(prompts)) for k in range(images_per_prompt)]
    jobs = every_job[dist.shard(len(every_job))]
    scores = np.empty(len(jobs))
    extra: dict[str, np.ndarray] = {}  # per-image metrics a reward reports besides its score
    records: list[dict] = []  # per-image result lines a reward reports (GenEval's results.jsonl)
    policy.eval()
    for start in tqdm(range(0, len(jobs), batch_size), desc="evaluate", disable=not progress):
        chunk = jobs[start : start + batch_size]
        texts = [prompts.prompts[i] for i, _ in chunk]
        gens = [torch.Generator(device=policy.device).manual_seed(_seed(seed, i, k)) for i, k in chunk]
        traj = sample_trajectories(
            policy,
            policy.encode_prompts(texts),
            gens,
            num_steps=num_steps,
            guidance_scale=guidance_scale,
            noise_level=0.0,
        )
        meta = [prompts.metadata[i] for i, _ in chunk]
        images = policy.decode(traj.final).cpu()
        scores[start : start + len(chunk)], info = reward(images, texts, meta)
        if save_dir is not None:
            _save_geneval_layout(Path(save_dir), chunk, images, prompts)
        for (i, k), record in zip(chunk, info.get("records") or []):
            filename = str(Path(save_dir) / f"{i:05d}" / "samples" / f"{k:04d}.png") if save_dir is not None else ""
            records.append({"filename": filename, **record})
        for name, values in (info.get("per_image") or {}).items():
            extra.setdefault(name, np.full(len(jobs), np.nan))[start : start + len(chunk)] = np.asarray(
                values, np.float64
            )
    if dist.enabled:
        scores = dist.gather_rows(scores)
        names = sorted(set(dist.gather_objects(list(extra))))  # a rank with no images reports none
        extra = {name: dist.gather_rows(extra.get(name, np.full(len(jobs), np.nan))) for name in names}
        records = dist.gather_objects(records)
    tags = [prompts.metadata[i].get("tag", "all") for i, _ in every_job]
    result = {"reward": reward.name, **_summary(scores, tags), "images": len(every_job)}
    for name, values in extra.items():
        result[name] = _summary(values, tags)
    if records:
        result["records"] = records
    return result


def _save_geneval_layout(root: Path, chunk, images: torch.Tensor, prompts: PromptSet) -> None:
    from PIL import Image

    arrays = (images.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    for (i, k), array in zip(chunk, arrays):
        folder = root / f"{i:05d}"
        (folder / "samples").mkdir(parents=True, exist_ok=True)
        if k == 0:  # once per prompt, not once per image
            (folder / "metadata.jsonl").write_text(
                json.dumps({**prompts.metadata[i], "prompt": prompts.prompts[i]}) + "\n"
            )
        Image.fromarray(array).save(folder / "samples" / f"{k:04d}.png")


def _summary(values: np.ndarray, tags: list[str]) -> dict:
    by_tag: dict[str, list[float]] = defaultdict(list)
    for tag, v in zip(tags, values):
        by_tag[tag].append(float(v))
    per_tag = {t: float(np.mean(v)) for t, v in by_tag.items()}
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "per_tag": per_tag,
        "tag_mean": float(np.mean(list(per_tag.values()))),
    }


def as_training_metrics(result: dict) -> dict[str, float]:
    """An :func:`evaluate_policy` result as the ``eval_*`` entries of a training metrics line."""
    metrics = {
        "eval_reward_mean": result["mean"],
        "eval_reward_std": result["std"],
        "eval_num_images": result["images"],
    }
    if len(result["per_tag"]) > 1:
        metrics["eval_reward_tag_mean"] = result["tag_mean"]
    for name, summary in result.items():
        if isinstance(summary, dict) and name != "per_tag":
            metrics[f"eval_{name}_mean"] = summary["mean"]
            if len(summary["per_tag"]) > 1:
                metrics[f"eval_{name}_tag_mean"] = summary["tag_mean"]
    return metrics
