"""Where a finished study's time and memory went, and what each method spent to reach the target.

    snakemake --cores all reproduce_table1 && python benchmarks/pipeline_costs.py --variants flowgrpo flowspo superflow

Reads the `benchmark:` files Snakemake wrote for every job (wall-clock, CPU time, peak RSS) and the
study's efficiency table (steps, images, reward calls and training wall-clock to reach Flow-GRPO's
final held-out metric), and writes results/benchmarks/pipeline_jobs.csv, pipeline_stages.md,
steps_to_target.csv and pipeline_environment.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

import pandas as pd

from superflow.reporting.markdown import to_markdown

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe_machine


def read_job_benchmarks(folder: Path) -> pd.DataFrame:
    rows = []
    for tsv in sorted(folder.rglob("*.tsv")):
        record = pd.read_csv(tsv, sep="\t").iloc[-1].to_dict()
        job = tsv.relative_to(folder).with_suffix("").as_posix()
        rows.append(
            {
                "job": job,
                "stage": job.split("/")[0],
                "seconds": record["s"],
                "cpu_seconds": record["cpu_time"],
                "max_rss_mb": record["max_rss"],
            }
        )
    if not rows:
        raise SystemExit(f"no Snakemake benchmark files under {folder}: run the study first")
    return pd.DataFrame(rows)


def only_variants(jobs: pd.DataFrame, variants: list[str]) -> pd.DataFrame:
    """The jobs of these variants (job names are STAGE/TASK/VARIANT/seedN) and the jobs every variant
    shares (pretraining, the preference model, base evaluations): the study's cost when the baselines
    or ablations ran in the same folder."""
    variant = jobs.job.str.split("/").map(lambda parts: parts[2] if len(parts) == 4 else None)
    return jobs[variant.isna() | variant.isin(variants)].reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs/pipeline/mini", help="the study's run folder (config key 'runs')")
    parser.add_argument("--results", default="results", help="the study's results folder (config key 'results')")
    parser.add_argument("--output-dir", default="results/benchmarks")
    parser.add_argument(
        "--variants",
        nargs="+",
        help="only these variants' training and evaluation jobs (Table 1's: flowgrpo flowspo superflow); "
        "default: every job",
    )
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = read_job_benchmarks(Path(args.runs) / "benchmarks")
    if args.variants:
        jobs = only_variants(jobs, args.variants)
    jobs.to_csv(out / "pipeline_jobs.csv", index=False)
    stages = (
        jobs.groupby("stage")
        .agg(
            jobs=("job", "count"),
            seconds=("seconds", "sum"),
            cpu_seconds=("cpu_seconds", "sum"),
            max_rss_mb=("max_rss_mb", "max"),
        )
        .reset_index()
    )
    (out / "pipeline_stages.md").write_text(to_markdown(stages, digits=1) + "\n")
    efficiency = Path(args.results) / "efficiency.csv"
    if efficiency.exists():
        shutil.copyfile(efficiency, out / "steps_to_target.csv")
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    (out / "pipeline_environment.json").write_text(
        json.dumps({**describe_machine(), "command": command}, indent=1) + "\n"
    )
    print(to_markdown(stages, digits=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
