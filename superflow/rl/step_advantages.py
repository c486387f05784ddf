"""Step-level advantages: how a trajectory's credit is shared among its denoising steps.

Flow-GRPO copies the trajectory advantage onto every step. SuperFlow's claim is that credit should
follow the flow dynamics (ALGORITHM.md section 2). Because the paper's exact estimator is not
known, the candidates live behind one interface, ``estimate(batch) -> A[N, K]``, and the
steps-to-target benchmark picks the default:

- ``trajectory``: the Flow-GRPO copy (the baseline every other estimator is compared with);
- ``noise_weighted``: weight each step by the std of the noise it injects, ``std_dev_t sqrt(-dt_t)``,
  since the injected noise is the only source of difference between samples of one prompt;
- ``paper``: ``eta * sigma_t * A`` (section 5's reconstruction), sigma_t = the SDE's ``std_dev_t``;
- ``tweedie_td``: the gain in the reward of the flow's one-step endpoint guess across the step;
- ``mixed``: ``noise_weighted + lam * tweedie_td``.

Weights are computed in float64 and the result is cast to the dtype and device of
``batch.advantages``, so that estimators agree exactly where they should (``paper`` with the default
eta versus a ``noise_weighted`` on a schedule with constant ``dt``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

__all__ = [
    "StepBatch",
    "StepEstimator",
    "TrajectoryEstimator",
    "NoiseWeightedEstimator",
    "PaperEstimator",
    "TweedieTDEstimator",
    "MixedEstimator",
    "STEP_ESTIMATORS",
    "make_step_estimator",
    "make_step_estimator_from_config",
    "noise_weights",
]


@dataclass
class StepBatch:
    """Everything the estimators may use, for N trajectories of T steps (K of them trained).

    ``std_devs`` are the SDE's ``std_dev_t = a sqrt(s / (1 - s))`` (sigma == 1 rule included), not
    yet multiplied by ``sqrt(-dt)``. ``values[:, t]`` is the reward of the one-step endpoint
    prediction from the state before step t (t < T) and ``values[:, T]`` the final reward.
    Shapes are checked on construction so that a mix-up fails here, not inside an estimator.
    """

    advantages: torch.Tensor  # [N]
    sigmas: torch.Tensor  # [T + 1], decreasing, last 0
    std_devs: torch.Tensor  # [T]
    num_train_steps: int  # K: steps 0..K-1 are trained
    group_ids: torch.Tensor | None = None  # [N]
    rewards: torch.Tensor | None = None  # [N]
    values: torch.Tensor | None = None  # [N, T + 1]

    def __post_init__(self) -> None:
        for name in ("advantages", "sigmas", "std_devs"):
            if not isinstance(getattr(self, name), torch.Tensor):
                raise ValueError(f"StepBatch.{name} must be a torch.Tensor, got {type(getattr(self, name)).__name__}")
        if self.advantages.ndim != 1:
            raise ValueError(f"StepBatch.advantages must be [N], got shape {tuple(self.advantages.shape)}")
        if self.sigmas.ndim != 1 or self.sigmas.numel() < 2:
            raise ValueError(f"StepBatch.sigmas must be [T + 1] with T >= 1, got shape {tuple(self.sigmas.shape)}")
        num_steps = self.sigmas.numel() - 1
        if tuple(self.std_devs.shape) != (num_steps,):
            raise ValueError(
                f"StepBatch.std_devs must be [T] = [{num_steps}] to match sigmas, "
                f"got shape {tuple(self.std_devs.shape)}"
            )
        if not bool(torch.all(self.sigmas[1:] < self.sigmas[:-1])):
            raise ValueError(f"StepBatch.sigmas must be strictly decreasing, got {self.sigmas.tolist()}")
        if not bool(torch.all(torch.isfinite(self.std_devs))) or bool(torch.any(self.std_devs < 0)):
            raise ValueError(f"StepBatch.std_devs must be finite and >= 0, got {self.std_devs.tolist()}")
        k = self.num_train_steps
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= num_steps:
            raise ValueError(f"StepBatch.num_train_steps must be an integer in [1, {num_steps}], got {k!r}")
        n = self.advantages.shape[0]
        for name in ("group_ids", "rewards"):
            t = getattr(self, name)
            if t is not None and (not isinstance(t, torch.Tensor) or tuple(t.shape) != (n,)):
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"StepBatch.{name} must be a [N] = [{n}] tensor, got {shape}")
        if self.values is not None and (
            not isinstance(self.values, torch.Tensor) or tuple(self.values.shape) != (n, num_steps + 1)
        ):
            shape = tuple(self.values.shape) if isinstance(self.values, torch.Tensor) else type(self.values).__name__
            raise ValueError(f"StepBatch.values must be [N, T + 1] = [{n}, {num_steps + 1}], got {shape}")

    @property
    def num_steps(self) -> int:
        """T, the number of sampling steps."""
        return self.sigmas.numel() - 1


def _finish(x: torch.Tensor, batch: StepBatch) -> torch.Tensor:
    return x.to(dtype=batch.advantages.dtype, device=batch.advantages.device)


def _normalise_mean_one(scale: torch.Tensor, what: str) -> torch.Tensor:
    mean = scale.mean()
    if not bool(mean > 0):
        raise ValueError(f"{what} is zero on every trained step (no noise is injected), cannot normalise it to mean 1")
    return scale / mean


def noise_weights(batch: StepBatch) -> torch.Tensor:
    """``w_t ∝ std_dev_t sqrt(-dt_t)`` over the K trained steps, mean 1 (float64, shape [K])."""
    k = batch.num_train_steps
    sigmas = batch.sigmas.detach().double().cpu()
    dt = sigmas[1:] - sigmas[:-1]
    scale = batch.std_devs.detach().double().cpu()[:k] * torch.sqrt(-dt[:k])
    return _normalise_mean_one(scale, "std_dev_t * sqrt(-dt_t)")


class StepEstimator:
    """Interface: ``estimate(batch)`` returns ``A[N, K]`` for the trained steps."""

    name: ClassVar[str] = ""
    #: Whether ``batch.values`` (one reward call per step) must be computed for this estimator.
    needs_values: ClassVar[bool] = False

    @classmethod
    def from_config(cls, algorithm: Any) -> StepEstimator:
        """Build from the config's ``algorithm`` section; estimators with options override this."""
        return cls()

    def estimate(self, batch: StepBatch) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class TrajectoryEstimator(StepEstimator):
    """Flow-GRPO: every trained step carries the trajectory advantage unchanged."""

    name = "trajectory"

    def estimate(self, batch: StepBatch) -> torch.Tensor:
        return batch.advantages[:, None].expand(-1, batch.num_train_steps).clone()


