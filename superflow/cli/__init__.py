"""Command line: thin entry points over the package (``superflow --help``).

Each module of this package holds one group of subcommands and registers their parsers; every
command imports what it needs when it runs, so ``superflow --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings

from superflow.cli import info, mini_world, study, training

#: Libraries whose warnings and log chatter the user cannot act on (``--verbose`` shows them).
THIRD_PARTY = ("diffusers", "transformers", "peft", "huggingface_hub", "accelerate", "torch", "timm")


class Terminated(BaseException):
    """SIGTERM (a scheduler's preemption, ``kill``): unwinds so temporary files are cleaned up."""


def quiet_third_party() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    for name in THIRD_PARTY:
        warnings.filterwarnings("ignore", module=rf"{name}(\.|$)")
        logging.getLogger(name).setLevel(logging.ERROR)


def _on_sigterm(signum, frame):
    raise Terminated()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="superflow",
        description="RL fine-tuning of flow-matching text-to-image models (Flow-GRPO, Flow-SPO, SuperFlow).",
    )
    verbose_help = "show third-party warnings (diffusers, transformers, torch), hidden by default"
    parser.add_argument("--verbose", action="store_true", help=verbose_help)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (training, mini_world, study, info):
        group.register(sub)
    for command in sub.choices.values():  # `superflow CMD --verbose` as well as `superflow --verbose CMD`
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        quiet_third_party()
    if getattr(args, "quiet", False):  # libraries' own bars too (loading a pipeline, writing weights)
        os.environ["TQDM_DISABLE"] = "1"
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        # Configuration and input errors carry their own explanation; a traceback buries it.
        print(f"superflow {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a lost mount: what failed is in the message, the traceback adds nothing
        print(f"superflow {args.command}: error: {err}", file=sys.stderr)
        return 1
    except Terminated:
        print(
            f"superflow {args.command}: stopped by SIGTERM; finished checkpoints and results are kept "
            "(rerun with --resume to continue a training run)",
            file=sys.stderr,
        )
        return 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
