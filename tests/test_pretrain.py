"""MiniFlow pretraining: the loss falls, same seed same weights, resume after a stop is exact."""

import json

import torch

from superflow.models.mini import load_miniflow
from superflow.pretrain import PretrainConfig, pretrain
from superflow.world.prompts import make_splits
from superflow.world.text import make_text_splits


def _world(tmp_path):
    make_splits(tmp_path / "world" / "geneval", n_train=200, n_test=30, seed=0)
    make_text_splits(tmp_path / "world" / "ocr", n_train=200, n_test=30, seed=0)
    return tmp_path / "world"


def _cfg(tmp_path, name, steps, **kw):
    return PretrainConfig(
        output_dir=str(tmp_path / name), data_dir=str(tmp_path / "world"), steps=steps, batch_size=8,
        channels=(16, 16, 32), save_every=2, lr=3e-3, **kw,
    )


def _weights(path):
    return load_miniflow(path).state_dict()


def test_resume_equals_uninterrupted_and_seed_is_deterministic(tmp_path):
    _world(tmp_path)
    full = pretrain(_cfg(tmp_path, "full", 6), progress=False)
    again = pretrain(_cfg(tmp_path, "again", 6), progress=False)
    pretrain(_cfg(tmp_path, "split", 3), progress=False)  # stops after step 3 (checkpoint written)
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
