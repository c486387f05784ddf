"""model.adapter_path: a finished run's exported weights load back into the same policy."""

import pytest
import torch

from superflow.config import load_config
from superflow.models import build_policy


def _config(tiny_sd3_dir, **extra):
    sets = [
        f"model.path={tiny_sd3_dir}",
        "model.resolution=32",
        "model.lora_rank=4",
        "model.lora_alpha=8",
        "model.max_sequence_length=16",
        "model.device=cpu",
        *[f"{k}={v}" for k, v in extra.items()],
    ]
    return load_config("preset:tiny_sd3_demo", sets)


def test_sd3_lora_export_loads_back_exactly(tiny_sd3_dir, tmp_path):
    trained = build_policy(_config(tiny_sd3_dir))
    with torch.no_grad():
        for i, p in enumerate(trained.trainable_parameters()):
            p.add_(0.01 * (i + 1))
    trained.save_pretrained(tmp_path / "lora")
    fresh = build_policy(_config(tiny_sd3_dir))
    loaded = build_policy(_config(tiny_sd3_dir, **{"model.adapter_path": tmp_path / "lora"}))
    pairs = list(zip(trained.trainable_parameters(), loaded.trainable_parameters(), fresh.trainable_parameters()))
    assert pairs
    for want, got, _ in pairs:
        assert torch.equal(want, got)
    assert any(not torch.equal(want, untouched) for want, _, untouched in pairs)


def test_missing_adapter_names_the_file(tiny_sd3_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="pytorch_lora_weights.safetensors"):
        build_policy(_config(tiny_sd3_dir, **{"model.adapter_path": tmp_path / "nothing"}))
