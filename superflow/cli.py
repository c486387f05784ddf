"""Command line: thin entry points over the package (``superflow --help``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEMO_PROMPTS = [
    "a red apple on a table", "a red car in the street", "a bowl of red cherries", "a red umbrella in the rain",
    "a red balloon in the sky", "a red rose in a garden", "a red fire truck", "a red door of a house",
]


def _cmd_train(args) -> int:
    from superflow.config import load_config
    from superflow.train import Trainer

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    overrides = list(args.set or [])
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    cfg = load_config(args.config, overrides)
    Trainer(cfg, progress=not args.quiet).run(
        resume=args.resume, on_config_change="restart" if args.restart_on_config_change else "error"
    )
    print(f"done: metrics in {Path(cfg.output_dir) / 'metrics.jsonl'}, LoRA in {Path(cfg.output_dir) / 'lora'}")
    return 0


def _cmd_tiny_sd3(args) -> int:
    from superflow.models.tiny_sd3 import save_tiny_sd3

    path = save_tiny_sd3(args.path, seed=args.seed)
    print(f"tiny random SD3 pipeline written to {path}")
    return 0


def _cmd_demo(args) -> int:
    """Build a tiny random SD3 offline and fine-tune it towards red images: a CPU smoke run."""
    from superflow.config import load_config
    from superflow.models.tiny_sd3 import save_tiny_sd3
    from superflow.train import Trainer

    out = Path(args.output_dir)
    model_dir = out / "tiny-sd3"
    if not (model_dir / "model_index.json").exists():
        save_tiny_sd3(model_dir, seed=0)
    prompts = out / "prompts.txt"
    prompts.parent.mkdir(parents=True, exist_ok=True)
    prompts.write_text("\n".join(DEMO_PROMPTS) + "\n")
    overrides = [
        f"model.path={model_dir}", f"data.train_prompts={prompts}", f"data.test_prompts={prompts}",
        f"output_dir={out / args.method}", f"method={args.method}", f"num_epochs={args.epochs}",
        *(args.set or []),
    ]
    cfg = load_config("preset:tiny_sd3_demo", overrides)
    history = Trainer(cfg, progress=not args.quiet).run(resume=args.resume)
    first, last = history[0] if history else {}, history[-1] if history else {}
    print(
        f"{args.method}: train reward {first.get('reward_mean', float('nan')):.4f} -> {last.get('reward_mean', float('nan')):.4f}; "
        f"held-out reward {last.get('eval_reward_mean', float('nan')):.4f}; run folder {cfg.output_dir}"
    )
    return 0


def _cmd_world(args) -> int:
    """Write the mini world's seeded prompt splits (GenEval-style scenes and text signs)."""
    from superflow.world.prompts import make_splits
    from superflow.world.text import make_text_splits

    out = Path(args.output_dir)
    make_splits(out / "geneval", n_train=args.n_train, n_test=args.n_test, seed=args.seed)
    make_text_splits(out / "ocr", n_train=args.n_train, n_test=args.n_test, seed=args.seed)
    print(f"mini world prompts written under {out}")
    return 0


def _cmd_pretrain(args) -> int:
    from superflow.world.pretrain import PretrainConfig, pretrain

    cfg = PretrainConfig(
        output_dir=args.output_dir, data_dir=args.data_dir, seed=args.seed, steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, threads=args.threads,
    )
    path = pretrain(cfg, resume=args.resume, progress=not args.quiet)
    print(f"MiniFlow written to {path}")
    return 0


def _cmd_train_preference(args) -> int:
    """Train the mini world's preference model (the PickScore analogue) on hidden-preference pairs."""
    import json

    from superflow.world.pretrain import build_tokenizer
    from superflow.prompts import load_prompts
    from superflow.world.preference_model import save_preference_model, train_preference_model

    def records(split):
        loaded = load_prompts(Path(args.data_dir) / "geneval" / f"{split}_metadata.jsonl")
        return [{**m, "prompt": p} for p, m in zip(loaded.prompts, loaded.metadata)]

    model, report = train_preference_model(
        records("train"), records("test"), build_tokenizer(args.data_dir).vocab,
        steps=args.steps, batch_size=args.batch_size, seed=args.seed, progress=not args.quiet,
    )
    save_preference_model(model, args.output_dir, extra={"training": report, "seed": args.seed, "steps": args.steps})
    print(json.dumps(report))
    return 0


