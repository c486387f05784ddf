"""The offline tiny SD3 pipeline: deterministic, loadable, with working tokenizers."""

import torch
from diffusers import StableDiffusion3Pipeline

from superflow.models.tiny_sd3 import build_tiny_sd3_pipeline


def _images(pipe, seed=0):
    return pipe(
        prompt=["a red cube", "two blue dogs"], num_inference_steps=3, height=32, width=32, guidance_scale=4.5,
        generator=torch.Generator().manual_seed(seed), max_sequence_length=16, output_type="pt",
    ).images


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = build_tiny_sd3_pipeline(0), build_tiny_sd3_pipeline(0), build_tiny_sd3_pipeline(1)
    sa, sb, sc = (p.transformer.state_dict() for p in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)


def test_images_shape_range_and_determinism():
    pipe = build_tiny_sd3_pipeline(0)
    x, y = _images(pipe, 3), _images(pipe, 3)
    assert x.shape == (2, 3, 32, 32) and x.min() >= 0 and x.max() <= 1
    assert torch.equal(x, y)
    assert not torch.equal(x, _images(pipe, 4))


def test_tokenizers_are_not_degenerate():
    pipe = build_tiny_sd3_pipeline(0)
    for tok, encoder in ((pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_3, pipe.text_encoder_3)):
        a, b = tok("a red cube").input_ids, tok("two blue dogs").input_ids
        assert a != b and len(set(a)) > 2
        assert max(a + b) < encoder.config.vocab_size
    assert pipe.tokenizer.model_max_length == 77 and pipe.tokenizer_3.model_max_length == 256


def test_save_and_load_offline_round_trip(tiny_sd3_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = StableDiffusion3Pipeline.from_pretrained(tiny_sd3_dir, local_files_only=True)
    loaded.set_progress_bar_config(disable=True)
    built = build_tiny_sd3_pipeline(0)
    assert torch.equal(_images(loaded, 5), _images(built, 5))
    assert loaded.tokenizer("a red cube").input_ids == built.tokenizer("a red cube").input_ids
    assert loaded.tokenizer_3("a red cube").input_ids == built.tokenizer_3("a red cube").input_ids
