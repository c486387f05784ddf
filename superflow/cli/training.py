"""Training and evaluation commands: ``train``, ``demo``, ``tiny-sd3``, ``evaluate``."""

from __future__ import annotations

import sys
from pathlib import Path

from superflow.config import METHOD_DEFAULTS

DEMO_PROMPTS = [
    "a red apple on a table",
    "a red car in the street",
    "a bowl of red cherries",
    "a red umbrella in the rain",
    "a red balloon in the sky",
    "a red rose in a garden",
    "a red fire truck",
    "a red door of a house",
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
        f"model.path={model_dir}",
        f"data.train_prompts={prompts}",
        f"data.test_prompts={prompts}",
        f"output_dir={out / args.method}",
        f"method={args.method}",
        f"num_epochs={args.epochs}",
        *(args.set or []),
    ]
    cfg = load_config("preset:tiny_sd3_demo", overrides)
    history = Trainer(cfg, progress=not args.quiet).run(resume=args.resume)
    first, last = history[0] if history else {}, history[-1] if history else {}
    nan = float("nan")
    print(
        f"{args.method}: train reward {first.get('reward_mean', nan):.4f} -> {last.get('reward_mean', nan):.4f}; "
        f"held-out reward {last.get('eval_reward_mean', nan):.4f}; run folder {cfg.output_dir}"
    )
    return 0


def _cmd_evaluate(args) -> int:
    """Score a model's deterministic samples on held-out prompts with a reward; print JSON."""
    import json

    from superflow.config import load_config
    from superflow.evaluation.runner import evaluate_policy
    from superflow.models import build_policy
    from superflow.prompts import load_prompts
    from superflow.rewards import get_reward

    cfg = load_config(args.config, list(args.set or []))
    if args.prompts == "geneval-official":
        from superflow.evaluation.geneval_protocol import OFFICIAL_METADATA

        args.prompts = str(OFFICIAL_METADATA)
    prompts = load_prompts(args.prompts or cfg.data.test_prompts)
    if args.limit:
        prompts = prompts.head(args.limit)
    result = evaluate_policy(
        build_policy(cfg),
        prompts,
        get_reward(cfg.reward.name, **cfg.reward.kwargs),
        images_per_prompt=args.images_per_prompt,
        num_steps=cfg.sample.eval_num_steps,
        guidance_scale=cfg.sample.guidance_scale,
        batch_size=cfg.sample.batch_size,
        seed=cfg.eval_seed,
        progress=not args.quiet,
        save_dir=args.save_images,
    )
    records = result.pop("records", None)
    if args.geneval_results:
        from superflow.evaluation.geneval_protocol import format_summary, summary_scores, write_results

        if not records:
            raise SystemExit(
                f"--geneval-results needs a GenEval reward (geneval, geneval_mini), not {cfg.reward.name!r}"
            )
        write_results(records, args.geneval_results)
        result["geneval"] = summary_scores(records)
        print(format_summary(result["geneval"]), file=sys.stderr)
    result.update(prompts=prompts.source, config=args.config, overrides=list(args.set or []))
    text = json.dumps(result, indent=1)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the top-level parser's subparsers)."""
    p = sub.add_parser("train", help="train with a config (YAML path or preset:NAME)")
    p.add_argument("--config", required=True, help="YAML file or preset:NAME (see `superflow list`)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. train.lr=1e-4")
    p.add_argument("--output-dir", help="run folder (overrides output_dir)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in the run folder (without it a run starts over: its "
        "metrics replace the folder's, its first checkpoint the folder's checkpoints)",
    )
    p.add_argument(
        "--restart-on-config-change",
        action="store_true",
        help="with --resume: start over when the folder's saved config differs (workflows), instead of refusing",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("demo", help="offline CPU demo: a tiny random SD3 learns to paint red")
    p.add_argument("--output-dir", default="runs/demo")
    # Flow-GRPO by default: on this random tiny model its reward rises clearly in 10 epochs, which is
    # what the demo is for; SuperFlow's bins and step weights barely move it (numbers in results/README.md).
    p.add_argument("--method", default="flowgrpo", choices=list(METHOD_DEFAULTS))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("tiny-sd3", help="write a tiny randomly initialised SD3 pipeline (offline)")
    p.add_argument("path")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_tiny_sd3)

    p = sub.add_parser("evaluate", help="score a model's samples on held-out prompts with the config's reward")
    p.add_argument("--config", required=True)
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.add_argument(
        "--prompts", help="prompt file (default: data.test_prompts); 'geneval-official': GenEval's 553 prompts"
    )
    p.add_argument("--images-per-prompt", type=int, default=1)
    p.add_argument("--limit", type=int, default=0, help="first N prompts only")
    p.add_argument("--output", help="also write the JSON here")
    p.add_argument(
        "--geneval-results",
        metavar="FILE",
        help="also write GenEval's results.jsonl and its summary (GenEval rewards)",
    )
    p.add_argument(
        "--save-images",
        metavar="DIR",
        help="also save the samples in GenEval's folder layout (DIR/00000/samples/0000.png)",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_evaluate)
