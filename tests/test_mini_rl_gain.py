"""benchmarks/mini_rl_gain.py: which runs it starts with which overrides, and its gain-over-std summary.

The training and evaluation subprocesses are replaced by a stand-in that writes the files they would
write, with known test rewards, so the summary can be checked against numbers computed by hand.
"""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import mini_rl_gain  # noqa: E402

from superflow.config import dump_config, load_config  # noqa: E402

#: Held-out reward per (task, arm, seed); the base is seed None.
REWARDS = {
    ("geneval", "base", None): 0.40,
    ("geneval", "flowgrpo", 0): 0.45,
    ("geneval", "flowgrpo", 1): 0.47,
    ("geneval", "flowgrpo", 2): 0.49,
    ("geneval", "shuffled_reward", 0): 0.38,
    ("geneval", "shuffled_reward", 1): 0.41,
    ("geneval", "shuffled_reward", 2): 0.41,
    ("ocr", "base", None): 0.70,
    ("ocr", "flowgrpo", 0): 0.71,
    ("ocr", "flowgrpo", 1): 0.75,
    ("ocr", "flowgrpo", 2): 0.73,
    ("ocr", "shuffled_reward", 0): 0.70,
    ("ocr", "shuffled_reward", 1): 0.69,
    ("ocr", "shuffled_reward", 2): 0.71,
}


def _value(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


def _sets(cmd: list[str]) -> list[str]:
    return [cmd[i + 1] for i, part in enumerate(cmd) if part == "--set"]


@pytest.fixture
def fake_runs(monkeypatch):
    """Replace the subprocesses: record each command, write what it would have written."""
    calls = []

    def run_logged(cmd, log, core=None):
        calls.append(cmd)
        task = "ocr" if "preset:mini_ocr" in cmd else "geneval"
        if cmd[3] == "train":
            out = Path(_value(cmd, "--output-dir"))
            out.mkdir(parents=True, exist_ok=True)
            rows = [{"reward_mean": 0.5, "time_sampling": 1.0, "time_reward": 0.5, "time_training": 2.0}] * 3
            (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            # what the trainer leaves in a finished run folder, for --reuse-runs
            cfg = load_config(_value(cmd, "--config"), [*_sets(cmd), f"output_dir={out}"])
            (out / "config.yaml").write_text(dump_config(cfg))
            (out / "summary.json").write_text(json.dumps({"epochs": cfg.num_epochs, "time_total": 9.5}))
            return 10.0
        output = Path(_value(cmd, "--output"))
        if output.name == "base_eval.json":
            key = (task, "base", None)
        else:  # runs/TASK/ARM/seedN/test_eval.json
            key = (task, output.parent.parent.name, int(output.parent.name.removeprefix("seed")))
        result = {"mean": REWARDS[key]}
        if task == "geneval":
            result |= {"strict": {"tag_mean": REWARDS[key] - 0.1}, "partial": {"tag_mean": REWARDS[key] + 0.05}}
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result))
        return 1.0

    monkeypatch.setattr(mini_rl_gain, "run_logged", run_logged)
    monkeypatch.setattr(
        mini_rl_gain, "describe_machine", lambda: {"cpu": "test", "cpus": 1, "torch": "x", "date": "d"}
    )
    return calls


def test_each_task_gets_its_own_overrides_after_the_shared_ones(fake_runs, tmp_path):
    mini_rl_gain.main(
        [
            "--tasks", "geneval", "ocr", "--seeds", "0", "1", "2", "--jobs", "1",
            "--set", "model.path=shared", "--set", "num_epochs=2",
            "--task-set", "ocr", "model.path=ocr_base", "data.train_prompts=signs.txt",
            "--runs-dir", str(tmp_path / "runs"), "--output-dir", str(tmp_path / "out"),
        ]
    )  # fmt: skip
    assert len(fake_runs) == 2 + 2 * 2 * 3 * 2  # two base evaluations; train + evaluate per task, arm, seed
    for cmd in fake_runs:
        sets = _sets(cmd)
        if "preset:mini_ocr" in cmd:
            # The task's own value comes last, so it wins over the shared one.
            assert sets.index("model.path=shared") < sets.index("model.path=ocr_base")
            assert "data.train_prompts=signs.txt" in sets
        else:
            assert "model.path=ocr_base" not in sets and "data.train_prompts=signs.txt" not in sets
        if cmd[3] == "train":
            assert "num_epochs=2" in sets
            assert ("reward.shuffle_within_epoch=true" in sets) == ("shuffled_reward" in _value(cmd, "--output-dir"))
        elif "test_eval.json" in _value(cmd, "--output"):  # a fine-tuned model: its own weights win
            assert sets[-1].startswith("model.path=") and sets[-1].endswith("lora")


