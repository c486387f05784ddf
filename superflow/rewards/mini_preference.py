"""The mini world's preference reward: the learned dual-encoder preference model's score.

The model stands in for PickScore; it was fitted to pairs labelled by the world's hidden
preference (:mod:`superflow.world.preference`), which the RL reward never sees.
"""

from __future__ import annotations

import torch

from superflow.rewards.registry import register_reward


@register_reward("mini_preference")
def mini_preference(path: str | None = None, device: str = "cpu", batch_size: int = 256):
    """The learned preference model's score (unbounded, like PickScore)."""
    from superflow.world.preference_model import load_preference_model

    model = load_preference_model(path).to(device)

    @torch.no_grad()
    def score(images, prompts, metadata):
        out = [
            model(images[i : i + batch_size], prompts[i : i + batch_size]).cpu()
            for i in range(0, len(prompts), batch_size)
        ]
        scores = torch.cat(out)
        return scores, {"preference_mean": float(scores.mean())}

    return score
