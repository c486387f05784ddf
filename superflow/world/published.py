"""Published mini-world bases: pretrained MiniFlows and the preference model, shipped with the
repository so that the study starts from them as the paper's starts from SD3.5-M and PickScore.

A published folder holds one subfolder per base (``miniflow``, ``miniflow_signs_in_order``,
``preference``, as under a study's ``runs``) and ``manifest.json``: for each base the settings it was
made with (the world's and its pretraining's) and each file's sha256. The workflow installs a base
only where those settings equal the study's own and pretrains it otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from superflow.checkpoint import atomic_write_text, sha256_file
from superflow.files import read_json
from superflow.run_logging import cpu_name

MANIFEST = "manifest.json"


def publish(sources: Mapping[str, Path], settings: Mapping[str, dict[str, Any]], output: Path) -> Path:
    """Copy each base folder of ``sources`` (name -> folder) under ``output`` and write the manifest.

    ``settings`` gives each name's settings, the values a study's config must match to use it.
    """
    import torch

    import superflow

    missing = sorted(set(sources) - set(settings))
    if missing:
        raise ValueError(f"no settings given for the bases {missing}")
    output = Path(output)
    entries = {}
    for name, source in sources.items():
        source = Path(source)
        files = sorted(p for p in source.rglob("*") if p.is_file())
        if not files:
            raise FileNotFoundError(f"base {name!r}: no files under {source}")
        destination = output / name
        if destination.exists():
            shutil.rmtree(destination)
        for path in files:
            target = destination / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        entries[name] = {
            "settings": dict(settings[name]),
            "files": {str(p.relative_to(source)): sha256_file(p) for p in files},
        }
    manifest = {
        "bases": entries,
        "made_on": {
            "cpu": cpu_name(),
            "torch": torch.__version__,
            "superflow": superflow.__version__,
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
        },
    }
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return output / MANIFEST


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    manifest = read_json(path)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("bases"), dict):
        raise ValueError(f"{path}: not a published-bases manifest (no 'bases' mapping)")
    return manifest


def install(folder: Path, name: str, destination: Path) -> Path:
    """Copy published base ``name`` to ``destination`` after checking every file's sha256.

    The copy lands under a temporary name first, so an interrupted install leaves no half base.
    """
    folder, destination = Path(folder), Path(destination)
    published = read_manifest(folder)["bases"]
    entry = published.get(name)
    if entry is None:
        raise ValueError(f"{folder / MANIFEST}: no base {name!r} (published: {', '.join(published)})")
    source = folder / name
    for relative, expected in entry["files"].items():
        path = source / relative
        if not path.is_file():
            raise FileNotFoundError(f"published base {name!r}: {path} is missing (listed in {folder / MANIFEST})")
        if sha256_file(path) != expected:
            raise ValueError(
                f"published base {name!r}: {path} does not match its sha256 in {folder / MANIFEST} "
                "(a Git LFS pointer, a partial checkout or an edited file)"
            )
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        for relative in entry["files"]:
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / relative, target)
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(staging, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination
