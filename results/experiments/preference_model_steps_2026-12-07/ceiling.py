"""A preference model's scores of ground-truth renders of a world's 300 test prompts (2 renders each)
and of the same renders degraded as its training pairs degrade them. Run from the repository root:

    OMP_NUM_THREADS=1 python results/experiments/preference_model_steps_2026-12-07/ceiling.py \
        WORLD_FOLDER PREFERENCE_MODEL [WORLD_FOLDER PREFERENCE_MODEL ...]

(the same measurement as results/experiments/base_spread_worlds_2026-12-07/preference_ceiling.py,
for any model)."""

import json
import sys

import numpy as np
import torch

from superflow.rewards.mini_preference import mini_preference
from superflow.world.preference_data import degrade
from superflow.world.render import render_scene

torch.set_num_threads(1)
pairs = sys.argv[1:]
for world, model in zip(pairs[0::2], pairs[1::2]):
    meta = [json.loads(line) for line in open(f"{world}/geneval/test_metadata.jsonl")]
    score = mini_preference(model)
    rng = np.random.default_rng(0)
    metas = [m for m in meta for _ in range(2)]
    prompts = [m["prompt"] for m in metas]
    truth = np.stack([render_scene(m, 32, rng) for m in metas])
    degraded = np.stack([degrade(g, rng, truth[(i + 7) % len(truth)]) for i, g in enumerate(truth)])
    for name, images in (("ground truth", truth), ("degraded", degraded)):
        scores = score(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, prompts, metas)[0].numpy()
        print(f"{world} {model} {name}: mean {scores.mean():.2f}, sd {scores.std():.2f}")
