"""Faults injected on purpose: each is reported naming its file, line or key, and finished work survives it.

The cases follow issue 19's list: damaged checkpoints (truncated, zero-padded, flipped, missing, for
state and metadata), a full disk and SIGKILL during a checkpoint write, SIGTERM during evaluation, a
reward server that dies or hangs, rewards of the wrong length or not finite, malformed prompt files,
a metadata line without a needed key, and a model that produces NaN images. The docs table "What
survives what" (docs/FAULTS.md) summarises the same cases for users.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import tiny_config

from superflow.checkpoint import (
    CheckpointError,
    list_checkpoints,
    load_newest_valid_checkpoint,
    save_checkpoint,
    validate_checkpoint,
)
from superflow.files import FileFormatError, read_json, read_jsonl, read_yaml
from superflow.flow.sampler import NonFiniteSampleError
from superflow.prompts import PromptFileError, load_prompts
from superflow.rewards import Reward, RewardError, get_reward
from superflow.train import Trainer

# ---------------------------------------------------------------------------------------- damage


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as handle:
        handle.truncate(size)


def _zero_pad(path: Path, count: int = 4096) -> None:
    with path.open("ab") as handle:
        handle.write(b"\0" * count)


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "state truncated": ("state.pt", lambda p: _truncate(p, 500), "bytes, its meta.json records"),
    "state zero-padded": ("state.pt", _zero_pad, "bytes, its meta.json records"),
    "state byte flipped": ("state.pt", _flip_a_byte, "differs from the SHA-256"),
    "state missing": ("state.pt", lambda p: p.unlink(), "missing"),
    "meta truncated": ("meta.json", lambda p: _truncate(p, 18), "not valid JSON"),
    "meta zero-padded": ("meta.json", _zero_pad, "not valid JSON"),
}


@pytest.fixture()
def two_checkpoints(tmp_path):
    folder = tmp_path / "checkpoints"
    for epoch in (1, 2):
        save_checkpoint(folder, epoch, {"w": torch.full((4096,), float(epoch))}, {"note": epoch})
    return folder


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_newest_checkpoint_is_named_set_aside_and_the_previous_one_resumes(two_checkpoints, case, caplog):
    file, damage, reason = DAMAGE[case]
    damaged = two_checkpoints / "epoch_000002" / file
    damage(damaged)
    with caplog.at_level(logging.WARNING, logger="superflow.checkpoint"):
        state, meta, path = load_newest_valid_checkpoint(two_checkpoints)
    assert path.name == "epoch_000001" and meta["note"] == 1 and torch.equal(state["w"], torch.ones(4096))
    assert str(damaged) in caplog.text and reason in caplog.text
    assert "resuming from the newest valid checkpoint" in caplog.text
    # set aside for inspection, not deleted, and no longer counted as a checkpoint
    assert (two_checkpoints / "damaged_epoch_000002").is_dir()
    assert list_checkpoints(two_checkpoints) == [two_checkpoints / "epoch_000001"]


def test_no_valid_checkpoint_refuses_and_lists_every_reason(two_checkpoints):
    _truncate(two_checkpoints / "epoch_000002" / "state.pt", 10)
    _zero_pad(two_checkpoints / "epoch_000001" / "meta.json")
    with pytest.raises(CheckpointError) as err:
        load_newest_valid_checkpoint(two_checkpoints)
    message = str(err.value)
    assert f"no valid checkpoint in {two_checkpoints}" in message
    assert str(two_checkpoints / "epoch_000002" / "state.pt") in message
    assert str(two_checkpoints / "epoch_000001" / "meta.json") in message


def test_only_the_newest_save_total_limit_checkpoints_are_kept(tmp_path):
    for epoch in range(1, 6):
        save_checkpoint(tmp_path, epoch, {"e": epoch}, {}, keep_last=3)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["epoch_000003", "epoch_000004", "epoch_000005"]
    for path in list_checkpoints(tmp_path):
        assert validate_checkpoint(path)["files"]["state.pt"]["bytes"] == (path / "state.pt").stat().st_size


def test_a_full_disk_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    import superflow.checkpoint as ckpt

    save_checkpoint(tmp_path, 1, {"e": 1}, {})
    real_save = torch.save

    def half_then_enospc(obj, handle):
        real_save(obj, handle)
        handle.truncate(handle.tell() // 2)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt.torch, "save", half_then_enospc)
    with pytest.raises(OSError, match=r"writing checkpoint .*epoch_000002 failed \(No space left on device\)"):
        save_checkpoint(tmp_path, 2, {"e": 2}, {})
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["epoch_000001"]  # no half-written folder left
    state, _, path = load_newest_valid_checkpoint(tmp_path)
    assert state == {"e": 1} and path.name == "epoch_000001"


KILLED_WHILE_WRITING = """
import os, signal, sys, torch
import superflow.checkpoint as ckpt
folder = sys.argv[1]
ckpt.save_checkpoint(folder, 1, {"e": 1}, {})
def die_halfway(obj, handle):
    handle.write(b"PK" + b"x" * 1000)
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)
ckpt.torch.save = die_halfway
ckpt.save_checkpoint(folder, 2, {"e": 2}, {})
"""


def test_sigkill_in_the_middle_of_a_checkpoint_write_leaves_the_previous_one(tmp_path):
    done = subprocess.run([sys.executable, "-c", KILLED_WHILE_WRITING, str(tmp_path)], capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    assert any(p.name.startswith(".tmp_epoch_000002") for p in tmp_path.iterdir())  # the write was under way
    state, _, path = load_newest_valid_checkpoint(tmp_path)
    assert state == {"e": 1} and path.name == "epoch_000001"
    assert [p.name for p in tmp_path.iterdir()] == ["epoch_000001"]  # the leftover is cleared on resume


# ---------------------------------------------------------------------------- training runs (CLI)


def _cli(*args, timeout=300, **popen):
    return subprocess.run(
        [sys.executable, "-m", "superflow", *map(str, args)], capture_output=True, text=True, timeout=timeout, **popen
    )


def _write_config(cfg, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    return path


def _lora(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run / "lora" / "pytorch_lora_weights.safetensors")


THIRD_PARTY_NOISE = ("Warning", "warn(", "deprecated", "[transformers]", "should be kept in float32", "Traceback")


def test_resume_past_a_damaged_newest_checkpoint_ends_with_the_uninterrupted_weights(tiny_sd3_dir, tmp_path):
    run = tmp_path / "run"
    config = _write_config(tiny_config(tiny_sd3_dir, run, num_epochs=2, save_every=1), tmp_path / "run.yaml")
    first = _cli("train", "--config", config, "--quiet")
    assert first.returncode == 0, first.stderr
    assert not [line for line in first.stderr.splitlines() if any(n in line for n in THIRD_PARTY_NOISE)]
    uninterrupted = _lora(run)
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["epoch_000001", "epoch_000002"]
    newest = run / "checkpoints" / "epoch_000002" / "state.pt"
    _truncate(newest, 5000)

    resumed = _cli("train", "--config", config, "--quiet", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"damaged checkpoint skipped: {newest}: 5000 bytes" in resumed.stderr
    assert "resuming from the newest valid checkpoint" in resumed.stderr and "epoch_000001" in resumed.stderr
    again = _lora(run)
    assert again.keys() == uninterrupted.keys()
    assert all(torch.equal(again[k], uninterrupted[k]) for k in again)
    assert len(read_jsonl(run / "metrics.jsonl")) == 2  # epoch 2's line was replaced, not duplicated
    assert (run / "checkpoints" / "damaged_epoch_000002").is_dir()


def test_resume_with_every_checkpoint_damaged_refuses_with_exit_status_2(tiny_sd3_dir, tmp_path):
    run = tmp_path / "run"
    folder = run / "checkpoints"
    for epoch in (1, 2):
        save_checkpoint(folder, epoch, {"params": []}, {"metrics_lines": epoch})
    _truncate(folder / "epoch_000001" / "meta.json", 18)  # the JSON error the issue saw unnamed
    _zero_pad(folder / "epoch_000002" / "state.pt")
    config = _write_config(tiny_config(tiny_sd3_dir, run), tmp_path / "run.yaml")
    done = _cli("train", "--config", config, "--quiet", "--resume")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"error: no valid checkpoint in {folder}" in done.stderr and "drop --resume" in done.stderr
    assert f"{folder / 'epoch_000001' / 'meta.json'}, line 3: not valid JSON" in done.stderr
    assert f"{folder / 'epoch_000002' / 'state.pt'}: " in done.stderr
    assert len(list(folder.glob("epoch_*"))) == 2  # nothing deleted when nothing could be resumed


SLOW_EVAL_REWARD = """
import time
from pathlib import Path

