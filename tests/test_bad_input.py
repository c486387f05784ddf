"""Bad input fails loudly and names the culprit."""

import numpy as np
import pytest
from helpers import tiny_config

from superflow.cli import main
from superflow.config import ConfigError, load_config
from superflow.models.weights import WeightsNotFoundError
from superflow.prompts import PromptFileError, load_prompts
from superflow.rewards import Reward, RewardError, get_reward
from superflow.train import Trainer


def test_unknown_config_key_names_key_and_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("method: superflow\ntrain:\n  lr: 1e-4\n  clip_rnage: 0.2\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "train.clip_rnage" in message and str(path) in message and "train.clip_range" in message


def test_unknown_override_and_bad_value():
    with pytest.raises(ConfigError, match="sample.num_stepz"):
        load_config(None, ["sample.num_stepz=3"])
    with pytest.raises(ConfigError, match="algorithm.step_advantage"):
        load_config(None, ["algorithm.step_advantage=magic"])
    with pytest.raises(ConfigError, match="train.lr' must be a number"):
        load_config(None, ["train.lr=fast"])
    with pytest.raises(ConfigError, match="algorithm.num_bins"):
        load_config(None, ["method=superflow", "sample.group_size=4", "algorithm.num_bins=4"])
    with pytest.raises(ConfigError, match="unknown method 'grpo'"):
        load_config(None, ["method=grpo"])


def test_unknown_reward_name_lists_the_known_ones():
    with pytest.raises(RewardError) as err:
        get_reward("jpeg_compressability")
    message = str(err.value)
    assert "'jpeg_compressability'" in message and "jpeg_compressibility" in message and "colour_target" in message


def test_nan_reward_names_reward_image_and_prompt(tiny_sd3_dir, tmp_path):
    def half_nan(images, prompts, metadata):
        scores = np.ones(len(prompts))
        scores[1] = np.nan
        return scores, {}

    cfg = tiny_config(tiny_sd3_dir, tmp_path / "run")
    trainer = Trainer(cfg, reward=Reward("half_nan", half_nan), progress=False)
    with pytest.raises(RewardError) as err:
        trainer.run()
    message = str(err.value)
    assert "'half_nan'" in message and "nan" in message and "image 1" in message and "prompt" in message


def test_missing_model_path_names_path_and_what_to_get(tmp_path, monkeypatch):
    monkeypatch.delenv("SUPERFLOW_SD3_PATH", raising=False)
    missing = tmp_path / "no-such-sd35"
    cfg = tiny_config(missing, tmp_path / "run")
    with pytest.raises(WeightsNotFoundError) as err:
        Trainer(cfg, progress=False)
    message = str(err.value)
    assert str(missing) in message and "SUPERFLOW_SD3_PATH" in message and "stable-diffusion-3.5-medium" in message


def test_incomplete_model_folder_names_missing_file(tmp_path, monkeypatch):
    monkeypatch.delenv("SUPERFLOW_SD3_PATH", raising=False)
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    cfg = tiny_config(folder, tmp_path / "run")
    with pytest.raises(WeightsNotFoundError, match="transformer/config.json"):
        Trainer(cfg, progress=False)


def test_malformed_prompt_file_names_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a cat"}\n{"prompt": "a dog"\n')
    with pytest.raises(PromptFileError, match=r"p\.jsonl:2: invalid JSON"):
        load_prompts(path)
    path.write_text('{"prompt": "a cat"}\n\n{"tag": "x"}\n')
    with pytest.raises(PromptFileError, match=r"p\.jsonl:3: .*'prompt'"):
        load_prompts(path)


def test_cli_reports_config_errors_without_traceback(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("sample:\n  guidance: 3\n")
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "sample.guidance" in err and "Traceback" not in err


def test_user_reward_from_file(tmp_path):
    path = tmp_path / "my_reward.py"
    path.write_text(
        "def brightness(images, prompts, metadata):\n"
        "    return images.mean(dim=(1, 2, 3)), {}\n"
        "brightness.bounds = (0, 1)\n"
    )
    import torch

    reward = get_reward(f"{path}:brightness")
    scores, _ = reward(torch.full((2, 3, 4, 4), 0.25), ["a", "b"])
    assert reward.bounded_unit and np.allclose(scores, 0.25)
    with pytest.raises(RewardError, match="has no attribute 'nope'"):
        get_reward(f"{path}:nope")


def test_balance_tags_without_tags_names_the_prompt(tiny_sd3_dir, tmp_path):
    from dataclasses import replace

    cfg = tiny_config(tiny_sd3_dir, tmp_path / "run")
    cfg = replace(cfg, data=replace(cfg.data, balance_tags=True))
    with pytest.raises(ValueError, match=r"prompts.txt:1: metadata has no key 'tag', which data.balance_tags needs"):
        Trainer(cfg, progress=False)