def test_the_summary_divides_the_mean_gain_by_the_seed_std(fake_runs, tmp_path):
    out = tmp_path / "out"
    mini_rl_gain.main(
        ["--tasks", "geneval", "ocr", "--seeds", "0", "1", "2", "--jobs", "1",
         "--runs-dir", str(tmp_path / "runs"), "--output-dir", str(out)]
    )  # fmt: skip
    summary = pd.read_csv(out / "summary.csv").set_index(["task", "metric", "arm"])
    # geneval flowgrpo: mean 0.47, sample std 0.02, gain 0.07 -> 3.5
    row = summary.loc[("geneval", "test_reward", "flowgrpo")]
    assert row["mean"] == pytest.approx(0.47) and row["std"] == pytest.approx(0.02)
    assert row["gain_over_std"] == pytest.approx(3.5)
    # 95% t-interval, 2 degrees of freedom: 0.07 +- t(0.975, 2) 0.02 / sqrt(3), t(0.975, 2) = 4.302653
    half = 4.302653 * 0.02 / 3**0.5
    assert (row["gain_low"], row["gain_high"]) == pytest.approx((0.07 - half, 0.07 + half), abs=1e-6)
    # strict is the stand-in's reward - 0.1 on both sides: the same gain and std
    assert summary.loc[("geneval", "geneval_strict_tag_mean", "flowgrpo"), "gain_over_std"] == pytest.approx(3.5)
    # the partial tag mean is the stand-in's reward + 0.05: its own column, not the image mean
    partial = summary.loc[("geneval", "geneval_partial_tag_mean", "flowgrpo")]
    assert (partial["base"], partial["mean"]) == pytest.approx((0.45, 0.52))
    assert partial["gain_over_std"] == pytest.approx(3.5)
    # geneval control: mean 0.40, std sqrt(3e-4), gain 0
    assert summary.loc[("geneval", "test_reward", "shuffled_reward"), "gain_over_std"] == pytest.approx(0.0, abs=1e-9)
    # ocr flowgrpo: mean 0.73, std 0.02, gain 0.03 -> 1.5; control mean 0.70, gain 0
    assert summary.loc[("ocr", "test_reward", "flowgrpo"), "gain_over_std"] == pytest.approx(1.5)
    assert summary.loc[("ocr", "test_reward", "shuffled_reward"), "gain"] == pytest.approx(0.0, abs=1e-9)
    assert ("ocr", "geneval_strict_tag_mean", "flowgrpo") not in summary.index
    assert ("ocr", "geneval_partial_tag_mean", "flowgrpo") not in summary.index
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 2 + 2 * 2 * 3


def test_reused_runs_are_evaluated_again_without_training(fake_runs, tmp_path):
    common = ["--tasks", "ocr", "--seeds", "0", "1", "--jobs", "1", "--set", "num_epochs=2",
              "--runs-dir", str(tmp_path / "runs"), "--output-dir", str(tmp_path / "out")]  # fmt: skip
    mini_rl_gain.main([*common, "--eval-images", "4"])
    fake_runs.clear()
    mini_rl_gain.main([*common, "--eval-images", "16", "--reuse-runs"])
    assert not [cmd for cmd in fake_runs if cmd[3] == "train"]
    assert len(fake_runs) == 1 + 2 * 2  # the base and every finished run, evaluated again
    assert all(_value(cmd, "--images-per-prompt") == "16" for cmd in fake_runs)
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert len(runs) == 1 + 2 * 2  # the new evaluations replace the old rows
    # a reused run's training time is the trainer's own clock, not a fresh subprocess's
    assert runs.loc[runs.model != "base", "train_wall_seconds"].tolist() == [9.5] * 4
    # a run trained with another config is refused, naming the key; so is one asked for more epochs
    with pytest.raises(SystemExit, match=r"differs in train\.lr"):
        mini_rl_gain.main([*common[:-4], "--set", "train.lr=1e-3", *common[-4:], "--reuse-runs"])
    with pytest.raises(SystemExit, match="stopped at epoch 2 of 3"):
        mini_rl_gain.main([*common[:-4], "--set", "num_epochs=3", *common[-4:], "--reuse-runs"])


def test_a_report_only_rebuild_still_says_the_rewards_are_validation_rewards(fake_runs, tmp_path):
    out = tmp_path / "out"
    args = ["--tasks", "ocr", "--seeds", "0", "1", "--jobs", "1", "--runs-dir", str(tmp_path / "runs")]
    mini_rl_gain.main([*args, "--output-dir", str(out)])
    environment = json.loads((out / "environment.json").read_text())
    environment["commands"]["ocr"] += " --validation 30"  # as if it had run on a validation split
    (out / "environment.json").write_text(json.dumps(environment))
    mini_rl_gain.main(["--report-only", "--output-dir", str(out)])
    assert "Held-out set: 30 validation prompts" in (out / "summary.md").read_text()
    assert mini_rl_gain.validation_size(["python x.py --seeds 0", "python x.py --validation 300 --jobs 2"]) == 300
    assert mini_rl_gain.validation_size(["python x.py --seeds 0"]) is None
    assert mini_rl_gain.validation_size(["python x.py --validation=120 --jobs 2"]) == 120


