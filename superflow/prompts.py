"""Prompt sets: plain text (one prompt per line) or JSON lines with a ``prompt`` field.

JSON lines keep the rest of each record as metadata (GenEval's ``tag``/``include``/``exclude``),
which the reward receives alongside the prompt. A malformed file is reported with its path and line
number rather than skipped, so a broken prompt set cannot silently shrink a benchmark.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


class PromptFileError(ValueError):
    """A prompt file is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class PromptSet:
    prompts: list[str]
    metadata: list[dict] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.prompts)

    def unique(self) -> PromptSet:
        """The set without repeated prompts (the first occurrence keeps its metadata)."""
        first: dict[str, int] = {}
        for i, p in enumerate(self.prompts):
            first.setdefault(p, i)
        idx = list(first.values())
        return PromptSet([self.prompts[i] for i in idx], [self.metadata[i] for i in idx], self.source)

    def tags(self, needed_by: str) -> list[str]:
        """Every prompt's metadata ``tag``; a prompt without one is an error naming ``needed_by``."""
        tags = [m.get("tag") for m in self.metadata]
        if None in tags:
            line = tags.index(None) + 1
            raise ValueError(
                f"{needed_by} needs a 'tag' in every training prompt's metadata; "
                f"{self.source} prompt {line} ({self.prompts[line - 1]!r}) has none"
            )
        return tags

    def tag_of(self) -> dict[str, str]:
        """Prompt -> its metadata ``tag`` ("" for a prompt without one)."""
        return {p: m.get("tag", "") for p, m in zip(self.prompts, self.metadata)}

    def head(self, n: int) -> PromptSet:
        """The first ``n`` prompts."""
        return PromptSet(self.prompts[:n], self.metadata[:n], self.source)


def load_prompts(path: str | Path) -> PromptSet:
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"prompt file not found: {path}")
    prompts: list[str] = []
    metadata: list[dict] = []
    is_jsonl = path.suffix in (".jsonl", ".json")
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
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
    if not prompts:
        raise PromptFileError(f"{path}: no prompts found")
    return PromptSet(prompts=prompts, metadata=metadata, source=str(path))


def load_training_prompts(path: str | Path | None, given: PromptSet | None = None) -> PromptSet:
    """The distinct training prompts: ``given``, else the file at ``path`` (``data.train_prompts``)."""
    if given is None:
        if not path:
            raise ValueError("no training prompts: set data.train_prompts")
        given = load_prompts(path)
    return given.unique()
