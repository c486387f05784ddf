"""Paper-scale speed and memory: an SD3.5-M-shaped model with random weights, timed in the trainer's own code.

    python benchmarks/paper_speed.py                         # SD3.5-M shape on the GPU, bf16
    python benchmarks/paper_speed.py --shape tiny --name paper_speed_tiny_cpu   # the tiny SD3, CPU (tested)

What is built, with no download: ``SD3Transformer2DModel`` from SD3.5-Medium's transformer config
numbers (``SD35M_TRANSFORMER`` below), a VAE of SD3's decoder shape, the preset's LoRA (rank 32 on
``SD3_LORA_TARGETS``), and random prompt embeddings of the real shapes (T5 at
``max_sequence_length`` tokens + 2 x 77 CLIP tokens joined to 77, i.e. 205 x 4096, pooled 2048) in
place of the three text encoders. What is timed is our own code: ``sample_trajectories`` (10 SDE
steps with CFG, the VAE decode) and one training step as ``Trainer._step_loss`` computes it
(``step_log_prob`` with the unconditional half under no_grad, the clipped loss, the KL reference
forward with the adapter disabled, the backward), per micro-batch and trained step.

FLOPs are counted analytically (``transformer_flops``: the formula is printed) and cross-checked
against ``torch.utils.flop_counter`` on the tiny shape in the tests. Model-FLOPs utilisation is
the training step's FLOPs / its time / the device's dense bf16 peak (``--peak-tflops``; H100 and
H200 SXM: 989). Peak memory is ``torch.cuda.max_memory_allocated`` (GPU only). The micro-batch
sweep runs until out of memory and reports the largest micro-batch whose peak fits 80 GB and
141 GB. Writes results/benchmarks/NAME.csv, NAME.md, NAME_environment.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from superflow.cli import quiet_third_party
from superflow.reporting.markdown import to_markdown

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe_machine

#: SD3.5-Medium's transformer config (stabilityai/stable-diffusion-3.5-medium, transformer/config.json).
SD35M_TRANSFORMER = {
    "sample_size": 128,
    "patch_size": 2,
    "in_channels": 16,
    "num_layers": 24,
    "attention_head_dim": 64,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "caption_projection_dim": 1536,
    "pooled_projection_dim": 2048,
    "out_channels": 16,
    "pos_embed_max_size": 384,
    "dual_attention_layers": tuple(range(13)),
    "qk_norm": "rms_norm",
}
#: SD3's VAE (the decoder is what RL runs), vae/config.json of the same repository.
SD3_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 16,
    "norm_num_groups": 32,
    "sample_size": 1024,
    "scaling_factor": 1.5305,
    "shift_factor": 0.0609,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
}
CLIP_TOKENS = 77
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
MEMORY_BUDGETS_GB = (80, 141)

FORMULA = (
    "per block: 2*12*D^2*(Nx+Nc) [qkv, out, MLP x4 of both streams] + 4*(Nx+Nc)^2*D [joint attention]; "
    "dual-attention blocks add 2*4*D^2*Nx + 4*Nx^2*D; the last block's text stream lacks out and MLP "
    "(-2*9*D^2*Nc); D = heads*head_dim, Nx = (latent/patch)^2, "
    "Nc = T5 tokens + 77 CLIP tokens. Per image: sampling = steps*2*F (CFG); a trained step = 2F forward "
    "(conditional with grad, unconditional without) + 1.2F backward (activation gradients of the "
    "conditional half; frozen base) + 2F KL reference when beta > 0"
)


def transformer_flops(cfg: dict, image_tokens: int, text_tokens: int) -> float:
    """FLOPs of one sample's transformer forward (multiply-add = 2 FLOPs; embeddings and adaLN ignored)."""
    d = cfg["attention_head_dim"] * cfg["num_attention_heads"]
    n = image_tokens + text_tokens
    per_block = 2 * 12 * d * d * n + 4 * n * n * d
    dual = 2 * 4 * d * d * image_tokens + 4 * image_tokens * image_tokens * d
    last_text_stream = 2 * 9 * d * d * text_tokens  # the last block's text stream stops after its qkv
    return cfg["num_layers"] * per_block + len(cfg.get("dual_attention_layers", ())) * dual - last_text_stream


