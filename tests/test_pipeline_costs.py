"""benchmarks/pipeline_costs.py: stage costs from Snakemake's benchmark files, optionally one study's variants."""

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import pipeline_costs  # noqa: E402

JOBS = {
    "pretrain/miniflow": 100.0,
    "evaluate/ocr/base": 3.0,
    "train/ocr/flowgrpo/seed0": 10.0,
    "train/ocr/awm/seed0": 20.0,
    "evaluate/ocr/flowgrpo/seed0": 1.0,
    "evaluate/ocr/awm/seed0": 2.0,
}


def write_benchmarks(runs: Path) -> None:
    for job, seconds in JOBS.items():
        tsv = runs / "benchmarks" / f"{job}.tsv"
        tsv.parent.mkdir(parents=True, exist_ok=True)
        tsv.write_text(f"s\th:m:s\tmax_rss\tcpu_time\n{seconds}\t0:00:00\t5.0\t{seconds / 2}\n")


def test_stage_sums_keep_every_job_by_default_and_only_the_named_variants_when_asked(tmp_path):
    write_benchmarks(tmp_path / "runs")
    common = ["--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "none")]
    pipeline_costs.main([*common, "--output-dir", str(tmp_path / "all")])
    pipeline_costs.main([*common, "--output-dir", str(tmp_path / "study"), "--variants", "flowgrpo"])
    every = pd.read_csv(tmp_path / "all" / "pipeline_jobs.csv")
    study = pd.read_csv(tmp_path / "study" / "pipeline_jobs.csv")
    assert sorted(every.job) == sorted(JOBS)
    assert sorted(study.job) == sorted(j for j in JOBS if "/awm/" not in j)
    assert study.groupby("stage").seconds.sum().to_dict() == {"evaluate": 4.0, "pretrain": 100.0, "train": 10.0}


GNU_TIME_REPORT = """\tCommand being timed: "snakemake --cores all reproduce_table1"
\tUser time (seconds): 9000.00
\tPercent of CPU this job got: 190%
\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03.5
\tMaximum resident set size (kbytes): 1048576
\tExit status: 0
"""


def test_the_study_wall_clock_is_read_from_gnu_time(tmp_path):
    write_benchmarks(tmp_path / "runs")
    (tmp_path / "study.time").write_text(GNU_TIME_REPORT)
    assert pipeline_costs.read_gnu_time(tmp_path / "study.time") == {
        "command": "snakemake --cores all reproduce_table1",
        "wall_seconds": 3723.5,
        "max_rss_mb": 1024.0,
        "exit_status": 0,
    }
    out = tmp_path / "out"
    common = ["--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "none"), "--output-dir", str(out)]
    pipeline_costs.main([*common, "--study-time", str(tmp_path / "study.time")])
    assert "took 3724 s (62.1 min)" in (out / "pipeline_stages.md").read_text()
    (tmp_path / "bad.time").write_text("not a report\n")
    with pytest.raises(SystemExit, match="bad.time"):
        pipeline_costs.main([*common, "--study-time", str(tmp_path / "bad.time")])


def test_a_command_with_a_colon_keeps_its_whole_text(tmp_path):
    report = GNU_TIME_REPORT.replace("reproduce_table1", "reproduce_table1 --config 'world={seed: 1}'")
    (tmp_path / "study.time").write_text(report)
    study = pipeline_costs.read_gnu_time(tmp_path / "study.time")
    assert study["command"] == "snakemake --cores all reproduce_table1 --config 'world={seed: 1}'"
    assert study["wall_seconds"] == 3723.5
