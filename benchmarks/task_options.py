"""The benchmarks' per-task config overrides on the command line (``--task-set TASK KEY=VALUE ...``)."""

from __future__ import annotations

import argparse


def add_task_set_option(parser: argparse.ArgumentParser, applies_to: str) -> None:
    """``--task-set TASK KEY=VALUE ...``, repeatable: overrides for one task after ``--set``, e.g. its own base."""
    parser.add_argument(
        "--task-set",
        nargs="+",
        action="append",
        default=[],
        metavar="TASK KEY=VALUE",
        help=f"overrides for {applies_to}, after --set (repeatable; e.g. its own base model)",
    )
