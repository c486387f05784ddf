"""Data-parallel training across processes (``accelerate launch``, ``torchrun``), on torch.distributed.

Every rank plans the same epoch (the plan depends only on the seed, the epoch and the tracker, and
the tracker is updated with the gathered rewards), samples a contiguous slice of the epoch's
images with the same per-image noise a single process would use, scores its slice, and gathers
the rewards, so advantages and allocation are identical everywhere. Gradients are summed across
ranks with each sample weighted by the global batch, which makes a step equal to the one-process
step on the same global batch. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist


class Distributed:
    """The process group as the trainer sees it; a single process is world size 1 (no-ops)."""

    def __init__(self, rank: int = 0, world_size: int = 1):
        self.rank = rank
        self.world_size = world_size

    @classmethod
    def from_environment(cls) -> Distributed:
        """Join the process group a launcher describes (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT)."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        if not dist.is_available():  # pragma: no cover - every torch build we pin has it
            raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, count: int) -> slice:
        """This rank's contiguous share of ``count`` items (sizes differ by at most one)."""
        bounds = np.linspace(0, count, self.world_size + 1).round().astype(int)
        return slice(int(bounds[self.rank]), int(bounds[self.rank + 1]))

    def gather_rows(self, local: np.ndarray) -> np.ndarray:
        """Concatenate every rank's rows in rank order (the slices of :meth:`shard`)."""
        if not self.enabled:
            return local
        parts: list = [None] * self.world_size
        dist.all_gather_object(parts, np.asarray(local))
        return np.concatenate(parts)

    def gather_objects(self, local: Sequence) -> list:
        """Concatenate every rank's list of picklable items in rank order."""
        if not self.enabled:
            return list(local)
        parts: list = [None] * self.world_size
        dist.all_gather_object(parts, list(local))
        return [item for part in parts for item in part]

    def sum(self, value: float) -> float:
        if not self.enabled:
            return value
        tensor = torch.tensor([float(value)], dtype=torch.float64)
        dist.all_reduce(tensor)
        return float(tensor.item())

    def sum_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            reduced = tensor.detach().to(torch.float64).cpu()
            dist.all_reduce(reduced)
            return reduced.to(tensor.dtype)
        return tensor

    def sum_gradients(self, params: Sequence[torch.nn.Parameter]) -> None:
        """All-reduce (sum) the gradients: what DDP does, for the trainable parameters only."""
        if not self.enabled:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        dist.all_reduce(flat)
        offset = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()
