"""The command line and the shipped presets."""

import json
import subprocess
import sys

import pytest

from superflow.cli import main
from superflow.config import load_config, preset_names
from superflow.strict_dataclasses import ConfigError


def test_help_lists_commands():
    result = subprocess.run([sys.executable, "-m", "superflow", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for command in ("train", "demo", "tiny-sd3", "config-help", "list"):
        assert command in result.stdout


def test_list_and_config_help(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "sd35m_ocr" in out and "colour_target" in out
    assert main(["config-help"]) == 0
    out = capsys.readouterr().out
    assert "train.clip_range (default 0.0001)" in out and "algorithm.step_advantage" in out


@pytest.mark.parametrize("task,beta", [("geneval", 0.04), ("ocr", 0.04), ("pickscore", 0.01)])
def test_paper_presets_carry_flow_grpo_settings(task, beta):
    cfg = load_config(f"preset:sd35m_{task}")
    assert (cfg.model.resolution, cfg.model.lora_rank, cfg.model.lora_alpha) == (512, 32, 64)
    assert (cfg.sample.num_steps, cfg.sample.eval_num_steps, cfg.sample.guidance_scale) == (10, 40, 4.5)
    assert (cfg.sample.noise_level, cfg.sample.group_size, cfg.sample.prompts_per_epoch) == (0.7, 24, 48)
    assert (cfg.train.lr, cfg.train.clip_range, cfg.train.adv_clip, cfg.train.beta) == (3e-4, 1e-4, 5.0, beta)
    assert cfg.train.updates_per_epoch == 2 and cfg.train.ema and cfg.num_train_steps == 9
    assert set(cfg.model.lora_targets) == {
        "attn.to_q",
        "attn.to_k",
        "attn.to_v",
        "attn.to_out.0",
        "attn.add_q_proj",
        "attn.add_k_proj",
        "attn.add_v_proj",
        "attn.to_add_out",
    }
    served = cfg.reward.name == "served"  # GenEval's mmdet runs in its own env behind the reward server
    assert (cfg.reward.kwargs["reward"] if served else cfg.reward.name) == task
    assert served == (task == "geneval")


def test_method_defaults_and_overrides():
    sf = load_config(None, ["method=superflow"])
    assert (sf.algorithm.baseline, sf.algorithm.group_sizes, sf.algorithm.step_advantage) == (
        "tracker",
        "bins",
        "paper",
    )
    assert sf.algorithm.m_max == sf.sample.group_size
    ablation = load_config(None, ["method=superflow", "algorithm.step_advantage=trajectory"])
    assert ablation.algorithm.step_advantage == "trajectory" and ablation.algorithm.group_sizes == "bins"
    neyman = load_config(None, ["method=superflow", "algorithm.group_sizes=neyman"])
    assert neyman.algorithm.m_max == 2 * neyman.sample.group_size


def test_config_choices_are_the_names_the_rl_factories_know():
    # config.py cannot import rl/ (torch), so the names are listed twice; this keeps them equal.
    from superflow.config import CHOICES
    from superflow.rl.advantages import BASELINES
    from superflow.rl.allocation import GROUP_SIZE_RULES, PROMPT_DRAWS
    from superflow.rl.step_advantages import STEP_ESTIMATORS
    from superflow.rl.trackers import TRACKERS, UNSEEN_PRIORS

    assert set(CHOICES["algorithm.baseline"]) == set(BASELINES)
    assert set(CHOICES["algorithm.prompt_draw"]) == set(PROMPT_DRAWS)
    assert set(CHOICES["algorithm.group_sizes"]) == set(GROUP_SIZE_RULES)
    assert set(CHOICES["algorithm.step_advantage"]) == set(STEP_ESTIMATORS)
    assert set(CHOICES["algorithm.tracker"]) == {"auto", *TRACKERS}
    assert set(CHOICES["algorithm.unseen_prior"]) == set(UNSEEN_PRIORS)


def test_every_preset_loads():
    assert {"sd35m_base", "sd35m_geneval", "sd35m_ocr", "sd35m_pickscore", "tiny_sd3_demo"} <= set(preset_names())
    for name in preset_names():
        load_config(f"preset:{name}")


def test_config_file_with_base_and_round_trip(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: sd35m_ocr\nmethod: superflow\ntrain:\n  lr: 1.0e-4\n")
    cfg = load_config(path)
    assert cfg.train.lr == 1e-4 and cfg.sample.group_size == 24 and cfg.method == "superflow"
    dumped = tmp_path / "dumped.yaml"
    from superflow.config import dump_config

    dumped.write_text(dump_config(cfg))
    assert load_config(dumped).to_dict() == cfg.to_dict()


def test_demo_command_runs_offline(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--output-dir", str(out), "--epochs", "2", "--quiet", "--method", "superflow"]) == 0
    printed = capsys.readouterr().out
    assert "superflow: train reward" in printed
    lines = (out / "superflow" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[-1])["method"] == "superflow"
    assert (out / "superflow" / "lora" / "pytorch_lora_weights.safetensors").exists()


def test_auto_precision_is_miniflow_s_and_sd3_names_its_choices():
    # The mini presets run at model.dtype auto; SD3 has no auto and says what it takes.
    assert {load_config(f"preset:mini_{task}").model.dtype for task in ("geneval", "ocr", "preference")} == {"auto"}
    with pytest.raises(ConfigError, match="model.dtype.*SD3 takes float32, bfloat16 or float16"):
        load_config("preset:sd35m_geneval", ["model.dtype=auto"])
