r"""Where does a group's reward variance come from: the starting noise, the trained SDE steps, the rest?

Flow-GRPO credits a group's reward differences to the stochastic transitions it trains (by default
the first ``int(num_steps * timestep_fraction)``). Differences caused by anything else, the starting
latent above all, reach the advantage as noise. For one task preset this samples ``--group-size``
images for each of ``--prompts`` training prompts under five noise placements and reports the mean
within-group reward variance of each:

    training            SDE at every step, a start per image (what the trainer samples)
    shared_start        SDE at every step, one start per group (``sample.same_initial_noise``)
    trained_steps_only  one start per group, SDE only at the trained steps (ODE elsewhere)
    untrained_steps     one start per group, SDE only at the steps after them
    start_only          the ODE from a start per image (no SDE noise at all)

``start_only`` is the share the starting latent alone carries; ``trained_steps_only`` the share the
policy gradient can attribute to its own actions. Every placement draws from the same seeded
streams, so the numbers repeat. Writes ``results/benchmarks/<name>.csv`` / ``.md`` and
``<name>_environment.json``.

Usage::

    R=runs/pipeline/mini   # the study's world and bases
    python benchmarks/reward_variance_sources.py \
        --task-set geneval model.path=$R/miniflow/model data.train_prompts=$R/world/geneval/train_metadata.jsonl \
            data.test_prompts=$R/world/geneval/test_metadata.jsonl \
        --task-set ocr model.path=$R/miniflow_signs_in_order/model data.train_prompts=$R/world/ocr/ocr_train.txt \
            data.test_prompts=$R/world/ocr/ocr_test.txt \
        --task-set preference model.path=$R/miniflow/model reward.kwargs.path=$R/preference \
            data.train_prompts=$R/world/geneval/train_metadata.jsonl \
            data.test_prompts=$R/world/geneval/test_metadata.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from superflow.config import load_config
from superflow.flow.sampler import sample_trajectories
from superflow.models import build_policy
from superflow.prompts import load_prompts
from superflow.reporting.markdown import to_markdown
from superflow.rewards import get_reward
from superflow.seeding import SHARED_START_STREAM, group_noise_generators, noise_generators

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe_machine
from task_options import add_task_set_option

#: name -> (which steps are stochastic: "all", "trained", "untrained" or "none"; one start per group?)
PLACEMENTS = {
    "training": ("all", False),
    "shared_start": ("all", True),
    "trained_steps_only": ("trained", True),
    "untrained_steps": ("untrained", True),
    "start_only": ("none", False),
}


def within_group_variances(policy, reward, cfg, prompts, metadata, group_size, steps, shared_start, seed=0):
    """Per prompt: the sample variance of ``group_size`` rewards, the mean reward, with SDE noise at
    ``steps`` ("all", "trained", "untrained" or "none") and one start per group or per image."""
    trained = cfg.num_train_steps
    window = {"all": None, "trained": (0, trained), "untrained": (trained, cfg.sample.num_steps - trained)}
    variances, means = [], []
    for i, (prompt, meta) in enumerate(zip(prompts, metadata)):
        sde = noise_generators(seed, i, 1, group_size)
        starts = group_noise_generators(seed, i, SHARED_START_STREAM, [0] * group_size) if shared_start else None
        with torch.no_grad():
            traj = sample_trajectories(
                policy,
                policy.encode_prompts([prompt] * group_size),
                sde,
                num_steps=cfg.sample.num_steps,
                guidance_scale=cfg.sample.guidance_scale,
                noise_level=0.0 if steps == "none" else cfg.sample.noise_level,
                sde_last_step=cfg.sample.sde_last_step,
                sde_window=window.get(steps),
                sde_type=cfg.sample.sde_type,
                start_generators=starts,
            )
            scores, _ = reward(policy.decode(traj.final), [prompt] * group_size, [meta] * group_size)
        variances.append(float(np.var(scores, ddof=1)))
        means.append(float(np.mean(scores)))
    return np.array(variances), np.array(means)


def run_task(task: str, args) -> list[dict]:
    cfg = load_config(f"preset:mini_{task}", args.set + [o for t, *rest in args.task_set if t == task for o in rest])
    if cfg.sample.sde_window_size or cfg.algorithm.objective != "policy_gradient":
        # under a drawn window (Flow-GRPO-Fast) or ODE rollouts (NFT) "training" is not what the trainer samples
        raise SystemExit(f"{task}: measures Flow-GRPO-style rollouts (SDE at every step, the first steps trained)")
    policy, reward = build_policy(cfg), get_reward(cfg.reward.name, **cfg.reward.kwargs)
    prompts = load_prompts(cfg.data.train_prompts)
    chosen = np.random.default_rng(args.seed).choice(len(prompts), min(args.prompts, len(prompts)), replace=False)
    texts, metadata = [prompts.prompts[i] for i in chosen], [prompts.metadata[i] for i in chosen]
    rows = []
    for name, (steps, shared) in tqdm(PLACEMENTS.items(), desc=task):
        variances, means = within_group_variances(
            policy, reward, cfg, texts, metadata, args.group_size, steps, shared, args.seed
        )
        rows.append(
            {
                "task": task,
                "placement": name,
                "within_group_var": variances.mean(),
                "within_group_var_se": variances.std(ddof=1) / np.sqrt(len(variances)),
                "groups_with_spread": float((variances > 0).mean()),
                "mean_reward": means.mean(),
            }
        )
    training = rows[0]["within_group_var"]
    for row in rows:
        row["share_of_training_var"] = row["within_group_var"] / training if training > 0 else float("nan")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["geneval", "ocr", "preference"])
    parser.add_argument("--prompts", type=int, default=48, help="training prompts, drawn at random")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    add_task_set_option(parser, "one task")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="reward_variance_sources")
    parser.add_argument("--output-dir", default="results/benchmarks")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    table = pd.DataFrame([row for task in args.tasks for row in run_task(task, args)])
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"{args.name}.csv", index=False)
    command = "python benchmarks/reward_variance_sources.py " + " ".join(sys.argv[1:] if argv is None else argv)
    (out / f"{args.name}.md").write_text(
        "# Where a group's reward variance comes from (the task preset's base, training prompts)\n\n"
        f"Command: `{command}`. {args.prompts} training prompts x {args.group_size} images; "
        "`within_group_var`: the mean over prompts of the sample variance of a group's rewards (`_se` its "
        "standard error over prompts); `share_of_training_var`: relative to `training` (SDE everywhere, a "
        "start per image, as the trainer samples). `trained_steps_only` is what Flow-GRPO's trained "
        "transitions cause; `start_only` what the starting latent alone causes, which no trained "
        "transition chose.\n\n" + to_markdown(table.round(4)) + "\n"
    )
    (out / f"{args.name}_environment.json").write_text(json.dumps(describe_machine(), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
