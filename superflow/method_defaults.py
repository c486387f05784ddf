"""What ``method=NAME`` means: the defaults it fills into the unset ``algorithm.*`` switches (a dotted
key, ``sample.sde_window_size``, another section's unset key), and the
valid values of every string switch (docs/METHODS.md has the table in prose)."""

from __future__ import annotations

from typing import Any

__all__ = ["METHOD_DEFAULTS", "CHOICES", "MINIFLOW_DTYPES"]

_FLOWGRPO: dict[str, Any] = dict(
    baseline="group",
    global_std=False,
    prompt_draw="uniform",
    group_sizes="fixed",
    step_advantage="trajectory",
    skip_tied_groups=True,
    objective="policy_gradient",
)
_FLOWSPO = {**_FLOWGRPO, "baseline": "tracker", "prompt_draw": "prioritized", "skip_tied_groups": False}
_SUPERFLOW = {**_FLOWSPO, "group_sizes": "bins", "step_advantage": "paper"}
# DiffusionNFT (NVlabs/DiffusionNFT, config/nft.py): group mean with the batch's std, every sample
# trains (a tied group is a proximal pull), no step-level credit (it has no SDE transitions).
_NFT = {**_FLOWGRPO, "global_std": True, "skip_tied_groups": False, "objective": "nft"}

METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "flowgrpo": _FLOWGRPO,
    "flowspo": _FLOWSPO,
    "superflow": _SUPERFLOW,
    "nft": _NFT,
    # Advantage Weighted Matching (scxue/advantage_weighted_matching, config/dgx_awm.py): the
    # advantages of NFT (Flow-GRPO's with the batch's std), every sample trains.
    "awm": {**_NFT, "objective": "awm"},
    # Flow-GRPO-Fast (yifan123/flow_grpo, scripts/train_sd3_fast.py, config/grpo.py): Flow-GRPO's loss
    # on an SDE window of 3 steps inside the first half, ODE elsewhere. A dotted key sets that section.
    "flowgrpo_fast": {**_FLOWGRPO, "sample.sde_window_size": 3},
    # SuperFlow's allocation, prioritised draws and tracker baseline feeding the NFT update.
    "superflow_nft": {**_SUPERFLOW, "step_advantage": "trajectory", "objective": "nft"},
}

#: Valid values of the string switches. The algorithm's names are those the rl/ factories know
#: (repeated here because reading a config must not import torch; a test keeps them equal).
CHOICES: dict[str, tuple[str, ...]] = {
    "algorithm.baseline": ("group", "tracker"),
    "algorithm.prompt_draw": ("uniform", "prioritized"),
    "algorithm.group_sizes": ("fixed", "neyman", "bins"),
    "algorithm.step_advantage": ("trajectory", "noise_weighted", "paper", "tweedie_td", "mixed"),
    "algorithm.tracker": ("auto", "beta", "gaussian"),
    "algorithm.unseen_prior": ("fixed", "tag"),
    "algorithm.objective": ("policy_gradient", "nft", "awm"),
    "sample.sde_type": ("sde", "cps"),
    "model.kind": ("sd3", "mini"),
    "model.dtype": ("float32", "bfloat16", "float16", "auto"),
}

#: MiniFlow's precisions (fp16 autocast is not offered on CPU; ``auto`` is bf16 where it is native).
MINIFLOW_DTYPES: tuple[str, ...] = ("float32", "bfloat16", "auto")
