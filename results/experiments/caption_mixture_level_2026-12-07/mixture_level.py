"""The GenEval level of each world's pretraining data itself, per tag: what a base that had learned its
noisy captions' mixture exactly would score.

For each test prompt of a world, ``--renders`` ground-truth renders and as many renders of a scene
that disagrees with the prompt in its tag's attribute (``superflow.world.caption_noise``) are scored
by the mini detector and GenEval's rules. The mixture level of a tag is
``(1 - p) * score(ground truth) + p * score(disagreeing)``, p the caption noise the bases were
pretrained with. No model is sampled: this is the data, not a base.

    python results/experiments/caption_mixture_level_2026-12-07/mixture_level.py \
        --world 0 runs/pipeline/mini/world --world 1 runs/world1/world --world 2 runs/world2/world \
        --output results/experiments/caption_mixture_level_2026-12-07/mixture_level.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from superflow.evaluation.geneval_rules import score_detections
from superflow.prompts import load_prompts
from superflow.world.caption_noise import disagreeing_scene
from superflow.world.detector import detect
from superflow.world.render import render_scene


def score_prompts(metadata: list[dict], renders: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i, meta in enumerate(metadata):
        for kind in ("ground_truth", "disagreeing"):
            for _ in range(renders):
                scene = meta if kind == "ground_truth" else disagreeing_scene(meta, rng)
                result = score_detections(detect(render_scene(scene, size=32, rng=rng)), meta)
                rows.append(
                    {
                        "prompt": i,
                        "tag": meta["tag"],
                        "kind": kind,
                        "strict": float(result.correct),
                        "partial": result.partial,
                    }
                )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", nargs=2, action="append", metavar=("SEED", "DIR"), required=True)
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument("--renders", type=int, default=4, help="renders of each kind per prompt")
    parser.add_argument("--caption-noise", type=float, default=0.35)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()

    tables = []
    for seed, folder in args.world:
        metadata = load_prompts(Path(folder) / "geneval" / f"{args.split}_metadata.jsonl").metadata
        scores = score_prompts(metadata, args.renders, seed=int(seed))
        per_tag = scores.groupby(["tag", "kind"])[["strict", "partial"]].mean().unstack("kind")
        p = args.caption_noise
        for metric in ("strict", "partial"):
            per_tag[(metric, "mixture_level")] = (1 - p) * per_tag[(metric, "ground_truth")] + p * per_tag[
                (metric, "disagreeing")
            ]
        per_tag.columns = [f"{metric}_{kind}" for metric, kind in per_tag.columns]
        per_tag["prompts"] = scores.groupby("tag").prompt.nunique()  # aligned on the tag index
        per_tag = per_tag.reset_index().assign(world=int(seed))
        tables.append(per_tag)
    table = pd.concat(tables, ignore_index=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.output, index=False)
    print(table.round(3).to_markdown(index=False))


if __name__ == "__main__":
    main()
