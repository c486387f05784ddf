"""MiniFlow: a small text-conditioned rectified-flow model for the CPU mini world.

A pixel-space UNet (FiLM conditioning on noise level and pooled text, cross-attention to the
prompt's tokens at 16x16 and 8x8) over an in-house text encoder. Quoted text in a prompt
(``a sign that says "K7"``) is tokenised character by character so the model can spell strings
it never saw whole. It predicts SD3's velocity ``v = eps - x0`` and implements
:class:`FlowPolicy`, so the trainer treats it exactly like SD3. RL fine-tunes all of it; the KL
reference is a frozen copy of the pretrained weights.
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from superflow.flow.schedule import sd3_sigmas
from superflow.method_defaults import MINIFLOW_DTYPES
from superflow.models.base import Conditioning, FlowPolicy, guided_velocity, pick_device
from superflow.models.weights import WeightSpec, load_weights_folder, save_weights_folder

PAD, UNK, QUOTE_OPEN, QUOTE_CLOSE = "<pad>", "<unk>", "<q>", "</q>"
_SPECIALS = (PAD, UNK, QUOTE_OPEN, QUOTE_CLOSE)


class PromptTokenizer:
    """Words outside double quotes, characters inside them; unknown words map to ``<unk>``."""

    def __init__(self, vocab: Sequence[str], max_length: int = 24):
        self.vocab = list(vocab)
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.max_length = max_length
        if self.vocab[: len(_SPECIALS)] != list(_SPECIALS):
            raise ValueError(f"vocabulary must start with {_SPECIALS}")

    @staticmethod
    def split(prompt: str) -> list[str]:
        tokens: list[str] = []
        for i, part in enumerate(prompt.split('"')):
            if i % 2:  # inside quotes
                tokens += [QUOTE_OPEN, *(f"c:{ch}" for ch in part), QUOTE_CLOSE]
            else:
                tokens += re.findall(r"[a-z0-9]+", part.lower())
        return tokens

    @classmethod
    def build(cls, prompts: Iterable[str], characters: str = "", max_length: int = 24) -> PromptTokenizer:
        seen = dict.fromkeys(_SPECIALS)
        for ch in characters:
            seen.setdefault(f"c:{ch}")
        for prompt in prompts:
            for token in cls.split(prompt):
                seen.setdefault(token)
        return cls(list(seen), max_length)

    def __len__(self) -> int:
        return len(self.vocab)

    def __call__(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.zeros(len(prompts), self.max_length, dtype=torch.long)
        for row, prompt in enumerate(prompts):
            tokens = [self.index.get(t, 1) for t in self.split(prompt)][: self.max_length]
            ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        return ids, ids != 0


def sign_slots(ids: torch.Tensor, max_slot: int) -> torch.Tensor:
    """1-based place of each character token inside its quoted sign (0 elsewhere), capped at ``max_slot``."""
    index = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
    none = torch.full_like(index, -1)
    opens, closes = ids == _SPECIALS.index(QUOTE_OPEN), ids == _SPECIALS.index(QUOTE_CLOSE)
    last_open = torch.where(opens, index, none).cummax(dim=1).values
    last_close = torch.where(closes, index, none).cummax(dim=1).values
    inside = (last_open > last_close) & ~opens
    return torch.where(inside, (index - last_open).clamp(max=max_slot), torch.zeros_like(index))


class PromptEncoder(nn.Module):
    """Token embeddings + positions + a small transformer; returns tokens, mask and a pooled vector.

    A learned null token is prepended so attention and pooling stay defined for the empty
    (unconditional) prompt. MiniFlow and the preference model both read prompts with it.
    """

    def __init__(self, vocab_size: int, dim: int, layers: int, heads: int, max_tokens: int, sign_slots: int = 0):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.position_embedding = nn.Parameter(torch.zeros(1, max_tokens, dim))
        # A prompt's absolute positions move with its wording; a character's place inside its quoted
        # sign does not, and it is what a renderer needs to put the characters in order.
        self.sign_slots = sign_slots
        self.slot_embedding = nn.Embedding(sign_slots + 1, dim, padding_idx=0) if sign_slots else None
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.null_token = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.token_embedding(ids) + self.position_embedding[:, : ids.shape[1]]
        if self.slot_embedding is not None:
            h = h + self.slot_embedding(sign_slots(ids, self.sign_slots))
        h = torch.cat([self.null_token.expand(len(ids), -1, -1), h], dim=1)
        mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        h = self.encoder(h, src_key_padding_mask=~mask)
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return h, mask, pooled


@dataclass
class MiniFlowConfig:
    image_size: int = 32
    channels: tuple[int, ...] = (32, 64, 128)
    text_dim: int = 64
    text_layers: int = 2
    heads: int = 4
    max_tokens: int = 24
    cond_dim: int = 128
    vocab: list[str] = field(default_factory=list)
    #: Characters know their place in a quoted sign and cross-attention queries know their pixel
    #: position (docs/MINI_WORLD.md, "Signs in order"). Off for weights pretrained before the option.
    position_aware: bool = False
    sign_slots: int = 8

    def __post_init__(self):
        # GroupNorm uses 8 groups and the cross-attention splits widths over `heads`.
        if len(self.channels) != 3 or any(c <= 0 or c % 8 or c % self.heads for c in self.channels):
            raise ValueError(
                f"MiniFlow channels must be three positive multiples of 8 and of heads={self.heads}, "
                f"got {tuple(self.channels)}"
            )


def _timestep_embedding(sigma: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=sigma.device) / half)
    args = (sigma.float() * 1000)[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, cond_dim: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * cout)
        self.norm2, self.conv2 = nn.GroupNorm(8, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, cond):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class CrossAttention(nn.Module):
    """Image positions attend to the prompt's tokens (padding masked)."""

    def __init__(self, channels: int, text_dim: int, heads: int, positions: int = 0):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.attn = nn.MultiheadAttention(channels, heads, kdim=text_dim, vdim=text_dim, batch_first=True)
        # Without it a query knows its place only through the convolutions' zero padding.
        self.position = nn.Parameter(0.02 * torch.randn(1, positions, channels)) if positions else None

    def forward(self, x, tokens, mask):
        b, c, h, w = x.shape
        q = self.norm(x).flatten(2).transpose(1, 2)
        if self.position is not None:
            q = q + self.position
        out, _ = self.attn(q, tokens, tokens, key_padding_mask=~mask, need_weights=False)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class MiniFlowNet(nn.Module):
    def __init__(self, cfg: MiniFlowConfig):
        super().__init__()
        self.cfg = cfg
        c0, c1, c2 = cfg.channels
        slots = cfg.sign_slots if cfg.position_aware else 0
        self.prompt_encoder = PromptEncoder(
            len(cfg.vocab), cfg.text_dim, cfg.text_layers, cfg.heads, cfg.max_tokens, sign_slots=slots
        )
        # Query positions of the cross-attentions at 1/2 and 1/4 resolution (none: no embedding).
        half = (cfg.image_size // 2) ** 2 if cfg.position_aware else 0
        quarter = (cfg.image_size // 4) ** 2 if cfg.position_aware else 0
        self.time_mlp = nn.Sequential(nn.Linear(64, cfg.cond_dim), nn.SiLU(), nn.Linear(cfg.cond_dim, cfg.cond_dim))
        self.text_proj = nn.Linear(cfg.text_dim, cfg.cond_dim)
        self.conv_in = nn.Conv2d(3, c0, 3, padding=1)
        self.down0 = ResBlock(c0, c0, cfg.cond_dim)
        self.pool0 = nn.Conv2d(c0, c1, 3, stride=2, padding=1)
        self.down1 = ResBlock(c1, c1, cfg.cond_dim)
        self.attn1 = CrossAttention(c1, cfg.text_dim, cfg.heads, half)
        self.pool1 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.mid1 = ResBlock(c2, c2, cfg.cond_dim)
        self.attn_mid = CrossAttention(c2, cfg.text_dim, cfg.heads, quarter)
        self.mid2 = ResBlock(c2, c2, cfg.cond_dim)
        self.up1 = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec1 = ResBlock(c2 + c1, c1, cfg.cond_dim)
        self.attn_dec1 = CrossAttention(c1, cfg.text_dim, cfg.heads, half)
        self.up0 = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec0 = ResBlock(c1 + c0, c0, cfg.cond_dim)
        self.norm_out = nn.GroupNorm(8, c0)
        self.conv_out = nn.Conv2d(c0, 3, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        ids: torch.Tensor,
        mask: torch.Tensor,
        text: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Velocity at ``x``; ``text`` is ``prompt_encoder(ids, mask)`` when the caller kept it."""
        # With gradients, PyTorch's CPU flash-attention backward costs 7x its forward at these shapes
        # (24 keys): the plain softmax kernel makes a training step 23% faster, same values to bf16
        # rounding. Without gradients flash stays: it is the faster forward.
        if torch.is_grad_enabled() and x.device.type == "cpu":
            with sdpa_kernel(SDPBackend.MATH):
                return self._forward(x, sigma, ids, mask, text)
        return self._forward(x, sigma, ids, mask, text)

    def _forward(self, x, sigma, ids, mask, text):
        tokens, mask, pooled = text if text is not None else self.prompt_encoder(ids, mask)
        cond = self.time_mlp(_timestep_embedding(sigma, 64)) + self.text_proj(pooled)
        h0 = self.down0(self.conv_in(x), cond)
        h1 = self.attn1(self.down1(self.pool0(h0), cond), tokens, mask)
        h = self.mid2(self.attn_mid(self.mid1(self.pool1(h1), cond), tokens, mask), cond)
        h = self.attn_dec1(self.dec1(torch.cat([self.up1(h), h1], 1), cond), tokens, mask)
        h = self.dec0(torch.cat([self.up0(h), h0], 1), cond)
        return self.conv_out(F.silu(self.norm_out(h)))


def save_miniflow(net: MiniFlowNet, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``config.json`` and ``model.pt`` (the folder format ``MiniFlowPolicy`` loads)."""
    return save_weights_folder(net.state_dict(), {**asdict(net.cfg), **(extra or {})}, path)


def load_miniflow(path: str | Path | None) -> MiniFlowNet:
    raw, state = load_weights_folder(MINIFLOW_WEIGHTS, path)
    fields = MiniFlowConfig.__dataclass_fields__
    net = MiniFlowNet(
        MiniFlowConfig(**{k: (tuple(v) if k == "channels" else v) for k, v in raw.items() if k in fields})
    )
    net.load_state_dict(state)
    return net


MINIFLOW_WEIGHTS = WeightSpec(
    component="MiniFlow",
    config_key="model.path",
    env_var="SUPERFLOW_MINIFLOW_PATH",
    repo_id=None,
    required_files=("config.json", "model.pt"),
    how_to_obtain=(
        "Install the published base (`superflow install-base --published data/mini_bases/world0 --name miniflow "
        "--output-dir DIR`), or pretrain one with `superflow pretrain --output-dir DIR` "
        "(about 20-30 minutes on one CPU core)."
    ),
)


def _native_cpu_bf16() -> bool:
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_miniflow_dtype(dtype: str, device: torch.device) -> str:
    """``auto``: bfloat16 where the device computes it natively, float32 elsewhere.

    Without avx512_bf16 or AMX, CPU autocast emulates bf16 and an RL epoch took more than 6x float32's
    on an AVX2-only EPYC (results/experiments/bf16_without_native_support_2026-12-07), so the presets
    would be slowest exactly where nothing else is fast.
    """
    if dtype != "auto":
        return dtype
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if device.type == "cpu" and _native_cpu_bf16() else "float32"


class MiniFlowPolicy(FlowPolicy):
    """MiniFlow behind the trainer: full fine-tuning, a frozen copy as the KL reference."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        net: MiniFlowNet | None = None,
        device: str = "cpu",
        train_text_encoder: bool = False,
        trainable: list[str] | None = None,
        dtype: str = "float32",
    ):
        self.net = net if net is not None else load_miniflow(path)
        # bfloat16: the network runs under autocast (oneDNN's bf16 kernels on CPUs that have them),
        # while the weights, the optimiser, the guidance sum and the log-probs stay fp32.
        if dtype not in MINIFLOW_DTYPES:
            raise ValueError(
                f"MiniFlow runs in float32, under bfloat16 autocast or 'auto', not {dtype!r} (model.dtype)"
            )
        self._device = pick_device(device)
        self.dtype = resolve_miniflow_dtype(dtype, self._device)
        self.autocast = self.dtype == "bfloat16"
        # as SD3's text encoders are frozen under LoRA: noisy policy gradients would otherwise
        # reshape the prompt embedding every prompt shares
        self.train_text_encoder = train_text_encoder
        self.net.prompt_encoder.requires_grad_(train_text_encoder)
        if trainable:
            # Only the named parts learn (as a LoRA restricts SD3 to its attention projections).
            chosen = 0
            for name, param in self.net.named_parameters():
                keep = param.requires_grad and any(part in name for part in trainable)
                param.requires_grad_(keep)
                chosen += keep
            if not chosen:
                raise ValueError(f"model.trainable {trainable!r} matches no MiniFlow parameter")
        if self.autocast and self._device.type == "cpu" and not _native_cpu_bf16():
            warnings.warn(
                "model.dtype=bfloat16 on a CPU without native bf16 (avx512_bf16 or AMX): autocast is "
                "emulated and slower than float32; pass --set model.dtype=float32",
                stacklevel=2,
            )
        self.net.to(self._device)
        self.reference = copy.deepcopy(self.net).requires_grad_(False).eval()
        self.tokenizer = PromptTokenizer(self.net.cfg.vocab, self.net.cfg.max_tokens)
        self._active = self.net
        self._uncond = self.encode_prompts([""])
        self._kept_text: list | None = None  # prompt encodings kept inside sampling_scope()

    @property
    def device(self) -> torch.device:
        return self._device

    def modules(self):
        return iter([self.net])

    def encode_prompts(self, prompts: Sequence[str]) -> Conditioning:
        ids, mask = self.tokenizer(prompts)
        return Conditioning({"ids": ids.to(self._device), "mask": mask.to(self._device)})

    def velocity(self, x, sigma, cond, guidance_scale, *, detach_uncond=False):
        b = x.shape[0]
        sigma = sigma.to(self._device).expand(b)
        null = {k: v.expand(b, -1) for k, v in self._uncond.tensors.items()}

        def forward(x_in, sigma_in, text):
            with torch.autocast(self._device.type, dtype=torch.bfloat16, enabled=self.autocast):
                kept = self._kept_encoding(text["ids"], text["mask"])
                return self._active(x_in, sigma_in, text["ids"], text["mask"], kept).float()

        return guided_velocity(forward, x, sigma, null, cond.tensors, guidance_scale, detach_uncond)

    @contextlib.contextmanager
    def sampling_scope(self):
        # Every denoising step would encode the same prompts again, and autocast would cast every
        # weight to bf16 again: inside one autocast context it keeps its casts until the context
        # exits. Both kept for one sampling call: 5% less sampling and 9% less evaluation time in a
        # GenEval run on one EPYC core (docs/MINI_RL_BUDGET.md), the same numbers to the bit (the
        # encoder sees the same batch).
        self._kept_text = []
        try:
            with torch.autocast(self._device.type, dtype=torch.bfloat16, enabled=self.autocast):
                yield
        finally:
            self._kept_text = None

    def _kept_encoding(self, ids: torch.Tensor, mask: torch.Tensor):
        """The encoding of this exact batch of prompts by the active network, computed once per scope."""
        if self._kept_text is None:
            return None
        for net, kept_ids, kept_mask, text in self._kept_text:
            if net is self._active and torch.equal(kept_ids, ids) and torch.equal(kept_mask, mask):
                return text
        text = self._active.prompt_encoder(ids, mask)
        self._kept_text.append((self._active, ids, mask, text))
        return text

    def sigma_schedule(self, num_steps: int) -> torch.Tensor:
        return sd3_sigmas(num_steps, shift=1.0)

    def latent_shape(self) -> tuple[int, ...]:
        return (3, self.net.cfg.image_size, self.net.cfg.image_size)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return (latents.float() / 2 + 0.5).clamp(0, 1)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.net.parameters() if p.requires_grad]

    @contextlib.contextmanager
    def adapter_disabled(self):
        self._active = self.reference
        try:
            yield
        finally:
            self._active = self.net

    def save_pretrained(self, path: str | Path) -> None:
        save_miniflow(self.net, path)
