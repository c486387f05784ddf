"""Where can RL learn? Per tag, the share of training prompts whose group outcomes are mixed.

A group-relative policy gradient learns only from prompts whose samples disagree: a prompt the base
model always solves, or never solves, gives a group of tied rewards and no gradient. For each task
this samples ``--samples`` images per training prompt with the RL sampler (the task preset's SDE,
guidance and steps, the trainer's own seeded noise), scores them as successes (GenEval: strict
correctness; OCR: the target read exactly) and reports per tag

    success         the mean success rate
    mixed_share     the share of prompts whose success rate lies strictly between 0 and 1
    always, never   the shares that are always / never solved

in ``results/benchmarks/base_spread.{csv,md}``. Usage::

    python benchmarks/base_spread.py --model runs/miniflow/model --label clean
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from superflow.config import load_config
from superflow.reporting.markdown import to_markdown
from superflow.rl import EpochPlan
from superflow.timing import Timer
from superflow.train import Trainer

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe_machine

TASKS = {
    "geneval": ("preset:mini_geneval", ["reward.kwargs.mode=strict"]),
    "ocr": ("preset:mini_ocr", []),
}


def spread(task: str, model: str, prompts_per_tag: int, samples: int, seed: int, overrides: list[str]) -> pd.DataFrame:
    preset, task_overrides = TASKS[task]
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(
            preset,
            [f"model.path={model}", f"output_dir={out}", f"seed={seed}", "data.balance_tags=false", *task_overrides]
            + overrides,
        )
        trainer = Trainer(cfg, progress=False)
        prompts = trainer.train_prompts
        tags = [m.get("tag", "text") for m in prompts.metadata]
        rng = np.random.default_rng(seed)
        chosen = []
        for tag in dict.fromkeys(tags):
            members = [i for i, t in enumerate(tags) if t == tag]
            chosen += sorted(rng.permutation(members)[:prompts_per_tag].tolist())
        plan = EpochPlan(np.asarray(chosen, dtype=np.int64), np.full(len(chosen), samples, dtype=np.int64))
        _, rewards, _ = trainer.sample_epoch(0, plan, Timer())
    success = (rewards >= 1 - 1e-9).reshape(len(chosen), samples).mean(axis=1)
    frame = pd.DataFrame({"tag": [tags[i] for i in chosen], "success": success})
    rows = []
    for tag, group in frame.groupby("tag", sort=False):
        rate = group["success"]
        rows.append(
            {
                "task": task,
                "tag": tag,
                "prompts": len(group),
                "success": rate.mean(),
                "mixed_share": ((rate > 0) & (rate < 1)).mean(),
                "always": (rate == 1).mean(),
                "never": (rate == 0).mean(),
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="MiniFlow folder (superflow pretrain's model/)")
    parser.add_argument("--label", required=True, help="name of this base model in the results (e.g. clean, cn35)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--prompts-per-tag", type=int, default=32)
    parser.add_argument("--samples", type=int, default=8, help="images per prompt (the RL group size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every task")
    parser.add_argument("--output-dir", default="results/benchmarks")
    args = parser.parse_args(argv)

    table = pd.concat(
        [spread(t, args.model, args.prompts_per_tag, args.samples, args.seed, args.set) for t in args.tasks]
    )
    table.insert(0, "base", args.label)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "base_spread.csv"
    if csv.exists():  # other base models' rows stay
        kept = pd.read_csv(csv)
        table = pd.concat([kept[~((kept.base == args.label) & kept.task.isin(args.tasks))], table], ignore_index=True)
    table.to_csv(csv, index=False)
    command = " ".join(["python", "benchmarks/base_spread.py", *(sys.argv[1:] if argv is None else argv)])
    machine = describe_machine()
    (out / "base_spread_environment.json").write_text(json.dumps({**machine, "last_command": command}, indent=1))
    md = [
        "# Where RL can learn: per tag, the share of training prompts with mixed outcomes",
        "",
        f"Last command: `{command}` ({machine['cpu']}, torch {machine['torch']}, {machine['date']}). "
        f"{args.samples} SDE samples per prompt with the task preset's sampler; success = GenEval strict / "
        "OCR exact read; mixed_share = share of prompts whose success rate is strictly between 0 and 1.",
        "",
        to_markdown(table, digits=3),
        "",
    ]
    (out / "base_spread.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
