"""Is a task's Flow-GRPO gradient worth following? First-order gain against the damage of a step.

For one task preset this samples ``--samples`` SDE trajectories for each of ``--prompts`` training
prompts, forms Flow-GRPO's group-normalised advantages and its policy gradient (the trained steps,
guided velocity, as the trainer computes it), then moves the weights by Adam's first step along it,
``theta -/+ eps * sign(gradient)``, restricted to parameter groups. Each setting is scored by the mean
reward of deterministic samples of the same prompts from ``--eval-starts`` fresh starting noises,
the same noises for every setting (common random numbers), so

    first_order = (J(step) - J(-step)) / 2      what the gradient's direction is worth
    curvature   = (J(step) + J(-step)) / 2 - J0  how the reward bends along the step (its cost)

A task can learn from small steps only where first_order clearly exceeds -curvature. The preference
analogue (where Flow-GRPO gains) is the control; ``--directions random`` measures the curvature of a
random step of the same size, which tells a generally fragile model from a reward that is concave
along its own gradient. Writes

    results/benchmarks/policy_gradient_probe.csv / .md, policy_gradient_probe_environment.json

Usage::

    python benchmarks/policy_gradient_probe.py --tasks geneval ocr preference
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from superflow.config import load_config
from superflow.flow.sampler import sample_trajectories, step_log_prob
from superflow.models import build_policy
from superflow.prompts import load_prompts
from superflow.reporting.markdown import to_markdown
from superflow.rewards import get_reward
from superflow.rl.advantages import group_advantages

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe_machine

GROUPS = {"all": "", "conv": "conv", "attn": ".attn.", "film": ".film."}


def probe_prompts(path: str, count: int) -> tuple[list[str], list[dict | None]]:
    """The first ``count`` prompts, one per GenEval tag where the prompts carry tags."""
    prompts = load_prompts(path)
    chosen, tags = [], set()
    for i, meta in enumerate(prompts.metadata):
        tag = (meta or {}).get("tag")
        if tag is None or tag not in tags:
            chosen.append(i)
            tags.add(tag)
        if len(chosen) == count:
            break
    return [prompts.prompts[i] for i in chosen], [prompts.metadata[i] for i in chosen]


class Probe:
    def __init__(self, preset: str, overrides: list[str], num_prompts: int):
        self.cfg = cfg = load_config(preset, overrides)
        self.policy = build_policy(cfg)
        self.reward = get_reward(cfg.reward.name, **cfg.reward.kwargs)
        self.prompts, self.metadata = probe_prompts(cfg.data.train_prompts, num_prompts)
        self.named = [(n, p) for n, p in self.policy.net.named_parameters() if p.requires_grad]

    def sample(self, seed: int, per_prompt: int, noise_level: float):
        cfg, out = self.cfg, []
        for i, (prompt, meta) in enumerate(zip(self.prompts, self.metadata)):
            cond = self.policy.encode_prompts([prompt] * per_prompt)
            gens = [torch.Generator().manual_seed(seed + 10_000 * i + k) for k in range(per_prompt)]
            with torch.no_grad():
                traj = sample_trajectories(
                    self.policy,
                    cond,
                    gens,
                    num_steps=cfg.sample.num_steps,
                    guidance_scale=cfg.sample.guidance_scale,
                    noise_level=noise_level,
                )
            scores, _ = self.reward(self.policy.decode(traj.final), [prompt] * per_prompt, [meta] * per_prompt)
            out.append((traj, cond, np.asarray(scores, dtype=float)))
        return out

    def score(self, eval_starts: int, seed: int = 777) -> float:
        return float(np.mean([r.mean() for _, _, r in self.sample(seed, eval_starts, 0.0)]))

    def gradient(self, per_prompt: int) -> tuple[dict[str, torch.Tensor], float]:
        cfg = self.cfg
        batches = self.sample(1, per_prompt, cfg.sample.noise_level)
        for _, p in self.named:
            p.grad = None
        total = per_prompt * len(batches) * cfg.num_train_steps
        for traj, cond, rewards in batches:
            adv = torch.tensor(group_advantages(rewards, np.zeros(len(rewards), dtype=int)), dtype=torch.float32)
            for rows in torch.split(torch.arange(per_prompt), cfg.train.micro_batch_size):
                sub, sub_cond = traj.index(rows), cond.index(rows)
                for j in range(cfg.num_train_steps):
                    step = step_log_prob(
                        self.policy,
                        sub,
                        j,
                        sub_cond,
                        guidance_scale=cfg.sample.guidance_scale,
                        noise_level=cfg.sample.noise_level,
                    )
                    (-(adv[rows] * step.log_prob).sum() / total).backward()
        return {n: p.grad.detach().clone() for n, p in self.named}, float(np.mean([r.mean() for *_, r in batches]))

    def set_step(self, origin, direction, group: str, eps: float, shape: str = "sign") -> None:
        """Move the group's weights against ``direction``: by ``eps`` each along its sign (Adam's first
        step) or, for ``shape='gradient'``, along the gradient itself scaled to the same Euclidean
        length (plain SGD's direction, which leaves weights with small gradients nearly in place)."""
        moved = [name for name, _ in self.named if group in name]
        scale = eps
        if shape == "gradient":
            norm = torch.sqrt(sum(direction[n].double().pow(2).sum() for n in moved))
            scale = eps * np.sqrt(sum(direction[n].numel() for n in moved)) / max(float(norm), 1e-30)
        with torch.no_grad():
            for name, param in self.named:
                if name not in moved:
                    param.copy_(origin[name])
                elif shape == "gradient":
                    param.copy_(origin[name] - scale * direction[name])
                else:
                    param.copy_(origin[name] - scale * torch.sign(direction[name]))


def run_task(task: str, args) -> list[dict]:
    probe = Probe(f"preset:mini_{task}", args.set, args.prompts)
    start = time.perf_counter()
    grad, train_reward = probe.gradient(args.samples)
    origin = {n: p.detach().clone() for n, p in probe.named}
    j0 = probe.score(args.eval_starts)
    j0_other_noise = probe.score(args.eval_starts, seed=4242)
    rows = []
    # A random sign step of the same size: what moving the weights costs with no information at all.
    generator = torch.Generator().manual_seed(0)
    random_direction = {n: torch.randn(g.shape, generator=generator) for n, g in grad.items()}
    for group in args.groups:
        for shape in args.directions:
            direction = random_direction if shape == "random" else grad
            step_shape = "gradient" if shape == "gradient" else "sign"
            for eps in args.eps:
                probe.set_step(origin, direction, GROUPS[group], eps, step_shape)
                plus = probe.score(args.eval_starts)
                probe.set_step(origin, direction, GROUPS[group], -eps, step_shape)
                minus = probe.score(args.eval_starts)
                rows.append(
                    {
                        "task": task,
                        "group": group,
                        "direction": shape,
                        "eps": eps,
                        "params": sum(p.numel() for n, p in probe.named if GROUPS[group] in n),
                        "J0": j0,
                        "J0_other_noise": j0_other_noise,
                        "J_step": plus,
                        "J_minus_step": minus,
                        "first_order": (plus - minus) / 2,
                        "curvature": (plus + minus) / 2 - j0,
                        "net_gain": plus - j0,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    probe.set_step(origin, grad, "", 0.0)
    for row in rows:
        row.update(train_reward=train_reward, seconds=round(time.perf_counter() - start, 1))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["geneval", "ocr", "preference"])
    parser.add_argument("--prompts", type=int, default=4, help="training prompts (one per tag where tagged)")
    parser.add_argument("--samples", type=int, default=64, help="SDE samples per prompt for the gradient")
    parser.add_argument("--eval-starts", type=int, default=64, help="deterministic samples per prompt per score")
    parser.add_argument("--eps", nargs="+", type=float, default=[3e-5, 1e-4])
    parser.add_argument(
        "--directions",
        nargs="+",
        default=["sign"],
        choices=["sign", "gradient", "random"],
        help="sign: Adam's first step; gradient: SGD's direction at the same length; random: a random sign step",
    )
    parser.add_argument("--groups", nargs="+", default=["all", "conv", "attn", "film"], choices=list(GROUPS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--output-dir", default="results/benchmarks")
    args = parser.parse_args(argv)
    rows = [row for task in args.tasks for row in run_task(task, args)]
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / "policy_gradient_probe.csv", index=False)
    command = "python benchmarks/policy_gradient_probe.py " + " ".join(sys.argv[1:] if argv is None else argv)
    shown = table[
        ["task", "group", "direction", "params", "eps", "J0", "J0_other_noise", "first_order", "curvature", "net_gain"]
    ]
    (out / "policy_gradient_probe.md").write_text(
        "# Policy-gradient probe: first-order gain vs the cost of a step (mini world)\n\n"
        f"Command: `{command}`. {args.prompts} training prompts, {args.samples} SDE samples each for the "
        f"gradient, {args.eval_starts} deterministic samples per prompt per score (the same noise for "
        "every setting). direction `sign`: each weight of the group moves by eps against the loss "
        "gradient's sign (Adam's first step); `gradient`: along the gradient itself, scaled to the "
        "same Euclidean length; `random`: by eps along a random sign (what moving the weights costs "
        "with no information). J0_other_noise: J0 from other starting noises (how much a score moves "
        "by chance).\n\n" + to_markdown(shown.round(4)) + "\n"
    )
    (out / "policy_gradient_probe_environment.json").write_text(json.dumps(describe_machine(), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