def _cmd_evaluate(args) -> int:
    """Score a model's deterministic samples on held-out prompts with a reward; print JSON."""
    import json

    from superflow.config import load_config
    from superflow.evaluation.runner import evaluate_policy
    from superflow.prompts import load_prompts
    from superflow.rewards import get_reward
    from superflow.models import build_policy

    cfg = load_config(args.config, list(args.set or []))
    if args.prompts == "geneval-official":
        from superflow.evaluation.geneval_protocol import OFFICIAL_METADATA

        args.prompts = str(OFFICIAL_METADATA)
    prompts = load_prompts(args.prompts or cfg.data.test_prompts)
    if args.limit:
        from superflow.prompts import PromptSet

        prompts = PromptSet(prompts.prompts[: args.limit], prompts.metadata[: args.limit], prompts.source)
    result = evaluate_policy(
        build_policy(cfg), prompts, get_reward(cfg.reward.name, **cfg.reward.kwargs),
        images_per_prompt=args.images_per_prompt, num_steps=cfg.sample.eval_num_steps,
        guidance_scale=cfg.sample.guidance_scale, batch_size=cfg.sample.batch_size, seed=cfg.eval_seed,
        progress=not args.quiet, save_dir=args.save_images,
    )
    records = result.pop("records", None)
    if args.geneval_results:
        from superflow.evaluation.geneval_protocol import format_summary, summary_scores, write_results

        if not records:
            raise SystemExit(f"--geneval-results needs a GenEval reward (geneval, geneval_mini), not {cfg.reward.name!r}")
        write_results(records, args.geneval_results)
        result["geneval"] = summary_scores(records)
        print(format_summary(result["geneval"]), file=sys.stderr)
    result.update(prompts=prompts.source, config=args.config, overrides=list(args.set or []))
    text = json.dumps(result, indent=1)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0


def _report_inputs(args):
    from superflow.reporting.runs import RunFiles

    tasks = {name: (label, metric) for name, label, metric in args.task}
    unknown = sorted({spec[0] for spec in (args.run or []) + (args.base or [])} - set(tasks))
    if unknown:
        raise SystemExit(f"--run/--base name tasks without a --task entry: {', '.join(unknown)}")
    runs = [
        RunFiles(task, method, int(seed), Path(metrics) if metrics != "-" else None, Path(evaluation) if evaluation != "-" else None)
        for task, method, seed, metrics, evaluation in args.run or []
    ]
    bases = [RunFiles(task, "base", 0, None, Path(evaluation)) for task, evaluation in args.base or []]
    labels = {method: label for method, label in args.method_label or []}
    return tasks, runs, bases, labels


def _cmd_report(args) -> int:
    """Tables and figures of a finished study from explicit run files (what the workflow rules call)."""
    from superflow.reporting import figures, study_tables
    from superflow.reporting.markdown import to_markdown

    tasks, runs, bases, labels = _report_inputs(args)
    metrics_by_task = {name: metric for name, (_, metric) in tasks.items()}
    task_labels = {name: label for name, (label, _) in tasks.items()}
    methods = list(dict.fromkeys(["base"] * bool(bases) + [r.method for r in runs]))
    written = []
    if args.what in ("table1", "ablations"):
        scores = study_tables.final_scores(bases + runs, metrics_by_task)
        summary = study_tables.summarise(scores, methods, list(tasks))
        summary.insert(1, "label", [study_tables.method_label(m, labels) for m in summary["method"]])
        written += [_write(args.csv, summary.to_csv(index=False)), _write(args.md, study_tables.table_markdown(summary, task_labels, labels))]
    elif args.what == "efficiency":
        costs = study_tables.cost_to_target(runs, metrics_by_task)
        table = study_tables.efficiency_table(costs, methods)
        shown = table.assign(
            task=[task_labels[t] for t in table["task"]],
            method=[study_tables.method_label(m, labels) for m in table["method"]],
        )
        written += [_write(args.csv, table.to_csv(index=False)), _write(args.md, to_markdown(shown, digits=3) + "\n")]
    else:
        samples: dict[str, dict[str, Path]] = {}
        for task, method, folder in args.samples or []:
            samples.setdefault(task, {})[method] = Path(folder)
        written += figures.write_all(runs, metrics_by_task, task_labels, args.output_dir, samples, labels)
    for path in written:
        if path is not None:
            print(f"wrote {path}")
    return 0


