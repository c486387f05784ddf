"""Trainer paths beyond the method defaults: per-step values, Neyman sizes, drift-adaptive rho."""

import numpy as np
from helpers import tiny_config

from superflow.train import Trainer


def test_tweedie_td_scores_every_step_and_trains(tiny_sd3_dir, tmp_path):
    cfg = tiny_config(
        tiny_sd3_dir,
        tmp_path / "run",
        method="superflow",
        **{"num_epochs": 1, "algorithm.step_advantage": "tweedie_td"},
    )
    (m,) = Trainer(cfg, progress=False).run()
    steps = cfg.sample.num_steps
    assert m["reward_calls"] == m["images_sampled"] * (steps + 1)
    assert len(m["step_advantage_profile"]) == cfg.num_train_steps
    assert m["trained_samples"] > 0


def test_neyman_allocation_spends_exact_budget(tiny_sd3_dir, tmp_path):
    cfg = tiny_config(
        tiny_sd3_dir,
        tmp_path / "run",
        method="superflow",
        **{"num_epochs": 3, "algorithm.group_sizes": "neyman", "algorithm.rho_half_life": 0.5},
    )
    history = Trainer(cfg, progress=False).run()
    for m in history:
        assert sum(m["group_sizes"]) == cfg.budget == m["images_sampled"]
        assert min(m["group_sizes"]) >= cfg.algorithm.m_min and max(m["group_sizes"]) <= cfg.algorithm.m_max


def test_bins_allocation_sizes_follow_m_max(tiny_sd3_dir, tmp_path):
    cfg = tiny_config(tiny_sd3_dir, tmp_path / "run", method="superflow", **{"num_epochs": 2})
    history = Trainer(cfg, progress=False).run()
    allowed = set(range(cfg.algorithm.m_max - cfg.algorithm.num_bins + 1, cfg.algorithm.m_max + 1))
    for m in history:
        assert set(m["group_sizes"]) <= allowed


def test_same_seed_same_numbers(tiny_sd3_dir, tmp_path):
    runs = []
    for name in ("a", "b"):
        cfg = tiny_config(tiny_sd3_dir, tmp_path / name, method="flowspo", **{"num_epochs": 2})
        runs.append(Trainer(cfg, progress=False).run())

    def strip(h):
        return [{k: v for k, v in m.items() if not k.startswith("time_")} for m in h]

    assert strip(runs[0]) == strip(runs[1])
    other = tiny_config(tiny_sd3_dir, tmp_path / "c", method="flowspo", **{"num_epochs": 2, "seed": 1})
    assert strip(Trainer(other, progress=False).run()) != strip(runs[0])
    assert np.isfinite([m["reward_mean"] for m in runs[0]]).all()


def test_overlapped_reward_scoring_gives_the_same_run_as_inline_scoring(tiny_sd3_dir, tmp_path):
    import threading

    import torch

    from superflow.rewards import Reward, get_reward

    inner = get_reward("colour_target", rgb=[1.0, 0.0, 0.0])
    threads = []

    def recording(images, prompts, metadata):
        threads.append(threading.current_thread().name)
        return inner.fn(images, prompts, metadata)

    runs, params = [], []
    for overlap in (False, True):
        cfg = tiny_config(
            tiny_sd3_dir,
            tmp_path / str(overlap),
            num_epochs=2,
            **{"sample.batch_size": 4, "sample.overlap_reward": overlap},
        )
        trainer = Trainer(cfg, reward=Reward("red", recording, (0, 1)), progress=False)
        runs.append([{k: v for k, v in m.items() if not k.startswith("time_")} for m in trainer.run()])
        params.append([p.detach().clone() for p in trainer.params])
    assert runs[0] == runs[1]
    assert all(torch.equal(a, b) for a, b in zip(*params, strict=True))
    calls = len(threads) // 2  # 3 batches of 4 images per epoch, 2 epochs, per run
    assert (
        calls == 6 and set(threads[:calls]) == {"MainThread"} and all(t.startswith("reward") for t in threads[calls:])
    )