def brightness(images, prompts, metadata):
    marker = Path(__file__).with_name("evaluating")
    if prompts[0].startswith("held-out") and not marker.exists():
        marker.write_text("1")
        time.sleep(120)
    return images.mean(dim=(1, 2, 3)), {}

brightness.bounds = (0, 1)
"""


def test_sigterm_during_evaluation_keeps_checkpoints_and_the_run_resumes(tiny_sd3_dir, tmp_path):
    reward = tmp_path / "slow_eval_reward.py"
    reward.write_text(SLOW_EVAL_REWARD)
    held_out = tmp_path / "held_out.txt"
    held_out.write_text("held-out a red ball\nheld-out a blue box\n")
    run = tmp_path / "run"
    cfg = tiny_config(
        tiny_sd3_dir,
        run,
        num_epochs=2,
        save_every=1,
        eval_every=2,
        **{"reward.name": f"{reward}:brightness", "reward.kwargs": "{}", "data.test_prompts": str(held_out)},
    )
    config = _write_config(cfg, tmp_path / "run.yaml")
    proc = subprocess.Popen(
        [sys.executable, "-m", "superflow", "train", "--config", str(config), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 240
    while not (tmp_path / "evaluating").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM" in stderr and "--resume" in stderr and "Traceback" not in stderr
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["epoch_000001"]
    validate_checkpoint(run / "checkpoints" / "epoch_000001")
    assert not (run / "summary.json").exists()

    resumed = _cli("train", "--config", config, "--quiet", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    rows = read_jsonl(run / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2] and "eval_reward_mean" in rows[-1]
    summary = read_json(run / "summary.json")
    assert summary["epochs"] == 2 and summary["model_dtype"] == "float32"  # the precision it ran in


# ------------------------------------------------------------------------------------- rewards

DYING_REWARD = """
import os
from pathlib import Path