def _write(path: str | None, text: str) -> Path | None:
    if not path:
        return None
    from superflow.checkpoint import atomic_write_text

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)
    return target


def _cmd_config_help(args) -> int:
    from superflow.config import describe

    for key, text, default in describe():
        print(f"{key} (default {default!r})\n    {text}")
    return 0


def _cmd_doctor(args) -> int:
    """Report which models, rewards and evaluators this machine can run (offline, loads nothing)."""
    import json

    from superflow.config import load_config
    from superflow.doctor import as_json, format_checks, run_checks

    cfg = load_config(args.config, list(args.set or [])) if args.config else None
    checks = run_checks(cfg)
    print(json.dumps(as_json(checks), indent=1) if args.json else format_checks(checks))
    return 1 if args.strict and not all(c.ok for c in checks) else 0


def _cmd_prompts(args) -> int:
    """Regenerate a training prompt set (GenEval metadata or OCR prompts) disjoint from a test set."""
    from superflow.prompt_gen.geneval import write_geneval_train
    from superflow.prompt_gen.ocr import write_ocr_train

    if args.kind == "geneval-train":
        counts = write_geneval_train(args.output, args.test, per_tag=args.per_tag, seed=args.seed)
        print(f"wrote {sum(counts.values())} prompts to {args.output}: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
        empty = [tag for tag, n in counts.items() if n == 0]
        if empty and args.per_tag > 0:
            print(f"note: no prompts left for {', '.join(empty)}: the test set holds every prompt of that tag", file=sys.stderr)
    else:
        stats = write_ocr_train(args.output, args.test, count=args.count, seed=args.seed)
        print(
            f"wrote {stats['prompts']} prompts to {args.output} ({stats['distinct_targets']} distinct targets, "
            f"target length median {stats['target_chars_median']:g}, max {stats['target_chars_max']})"
        )
    return 0


def _cmd_list(args) -> int:
    from superflow.config import preset_names
    from superflow.rewards import reward_names

    print("presets: " + ", ".join(preset_names()))
    print("rewards: " + ", ".join(reward_names()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="superflow",
        description="RL fine-tuning of flow-matching text-to-image models (Flow-GRPO, Flow-SPO, SuperFlow).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train with a config (YAML path or preset:NAME)")
    p.add_argument("--config", required=True, help="YAML file or preset:NAME (see `superflow list`)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. train.lr=1e-4")
    p.add_argument("--output-dir", help="run folder (overrides output_dir)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the run folder")
    p.add_argument(
        "--restart-on-config-change", action="store_true",
        help="with --resume: start over when the folder's saved config differs (workflows), instead of refusing",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("demo", help="offline CPU demo: a tiny random SD3 learns to paint red")
    p.add_argument("--output-dir", default="runs/demo")
    # Flow-GRPO by default: on this random tiny model its reward rises clearly in 10 epochs, which is
    # what the demo is for; SuperFlow's bins and step weights barely move it (numbers in the README).
    p.add_argument("--method", default="flowgrpo", choices=["flowgrpo", "flowspo", "superflow"])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("tiny-sd3", help="write a tiny randomly initialised SD3 pipeline (offline)")
    p.add_argument("path")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_tiny_sd3)

    p = sub.add_parser("world", help="write the mini world's prompt splits")
    p.add_argument("--output-dir", default="runs/world")
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_world)

    p = sub.add_parser("pretrain", help="pretrain MiniFlow on the mini world's renders (CPU)")
    p.add_argument("--data-dir", default="runs/world", help="folder written by `superflow world`")
    p.add_argument("--output-dir", default="runs/miniflow")
    p.add_argument("--steps", type=int, default=1700, help="optimiser steps (the early stop that leaves room for RL)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("train-preference", help="train the mini world's preference model (PickScore analogue)")
    p.add_argument("--data-dir", default="runs/world", help="folder written by `superflow world`")
    p.add_argument("--output-dir", default="runs/preference")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_train_preference)

    p = sub.add_parser("evaluate", help="score a model's samples on held-out prompts with the config's reward")
    p.add_argument("--config", required=True)
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.add_argument("--prompts", help="prompt file (default: data.test_prompts); 'geneval-official': GenEval's 553 prompts")
    p.add_argument("--images-per-prompt", type=int, default=1)
    p.add_argument("--limit", type=int, default=0, help="first N prompts only")
    p.add_argument("--output", help="also write the JSON here")
    p.add_argument("--geneval-results", metavar="FILE", help="also write GenEval's results.jsonl and its summary (GenEval rewards)")
    p.add_argument("--save-images", metavar="DIR", help="also save the samples in GenEval's folder layout (DIR/00000/samples/0000.png)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("report", help="tables and figures of a finished study (table1, efficiency, ablations, figures)")
    p.add_argument("what", choices=["table1", "efficiency", "ablations", "figures"])
    p.add_argument("--task", nargs=3, action="append", required=True, metavar=("NAME", "LABEL", "METRIC"),
                   help="a task column: its name, its table label and the evaluation key (mean, strict.tag_mean)")
    p.add_argument("--run", nargs=5, action="append", metavar=("TASK", "METHOD", "SEED", "METRICS", "EVALUATION"),
                   help="one training run: metrics.jsonl and final evaluation JSON ('-' where absent)")
    p.add_argument("--base", nargs=2, action="append", metavar=("TASK", "EVALUATION"), help="the base model's evaluation")
    p.add_argument("--samples", nargs=3, action="append", metavar=("TASK", "METHOD", "DIR"),
                   help="saved evaluation samples (GenEval layout) for the sample grids")
    p.add_argument("--method-label", nargs=2, action="append", metavar=("METHOD", "LABEL"))
    p.add_argument("--csv")
    p.add_argument("--md")
    p.add_argument("--output-dir", default="results/figures", help="figures folder")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("config-help", help="every config key with its default and meaning")
    p.set_defaults(func=_cmd_config_help)

    p = sub.add_parser("doctor", help="what this machine can run: packages and weights per model, reward and evaluator")
    p.add_argument("--config", help="also check the weight paths this config names")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.add_argument("--json", action="store_true")
    p.add_argument("--strict", action="store_true", help="exit 1 when anything is missing")
    p.set_defaults(func=_cmd_doctor)

    from superflow.prompt_gen.geneval import DEFAULT_PER_TAG
    from superflow.prompt_gen.ocr import DEFAULT_OCR_COUNT

    p = sub.add_parser("prompts", help="regenerate training prompt sets disjoint from a test set (GenEval, OCR)")
    kinds = p.add_subparsers(dest="kind", required=True)
    k = kinds.add_parser("geneval-train", help="GenEval-schema training metadata (.jsonl), as GenEval's create_prompts.py makes it")
    k.add_argument("--output", required=True, metavar="FILE")
    k.add_argument("--test", metavar="FILE", help="test prompts to stay disjoint from (default: GenEval's official 553)")
    k.add_argument("--per-tag", type=int, default=DEFAULT_PER_TAG, metavar="N",
                   help=f"distinct prompts per tag, fewer where a tag has fewer left (default {DEFAULT_PER_TAG})")
    k.add_argument("--seed", type=int, default=0)
    k = kinds.add_parser("ocr-train", help="text-rendering training prompts in the style of Flow-GRPO's OCR test set")
    k.add_argument("--output", required=True, metavar="FILE")
    k.add_argument("--test", required=True, metavar="FILE", help="OCR test prompts whose prompts and targets to avoid")
    k.add_argument("--count", type=int, default=DEFAULT_OCR_COUNT, metavar="N", help=f"default {DEFAULT_OCR_COUNT}")
    k.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_prompts)

    p = sub.add_parser("list", help="presets and registered rewards")
    p.set_defaults(func=_cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        # Configuration and input errors carry their own explanation; a traceback buries it.
        print(f"superflow {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
