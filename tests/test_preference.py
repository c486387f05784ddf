"""The PickScore-style preference model and the mini world's hidden preference."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import superflow.world.preference_model as preference_model
from superflow.cli import main
from superflow.models.mini import PromptTokenizer
from superflow.models.weights import WeightsNotFoundError
from superflow.rewards import get_reward
from superflow.world.preference import WEIGHTS, hidden_preference, image_terms
from superflow.world.preference_model import (
    PreferenceModel,
    PreferenceModelConfig,
    pickscore_pair_loss,
    save_preference_model,
)
from superflow.world.spec import BACKGROUND


def test_pair_loss_is_cross_entropy_of_the_two_scores():
    a, b = torch.tensor([2.0, 0.0, 1.0]), torch.tensor([0.0, 2.0, 1.0])
    label = torch.tensor([1.0, 1.0, 0.5])
    p = 1 / (1 + math.exp(-2))
    expected = (-math.log(p) - math.log(1 - p) + math.log(2)) / 3
    assert pickscore_pair_loss(a, b, label).item() == pytest.approx(expected, rel=1e-6)


def test_model_learns_a_simple_preference():
    torch.manual_seed(0)
    tok = PromptTokenizer.build(["a red square"])
    model = PreferenceModel(PreferenceModelConfig(vocab=tok.vocab))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    gen = torch.Generator().manual_seed(0)

    def pair(n):  # flat images of a random brightness, lightly noised
        def make():
            return (torch.rand(n, 1, 1, 1, generator=gen) + 0.05 * torch.randn(n, 3, 32, 32, generator=gen)).clamp(
                0, 1
            )

        return make(), make()

    for _ in range(60):  # brighter images are preferred
        a, b = pair(16)
        label = (a.mean(dim=(1, 2, 3)) > b.mean(dim=(1, 2, 3))).float()
        loss = pickscore_pair_loss(model(a, ["a red square"] * 16), model(b, ["a red square"] * 16), label)
        opt.zero_grad()
        loss.backward()
        opt.step()
    a, b = pair(64)
    with torch.no_grad():
        agree = (model(a, ["a red square"] * 64) > model(b, ["a red square"] * 64)) == (
            a.mean((1, 2, 3)) > b.mean((1, 2, 3))
        )
    assert agree.float().mean() > 0.8


def test_hidden_preference_terms():
    bg = np.array(BACKGROUND, np.uint8)
    images = np.tile(bg, (3, 32, 32, 1)).astype(np.uint8)
    images[0, 12:20, 12:20] = (220, 30, 30)  # centred, saturated, clean
    images[1, 0:8, 0:8] = (220, 30, 30)  # in the corner
    images[2, 12:20, 12:20] = (150, 120, 120)  # dull
    images[2][np.random.default_rng(0).random((32, 32)) < 0.05] = 0  # speckled background
    terms = image_terms(images, bg)
    assert terms["centring"][0] == pytest.approx(1.0) and terms["centring"][1] < 0.5
    assert terms["saturation"][0] > 0.8 > 0.2 > terms["saturation"][2]
    assert terms["clean_background"][0] == 1.0 and terms["clean_background"][2] < 0.8
    h = hidden_preference(images, [{}] * 3, np.ones(3), bg)
    expected = (
        WEIGHTS["faithfulness"]
        + WEIGHTS["centring"]
        + WEIGHTS["saturation"] * terms["saturation"][0]
        + WEIGHTS["clean_background"]
    )
    assert h[0] == pytest.approx(expected) and h[0] > h[1] and h[0] > h[2]


def test_reward_loads_the_saved_model_or_names_what_is_missing(tmp_path, monkeypatch):
    tok = PromptTokenizer.build(["a red square"])
    model = PreferenceModel(PreferenceModelConfig(vocab=tok.vocab))
    save_preference_model(model, tmp_path / "pm")
    reward = get_reward("mini_preference", path=str(tmp_path / "pm"))
    images = torch.rand(3, 3, 32, 32)
    scores, _ = reward(images, ["a red square"] * 3)
    with torch.no_grad():
        torch.testing.assert_close(
            torch.as_tensor(scores, dtype=torch.float32), model.eval()(images, ["a red square"] * 3)
        )
    monkeypatch.delenv("SUPERFLOW_MINI_PREFERENCE_PATH", raising=False)
    with pytest.raises(WeightsNotFoundError, match="train-preference"):
        get_reward("mini_preference", path=str(tmp_path / "none"))


def test_pairs_are_labelled_by_the_hidden_preference(tmp_path):
    from superflow.world.preference_data import make_pairs
    from superflow.world.prompts import make_splits

    train, _ = make_splits(tmp_path, n_train=200, n_test=30, seed=0)
    pairs = make_pairs(train, 48, np.random.default_rng(0))
    assert pairs.images_a.shape == (48, 32, 32, 3) and len(pairs.prompts) == 48
    assert set(np.unique(pairs.prefer_a)) <= {0.0, 0.5, 1.0}
    assert 0.2 < (pairs.prefer_a == 1).mean() < 0.8  # both sides win: no position bias
    again = make_pairs(train, 48, np.random.default_rng(0))
    assert np.array_equal(again.images_a, pairs.images_a) and np.array_equal(again.prefer_a, pairs.prefer_a)


def test_the_cli_and_the_study_train_the_preference_model_for_the_library_s_steps(tmp_path, monkeypatch):
    # The step count once lived in three places that drifted apart (600 in one, 2,400 in another).
    study = yaml.safe_load((Path(__file__).parents[1] / "workflow/config/mini.yaml").read_text())
    assert study["world"]["preference_steps"] == preference_model.TRAINING_STEPS

    trained_for = []

    def record_steps(train, test, vocab, *, steps, **_):
        trained_for.append(steps)
        return PreferenceModel(PreferenceModelConfig(vocab=vocab)), {"pair_accuracy": 0.5}

    monkeypatch.setattr(preference_model, "train_preference_model", record_steps)
    world = tmp_path / "world"
    assert main(["world", "--output-dir", str(world), "--n-train", "20", "--n-test", "5"]) == 0
    for extra in ([], ["--steps", "7"]):
        assert (
            main(
                ["train-preference", "--data-dir", str(world), "--output-dir", str(tmp_path / "pm"), "--quiet", *extra]
            )
            == 0
        )
    assert trained_for == [preference_model.TRAINING_STEPS, 7]
