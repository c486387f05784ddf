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

from superflow.checkpoint import atomic_write_text, load_newest_valid_checkpoint, save_checkpoint
from superflow.config import Config, changed_config_keys, dump_config
from superflow.files import read_jsonl


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

    def write_summary(self, method: str, seed: int, epochs: int, global_step: int) -> Path:
        """``summary.json``: the last epoch's metrics and the last evaluation, written last."""
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
            "config": self.config.name,
        }
        atomic_write_text(self.summary, json.dumps(summary, indent=1) + "\n")
        return self.summary
