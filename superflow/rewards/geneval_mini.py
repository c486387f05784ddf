"""``geneval_mini``: GenEval's rules on the mini world's detector, as a reward in [0, 1]."""

from __future__ import annotations

import numpy as np

from superflow.rewards.registry import register_reward
from superflow.rewards.simple import to_uint8


@register_reward("geneval_mini", bounds=(0, 1))
def geneval_mini(mode: str = "partial"):
    """``mode='partial'`` (Flow-GRPO's training reward) or ``'strict'`` (GenEval's correct/incorrect)."""
    from superflow.evaluation.geneval_rules import score_detections
    from superflow.world.detector import detect

    if mode not in ("partial", "strict"):
        raise ValueError(f"geneval_mini: mode must be 'partial' or 'strict', got {mode!r}")

    def score(images, prompts, metadata):
        results = []
        for image, meta, prompt in zip(to_uint8(images), metadata, prompts):
            if "include" not in meta:
                raise ValueError(f"geneval_mini needs GenEval metadata ('include') for prompt {prompt!r}")
            results.append(score_detections(detect(image), {**meta, "prompt": prompt}))
        strict = np.array([r.correct for r in results], dtype=np.float64)
        partial = np.array([r.partial for r in results])
        info = {"strict": float(strict.mean()), "partial": float(partial.mean()), "per_image": {"strict": strict, "partial": partial}}
        return (partial if mode == "partial" else strict), info

    return score
