"""A training run's folder: which file holds what, and how a resume reads it back.

    config.yaml     the run's config; resuming with a different one is refused or restarts the run
    metrics.jsonl   one JSON line per epoch; lines written after the newest checkpoint are dropped
                    on resume, because their epochs run again
    checkpoints/    atomic checkpoints (:mod:`superflow.checkpoint`)
    lora/           the exported weights, in the model's own format
    summary.json    written last, so its presence marks a finished run (workflows key on it)

In a distributed run only rank 0 calls the methods that write.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml

from superflow.checkpoint import atomic_write_text, load_newest_valid_checkpoint, save_checkpoint
from superflow.config import Config, dump_config
from superflow.files import read_jsonl, read_yaml

#: Keys that extend or checkpoint a run without changing what it computes.
RESUMABLE_KEYS = ("num_epochs", "save_every", "save_total_limit", "output_dir") + tuple(
    f"log.{key}" for key in ("backends", "samples", "wandb_project", "wandb_entity", "wandb_mode")
)


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value and key != "kwargs":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def changed_config_keys(saved_path: Path, cfg: Config) -> list[str]:
    """Dotted keys whose value differs between a run folder's saved config and ``cfg``."""
    if not saved_path.exists():
        return []
    saved = _flatten(read_yaml(saved_path) or {})
    current = _flatten(yaml.safe_load(dump_config(cfg)))
    keys = sorted(set(saved) | set(current))
    return [
        k
        for k in keys
        if k not in RESUMABLE_KEYS
        and saved.get(k) != current.get(k)
        and not (k not in saved and _as_before_the_key_existed(k, current))
    ]


#: Keys added after runs were already saved, with the value that reproduces what those runs computed.
KEYS_ADDED_LATER = {"sample.sde_type": "sde", "sample.sde_window_size": 0, "sample.same_initial_noise": False}


def _as_before_the_key_existed(key: str, current: dict[str, Any]) -> bool:
    """A key missing from an older run's saved config changes nothing when its value now computes
    what the run computed then (an SDE window's range is unused while the window is off)."""
    if key == "sample.sde_window_range":
        return current.get("sample.sde_window_size") == 0
    return key in KEYS_ADDED_LATER and current[key] == KEYS_ADDED_LATER[key]


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.config = self.path / "config.yaml"
        self.metrics = self.path / "metrics.jsonl"
        self.checkpoints = self.path / "checkpoints"
        self.weights = self.path / "lora"
        self.summary = self.path / "summary.json"

    def config_changes(self, cfg: Config) -> list[str]:
        """Keys that differ between the folder's saved config and ``cfg`` (none for a new folder)."""
        return changed_config_keys(self.config, cfg)

    def write_config(self, cfg: Config) -> None:
        atomic_write_text(self.config, dump_config(cfg))

    def discard_checkpoints(self) -> None:
        shutil.rmtree(self.checkpoints, ignore_errors=True)

    def append_metrics(self, metrics: dict[str, Any]) -> None:
        with self.metrics.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(metrics) + "\n")

    def keep_metrics_lines(self, count: int) -> None:
        """Drop every metrics line after the first ``count``."""
        if self.metrics.exists():
            kept = self.metrics.read_text().splitlines(keepends=True)[:count]
            atomic_write_text(self.metrics, "".join(kept))

    def save_checkpoint(self, epoch: int, state: dict[str, Any], meta: dict[str, Any], keep_last: int) -> Path:
        """Checkpoint ``epoch``; its metadata records how many metrics lines it covers."""
        lines = self.metrics.read_text().count("\n") if self.metrics.exists() else 0
        return save_checkpoint(self.checkpoints, epoch, state, {"metrics_lines": lines, **meta}, keep_last=keep_last)

    def load_newest_checkpoint(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """``(state, meta)`` of the newest valid checkpoint (damaged newer ones are reported and set
        aside), or None when there is none."""
        found = load_newest_valid_checkpoint(self.checkpoints)
        return None if found is None else found[:2]

    def write_summary(self, method: str, seed: int, epochs: int, global_step: int, model_dtype: Any = "") -> Path:
        """``summary.json``: the last epoch's metrics and the last evaluation, written last.

        ``model_dtype``: the precision the model ran in (a name or a ``torch.dtype``)."""
        rows = read_jsonl(self.metrics) if self.metrics.exists() else []
        last = rows[-1] if rows else {}
        evaluated = [row for row in rows if "eval_reward_mean" in row]
        summary = {
            "method": method,
            "seed": seed,
            "epochs": epochs,
            "global_step": global_step,
            "time_total": last.get("time_total"),
            "last_epoch": last,
            "last_evaluation": {
                k: v for k, v in (evaluated[-1] if evaluated else {}).items() if k.startswith("eval_")
            },
            "torch": torch.__version__,
            "model_dtype": str(model_dtype).removeprefix("torch."),
            "config": self.config.name,
        }
        atomic_write_text(self.summary, json.dumps(summary, indent=1) + "\n")
        return self.summary
