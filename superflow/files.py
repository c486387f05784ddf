"""Reading the project's JSON, JSON-lines and YAML files with errors that name the file and line.

A parser's own message ("Extra data: line 6 column 2") does not say which of a study's hundred
files is damaged; these readers put the path (and, for JSON lines, the line number) first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


class FileFormatError(ValueError):
    """A file that exists but cannot be read as what it should be; the message starts with its path."""


def read_text(path: str | Path) -> str:
    """UTF-8 text (a byte-order mark is dropped); a missing file raises FileNotFoundError naming it."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise FileFormatError(f"{path}, line {line}: not UTF-8 (byte {err.object[err.start]:#04x})") from None


def _invalid_json(path: Path, line: int, err: json.JSONDecodeError) -> FileFormatError:
    return FileFormatError(f"{path}, line {line}: not valid JSON ({err.msg}, column {err.colno})")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise _invalid_json(path, err.lineno, err) from None


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """One JSON object per non-empty line."""
    path = Path(path)
    rows = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise _invalid_json(path, number, err) from None
        if not isinstance(row, dict):
            raise FileFormatError(f"{path}, line {number}: a JSON object expected, got {type(row).__name__}")
        rows.append(row)
    return rows


def torch_load(path: str | Path, weights_only: bool = True) -> Any:
    """``torch.load`` onto the CPU; a truncated or foreign file raises naming it."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as err:  # torch raises OSError, RuntimeError, EOFError or pickle errors for a damaged file
        raise FileFormatError(f"{path}: cannot be read by torch.load ({type(err).__name__}: {err})") from None


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        return yaml.safe_load(read_text(path))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise FileFormatError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', None) or err})") from None