def test_a_task_rerun_on_another_host_names_each_task_s_machine(fake_runs, tmp_path, monkeypatch):
    out, machine = tmp_path / "out", mini_rl_gain.describe_machine()
    args = ["--seeds", "0", "1", "--jobs", "1", "--runs-dir", str(tmp_path / "runs"), "--output-dir", str(out)]
    mini_rl_gain.main(["--tasks", "ocr", *args])
    assert f"Machine: {machine['cpu']}, {machine['date']} (" in (out / "summary.md").read_text()
    monkeypatch.setattr(mini_rl_gain, "describe_machine", lambda: {**machine, "cpu": "Other CPU"})
    mini_rl_gain.main(["--tasks", "geneval", *args])
    text = (out / "summary.md").read_text()
    assert f"ocr on {machine['cpu']}, {machine['date']}; geneval on Other CPU, {machine['date']}" in text
    mini_rl_gain.main(["--report-only", "--output-dir", str(out)])  # a rebuild keeps both
    assert (out / "summary.md").read_text() == text


def test_a_task_set_must_name_a_task_and_overrides(fake_runs, tmp_path):
    with pytest.raises(SystemExit, match="--task-set ocrr"):
        mini_rl_gain.main(["--task-set", "ocrr", "model.path=x", "--output-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="--task-set ocr"):
        mini_rl_gain.main(["--task-set", "ocr", "model.path", "--output-dir", str(tmp_path)])
    assert fake_runs == []


def _geneval_line(tag: str, include: list[dict], template: int) -> str:
    return json.dumps({"tag": tag, "include": include, "prompt": f"{template}: {include}"})


def test_validation_prompts_are_drawn_as_the_world_draws_its_test_prompts(tmp_path):
    # 70 colour-attribution sets (enough to hold whole sets out) in 2 templates each, and 6 single
    # objects in 3 templates (too few: drawn from the training prompts and kept in training).
    big = [
        _geneval_line("color_attr", [{"class": f"s{i}", "color": "red"}, {"class": "c", "color": "blue"}], k)
        for i in range(70)
        for k in range(2)
    ]
    small = [_geneval_line("single_object", [{"class": f"s{i}"}], k) for i in range(6) for k in range(3)]
    source = tmp_path / "train_metadata.jsonl"
    source.write_text("".join(line + "\n" for line in big + small))
    overrides = mini_rl_gain.validation_split(
        "preset:mini_geneval", [f"data.train_prompts={source}"], 30, tmp_path / "validation"
    )
    train = (tmp_path / "validation" / "train.jsonl").read_text().splitlines()
    validation = (tmp_path / "validation" / "validation.jsonl").read_text().splitlines()
    assert overrides == [
        f"data.train_prompts={tmp_path / 'validation' / 'train.jsonl'}",
        f"data.test_prompts={tmp_path / 'validation' / 'validation.jsonl'}",
    ]
    tags = [json.loads(line)["tag"] for line in validation]
    # n / tags each, capped at what the small tag has; the held-out tag takes the rest (whole sets)
    assert tags.count("single_object") == 15 and tags.count("color_attr") == 16
    held = [line for line in validation if json.loads(line)["tag"] == "color_attr"]
    assert not set(held) & set(train), "a held-out requirement set was trained on"
    held_sets = {mini_rl_gain._split_group(line) for line in held}
    assert not held_sets & {mini_rl_gain._split_group(line) for line in train}
    assert all(line in train for line in validation if json.loads(line)["tag"] == "single_object")
    assert sorted(train + held) == sorted(big + small), "a prompt was lost or duplicated"
    again = tmp_path / "again"
    mini_rl_gain.validation_split("preset:mini_geneval", [f"data.train_prompts={source}"], 30, again)
    assert (again / "validation.jsonl").read_text().splitlines() == validation


def test_ocr_validation_signs_are_never_trained_on(tmp_path):
    source = tmp_path / "ocr_train.txt"
    lines = [f'a sign that says "{a}{b}"' for a in "ABCDEFGH" for b in "XYZ"]
    source.write_text("\n".join(lines + ['the text "AX"']) + "\n")
    mini_rl_gain.validation_split("preset:mini_ocr", [f"data.train_prompts={source}"], 5, tmp_path / "v")
    train = (tmp_path / "v" / "train.txt").read_text().splitlines()
    validation = (tmp_path / "v" / "validation.txt").read_text().splitlines()
    targets = {mini_rl_gain.ocr_target(line) for line in validation}
    assert len(validation) >= 5 and not targets & {mini_rl_gain.ocr_target(line) for line in train}
    assert len(train) + len(validation) == len(lines) + 1
