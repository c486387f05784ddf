"""The interface every model behind the trainer implements.

The trainer, the sampler and the evaluation only talk to a :class:`FlowPolicy`, so SD3 (diffusers
with a LoRA) and the in-house CPU model share one training code path.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class Conditioning:
    """Encoded prompts: named tensors that all share the batch dimension first."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return next(iter(self.tensors.values())).shape[0]

    def index(self, idx: torch.Tensor | Sequence[int] | slice) -> Conditioning:
        if not isinstance(idx, slice):
            idx = torch.as_tensor(idx, dtype=torch.long)
        return Conditioning({k: v[idx] for k, v in self.tensors.items()})

    def to(self, device: torch.device | str) -> Conditioning:
        return Conditioning({k: v.to(device) for k, v in self.tensors.items()})

    @staticmethod
    def cat(parts: Sequence[Conditioning]) -> Conditioning:
        keys = parts[0].tensors.keys()
        return Conditioning({k: torch.cat([p.tensors[k] for p in parts]) for k in keys})


def pick_device(name: str) -> torch.device:
    """'auto' is CUDA when available, else the CPU; anything else is taken as a torch device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def guided_velocity(
    forward: Callable[[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]], torch.Tensor],
    x: torch.Tensor,
    timestep: torch.Tensor,
    uncond: dict[str, torch.Tensor],
    cond: dict[str, torch.Tensor],
    guidance_scale: float,
    detach_uncond: bool,
) -> torch.Tensor:
    """Classifier-free guidance ``u + s (c - u)`` of ``forward(x, timestep, conditioning)``.

    ``uncond`` and ``cond`` hold batch-sized tensors. Without guidance only the conditional branch
    runs. When gradients are on and the unconditional branch is detached (training), that branch runs
    on its own under ``no_grad``: the stacked forward's numbers up to float rounding, while autograd
    keeps activations for, and back-propagates through, half the batch. Otherwise (sampling) one
    stacked forward is cheaper.
    """
    if guidance_scale <= 1.0:
        return forward(x, timestep, cond)
    if detach_uncond and torch.is_grad_enabled():
        with torch.no_grad():
            u = forward(x, timestep, uncond)
        c = forward(x, timestep, cond)
    else:
        stacked = {k: torch.cat([uncond[k], cond[k]]) for k in cond}
        u, c = forward(torch.cat([x, x]), torch.cat([timestep, timestep]), stacked).chunk(2)
    return u + guidance_scale * (c - u)


class FlowPolicy(ABC):
    """A rectified-flow text-to-image model whose velocity field RL fine-tunes.

    Implementations predict the velocity ``v = eps - x0`` of SD3's convention; the trainable part
    (a LoRA for SD3) can be switched off to give the KL reference.
    """

    num_train_timesteps: int = 1000

    @property
    @abstractmethod
    def device(self) -> torch.device: ...

    @abstractmethod
    def encode_prompts(self, prompts: Sequence[str]) -> Conditioning:
        """Encode prompts; the unconditional branch for guidance is the policy's own business."""

    @abstractmethod
    def velocity(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        cond: Conditioning,
        guidance_scale: float,
        *,
        detach_uncond: bool = False,
    ) -> torch.Tensor:
        """Guided velocity at state ``x`` and per-sample noise level ``sigma`` ([B]).

        ``detach_uncond`` stops gradients through the unconditional branch, as Flow-GRPO does
        when it trains with guidance.
        """

    @abstractmethod
    def sigma_schedule(self, num_steps: int) -> torch.Tensor:
        """Sampling sigmas, length ``num_steps + 1``, from 1 down to 0."""

    @abstractmethod
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one sample's latent (without the batch dimension)."""

    @abstractmethod
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents to images: float tensor [B, 3, H, W] in [0, 1]."""

    @abstractmethod
    def trainable_parameters(self) -> list[torch.nn.Parameter]: ...

    @abstractmethod
    def adapter_disabled(self) -> contextlib.AbstractContextManager:
        """Context in which the policy is the frozen reference model (the KL anchor)."""

    @abstractmethod
    def save_pretrained(self, path: str | Path) -> None:
        """Save the trained part in the format its ecosystem loads (a diffusers LoRA for SD3)."""

    def sampling_scope(self) -> contextlib.AbstractContextManager:
        """Context around one sampling call's denoising loop, inside which the weights do not change:
        a policy may keep there what every step would otherwise recompute alike. No-op by default."""
        return contextlib.nullcontext()

    def prepare_prompts(self, prompts: Sequence[str]) -> None:  # noqa: B027 - optional hook, no-op by default
        """Called once by the trainer with every prompt it will encode (a policy may precompute them)."""

    def initial_noise(self, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """One Gaussian latent per generator, drawn as diffusers draws a list of generators.

        Drawing each sample from its own generator makes a sample independent of how the batch
        was split, which keeps runs identical across batch sizes and process counts.
        """
        shape = (1, *self.latent_shape())
        noise = [torch.randn(shape, generator=g, device=g.device, dtype=torch.float32) for g in generators]
        return torch.cat(noise).to(self.device)

    def train(self, mode: bool = True) -> None:
        for module in self.modules():
            module.train(mode)

    def eval(self) -> None:
        self.train(False)

    def modules(self) -> Iterator[torch.nn.Module]:
        return iter(())
