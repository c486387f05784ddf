"""Does Flow-GRPO clearly improve each mini-world task? Base vs fine-tuned, over several seeds, with a control.

For each task (GenEval, OCR and preference analogues) this evaluates the pretrained MiniFlow on the
held-out prompts, runs each arm once per seed on one CPU core each (``--jobs`` runs side by side,
pinned to separate cores), evaluates every fine-tuned model the same way, and writes

    results/mini_rl_gain/runs.csv      one row per (task, arm, seed): test reward, time split by phase
    results/mini_rl_gain/summary.csv   per task, metric and arm: base, mean and std over seeds, gain / std
    results/mini_rl_gain/summary.md    the same as a table, with the commands and the machine
    results/mini_rl_gain/environment.json

Usage (after ``superflow world``, ``superflow pretrain`` of the world's base and of the OCR task's
base, and ``superflow train-preference``: docs/MINI_WORLD.md, "Building it by hand")::

    python benchmarks/mini_rl_gain.py --seeds 0 1 2 --jobs 2

On the study's world and bases instead (``--task-set TASK KEY=VALUE ...``: one task's overrides;
R = runs/pipeline/mini)::

    python benchmarks/mini_rl_gain.py --seeds 0 1 2 \
        --task-set geneval model.path=R/miniflow/model data.train_prompts=R/world/geneval/train_metadata.jsonl \
            data.test_prompts=R/world/geneval/test_metadata.jsonl \
        --task-set ocr model.path=R/miniflow_signs_in_order/model data.train_prompts=R/world/ocr/ocr_train.txt \
            data.test_prompts=R/world/ocr/ocr_test.txt \
        --task-set preference model.path=R/miniflow/model reward.kwargs.path=R/preference \
            data.train_prompts=R/world/geneval/train_metadata.jsonl \
            data.test_prompts=R/world/geneval/test_metadata.jsonl

The arms: ``flowgrpo`` (the task's preset) and ``shuffled_reward``, the same runs with every epoch's
rewards permuted across its samples (``reward.shuffle_within_epoch``): a control that should gain
nothing. The acceptance criterion of the mini world is ``gain > 3 * seed std`` for Flow-GRPO on every
task, and under one seed std for the control. ``--arm NAME KEY=VALUE ...`` adds an arm of your own
(e.g. ``--arm superflow_m12 method=superflow algorithm.m_max=12``).

``--reuse-runs`` evaluates the finished runs already in ``--runs-dir`` again instead of training them
(e.g. ``--eval-images 16`` to see how much of the seed std is evaluation noise; on world 0's test
runs little of it was: docs/MINI_RL_BUDGET.md, thirteenth session).

Choosing hyperparameters must not look at the test prompts: ``--validation N`` draws about N of the
task's *training* prompts the way the world draws its test prompts (a seeded draw): OCR signs and the
GenEval tags with many requirement sets (position, colour attribution) lose whole sets to validation
and are never trained on; the small GenEval tags keep theirs in training, as their test prompts are
training prompts too; GenEval's validation prompts are balanced over tags as its test split is. Every
model, the base included, is evaluated on those instead of the test prompts; its
folders default to ``runs/mini_rl_gain_validation`` and ``results/mini_rl_gain_validation`` (the
``test_reward`` column then holds the validation reward)::

    python benchmarks/mini_rl_gain.py --tasks geneval --validation 300 --arms flowgrpo \
        --arm superflow method=superflow --output-dir results/superflow_validation
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from superflow.files import read_json, read_jsonl
from superflow.reporting.markdown import to_markdown
from superflow.rewards.ocr import ocr_target

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe_machine
from task_options import add_task_set_option

TASKS = {"geneval": "preset:mini_geneval", "ocr": "preset:mini_ocr", "preference": "preset:mini_preference"}
#: Each arm's overrides on top of the task's preset.
ARMS = {"flowgrpo": [], "shuffled_reward": ["reward.shuffle_within_epoch=true"]}


def single_core_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def run_logged(cmd: list[str], log: Path, core: int | None) -> float:
    """Run ``cmd`` on one core (``taskset`` where it exists), output to ``log``; returns wall seconds."""
    if core is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(core), *cmd]
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("w") as handle:
        handle.write("$ " + shlex.join(cmd) + "\n")
        handle.flush()
        done = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, env=single_core_env())
    if done.returncode:
        raise RuntimeError(f"command failed ({done.returncode}), see {log}: {shlex.join(cmd)}")
    return time.perf_counter() - start


def evaluate_cmd(config: str, overrides: list[str], output: Path, images_per_prompt: int = 1) -> list[str]:
    sets = [x for o in overrides for x in ("--set", o)]
    return [
        sys.executable,
        "-m",
        "superflow",
        "evaluate",
        "--config",
        config,
        *sets,
        "--images-per-prompt",
        str(images_per_prompt),
        "--output",
        str(output),
        "--quiet",
    ]


def headline(result: dict, task: str) -> dict:
    """The task's test metrics: the RL reward's image mean, plus GenEval's partial and strict tag means."""
    row = {"test_reward": result["mean"]}
    if task == "geneval":
        row["geneval_strict_tag_mean"] = result["strict"]["tag_mean"]
        row["geneval_partial_tag_mean"] = result["partial"]["tag_mean"]
    return row


