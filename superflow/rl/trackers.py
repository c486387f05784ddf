"""Per-prompt reward trackers (ALGORITHM.md section 1 and the SPO-style tracker of section 5).

A tracker remembers, across epochs, how each prompt has been rewarded. Two things are read off it:
its *value* (expected reward, the SPO baseline ``A = r - v(c)`` that lets small or tied groups still
carry signal) and its *uncertainty* (the reward standard deviation, which decides how many samples
a prompt gets and how often it is drawn). Old rewards were produced by an older policy, so each
update first discounts the stored evidence by a forgetting factor ``rho``; a prompt not sampled in
an epoch is left untouched, since no new evidence arrived to replace the old.

Keys are prompt strings. State is kept in plain Python floats so that ``state_dict()`` is JSON
(checkpoints stay human-readable and exactly reproducible on resume).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from superflow.rl._checks import as_1d_float, check_float

__all__ = ["BetaTracker", "GaussianTracker", "TRACKERS", "make_tracker", "drift_adaptive_rho"]

#: ``drift_adaptive_rho`` never returns less than this. A drift so large that ``2**(-D/h)``
#: underflows means "forget almost everything", not an invalid rho of 0.
MIN_RHO = 1e-12


def _check_rho(rho: Any, name: str) -> float:
    return check_float(rho, name, lo=0.0, hi=1.0, lo_open=True)


class _Tracker:
    """The bookkeeping shared by both trackers: grouping, forgetting, (de)serialisation."""

    kind: str = ""
    #: Number of floats in one record (the sufficient statistics of one prompt).
    _record_size: int = 0

    def __init__(self, rho: float = 1.0, groups: Mapping[str, str] | None = None) -> None:
        self.rho = _check_rho(rho, "rho")
        self._records: dict[str, list[float]] = {}
        self.groups = dict(groups) if groups is not None else None

    # -- hooks implemented by the concrete trackers ---------------------------------------------
    def _fresh(self) -> list[float]:
        raise NotImplementedError

    def _absorb(self, record: list[float], rho: float, rewards: np.ndarray) -> list[float]:
        raise NotImplementedError

    def _check_rewards(self, rewards: np.ndarray, keys: Sequence[str]) -> None:
        pass

    def _record_value(self, record: list[float]) -> float:
        raise NotImplementedError

    def _record_uncertainty(self, record: list[float]) -> float:
        return math.sqrt(self._record_variance(record))

    def _record_variance(self, record: list[float]) -> float:
        raise NotImplementedError

    def _unseen(self) -> tuple[float, float]:
        """(value, uncertainty) reported for a prompt the tracker has no evidence for."""
        raise NotImplementedError

    def _pooled(self, records: list[list[float]]) -> tuple[float, float]:
        """(mean value, root-mean-square uncertainty) of ``records``: what a prompt like them expects."""
        value = float(np.mean([self._record_value(r) for r in records]))
        return value, math.sqrt(float(np.mean([self._record_variance(r) for r in records])))

    def _fallbacks(self, keys: list[str]) -> dict[str, tuple[float, float]]:
        """(value, uncertainty) of each unseen key: its group's pooled records when the tracker has
        groups and has seen prompts of that group, else ``_unseen()``.

        Most training prompts come up once or twice in a run (thousands of prompts, tens per epoch),
        so without groups nearly every prompt drawn is unseen and ties at the prior: the allocation
        then has nothing to rank. A prompt's group (its GenEval tag, say) predicts its reward spread.
        """
        unseen = [k for k in keys if k not in self._records]
        if not unseen:
            return {}
        if self.groups is None:
            return dict.fromkeys(unseen, self._unseen())
        members: dict[str, list[list[float]]] = {}
        for k, record in self._records.items():
            members.setdefault(self.groups.get(k, ""), []).append(record)
        pooled = {g: self._pooled(records) for g, records in members.items()}
        groups = {k: self.groups.get(k, "") for k in unseen}
        if any(g not in pooled for g in groups.values()):
            pooled[None] = self._unseen()  # pools every record (Gaussian): once, not once per key
        return {k: pooled[g] if g in pooled else pooled[None] for k, g in groups.items()}

    # -- public API -----------------------------------------------------------------------------
    def update(
        self,
        keys: Sequence[str],
        rewards: np.ndarray | torch.Tensor,
        rho: float | Mapping[str, float] | None = None,
    ) -> None:
        """Fold one epoch of rewards into the records of the prompts that were sampled.

        Forgetting is applied once per prompt and epoch, however many samples the prompt had, so
        that ``rho`` means "weight of last epoch's evidence" independently of the group size.
        ``rho`` overrides the tracker's constant: a number for all keys, or a mapping from key to
        rho (drift-adaptive forgetting); keys missing from the mapping use the constant.
        """
        keys = self._check_keys(keys)
        r = as_1d_float(rewards, "rewards")
        if len(keys) != len(r):
            raise ValueError(f"keys and rewards must have the same length, got {len(keys)} keys and {len(r)} rewards")
        self._check_rewards(r, keys)
        per_key_rho: Mapping[str, float] | None = None
        default_rho = self.rho
        if isinstance(rho, Mapping):
            per_key_rho = rho
        elif rho is not None:
            default_rho = _check_rho(rho, "rho")
        groups: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(k, []).append(i)
        # Validate every rho before touching any record: a failed update must leave no half-state.
        rhos = {
            k: (
                _check_rho(per_key_rho[k], f"rho[{k!r}]")
                if per_key_rho is not None and k in per_key_rho
                else default_rho
            )
            for k in groups
        }
        for k, idx in groups.items():
            record = self._records.get(k)
            if record is None:
                record = self._fresh()
            self._records[k] = self._absorb(list(record), rhos[k], r[idx])

    def value(self, keys: Sequence[str]) -> np.ndarray:
        """Expected reward of each prompt (the tracker baseline)."""
        keys = self._check_keys(keys)
        fallback = self._fallbacks(keys)
        return np.array(
            [self._record_value(self._records[k]) if k in self._records else fallback[k][0] for k in keys],
            dtype=np.float64,
        )

    def uncertainty(self, keys: Sequence[str]) -> np.ndarray:
        """Reward standard deviation of each prompt (drives group sizes and prompt draws)."""
        keys = self._check_keys(keys)
        fallback = self._fallbacks(keys)
        return np.array(
            [self._record_uncertainty(self._records[k]) if k in self._records else fallback[k][1] for k in keys],
            dtype=np.float64,
        )

    def seen(self, keys: Sequence[str]) -> np.ndarray:
        """Whether each prompt has ever been updated."""
        keys = self._check_keys(keys)
        return np.array([k in self._records for k in keys], dtype=bool)

    def __len__(self) -> int:
        return len(self._records)

    def seen_keys(self) -> list[str]:
        """The prompts updated so far, in the order they were first seen."""
        return list(self._records)

    def state_dict(self) -> dict[str, Any]:
        """Plain-Python (JSON-serialisable) snapshot of the tracker."""
        return {
            "kind": self.kind,
            **self._hyperparameters(),
            "records": {k: [float(v) for v in rec] for k, rec in self._records.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the records of ``state_dict()``.

        Only the records are restored; rho and the priors stay as constructed, so that a resumed
        run follows its (possibly edited) configuration rather than the checkpoint's.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"state must be a mapping, got {type(state).__name__}")
        kind = state.get("kind")
        if kind != self.kind:
            raise ValueError(f"state is for a {kind!r} tracker, cannot load it into a {self.kind!r} tracker")
        records = state.get("records")
        if not isinstance(records, Mapping):
            raise ValueError(f"state['records'] must be a mapping, got {type(records).__name__}")
        loaded: dict[str, list[float]] = {}
        for k, rec in records.items():
            if not isinstance(k, str):
                raise ValueError(f"state['records'] keys must be strings, got {k!r}")
            if not isinstance(rec, (list, tuple)) or len(rec) != self._record_size:
                raise ValueError(f"state['records'][{k!r}] must be a list of {self._record_size} numbers, got {rec!r}")
            values = [float(v) for v in rec]
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"state['records'][{k!r}] must be finite, got {rec!r}")
            loaded[k] = values
        self._records = loaded

    def _hyperparameters(self) -> dict[str, float]:
        return {"rho": self.rho}

    @staticmethod
    def _check_keys(keys: Sequence[str]) -> list[str]:
        if isinstance(keys, str):
            raise ValueError(f"keys must be a sequence of strings, got the single string {keys!r}")
        out = list(keys)
        for k in out:
            if not isinstance(k, str):
                raise ValueError(f"keys must be strings, got {k!r} of type {type(k).__name__}")
        return out

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self._hyperparameters().items())
        return f"{type(self).__name__}({params}, prompts={len(self)})"


class BetaTracker(_Tracker):
    """Beta-Bernoulli counts for rewards in [0, 1] (GenEval, OCR).

    Fractional rewards are treated as fractional successes, so the counts stay the sufficient
    statistic of a Beta posterior and ``p (1 - p)`` bounds the reward variance of the prompt.
    The default Jeffreys prior (0.5, 0.5) gives unseen prompts p = 0.5, i.e. maximal uncertainty:
    they get large groups and are drawn often until evidence says otherwise.
    """

    kind = "beta"
    _record_size = 2

    def __init__(
        self,
        rho: float = 1.0,
        prior_alpha: float = 0.5,
        prior_beta: float = 0.5,
        groups: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(rho, groups)
        self.prior_alpha = check_float(prior_alpha, "prior_alpha", lo=0.0, lo_open=True)
        self.prior_beta = check_float(prior_beta, "prior_beta", lo=0.0, lo_open=True)

    def _fresh(self) -> list[float]:
        return [self.prior_alpha, self.prior_beta]

    def _absorb(self, record: list[float], rho: float, rewards: np.ndarray) -> list[float]:
        alpha, beta = record
        return [rho * alpha + float(rewards.sum()), rho * beta + float((1.0 - rewards).sum())]

    def _check_rewards(self, rewards: np.ndarray, keys: Sequence[str]) -> None:
        bad = (rewards < 0) | (rewards > 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"rewards must lie in [0, 1] for the Beta tracker, got {rewards[i]} at index {i} (key {keys[i]!r}); "
                "use the 'gaussian' tracker for unbounded rewards"
            )

    def _record_value(self, record: list[float]) -> float:
        alpha, beta = record
        return alpha / (alpha + beta)

    def _record_variance(self, record: list[float]) -> float:
        p = self._record_value(record)
        return max(p * (1.0 - p), 0.0)

    def _unseen(self) -> tuple[float, float]:
        prior = [self.prior_alpha, self.prior_beta]
        return self._record_value(prior), self._record_uncertainty(prior)

    def _hyperparameters(self) -> dict[str, float]:
        return {"rho": self.rho, "prior_alpha": self.prior_alpha, "prior_beta": self.prior_beta}


class GaussianTracker(_Tracker):
    """Discounted mean and variance for unbounded rewards (PickScore).

    There is no natural prior on an unbounded scale, so an unseen prompt borrows from the prompts
    already seen: their average value and their pooled standard deviation. Before anything is seen
    the uncertainty is 1.0, which only matters relatively (all prompts are then equal anyway).
    """

    kind = "gaussian"
    _record_size = 3  # [discounted count w, discounted sum s1, discounted sum of squares s2]

    def _fresh(self) -> list[float]:
        return [0.0, 0.0, 0.0]

    def _absorb(self, record: list[float], rho: float, rewards: np.ndarray) -> list[float]:
        w, s1, s2 = record
        return [rho * w + float(len(rewards)), rho * s1 + float(rewards.sum()), rho * s2 + float((rewards**2).sum())]

    def _record_value(self, record: list[float]) -> float:
        w, s1, _ = record
        return s1 / w

    def _record_variance(self, record: list[float]) -> float:
        w, s1, s2 = record
        mean = s1 / w
        return max(s2 / w - mean * mean, 0.0)  # cancellation can make it slightly negative

    def _unseen(self) -> tuple[float, float]:
        if not self._records:
            return 0.0, 1.0
        return self._pooled(list(self._records.values()))


#: Tracker kinds by name, as the config spells them.
TRACKERS: dict[str, type[_Tracker]] = {"beta": BetaTracker, "gaussian": GaussianTracker}


def make_tracker(kind: str, **kwargs: Any) -> BetaTracker | GaussianTracker:
    """Build the tracker named by the config (``"beta"`` or ``"gaussian"``)."""
    if kind not in TRACKERS:
        raise ValueError(f"unknown tracker kind {kind!r}; known kinds: {', '.join(sorted(TRACKERS))}")
    return TRACKERS[kind](**kwargs)  # type: ignore[return-value]


#: The config's names of what an unseen prompt borrows (``algorithm.unseen_prior``); ``config.CHOICES``
#: must list the same (a test checks).
UNSEEN_PRIORS = ("fixed", "tag")


def make_tracker_from_config(
    algorithm, bounded_unit: bool, tags: Mapping[str, str] | None = None
) -> BetaTracker | GaussianTracker:
    """The tracker ``algorithm.tracker`` names; ``"auto"`` is Beta for a reward bounded to [0, 1]
    (success counts), Gaussian otherwise. With ``algorithm.unseen_prior="tag"`` an unseen prompt
    borrows the pooled records of the seen prompts with its tag (``tags``: prompt -> tag)."""
    kind = algorithm.tracker if algorithm.tracker != "auto" else ("beta" if bounded_unit else "gaussian")
    if algorithm.unseen_prior not in UNSEEN_PRIORS:
        raise ValueError(f"unknown unseen prior {algorithm.unseen_prior!r}; known: {', '.join(UNSEEN_PRIORS)}")
    groups = (tags or {}) if algorithm.unseen_prior == "tag" else None
    return make_tracker(kind, rho=algorithm.rho, groups=groups)


def drift_adaptive_rho(
    old_log_probs: np.ndarray | torch.Tensor,
    new_log_probs: np.ndarray | torch.Tensor,
    half_life: float,
) -> float:
    """SPO's forgetting factor ``2 ** (-D / half_life)``, D the mean absolute log-prob change.

    The more the policy has moved on a prompt's own samples, the less its old rewards say about
    the current policy; ``half_life`` is the drift at which old evidence counts half.
    """
    half_life = check_float(half_life, "half_life", lo=0.0, lo_open=True)
    old = as_1d_float(np.ravel(_numpy(old_log_probs)), "old_log_probs", allow_empty=False)
    new = as_1d_float(np.ravel(_numpy(new_log_probs)), "new_log_probs", allow_empty=False)
    if old.shape != new.shape:
        raise ValueError(f"old_log_probs and new_log_probs must have the same size, got {old.size} and {new.size}")
    drift = float(np.mean(np.abs(new - old)))
    return max(2.0 ** (-drift / half_life), MIN_RHO)


def drift_adaptive_rho_by_key(keys: Sequence[str], log_prob_changes: np.ndarray, half_life: float) -> dict[str, float]:
    """``drift_adaptive_rho`` per prompt key, from each sample's mean |log-prob change|: a prompt
    whose samples moved a lot this epoch keeps less of its old reward statistics."""
    changes, keys_arr = np.asarray(log_prob_changes), np.asarray(keys)
    return {
        k: drift_adaptive_rho(np.zeros(1), np.asarray([changes[keys_arr == k].mean()]), half_life)
        for k in dict.fromkeys(keys)
    }


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)
