"""The Snakemake workflow: lint, dry runs at every scale, and the smoke-scale study end to end.

The smoke run is started, killed with SIGKILL once a training job is running, unlocked and resumed,
exactly as a user recovers a killed run; everything else is checked on what it then writes.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from superflow.config import load_config

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
SMOKE = str(REPO / "workflow/config/smoke.yaml")
EXAMPLE = "examples/symmetry_reward/config.yaml"


# A guard against a hung workflow, not a speed target: on 2 cores shared with other work the smoke
# study alone took over 600 s (2026-12-07), and a timeout then failed tests that were correct.
WORKFLOW_TIMEOUT_SECONDS = 1800


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), *args],
        capture_output=True,
        text=True,
        timeout=WORKFLOW_TIMEOUT_SECONDS,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def workdir_for(tmp: Path) -> Path:
    """A fresh working directory that sees the repository's folders as the repo root does."""
    tmp.mkdir(parents=True, exist_ok=True)
    for name in ("data", "examples", "workflow"):
        (tmp / name).symlink_to(REPO / name)
    return tmp


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Job counts from a dry run's 'Job stats' table."""
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return {}
    stats = text.split("Job stats:")[1]
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, flags=re.MULTILINE)
        if m.group(1) != "total"
    }


def test_lint_is_clean():
    result = subprocess.run([*SNAKEMAKE, "--lint"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


@pytest.mark.parametrize("scale", ["mini", "paper"])
def test_dry_run_plans_the_whole_study(scale, tmp_path):
    work = workdir_for(tmp_path / "work")
    # The default (no arguments) is the mini scale; the paper scale is one --config value away.
    result = snakemake(work, "-n", "reproduce_table1", *([] if scale == "mini" else ["--config", "scale=paper"]))
    jobs = planned_jobs(result)
    runs = 27 if scale == "mini" else 9  # 3 tasks x 3 methods x the scale's seeds (mini: 3, paper: 1)
    assert jobs["train"] == runs and jobs["evaluate_run"] == runs and jobs["evaluate_base"] == 3
    if scale == "mini":
        # the world's base, the OCR analogue's own (world.bases.signs_in_order) and the preference
        # model, installed from the published bases (data/mini_bases/world0): nothing is pretrained
        assert jobs["install_published_base"] == 3 and jobs["world"] == 1
        assert "pretrain" not in jobs and "preference_model" not in jobs
    else:
        assert jobs["geneval_train_prompts"] == 1 and jobs["ocr_train_prompts"] == 1 and "pretrain" not in jobs
    # Paper-scale training asks the scheduler for a GPU per job.
    if scale == "paper":
        assert "gpu=1" in result.stdout + result.stderr


def test_a_fresh_clone_with_committed_results_reruns_the_study(tmp_path):
    # A clone holds the committed tables, evaluations and figures but an empty runs/: the main
    # command must run the study, not report every target up to date.
    work = workdir_for(tmp_path / "work")
    study = yaml.safe_load((REPO / "workflow/config/mini.yaml").read_text())
    committed = [f"{name}.{ext}" for name in ("table1", "efficiency") for ext in ("csv", "md")]
    figures = ["test_reward_vs_step", "test_reward_vs_images", "test_reward_vs_time", "group_sizes"]
    figures += ["step_advantage_profile"]
    committed += [f"figures/{name}.png" for name in figures + [f"samples_{t}" for t in study["tasks"]]]
    for task in study["tasks"]:
        committed.append(f"evaluations/{task}/base.json")
        committed += [f"evaluations/{task}/{m}/seed{s}.json" for m in study["methods"] for s in study["seeds"]]
    for name in committed:
        (work / "results" / name).parent.mkdir(parents=True, exist_ok=True)
        (work / "results" / name).write_text("{}")
        os.utime(work / "results" / name, (1.7e9, 1.7e9))  # a checkout's order of mtimes must not matter
    jobs = planned_jobs(snakemake(work, "-n", "reproduce_table1", "figures"))
    assert jobs.get("train") == 27 and jobs.get("evaluate_run") == 27 and jobs.get("evaluate_base") == 3
    assert jobs.get("table1") == 1 and jobs.get("figures_png") == 1


def test_mini_world_shape_and_the_task_bases_reach_the_pretraining_commands(tmp_path):
    runs = "runs/pipeline/mini"
    bases = [f"{runs}/miniflow/model/model.pt", f"{runs}/miniflow_signs_in_order/model/model.pt"]
    pretrained_here = ["--config", "world={published_bases: null}"]
    result = snakemake(workdir_for(tmp_path / "work"), "-n", "-p", *pretrained_here, "--", *bases)
    text = result.stdout + result.stderr
    assert "--text-lengths 2 3" in text  # the world rule
    assert "--output-dir runs/pipeline/mini/miniflow --steps 1700 " in text
    assert "--caption-noise 0.35 --sign-noise substitute --channels 32 64 128 --text-fraction 0.4  --threads 1" in text
    assert "--output-dir runs/pipeline/mini/miniflow_signs_in_order --steps 1700 " in text
    assert "--sign-noise swap --channels 32 64 128 --text-fraction 0.4 --position-aware --threads 1" in text
    # both bases start first: every training job waits on one
    assert text.count("priority: 50") == 2
    # the OCR task trains and is evaluated on its base, the other tasks on the world's
    plan = snakemake(workdir_for(tmp_path / "plan"), "-n", "-p", "reproduce_table1").stdout
    trains = [line for line in plan.splitlines() if "superflow train" in line or "superflow evaluate" in line]
    assert trains and all(
        (f"model.path={runs}/miniflow_signs_in_order/model" in line) == ("preset:mini_ocr" in line) for line in trains
    )


def test_another_world_from_the_command_line_keeps_the_rest_of_the_scale(tmp_path):
    # The replication recipe: --config values merge into the mini config, nested keys included.
    runs = "runs/world1"
    bases = [f"{runs}/miniflow/model/model.pt", f"{runs}/miniflow_signs_in_order/model/model.pt"]
    result = snakemake(
        workdir_for(tmp_path / "work"), "-n", "-p", "--config", "world={seed: 1}", f"runs={runs}", "--", *bases
    )
    text = result.stdout + result.stderr
    assert f"superflow world --output-dir {runs}/world --n-train 2000 --n-test 300 --seed 1 " in text
    assert text.count("--seed 1 --caption-noise 0.35") == 2 and text.count("--steps 1700 ") == 2


def test_a_base_of_its_own_may_set_its_steps_and_its_share_of_signs(tmp_path):
    own = tmp_path / "own.yaml"
    own.write_text("world:\n  bases:\n    signs_in_order:\n      text_fraction: 1\n      pretrain_steps: 680\n")
    base = "runs/pipeline/mini/miniflow_signs_in_order/model/model.pt"
    result = snakemake(workdir_for(tmp_path / "work"), "-n", "-p", "--configfile", str(own), "--", base)
    text = result.stdout + result.stderr
    assert "--steps 680 " in text and "--text-fraction 1 --position-aware" in text


def test_published_bases_stand_in_for_pretraining_only_where_their_settings_match(tmp_path):
    # What publish_bases would record for each base, read off its planned command...
    pretrained_here = ["--config", "world={published_bases: null}"]
    plan = snakemake(workdir_for(tmp_path / "plan"), "-n", "-p", *pretrained_here, "--", "publish_bases")
    command = next(line for line in (plan.stdout + plan.stderr).splitlines() if "superflow publish-bases" in line)
    words = shlex.split(command.split("superflow publish-bases", 1)[1].split(">")[0])
    settings = {words[i + 1]: json.loads(words[i + 3]) for i, word in enumerate(words) if word == "--base"}
    assert set(settings) == {"miniflow", "miniflow_signs_in_order", "preference"}
    assert settings["miniflow_signs_in_order"]["position_aware"] is True and settings["miniflow"]["seed"] == 0
    # ...published, but the OCR base made with other widths: that one is pretrained, the others installed.
    settings["miniflow_signs_in_order"]["channels"] = [8, 8, 8]
    published = tmp_path / "published"
    published.mkdir()
    manifest = {"bases": {name: {"settings": made, "files": {}} for name, made in settings.items()}}
    (published / "manifest.json").write_text(json.dumps(manifest))
    work = workdir_for(tmp_path / "work")
    result = snakemake(work, "-n", "--config", f"world={{published_bases: {published}}}", "--", "reproduce_table1")
    jobs = planned_jobs(result)
    assert jobs["install_published_base"] == 2 and jobs["pretrain"] == 1 and "preference_model" not in jobs
    assert "miniflow_signs_in_order made with channels [8, 8, 8] (here [" in result.stderr
    # Another world seed uses none of them; a folder without a manifest is an error that says what to do.
    another_world = f"world={{seed: 1, published_bases: {published}}}"
    other = snakemake(work, "-n", "--config", another_world, "--", "reproduce_table1")
    assert "install_published_base" not in planned_jobs(other) and "seed 0 (here 1)" in other.stderr
    missing = snakemake(work, "-n", "--config", "world={published_bases: nowhere}", "--", "bases", check=False)
    assert missing.returncode != 0 and "cannot read nowhere/manifest.json" in missing.stdout + missing.stderr
    assert "world.published_bases: null" in missing.stdout + missing.stderr


def test_the_bases_target_installs_the_published_bases_with_the_prompts_they_go_with(tmp_path):
    # The README's rerun of the RL-gain benchmark: `snakemake bases`, then commands that read the prompts.
    jobs = planned_jobs(snakemake(workdir_for(tmp_path), "-n", "bases"))
    assert jobs == {"install_published_base": 3, "world": 1, "bases": 1}


def test_a_variant_name_in_two_groups_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("baselines:\n  superflow:\n    label: clash\n    set: [method=nft]\n")
    result = snakemake(workdir_for(tmp_path / "work"), "-n", "baselines", "--configfile", str(bad), check=False)
    assert (
        result.returncode != 0
        and "appears in two of methods, ablations and baselines" in result.stdout + result.stderr
    )


def test_a_task_naming_an_unknown_base_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks:\n  ocr:\n    base: nosuchbase\n")
    result = snakemake(workdir_for(tmp_path / "work"), "-n", "reproduce_table1", "--configfile", str(bad), check=False)
    assert result.returncode != 0 and "nosuchbase" in result.stdout + result.stderr


def test_the_baselines_target_trains_the_newer_methods_next_to_flowgrpo_and_superflow(tmp_path):
    result = snakemake(workdir_for(tmp_path / "work"), "-n", "-p", "baselines")
    jobs = planned_jobs(result)
    assert jobs["train"] == 6 * 3 * 3 and jobs["baseline_table"] == 1 and jobs["baseline_efficiency"] == 1
    assert jobs["baseline_figures_png"] == 1
    text = result.stdout + result.stderr
    for method in ("flowgrpo", "superflow", "flowgrpo_fast", "nft", "awm", "superflow_nft"):
        assert f"--set method={method} " in text, method


@pytest.mark.parametrize("with_baselines", ["true", "false"])
def test_with_baselines_puts_the_baselines_into_reproduce_table1(tmp_path, with_baselines):
    work = workdir_for(tmp_path / "work")
    result = snakemake(work, "-n", "-p", "reproduce_table1", "--config", f"with_baselines={with_baselines}")
    jobs = planned_jobs(result)
    # Table 1's 27 runs, plus the baselines' 36 when asked (Flow-GRPO and SuperFlow are shared)
    assert jobs["train"] == (27 + 4 * 3 * 3 if with_baselines == "true" else 27)
    assert jobs.get("baseline_table", 0) == (with_baselines == "true")
    # ...and Table 1 itself then lists them next to the methods
    table1 = [line for line in (result.stdout + result.stderr).splitlines() if "--csv results/table1.csv" in line]
    assert len(table1) == 1 and "--run ocr flowspo 2 " in table1[0]
    assert ("--run ocr nft 2 " in table1[0]) == (with_baselines == "true")


def test_a_variant_s_task_set_reaches_only_that_task_s_runs(tmp_path):
    own = tmp_path / "own.yaml"
    own.write_text("baselines:\n  nft:\n    set: [method=nft]\n    task_set: {ocr: [train.lr=1.5e-5]}\n")
    work = workdir_for(tmp_path / "work")
    text = snakemake(work, "-n", "-p", "baselines", "--configfile", str(own)).stdout
    nft = [line for line in text.splitlines() if "superflow train" in line and "--set method=nft " in line]
    assert len(nft) == 3 * 3
    # applied after the variant's set, on OCR's runs only
    ocr = [("--set method=nft --set train.lr=1.5e-5 --set seed=" in line) for line in nft]
    assert ocr == [("preset:mini_ocr" in line) for line in nft]
    assert sum("train.lr=1.5e-5" in line for line in nft) == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("baselines:\n  nft:\n    set: [method=nft]\n    task_set: {orc: [train.lr=1.5e-5]}\n")
    result = snakemake(work, "-n", "baselines", "--configfile", str(bad), check=False)
    message = "nft.task_set names tasks that are not in tasks: ['orc']"
    assert result.returncode != 0 and message in result.stdout + result.stderr


def test_awm_in_the_mini_study_trains_at_half_of_each_task_preset_s_lr():
    # The ratio chosen on validation (docs/METHODS.md); a preset whose lr changes must take AWM's along.
    study = yaml.safe_load((REPO / "workflow/config/mini.yaml").read_text())
    per_task = study["baselines"]["awm"]["task_set"]
    assert set(per_task) == set(study["tasks"])
    for task, spec in study["tasks"].items():
        preset = load_config(spec["preset"])
        (lr,) = [float(item.split("=", 1)[1]) for item in per_task[task] if item.startswith("train.lr=")]
        assert lr == pytest.approx(preset.train.lr / 2, rel=1e-9), task


def test_seeds_from_the_command_line_set_the_runs(tmp_path):
    work = workdir_for(tmp_path / "work")
    jobs = planned_jobs(snakemake(work, "-n", "reproduce_table1", "--config", "seeds=[0]"))
    assert jobs["train"] == 9 and jobs["evaluate_run"] == 9 and jobs["install_published_base"] == 3
    jobs = planned_jobs(snakemake(work, "-n", "reproduce_table1", "--config", "seeds=[0,1,2,3]"))
    assert jobs["train"] == 36 and jobs["evaluate_run"] == 36


def test_config_typo_is_rejected_with_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seedz: [1]\n")
    result = snakemake(workdir_for(tmp_path / "work"), "-n", "all", "--configfile", SMOKE, str(bad), check=False)
    assert result.returncode != 0
    assert "seedz" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    """The smoke study, killed while training and then resumed to the end."""
    work = workdir_for(tmp_path_factory.mktemp("smoke"))
    first = subprocess.Popen(
        [*SNAKEMAKE, "--directory", str(work), "all", "--cores", "2", "--configfile", SMOKE],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    logs = work / "runs/pipeline/smoke/logs/train"
    deadline = time.monotonic() + 300
    while not (logs.exists() and any(logs.rglob("*.log"))):
        assert first.poll() is None, "the smoke run ended before any training job started"
        assert time.monotonic() < deadline, "no training job started in 5 minutes"
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    snakemake(work, "--unlock", "--configfile", SMOKE)
    snakemake(work, "all", "--cores", "2", "--rerun-incomplete", "--configfile", SMOKE)
    return work


def test_smoke_study_writes_tables_and_figures(smoke):
    results = smoke / "results/smoke"
    rows = list(csv.DictReader((results / "table1.csv").open()))
    assert [r["method"] for r in rows] == ["base", "flowgrpo", "flowspo", "superflow"]
    for row in rows:
        for task in ("geneval", "ocr", "preference"):
            assert math.isfinite(float(row[f"{task}_mean"]))
    table = (results / "table1.md").read_text()
    assert "| Flow-GRPO |" in table and "| SuperFlow |" in table and "Preference (smoke)" in table
    efficiency = list(csv.DictReader((results / "efficiency.csv").open()))
    assert {r["method"] for r in efficiency} == {"flowgrpo", "flowspo", "superflow"}
    assert all(r["reached"] in ("0/1", "1/1") for r in efficiency)
    for name in (
        "test_reward_vs_step",
        "test_reward_vs_images",
        "test_reward_vs_time",
        "group_sizes",
        "step_advantage_profile",
        "samples_geneval",
        "samples_ocr",
        "samples_preference",
    ):
        png = results / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_smoke_training_moved_the_weights(smoke):
    import torch

    base = torch.load(smoke / "runs/pipeline/smoke/miniflow/model/model.pt", map_location="cpu")
    tuned = torch.load(smoke / "runs/pipeline/smoke/train/preference/flowgrpo/seed0/lora/model.pt", map_location="cpu")
    tensors = [k for k, v in base.items() if torch.is_tensor(v) and v.is_floating_point()]
    assert tensors
    assert any(not torch.equal(base[k], tuned[k]) for k in tensors)


def test_second_run_does_nothing(smoke):
    assert planned_jobs(snakemake(smoke, "-n", "all", "--configfile", SMOKE)) == {}


def test_changing_one_method_reruns_only_its_jobs(smoke, tmp_path):
    changed = tmp_path / "changed.yaml"
    changed.write_text("methods:\n  flowspo:\n    label: Flow-SPO\n    set: [method=flowspo, algorithm.rho=0.8]\n")
    result = snakemake(smoke, "-n", "all", "--configfile", SMOKE, str(changed))
    jobs = planned_jobs(result)
    assert jobs["train"] == 3 and jobs["evaluate_run"] == 3
    assert "pretrain" not in jobs and "evaluate_base" not in jobs and "world" not in jobs
    trained = re.findall(r"wildcards: task=\w+, variant=(\w+), seed=\d+", result.stdout + result.stderr)
    assert trained and set(trained) == {"flowspo"}


def test_reward_as_a_rule_example(smoke):
    """The worked example of workflow/README.md: a reward in its own file, a config entry, one target."""
    snakemake(smoke, "results/smoke/tasks/symmetry.md", "--cores", "2", "--configfile", SMOKE, EXAMPLE)
    rows = list(csv.DictReader((smoke / "results/smoke/tasks/symmetry.csv").open()))
    assert [r["method"] for r in rows] == ["base", "flowgrpo", "flowspo", "superflow"]
    values = [float(r["symmetry_mean"]) for r in rows]
    assert all(0.0 <= v <= 1.0 for v in values)
    metrics = (smoke / "runs/pipeline/smoke/train/symmetry/flowgrpo/seed0/metrics.jsonl").read_text()
    assert '"reward_mean"' in metrics
