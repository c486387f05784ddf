"""The mini world's commands: ``world`` (prompt splits), ``pretrain`` (MiniFlow), ``train-preference``,
and ``publish-bases`` / ``install-base`` (pretrained bases shipped with the repository)."""

from __future__ import annotations

import argparse
from pathlib import Path

from superflow.world.text import TEXT_LENGTHS


def _cmd_world(args) -> int:
    """Write the mini world's seeded prompt splits (GenEval-style scenes and text signs)."""
    from superflow.world.prompts import make_splits
    from superflow.world.text import make_text_splits

    out = Path(args.output_dir)
    make_splits(out / "geneval", n_train=args.n_train, n_test=args.n_test, seed=args.seed)
    make_text_splits(out / "ocr", n_train=args.n_train, n_test=args.n_test, seed=args.seed, lengths=args.text_lengths)
    print(f"mini world prompts written under {out}")
    return 0


def _cmd_pretrain(args) -> int:
    from superflow.world.pretrain import PretrainConfig, pretrain

    cfg = PretrainConfig(
        output_dir=args.output_dir,
        data_dir=args.data_dir,
        seed=args.seed,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        threads=args.threads,
        caption_noise=args.caption_noise,
        sign_noise=args.sign_noise,
        channels=tuple(args.channels),
        position_aware=args.position_aware,
        text_fraction=args.text_fraction,
    )
    path = pretrain(cfg, resume=args.resume, progress=not args.quiet)
    print(f"MiniFlow written to {path}")
    return 0


def _cmd_train_preference(args) -> int:
    """Train the mini world's preference model (the PickScore analogue) on hidden-preference pairs."""
    import json

    from superflow.prompts import load_prompts
    from superflow.world.preference_model import TRAINING_STEPS, save_preference_model, train_preference_model
    from superflow.world.pretrain import build_tokenizer

    def records(split):
        loaded = load_prompts(Path(args.data_dir) / "geneval" / f"{split}_metadata.jsonl")
        return [{**m, "prompt": p} for p, m in zip(loaded.prompts, loaded.metadata)]

    steps = TRAINING_STEPS if args.steps is None else args.steps
    model, report = train_preference_model(
        records("train"),
        records("test"),
        build_tokenizer(args.data_dir).vocab,
        steps=steps,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=not args.quiet,
    )
    save_preference_model(model, args.output_dir, extra={"training": report, "seed": args.seed, "steps": steps})
    print(json.dumps(report))
    return 0


def _cmd_publish_bases(args) -> int:
    import json

    from superflow.world.published import publish

    sources, settings = {}, {}
    for name, folder, made_with in args.base:
        try:
            settings[name] = json.loads(made_with)
        except json.JSONDecodeError as err:
            raise ValueError(f"--base {name}: the settings are not JSON ({err}): {made_with!r}") from None
        sources[name] = Path(folder)
    print(f"published bases written: {publish(sources, settings, Path(args.output_dir))}")
    return 0


def _cmd_install_base(args) -> int:
    from superflow.world.published import install

    folder = install(Path(args.published), args.name, Path(args.output_dir))
    print(f"published base {args.name!r} installed in {folder}")
    return 0


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the top-level parser's subparsers)."""
    p = sub.add_parser("world", help="write the mini world's prompt splits")
    p.add_argument("--output-dir", default="runs/world")
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--text-lengths",
        type=int,
        nargs="+",
        default=list(TEXT_LENGTHS),
        metavar="N",
        help=f"characters per sign of the OCR analogue (default: {' '.join(map(str, TEXT_LENGTHS))})",
    )
    p.set_defaults(func=_cmd_world)

    p = sub.add_parser("pretrain", help="pretrain MiniFlow on the mini world's renders (CPU)")
    p.add_argument("--data-dir", default="runs/world", help="folder written by `superflow world`")
    p.add_argument("--output-dir", default="runs/miniflow")
    p.add_argument("--steps", type=int, default=1700, help="optimiser steps (the early stop that leaves room for RL)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--caption-noise",
        type=float,
        default=0.0,
        metavar="P",
        help="probability that a training image disagrees with its caption in the attribute its tag tests "
        "(web-caption noise; 0: perfectly captioned renders)",
    )
    p.add_argument(
        "--sign-noise",
        choices=("substitute", "swap"),
        default="substitute",
        help="how a noisy sign disagrees with its caption: one character substituted, or two neighbours swapped",
    )
    p.add_argument(
        "--channels",
        type=int,
        nargs=3,
        default=[32, 64, 128],
        metavar=("C0", "C1", "C2"),
        help="MiniFlow's widths at 32, 16 and 8 px (compute per image grows about as their square)",
    )
    p.add_argument(
        "--text-fraction",
        type=float,
        default=0.4,
        metavar="F",
        help="share of pretraining images that are signs (the rest are GenEval scenes)",
    )
    p.add_argument(
        "--position-aware",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="characters know their place in a sign and cross-attention its pixel position",
    )
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("train-preference", help="train the mini world's preference model (PickScore analogue)")
    p.add_argument("--data-dir", default="runs/world", help="folder written by `superflow world`")
    p.add_argument("--output-dir", default="runs/preference")
    p.add_argument(
        "--steps", type=int, default=None, help="optimiser steps (default: preference_model.TRAINING_STEPS)"
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_train_preference)

    p = sub.add_parser("publish-bases", help="copy pretrained bases into a folder with a manifest of their settings")
    p.add_argument(
        "--base",
        nargs=3,
        action="append",
        required=True,
        metavar=("NAME", "FOLDER", "SETTINGS_JSON"),
        help="a base's name, its folder, and the settings (JSON) a study must match to use it; repeatable",
    )
    p.add_argument("--output-dir", required=True)
    p.set_defaults(func=_cmd_publish_bases)

    p = sub.add_parser("install-base", help="copy one published base into a study's runs folder, checking its files")
    p.add_argument("--published", required=True, help="a folder written by `superflow publish-bases`")
    p.add_argument("--name", required=True, help="the base's name in its manifest")
    p.add_argument("--output-dir", required=True)
    p.set_defaults(func=_cmd_install_base)
