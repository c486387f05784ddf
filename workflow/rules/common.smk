# Shared helpers: config validation and the paths and arguments every other rule file uses.

import json
import os
import re
import shlex
import sys

from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")

RUNS = config["runs"]
RESULTS = config["results"]
SEEDS = [int(seed) for seed in config["seeds"]]
TASKS = list(config["tasks"])
METHODS = list(config["methods"])
ABLATIONS = list(config.get("ablations") or {})
BASELINES = list(config.get("baselines") or {})
WORLD = config.get("world")
if WORLD:
    WORLD["seed"] = int(WORLD["seed"])
_groups = {g: list(config.get(g) or {}) for g in ("methods", "ablations", "baselines")}
_seen = [name for names in _groups.values() for name in names]
if len(_seen) != len(set(_seen)):
    raise ValueError(
        f"a variant name appears in two of methods, ablations and baselines: "
        f"{sorted({n for n in _seen if _seen.count(n) > 1})}; each run folder needs its own name"
    )
# The baselines target's runs: the newer methods next to Flow-GRPO and SuperFlow.
BASELINE_VARIANTS = [m for m in ("flowgrpo", "superflow") if m in METHODS] + BASELINES
BASELINE_FIGURES_DONE = f"{RUNS}/baseline_figures.done"
# Off by default: the baselines' 36 runs would take the mini study past its 90 minutes.
WITH_BASELINES = str(config.get("with_baselines", False)).lower() == "true"
TABLE1_VARIANTS = METHODS + (BASELINES if WITH_BASELINES else [])
# Training runs may be methods (Table 1), ablations or the newer baselines: one rule trains them all.
VARIANTS = {**config["methods"], **(config.get("ablations") or {}), **(config.get("baselines") or {})}
for _name, _variant in VARIANTS.items():
    _unknown = sorted(set(_variant.get("task_set") or {}) - set(TASKS))
    if _unknown:
        raise ValueError(f"{_name}.task_set names tasks that are not in tasks: {_unknown} (tasks: {TASKS})")
ENV = "../../envs/superflow.yaml"


wildcard_constraints:
    task="|".join(TASKS),
    variant="|".join(VARIANTS),
    seed=r"\d+",
    base=r"miniflow(_\w+)?",


def expand_path(template):
    """Config paths may name {runs} (this scale's run folder) and {data} (the repository's data/)."""
    return template.replace("{runs}", RUNS).replace("{data}", "data")


for _task, _spec in config["tasks"].items():
    if _spec.get("base") and _spec["base"] not in ((WORLD or {}).get("bases") or {}):
        raise ValueError(f"tasks.{_task}.base is {_spec['base']!r}, which is not one of world.bases")


def base_folder(task):
    """The task's pretrained MiniFlow: the world's base (``miniflow``), or ``miniflow_NAME`` for a task
    that names one of ``world.bases`` with ``base: NAME``."""
    name = config["tasks"][task].get("base")
    return f"{RUNS}/miniflow_{name}" if name else f"{RUNS}/miniflow"


def base_settings(folder):
    """The pretraining settings of a base folder: ``world``'s, with the named base's changes on top."""
    name = folder.removeprefix("miniflow").removeprefix("_")
    bases = WORLD.get("bases") or {}
    if name and name not in bases:
        raise ValueError(f"no base {name!r} under world.bases (known: {', '.join(bases) or 'none'})")
    return {**WORLD, **bases.get(name, {})}


# The settings a base is made with (validation above filled in the schema's defaults): what a
# published base must match.
WORLD_SETTINGS = ("seed", "n_train", "n_test", "text_lengths")
PRETRAIN_SETTINGS = (
    "pretrain_steps",
    "pretrain_batch_size",
    "caption_noise",
    "sign_noise",
    "channels",
    "text_fraction",
    "position_aware",
)
BASE_NAMES = sorted({os.path.basename(base_folder(task)) for task in TASKS}) if WORLD else []


def published_settings(name):
    """``name``'s settings in this study: the world's, then its pretraining's (or the preference model's steps)."""
    if name == "preference":
        keys, source = WORLD_SETTINGS + ("preference_steps",), WORLD
    else:
        keys, source = WORLD_SETTINGS + PRETRAIN_SETTINGS, base_settings(name)
    return {key: source[key] for key in keys}


def published_target(name):
    """Where a base lands under the runs folder (a MiniFlow's weights sit in its ``model`` subfolder)."""
    return name if name == "preference" else f"{name}/model"


def published_folder(name):
    return f"{RUNS}/{published_target(name)}"


def published_name(target):
    return target.split("/")[0]


