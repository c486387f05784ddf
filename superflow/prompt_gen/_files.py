"""Writing a generated training prompt file, shared by the per-task generators."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def refuse_overwriting_test(output: Path, test: Path) -> None:
    if output.exists() and test.exists() and output.resolve() == test.resolve():
        raise ValueError(f"--output {output} is the test file; write the training set elsewhere")


def write_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # "\n" on every platform, so the files' bytes (and sha256) do not depend on the OS.
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line + "\n")