def per_image_flops(forward: float, steps: int, trained_steps: int, kl: bool) -> dict[str, float]:
    sampling = steps * 2 * forward
    training = trained_steps * (2 * forward + 1.2 * forward + (2 * forward if kl else 0.0))
    return {"sampling": sampling, "training": training}


def vae_decode_flops(latent: int = 64) -> float:
    """FLOPs of one SD3 VAE decode at ``latent`` x ``latent`` (512 px: 64), counted on the meta device."""
    from diffusers import AutoencoderKL
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        vae = AutoencoderKL(**SD3_VAE)
        with FlopCounterMode(display=False) as counter:
            vae.decode(torch.randn(1, SD3_VAE["latent_channels"], latent, latent))
    return float(counter.get_total_flops())


#: (name, GPUs, memory GB) of the set-ups the README's plan covers; H100 and H200 share the dense bf16 peak.
HARDWARE = (("1x H100 80GB", 1, 80), ("1x H200 141GB", 1, 141), ("8x H100/H200", 8, 80))
ASSUMED_MFU = 0.45
#: Activation memory kept for the backward, in bf16 D-vectors per token per block (an assumption of
#: the GPU notes in shared/reference/peers/gpu-efficiency.md, to be replaced by the measured peak).
ASSUMED_VECTORS_PER_TOKEN_BLOCK = 25
TEXT_ENCODERS_GB = 11.0  # CLIP-L, CLIP-G and T5-XXL in bf16


def derived_memory_gb(cfg, image_tokens: int, text_tokens: int, latent: int, text_encoders: bool, gpus: int) -> float:
    """A rough peak of one training micro-batch: weights, this GPU's trajectories, LoRA state and activations."""
    d = SD35M_TRANSFORMER["attention_head_dim"] * SD35M_TRANSFORMER["num_attention_heads"]
    weights = 2.47e9 * 2  # SD3.5-M transformer parameters in bf16
    images = cfg.sample.prompts_per_epoch * cfg.sample.group_size / gpus
    trajectories = images * (cfg.sample.num_steps + 1) * SD35M_TRANSFORMER["in_channels"] * latent * latent * 4
    activations = (
        cfg.train.micro_batch_size  # the conditional half only: the unconditional one runs without gradients
        * (image_tokens + text_tokens)
        * SD35M_TRANSFORMER["num_layers"]
        * ASSUMED_VECTORS_PER_TOKEN_BLOCK
        * d
        * 2
    )
    lora_state = 0.4e9
    total = weights + trajectories + activations + lora_state
    return total / 2**30 + (TEXT_ENCODERS_GB if text_encoders else 0.0)


