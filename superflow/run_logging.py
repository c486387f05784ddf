"""Watch a run while it trains: TensorBoard and Weights & Biases next to ``metrics.jsonl``.

``log.backends`` names the extra backends (``metrics.jsonl`` is always written, by the run folder).
Each epoch logs every numeric key of its metrics line as a scalar at step = epoch, histograms of
the epoch's group sizes and (for tracker methods) of the per-prompt tracker values, the
step-advantage profile as one scalar per trained step, and at each evaluation a grid of held-out
samples with their whole prompts. Only rank 0 logs.

Resuming continues the same logged run without duplicate steps: TensorBoard purges the events
at or after the first re-run epoch (``purge_step``); W&B resumes the same run id (kept in
``wandb_run.json``) and skips epochs it has already received (a CPU run repeats them exactly).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from superflow.checkpoint import atomic_write_text
from superflow.config import Config, ConfigError

__all__ = ["RunLogger", "scalar_metrics", "BACKENDS"]

BACKENDS = ("jsonl", "tensorboard", "wandb")
#: The package each backend needs, and the extra that installs it.
_REQUIREMENTS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb")}


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The keys of a metrics line that are numbers (not None, not flags, not lists)."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(float(v))
    }


def _require(backend: str):
    package, extra = _REQUIREMENTS[backend]
    try:
        return __import__(package)
    except ImportError:
        raise ConfigError(
            f"log.backends has {backend!r} but the {package} package is not installed: "
            f"pip install 'superflow[{extra}]' (or drop {backend!r} from log.backends)"
        ) from None


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class _TensorBoard:
    def __init__(self, folder: Path, first_epoch: int):
        _require("tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: events a killed run wrote at or after the epoch that runs again are dropped.
        self.writer = SummaryWriter(str(folder), purge_step=first_epoch + 1 if first_epoch else None)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def histogram(self, step: int, name: str, values: np.ndarray) -> None:
        self.writer.add_histogram(name, np.asarray(values, dtype=np.float64), step)

    def figure(self, step: int, name: str, fig) -> None:
        self.writer.add_figure(name, fig, step)

    def close(self) -> None:
        self.writer.close()


class _Wandb:
    def __init__(self, cfg: Config, folder: Path):
        wandb = _require("wandb")
        self.wandb = wandb
        self.state_path = folder / "wandb_run.json"
        state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        run_id = state.get("id") or uuid.uuid4().hex[:16]  # W&B's id rules: letters and digits
        self.last_step = int(state.get("last_step", 0))
        mode = cfg.log.wandb_mode or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        if mode not in ("online", "offline", "disabled"):
            raise ConfigError(f"log.wandb_mode is {mode!r}; choose online, offline or disabled")
        config = {**cfg.to_dict(), "git_commit": git_commit()}
        self.run = wandb.init(
            project=cfg.log.wandb_project,
            entity=cfg.log.wandb_entity,
            name=Path(cfg.output_dir).name,
            dir=str(folder),
            id=run_id,
            resume="allow",
            mode=mode,
            config=config,
            tags=[cfg.method, f"seed{cfg.seed}"],
        )
        self.state = {"id": run_id, "mode": mode, "last_step": self.last_step}
        self._save_state()

    def _save_state(self) -> None:
        atomic_write_text(self.state_path, json.dumps(self.state))

    def _fresh(self, step: int) -> bool:
        return step > self.last_step

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self._fresh(step):
            self.run.log(values, step=step)

    def histogram(self, step: int, name: str, values: np.ndarray) -> None:
        if self._fresh(step):
            self.run.log({name: self.wandb.Histogram(np.asarray(values, dtype=np.float64))}, step=step)

    def figure(self, step: int, name: str, fig) -> None:
        if self._fresh(step):
            self.run.log({name: self.wandb.Image(fig)}, step=step)

    def end_step(self, step: int) -> None:
        if self._fresh(step):
            self.last_step = step
            self.state["last_step"] = step
            self._save_state()

    def close(self) -> None:
        self.run.finish()


class RunLogger:
    """The configured extra backends of one run; a no-op when there are none or off rank 0."""

    def __init__(self, cfg: Config, folder: Path, first_epoch: int = 0, enabled: bool = True):
        unknown = [b for b in cfg.log.backends if b not in BACKENDS]
        if unknown:
            raise ConfigError(f"log.backends: unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
        self.backends: list[Any] = []
        if not enabled:
            return
        folder = Path(folder)
        if "tensorboard" in cfg.log.backends:
            self.backends.append(_TensorBoard(folder / "tensorboard", first_epoch))
        if "wandb" in cfg.log.backends:
            self.backends.append(_Wandb(cfg, folder))

    @property
    def active(self) -> bool:
        return bool(self.backends)

    def log_epoch(self, metrics: dict[str, Any], tracker_values: Sequence[float] | None = None) -> None:
        if not self.active:
            return
        step = int(metrics["epoch"])
        scalars = scalar_metrics(metrics)
        profile = metrics.get("step_advantage_profile") or []
        scalars.update({f"step_advantage/step_{j}": float(v) for j, v in enumerate(profile)})
        for backend in self.backends:
            backend.scalars(step, scalars)
            if metrics.get("group_sizes"):
                backend.histogram(step, "group_sizes", np.asarray(metrics["group_sizes"]))
            if tracker_values is not None and len(tracker_values):
                backend.histogram(step, "tracker_values", np.asarray(tracker_values))

    def log_samples(self, step: int, images: Sequence[np.ndarray], prompts: Sequence[str]) -> None:
        if not self.active or not len(images):
            return
        import matplotlib.pyplot as plt

        from superflow.reporting.figures import image_grid

        for backend in self.backends:
            fig = image_grid(images, prompts, title=f"held-out samples, epoch {step}")
            backend.figure(step, "samples", fig)  # add_figure closes it; wandb copies it
            plt.close(fig)

    def end_epoch(self, step: int) -> None:
        for backend in self.backends:
            if hasattr(backend, "end_step"):
                backend.end_step(step)

    def close(self) -> None:
        for backend in self.backends:
            backend.close()
        self.backends = []
