"""Exponential moving average of the trained (LoRA) weights, as Flow-GRPO keeps it.

RL updates are noisy; the reference evaluates and checkpoints an EMA of the weights rather than the
live ones. Its schedule is reproduced exactly: one update every ``update_every`` optimiser steps,
with decay ``min((1 + n) / (10 + n), decay)`` where n is the optimisation step passed in, so
early averages forget the (random-init-adjacent) start quickly and later ones settle at ``decay``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

__all__ = ["EMA"]


class EMA:
    """EMA copies of ``parameters`` (kept on the parameters' device and in their dtype)."""

    def __init__(self, parameters: Iterable[torch.Tensor], decay: float = 0.9, update_every: int = 8) -> None:
        decay = float(decay)
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must be in [0, 1], got {decay}")
        if isinstance(update_every, bool) or not isinstance(update_every, int) or update_every < 1:
            raise ValueError(f"update_every must be an integer >= 1, got {update_every!r}")
        self.decay = decay
        self.update_every = update_every
        self.ema_parameters: list[torch.Tensor] = [p.detach().clone() for p in parameters]

    def current_decay(self, optimization_step: int) -> float:
        """The reference's warm-up: ``min((1 + n) / (10 + n), decay)``."""
        n = optimization_step
        return min((1 + n) / (10 + n), self.decay)

    def _params(self, parameters: Iterable[torch.Tensor], name: str = "parameters") -> list[torch.Tensor]:
        params = list(parameters)
        if len(params) != len(self.ema_parameters):
            raise ValueError(f"{name} has {len(params)} tensors but the EMA tracks {len(self.ema_parameters)}")
        for i, (p, e) in enumerate(zip(params, self.ema_parameters)):
            if p.shape != e.shape:
                raise ValueError(f"{name}[{i}] has shape {tuple(p.shape)}, the EMA copy has {tuple(e.shape)}")
        return params

    @torch.no_grad()
    def step(self, parameters: Iterable[torch.Tensor], optimization_step: int) -> bool:
        """Fold the live weights in if ``(optimization_step + 1) % update_every == 0``; say whether it did.

        Parameters that do not require grad are skipped, as in the reference (frozen tensors
        have nothing to average).
        """
        if isinstance(optimization_step, bool) or not isinstance(optimization_step, int) or optimization_step < 0:
            raise ValueError(f"optimization_step must be an integer >= 0, got {optimization_step!r}")
        params = self._params(parameters)
        if (optimization_step + 1) % self.update_every != 0:
            return False
        self.blend(params, self.current_decay(optimization_step))
        return True

    @torch.no_grad()
    def blend(self, parameters: Iterable[torch.Tensor], decay: float) -> None:
        """``copy <- decay * copy + (1 - decay) * live`` for every parameter that requires grad."""
        for e, p in zip(self.ema_parameters, self._params(parameters)):
            if p.requires_grad:
                e.add_((1.0 - decay) * (p.detach().to(device=e.device, dtype=e.dtype) - e))

    @torch.no_grad()
    def copy_to(self, parameters: Iterable[torch.Tensor]) -> None:
        """Overwrite ``parameters`` with the EMA weights."""
        for e, p in zip(self.ema_parameters, self._params(parameters)):
            p.copy_(e.to(device=p.device, dtype=p.dtype))

    @contextmanager
    def swapped_in(self, parameters: Iterable[torch.Tensor]) -> Iterator[None]:
        """Run a block (evaluation, export) with the EMA weights in place of the live ones.

        The live weights are restored on exit even if the block raises, so an evaluation error
        can never leave the trainer optimising the averaged weights.
        """
        params = self._params(parameters)
        with torch.no_grad():
            stored = [p.detach().clone() for p in params]
        self.copy_to(params)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, s in zip(params, stored):
                    p.copy_(s)

    def state_dict(self) -> dict[str, Any]:
        """The EMA tensors (cloned) and the schedule they were built with."""
        return {
            "parameters": [e.detach().clone() for e in self.ema_parameters],
            "decay": self.decay,
            "update_every": self.update_every,
        }

    @torch.no_grad()
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the EMA tensors; decay and update_every stay as constructed (the config rules)."""
        if not isinstance(state, Mapping) or "parameters" not in state:
            raise ValueError("state must be a mapping with a 'parameters' entry (from EMA.state_dict())")
        tensors = list(state["parameters"])
        self._params(tensors, "state['parameters']")
        for e, t in zip(self.ema_parameters, tensors):
            e.copy_(torch.as_tensor(t).to(device=e.device, dtype=e.dtype))