def derived_plan(presets=("sd35m_geneval", "sd35m_ocr", "sd35m_pickscore")) -> pd.DataFrame:
    """Seconds per epoch and GPU-hours per run of each paper preset, from the FLOP model alone.

    Training FLOPs assume every sampled image trains (tied groups that Flow-GRPO skips make it
    less); rewards and evaluation are not included; the MFU is an assumption until measured.
    """
    from superflow.config import load_config

    vae = vae_decode_flops()
    rows = []
    for preset in presets:
        cfg = load_config(f"preset:{preset}")
        text_tokens = cfg.model.max_sequence_length + CLIP_TOKENS
        image_tokens = (cfg.model.resolution // 8 // SD35M_TRANSFORMER["patch_size"]) ** 2
        forward = transformer_flops(SD35M_TRANSFORMER, image_tokens, text_tokens)
        per_image = per_image_flops(forward, cfg.sample.num_steps, cfg.num_train_steps, cfg.train.beta > 0)
        images = cfg.sample.prompts_per_epoch * cfg.sample.group_size
        epoch = images * (per_image["sampling"] + per_image["training"] + vae)
        latent = cfg.model.resolution // 8
        for hardware, gpus, _ in HARDWARE:
            memory = derived_memory_gb(cfg, image_tokens, text_tokens, latent, text_encoders=True, gpus=gpus)
            cached = derived_memory_gb(cfg, image_tokens, text_tokens, latent, text_encoders=False, gpus=gpus)
            seconds = epoch / (gpus * PEAK_TFLOPS["H200"] * 1e12 * ASSUMED_MFU)
            rows.append(
                {
                    "preset": preset,
                    "hardware": hardware,
                    "images_per_epoch": images,
                    "epoch_pflop": epoch / 1e15,
                    "seconds_per_epoch": seconds,
                    "gpu_hours_per_run": seconds * gpus * cfg.num_epochs / 3600,
                    "wall_hours_per_run": seconds * cfg.num_epochs / 3600,
                    "micro_batch": cfg.train.micro_batch_size,
                    "peak_memory_gib": memory,
                    "peak_memory_gib_prompt_cache": cached,
                    "source": f"derived: FLOP model at {ASSUMED_MFU:.0%} MFU of {PEAK_TFLOPS['H200']:.0f} TFLOPS; "
                    f"memory at {ASSUMED_VECTORS_PER_TOKEN_BLOCK} bf16 vectors per token and block",
                }
            )
    return pd.DataFrame(rows)


def build_policy(shape: str, dtype: torch.dtype, device: str, text_tokens: int, lora_rank: int, **options):
    """Our SD3Policy around a random transformer and VAE of ``shape`` with random prompt embeddings."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )

    from superflow.models.base import Conditioning
    from superflow.models.sd3 import SD3Policy

    if shape == "sd35m":
        transformer_cfg, vae_cfg, resolution = dict(SD35M_TRANSFORMER), dict(SD3_VAE), 512
        transformer = SD3Transformer2DModel(**transformer_cfg)
        vae = AutoencoderKL(**vae_cfg)
    else:
        from superflow.models.tiny_sd3 import build_tiny_sd3_pipeline

        tiny = build_tiny_sd3_pipeline(seed=0)
        transformer, vae, resolution = tiny.transformer, tiny.vae, 32
        transformer_cfg = {k: transformer.config[k] for k in SD35M_TRANSFORMER if k in transformer.config}
    if transformer.dtype != dtype:
        transformer = transformer.to(dtype)
    pipeline = StableDiffusion3Pipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=None,
        tokenizer_2=None,
        text_encoder_3=None,
        tokenizer_3=None,
    )
    joint, pooled = transformer.config.joint_attention_dim, transformer.config.pooled_projection_dim

    class RandomEmbeddingPolicy(SD3Policy):
        """Prompt embeddings of the real shapes, random, in place of the (11 GB) text encoders."""

        def _encode(self, prompts):
            gen = torch.Generator().manual_seed(len(prompts))
            embeds = torch.randn(len(prompts), text_tokens, joint, generator=gen)
            return Conditioning(
                {
                    "embeds": embeds.to(self.device, self.dtype),
                    "pooled": torch.randn(len(prompts), pooled, generator=gen).to(self.device, self.dtype),
                }
            )

    dtype_name = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]
    policy = RandomEmbeddingPolicy(
        pipeline=pipeline,
        resolution=resolution,
        lora_rank=lora_rank,
        lora_alpha=2 * lora_rank,
        dtype=dtype_name,
        device=device,
        **options,
    )
    return policy, transformer_cfg


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_gb(device: str) -> float:
    """GPU: the peak since the last reset. CPU has no such counter: the process's high-water mark so far."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kilobytes on Linux


def _reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def time_sampling(policy, batch: int, steps: int, guidance: float, noise_level: float, device: str, repeats: int):
    from superflow.flow.sampler import sample_trajectories
    from superflow.seeding import noise_generators

    cond = policy.encode_prompts(["x"] * batch)
    seconds = []
    for r in range(repeats + 1):  # the first call is warm-up
        _reset_peak(device)
        _sync(device)
        start = time.perf_counter()
        with torch.no_grad():
            traj = sample_trajectories(
                policy,
                cond,
                noise_generators(0, r, 1, batch),
                num_steps=steps,
                guidance_scale=guidance,
                noise_level=noise_level,
            )
            policy.decode(traj.final)
        _sync(device)
        seconds.append(time.perf_counter() - start)
    return traj, cond, min(seconds[1:]), _peak_gb(device)


def time_training_step(
    policy, traj, cond, micro: int, trained_steps: int, guidance: float, noise_level: float, beta: float, device: str
):
    """Seconds and peak memory of the trainer's loss and backward over ``trained_steps`` steps of ``micro`` images."""
    from superflow.flow.sampler import step_log_prob
    from superflow.rl.loss import clipped_policy_loss, kl_to_reference

    rows = torch.arange(micro) % len(traj.states)
    sub, sub_cond = traj.index(rows.to(traj.states.device)), cond.index(rows)
    adv = torch.linspace(-1, 1, micro, device=policy.device)
    params = policy.trainable_parameters()
    kwargs = {"guidance_scale": guidance, "noise_level": noise_level}
    _reset_peak(device)
    _sync(device)
    start = time.perf_counter()
    for j in range(trained_steps):
        step = step_log_prob(policy, sub, j, sub_cond, **kwargs)
        loss, _ = clipped_policy_loss(step.log_prob, sub.log_probs[:, j].to(policy.device), adv, 0.2, adv_clip=5.0)
        if beta > 0:
            with torch.no_grad(), policy.adapter_disabled():
                ref = step_log_prob(policy, sub, j, sub_cond, **kwargs)
            loss = loss + beta * kl_to_reference(step.mean, ref.mean, step.std_dev)
        loss.backward()
    _sync(device)
    seconds = time.perf_counter() - start
    for p in params:
        p.grad = None
    return seconds, _peak_gb(device)


def peak_tflops(device: str, given: float | None) -> float | None:
    if given is not None:
        return given
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(0)
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def run(args) -> pd.DataFrame:
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.startswith("cuda") else "float32"))
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    text_tokens = args.max_sequence_length + CLIP_TOKENS
    options = {
        "autocast": args.autocast,
        "gradient_checkpointing": args.gradient_checkpointing,
        "compile_backend": args.compile_backend,
        "attention_backend": args.attention_backend,
    }
    policy, transformer_cfg = build_policy(args.shape, dtype, device, text_tokens, args.lora_rank, **options)
    latent = policy.latent_shape()
    image_tokens = (latent[1] // transformer_cfg["patch_size"]) ** 2
    forward = transformer_flops(transformer_cfg, image_tokens, text_tokens)
    flops = per_image_flops(forward, args.steps, args.trained_steps, args.beta > 0)
    peak = peak_tflops(device, args.peak_tflops)
    print(
        f"FLOPs per transformer forward: {forward / 1e12:.4g} TFLOP ({image_tokens} image + {text_tokens} text tokens)"
    )
    print(f"formula: {FORMULA}")
    print(f"per image: sampling {flops['sampling'] / 1e12:.4g} TFLOP, training {flops['training'] / 1e12:.4g} TFLOP")

    traj, cond, sample_s, sample_peak = time_sampling(
        policy, args.sample_batch, args.steps, args.guidance_scale, args.noise_level, device, args.repeats
    )
    base = {
        "shape": args.shape,
        "device": device,
        "dtype": str(dtype).replace("torch.", ""),
        "image_tokens": image_tokens,
        "text_tokens": text_tokens,
        "forward_tflop": forward / 1e12,
        **{k: str(v) for k, v in options.items()},
    }
    rows = [
        {
            **base,
            "phase": "sampling",
            "batch": args.sample_batch,
            "seconds": sample_s,
            "images_per_second": args.sample_batch / sample_s,
            "seconds_per_image": sample_s / args.sample_batch,
            "tflop_per_image": flops["sampling"] / 1e12,
            "peak_memory_gb": sample_peak,
        }
    ]
    for micro in args.micro_batches:
        try:
            time_training_step(  # warm-up
                policy, traj, cond, micro, 1, args.guidance_scale, args.noise_level, args.beta, device
            )
            seconds, peak_gb = time_training_step(
                policy, traj, cond, micro, args.trained_steps, args.guidance_scale, args.noise_level, args.beta, device
            )
        except torch.cuda.OutOfMemoryError:
            rows.append({**base, "phase": "training", "batch": micro, "oom": True})
            print(f"training micro-batch {micro}: out of memory")
            break
        row = {
            **base,
            "phase": "training",
            "batch": micro,
            "seconds": seconds,
            "seconds_per_image": seconds / micro,
            "images_per_second": micro / seconds,
            "tflop_per_image": flops["training"] / 1e12,
            "peak_memory_gb": peak_gb,
            "oom": False,
        }
        if peak:
            row["mfu"] = flops["training"] * micro / seconds / (peak * 1e12)
        rows.append(row)
        print(f"training micro-batch {micro}: {seconds / micro:.4g} s/image, peak {peak_gb:.3g} GB")
    frame = pd.DataFrame(rows)
    fits = frame[(frame.phase == "training") & (frame.get("oom", False) == False)]  # noqa: E712
    for budget in MEMORY_BUDGETS_GB:
        ok = fits[fits.peak_memory_gb < budget] if device.startswith("cuda") else fits.iloc[0:0]
        frame[f"largest_micro_batch_{budget}gb"] = int(ok.batch.max()) if len(ok) else None
    return frame


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=("sd35m", "tiny"), default="sd35m")
    parser.add_argument("--device", help="default: cuda when available, else cpu")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), help="default bf16 on GPU, fp32 on CPU")
    parser.add_argument("--steps", type=int, default=10, help="sampling steps (Flow-GRPO: 10)")
    parser.add_argument("--trained-steps", type=int, default=9, help="trained SDE steps per image (Flow-GRPO: 9)")
    parser.add_argument("--guidance-scale", type=float, default=4.5)
    parser.add_argument("--noise-level", type=float, default=0.7)
    parser.add_argument("--beta", type=float, default=0.04, help="KL weight (> 0 adds the reference forward)")
    parser.add_argument("--max-sequence-length", type=int, default=128, help="T5 tokens (preset: 128)")
    parser.add_argument("--lora-rank", type=int, default=32)
    parser.add_argument("--sample-batch", type=int, default=8)
    parser.add_argument("--micro-batches", type=int, nargs="+", default=[1, 2, 4, 8, 12, 16, 24, 32])
    parser.add_argument("--repeats", type=int, default=2, help="timed sampling calls after one warm-up")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense peak for MFU (default: known GPUs)")
    parser.add_argument("--name", default=None, help="result file name (default paper_speed_SHAPE_DEVICE)")
    parser.add_argument("--output-dir", default="results/benchmarks")
    parser.add_argument("--autocast", action=argparse.BooleanOptionalAction, default=True, help="model.autocast")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="model.gradient_checkpointing")
    parser.add_argument("--compile-backend", help="model.compile_backend, e.g. inductor")
    parser.add_argument("--attention-backend", help="model.attention_backend, e.g. _native_cudnn")
    parser.add_argument("--verbose", action="store_true", help="show third-party warnings")
    parser.add_argument("--plan", action="store_true", help="only the derived per-preset plan (no timing)")
    args = parser.parse_args(argv)
    if not args.verbose:
        quiet_third_party()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if args.plan:
        plan = derived_plan()
        plan.to_csv(out / "paper_plan.csv", index=False)
        text = "# Paper presets: derived time per epoch and per run\n\n" + to_markdown(plan.round(3)) + "\n"
        (out / "paper_plan.md").write_text(text)
        print(text)
        return 0
    frame = run(args)
    device = frame.device.iloc[0].split(":")[0]
    name = args.name or f"paper_speed_{args.shape}_{device}"
    frame.to_csv(out / f"{name}.csv", index=False)
    command = "python " + shlex.join(["benchmarks/paper_speed.py", *(argv if argv is not None else sys.argv[1:])])
    shown = [
        c
        for c in (
            "phase",
            "batch",
            "seconds_per_image",
            "images_per_second",
            "tflop_per_image",
            "mfu",
            "peak_memory_gb",
            "oom",
        )
        if c in frame
    ]
    text = (
        f"# Paper-scale speed: {args.shape} shape, {frame.dtype.iloc[0]}, {device}\n\n"
        f"Command: `{command}`. FLOPs per transformer forward {frame.forward_tflop.iloc[0]:.4g} TFLOP "
        f"({frame.image_tokens.iloc[0]} image + {frame.text_tokens.iloc[0]} text tokens). Formula: {FORMULA}.\n\n"
        + to_markdown(frame[shown])
        + "\n"
        + (
            "\nOn a CPU, peak_memory_gb is the process's resident high-water mark so far (there is no "
            "per-phase counter); on a GPU, torch.cuda.max_memory_allocated since the phase began.\n"
            if device == "cpu"
            else ""
        )
    )
    (out / f"{name}.md").write_text(text)
    (out / f"{name}_environment.json").write_text(
        json.dumps({**describe_machine(), "command": command}, indent=1) + "\n"
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
