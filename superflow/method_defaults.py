"""What ``method=NAME`` means: the defaults it fills into the unset ``algorithm.*`` switches, and the
valid values of every string switch (docs/METHODS.md has the table in prose)."""

from __future__ import annotations

from typing import Any

__all__ = ["METHOD_DEFAULTS", "CHOICES"]

METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "flowgrpo": dict(
        baseline="group",
        global_std=False,
        prompt_draw="uniform",
        group_sizes="fixed",
        step_advantage="trajectory",
        skip_tied_groups=True,
        objective="policy_gradient",
    ),
    "flowspo": dict(
        baseline="tracker",
        global_std=False,
        prompt_draw="prioritized",
        group_sizes="fixed",
        step_advantage="trajectory",
        skip_tied_groups=False,
        objective="policy_gradient",
    ),
    "superflow": dict(
        baseline="tracker",
        global_std=False,
        prompt_draw="prioritized",
        group_sizes="bins",
        step_advantage="paper",
        skip_tied_groups=False,
        objective="policy_gradient",
    ),
    # DiffusionNFT (NVlabs/DiffusionNFT, config/nft.py): group mean with the batch's std, every
    # sample trains (a tied group is a proximal pull), no step-level credit (no SDE transitions).
    "nft": dict(
        baseline="group",
        global_std=True,
        prompt_draw="uniform",
        group_sizes="fixed",
        step_advantage="trajectory",
        skip_tied_groups=False,
        objective="nft",
    ),
    # Advantage Weighted Matching (scxue/advantage_weighted_matching, config/dgx_awm.py): the same
    # advantages as Flow-GRPO with the batch's std; every sample trains.
    "awm": dict(
        baseline="group",
        global_std=True,
        prompt_draw="uniform",
        group_sizes="fixed",
        step_advantage="trajectory",
        skip_tied_groups=False,
        objective="awm",
    ),
    # SuperFlow's allocation, prioritised draws and tracker baseline feeding the NFT update.
    "superflow_nft": dict(
        baseline="tracker",
        global_std=False,
        prompt_draw="prioritized",
        group_sizes="bins",
        step_advantage="trajectory",
        skip_tied_groups=False,
        objective="nft",
    ),
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
    "model.kind": ("sd3", "mini"),
    "model.dtype": ("float32", "bfloat16", "float16"),
}
