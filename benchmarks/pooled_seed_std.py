"""How large is a method's gain really, in seed-std, and how often would 3 seeds show it?

A ``mini_rl_gain.py`` summary divides each arm's mean gain by that arm's own std over seeds. With 3
seeds that std has 2 degrees of freedom, so the verdict swings: the same arm has read 0.4 std on
one metric and 9.5 on another. Arms run on one base, one prompt split and one set of RL seeds can be
assumed to share one seed variance (their own stds are what 2 degrees of freedom scatter around
it), so this pools their variances, weighted by degrees of freedom, into one seed std per task and
metric (arms with fewer than 2 seeds have no variance to give and get no row), and reports each
arm's gain over it, with

- ``pass_probability``: if the arm's true gain were ``gain / pooled_std`` seed-std, the chance that a
  fresh ``seeds``-seed run shows ``mean gain > bar x sample std``. The ratio
  ``mean gain / (sample std / sqrt(n))`` of n normal draws is a noncentral t with n - 1 degrees of
  freedom and noncentrality ``ratio x sqrt(n)``, so this is exact, not simulated.

Usage (one or more summaries; ``--exclude`` drops arms that are not the same experiment, e.g. one that
collapsed, and the shuffled-reward control by default)::

    python benchmarks/pooled_seed_std.py results/experiments/geneval_levers_validation_2026-12-06/summary.csv \\
        results/experiments/fp32_and_epochs_validation_2026-12-06/geneval/summary.csv --exclude tf08_ep8 \\
        --output results/experiments/fp32_and_epochs_validation_2026-12-06/pooled_geneval.md
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path

import pandas as pd

from superflow.reporting.markdown import to_markdown


def pooled_std(stds: list[float], seeds: list[int]) -> float:
    """The square root of the degrees-of-freedom-weighted mean of the arms' variances."""
    dof = [n - 1 for n in seeds]
    if sum(dof) <= 0:
        return float("nan")
    return math.sqrt(sum(d * s * s for d, s in zip(dof, stds)) / sum(dof))


def pass_probability(true_ratio: float, seeds: int = 3, bar: float = 3.0) -> float:
    """P(mean gain > bar x sample std) over ``seeds`` normal draws whose mean is ``true_ratio`` std."""
    from scipy.stats import nct

    root = math.sqrt(seeds)
    return float(nct.sf(bar * root, seeds - 1, true_ratio * root))


def pool(summary: pd.DataFrame, exclude: set[str]) -> pd.DataFrame:
    """One row per task, metric and kept arm: its gain over the pooled std of all kept arms.

    Raises ValueError where the summaries cannot be pooled: one arm twice, or arms measured against
    different bases (a test and a validation summary, two worlds)."""
    kept = summary[~summary["arm"].isin(exclude) & (summary["seeds"] >= 2) & summary["std"].notna()]
    rows = []
    for (task, metric), group in kept.groupby(["task", "metric"], sort=False):
        twice = sorted(set(group["arm"][group["arm"].duplicated()]))
        if twice:
            raise ValueError(f"{task} {metric}: arm(s) {', '.join(twice)} appear in more than one summary")
        if group["base"].nunique() > 1:
            bases = ", ".join(f"{b:.4f}" for b in sorted(group["base"].unique()))
            raise ValueError(f"{task} {metric}: the arms have different bases ({bases}); pool one split at a time")
        std = pooled_std(group["std"].tolist(), group["seeds"].astype(int).tolist())
        dof = int((group["seeds"] - 1).sum())
        for _, arm in group.iterrows():
            ratio = arm["gain"] / std
            rows.append(
                {
                    "task": task,
                    "metric": metric,
                    "arm": arm["arm"],
                    "gain": arm["gain"],
                    "own_std": arm["std"],
                    "gain_over_own_std": arm["gain_over_std"],
                    "pooled_std": std,
                    "pooled_dof": dof,
                    "gain_over_pooled_std": ratio,
                    "pass_probability": pass_probability(ratio, int(arm["seeds"])),
                }
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("summaries", nargs="+", type=Path, help="mini_rl_gain summary.csv files")
    parser.add_argument("--exclude", nargs="*", default=[], help="arms left out (the control always is)")
    parser.add_argument("--output", type=Path, help="write the table here as markdown (and .csv beside it)")
    args = parser.parse_args(argv)
    for path in args.summaries:
        if not path.is_file():
            parser.error(f"no such summary: {path}")
    summary = pd.concat([pd.read_csv(p) for p in args.summaries], ignore_index=True)
    missing = {"task", "metric", "arm", "base", "gain", "std", "gain_over_std", "seeds"} - set(summary.columns)
    if missing:
        parser.error(f"{', '.join(map(str, args.summaries))}: not mini_rl_gain summaries, missing {sorted(missing)}")
    unknown = sorted(set(args.exclude) - set(summary["arm"]))
    if unknown:
        parser.error(f"--exclude {' '.join(unknown)}: no such arm (arms: {', '.join(dict.fromkeys(summary['arm']))})")
    try:
        table = pool(summary, {"shuffled_reward", *args.exclude})
    except ValueError as err:
        parser.error(str(err))
    if table.empty:
        parser.error("no arm left to pool: every arm was excluded or has fewer than 2 seeds")
    text = to_markdown(table.round(4))
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        command = shlex.join(["python", "benchmarks/pooled_seed_std.py", *(sys.argv[1:] if argv is None else argv)])
        args.output.write_text(f"# Gains over a pooled seed std\n\nCommand: `{command}`\n\n{text}\n")
        table.to_csv(args.output.with_suffix(".csv"), index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
