"""The study's figures (matplotlib, Agg): reward curves, group sizes, step advantages, sample grids."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; no display on CI or cluster nodes
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from superflow.reporting.runs import RunFiles, method_label, progress_key, read_metrics


def _save(fig, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _label(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _axes(count: int, width: float = 4.2, height: float = 3.3):
    fig, axes = plt.subplots(1, count, figsize=(width * count, height), squeeze=False)
    return fig, axes[0]


#: The learning curves' x axes. Images and seconds compare methods on equal terms even where they take
#: different numbers of optimiser steps per image (the authors' NFT and AWM recipes take one an epoch).
X_LABELS = {
    "global_step": "optimiser step",
    "cum_images_sampled": "images sampled",
    "train_seconds": "training wall-clock (s, evaluation excluded)",
}


def reward_curves(
    runs: Sequence[RunFiles],
    metrics_by_task: dict[str, str],
    task_labels: dict[str, str],
    x: str,
    path: Path | str,
    method_labels: dict[str, str] | None = None,
) -> Path:
    """Held-out metric against ``x`` (a key of ``X_LABELS``): mean line and min-max band over seeds."""
    tasks = list(task_labels)
    fig, axes = _axes(len(tasks))
    for ax, task in zip(axes, tasks):
        key = progress_key(metrics_by_task[task])
        methods = dict.fromkeys(r.method for r in runs if r.task == task)
        for method in methods:
            curves = []
            for run in (r for r in runs if r.task == task and r.method == method):
                frame = read_metrics(run.metrics)
                if key in frame:
                    curves.append(frame.dropna(subset=[key])[[x, key]].to_numpy())
            if not curves:
                continue
            length = min(len(c) for c in curves)
            stacked = np.stack([c[:length] for c in curves])  # seeds x points x (x, y)
            xs, ys = stacked[:, :, 0].mean(axis=0), stacked[:, :, 1]
            line = ax.plot(xs, ys.mean(axis=0), marker="o", label=method_label(method, method_labels))[0]
            if len(curves) > 1:
                ax.fill_between(xs, ys.min(axis=0), ys.max(axis=0), alpha=0.2, color=line.get_color())
        _label(ax, task_labels[task], X_LABELS[x], "held-out " + metrics_by_task[task])
    return _save(fig, path)


def group_sizes(
    runs: Sequence[RunFiles], task_labels: dict[str, str], path: Path | str, method: str = "superflow"
) -> Path:
    """Per task: the distribution of per-prompt group sizes over training (median, 10-90% and min-max)."""
    tasks = list(task_labels)
    fig, axes = _axes(len(tasks))
    for ax, task in zip(axes, tasks):
        chosen = [r for r in runs if r.task == task and r.method == method]
        if not chosen:
            ax.set_visible(False)
            continue
        by_epoch: dict[int, list[int]] = {}
        for run in chosen:
            for row in read_metrics(run.metrics).itertuples():
                by_epoch.setdefault(int(row.epoch), []).extend(int(m) for m in row.group_sizes)
        epochs = np.array(sorted(by_epoch))
        sizes = [np.array(by_epoch[e]) for e in epochs]
        lo, hi = np.array([s.min() for s in sizes]), np.array([s.max() for s in sizes])
        p10, p90 = np.array([np.percentile(s, 10) for s in sizes]), np.array([np.percentile(s, 90) for s in sizes])
        ax.fill_between(epochs, lo, hi, alpha=0.15, label="min-max")
        ax.fill_between(epochs, p10, p90, alpha=0.3, label="10-90%")
        ax.plot(epochs, [np.median(s) for s in sizes], label="median")
        _label(ax, f"{task_labels[task]}: {method_label(method)} group sizes", "epoch", "images per prompt")
    return _save(fig, path)


def step_advantage_profile(
    runs: Sequence[RunFiles],
    task_labels: dict[str, str],
    path: Path | str,
    method_labels: dict[str, str] | None = None,
) -> Path:
    """Mean |advantage| per trained denoising step against the sigma the step starts from, over training."""
    tasks = list(task_labels)
    fig, axes = _axes(len(tasks))
    for ax, task in zip(axes, tasks):
        for method in dict.fromkeys(r.method for r in runs if r.task == task):
            profiles, sigmas = [], None
            for run in (r for r in runs if r.task == task and r.method == method):
                frame = read_metrics(run.metrics)
                if "step_sigmas" not in frame:
                    continue
                profiles.extend(frame["step_advantage_profile"].tolist())
                sigmas = frame["step_sigmas"].iloc[0]
            if sigmas is None:
                continue
            width = min(len(sigmas), *(len(p) for p in profiles))
            mean = np.mean([p[:width] for p in profiles], axis=0)
            ax.plot(sigmas[:width], mean, marker="o", label=method_label(method, method_labels))
        ax.invert_xaxis()  # sampling runs from sigma 1 (noise) to 0 (image)
        _label(ax, task_labels[task], "sigma at the step's start", "mean |advantage|")
    return _save(fig, path)


def sample_grid(
    sample_dirs: dict[str, Path | str],
    path: Path | str,
    num_prompts: int = 8,
    title: str = "",
    method_labels: dict[str, str] | None = None,
) -> Path:
    """Rows = methods, columns = the first prompts of the held-out set (GenEval folder layout)."""
    methods = list(sample_dirs)
    available = max(len(list(Path(d).glob("[0-9]" * 5))) for d in sample_dirs.values()) if methods else 0
    num_prompts = max(1, min(num_prompts, available))
    fig, axes = plt.subplots(
        len(methods), num_prompts, figsize=(1.3 * num_prompts, 1.4 * len(methods) + 0.9), squeeze=False
    )
    for row, method in enumerate(methods):
        for col in range(num_prompts):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            image_path = Path(sample_dirs[method]) / f"{col:05d}" / "samples" / "0000.png"
            if image_path.exists():
                with Image.open(image_path) as image:
                    ax.imshow(np.asarray(image.convert("RGB")), interpolation="nearest")
            if col == 0:
                ax.set_ylabel(method_label(method, method_labels), fontsize=8)
            if row == len(methods) - 1:  # the whole prompt under its column
                ax.set_xlabel(wrapped_prompt(_prompt_of(Path(sample_dirs[method]) / f"{col:05d}")), fontsize=5)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def _prompt_of(folder: Path) -> str:
    from superflow.files import read_jsonl

    meta = folder / "metadata.jsonl"
    if not meta.exists():
        return ""
    rows = read_jsonl(meta)
    return rows[0].get("prompt", "") if rows else ""


def wrapped_prompt(prompt: str, width: int = 22) -> str:
    """The whole prompt, broken into lines of at most ``width`` characters (words are not cut)."""
    return "\n".join(textwrap.wrap(prompt, width=width, break_long_words=False)) or prompt


def image_grid(images: Sequence[np.ndarray], prompts: Sequence[str], path: Path | str | None = None, title: str = ""):
    """One image per column with its whole prompt wrapped underneath; saved to ``path`` or returned."""
    count = len(images)
    if count != len(prompts) or count == 0:
        raise ValueError(
            f"need one prompt per image and at least one image, got {count} images, {len(prompts)} prompts"
        )
    lines = max(wrapped_prompt(p).count("\n") + 1 for p in prompts)
    fig, axes = plt.subplots(1, count, figsize=(1.3 * count, 1.4 + 0.12 * lines + 0.3), squeeze=False)
    for ax, image, prompt in zip(axes[0], images, prompts):
        ax.imshow(image, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(wrapped_prompt(prompt), fontsize=5)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path) if path is not None else fig


def write_all(
    runs: Sequence[RunFiles],
    metrics_by_task: dict[str, str],
    task_labels: dict[str, str],
    output_dir: Path | str,
    sample_dirs: dict[str, dict[str, Path]] | None = None,
    method_labels: dict[str, str] | None = None,
) -> list[Path]:
    out = Path(output_dir)
    written = [
        reward_curves(
            runs, metrics_by_task, task_labels, "global_step", out / "test_reward_vs_step.png", method_labels
        ),
        reward_curves(
            runs, metrics_by_task, task_labels, "train_seconds", out / "test_reward_vs_time.png", method_labels
        ),
        reward_curves(
            runs, metrics_by_task, task_labels, "cum_images_sampled", out / "test_reward_vs_images.png", method_labels
        ),
        group_sizes(runs, task_labels, out / "group_sizes.png"),
        step_advantage_profile(runs, task_labels, out / "step_advantage_profile.png", method_labels),
    ]
    for task, dirs in (sample_dirs or {}).items():
        written.append(
            sample_grid(
                dirs, out / f"samples_{task}.png", title=task_labels.get(task, task), method_labels=method_labels
            )
        )
    return written
