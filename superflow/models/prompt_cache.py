"""Prompt embeddings computed once and kept on disk, so the text encoders can leave the GPU.

SD3.5's three text encoders hold about 11 GB and would encode every prompt twice an epoch (for
sampling, then for training). A cache folder holds one file per prompt (its embeddings, as the
model's dtype) and ``fingerprint.json``, which says which text encoders and settings made them: a
cache made by other encoders is refused with both fingerprints in the message, never silently used.
One file per prompt, read on demand, because a whole training set's embeddings (205 x 4096 per
prompt, 1.6 MB in bf16) can outgrow memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from superflow.checkpoint import atomic_torch_save, atomic_write_text
from superflow.files import read_json, torch_load


def module_fingerprint(module: torch.nn.Module) -> str:
    """A digest of a module's config (when it has one), parameter shapes and a sample of its weights."""
    digest = hashlib.sha256()
    config = getattr(module, "config", None)
    if config is not None:
        items = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        items = {k: v for k, v in items.items() if not k.startswith("_") and k not in ("torch_dtype", "dtype")}
        digest.update(json.dumps(items, sort_keys=True, default=str).encode())
    for name, param in module.state_dict().items():
        digest.update(f"{name}{tuple(param.shape)}".encode())
        sample = param.detach().flatten()[:256].float().cpu().numpy()  # a few values tell checkpoints apart
        digest.update(sample.tobytes())
    return digest.hexdigest()


class PromptEmbeddingCache:
    """Embeddings of single prompts (dicts of tensors) under ``folder``, for one ``fingerprint``."""

    def __init__(self, folder: str | Path, fingerprint: dict):
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        marker = self.folder / "fingerprint.json"
        if marker.exists():
            found = read_json(marker)
            if found != fingerprint:
                raise ValueError(
                    f"prompt embedding cache {self.folder} was made by other text encoders or settings: "
                    f"it holds {found}, this model needs {fingerprint}; point model.prompt_cache at another "
                    "folder (or delete this one)"
                )
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(marker, json.dumps(fingerprint, indent=1, sort_keys=True))

    def path(self, prompt: str) -> Path:
        return self.folder / f"{hashlib.sha256(prompt.encode()).hexdigest()[:32]}.pt"

    def missing(self, prompts: Sequence[str]) -> list[str]:
        return [p for p in dict.fromkeys(prompts) if not self.path(p).exists()]

    def put(self, prompt: str, tensors: dict[str, torch.Tensor]) -> None:
        tensors = {k: v.detach().cpu().clone() for k, v in tensors.items()}
        atomic_torch_save({"prompt": prompt, **tensors}, self.path(prompt))

    def get(self, prompt: str) -> dict[str, torch.Tensor]:
        saved = torch_load(self.path(prompt), weights_only=True)
        if saved.pop("prompt") != prompt:  # a hash collision, vanishingly unlikely, but never silent
            raise ValueError(f"{self.path(prompt)}: holds another prompt's embeddings")
        return saved
