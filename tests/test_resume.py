"""A run killed with SIGKILL and resumed ends exactly where an uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
import time

import torch
import yaml
from helpers import tiny_config

from superflow.checkpoint import list_checkpoints, load_checkpoint
from superflow.train import TIMING_KEYS, Trainer


def _write(cfg, path):
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    return path


def _run(config_path, *extra, wait=True):
    cmd = [sys.executable, "-m", "superflow", "train", "--config", str(config_path), "--quiet", *extra]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _deterministic(path):
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


def test_sigkill_then_resume_matches_uninterrupted(tiny_sd3_dir, tmp_path):
    common = {"num_epochs": 4, "save_every": 1, "train.ema": True, "train.ema_every": 1}
    full = tiny_config(tiny_sd3_dir, tmp_path / "full", method="superflow", **common)
    killed = tiny_config(tiny_sd3_dir, tmp_path / "killed", method="superflow", **common)
    result = _run(_write(full, tmp_path / "full.yaml"))
    assert result.returncode == 0, result.stderr

    proc = _run(_write(killed, tmp_path / "killed.yaml"), wait=False)
    deadline = time.time() + 300
    ckpts = tmp_path / "killed" / "checkpoints"
    while time.time() < deadline and not any(p.name.endswith("000002") for p in list_checkpoints(ckpts)):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "lora").exists(), "the run finished before it was killed"

    result = _run(tmp_path / "killed.yaml", "--resume")
    assert result.returncode == 0, result.stderr

    assert _deterministic(tmp_path / "killed" / "metrics.jsonl") == _deterministic(tmp_path / "full" / "metrics.jsonl")
    a, _ = load_checkpoint(list_checkpoints(tmp_path / "full" / "checkpoints")[-1])
    b, _ = load_checkpoint(list_checkpoints(tmp_path / "killed" / "checkpoints")[-1])
    assert a["global_step"] == b["global_step"]
    for x, y in zip(a["params"], b["params"], strict=True):
        assert torch.equal(x, y)
    for x, y in zip(a["ema"]["parameters"], b["ema"]["parameters"], strict=True):
        assert torch.equal(x, y)
    assert a["tracker"] == b["tracker"]


def test_a_config_saved_before_the_window_keys_existed_resumes_unchanged(tmp_path):
    """Keys added later (the SDE window, CPS, shared starts) are no change when they compute what the old run did;
    set to something else they are."""
    from superflow.config import dump_config, load_config
    from superflow.run_folder import changed_config_keys

    cfg = load_config("preset:mini_geneval", [])
    old = yaml.safe_load(dump_config(cfg))
    for key in ("sde_type", "sde_window_size", "sde_window_range", "same_initial_noise"):
        del old["sample"][key]
    saved = tmp_path / "config.yaml"
    saved.write_text(yaml.safe_dump(old))
    assert changed_config_keys(saved, cfg) == []
    fast = load_config("preset:mini_geneval", ["method=flowgrpo_fast"])
    assert {"sample.sde_window_size", "sample.sde_window_range"} <= set(changed_config_keys(saved, fast))
    cps = load_config("preset:mini_geneval", ["sample.sde_type=cps"])
    assert "sample.sde_type" in changed_config_keys(saved, cps)
    shared = load_config("preset:mini_geneval", ["sample.same_initial_noise=true"])
    assert changed_config_keys(saved, shared) == ["sample.same_initial_noise"]


def test_a_fresh_run_into_a_used_folder_keeps_its_own_checkpoints_and_resumes_from_them(tiny_sd3_dir, tmp_path):
    """Training anew (no ``--resume``) where a longer run left checkpoints: the old ones must neither
    prune the new run's (they have higher epoch numbers) nor be what a later ``--resume`` continues.
    (Until its first checkpoint the old ones stay: tests/test_faults.py, the dying reward server.)"""
    folder, clean = tmp_path / "reused", tmp_path / "clean"
    Trainer(tiny_config(tiny_sd3_dir, folder, num_epochs=3, save_every=1, seed=5)).run()
    Trainer(tiny_config(tiny_sd3_dir, folder, num_epochs=1, save_every=1)).run()
    assert [p.name for p in list_checkpoints(folder / "checkpoints")] == ["epoch_000001"]

    Trainer(tiny_config(tiny_sd3_dir, folder, num_epochs=2, save_every=1)).run(resume=True)
    Trainer(tiny_config(tiny_sd3_dir, clean, num_epochs=2, save_every=1)).run()
    assert _deterministic(folder / "metrics.jsonl") == _deterministic(clean / "metrics.jsonl")
    a, _ = load_checkpoint(list_checkpoints(folder / "checkpoints")[-1])
    b, _ = load_checkpoint(list_checkpoints(clean / "checkpoints")[-1])
    assert all(torch.equal(x, y) for x, y in zip(a["params"], b["params"], strict=True))
