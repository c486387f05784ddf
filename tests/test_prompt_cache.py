"""Prompt embeddings cached on disk: the text encoders' numbers, refused for other encoders.

Equal up to rounding, not bit for bit: a batched CLIP projection rounds differently with the batch
around a prompt (4.8e-7 measured on the tiny CLIP), and the cache embeds prompts in its own batches.
"""

import pytest
import torch
from helpers import PROMPTS, tiny_config

from superflow.models.sd3 import SD3Policy
from superflow.models.tiny_sd3 import build_tiny_sd3_pipeline
from superflow.train import Trainer


def _policy(cache=None, seed=0):
    return SD3Policy(
        pipeline=build_tiny_sd3_pipeline(seed),
        resolution=32,
        lora_rank=4,
        lora_alpha=8,
        device="cpu",
        prompt_cache=cache,
    )


def test_cached_embeddings_equal_the_encoders_and_are_read_back_without_them(tmp_path):
    direct = _policy().encode_prompts(PROMPTS[:3])
    cached_policy = _policy(tmp_path / "cache")
    cached_policy.prepare_prompts(PROMPTS[:3])
    assert cached_policy._encoder_device == torch.device("cpu")
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 4  # three prompts and the empty (unconditional) one

    again = _policy(tmp_path / "cache")

    def no_encoders(prompts):
        raise AssertionError(f"the text encoders ran for {prompts}")

    again._run_text_encoders = no_encoders
    for policy in (cached_policy, again):
        got = policy.encode_prompts(PROMPTS[:3])
        for key in ("embeds", "pooled"):
            torch.testing.assert_close(got.tensors[key], direct.tensors[key], rtol=0, atol=2e-6)


def test_a_cache_made_by_other_text_encoders_is_refused(tmp_path):
    _policy(tmp_path / "cache", seed=0)
    with pytest.raises(ValueError, match=r"prompt embedding cache .*cache was made by other text encoders"):
        _policy(tmp_path / "cache", seed=1)


def test_a_run_with_the_cache_equals_a_run_without(tiny_sd3_dir, tmp_path):
    runs = []
    for name, extra in (("plain", {}), ("cached", {"model.prompt_cache": str(tmp_path / "cache")})):
        cfg = tiny_config(tiny_sd3_dir, tmp_path / name, num_epochs=1, **extra)
        runs.append(Trainer(cfg, progress=False).run()[0])
    plain, cached = runs
    assert plain["group_sizes"] == cached["group_sizes"] and plain["trained_samples"] == cached["trained_samples"]
    for key in ("reward_mean", "reward_std", "policy_loss", "kl"):
        assert cached[key] == pytest.approx(plain[key], rel=1e-4, abs=1e-6), key
    assert len(list((tmp_path / "cache").glob("*.pt"))) == len(PROMPTS) + 1
