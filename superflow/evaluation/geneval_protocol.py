"""GenEval's output files: ``results.jsonl`` lines and the summary its ``summary_scores.py`` prints.

Official protocol: GenEval's 553 prompts (``superflow/data/geneval/evaluation_metadata.jsonl``), 4
images per prompt, each image scored correct/incorrect; a tag's score is its fraction of correct
images and the overall score is the mean of the tag scores. ``superflow evaluate --images-per-prompt
4 --geneval-results FILE`` writes the per-image lines and this summary; ``--save-images DIR``
keeps the images in GenEval's folder layout so its own script can re-score them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OFFICIAL_METADATA = Path(__file__).parents[1] / "data" / "geneval" / "evaluation_metadata.jsonl"
IMAGES_PER_PROMPT = 4


def summary_scores(records: list[dict]) -> dict:
    """GenEval's summary: image and prompt accuracy, per-tag accuracy (first-seen order), overall."""
    if not records:
        raise ValueError("no GenEval results to summarise")
    by_tag: dict[str, list[bool]] = {}
    by_prompt: dict[str, list[bool]] = {}
    for r in records:
        by_tag.setdefault(r["tag"], []).append(bool(r["correct"]))
        by_prompt.setdefault(r["metadata"], []).append(bool(r["correct"]))
    per_tag = {t: float(np.mean(v)) for t, v in by_tag.items()}
    return {
        "total_images": len(records),
        "total_prompts": len(by_prompt),
        "correct_images": float(np.mean([r["correct"] for r in records])),
        "correct_prompts": float(np.mean([any(v) for v in by_prompt.values()])),
        "per_tag": per_tag,
        "per_tag_counts": {t: [int(sum(v)), len(v)] for t, v in by_tag.items()},
        "overall": float(np.mean(list(per_tag.values()))),
    }


def format_summary(summary: dict) -> str:
    lines = [
        "Summary",
        "=======",
        f"Total images: {summary['total_images']}",
        f"Total prompts: {summary['total_prompts']}",
        f"% correct images: {summary['correct_images']:.2%}",
        f"% correct prompts: {summary['correct_prompts']:.2%}",
        "",
        "Task breakdown",
        "==============",
    ]
    for tag, score in summary["per_tag"].items():
        hits, total = summary["per_tag_counts"][tag]
        lines.append(f"{tag:<16} = {score:.2%} ({hits} / {total})")
    lines += ["", f"Overall score (avg. over tasks): {summary['overall']:.5f}"]
    return "\n".join(lines)


def write_results(records: list[dict], path: str | Path) -> Path:
    """GenEval's results.jsonl: one JSON object per image, in evaluation order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path
