"""Stable Diffusion 3 as a :class:`FlowPolicy`: diffusers' pipeline plus a peft LoRA.

Only the LoRA on the transformer's attention projections trains (Flow-GRPO's setting); the text
encoders and the VAE are frozen. The LoRA is saved in diffusers' own format so that
``StableDiffusion3Pipeline.load_lora_weights`` reproduces the trained model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import torch

from superflow.config import SD3_LORA_TARGETS
from superflow.models.base import Conditioning, FlowPolicy, guided_velocity, pick_device
from superflow.models.prompt_cache import PromptEmbeddingCache, module_fingerprint
from superflow.models.weights import SD3_WEIGHTS, resolve_weights

#: The pipeline's text encoders (CLIP-L, CLIP-G, T5-XXL), frozen; a prompt cache moves them off the GPU.
TEXT_ENCODERS = ("text_encoder", "text_encoder_2", "text_encoder_3")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def torch_dtype(name: str) -> torch.dtype:
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; choose one of {sorted(_DTYPES)}") from None


class SD3Policy(FlowPolicy):
    """SD3 / SD3.5 with a trainable LoRA.

    ``pipeline`` may be passed directly (tests, notebooks); otherwise it is loaded from ``path``
    without any network access.
    """

    def __init__(
        self,
        path: str | None = None,
        *,
        pipeline=None,
        resolution: int = 512,
        lora_rank: int = 32,
        lora_alpha: int = 64,
        lora_targets: Sequence[str] = SD3_LORA_TARGETS,
        lora_init_seed: int = 0,
        max_sequence_length: int = 128,
        dtype: str = "float32",
        device: str = "auto",
        autocast: bool = True,
        tf32: bool = True,
        gradient_checkpointing: bool = False,
        compile_backend: str | None = None,
        attention_backend: str | None = None,
        prompt_cache: str | Path | None = None,
    ):
        from diffusers import StableDiffusion3Pipeline
        from peft import LoraConfig

        self._device = pick_device(device)
        self.dtype = torch_dtype(dtype)
        # With a half-precision base, the fp32 LoRA would otherwise run its matmuls and residual add in
        # fp32 in every adapted projection; under autocast they run in the base's dtype while the
        # LoRA's master weights, the optimiser and the log-probs stay fp32.
        self.autocast = bool(autocast) and self.dtype != torch.float32
        if tf32 and self._device.type == "cuda":  # the fp32 parts (VAE decode, log-prob maths) on tensor cores
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        if pipeline is None:
            folder = resolve_weights(SD3_WEIGHTS, path)
            # The VAE decodes in fp32 whatever the model's dtype; asking at load time (not by casting
            # afterwards) is the way diffusers keeps its fp32-only modules in fp32.
            dtypes = {"vae": torch.float32, "default": self.dtype}
            pipeline = StableDiffusion3Pipeline.from_pretrained(folder, dtype=dtypes, local_files_only=True)
        self.pipeline = pipeline
        pipeline.set_progress_bar_config(disable=True)
        for part in ("vae", *TEXT_ENCODERS, "transformer"):
            module = getattr(pipeline, part, None)
            if module is not None:
                module.requires_grad_(False)
                wanted = torch.float32 if part == "vae" else self.dtype
                if module.dtype == wanted:
                    module.to(self._device)
                else:  # a pipeline built in memory with another dtype
                    module.to(self._device, dtype=wanted)
        self.transformer = pipeline.transformer
        if gradient_checkpointing:  # recompute each block's activations in the backward: memory for time
            self.transformer.enable_gradient_checkpointing()
        if attention_backend:  # diffusers' dispatcher: "native", "flash", "_native_cudnn", "sage", ...
            self.transformer.set_attention_backend(attention_backend)
        # The compiled module shares the transformer's parameters and adapters; peft's switches act on
        # the original, so calls go through ``_forward_module`` and everything else through ``transformer``.
        self._forward_module = (
            torch.compile(self.transformer, backend=compile_backend) if compile_backend else self.transformer
        )
        self.resolution = resolution
        self.max_sequence_length = max_sequence_length
        self.lora_config = LoraConfig(
            r=lora_rank,
            lora_alpha=lora_alpha,
            init_lora_weights="gaussian",
            target_modules=list(lora_targets),
        )
        # peft draws the LoRA A matrices from the global RNG: seed it so the initial adapter is a
        # function of the run's seed, without disturbing the caller's RNG stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(lora_init_seed)
            self.transformer.add_adapter(self.lora_config)
        self._encoder_device = self._device
        self._cache = None
        if prompt_cache is not None:
            fingerprint = {
                "text_encoders": [module_fingerprint(e) for e in self._text_encoders()],
                "max_sequence_length": max_sequence_length,
                "dtype": str(self.dtype),
            }
            self._cache = PromptEmbeddingCache(prompt_cache, fingerprint)
        self._lora_params = [p for n, p in self.transformer.named_parameters() if "lora_" in n]
        for p in self._lora_params:
            p.data = p.data.float()
            p.requires_grad_(True)
        self._negative = self._encode([""])

    # -- FlowPolicy -----------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self._device

    def modules(self):
        return iter([self.transformer])

    def _text_encoders(self) -> list[torch.nn.Module]:
        return [m for m in (getattr(self.pipeline, name, None) for name in TEXT_ENCODERS) if m is not None]

    def _run_text_encoders(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            embeds, _, pooled, _ = self.pipeline.encode_prompt(
                prompt=list(prompts),
                prompt_2=None,
                prompt_3=None,
                device=self._encoder_device,
                do_classifier_free_guidance=False,
                max_sequence_length=self.max_sequence_length,
            )
        return {"embeds": embeds.to(self._device, self.dtype), "pooled": pooled.to(self._device, self.dtype)}

    def _encode(self, prompts: Sequence[str]) -> Conditioning:
        if self._cache is None:
            return Conditioning(self._run_text_encoders(prompts))
        self._fill_cache(prompts)
        rows = [self._cache.get(p) for p in prompts]
        return Conditioning({k: torch.stack([r[k] for r in rows]).to(self._device, self.dtype) for k in rows[0]})

    def _fill_cache(self, prompts: Sequence[str], batch_size: int = 16) -> None:
        missing = self._cache.missing(prompts)
        for start in range(0, len(missing), batch_size):
            chunk = missing[start : start + batch_size]
            encoded = self._run_text_encoders(chunk)
            for i, prompt in enumerate(chunk):
                self._cache.put(prompt, {k: v[i] for k, v in encoded.items()})

    def prepare_prompts(self, prompts: Sequence[str]) -> None:
        """With a prompt cache: embed every prompt not cached yet, then move the text encoders to the CPU.

        A prompt met later (none, in a training run) is still embedded, by the encoders on the CPU.
        """
        if self._cache is None:
            return
        self._fill_cache([*prompts, ""])
        for module in self._text_encoders():
            module.to("cpu")
        self._encoder_device = torch.device("cpu")
        if self._device.type == "cuda":
            torch.cuda.empty_cache()

    def encode_prompts(self, prompts: Sequence[str]) -> Conditioning:
        return self._encode(prompts)

    def velocity(self, x, sigma, cond, guidance_scale, *, detach_uncond=False):
        batch = x.shape[0]
        timestep = (sigma * self.num_train_timesteps).to(self._device)
        neg = self._negative.tensors
        negative = {"embeds": neg["embeds"].expand(batch, -1, -1), "pooled": neg["pooled"].expand(batch, -1)}

        def forward(x_in, t_in, text):
            with torch.autocast(self._device.type, dtype=self.dtype, enabled=self.autocast):
                out = self._forward_module(
                    hidden_states=x_in.to(self.dtype),
                    timestep=t_in,
                    encoder_hidden_states=text["embeds"],
                    pooled_projections=text["pooled"],
                    return_dict=False,
                )[0]
            return out.float()

        return guided_velocity(forward, x, timestep, negative, cond.tensors, guidance_scale, detach_uncond)

    def sigma_schedule(self, num_steps: int) -> torch.Tensor:
        # The checkpoint's own scheduler decides shift and dynamic shifting, so ask it.
        scheduler = self.pipeline.scheduler
        scheduler.set_timesteps(num_steps, device="cpu")
        return scheduler.sigmas.clone().float()

    def latent_shape(self) -> tuple[int, ...]:
        size = self.resolution // self.pipeline.vae_scale_factor
        return (self.transformer.config.in_channels, size, size)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        vae = self.pipeline.vae
        latents = latents.float() / vae.config.scaling_factor + vae.config.shift_factor
        with torch.no_grad():
            image = vae.decode(latents.to(vae.dtype), return_dict=False)[0]
        return (image.float() / 2 + 0.5).clamp(0, 1)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return self._lora_params

    @contextlib.contextmanager
    def adapter_disabled(self):
        self.transformer.disable_adapters()
        try:
            yield
        finally:
            self.transformer.enable_adapters()

    def load_adapter(self, path: str | Path) -> None:
        """Load a LoRA written by :meth:`save_pretrained` into this policy's adapter."""
        from diffusers import StableDiffusion3Pipeline
        from peft.utils import set_peft_model_state_dict

        weights = Path(path) / "pytorch_lora_weights.safetensors"
        if not weights.exists():
            raise FileNotFoundError(
                f"no trained LoRA at {weights} (model.adapter_path should be a run's lora/ folder)"
            )
        try:
            state = StableDiffusion3Pipeline.lora_state_dict(str(path))
        except Exception as err:  # safetensors and diffusers raise their own types for a damaged file
            raise ValueError(f"{weights}: cannot be read as a LoRA ({type(err).__name__}: {err})") from None
        if isinstance(state, tuple):  # newer diffusers also return the adapter metadata
            state = state[0]
        prefix = "transformer."
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        result = set_peft_model_state_dict(self.transformer, state, adapter_name="default")
        missing = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
        if missing or not state:
            raise ValueError(f"{weights}: LoRA does not match this model's adapter (unexpected keys: {missing[:3]})")

    def save_pretrained(self, path: str | Path) -> None:
        """Write the LoRA as diffusers' ``pytorch_lora_weights.safetensors`` with its config."""
        from diffusers import StableDiffusion3Pipeline
        from peft.utils import get_peft_model_state_dict

        state = get_peft_model_state_dict(self.transformer)
        StableDiffusion3Pipeline.save_lora_weights(
            str(path),
            transformer_lora_layers={k: v.detach().cpu().contiguous() for k, v in state.items()},
            transformer_lora_adapter_metadata=self.transformer.peft_config["default"].to_dict(),
        )
