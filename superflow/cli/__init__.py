"""Command line: thin entry points over the package (``superflow --help``).

Each module of this package holds one group of subcommands and registers their parsers; every
command imports what it needs when it runs, so ``superflow --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from superflow.cli import info, mini_world, study, training


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="superflow",
        description="RL fine-tuning of flow-matching text-to-image models (Flow-GRPO, Flow-SPO, SuperFlow).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (training, mini_world, study, info):
        group.register(sub)
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
