"""``geneval``: GenEval's official rules as a reward, on either detector backend.

``backend="mmdet"`` is GenEval's own Mask2Former + CLIP (paper scale, GPU, its own conda env; use it
through the ``served`` reward); ``backend="mini"`` is the mini world's detector (``geneval_mini``
is the same reward with that backend). ``mode="partial"`` is Flow-GRPO's training reward,
``"strict"`` GenEval's correct/incorrect; both are reported per image in the info.
"""

from __future__ import annotations

import json

import numpy as np

from superflow.rewards.registry import register_reward
from superflow.rewards.simple import to_uint8

MODES = ("partial", "strict")


def geneval_scorer(detect, mode: str):
    """A reward function from ``detect(image uint8 [H, W, 3], metadata) -> list[Detection]``."""
    from superflow.evaluation.geneval_rules import score_detections

    if mode not in MODES:
        raise ValueError(f"geneval: mode must be 'partial' or 'strict', got {mode!r}")

    def score(images, prompts, metadata):
        results, records = [], []
        for image, meta, prompt in zip(to_uint8(images), metadata, prompts):
            if "include" not in meta:
                raise ValueError(f"geneval needs GenEval metadata ('include') for prompt {prompt!r}")
            detections = detect(image, meta)
            result = score_detections(detections, {**meta, "prompt": prompt})
            results.append(result)
            records.append(geneval_record(result, prompt, meta, detections))
        strict = np.array([r.correct for r in results], dtype=np.float64)
        partial = np.array([r.partial for r in results])
        info = {
            "strict": float(strict.mean()),
            "partial": float(partial.mean()),
            "per_image": {"strict": strict, "partial": partial},
            "records": records,
        }
        return (partial if mode == "partial" else strict), info

    return score


def geneval_record(result, prompt: str, metadata: dict, detections) -> dict:
    """One line of GenEval's results.jsonl (``filename`` is added by whoever saved the image)."""
    details: dict[str, list] = {}
    for det in sorted(detections, key=lambda d: -d.score):
        details.setdefault(det.cls, []).append([*det.box, det.score])
    meta = {**metadata, "prompt": prompt}
    return {
        "tag": metadata.get("tag", ""),
        "prompt": prompt,
        "correct": bool(result.correct),
        "reason": result.reason,
        "metadata": json.dumps(meta),
        "details": json.dumps(details),
    }


def mini_detect(image, metadata):
    from superflow.world.detector import detect

    return detect(image)


@register_reward("geneval", bounds=(0, 1), metadata_keys=("include",))
def geneval(
    mode: str = "partial",
    backend: str = "mmdet",
    device: str = "cuda",
    detector_path: str | None = None,
    config_path: str | None = None,
    clip_path: str | None = None,
):
    """GenEval's rules on ``backend``'s detections ("mmdet": Mask2Former + CLIP; "mini": the mini world)."""
    if backend == "mini":
        return geneval_scorer(mini_detect, mode)
    if backend != "mmdet":
        raise ValueError(f"geneval: backend must be 'mmdet' or 'mini', got {backend!r}")
    from superflow.evaluation.geneval_mmdet import Mask2FormerDetector

    detector = Mask2FormerDetector(detector_path, config_path, clip_path, device=device)
    return geneval_scorer(detector.detect, mode)


@register_reward("geneval_mini", bounds=(0, 1), metadata_keys=("include",))
def geneval_mini(mode: str = "partial"):
    """GenEval's rules on the mini world's detector (``geneval`` with ``backend="mini"``)."""
    return geneval_scorer(mini_detect, mode)
