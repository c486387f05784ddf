"""The RL algorithm proper (ALGORITHM.md sections 0-2), free of any model or sampler.

- ``trackers``: per-prompt reward trackers (value = SPO baseline, uncertainty = sampling priority);
- ``allocation``: which prompts an epoch draws and how many images each gets;
- ``advantages``: trajectory advantages (Flow-GRPO group baseline, SPO tracker baseline);
- ``step_advantages``: how a trajectory's advantage is shared among its denoising steps;
- ``loss``: the clipped policy-gradient loss and the KL to the base model;
- ``ema``: the EMA of the trained weights used for evaluation and checkpoints.

Everything here takes plain arrays and tensors, so it is tested against closed forms without a
model, and the trainer composes it.
"""

from superflow.rl.advantages import baseline_advantages, group_advantages, tied_groups, tracker_advantages
from superflow.rl.allocation import (
    EpochPlan,
    bin_allocation,
    draw_epoch_prompts,
    epoch_group_sizes,
    neyman_allocation,
    plan_epoch,
    prioritized_draw,
    round_to_budget,
    tag_balanced_weights,
    uniform_draw,
    water_fill,
)
from superflow.rl.ema import EMA
from superflow.rl.loss import clipped_policy_loss, kl_to_reference
from superflow.rl.step_advantages import (
    STEP_ESTIMATORS,
    MixedEstimator,
    NoiseWeightedEstimator,
    PaperEstimator,
    StepBatch,
    StepEstimator,
    TrajectoryEstimator,
    TweedieTDEstimator,
    make_step_estimator,
    make_step_estimator_from_config,
    noise_weights,
)
from superflow.rl.trackers import (
    TRACKERS,
    BetaTracker,
    GaussianTracker,
    drift_adaptive_rho,
    drift_adaptive_rho_by_key,
    make_tracker,
    make_tracker_from_config,
)

__all__ = [
    "BetaTracker",
    "GaussianTracker",
    "TRACKERS",
    "make_tracker",
    "make_tracker_from_config",
    "drift_adaptive_rho",
    "drift_adaptive_rho_by_key",
    "round_to_budget",
    "water_fill",
    "neyman_allocation",
    "bin_allocation",
    "prioritized_draw",
    "tag_balanced_weights",
    "uniform_draw",
    "draw_epoch_prompts",
    "epoch_group_sizes",
    "EpochPlan",
    "plan_epoch",
    "group_advantages",
    "tracker_advantages",
    "tied_groups",
    "baseline_advantages",
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
    "clipped_policy_loss",
    "kl_to_reference",
    "EMA",
]
