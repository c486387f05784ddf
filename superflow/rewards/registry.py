"""The reward registry: names to reward functions, and user rewards from files or modules.

A reward is ``fn(images, prompts, metadata) -> (scores, info)``: ``images`` a float tensor
[B, 3, H, W] in [0, 1] on the CPU, ``prompts`` a list of strings, ``metadata`` a list of dicts
(one per prompt, e.g. GenEval's ``include``/``exclude``), ``scores`` B floats and ``info`` a dict of
extra per-batch numbers for logging. Rewards bounded to [0, 1] declare it, which lets the
trainer track them with Beta counts.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

RewardFn = Callable[[torch.Tensor, Sequence[str], Sequence[dict]], tuple[Any, dict]]


class RewardError(ValueError):
    """A reward is unknown, misdeclared or returned unusable scores."""


@dataclass(frozen=True)
class Reward:
    """A named, callable reward with its declared range."""

    name: str
    fn: RewardFn
    bounds: tuple[float, float] | None = None  # (0, 1) for accuracies; None when unbounded
    #: Keys every prompt's metadata must have (checked when the prompt files load, naming file and line).
    metadata_keys: tuple[str, ...] = ()

    @property
    def bounded_unit(self) -> bool:
        return self.bounds == (0.0, 1.0)

    def __call__(self, images: torch.Tensor, prompts: Sequence[str], metadata: Sequence[dict] | None = None):
        metadata = list(metadata) if metadata is not None else [{} for _ in prompts]
        out = self.fn(images, list(prompts), metadata)
        scores, info = out if isinstance(out, tuple) else (out, {})
        scores = np.asarray(torch.as_tensor(scores, dtype=torch.float64).cpu(), dtype=np.float64).reshape(-1)
        if scores.shape[0] != len(prompts):
            raise RewardError(f"reward {self.name!r} returned {scores.shape[0]} scores for {len(prompts)} images")
        bad = np.flatnonzero(~np.isfinite(scores))
        if bad.size:
            i = int(bad[0])
            raise RewardError(
                f"reward {self.name!r} returned {scores[i]} for image {i} (prompt {prompts[i]!r}); "
                f"{bad.size} of {len(scores)} scores are not finite"
            )
        if self.bounds is not None:
            lo, hi = self.bounds
            out_of_range = np.flatnonzero((scores < lo - 1e-6) | (scores > hi + 1e-6))
            if out_of_range.size:
                i = int(out_of_range[0])
                raise RewardError(
                    f"reward {self.name!r} declares range [{lo}, {hi}] but returned {scores[i]} for image {i} "
                    f"(prompt {prompts[i]!r})"
                )
        return scores, dict(info or {})


_REGISTRY: dict[str, Callable[..., Reward]] = {}


def register_reward(name: str, bounds: tuple[float, float] | None = None, metadata_keys: Sequence[str] = ()):
    """Register a reward *factory* under ``name``.

    The decorated function takes the config's ``reward.kwargs`` and returns the scoring function,
    so expensive models load once, when the trainer starts::

        @register_reward("brightness", bounds=(0, 1))
        def brightness(**kwargs):
            return lambda images, prompts, metadata: (images.mean(dim=(1, 2, 3)), {})
    """

    def decorator(factory: Callable[..., RewardFn]):
        if name in _REGISTRY:
            raise RewardError(f"reward {name!r} is registered twice")

        def build(**kwargs) -> Reward:
            fn = factory(**kwargs)  # a factory may decide the range at build time (a served reward)
            return Reward(name, fn, _as_bounds(getattr(fn, "bounds", bounds)), tuple(metadata_keys))

        _REGISTRY[name] = build
        return factory

    return decorator


def _as_bounds(bounds) -> tuple[float, float] | None:
    return None if bounds is None else (float(bounds[0]), float(bounds[1]))


def reward_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


#: Modules whose import registers the built-in rewards (each imports its heavy stack lazily).
BUILTIN_MODULES = (
    "superflow.rewards.simple",
    "superflow.rewards.mini_preference",
    "superflow.rewards.geneval",
    "superflow.rewards.ocr",
    "superflow.rewards.pickscore",
    "superflow.rewards.server",
)


def _load_builtin() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def _load_user_function(spec: str) -> Callable:
    target, _, attr = spec.rpartition(":")
    if target.endswith(".py") or "/" in target:
        path = Path(target)
        if not path.is_file():
            raise RewardError(f"reward {spec!r}: file {path} not found")
        module_name = f"superflow_user_reward_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)  # type: ignore[union-attr]
        except Exception as err:
            raise RewardError(f"reward {spec!r}: importing {path} failed: {err}") from err
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as err:
            raise RewardError(f"reward {spec!r}: cannot import module {target!r}: {err}") from err
    if not hasattr(module, attr):
        raise RewardError(f"reward {spec!r}: {target} has no attribute {attr!r}")
    return getattr(module, attr)


def get_reward(name: str, **kwargs) -> Reward:
    """Build the reward ``name``: a registered name, or ``file.py:fn`` / ``module:fn``.

    A user function given by path is the reward itself (or, when ``kwargs`` are given, a factory
    called with them); it may carry a ``bounds`` attribute, e.g. ``(0, 1)``, to declare its range.
    """
    _load_builtin()
    if name in _REGISTRY:
        return _REGISTRY[name](**kwargs)
    if ":" in name:
        fn = _load_user_function(name)
        bounds = getattr(fn, "bounds", None)
        if kwargs:
            fn = fn(**kwargs)
        return Reward(name=name, fn=fn, bounds=_as_bounds(getattr(fn, "bounds", bounds)))
    close = [n for n in _REGISTRY if n.startswith(name[:3])]
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise RewardError(
        f"unknown reward {name!r}{hint}; registered rewards: {', '.join(sorted(_REGISTRY))}; "
        "or give 'path/to/file.py:function' or 'package.module:function'"
    )
