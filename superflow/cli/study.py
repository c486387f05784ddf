"""The study's commands: ``report`` (tables and figures from run files) and ``prompts`` (training sets)."""

from __future__ import annotations

import sys
from pathlib import Path


def _report_inputs(args):
    from superflow.reporting.runs import RunFiles

    tasks = {name: (label, metric) for name, label, metric in args.task}
    unknown = sorted({spec[0] for spec in (args.run or []) + (args.base or [])} - set(tasks))
    if unknown:
        raise SystemExit(f"--run/--base name tasks without a --task entry: {', '.join(unknown)}")
    runs = [
        RunFiles(
            task,
            method,
            int(seed),
            Path(metrics) if metrics != "-" else None,
            Path(evaluation) if evaluation != "-" else None,
        )
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
        written += [
            _write(args.csv, summary.to_csv(index=False)),
            _write(args.md, study_tables.table_markdown(summary, task_labels, labels)),
        ]
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


def _cmd_prompts(args) -> int:
    """Regenerate a training prompt set (GenEval metadata or OCR prompts) disjoint from a test set."""
    from superflow.prompt_gen.geneval import write_geneval_train
    from superflow.prompt_gen.ocr import write_ocr_train

    if args.kind == "geneval-train":
        counts = write_geneval_train(args.output, args.test, per_tag=args.per_tag, seed=args.seed)
        print(
            f"wrote {sum(counts.values())} prompts to {args.output}: "
            + ", ".join(f"{t} {n}" for t, n in counts.items())
        )
        empty = [tag for tag, n in counts.items() if n == 0]
        if empty and args.per_tag > 0:
            print(
                f"note: no prompts left for {', '.join(empty)}: the test set holds every prompt of that tag",
                file=sys.stderr,
            )
    else:
        stats = write_ocr_train(args.output, args.test, count=args.count, seed=args.seed)
        print(
            f"wrote {stats['prompts']} prompts to {args.output} ({stats['distinct_targets']} distinct targets, "
            f"target length median {stats['target_chars_median']:g}, max {stats['target_chars_max']})"
        )
    return 0


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the top-level parser's subparsers)."""
    p = sub.add_parser(
        "report", help="tables and figures of a finished study (table1, efficiency, ablations, figures)"
    )
    p.add_argument("what", choices=["table1", "efficiency", "ablations", "figures"])
    p.add_argument(
        "--task",
        nargs=3,
        action="append",
        required=True,
        metavar=("NAME", "LABEL", "METRIC"),
        help="a task column: its name, its table label and the evaluation key (mean, strict.tag_mean)",
    )
    p.add_argument(
        "--run",
        nargs=5,
        action="append",
        metavar=("TASK", "METHOD", "SEED", "METRICS", "EVALUATION"),
        help="one training run: metrics.jsonl and final evaluation JSON ('-' where absent)",
    )
    p.add_argument(
        "--base", nargs=2, action="append", metavar=("TASK", "EVALUATION"), help="the base model's evaluation"
    )
    p.add_argument(
        "--samples",
        nargs=3,
        action="append",
        metavar=("TASK", "METHOD", "DIR"),
        help="saved evaluation samples (GenEval layout) for the sample grids",
    )
    p.add_argument("--method-label", nargs=2, action="append", metavar=("METHOD", "LABEL"))
    p.add_argument("--csv")
    p.add_argument("--md")
    p.add_argument("--output-dir", default="results/figures", help="figures folder")
    p.set_defaults(func=_cmd_report)

    from superflow.prompt_gen.geneval import DEFAULT_PER_TAG
    from superflow.prompt_gen.ocr import DEFAULT_OCR_COUNT

    p = sub.add_parser("prompts", help="regenerate training prompt sets disjoint from a test set (GenEval, OCR)")
    kinds = p.add_subparsers(dest="kind", required=True)
    k = kinds.add_parser(
        "geneval-train", help="GenEval-schema training metadata (.jsonl), as GenEval's create_prompts.py makes it"
    )
    k.add_argument("--output", required=True, metavar="FILE")
    k.add_argument(
        "--test", metavar="FILE", help="test prompts to stay disjoint from (default: GenEval's official 553)"
    )
    k.add_argument(
        "--per-tag",
        type=int,
        default=DEFAULT_PER_TAG,
        metavar="N",
        help=f"distinct prompts per tag, fewer where a tag has fewer left (default {DEFAULT_PER_TAG})",
    )
    k.add_argument("--seed", type=int, default=0)
    k = kinds.add_parser("ocr-train", help="text-rendering training prompts in the style of Flow-GRPO's OCR test set")
    k.add_argument("--output", required=True, metavar="FILE")
    k.add_argument("--test", required=True, metavar="FILE", help="OCR test prompts whose prompts and targets to avoid")
    k.add_argument("--count", type=int, default=DEFAULT_OCR_COUNT, metavar="N", help=f"default {DEFAULT_OCR_COUNT}")
    k.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_prompts)
