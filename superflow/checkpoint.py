"""Atomic, self-checking checkpoints and RNG capture, so a killed run resumes exactly where it stopped.

A checkpoint is a folder written under a temporary name and renamed into place only when it is
complete: a kill at any moment leaves either the previous checkpoint or the new one, never half of
one. Its ``meta.json`` records the size and SHA-256 of ``state.pt``, so damage that happens later
(a truncated copy, a disk error, a sync tool) is found before the state is trusted: a resume
skips a damaged checkpoint, says which file is wrong and why, and continues from the newest valid
one. The damaged folder is renamed to ``damaged_<name>`` rather than deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superflow.files import FileFormatError, read_json, torch_load

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "epoch_"
DAMAGED_PREFIX = "damaged_"
STATE_FILE = "state.pt"
META_FILE = "meta.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted; the message names the file and what is wrong with it."""


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(folder: Path, epoch: int, state: dict[str, Any], meta: dict[str, Any], keep_last: int = 2) -> Path:
    """Write ``state`` (torch-serialisable) and ``meta`` (JSON) as checkpoint ``epoch``.

    Keeps the newest ``keep_last`` checkpoints (all when ``keep_last`` <= 0). Checkpoints of later
    epochs belong to a run this one replaces (a run started over in the same folder): they go once
    this one is written, or they would outrank and prune it. A failed write (a full disk, a kill)
    leaves the earlier checkpoints as they were.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{CHECKPOINT_PREFIX}{epoch:06d}"
    tmp = folder / f".tmp_{final.name}_{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        with (tmp / STATE_FILE).open("wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        files = {STATE_FILE: {"bytes": (tmp / STATE_FILE).stat().st_size, "sha256": sha256_file(tmp / STATE_FILE)}}
        atomic_write_text(tmp / META_FILE, json.dumps({"epoch": epoch, **meta, "files": files}, indent=2))
        _fsync_dir(tmp)
    except BaseException as err:  # a full disk, a lost mount, a signal: leave no half-written folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):  # say which checkpoint, and that the others stand
            why = f"writing checkpoint {final} failed ({err.strerror or err}); the earlier checkpoints are kept"
            raise OSError(err.errno, why) from err
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(folder)
    found = list_checkpoints(folder)
    upto = found.index(final) + 1
    for replaced in found[upto:]:
        shutil.rmtree(replaced, ignore_errors=True)
    for old in found[:upto][:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoint folders, oldest first (valid or not: :func:`validate_checkpoint` tells)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        number = p.name[len(CHECKPOINT_PREFIX) :]
        if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and number.isdigit():
            found.append((int(number), p))
    return [p for _, p in sorted(found)]


def read_checkpoint_meta(path: Path) -> dict[str, Any]:
    """``meta.json`` of checkpoint ``path``; a missing or unreadable one raises naming the file."""
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        raise CheckpointError(f"{meta_path}: missing")
    try:
        meta = read_json(meta_path)
    except FileFormatError as err:
        raise CheckpointError(str(err)) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("epoch"), int):
        raise CheckpointError(f"{meta_path}: no integer 'epoch' key")
    return meta


def validate_checkpoint(path: Path) -> dict[str, Any]:
    """Check the metadata and the recorded size and hash of ``state.pt``; returns the metadata.

    Checkpoints written before sizes and hashes were recorded are checked only for presence.
    """
    path = Path(path)
    meta = read_checkpoint_meta(path)
    state_path = path / STATE_FILE
    if not state_path.is_file():
        raise CheckpointError(f"{state_path}: missing")
    expected = meta.get("files", {}).get(STATE_FILE)
    if expected is not None:
        size = state_path.stat().st_size
        if size != expected["bytes"]:
            raise CheckpointError(f"{state_path}: {size} bytes, its {META_FILE} records {expected['bytes']}")
        if sha256_file(state_path) != expected["sha256"]:
            raise CheckpointError(f"{state_path}: content differs from the SHA-256 its {META_FILE} records")
    return meta


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state, meta)`` of a checkpoint that passes :func:`validate_checkpoint`."""
    path = Path(path)
    meta = validate_checkpoint(path)
    try:
        state = torch_load(path / STATE_FILE, weights_only=False)
    except FileFormatError as err:
        raise CheckpointError(str(err)) from None
    return state, meta


def _set_aside(path: Path) -> Path:
    target, n = path.with_name(DAMAGED_PREFIX + path.name), 1
    while target.exists():
        target, n = path.with_name(f"{DAMAGED_PREFIX}{path.name}.{n}"), n + 1
    path.rename(target)
    return target


def load_newest_valid_checkpoint(folder: Path) -> tuple[dict[str, Any], dict[str, Any], Path] | None:
    """``(state, meta, path)`` of the newest checkpoint in ``folder`` that loads, None when there is none.

    Each damaged checkpoint newer than it is logged as a warning (file and reason) and renamed to
    ``damaged_<name>`` so the run's later saves do not count it; when checkpoints exist but none
    is valid, raises :class:`CheckpointError` listing every reason.
    """
    for leftover in Path(folder).glob(".tmp_*") if Path(folder).is_dir() else []:
        shutil.rmtree(leftover, ignore_errors=True)  # a write killed before its rename; never a checkpoint
    found = list_checkpoints(folder)
    problems = []
    for path in reversed(found):
        try:
            state, meta = load_checkpoint(path)
        except CheckpointError as err:
            problems.append(str(err))
            logger.warning("damaged checkpoint skipped: %s", err)
            continue
        for damaged in found[found.index(path) + 1 :]:
            _set_aside(damaged)
        if problems:
            logger.warning("resuming from the newest valid checkpoint, %s", path)
        return state, meta, path
    if problems:
        raise CheckpointError(
            f"no valid checkpoint in {folder} to resume from:\n  "
            + "\n  ".join(problems)
            + "\nmove the folder away (or drop --resume) to start over"
        )
    return None
