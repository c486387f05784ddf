"""MiniFlow pretraining: the loss falls, same seed same weights, resume after a kill is exact."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import torch

from superflow.models.mini import load_miniflow
from superflow.world.pretrain import PretrainConfig, pretrain
from superflow.world.prompts import make_splits
from superflow.world.text import make_text_splits


def _world(tmp_path):
    make_splits(tmp_path / "world" / "geneval", n_train=200, n_test=30, seed=0)
    make_text_splits(tmp_path / "world" / "ocr", n_train=200, n_test=30, seed=0)
    return tmp_path / "world"


def _cfg(tmp_path, name, steps, **kw):
    return PretrainConfig(
        output_dir=str(tmp_path / name),
        data_dir=str(tmp_path / "world"),
        steps=steps,
        batch_size=8,
        channels=(16, 16, 32),
        save_every=2,
        lr=3e-3,
        **kw,
    )


def _weights(path):
    return load_miniflow(path).state_dict()


KILLED_CHILD = """
import os, signal
import superflow.world.pretrain as pt

real_save = pt.save_checkpoint

def save_then_die(directory, step, state, meta, **kwargs):
    path = real_save(directory, step, state, meta, **kwargs)
    if step == 4:  # SIGKILL: no cleanup, no flush, as an out-of-memory kill or a pulled plug
        os.kill(os.getpid(), signal.SIGKILL)
    return path

pt.save_checkpoint = save_then_die
pt.pretrain(pt.PretrainConfig(
    output_dir={out!r}, data_dir={data!r}, steps=6, batch_size=8, channels=(16, 16, 32), save_every=2, lr=3e-3,
), progress=False)
"""


def test_resume_after_a_kill_equals_uninterrupted_and_seed_is_deterministic(tmp_path):
    _world(tmp_path)
    full = pretrain(_cfg(tmp_path, "full", 6), progress=False)
    again = pretrain(_cfg(tmp_path, "again", 6), progress=False)
    child = textwrap.dedent(KILLED_CHILD).format(out=str(tmp_path / "split"), data=str(tmp_path / "world"))
    killed = subprocess.run(
        [sys.executable, "-c", child], env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert not (tmp_path / "split" / "model").exists()
    resumed = pretrain(_cfg(tmp_path, "split", 6), resume=True, progress=False)
    a, b, c = _weights(full), _weights(again), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(a[k], c[k]) for k in a)
    log = [json.loads(x) for x in (tmp_path / "split" / "pretrain_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5, 6]
    full_log = [json.loads(x)["loss"] for x in (tmp_path / "full" / "pretrain_log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in log] == full_log


def test_loss_falls(tmp_path):
    _world(tmp_path)
    pretrain(_cfg(tmp_path, "run", 40), progress=False)
    losses = [json.loads(x)["loss"] for x in (tmp_path / "run" / "pretrain_log.jsonl").read_text().splitlines()]
    assert sum(losses[-10:]) / 10 < 0.8 * sum(losses[:10]) / 10


def test_learning_rate_warms_up_holds_and_decays():
    from superflow.world.pretrain import learning_rate

    cfg = PretrainConfig(steps=100, lr=1.0, warmup_steps=10, decay_fraction=0.3, final_lr_fraction=0.1)
    lrs = [learning_rate(cfg, s) for s in range(100)]
    assert lrs[0] == 0.1 and lrs[9] == 1.0 and all(x == 1.0 for x in lrs[10:70])
    assert lrs[85] == 1 - (15 / 30) * 0.9  # halfway through the decay
    assert all(a > b for a, b in zip(lrs[70:], lrs[71:])) and lrs[99] > 0.1
