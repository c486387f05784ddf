"""Watching a run: TensorBoard event files equal metrics.jsonl, W&B gets the same scalars and the
config, a resume logs no epoch twice, and a missing backend names its extra."""

import json
import shutil
import sys
import types

import numpy as np
import pytest
from helpers import tiny_config

from superflow.checkpoint import list_checkpoints
from superflow.config import ConfigError
from superflow.run_logging import RunLogger, scalar_metrics
from superflow.train import Trainer

LOGGED_RUN = {"num_epochs": 3, "save_every": 1, "eval_every": 2, "eval_num_prompts": 2, "log.samples": 3}


def _events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    acc.Reload()
    return acc


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_tensorboard_scalars_equal_metrics_jsonl_and_samples_are_logged(tiny_sd3_dir, tmp_path):
    cfg = tiny_config(
        tiny_sd3_dir, tmp_path / "run", method="superflow", **LOGGED_RUN, **{"log.backends": "[jsonl, tensorboard]"}
    )
    Trainer(cfg, progress=False).run()
    acc = _events(tmp_path / "run" / "tensorboard")
    lines = _metrics(tmp_path / "run")
    for line in lines:
        for key, value in scalar_metrics(line).items():
            logged = [e.value for e in acc.Scalars(key) if e.step == line["epoch"]]
            assert logged == [pytest.approx(value, rel=1e-6, abs=1e-9)], key
    assert "eval_reward_mean" in acc.Tags()["scalars"]
    assert [e.step for e in acc.Scalars("step_advantage/step_0")] == [1, 2, 3]
    assert {"group_sizes", "tracker_values"} <= set(acc.Tags()["histograms"])
    assert [e.step for e in acc.Images("samples")] == [2, 3]  # the evaluation epochs


def test_a_resumed_run_logs_each_epoch_once(tiny_sd3_dir, tmp_path):
    """Killed after epoch 3 was logged but before its checkpoint: the resume re-runs epoch 3 and the
    event files still hold one value per epoch, equal to metrics.jsonl."""
    cfg = tiny_config(
        tiny_sd3_dir, tmp_path / "run", method="flowgrpo", **LOGGED_RUN, **{"log.backends": "[tensorboard]"}
    )
    Trainer(cfg, progress=False).run()
    shutil.rmtree(list_checkpoints(tmp_path / "run" / "checkpoints")[-1])
    shutil.rmtree(tmp_path / "run" / "lora")
    Trainer(cfg, progress=False).run(resume=True)
    acc = _events(tmp_path / "run" / "tensorboard")
    assert [e.step for e in acc.Scalars("reward_mean")] == [1, 2, 3]
    assert [e.value for e in acc.Scalars("reward_mean")] == pytest.approx(
        [m["reward_mean"] for m in _metrics(tmp_path / "run")]
    )


class _FakeWandb(types.ModuleType):
    """Records what the backend sends; the real package's offline writer is not exercised here."""

    def __init__(self):
        super().__init__("wandb")
        self.inits, self.logged = [], []
        self.Histogram = lambda values: ("histogram", list(values))
        self.Image = lambda fig: ("image", fig)

    def init(self, **kwargs):
        self.inits.append(kwargs)
        logged = self.logged
        return types.SimpleNamespace(log=lambda data, step: logged.append((step, data)), finish=lambda: None)


def test_wandb_gets_the_scalars_and_config_offline_and_resumes_the_same_run(tiny_sd3_dir, tmp_path, monkeypatch):
    fake = _FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = tiny_config(tiny_sd3_dir, tmp_path / "run", method="flowgrpo", **LOGGED_RUN, **{"log.backends": "[wandb]"})
    Trainer(cfg, progress=False).run()
    init = fake.inits[0]
    run_id = init["id"]
    assert (init["mode"], init["resume"]) == ("offline", "allow") and run_id.isalnum()
    assert init["config"]["seed"] == cfg.seed and init["config"]["train"]["lr"] == cfg.train.lr
    assert "git_commit" in init["config"]
    lines = _metrics(tmp_path / "run")
    scalars = {step: data for step, data in fake.logged if "reward_mean" in data}
    assert sorted(scalars) == [1, 2, 3]
    for line in lines:
        assert {k: scalars[line["epoch"]][k] for k in scalar_metrics(line)} == scalar_metrics(line)
    # killed before epoch 3's checkpoint: the resume joins the same run and sends nothing twice
    shutil.rmtree(list_checkpoints(tmp_path / "run" / "checkpoints")[-1])
    fake.logged.clear()
    Trainer(cfg, progress=False).run(resume=True)
    assert fake.inits[1]["id"] == run_id and fake.logged == []


def test_the_real_wandb_offline_run_holds_the_scalars_and_config_and_a_resume_adds_no_step(
    tiny_sd3_dir, tmp_path, monkeypatch
):
    """The installed wandb package, offline: its run files (read back record by record) hold every
    epoch's scalars of metrics.jsonl once, the config with seed and git commit, across a resume."""
    pytest.importorskip("wandb", reason="the [test] extra installs wandb")
    from wandb_records import logged_config, logged_history

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = tiny_config(
        tiny_sd3_dir, tmp_path / "run", method="flowgrpo", **LOGGED_RUN, **{"log.backends": "[jsonl, wandb]"}
    )
    Trainer(cfg, progress=False).run()
    shutil.rmtree(list_checkpoints(tmp_path / "run" / "checkpoints")[-1])  # killed before epoch 3's checkpoint
    Trainer(cfg, progress=False).run(resume=True)
    run_id = json.loads((tmp_path / "run" / "wandb_run.json").read_text())["id"]
    files = sorted((tmp_path / "run" / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert len(files) == 2  # the first process and the resumed one, one run id
    history = [h for f in files for h in logged_history(f)]
    scalars = [h for h in history if "reward_mean" in h]
    assert [int(h["_step"]) for h in scalars] == [1, 2, 3]  # epoch 3 re-run, sent once
    for line, logged in zip(_metrics(tmp_path / "run"), scalars):
        for key, value in scalar_metrics(line).items():
            if line["epoch"] == 3 and key.startswith("time_"):
                continue  # W&B keeps the first run of epoch 3; only its wall-clock timings differ
            assert json.loads(logged[key]) == pytest.approx(value, rel=1e-6, abs=1e-9), key
    config = logged_config(files[0])
    assert json.loads(config["seed"]) == cfg.seed and json.loads(config["train"])["lr"] == cfg.train.lr
    assert "git_commit" in config


def test_a_missing_backend_names_its_extra(tmp_path, monkeypatch):
    from superflow.config import load_config

    monkeypatch.setitem(sys.modules, "wandb", None)  # import fails
    cfg = load_config(None, ["log.backends=[jsonl, wandb]", f"output_dir={tmp_path}"])
    with pytest.raises(ConfigError, match=r"pip install 'superflow\[wandb\]'"):
        RunLogger(cfg, tmp_path)
    with pytest.raises(ConfigError, match="log.backends"):
        load_config(None, ["log.backends=[jsonl, tensorbored]"])


def test_image_grid_shows_whole_prompts(tmp_path):
    from superflow.reporting.figures import image_grid, wrapped_prompt

    prompt = "a photo of a purple suitcase left of a yellow traffic light"
    assert wrapped_prompt(prompt).replace("\n", " ") == prompt
    assert max(len(line) for line in wrapped_prompt(prompt).splitlines()) <= 22
    path = image_grid([np.zeros((8, 8, 3), np.uint8)] * 2, [prompt, "a cat"], tmp_path / "grid.png")
    assert path.stat().st_size > 0
