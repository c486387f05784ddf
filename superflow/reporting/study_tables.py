"""The study's tables: Table 1 (final test metric per task and method) and the efficiency table.

Table 1 is laid out like the paper's: a row per method (the base model first), a column per task,
mean and standard deviation over seeds. The efficiency table counts what each method spent to reach
Flow-GRPO's final test metric (mean over seeds of its last periodic evaluation, the same held-out
prompts and noise for every method): optimiser steps, images sampled, reward calls and training
wall-clock (evaluation excluded), and each as a ratio to Flow-GRPO's with a 95% percentile
bootstrap interval over seeds (``*_ratio_low``, ``*_ratio_high``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from superflow.reporting.runs import (
    RunFiles,
    method_label,
    metric_value,
    progress_key,
    read_evaluation,
    read_metrics,
)

REFERENCE_METHOD = "flowgrpo"


def final_scores(runs: Sequence[RunFiles], metrics_by_task: dict[str, str]) -> pd.DataFrame:
    """Long frame: task, method, seed, value (from each run's evaluation JSON)."""
    rows = []
    for run in runs:
        if run.evaluation is None:
            raise ValueError(f"{run.task}/{run.method}/seed {run.seed}: no evaluation file")
        value = metric_value(read_evaluation(run.evaluation), metrics_by_task[run.task], run.evaluation)
        rows.append({"task": run.task, "method": run.method, "seed": run.seed, "value": value})
    return pd.DataFrame(rows, columns=["task", "method", "seed", "value"])


def summarise(scores: pd.DataFrame, method_order: Sequence[str], task_order: Sequence[str]) -> pd.DataFrame:
    """Wide frame: a row per method, ``{task}_mean``, ``{task}_std`` (over seeds, ddof 1) and ``{task}_n``."""
    grouped = scores.groupby(["method", "task"])["value"].agg(["mean", "std", "count"])
    rows = []
    for method in method_order:
        row: dict[str, object] = {"method": method}
        for task in task_order:
            if (method, task) in grouped.index:
                mean, std, count = grouped.loc[(method, task)]
                row.update({f"{task}_mean": float(mean), f"{task}_std": float(std), f"{task}_n": int(count)})
            else:
                row.update({f"{task}_mean": math.nan, f"{task}_std": math.nan, f"{task}_n": 0})
        rows.append(row)
    return pd.DataFrame(rows)


def table_markdown(
    summary: pd.DataFrame, task_labels: dict[str, str], method_labels: dict[str, str] | None = None, digits: int = 4
) -> str:
    """'mean ± std (n seeds)' cells; a single seed or the base model shows the mean alone."""
    tasks = list(task_labels)
    lines = ["| Method | " + " | ".join(task_labels[t] for t in tasks) + " |", "|---|" + "---:|" * len(tasks)]
    for row in summary.itertuples(index=False):
        row = row._asdict()
        cells = []
        for task in tasks:
            mean, std, n = row[f"{task}_mean"], row[f"{task}_std"], row[f"{task}_n"]
            if n == 0:
                cells.append("")
            elif n == 1 or math.isnan(std):
                cells.append(f"{mean:.{digits}f}")
            else:
                cells.append(f"{mean:.{digits}f} ± {std:.{digits}f} (n={n})")
        lines.append(f"| {method_label(row['method'], method_labels)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cost_to_target(
    runs: Sequence[RunFiles], metrics_by_task: dict[str, str], reference: str = REFERENCE_METHOD
) -> pd.DataFrame:
    """Per run: the first periodic evaluation at or above the reference method's final test metric."""
    frames = {run: read_metrics(run.metrics) for run in runs}
    rows = []
    for task in dict.fromkeys(run.task for run in runs):
        key = progress_key(metrics_by_task[task])
        finals = []
        for run, frame in frames.items():
            if run.task == task and run.method == reference:
                evaluated = frame.dropna(subset=[key]) if key in frame else frame.iloc[0:0]
                if evaluated.empty:
                    raise ValueError(f"{run.metrics}: no periodic evaluation '{key}' (set eval_every)")
                finals.append(float(evaluated[key].iloc[-1]))
        if not finals:
            raise ValueError(f"task {task}: no {reference} run to take the target from")
        target = float(np.mean(finals))
        for run, frame in frames.items():
            if run.task != task:
                continue
            evaluated = frame.dropna(subset=[key]) if key in frame else frame.iloc[0:0]
            hit = evaluated[evaluated[key] >= target - 1e-12]
            row = {"task": task, "method": run.method, "seed": run.seed, "target": target, "reached": not hit.empty}
            if hit.empty:
                row.update(steps=math.nan, images=math.nan, reward_calls=math.nan, train_seconds=math.nan)
            else:
                first = hit.iloc[0]
                row.update(
                    steps=float(first["global_step"]),
                    images=float(first["cum_images_sampled"]),
                    reward_calls=float(first["cum_reward_calls"]),
                    train_seconds=float(first["train_seconds"]),
                )
            rows.append(row)
    return pd.DataFrame(rows)


COST_COLUMNS = ("steps", "images", "reward_calls", "train_seconds")
#: Bootstrap resamples behind each ratio's interval, and the interval's coverage.
BOOTSTRAP_RESAMPLES = 10_000
INTERVAL_LEVEL = 0.95


def bootstrap_ratio_interval(
    values: Sequence[float],
    reference: Sequence[float],
    level: float = INTERVAL_LEVEL,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(values) / mean(reference)`` over seeds.

    Each side is resampled with replacement on its own (a method's seeds that reached the target
    need not be the reference's); ``(nan, nan)`` when either side is empty. With 3 seeds a side the
    interval is coarse: it says how far the seeds alone move the ratio, nothing more.
    """
    x, y = np.asarray(values, dtype=float), np.asarray(reference, dtype=float)
    if x.size == 0 or y.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    xs = x[rng.integers(x.size, size=(resamples, x.size))].mean(axis=1)
    ys = y[rng.integers(y.size, size=(resamples, y.size))].mean(axis=1)
    ratios = xs / ys
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def efficiency_table(
    costs: pd.DataFrame, method_order: Sequence[str], reference: str = REFERENCE_METHOD
) -> pd.DataFrame:
    """Mean cost over the seeds that reached the target, and its ratio to the reference method's."""
    rows = []
    for task in dict.fromkeys(costs["task"]):
        in_task = costs[costs["task"] == task]
        ref = in_task[(in_task["method"] == reference) & in_task["reached"]]
        for method in method_order:
            runs = in_task[in_task["method"] == method]
            if runs.empty:
                continue
            reached = runs[runs["reached"]]
            row: dict[str, object] = {
                "task": task,
                "method": method,
                "target": float(runs["target"].iloc[0]),
                "reached": f"{len(reached)}/{len(runs)}",
            }
            for column in COST_COLUMNS:
                mean = float(reached[column].mean()) if not reached.empty else math.nan
                ref_mean = float(ref[column].mean()) if not ref.empty else math.nan
                row[column] = mean
                row[f"{column}_ratio"] = mean / ref_mean if ref_mean and not math.isnan(ref_mean) else math.nan
                low, high = bootstrap_ratio_interval(reached[column].to_numpy(), ref[column].to_numpy())
                row[f"{column}_ratio_low"], row[f"{column}_ratio_high"] = low, high
            rows.append(row)
    table = pd.DataFrame(rows)
    for column in ("steps", "images", "reward_calls"):  # counts: whole numbers, empty where not reached
        if column in table:
            table[column] = table[column].round().astype("Int64")
    return table