class NoiseWeightedEstimator(StepEstimator):
    """``A_i * w_t``, with ``w_t`` the injected-noise std of step t normalised to mean 1.

    Mean 1 keeps the total credit of a trajectory equal to Flow-GRPO's, so only its distribution
    over the steps changes, not the effective learning rate.
    """

    name = "noise_weighted"

    def estimate(self, batch: StepBatch) -> torch.Tensor:
        w = noise_weights(batch)
        return _finish(batch.advantages.detach().double().cpu()[:, None] * w[None, :], batch)


class PaperEstimator(StepEstimator):
    """``A_i * eta * std_dev_t`` (section 5); ``eta=None`` makes the weights average 1."""

    name = "paper"

    def __init__(self, eta: float | None = None) -> None:
        if eta is not None:
            eta_f = float(eta)
            if not math.isfinite(eta_f) or eta_f <= 0:
                raise ValueError(f"eta must be a finite number > 0 or None, got {eta!r}")
            eta = eta_f
        self.eta = eta

    @classmethod
    def from_config(cls, algorithm: Any) -> PaperEstimator:
        return cls(eta=algorithm.eta)

    def weights(self, batch: StepBatch) -> torch.Tensor:
        """``eta * std_dev_t`` over the trained steps (float64, shape [K])."""
        std = batch.std_devs.detach().double().cpu()[: batch.num_train_steps]
        if self.eta is None:
            return _normalise_mean_one(std, "std_dev_t")
        return self.eta * std

    def estimate(self, batch: StepBatch) -> torch.Tensor:
        return _finish(batch.advantages.detach().double().cpu()[:, None] * self.weights(batch)[None, :], batch)

    def __repr__(self) -> str:
        return f"PaperEstimator(eta={self.eta})"


