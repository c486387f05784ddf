"""Each world's preference model on ground-truth renders of its 300 test prompts (2 renders each) and
on the same renders degraded as its training pairs degrade them: where its base's and its RL runs'
test rewards sit against what the model gives a faithful image. Run from the repository root:
`OMP_NUM_THREADS=1 python results/experiments/base_spread_worlds_2026-12-07/preference_ceiling.py`
(the three worlds' study models), or with `--model LABEL WORLD_FOLDER MODEL_FOLDER` (repeatable) for
any model (results/experiments/preference_model_steps_2026-12-07/)."""

import argparse
import json

import numpy as np
import torch

from superflow.rewards.mini_preference import mini_preference
from superflow.world.preference_data import degrade
from superflow.world.render import render_scene

STUDY_MODELS = [
    [name, f"{root}/world", f"{root}/preference"]
    for name, root in (("world0", "runs/pipeline/mini"), ("world1", "runs/world1"), ("world2", "runs/world2"))
]
parser = argparse.ArgumentParser()
parser.add_argument("--model", nargs=3, action="append", metavar=("LABEL", "WORLD_FOLDER", "MODEL_FOLDER"))
torch.set_num_threads(1)
for label, world, model in parser.parse_args().model or STUDY_MODELS:
    try:
        meta = [json.loads(line) for line in open(f"{world}/geneval/test_metadata.jsonl")]
        score = mini_preference(model)
    except (FileNotFoundError, OSError) as missing:
        print(label, "skipped:", missing)
        continue
    rng = np.random.default_rng(0)
    metas = [m for m in meta for _ in range(2)]
    prompts = [m["prompt"] for m in metas]
    truth = np.stack([render_scene(m, 32, rng) for m in metas])
    degraded = np.stack([degrade(g, rng, truth[(i + 7) % len(truth)]) for i, g in enumerate(truth)])
    for name, images in (("ground truth", truth), ("degraded", degraded)):
        scores = score(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, prompts, metas)[0].numpy()
        print(f"{label} {name}: mean {scores.mean():.2f}, sd {scores.std():.2f}")
