"""Prompt sets: plain text (one prompt per line) or JSON lines with a ``prompt`` field.

JSON lines keep the rest of each record as metadata (GenEval's ``tag``/``include``/``exclude``),
which the reward receives alongside the prompt. A malformed file is reported with its path and line
number rather than skipped, so a broken prompt set cannot silently shrink a benchmark.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from superflow.files import FileFormatError, read_text


class PromptFileError(ValueError):
    """A prompt file is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class PromptSet:
    prompts: list[str]
    metadata: list[dict] = field(default_factory=list)
    source: str = ""
    #: Each prompt's line in ``source`` (empty for a set built in memory: then its 1-based index).
    lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.prompts)

    def unique(self) -> PromptSet:
        """The set without repeated prompts (the first occurrence keeps its metadata)."""
        first: dict[str, int] = {}
        for i, p in enumerate(self.prompts):
            first.setdefault(p, i)
        return self._subset(list(first.values()))

    def _subset(self, idx: list[int]) -> PromptSet:
        lines = [self.lines[i] for i in idx] if self.lines else [i + 1 for i in idx]
        return PromptSet([self.prompts[i] for i in idx], [self.metadata[i] for i in idx], self.source, lines)

    def line_of(self, index: int) -> int:
        """The source line of prompt ``index`` (its 1-based index for a set built in memory)."""
        return self.lines[index] if self.lines else index + 1

    def require_metadata(self, keys: Sequence[str], needed_by: str) -> None:
        """Every prompt's metadata has ``keys``; the first that lacks one is an error naming file, line and key."""
        for i, meta in enumerate(self.metadata):
            missing = [k for k in keys if k not in meta]
            if missing:
                raise PromptFileError(
                    f"{self.source or 'prompt set'}:{self.line_of(i)}: metadata has no key {missing[0]!r}, "
                    f"which {needed_by} needs (prompt {self.prompts[i]!r})"
                )

    def tags(self, needed_by: str) -> list[str]:
        """Every prompt's metadata ``tag``; a prompt without one is an error naming ``needed_by``."""
        self.require_metadata(["tag"], needed_by)
        return [m["tag"] for m in self.metadata]

    def tag_of(self) -> dict[str, str]:
        """Prompt -> its metadata ``tag`` ("" for a prompt without one)."""
        return {p: m.get("tag", "") for p, m in zip(self.prompts, self.metadata)}

    def head(self, n: int) -> PromptSet:
        """The first ``n`` prompts."""
        return self._subset(list(range(min(n, len(self.prompts)))))


def load_prompts(path: str | Path) -> PromptSet:
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"prompt file not found: {path}")
    prompts: list[str] = []
    metadata: list[dict] = []
    numbers: list[int] = []
    is_jsonl = path.suffix in (".jsonl", ".json")
    try:
        lines = read_text(path).split("\n")  # a byte-order mark and CRLF line ends are accepted
    except FileFormatError as err:
        raise PromptFileError(str(err)) from None
    for lineno, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        if is_jsonl:
            try:
                record = json.loads(text)
            except json.JSONDecodeError as err:
                raise PromptFileError(f"{path}:{lineno}: invalid JSON ({err.msg} at column {err.colno})") from None
            if (
                not isinstance(record, dict)
                or not isinstance(record.get("prompt"), str)
                or not record["prompt"].strip()
            ):
                raise PromptFileError(f"{path}:{lineno}: each JSON line needs a non-empty string field 'prompt'")
            prompt = record.pop("prompt").strip()
            metadata.append(record)
        else:
            prompt = text
            metadata.append({})
        prompts.append(prompt)
        numbers.append(lineno)
    if not prompts:
        raise PromptFileError(f"{path}: no prompts found")
    return PromptSet(prompts=prompts, metadata=metadata, source=str(path), lines=numbers)


def load_training_prompts(path: str | Path | None, given: PromptSet | None = None) -> PromptSet:
    """The distinct training prompts: ``given``, else the file at ``path`` (``data.train_prompts``)."""
    if given is None:
        if not path:
            raise ValueError("no training prompts: set data.train_prompts")
        given = load_prompts(path)
    return given.unique()
