"""Where a finished study's time and memory went, and what each method spent to reach the target.

    /usr/bin/time -v -o study.time snakemake --cores all reproduce_table1
    python benchmarks/pipeline_costs.py --variants flowgrpo flowspo superflow --study-time study.time

Reads the `benchmark:` files Snakemake wrote for every job (wall-clock, CPU time, peak RSS) and the
study's efficiency table (steps, images, reward calls and training wall-clock to reach Flow-GRPO's
final held-out metric), and writes results/benchmarks/pipeline_jobs.csv, pipeline_stages.md,
steps_to_target.csv and pipeline_environment.json. With ``--study-time`` (GNU time's ``-v`` report of
the whole Snakemake call) pipeline_stages.md also gets the study's end-to-end wall-clock: the number
the time budget is about, which the per-job sums only bound (jobs run side by side).
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


def read_gnu_time(path: Path) -> dict:
    """Command, wall-clock seconds, peak RSS and exit status from a ``/usr/bin/time -v`` report."""
    fields = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.strip().partition(": ")  # a command may contain ': ', a key never does
        if sep:
            fields[key] = value.strip()
    wall = fields.get("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    if wall is None:
        raise SystemExit(f"{path}: not a GNU time -v report (no 'Elapsed (wall clock) time' line)")
    seconds = 0.0
    for part in wall.split(":"):
        seconds = seconds * 60 + float(part)
    return {
        "command": fields.get("Command being timed", "").strip('"'),
        "wall_seconds": seconds,
        "max_rss_mb": int(fields.get("Maximum resident set size (kbytes)", 0)) / 1024,
        "exit_status": int(fields.get("Exit status", -1)),
    }


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
    parser.add_argument(
        "--study-time",
        type=Path,
        help="GNU `/usr/bin/time -v -o FILE` report of the timed Snakemake call: adds its end-to-end wall-clock",
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
    machine = describe_machine()
    environment = {**machine, "command": shlex.join([Path(sys.executable).name, *sys.argv])}
    report = to_markdown(stages, digits=1) + "\n"
    if args.study_time:
        study = environment["study"] = read_gnu_time(args.study_time)
        report += (
            f"\nEnd to end: `{study['command']}` took {study['wall_seconds']:.0f} s "
            f"({study['wall_seconds'] / 60:.1f} min) on {machine['cpus']} cores, exit status "
            f"{study['exit_status']}, peak RSS of one process {study['max_rss_mb']:.0f} MB; its jobs' wall-clock "
            f"seconds sum to {jobs.seconds.sum():.0f}.\n"
        )
    (out / "pipeline_stages.md").write_text(report)
    efficiency = Path(args.results) / "efficiency.csv"
    if efficiency.exists():
        shutil.copyfile(efficiency, out / "steps_to_target.csv")
    (out / "pipeline_environment.json").write_text(json.dumps(environment, indent=1) + "\n")
    print(to_markdown(stages, digits=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