def _split_group(line: str) -> str:
    """What a validation prompt must not share with training: an OCR sign's target string, a GenEval
    prompt's requirement set."""
    if line.lstrip().startswith("{"):
        record = json.loads(line)
        return json.dumps([record.get("tag"), record.get("include"), record.get("exclude")], sort_keys=True)
    return ocr_target(line)


def _held_out_lines(lines: list[str], n: int, rng) -> tuple[set[int], set[int]]:
    """Validation prompts drawn the way the world draws its test split (``superflow.world.prompts``):
    OCR signs and the GenEval tags with many requirement sets (``HELD_OUT_MIN_SETS``: position, colour
    attribution) lose whole sets to validation, so their validation prompts are never trained on; the
    small GenEval tags (6 single objects, 15 pairs) cannot spare a set, so, like their test prompts,
    their validation prompts are drawn from all of them and stay in training. GenEval gets ``n / tags``
    prompts per tag, the largest held-out tags filling the rest, as in the test split: a uniform draw
    of sets would be 80% colour attribution. Returns (validation lines, lines removed from training)."""
    from superflow.world.prompts import HELD_OUT_MIN_SETS

    groups: dict[str, dict[str, list[int]]] = {}  # tag -> requirement set -> line indices
    for i, line in enumerate(lines):
        tag = json.loads(line).get("tag", "") if line.lstrip().startswith("{") else ""
        groups.setdefault(tag, {}).setdefault(_split_group(line), []).append(i)
    held_tags = {tag for tag in groups if len(groups[tag]) >= HELD_OUT_MIN_SETS or not tag}  # OCR: tag ''
    quota = {tag: n // len(groups) for tag in groups}
    for tag in set(groups) - held_tags:  # a small tag with fewer prompts than its share
        quota[tag] = min(quota[tag], sum(len(members) for members in groups[tag].values()))
    fill = max(held_tags or groups, key=lambda t: len(groups[t]))
    quota[fill] += n - sum(quota.values())
    validation: set[int] = set()
    removed: set[int] = set()
    for tag in sorted(groups):
        sets = list(groups[tag].values())
        if tag in held_tags:
            taken: list[int] = []
            for g in rng.permutation(len(sets)):
                if len(taken) >= quota[tag]:
                    break
                taken += sets[g]
            validation.update(taken)
            removed.update(taken)
        else:
            members = [i for members in sets for i in members]
            validation.update(members[i] for i in rng.permutation(len(members))[: quota[tag]])
    return validation, removed


def validation_split(config: str, overrides: list[str], n: int, folder: Path, seed: int = 0) -> list[str]:
    """Hold out about ``n`` of the config's training prompts as the world holds out its test prompts
    (``_held_out_lines``; seeded, lines copied verbatim): overrides that train on the rest and
    evaluate on the validation prompts."""
    import numpy as np

    from superflow.config import load_config

    source = Path(load_config(config, overrides).data.train_prompts)
    lines = [line for line in source.read_text().splitlines() if line.strip()]
    if n <= 0:
        raise SystemExit(f"--validation {n}: a positive number of prompts")
    validation, removed = _held_out_lines(lines, n, np.random.default_rng(seed))
    if len(removed) >= len(lines) or not validation:
        raise SystemExit(f"--validation {n}: {source} has {len(lines)} prompts, too few to hold out {n}")
    folder.mkdir(parents=True, exist_ok=True)
    train, val = folder / f"train{source.suffix}", folder / f"validation{source.suffix}"
    train.write_text("".join(line + "\n" for i, line in enumerate(lines) if i not in removed))
    val.write_text("".join(lines[i] + "\n" for i in sorted(validation)))
    return [f"data.train_prompts={train}", f"data.test_prompts={val}"]


def gain_interval(gain: float, std: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean gain over ``n`` seeds (the base is one fixed model, so the seed
    mean carries all the spread): how sure the gain is, next to the issue's gain-over-std bar, which
    with 3 seeds is far stricter than a significance test (docs/MINI_RL_BUDGET.md)."""
    from scipy.stats import t

    if n < 2:
        return float("nan"), float("nan")
    half = float(t.ppf(0.5 + level / 2, n - 1)) * std / n**0.5
    return gain - half, gain + half


def validation_size(commands) -> int | None:
    """The ``--validation N`` the recorded commands ran with: a ``--report-only`` rebuild has no
    ``--validation`` of its own but must still say the rewards are validation, not test, rewards."""
    for command in commands:
        words = shlex.split(command)
        for i, word in enumerate(words):
            if word.startswith("--validation="):  # argparse takes both spellings
                return int(word.split("=", 1)[1])
            if word == "--validation" and i + 1 < len(words):
                return int(words[i + 1])
    return None


def machine_text(env: dict) -> str:
    return f"{env['cpu']}, {env['date']}"


def machines_text(machines: dict[str, str], env: dict) -> str:
    """The summary's machine line: one host, or which task ran on which."""
    hosts: dict[str, list[str]] = {}
    for task, machine in machines.items():
        hosts.setdefault(machine, []).append(task)
    where = (
        next(iter(hosts))
        if len(hosts) == 1
        else "; ".join(f"{', '.join(tasks)} on {machine}" for machine, tasks in hosts.items())
    )
    return f"Machine: {where} ({env['cpus']} cores, torch {env['torch']})"


def finished_run_seconds(run_dir: Path, config: str, overrides: list[str]) -> float:
    """Training seconds of a finished run that ``--reuse-runs`` evaluates again, after checking that
    it is the run these arguments would train: the resume check's config comparison (keys added
    since the run was saved count as unchanged where their default computes what it computed) and
    every epoch done. The seconds are the trainer's own clock, a few seconds under the subprocess's
    wall time that a fresh run reports."""
    from superflow.config import load_config
    from superflow.run_folder import changed_config_keys

    wanted = load_config(config, [*overrides, f"output_dir={run_dir}"])
    differ = changed_config_keys(run_dir / "config.yaml", wanted)
    if differ:
        raise SystemExit(f"--reuse-runs: {run_dir} was trained with another config (differs in {', '.join(differ)})")
    summary = read_json(run_dir / "summary.json")
    if summary.get("epochs") != wanted.num_epochs:
        raise SystemExit(f"--reuse-runs: {run_dir} stopped at epoch {summary.get('epochs')} of {wanted.num_epochs}")
    return float(summary["time_total"])


def run_keys(frame: pd.DataFrame) -> list[tuple[str, str, int]]:
    """(task, arm, seed) per row; the base model's missing seed is -1."""
    seeds = pd.to_numeric(frame["seed"]).fillna(-1).astype(int)
    return list(zip(frame["task"], frame["model"], seeds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    parser.add_argument(
        "--arm",
        nargs="+",
        action="append",
        default=[],
        metavar="NAME KEY=VALUE",
        help="an extra arm: its name, then its overrides on top of the task's preset (repeatable)",
    )
    parser.add_argument(
        "--validation",
        type=int,
        default=0,
        metavar="N",
        help="evaluate on N held-out training prompts instead of the test prompts (for choosing hyperparameters)",
    )
    parser.add_argument(
        "--eval-images",
        type=int,
        default=1,
        metavar="K",
        help="images per held-out prompt (GenEval's protocol uses 4; more images, less evaluation noise)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side, one core each")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    add_task_set_option(parser, "one task's runs and evaluations")
    parser.add_argument("--runs-dir", default=None, help="default runs/mini_rl_gain (runs/mini_rl_gain_validation)")
    parser.add_argument(
        "--output-dir", default=None, help="default results/mini_rl_gain (results/mini_rl_gain_validation)"
    )
    parser.add_argument("--report-only", action="store_true", help="rebuild summary files from an existing runs.csv")
    parser.add_argument(
        "--reuse-runs",
        action="store_true",
        help="evaluate finished runs already in --runs-dir again (e.g. with more --eval-images) instead of "
        "training them anew, overwriting their evaluation files; a run whose saved config differs from the "
        "one it would get is refused, and its train_wall_seconds is the trainer's own clock (summary.json "
        "time_total, a few seconds under a fresh run's subprocess wall time)",
    )
    args = parser.parse_args(argv)

    # Validation runs never share folders (or runs.csv rows) with the test runs.
    suffix = "_validation" if args.validation else ""
    runs = Path(args.runs_dir or f"runs/mini_rl_gain{suffix}")
    out = Path(args.output_dir or f"results/mini_rl_gain{suffix}")
    out.mkdir(parents=True, exist_ok=True)
    arms = {name: ARMS[name] for name in args.arms}
    for name, *overrides in args.arm:
        if name in arms or name == "base" or any("=" not in o for o in overrides):
            raise SystemExit(f"--arm {name}: the name must be new (not 'base') and every override KEY=VALUE")
        if any(o.startswith("data.") for o in overrides):
            raise SystemExit(f"--arm {name}: arms change training, not the prompts (data.* is the task's)")
        arms[name] = overrides
    task_sets = {t: list(args.set) for t in args.tasks}
    for task, *overrides in args.task_set:
        if task not in TASKS or any("=" not in o for o in overrides):
            raise SystemExit(f"--task-set {task}: a task ({', '.join(TASKS)}), then its overrides KEY=VALUE")
        task_sets.get(task, []).extend(overrides)
    if args.validation and not args.report_only:
        for t in args.tasks:
            task_sets[t] += validation_split(TASKS[t], task_sets[t], args.validation, runs / t / "validation")
    cores = list(range(os.cpu_count() or 1))
    jobs: list[tuple[str, str, int | None]] = [(t, "base", None) for t in args.tasks] + [
        (t, arm, s) for t in args.tasks for arm in arms for s in args.seeds
    ]

    def one(index_job):
        index, (task, arm, seed) = index_job
        core = cores[index % min(args.jobs, len(cores))] if args.jobs > 1 else None
        config = TASKS[task]
        if seed is None:  # the pretrained base model
            result_path = runs / task / "base_eval.json"
            seconds = run_logged(
                evaluate_cmd(config, task_sets[task], result_path, args.eval_images),
                runs / task / "base_eval.log",
                core,
            )
            return {
                "task": task,
                "model": "base",
                "seed": None,
                "eval_seconds": seconds,
                **headline(read_json(result_path), task),
            }
        run_dir = runs / task / arm / f"seed{seed}"
        overrides = [*task_sets[task], *arms[arm]]
        train = [
            sys.executable,
            "-m",
            "superflow",
            "train",
            "--config",
            config,
            "--output-dir",
            str(run_dir),
            "--quiet",
            "--set",
            f"seed={seed}",
            "--set",
            "eval_every=0",
        ]
        train += [x for o in overrides for x in ("--set", o)]
        if args.reuse_runs and (run_dir / "summary.json").exists():
            train_seconds = finished_run_seconds(run_dir, config, [*overrides, f"seed={seed}", "eval_every=0"])
        else:
            train_seconds = run_logged(train, run_dir / "train.log", core)
        result_path = run_dir / "test_eval.json"
        # Arms change training only: every model is evaluated like the base (task overrides, same sampler).
        eval_overrides = [*task_sets[task], f"model.path={run_dir / 'lora'}"]
        eval_seconds = run_logged(
            evaluate_cmd(config, eval_overrides, result_path, args.eval_images), run_dir / "eval.log", core
        )
        metrics = read_jsonl(run_dir / "metrics.jsonl")
        phases = {
            k: round(sum(m.get(k, 0.0) for m in metrics), 2) for k in ("time_sampling", "time_reward", "time_training")
        }
        return {
            "task": task,
            "model": arm,
            "seed": seed,
            "epochs": len(metrics),
            "train_wall_seconds": round(train_seconds, 1),
            **phases,
            "eval_seconds": round(eval_seconds, 1),
            "train_reward_first_epoch": metrics[0]["reward_mean"],
            "train_reward_last_epoch": metrics[-1]["reward_mean"],
            **headline(read_json(result_path), task),
        }

    if args.report_only:
        table = pd.read_csv(out / "runs.csv")
    else:
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            rows = list(pool.map(one, enumerate(jobs)))
        table = pd.DataFrame(rows)
        if (out / "runs.csv").exists():  # rerunning some tasks keeps the others' rows
            kept = pd.read_csv(out / "runs.csv")
            redone = [k in set(run_keys(table)) for k in run_keys(kept)]  # a rerun replaces only its own runs
            table = pd.concat([kept[[not r for r in redone]], table], ignore_index=True)
    for col in ("seed", "epochs"):
        table[col] = table[col].astype("Int64")
    table.to_csv(out / "runs.csv", index=False)

    # GenEval's training draws prompts balanced over tags, so its expected training reward is the
    # partial score's tag mean; the image mean (test_reward) weights tags by their share of the
    # held-out prompts (colour attribution: 87 of world 0's 300 test prompts).
    metric_cols = [c for c in ("test_reward", "geneval_partial_tag_mean", "geneval_strict_tag_mean") if c in table]
    summary = []
    for task in dict.fromkeys(table.task):
        base = table[(table.task == task) & (table.model == "base")].iloc[0]
        for col in metric_cols:
            if pd.isna(base.get(col)):
                continue
            for arm in (
                a
                for a in dict.fromkeys(table.model)
                if a != "base" and ((table.task == task) & (table.model == a)).any()
            ):
                tuned = table[(table.task == task) & (table.model == arm)]
                mean, std = tuned[col].mean(), tuned[col].std(ddof=1)
                low, high = gain_interval(mean - base[col], std, len(tuned))
                summary.append(
                    {
                        "task": task,
                        "metric": col,
                        "arm": arm,
                        "base": base[col],
                        "mean": mean,
                        "std": std,
                        "gain": mean - base[col],
                        "gain_over_std": (mean - base[col]) / std if std > 0 else float("inf"),
                        "gain_low": low,
                        "gain_high": high,
                        "seeds": len(tuned),
                        "train_wall_seconds_mean": tuned["train_wall_seconds"].mean(),
                    }
                )
    summary = pd.DataFrame(summary)
    summary.to_csv(out / "summary.csv", index=False)

    command = shlex.join(["python", "benchmarks/mini_rl_gain.py", *(sys.argv[1:] if argv is None else argv)])
    previous = read_json(out / "environment.json") if (out / "environment.json").exists() else {}
    commands = dict(previous.get("commands") or {})
    # Tasks rerun on another host keep the others' rows, so each task records the machine it ran on.
    machines = dict(previous.get("machines") or {})
    if previous:
        machines.update({task: machine_text(previous) for task in commands if task not in machines})
    if args.report_only and previous:
        env = {k: v for k, v in previous.items() if k not in ("commands", "machines")}
    else:
        env = describe_machine()
        commands.update({task: command for task in args.tasks})
        machines.update({task: machine_text(env) for task in args.tasks})
    (out / "environment.json").write_text(
        json.dumps({**env, "commands": commands, "machines": machines}, indent=1) + "\n"
    )
    held_out = args.validation or validation_size(commands.values())
    seeds = ", ".join(str(s) for s in sorted(table["seed"].dropna().unique()))
    by_command: dict[str, list[str]] = {}
    for task, cmd in commands.items():
        by_command.setdefault(cmd, []).append(task)
    command_text = "; ".join(f"`{cmd}` ({', '.join(tasks)})" for cmd, tasks in by_command.items())
    md = [
        "# Flow-GRPO on the mini world: base vs fine-tuned, per task",
        "",
        f"Commands: {command_text}. {machines_text(machines, env)}; "
        f"seeds {seeds}, each run on one core. Acceptance: Flow-GRPO's gain > 3 x the seed std; the "
        "shuffled-reward control's < 1 x. `gain_low` and `gain_high`: the 95% Student-t interval of the "
        "mean gain over seeds."
        + (
            f" Held-out set: {held_out} validation prompts cut from the training prompts (not the test set)."
            if held_out
            else ""
        ),
        "",
        to_markdown(summary),
        "",
        "Per run:",
        "",
        to_markdown(table),
        "",
    ]
    (out / "summary.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
