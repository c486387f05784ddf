"""The range and consistency rules of a resolved config: (dotted key, holds, why not) per rule.

Kept apart from ``config.py`` (the schema and the loading) so each stays one screenful of intent;
``config.resolve`` raises a ``ConfigError`` naming the first key whose rule fails.
"""

from __future__ import annotations

from typing import Any

from superflow.method_defaults import MINIFLOW_DTYPES


def range_checks(cfg: Any) -> list[tuple[str, bool, str]]:
    """``cfg`` is a resolved ``superflow.config.Config`` (not imported: config.py imports this module)."""
    sample = cfg.sample
    window = list(sample.sde_window_range)
    lo, hi = (window + [0, 0])[:2]
    last_trained = hi - 1 if sample.sde_window_size else cfg.num_train_steps - 1
    return [
        ("sample.sde_window_size", sample.sde_window_size >= 0, "must be >= 0 (0: every step stochastic)"),
        ("sample.noise_level", cfg.sample.noise_level > 0, "must be > 0 for training (the SDE needs noise)"),
        ("sample.num_steps", cfg.sample.num_steps >= 1, "must be >= 1"),
        ("train.timestep_fraction", 0 < cfg.train.timestep_fraction <= 1, "must be in (0, 1]"),
        ("train.timestep_fraction", cfg.num_train_steps >= 1, "trains no step with this sample.num_steps"),
        ("algorithm.rho", 0 < cfg.algorithm.rho <= 1, "must be in (0, 1]"),
        ("algorithm.m_min", cfg.algorithm.m_min >= 2, "must be >= 2 (a group of one has no variance)"),
        ("algorithm.m_max", cfg.algorithm.m_max >= cfg.algorithm.m_min, "must be >= algorithm.m_min"),
        (
            "algorithm.num_bins",
            cfg.algorithm.group_sizes != "bins"
            or cfg.algorithm.m_max - cfg.algorithm.num_bins + 1 >= cfg.algorithm.m_min,
            f"leaves the last bin a group of {cfg.algorithm.m_max - cfg.algorithm.num_bins + 1} "
            "(bin b gets m_max - b + 1 images; need >= algorithm.m_min)",
        ),
        ("sample.group_size", cfg.sample.group_size >= 2, "must be >= 2"),
        ("sample.prompts_per_epoch", cfg.sample.prompts_per_epoch >= 1, "must be >= 1"),
        ("train.updates_per_epoch", cfg.train.updates_per_epoch >= 1, "must be >= 1"),
        ("save_every", cfg.save_every >= 1, "must be >= 1"),
        ("save_total_limit", cfg.save_total_limit >= 1, "must be >= 1"),
        (
            "algorithm.step_advantage",
            cfg.algorithm.objective == "policy_gradient" or cfg.algorithm.step_advantage == "trajectory",
            "must be 'trajectory' with objectives 'nft' and 'awm' (they train on clean images, not SDE transitions)",
        ),
        ("train.nft_beta", cfg.train.nft_beta > 0, "must be > 0"),
        (
            "sample.same_initial_noise",
            not sample.same_initial_noise or (sample.noise_level > 0 and cfg.algorithm.objective != "nft"),
            "needs stochastic sampling (sample.noise_level > 0, an objective other than 'nft', which samples with "
            "the ODE): from one start the ODE draws one image, and every group would tie",
        ),
        (
            "sample.sde_window_range",
            len(window) == 2 and 0 <= lo and hi <= sample.num_steps and hi - lo >= sample.sde_window_size,
            "must be [lo, hi) with 0 <= lo, hi <= sample.num_steps and room for sample.sde_window_size steps",
        ),
        (
            "sample.sde_window_size",
            sample.sde_window_size == 0 or cfg.algorithm.step_advantage == "trajectory",
            "needs algorithm.step_advantage 'trajectory' (the step-level estimators assume every early step is SDE)",
        ),
        (
            "sample.sde_window_size",
            sample.sde_window_size == 0 or cfg.algorithm.objective == "policy_gradient",
            "needs algorithm.objective 'policy_gradient' (a window chooses which SDE transitions train)",
        ),
        (
            "sample.sde_type",
            sample.sde_type == "sde" or (0 < sample.noise_level <= 1 and cfg.algorithm.step_advantage == "trajectory"),
            "'cps' needs sample.noise_level in (0, 1] and algorithm.step_advantage 'trajectory' (the step-level "
            "estimators weight steps by the SDE's noise, not CPS's)",
        ),
        (
            "sample.sde_last_step",
            last_trained < sample.num_steps - 1 or (sample.sde_type == "sde" and sample.sde_last_step),
            "leaves the last step deterministic but trains it (lower train.timestep_fraction or the window range)",
        ),
        (
            "model.dtype",
            cfg.model.kind != "mini" or cfg.model.dtype in MINIFLOW_DTYPES,
            "MiniFlow runs in float32, under bfloat16 autocast or auto (bfloat16 where the CPU has it natively)",
        ),
        (
            "model.dtype",
            cfg.model.kind != "sd3" or cfg.model.dtype != "auto",
            "'auto' is MiniFlow's; SD3 takes float32, bfloat16 or float16",
        ),
        (
            "log.backends",
            set(cfg.log.backends) <= {"jsonl", "tensorboard", "wandb"},
            "takes jsonl, tensorboard, wandb",
        ),
        ("log.samples", cfg.log.samples >= 0, "must be >= 0"),
        ("train.old_decay_cap", 0 <= cfg.train.old_decay_cap < 1, "must be in [0, 1)"),
        ("train.awm_ghuber_power", 0 < cfg.train.awm_ghuber_power <= 1, "must be in (0, 1]"),
        ("train.old_decay_rate", cfg.train.old_decay_rate >= 0, "must be >= 0"),
    ]