def brightness(images, prompts, metadata):
    calls = Path(__file__).with_name("calls")
    count = int(calls.read_text()) + 1 if calls.exists() else 1
    calls.write_text(str(count))
    if count == 2:
        os._exit(3)
    return images.mean(dim=(1, 2, 3)), {}
"""

HANGING_REWARD = """
import time

def brightness(images, prompts, metadata):
    time.sleep(300)
"""


def _served(tmp_path, source: str, timeout: float) -> Reward:
    path = tmp_path / "user_reward.py"
    path.write_text(source)
    return get_reward("served", reward=f"{path}:brightness", startup_timeout=120, timeout=timeout)


def test_a_reward_server_that_dies_mid_epoch_is_a_named_error_and_earlier_checkpoints_stay(tiny_sd3_dir, tmp_path):
    reward = _served(tmp_path, DYING_REWARD, timeout=60)
    try:
        cfg = tiny_config(tiny_sd3_dir, tmp_path / "run", num_epochs=1, **{"sample.batch_size": 4})
        save_checkpoint(tmp_path / "run" / "checkpoints", 7, {"kept": True}, {})
        trainer = Trainer(cfg, reward=reward, progress=False)
        with pytest.raises(
            RewardError, match=r"reward server for '.*user_reward.py:brightness' \(pid \d+\) exited with code 3"
        ):
            trainer.run()
    finally:
        reward.fn.server.close()
    assert load_newest_valid_checkpoint(tmp_path / "run" / "checkpoints")[0] == {"kept": True}


def test_a_hanging_reward_server_times_out_with_a_clear_error(tiny_sd3_dir, tmp_path):
    reward = _served(tmp_path, HANGING_REWARD, timeout=2)
    try:
        started = time.monotonic()
        with pytest.raises(RewardError, match=r"did not answer /score: .*timed out"):
            reward(torch.zeros(2, 3, 8, 8), ["a", "b"])
        assert time.monotonic() - started < 30
    finally:
        reward.fn.server.close()


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        (lambda n: np.ones(n - 1), r"returned 5 scores for 6 images"),
        (lambda n: np.r_[np.ones(n - 1), np.nan], r"returned nan for image 5 \(prompt '.*'\)"),
        (lambda n: np.r_[np.inf, np.ones(n - 1)], r"returned inf for image 0 \(prompt '.*'\)"),
    ],
    ids=["wrong length", "nan", "inf"],
)
def test_a_bad_reward_stops_the_run_naming_reward_and_image(tiny_sd3_dir, tmp_path, scores, expected):
    reward = Reward("faulty", lambda images, prompts, metadata: (scores(len(prompts)), {}))
    cfg = tiny_config(tiny_sd3_dir, tmp_path / "run", num_epochs=1)
    with pytest.raises(RewardError, match=rf"reward 'faulty' {expected}"):
        Trainer(cfg, reward=reward, progress=False).run()
    assert not (tmp_path / "run" / "summary.json").exists()


def test_nan_images_from_the_model_stop_the_run_before_they_are_scored(tiny_sd3_dir, tmp_path):
    scored = []
    reward = Reward("counting", lambda images, prompts, metadata: (scored.append(1) or np.ones(len(prompts)), {}))
    trainer = Trainer(tiny_config(tiny_sd3_dir, tmp_path / "run", num_epochs=1), reward=reward, progress=False)
    with torch.no_grad():
        trainer.params[0].fill_(float("nan"))
    with pytest.raises(NonFiniteSampleError, match=r"NaN or inf in \d+ of \d+ sampled images \(first: prompt '"):
        trainer.run()
    assert not scored


# -------------------------------------------------------------------------------- input files


def test_prompt_files_with_a_bom_crlf_and_empty_lines_load_cleanly(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_bytes(b"\xef\xbb\xbfa red apple\r\n\r\n  \r\na blue car\r\n")
    prompts = load_prompts(path)
    assert prompts.prompts == ["a red apple", "a blue car"] and prompts.lines == [1, 4]


def test_a_non_utf8_byte_in_a_prompt_file_names_file_and_line(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_bytes(b"a red apple\na blue car\na caf\xe9 sign\n")
    with pytest.raises(PromptFileError, match=rf"{path}, line 3: not UTF-8 \(byte 0xe9\)"):
        load_prompts(path)


def test_a_metadata_line_missing_a_key_the_reward_needs_names_file_line_and_key(tiny_sd3_dir, tmp_path):
    path = tmp_path / "geneval.jsonl"
    good = {"prompt": "a photo of a circle", "tag": "single_object", "include": [{"class": "circle", "count": 1}]}
    path.write_text("\n".join(json.dumps(r) for r in (good, good, {"prompt": "a photo of a ring", "tag": "x"})) + "\n")
    cfg = tiny_config(
        tiny_sd3_dir,
        tmp_path / "run",
        **{"reward.name": "geneval_mini", "reward.kwargs": "{}", "data.train_prompts": str(path)},
    )
    expected = rf"{path}:3: metadata has no key 'include', which reward 'geneval_mini' needs"
    with pytest.raises(PromptFileError, match=expected):
        Trainer(cfg, progress=False)


@pytest.mark.parametrize(
    ("name", "content", "reader", "expected"),
    [
        ("meta.json", '{"epoch": 3,\n "x": }', read_json, r"meta.json, line 2: not valid JSON"),
        ("metrics.jsonl", '{"epoch": 1}\n{"epoch": 2\n', read_jsonl, r"metrics.jsonl, line 2: not valid JSON"),
        ("metrics.jsonl", '{"epoch": 1}\n[1, 2]\n', read_jsonl, r"metrics.jsonl, line 2: a JSON object expected"),
        ("config.yaml", "seed: 1\ntrain: [lr: 1\n", read_yaml, r"config.yaml, line 3: not valid YAML"),
    ],
    ids=["json", "jsonl", "jsonl-not-object", "yaml"],
)
def test_every_reader_names_its_file_and_line(tmp_path, name, content, reader, expected):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(FileFormatError, match=expected) as err:
        reader(path)
    assert str(err.value).startswith(str(path))


def test_damaged_weights_and_lora_files_are_named(tiny_sd3_dir, tmp_path):
    from superflow.models.mini import MiniFlowConfig, MiniFlowNet, load_miniflow, save_miniflow
    from superflow.models.sd3 import SD3Policy

    folder = save_miniflow(MiniFlowNet(MiniFlowConfig(channels=(8, 8, 16), vocab=list("abc"))), tmp_path / "m")
    _truncate(folder / "model.pt", 100)
    with pytest.raises(FileFormatError, match=rf"{folder / 'model.pt'}: cannot be read by torch.load"):
        load_miniflow(folder)

    policy = SD3Policy(path=tiny_sd3_dir, lora_rank=2, lora_alpha=2, device="cpu")
    policy.save_pretrained(tmp_path / "lora")
    lora = tmp_path / "lora" / "pytorch_lora_weights.safetensors"
    _truncate(lora, 64)
    with pytest.raises(ValueError, match=rf"{lora}: cannot be read as a LoRA"):
        policy.load_adapter(tmp_path / "lora")


def test_killed_runs_leave_no_partial_text_files(tmp_path, monkeypatch):
    """atomic_write_text: a failure mid-write leaves the old file and no temporary beside it."""
    from superflow.checkpoint import atomic_write_text

    target = tmp_path / "summary.json"
    atomic_write_text(target, "old")

    class Boom(Exception):
        pass

    def explode(*args, **kwargs):
        raise Boom()

    monkeypatch.setattr(os, "fsync", explode)
    with pytest.raises(Boom):
        atomic_write_text(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_world_pretraining_resumes_past_a_damaged_checkpoint(tmp_path):
    from superflow.world.pretrain import PretrainConfig, pretrain
    from superflow.world.prompts import make_splits
    from superflow.world.text import make_text_splits

    data = tmp_path / "world"
    make_splits(data / "geneval", n_train=200, n_test=30, seed=0)
    make_text_splits(data / "ocr", n_train=200, n_test=30, seed=0)
    cfg = dict(data_dir=str(data), steps=4, batch_size=8, channels=(8, 8, 16), save_every=2, lr=3e-3, threads=1)
    full = pretrain(PretrainConfig(output_dir=str(tmp_path / "full"), **cfg), progress=False)
    damaged = pretrain(PretrainConfig(output_dir=str(tmp_path / "damaged"), **cfg), progress=False)
    _zero_pad(tmp_path / "damaged" / "checkpoints" / "epoch_000004" / "state.pt")
    resumed = pretrain(PretrainConfig(output_dir=str(tmp_path / "damaged"), **cfg), resume=True, progress=False)
    a, b = torch.load(full / "model.pt"), torch.load(resumed / "model.pt")
    assert damaged == resumed and all(torch.equal(a[k], b[k]) for k in a)