def _normalise_per_group(x: torch.Tensor, group_ids: torch.Tensor | None, eps: float = 1e-4) -> torch.Tensor:
    """``(x - group mean) / (group std + eps)`` column by column (population std, as Flow-GRPO)."""
    if group_ids is None:
        return (x - x.mean(dim=0, keepdim=True)) / (x.std(dim=0, unbiased=False, keepdim=True) + eps)
    out = torch.empty_like(x)
    _, inverse = torch.unique(group_ids.detach().cpu(), return_inverse=True)
    for g in range(int(inverse.max()) + 1 if inverse.numel() else 0):
        members = inverse == g
        sub = x[members]
        out[members] = (sub - sub.mean(dim=0, keepdim=True)) / (sub.std(dim=0, unbiased=False, keepdim=True) + eps)
    return out


class TweedieTDEstimator(StepEstimator):
    """The step's gain ``V_{t+1} - V_t`` in the reward of the flow's endpoint guess.

    ``x0_hat(x_t) = x_t - s_t v(x_t, s_t)`` is what the model would output if it stopped here, so
    the change of its reward across a step is that step's contribution; the gains telescope to
    ``r(x_0) - V_0``. They are normalised per prompt group and per step, because the size of the
    gains varies a lot along the trajectory (early steps decide the layout) and between prompts.
    """

    name = "tweedie_td"
    needs_values = True

    def gains(self, batch: StepBatch) -> torch.Tensor:
        """Raw gains ``values[:, t + 1] - values[:, t]`` for all T steps (float64, [N, T])."""
        if batch.values is None:
            raise ValueError(f"the {self.name!r} step estimator needs batch.values (one reward per step), got None")
        v = batch.values.detach().double().cpu()
        if not bool(torch.all(torch.isfinite(v))):
            raise ValueError("batch.values must be finite")
        return v[:, 1:] - v[:, :-1]

    def estimate(self, batch: StepBatch) -> torch.Tensor:
        g = self.gains(batch)[:, : batch.num_train_steps]
        return _finish(_normalise_per_group(g, batch.group_ids), batch)


class MixedEstimator(StepEstimator):
    """``noise_weighted + lam * tweedie_td``: trajectory credit shaped by noise, plus the per-step gain."""

    name = "mixed"
    needs_values = True

    def __init__(self, lam: float = 0.5) -> None:
        lam_f = float(lam)
        if not math.isfinite(lam_f):
            raise ValueError(f"lam must be finite, got {lam!r}")
        self.lam = lam_f

    @classmethod
    def from_config(cls, algorithm: Any) -> MixedEstimator:
        return cls(lam=algorithm.mixed_lambda)

    def estimate(self, batch: StepBatch) -> torch.Tensor:
        w = noise_weights(batch)
        a = batch.advantages.detach().double().cpu()[:, None] * w[None, :]
        td = _normalise_per_group(TweedieTDEstimator().gains(batch)[:, : batch.num_train_steps], batch.group_ids)
        return _finish(a + self.lam * td, batch)

    def __repr__(self) -> str:
        return f"MixedEstimator(lam={self.lam})"


#: Step estimators by name, as the config spells them.
STEP_ESTIMATORS: dict[str, type[StepEstimator]] = {
    cls.name: cls
    for cls in (TrajectoryEstimator, NoiseWeightedEstimator, PaperEstimator, TweedieTDEstimator, MixedEstimator)
}


def make_step_estimator(name: str, **kwargs: Any) -> StepEstimator:
    """Build the estimator named by the config; its options (``eta``, ``lam``) go in ``kwargs``."""
    if name not in STEP_ESTIMATORS:
        raise ValueError(f"unknown step estimator {name!r}; known names: {', '.join(STEP_ESTIMATORS)}")
    try:
        return STEP_ESTIMATORS[name](**kwargs)
    except TypeError as err:
        raise ValueError(f"invalid options {sorted(kwargs)} for step estimator {name!r}: {err}") from None


def make_step_estimator_from_config(algorithm: Any) -> StepEstimator:
    """The estimator ``algorithm.step_advantage`` names, with its options from the same section."""
    if algorithm.step_advantage not in STEP_ESTIMATORS:
        raise ValueError(
            f"unknown step estimator {algorithm.step_advantage!r}; known names: {', '.join(STEP_ESTIMATORS)}"
        )
    return STEP_ESTIMATORS[algorithm.step_advantage].from_config(algorithm)