def published_bases():
    """The bases this study installs from world.published_bases (name -> folder): those made with its settings."""
    folder = WORLD.get("published_bases")
    if not folder or str(folder).lower() in ("null", "none"):  # --config values arrive as strings
        return {}
    path = os.path.join(folder, "manifest.json")
    try:
        with open(path) as handle:
            published = json.load(handle)["bases"]
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(
            f"world.published_bases: cannot read {path} ({err}); "
            "set world.published_bases: null to pretrain the bases instead"
        ) from None
    usable = {}
    for name in BASE_NAMES + ["preference"]:
        made = (published.get(name) or {}).get("settings", {})
        differ = [f"{k} {made.get(k)!r} (here {v!r})" for k, v in published_settings(name).items() if made.get(k) != v]
        if name in published and not differ:
            usable[name] = os.path.join(folder, name)
        else:
            why = f"made with {', '.join(differ)}" if name in published else "not published there"
            print(f"world.published_bases: {name} {why}; building it here", file=sys.stderr)
    return usable


def model_path(task):
    """The base model: the pipeline's pretrained MiniFlow, or the configured weights (paper)."""
    return f"{base_folder(task)}/model" if WORLD else config["model"]


def model_inputs(task):
    return [f"{base_folder(task)}/model/model.pt"] if WORLD else []


def task_inputs(task):
    spec = config["tasks"][task]
    files = {"train_prompts": expand_path(spec["train_prompts"]), "test_prompts": expand_path(spec["test_prompts"])}
    files.update({f"extra_{i}": expand_path(p) for i, p in enumerate(spec.get("inputs", []))})
    return files


def overrides(*groups):
    """--set KEY=VALUE arguments, shell-quoted, from lists of 'key=value' strings."""
    return " ".join(f"--set {shlex.quote(expand_path(item))}" for group in groups for item in group)


def task_overrides(task):
    spec = config["tasks"][task]
    files = task_inputs(task)
    base = [
        f"model.path={model_path(task)}",
        f"data.train_prompts={files['train_prompts']}",
        f"data.test_prompts={files['test_prompts']}",
    ]
    return overrides(base, config.get("set", []), spec.get("set", []))


def run_dir(task, variant, seed):
    return f"{RUNS}/train/{task}/{variant}/seed{seed}"


def run_summary(task, variant, seed):
    return os.path.join(run_dir(task, variant, seed), "summary.json")


def run_metrics(task, variant, seed):
    return os.path.join(run_dir(task, variant, seed), "metrics.jsonl")


def gpu_resources():
    return {"gpu": int(config.get("gpus_per_job", 0))}


def evaluate_arguments(task, folder):
    spec = config["tasks"][task].get("evaluate", {})
    args = [f"--images-per-prompt {spec.get('images_per_prompt', 1)}"]
    if spec.get("prompts"):
        args.append(f"--prompts {expand_path(spec['prompts'])}")
    if spec.get("limit"):
        args.append(f"--limit {spec['limit']}")
    if spec.get("geneval_results"):
        args.append(f"--geneval-results {folder}/results.jsonl")
    return " ".join(args)


def run_files(variants):
    return {
        "summaries": [run_summary(t, v, s) for t in TASKS for v in variants for s in SEEDS],
        "evaluations": [f"{RESULTS}/evaluations/{t}/{v}/seed{s}.json" for t in TASKS for v in variants for s in SEEDS],
    }


def report_arguments(variants, with_base=True, tasks=None):
    tasks = tasks or TASKS
    args = [f"--task {t} {shlex.quote(config['tasks'][t]['label'])} {config['tasks'][t]['metric']}" for t in tasks]
    if with_base:
        args += [f"--base {t} {RESULTS}/evaluations/{t}/base.json" for t in tasks]
    args += [
        f"--run {t} {v} {s} {run_metrics(t, v, s)} {RESULTS}/evaluations/{t}/{v}/seed{s}.json"
        for t in tasks
        for v in variants
        for s in SEEDS
    ]
    args += [f"--method-label {v} {shlex.quote(VARIANTS[v]['label'])}" for v in variants if VARIANTS[v].get("label")]
    args.append(f"--method-label base {shlex.quote(config['base_label'])}")
    return " ".join(args)


def task_report_arguments(task):
    return report_arguments(METHODS, tasks=[task])


# Each figure's caption is workflow/report/NAME.rst (the report's only copy of it).
FIGURES = [
    "test_reward_vs_step",
    "test_reward_vs_images",
    "test_reward_vs_time",
    "group_sizes",
    "step_advantage_profile",
]


def sample_folders(variants):
    """(task, label, folder) of the sample grids' columns: the base's, then each variant's first seed."""
    return [(t, "base", f"{RUNS}/samples/{t}/base") for t in TASKS] + [
        (t, m, f"{RUNS}/samples/{t}/{m}/seed{SEEDS[0]}") for t in TASKS for m in variants
    ]


def figure_inputs(variants):
    return {**run_files(variants), "samples": [folder for _, _, folder in sample_folders(variants)]}


def figure_outputs(folder, category, samples_category):
    return {
        **{
            name: report(f"{folder}/{name}.png", caption=f"../report/{name}.rst", category=category)
            for name in FIGURES
        },
        **{
            f"samples_{t}": report(f"{folder}/samples_{t}.png", caption="../report/samples.rst", category=samples_category)
            for t in TASKS
        },
    }


def sample_arguments(variants):
    return " ".join(f"--samples {t} {label} {folder}" for t, label, folder in sample_folders(variants))
