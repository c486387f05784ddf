"""Load finished runs (metrics.jsonl, evaluation JSON) into pandas frames for tables and figures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from superflow.files import read_json, read_jsonl

METHOD_LABELS = {"base": "base", "flowgrpo": "Flow-GRPO", "flowspo": "Flow-SPO", "superflow": "SuperFlow"}


@dataclass(frozen=True)
class RunFiles:
    """One training run of the study: which task, method and seed, and where its outputs are."""

    task: str
    method: str
    seed: int
    metrics: Path | None = None
    evaluation: Path | None = None


def metric_value(evaluation: dict, metric: str, source: Path | str = "") -> float:
    """A number from an evaluation JSON by dotted key ('mean', 'strict.tag_mean')."""
    value: object = evaluation
    for part in metric.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(f"{source}: evaluation has no {metric!r} (keys: {sorted(evaluation)})")
        value = value[part]
    return float(value)


def progress_key(metric: str) -> str:
    """The metrics.jsonl key of the trainer's periodic evaluation of ``metric``."""
    return "eval_" + metric.replace(".", "_") if "." in metric else f"eval_reward_{metric}"


def read_evaluation(path: Path | str) -> dict:
    return read_json(path)


def read_metrics(path: Path | str) -> pd.DataFrame:
    """One row per epoch; ``train_seconds`` is the cumulative wall-clock without evaluation."""
    path = Path(path)
    rows = read_jsonl(path)
    if not rows:
        raise ValueError(f"{path}: no epochs recorded")
    frame = pd.DataFrame(rows)
    eval_time = frame["time_eval"].fillna(0) if "time_eval" in frame else 0.0
    frame["train_seconds"] = (frame["time_epoch"] - eval_time).cumsum()
    return frame


def method_label(method: str, labels: dict[str, str] | None = None) -> str:
    return (labels or {}).get(method) or METHOD_LABELS.get(method, method)
