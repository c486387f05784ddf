"""Finding model weights on disk, never downloading them.

Order: an explicit path from the config, then an environment variable, then the Hugging Face
cache (offline lookup only). Every miss is reported with the places searched and what to obtain,
because a silent fallback (or a hub download that hangs for minutes) is the failure users of the
reference implementations hit most.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class WeightsNotFoundError(FileNotFoundError):
    """Weights a component needs are not on this machine."""


@dataclass(frozen=True)
class WeightSpec:
    """Where one component's weights may be and how to recognise them."""

    component: str  # e.g. "SD3.5-Medium"
    config_key: str  # e.g. "model.path"
    env_var: str | None  # e.g. "SUPERFLOW_SD3_PATH"
    repo_id: str | None  # Hugging Face repo id looked up in the local cache only
    required_files: Sequence[str]  # relative paths that must exist in the folder
    how_to_obtain: str


def _hf_cache_snapshot(repo_id: str) -> tuple[Path | None, str]:
    try:
        from huggingface_hub import constants, snapshot_download
    except ImportError:  # pragma: no cover - huggingface_hub ships with diffusers
        return None, "huggingface_hub not installed"
    cache = Path(constants.HF_HUB_CACHE)
    try:
        path = snapshot_download(repo_id, local_files_only=True)
    except Exception:  # any miss: not cached, partial snapshot, offline error
        return None, f"Hugging Face cache {cache} (no snapshot of {repo_id!r})"
    return Path(path), f"Hugging Face cache {cache}"


def _missing(folder: Path, required: Sequence[str]) -> list[str]:
    return [f for f in required if not (folder / f).exists()]


def resolve_weights(spec: WeightSpec, explicit: str | os.PathLike | None) -> Path:
    """Return the folder holding ``spec``'s weights or raise :class:`WeightsNotFoundError`.

    ``explicit`` may be a folder or, when it is not one, a Hugging Face repo id to look up in
    the cache.
    """
    searched: list[str] = []
    candidates: list[tuple[str, Path]] = []
    repo_ids: list[str] = []
    sources = [(spec.config_key, str(explicit) if explicit else None)]
    if spec.env_var:
        sources.append((f"${spec.env_var}", os.environ.get(spec.env_var)))
    for label, value in sources:
        if not value:
            if label.startswith("$"):
                searched.append(f"{label} (unset)")
            continue
        p = Path(value).expanduser()
        if p.exists():
            candidates.append((f"{label}={value}", p))
            continue
        searched.append(f"{label}={value!r} (no such folder)")
        if label == spec.config_key and value.count("/") == 1 and not value.startswith((".", "/", "~")):
            repo_ids.append(value)
    if spec.repo_id and not explicit:  # an explicit choice never falls back to another model
        repo_ids.append(spec.repo_id)
    for label, folder in candidates:
        missing = _missing(folder, spec.required_files)
        if not missing:
            return folder
        searched.append(f"{label} (missing {', '.join(missing)})")
    for repo_id in repo_ids:
        folder, label = _hf_cache_snapshot(repo_id)
        if folder is not None:
            missing = _missing(folder, spec.required_files)
            if not missing:
                return folder
            label = f"{label}, snapshot {folder} (missing {', '.join(missing)})"
        searched.append(label)
    raise WeightsNotFoundError(
        f"{spec.component} weights not found. Searched: " + "; ".join(searched) + f". {spec.how_to_obtain}"
    )


SD3_WEIGHTS = WeightSpec(
    component="SD3 pipeline",
    config_key="model.path",
    env_var="SUPERFLOW_SD3_PATH",
    repo_id="stabilityai/stable-diffusion-3.5-medium",
    required_files=("model_index.json", "transformer/config.json", "vae/config.json", "scheduler"),
    how_to_obtain=(
        "Obtain them on a machine with internet access: accept the licence of "
        "stabilityai/stable-diffusion-3.5-medium on huggingface.co, run "
        "`huggingface-cli download stabilityai/stable-diffusion-3.5-medium --local-dir DIR`, copy DIR here "
        "and set model.path (or SUPERFLOW_SD3_PATH) to it. For an offline smoke test, "
        "`superflow tiny-sd3 DIR` writes a tiny random SD3 pipeline."
    ),
)


def save_weights_folder(state_dict: dict, config: dict, path: str | os.PathLike) -> Path:
    """Write ``model.pt`` and ``config.json`` atomically: the folder format of our in-house models."""
    import json

    from superflow.checkpoint import atomic_torch_save, atomic_write_text

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(state_dict, path / "model.pt")
    atomic_write_text(path / "config.json", json.dumps(config, indent=1))
    return path


def load_weights_folder(spec: WeightSpec, explicit: str | os.PathLike | None) -> tuple[dict, dict]:
    """Find a folder written by :func:`save_weights_folder` and return ``(config, state_dict)``."""
    from superflow.files import read_json, torch_load

    folder = resolve_weights(spec, explicit)
    return read_json(folder / "config.json"), torch_load(folder / "model.pt", weights_only=True)
