"""The paper-scale speed benchmark: its FLOP model against counted FLOPs, and its tiny CPU run."""

import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from paper_speed import SD35M_TRANSFORMER, main, per_image_flops, transformer_flops  # noqa: E402


def _counted_forward_flops(transformer, latent: int, text_tokens: int) -> int:
    cfg = transformer.config
    args = {
        "hidden_states": torch.randn(1, cfg.in_channels, latent, latent),
        "timestep": torch.tensor([500.0]),
        "encoder_hidden_states": torch.randn(1, text_tokens, cfg.joint_attention_dim),
        "pooled_projections": torch.randn(1, cfg.pooled_projection_dim),
    }
    # the math backend runs attention as matmuls, which the counter sees (fused CPU kernels it does not)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        transformer(**args)
    return counter.get_total_flops()


def test_the_flop_model_matches_counted_flops_of_the_sd35m_shaped_transformer():
    from diffusers import SD3Transformer2DModel

    with torch.device("meta"):  # shapes only: the 2.5B parameters are never allocated
        transformer = SD3Transformer2DModel(**SD35M_TRANSFORMER)
        counted = _counted_forward_flops(transformer, 64, 205)
    model = transformer_flops(SD35M_TRANSFORMER, 1024, 205)
    assert model == pytest.approx(2.219e12, rel=1e-3)  # the 2.23 TFLOP of the GPU notes, less the last text stream
    assert model == pytest.approx(counted, rel=0.01)  # embeddings and adaLN are the rest


def test_per_image_flops_add_up():
    f = 1.0
    assert per_image_flops(f, steps=10, trained_steps=9, kl=True) == {"sampling": 20.0, "training": 9 * 5.2}
    assert per_image_flops(f, steps=10, trained_steps=9, kl=False)["training"] == pytest.approx(9 * 3.2)


def test_tiny_cpu_run_times_our_sampler_and_training_step_and_writes_results(tmp_path):
    argv = ["--shape", "tiny", "--steps", "3", "--trained-steps", "2", "--sample-batch", "2"]
    argv += ["--micro-batches", "1", "2", "--repeats", "1", "--output-dir", str(tmp_path), "--name", "tiny"]
    assert main(argv) == 0
    frame = pd.read_csv(tmp_path / "tiny.csv")
    assert frame.phase.tolist() == ["sampling", "training", "training"] and frame.batch.tolist() == [2, 1, 2]
    assert (frame.seconds_per_image > 0).all() and (frame.images_per_second > 0).all()
    forward = frame.forward_tflop.iloc[0] * 1e12
    expected = per_image_flops(forward, steps=3, trained_steps=2, kl=True)
    assert frame.tflop_per_image.tolist() == pytest.approx(
        [expected["sampling"] / 1e12] + [expected["training"] / 1e12] * 2
    )
    assert frame.text_tokens.iloc[0] == 128 + 77 and frame.image_tokens.iloc[0] == 256
    text = (tmp_path / "tiny.md").read_text()
    assert "Formula: per block: 2*12*D^2*(Nx+Nc)" in text and (tmp_path / "tiny_environment.json").exists()
